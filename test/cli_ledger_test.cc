// The ledger commands end to end: the real `assent` binary on a temporary data directory.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/wait.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "common/sha256.h"
#include "run_assent.h"

namespace {

namespace fs = std::filesystem;

using assent::testing_cli::RunResult;
RunResult Assent(const std::string& args) { return assent::testing_cli::RunAssent(args); }

class CliLedgerTest : public testing::Test {
 protected:
  void SetUp() override {
    std::mt19937_64 rng(std::random_device{}());
    dir_ = (fs::temp_directory_path() / ("assent-cli-" + std::to_string(rng()))).string();
  }
  void TearDown() override {
    fs::remove_all(dir_);
    fs::remove_all(dir_ + "-b");
    fs::remove(dir_ + ".jsonl");
  }
  std::string D() const { return " --data " + dir_; }
  std::string dir_;
};

const std::string kV2 = " examples/terms/example-meetings-2023-08-07.yaml";
const std::string kV3 = " examples/terms/example-meetings-2023-08-11.yaml";

// A ledger written by the previous release (schema 2, test/fixtures/ledger-schema2): readers
// leave it as it is; the first write migrates it to schema 3, whose consent entries state
// their notice; its log still verifies, and a receipt issued before the migration still does.
TEST_F(CliLedgerTest, ALedgerOfThePreviousReleaseIsMigratedAndStillVerifies) {
  fs::copy(std::string(ASSENT_SOURCE_DIR) + "/test/fixtures/ledger-schema2", dir_,
           fs::copy_options::recursive);
  fs::permissions(dir_ + "/audit.key", fs::perms::owner_read | fs::perms::owner_write);
  auto schema = [&] {
    sqlite3* db = nullptr;
    std::string version;
    if (sqlite3_open_v2((dir_ + "/ledger.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
      sqlite3_stmt* st = nullptr;
      sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'schema_version'", -1, &st, nullptr);
      if (st && sqlite3_step(st) == SQLITE_ROW) {
        version = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
      }
      sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return version;
  };
  ASSERT_EQ(schema(), "2");
  RunResult r = Assent("audit verify" + D());
  EXPECT_EQ(r.code, 0) << r.out;
  r = Assent("consent history --subject ada --json" + D());
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("\"action\":\"grant\""), std::string::npos) << r.out;
  EXPECT_EQ(schema(), "2") << "reading changes nothing";
  // An event written before the migration states no notice, and its receipt says none.
  r = Assent("consent receipt --position 3" + D());
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("\"subject\":\"ada\""), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("notice"), std::string::npos) << r.out;
  // The first write migrates; the new entry states its notice ("none": the CLI shows none).
  r = Assent("consent withdraw --subject ada --rule meeting-quality-review" + D());
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("\"notice\":\"none\""), std::string::npos) << r.out;
  EXPECT_EQ(schema(), "3");
  ASSERT_EQ(Assent("audit checkpoint" + D()).code, 0);
  r = Assent("audit verify" + D());
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("the log verifies"), std::string::npos) << r.out;
  // Decisions read both: ada's withdrawal (schema 3) overrides her grant (schema 2).
  r = Assent("check" + D() + " --category content.audio --purpose product_development.quality_review"
             " --subject ada --account acme");
  EXPECT_EQ(r.code, 1) << r.out;
  // The notice of the terms the ledger holds (published before they carried German).
  r = Assent("terms notice --rule meeting-quality-review --sha256" + D());
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out.size(), 65u) << r.out;
  r = Assent("terms notice --rule meeting-quality-review --locale de" + D());
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("no text in locale 'de' (they offer: en)"), std::string::npos) << r.out;
  // The receipt issued by the previous release still verifies offline, against the log's key.
  const RunResult key = Assent("audit key" + D());
  ASSERT_EQ(key.code, 0) << key.out;
  const std::string k = key.out.substr(0, key.out.find('\n'));
  r = Assent("audit verify-receipt " + dir_ + "/receipt-ada.json --key '" + k + "'");
  EXPECT_EQ(r.code, 0) << r.out;
}

TEST_F(CliLedgerTest, PublishGrantWithdrawCheckExportImport) {
  RunResult r = Assent("terms publish --backfill" + D() + kV2);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("published example-meetings@2023-08-07 at ledger position 1"),
            std::string::npos) << r.out;
  ASSERT_EQ(Assent("terms publish --backfill" + D() + kV3).code, 0);
  r = Assent("terms publish --backfill" + D() + kV3);
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("already published"), std::string::npos);

  // The command line never claims the person's own click, nor records a choice nobody's
  // choice can change (under the later terms, chat training is prohibited).
  r = Assent("consent grant" + D() +
             " --subject u1 --category content.chat --purpose ai_training.first_party"
             " --at 2023-08-08T10:00:00Z --method settings");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("own session"), std::string::npos) << r.out;
  r = Assent("consent grant" + D() +
             " --subject u1 --category content.chat --purpose ai_training.first_party");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("rule 'no-content-training' (clause 10.4) makes this prohibited"),
            std::string::npos) << r.out;
  r = Assent("consent grant" + D() +
             " --subject u1 --category content.chat --purpose ai_training.first_party"
             " --at 2023-08-08T10:00:00Z");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("\"position\":3"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"terms\":\"example-meetings@2023-08-07\""), std::string::npos);
  EXPECT_NE(r.out.find("\"hash\":\""), std::string::npos);
  r = Assent("consent withdraw" + D() + " --subject u1 --rule content-ai-training"
             " --at 2023-08-10T00:00:00Z --terms-version 2023-08-07");
  ASSERT_EQ(r.code, 0) << r.out;

  // Point-in-time answers from the ledger.
  r = Assent("check" + D() + " --category content.chat --purpose ai_training.first_party"
             " --subject u1 --at 2023-08-09T00:00:00Z --json");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("\"reason\":\"consented\""), std::string::npos) << r.out;
  r = Assent("check" + D() + " --category content.chat --purpose ai_training.first_party"
             " --subject u1 --at 2023-08-10T12:00:00Z --json");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("\"reason\":\"withdrawn\""), std::string::npos) << r.out;

  r = Assent("consent history" + D() + " --subject u1 --json");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("\"action\":\"withdraw\""), std::string::npos) << r.out;

  // Export, then import into a fresh ledger with the same terms: the same answers.
  ASSERT_EQ(Assent("ledger export" + D() + " --out " + dir_ + ".jsonl").code, 0);
  ASSERT_EQ(Assent("terms publish --backfill --data " + dir_ + "-b" + kV2).code, 0);
  ASSERT_EQ(Assent("terms publish --backfill --data " + dir_ + "-b" + kV3).code, 0);
  r = Assent("ledger import --data " + dir_ + "-b " + dir_ + ".jsonl");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("imported 2 consent event(s)"), std::string::npos) << r.out;
  r = Assent("check --data " + dir_ + "-b --category content.chat "
             "--purpose ai_training.first_party --subject u1 --at 2023-08-09T00:00:00Z --json");
  EXPECT_EQ(r.code, 0) << r.out;
  // The export also reads as an events file for offline checks.
  r = Assent("check --terms" + kV2 + " --terms" + kV3 + " --events " + dir_ + ".jsonl" +
             " --category content.chat --purpose ai_training.first_party --subject u1"
             " --at 2023-08-10T12:00:00Z");
  EXPECT_EQ(r.code, 1) << r.out;
}

// An export in which a withdrawal was rewritten into a grant does not import: every entry's
// hash is recomputed (naming the line); --rehash imports it and the events say so.
TEST_F(CliLedgerTest, AnEditedExportIsRefusedUnlessTheOperatorVouchesForIt) {
  ASSERT_EQ(Assent("terms publish --backfill" + D() + kV2).code, 0);
  ASSERT_EQ(Assent("terms publish --backfill" + D() + kV3).code, 0);
  ASSERT_EQ(Assent("consent withdraw" + D() + " --subject u1 --category content.chat"
                   " --purpose ai_training.first_party --at 2023-08-12T00:00:00Z").code, 0);
  ASSERT_EQ(Assent("ledger export" + D() + " --out " + dir_ + ".jsonl").code, 0);
  std::ifstream in(dir_ + ".jsonl");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  const size_t at = text.find("\"action\":\"withdraw\"");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 19, "\"action\":\"grant\"");
  std::ofstream(dir_ + "-forged.jsonl") << text;
  const std::string other = " --data " + dir_ + "-c";
  ASSERT_EQ(Assent("terms publish --backfill" + other + kV2).code, 0);
  ASSERT_EQ(Assent("terms publish --backfill" + other + kV3).code, 0);
  RunResult r = Assent("ledger import" + other + " " + dir_ + "-forged.jsonl");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("-forged.jsonl:3: entry 3 does not match its hash"), std::string::npos)
      << r.out;
  r = Assent("consent history" + other + " --subject u1 --json");
  EXPECT_EQ(r.out.find("\"action\":\"grant\""), std::string::npos) << r.out;
  r = Assent("ledger import --rehash" + other + " " + dir_ + "-forged.jsonl");
  EXPECT_EQ(r.code, 0) << r.out;
  r = Assent("ledger export" + other);
  EXPECT_NE(r.out.find("ledger import --rehash (operator vouches)"), std::string::npos) << r.out;
  fs::remove_all(dir_ + "-c");
  fs::remove(dir_ + "-forged.jsonl");
}

// Terms whose effective time lies before their publication, or that loosen a use, are refused
// unless asked for; what was asked for is recorded in the terms entry.
TEST_F(CliLedgerTest, PublishingIntoThePastOrLooseningMustBeAskedFor) {
  RunResult r = Assent("terms publish" + D() + kV2);
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("--backfill"), std::string::npos) << r.out;
  ASSERT_EQ(Assent("terms publish --backfill" + D() + kV3).code, 0);
  // v2 after v3 with a later effective time: v2 allows what v3 forbids.
  std::ifstream in(std::string(ASSENT_SOURCE_DIR) + "/examples/terms/example-meetings-2023-08-07.yaml");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string yaml = ss.str();
  const std::string old_version = "version: \"2023-08-07\"";
  yaml.replace(yaml.find(old_version), old_version.size(), "version: \"2099-01-01\"");
  const size_t eff = yaml.find("effective: ");
  yaml.replace(eff, yaml.find('\n', eff) - eff, "effective: \"2099-01-01T00:00:00Z\"");
  std::ofstream(dir_ + "-loose.yaml") << yaml;
  r = Assent("terms publish" + D() + " " + dir_ + "-loose.yaml");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("loosen"), std::string::npos) << r.out;
  r = Assent("terms publish --allow-loosening" + D() + " " + dir_ + "-loose.yaml");
  EXPECT_EQ(r.code, 0) << r.out;
  r = Assent("ledger export" + D());
  EXPECT_NE(r.out.find("\"allow_loosening\":true"), std::string::npos);
  EXPECT_NE(r.out.find("\"backfill\":true"), std::string::npos);
  fs::remove(dir_ + "-loose.yaml");
}

// Commands that change an existing ledger never create an empty data directory.
TEST_F(CliLedgerTest, WritesToAMissingLedgerCreateNothing) {
  for (const std::string cmd : {"models register m1 --dataset d1", "subject erase u1 --yes",
                                "subject erase u1"}) {
    RunResult r = Assent(cmd + D());
    EXPECT_NE(r.code, 0) << cmd << ": " << r.out;
    EXPECT_FALSE(fs::exists(dir_)) << cmd << " created " << dir_;
  }
}

TEST_F(CliLedgerTest, FilterRefusesZeroShardsAndNegativeThreads) {
  ASSERT_EQ(Assent("terms publish --backfill" + D() + kV3).code, 0);
  std::ofstream(dir_ + "-in.jsonl") << "{\"id\":\"a\",\"category\":\"content.audio\"}\n";
  for (const std::string flag : {"--shards 0", "--threads -1"}) {
    RunResult r = Assent("filter" + D() + " --purpose service.delivery --in " + dir_ +
                         "-in.jsonl --out " + dir_ + "-out.jsonl " + flag);
    EXPECT_EQ(r.code, 2) << r.out;
    EXPECT_NE(r.out.find(flag.substr(0, flag.find(' '))), std::string::npos) << r.out;
    EXPECT_FALSE(fs::exists(dir_ + "-out.jsonl"));
  }
  // --threads 1 (the ledger opened on one thread too) keeps what the default keeps.
  RunResult one = Assent("filter" + D() + " --purpose service.delivery --in " + dir_ +
                         "-in.jsonl --out " + dir_ + "-out.jsonl --threads 1");
  EXPECT_EQ(one.code, 0) << one.out;
  EXPECT_NE(one.out.find("kept 1 of 1"), std::string::npos) << one.out;
  fs::remove(dir_ + "-in.jsonl");
  fs::remove(dir_ + "-out.jsonl");
}

TEST_F(CliLedgerTest, BadInputChangesNothing) {
  ASSERT_EQ(Assent("terms publish --backfill" + D() + kV2).code, 0);
  struct Case {
    std::string args;
    std::string want;
  } cases[] = {
      {"consent grant --subject u1 --category content.chat", "--purpose"},
      {"consent grant --subject u1 --account a1 --category content --purpose service",
       "exactly one of --subject or --account"},
      {"consent grant --subject u1 --category content.nope --purpose service", "unknown category"},
      {"consent grant --subject u1 --category content --purpose service --method email",
       "--method must be"},
      {"consent grant --subject u1 --category content --purpose service --at yesterday",
       "invalid time"},
      {"consent grant --subject u1 --rule no-such-rule", "unknown rule"},
      {"terms publish examples/terms/example-meetings-2023-03-31.yaml", "missing-description"},
      {"terms publish /nonexistent.yaml", "cannot read"},
  };
  for (const auto& c : cases) {
    RunResult r = Assent(c.args + D());
    EXPECT_EQ(r.code, 2) << c.args << "\n" << r.out;
    EXPECT_NE(r.out.find(c.want), std::string::npos) << c.args << "\n" << r.out;
  }
  RunResult export_run = Assent("ledger export" + D());
  EXPECT_EQ(std::count(export_run.out.begin(), export_run.out.end(), '\n'), 1)
      << "only the terms publication is in the ledger";
  // A file that is not JSON Lines imports nothing.
  std::ofstream(dir_ + ".jsonl") << "{\"subject\":\"u1\",\"action\":\"grant\"}\nnot json\n";
  RunResult r = Assent("ledger import" + D() + " " + dir_ + ".jsonl");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find(":1:"), std::string::npos) << r.out;
}

TEST_F(CliLedgerTest, SubjectEraseNeedsConfirmationAndLeavesAVerifiableLog) {
  ASSERT_EQ(Assent("terms publish --backfill" + D() + kV3).code, 0);
  ASSERT_EQ(Assent("consent withdraw" + D() +
                   " --subject ida@example.com --rule service-generated-for-ai-training").code, 0);
  ASSERT_EQ(Assent("consent withdraw" + D() +
                   " --subject u2 --rule service-generated-for-ai-training").code, 0);
  const std::string check = "check" + D() +
                            " --category service_generated.telemetry"
                            " --purpose ai_training.first_party --subject ida@example.com";
  EXPECT_EQ(Assent(check).code, 1) << "objected";
  // Without --yes: refused, nothing changes.
  RunResult r = Assent("subject erase ida@example.com" + D());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("--yes"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("is held in"), std::string::npos) << r.out;  // what it obliges, first
  EXPECT_EQ(Assent(check).code, 1);
  r = Assent("subject erase ida@example.com --yes" + D());
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("1 consent event(s)"), std::string::npos) << r.out;
  // Never "not objected" for someone erased: denied with reason erased.
  r = Assent(check + " --json");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("\"reason\":\"erased\""), std::string::npos) << r.out;
  r = Assent("subject erase ida@example.com --yes" + D());
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("nothing to erase"), std::string::npos) << r.out;
  r = Assent("audit verify" + D());
  EXPECT_EQ(r.code, 0) << r.out;
  r = Assent("ledger export" + D());
  EXPECT_EQ(r.out.find("ida@example.com"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"erased\":true"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"subject\":\"u2\",\"action\""), std::string::npos) << r.out;
  // The export still reads as an events file: the erased event is no one's.
  std::ofstream(dir_ + ".jsonl") << r.out;
  r = Assent("check --terms" + kV3 + " --events " + dir_ + ".jsonl" +
             " --category service_generated.telemetry --purpose ai_training.first_party"
             " --subject u2");
  EXPECT_EQ(r.code, 1) << r.out;
}

TEST_F(CliLedgerTest, RefusesAForeignDatabaseAndAMissingLedger) {
  RunResult r = Assent("check" + D() + " --category content --purpose service --subject u1");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("no ledger"), std::string::npos) << r.out;
  fs::create_directories(dir_);
  std::ofstream(dir_ + "/ledger.db") << "SQLite format 3 but not really, just some text to fail";
  r = Assent("terms publish --backfill" + D() + kV2);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("ledger.db"), std::string::npos) << r.out;
}

}  // namespace

namespace {

// The gate as a pipeline stage, and a dataset re-derived and proven from its manifest.
TEST_F(CliLedgerTest, FilterReadsAPipeAndADatasetVerifies) {
  ASSERT_EQ(Assent("terms publish --backfill" + D() + kV3).code, 0);
  ASSERT_EQ(Assent("consent withdraw --subject u2 --rule service-generated-for-ai-training" + D()).code, 0);
  const std::string in = dir_ + "-in.jsonl";
  {
    std::ofstream m(in, std::ios::binary);
    for (int i = 0; i < 50; ++i) {
      m << R"({"id":"i)" << i << R"(","category":"service_generated.telemetry","subjects":["u)"
        << i % 4 << "\"]}\n";
    }
  }
  // - in, - out: the kept lines on standard output, the report on standard error.
  RunResult piped = Assent("filter" + D() + " --purpose ai_training.first_party --in - --out - < " +
                           in + " 2>/dev/null | wc -l");
  ASSERT_EQ(piped.code, 0) << piped.out;
  EXPECT_EQ(std::stoi(piped.out), 38) << piped.out;  // u2 objected: 12 of 50
  // The hashes are computed where something shows them: the report on standard error (with
  // --out -) and in --report's file name the manifest's and the kept lines' SHA-256.
  std::string manifest;
  {
    std::ifstream f(in, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    manifest = ss.str();
  }
  const std::string in_hash = "\"input_sha256\":\"" + assent::ToHex(assent::Sha256(manifest)) + "\"";
  RunResult report_on_stderr = Assent("filter" + D() + " --purpose ai_training.first_party --in " + in +
                                      " --out - 2>&1 >/dev/null | cat");
  EXPECT_NE(report_on_stderr.out.find(in_hash), std::string::npos) << report_on_stderr.out;
  RunResult reported = Assent("filter" + D() + " --purpose ai_training.first_party --in " + in +
                              " --out " + dir_ + "-reported.jsonl --report " + dir_ + "-report.json");
  ASSERT_EQ(reported.code, 0) << reported.out;
  std::string report, kept;
  {
    std::ifstream r(dir_ + "-report.json"), k(dir_ + "-reported.jsonl", std::ios::binary);
    std::stringstream rs, ks;
    rs << r.rdbuf();
    ks << k.rdbuf();
    report = rs.str();
    kept = ks.str();
  }
  EXPECT_NE(report.find(in_hash), std::string::npos) << report;
  EXPECT_NE(report.find("\"output_sha256\":\"" + assent::ToHex(assent::Sha256(kept)) + "\""), std::string::npos) << report;
  fs::remove(dir_ + "-reported.jsonl");
  fs::remove(dir_ + "-report.json");
  // A recorded dataset re-derives from its manifest; one changed byte does not.
  RunResult rec = Assent("filter" + D() + " --purpose ai_training.first_party --in " + in +
                         " --out " + dir_ + "-out.jsonl --dataset ds1");
  ASSERT_EQ(rec.code, 0) << rec.out;
  // A later withdrawal does not change what the dataset was (it is decided at its position).
  ASSERT_EQ(Assent("consent withdraw --subject u1 --rule service-generated-for-ai-training" + D()).code, 0);
  RunResult ok = Assent("datasets verify ds1 --in " + in + D());
  EXPECT_EQ(ok.code, 0) << ok.out;
  EXPECT_NE(ok.out.find("ok: the same manifest gives the same 38 kept items"), std::string::npos) << ok.out;
  std::string text;
  {
    std::ifstream f(in);
    std::stringstream ss;
    ss << f.rdbuf();
    text = ss.str();
  }
  text[text.find("i7")] = 'j';
  std::ofstream(dir_ + "-changed.jsonl", std::ios::binary) << text;
  RunResult changed = Assent("datasets verify ds1 --in " + dir_ + "-changed.jsonl" + D());
  EXPECT_EQ(changed.code, 1) << changed.out;
  EXPECT_NE(changed.out.find("FAIL the manifest is not the one"), std::string::npos) << changed.out;
  // --position decides on the ledger as it was: before u1's withdrawal, u1's items are kept.
  RunResult at = Assent("filter" + D() + " --purpose ai_training.first_party --in " + in +
                        " --out " + dir_ + "-at.jsonl --position 2");
  ASSERT_EQ(at.code, 0) << at.out;
  EXPECT_NE(at.out.find("kept 38 of 50"), std::string::npos) << at.out;
  RunResult now = Assent("filter" + D() + " --purpose ai_training.first_party --in " + in +
                         " --out " + dir_ + "-at.jsonl");
  EXPECT_NE(now.out.find("kept 25 of 50"), std::string::npos) << now.out;
  for (const char* f : {"-in.jsonl", "-out.jsonl", "-changed.jsonl", "-at.jsonl"}) fs::remove(dir_ + f);
}

}  // namespace

namespace {

// An export carries the terms its events need: imported into an empty directory it reproduces
// the answers; a failed import into an empty directory leaves nothing there.
TEST_F(CliLedgerTest, AnExportImportsIntoAnEmptyDirectoryAndAFailureLeavesNothing) {
  ASSERT_EQ(Assent("terms publish --backfill" + D() + kV2).code, 0);
  ASSERT_EQ(Assent("terms publish --backfill" + D() + kV3).code, 0);
  ASSERT_EQ(Assent("consent grant --subject u1 --category content.chat --purpose "
                   "ai_training.first_party --at 2023-08-08T10:00:00Z" + D()).code, 0);
  ASSERT_EQ(Assent("ledger export --out " + dir_ + ".jsonl" + D()).code, 0);
  const std::string other = dir_ + "-b";
  RunResult imp = Assent("ledger import --data " + other + " " + dir_ + ".jsonl");
  ASSERT_EQ(imp.code, 0) << imp.out;
  const std::string ask = "check --category content.chat --purpose ai_training.first_party "
                          "--subject u1 --at 2023-08-09T00:00:00Z --data ";
  RunResult a = Assent(ask + dir_), b = Assent(ask + other);
  EXPECT_EQ(a.code, 0) << a.out;
  EXPECT_EQ(b.code, a.code) << b.out;
  // Without its terms (and vouched for with --rehash), the import fails: nothing is left.
  std::ifstream in(dir_ + ".jsonl");
  std::ofstream out(dir_ + "-noterms.jsonl");
  for (std::string line; std::getline(in, line);) {
    if (line.find("\"kind\":\"terms\"") == std::string::npos) out << line << "\n";
  }
  out.close();
  const std::string empty = dir_ + "-c";
  RunResult bad = Assent("ledger import --rehash --data " + empty + " " + dir_ + "-noterms.jsonl");
  EXPECT_EQ(bad.code, 2) << bad.out;
  EXPECT_NE(bad.out.find("nothing was imported"), std::string::npos) << bad.out;
  EXPECT_FALSE(fs::exists(empty)) << "a failed import into an empty directory leaves nothing";
  fs::remove(dir_ + "-noterms.jsonl");
}

// A receipt can be had again for any event, and proven against a later checkpoint.
TEST_F(CliLedgerTest, AReceiptIsPrintedAgainAndProvenLater) {
  ASSERT_EQ(Assent("terms publish --backfill" + D() + kV3).code, 0);
  ASSERT_EQ(Assent("consent withdraw --subject u1 --rule service-generated-for-marketing" + D()).code, 0);
  const std::string receipt = dir_ + "-receipt.json", later = dir_ + "-later.txt",
                    proof = dir_ + "-proof.json";
  RunResult r = Assent("consent receipt --position 2" + D() + " > " + receipt);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(Assent("consent receipt --position 1" + D()).code, 0);  // the terms, not an event
  ASSERT_EQ(Assent("consent withdraw --subject u2 --rule service-generated-for-marketing" + D()).code, 0);
  RunResult p = Assent("audit prove --receipt " + receipt + " --out-checkpoint " + later +
                       " --out-proof " + proof + D());
  ASSERT_EQ(p.code, 0) << p.out;
  RunResult key = Assent("audit key" + D());
  const std::string k = key.out.substr(0, key.out.find('\n'));
  RunResult v = Assent("audit verify-receipt " + receipt + " --key '" + k + "' --later-checkpoint " +
                       later + " --consistency-proof " + proof);
  EXPECT_EQ(v.code, 0) << v.out;
  EXPECT_NE(v.out.find("still in the later checkpoint"), std::string::npos) << v.out;
  for (const auto& f : {receipt, later, proof}) fs::remove(f);
}

}  // namespace

namespace {

// Mistyped commands and flags get a did-you-mean; --version names the commit and build; empty
// lists say so.
TEST_F(CliLedgerTest, MistakesGetADidYouMeanAndListsSayWhenEmpty) {
  RunResult chek = Assent("chek");
  EXPECT_EQ(chek.code, 2);
  EXPECT_NE(chek.out.find("did you mean 'check'?"), std::string::npos) << chek.out;
  RunResult flag = Assent("consent grant --subject u1 --catgory content.chat" + D());
  EXPECT_EQ(flag.code, 2);
  EXPECT_NE(flag.out.find("'--catgory' is not an option of 'assent consent grant': did you mean "
                          "'--category'?"),
            std::string::npos) << flag.out;
  RunResult sub = Assent("terms lnt examples/terms/example-meetings-2023-08-11.yaml");
  EXPECT_NE(sub.out.find("did you mean 'lint'?"), std::string::npos) << sub.out;
  RunResult version = Assent("--version");
  EXPECT_EQ(version.code, 0);
  EXPECT_NE(version.out.find("(commit "), std::string::npos) << version.out;
  EXPECT_NE(version.out.find(" build)"), std::string::npos) << version.out;
  ASSERT_EQ(Assent("terms publish --backfill" + D() + kV3).code, 0);
  EXPECT_NE(Assent("keys list" + D()).out.find("no keys"), std::string::npos);
  EXPECT_NE(Assent("models list" + D()).out.find("no models"), std::string::npos);
  EXPECT_NE(Assent("datasets list" + D()).out.find("no datasets"), std::string::npos);
  EXPECT_EQ(Assent("datasets list --json" + D()).out, "[]\n");
}

}  // namespace

namespace {

// The demo needs no source tree: the example terms are built in.
TEST_F(CliLedgerTest, TheDemoStartsFromAnyDirectory) {
  fs::create_directories(dir_);
  const std::string cmd = "cd '" + dir_ + "' && timeout 20 '" ASSENT_BINARY
                          "' serve --demo --quiet --data ./demo --listen 127.0.0.1:0 2>&1 | "
                          "head -2";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  pclose(p);
  EXPECT_NE(out.find("assent serving"), std::string::npos) << out;
  EXPECT_NE(out.find("(ledger position 7,"), std::string::npos) << out;  // two terms, four keys, checkpoint
}

}  // namespace

namespace {

// `terms test`: cases against your own terms, each failure with its file and line.
TEST_F(CliLedgerTest, TermsTestRunsCasesAgainstYourTerms) {
  fs::create_directories(dir_);
  std::ofstream(dir_ + "/pass.test")
      << "# name: chat is never used to train\nnow 2024-01-01T00:00:00Z\n"
         "decide category=content.chat purpose=ai_training.first_party subjects=u1\n"
         "expect deny prohibited rule=no-content-training clauses=10.4\n";
  std::ofstream(dir_ + "/fail.test")
      << "# name: a wrong promise\nnow 2024-01-01T00:00:00Z\n"
         "decide category=content.chat purpose=ai_training.first_party subjects=u1\n"
         "expect allow consented\n";
  RunResult r = Assent("terms test --terms" + kV3 + " " + dir_);
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("PASS " + dir_ + "/pass.test"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(dir_ + "/fail.test:4: expected decision allow, got deny"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("1 passed, 1 failed"), std::string::npos) << r.out;
  fs::remove(dir_ + "/fail.test");
  EXPECT_EQ(Assent("terms test --terms" + kV3 + " " + dir_).code, 0);
  EXPECT_EQ(Assent("terms test " + dir_ + "/missing.test").code, 2);
}

}  // namespace

namespace {

// `terms init` writes a starting file that lints clean, and never over an existing one.
// A grant given under wording that changed is stale: `terms publish` counts them per rule and
// `consent stale` lists the parties to ask again, a page at a time.
TEST_F(CliLedgerTest, PublishCountsStaleGrantsAndConsentStaleListsThem) {
  fs::create_directories(dir_);
  const std::string v1 = R"(terms: stale-demo
version: "1"
effective: "2024-01-01T00:00:00Z"
clauses:
  - id: "1"
    title: Training
    text: With your consent we may train our own models on your meeting recordings.
categories:
  recordings: { description: "Meeting recordings." }
  notes: { description: "Notes you take." }
purposes:
  training: { description: "Training our own models." }
rules:
  - id: train-on-recordings
    summary: Train our own models on my meeting recordings.
    categories: [recordings]
    purposes: [training]
    basis: consent
    consent_from: subjects
    clauses: ["1"]
  - id: train-on-notes
    summary: Train our own models on my notes.
    categories: [notes]
    purposes: [training]
    basis: consent
    consent_from: subjects
    clauses: ["1"]
)";
  std::string v2 = v1;
  v2.replace(v2.find("version: \"1\""), 12, "version: \"2\"");
  v2.replace(v2.find("2024-01-01"), 10, "2025-01-01");
  v2.replace(v2.find("Meeting recordings."), 19, "Meeting recordings and their transcripts.");
  std::ofstream(dir_ + "/v1.yaml") << v1;
  std::ofstream(dir_ + "/v2.yaml") << v2;
  const std::string d = " --data " + dir_ + "/d";
  ASSERT_EQ(Assent("terms publish --backfill" + d + " " + dir_ + "/v1.yaml").code, 0);
  for (int i = 1; i <= 3; ++i) {
    ASSERT_EQ(Assent("consent grant" + d + " --subject u" + std::to_string(i) +
                     " --rule train-on-recordings --at 2024-06-0" + std::to_string(i) + "T00:00:00Z").code, 0);
  }
  ASSERT_EQ(Assent("consent grant" + d + " --subject u9 --rule train-on-notes --at 2024-06-09T00:00:00Z").code, 0);
  RunResult pub = Assent("terms publish --backfill" + d + " " + dir_ + "/v2.yaml");
  ASSERT_EQ(pub.code, 0) << pub.out;
  EXPECT_NE(pub.out.find("rule train-on-recordings: 3 grants from 3 parties"), std::string::npos) << pub.out;
  EXPECT_EQ(pub.out.find("rule train-on-notes:"), std::string::npos) << "its wording did not change";
  RunResult first = Assent("consent stale" + d + " --rule train-on-recordings --limit 2 --json");
  ASSERT_EQ(first.code, 0) << first.out;
  EXPECT_NE(first.out.find(R"("total":3,"parties":[{"subject":"u1","grants":1},{"subject":"u2","grants":1}],"next_cursor":")"),
            std::string::npos) << first.out;
  const size_t at = first.out.find("\"next_cursor\":\"") + 15;
  const std::string cursor = first.out.substr(at, first.out.find('"', at) - at);
  RunResult second = Assent("consent stale" + d + " --rule train-on-recordings --limit 2 --json --cursor " + cursor);
  EXPECT_NE(second.out.find(R"("parties":[{"subject":"u3","grants":1}]})"), std::string::npos) << second.out;
  RunResult text = Assent("consent stale" + d + " --rule train-on-recordings --limit 1");
  EXPECT_NE(text.out.find("... 2 more: assent consent stale --rule train-on-recordings --cursor"),
            std::string::npos) << "never cut short silently: " << text.out;
  // Asked again: a fresh grant under the new wording is no longer stale.
  ASSERT_EQ(Assent("consent grant" + d + " --subject u2 --rule train-on-recordings").code, 0);
  RunResult after = Assent("consent stale" + d + " --rule train-on-recordings --json");
  EXPECT_NE(after.out.find(R"("total":2,)"), std::string::npos) << after.out;
  RunResult typo = Assent("consent stale" + d + " --rule train-on-notse");
  EXPECT_EQ(typo.code, 2);
  EXPECT_NE(typo.out.find("did you mean 'train-on-notes'"), std::string::npos) << typo.out;
  EXPECT_EQ(Assent("consent stale" + d + " --rule train-on-recordings --cursor xyz").code, 2);
}

TEST_F(CliLedgerTest, TermsInitWritesAFileThatLintsClean) {
  fs::create_directories(dir_);
  const std::string f = dir_ + "/terms.yaml";
  ASSERT_EQ(Assent("terms init " + f).code, 0);
  RunResult lint = Assent("terms lint " + f);
  EXPECT_EQ(lint.code, 0) << lint.out;
  EXPECT_NE(lint.out.find("0 error(s), 0 warning(s)"), std::string::npos) << lint.out;
  EXPECT_EQ(Assent("terms init " + f).code, 2);
  EXPECT_EQ(Assent("terms publish --data " + dir_ + "/d " + f).code, 0);  // effective 2030: no backfill
}

}  // namespace

namespace {

// Completion and the manual page come from the command table: every command is in them.
TEST_F(CliLedgerTest, CompletionAndManualListEveryCommand) {
  RunResult bash = Assent("completion bash");
  ASSERT_EQ(bash.code, 0);
  EXPECT_NE(bash.out.find("complete -F _assent assent"), std::string::npos);
  EXPECT_NE(bash.out.find("\"consent grant\") words=\""), std::string::npos) << bash.out;
  EXPECT_NE(bash.out.find("--category"), std::string::npos);
  RunResult check = Assent("completion bash > " + dir_ + "-c.sh && bash -n " + dir_ + "-c.sh");
  EXPECT_EQ(check.code, 0) << check.out;  // a valid bash script
  fs::remove(dir_ + "-c.sh");
  RunResult man = Assent("man");
  ASSERT_EQ(man.code, 0);
  EXPECT_TRUE(man.out.starts_with(".TH ASSENT 1")) << man.out.substr(0, 100);
  for (const char* cmd : {"assent consent grant", "assent filter", "assent datasets verify",
                          "assent terms test", "assent audit prove"}) {
    EXPECT_NE(man.out.find(".SS " + std::string(cmd)), std::string::npos) << cmd;
  }
  EXPECT_EQ(Assent("completion zsh").code, 2);
}

}  // namespace
