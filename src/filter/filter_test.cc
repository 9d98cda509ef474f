#include "filter/filter.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>

#include "assent/ledger.h"
#include "common/sha256.h"

namespace assent {
namespace {

namespace fs = std::filesystem;

const Timestamp kNow = *ParseTime("2024-01-01T00:00:00Z");

std::string Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Event {
  std::string party;
  bool account;
  bool grant;
  std::string category, purpose;
};

// A straightforward reading of DESIGN.md for the test's terms: walk every rule, every event;
// no tables, no indexes. Returns "allow" or the deny reason, or "unknown-category".
std::string Reference(const Terms& t, const std::vector<Event>& events, const std::string& c,
                      const std::string& p, const std::string& account,
                      const std::vector<std::string>& subjects) {
  if (t.FindCategory(c) < 0) return "unknown-category";
  auto covers = [](const std::string& pattern, const std::string& name) {
    return name == pattern || name.rfind(pattern + ".", 0) == 0;
  };
  auto depth = [](const std::string& s) { return std::count(s.begin(), s.end(), '.'); };
  const Rule* best = nullptr;
  long best_c = -1, best_p = -1;
  for (const Rule& r : t.rules()) {
    long mc = -1, mp = -1;
    for (int32_t i : r.categories) {
      if (covers(t.categories()[i].name, c)) mc = std::max(mc, depth(t.categories()[i].name));
    }
    for (int32_t i : r.purposes) {
      if (covers(t.purposes()[i].name, p)) mp = std::max(mp, depth(t.purposes()[i].name));
    }
    if (mc < 0 || mp < 0) continue;
    if (r.basis == Basis::kProhibited) return "prohibited";
    if (mc >= best_c && mp >= best_p) best = &r, best_c = mc, best_p = mp;
  }
  if (!best) return "unlisted";
  if (best->basis == Basis::kNecessary) return "allow";
  const bool consent = best->basis == Basis::kConsent;
  std::vector<std::pair<std::string, bool>> parties;
  if (best->consent_from != ConsentFrom::kSubjects) {
    if (account.empty()) return "no-subject";
    parties.emplace_back(account, true);
  }
  if (best->consent_from != ConsentFrom::kAccount) {
    if (subjects.empty()) return "no-subject";
    for (const auto& s : subjects) parties.emplace_back(s, false);
  }
  for (const auto& [who, is_account] : parties) {
    const Event* last = nullptr;
    for (const auto& e : events) {
      if (e.party == who && e.account == is_account && covers(e.category, c) &&
          covers(e.purpose, p)) {
        last = &e;
      }
    }
    if (consent && !last) return "no-consent";
    if (last && !last->grant) return consent ? "withdrawn" : "objected";
  }
  return "allow";
}

class FilterTest : public testing::Test {
 protected:
  void SetUp() override {
    std::mt19937_64 rng(std::random_device{}());
    dir_ = (fs::temp_directory_path() / ("assent-filter-" + std::to_string(rng()))).string();
    fs::create_directories(dir_);
    LedgerOptions lo;
    lo.in_memory = true;
    lo.clock = [] { return kNow; };
    ledger_ = std::move(*Ledger::Open(lo));
    ASSERT_TRUE(ledger_->PublishTerms(
        Read(std::string(ASSENT_SOURCE_DIR) + "/examples/terms/example-meetings-2023-08-11.yaml"),
        "v3", {.backfill = true}));
  }
  void TearDown() override { fs::remove_all(dir_); }

  Result<FilterReport> Filter(const std::string& manifest, FilterOptions o = {}) {
    std::ofstream(dir_ + "/in.jsonl", std::ios::binary) << manifest;
    o.in_path = dir_ + "/in.jsonl";
    o.out_path = dir_ + "/out.jsonl";
    if (o.purpose.empty()) o.purpose = "product_development.quality_review";
    return RunFilter(*ledger_->engine().snapshot(), kNow, o);
  }

  std::string dir_;
  std::unique_ptr<Ledger> ledger_;
};

TEST_F(FilterTest, AgreesItemByItemWithAStraightforwardImplementation) {
  const std::vector<std::string> categories = {"content.audio", "content.video", "content.chat",
                                               "content.transcript", "content",
                                               "service_generated.telemetry", "content.nope"};
  const std::vector<std::string> purposes = {"product_development.quality_review",
                                             "product_development", "marketing",
                                             "ai_training.first_party"};
  std::mt19937 rng(7);
  std::vector<Event> events;
  std::vector<ConsentEvent> records;
  for (int i = 0; i < 300; ++i) {
    Event e{(rng() % 4 ? "u" : "a") + std::to_string(rng() % 20), false, rng() % 3 != 0,
            categories[rng() % 6], purposes[rng() % 4]};
    e.account = e.party[0] == 'a';
    events.push_back(e);
    ConsentEvent c;
    c.party_kind = e.account ? PartyKind::kAccount : PartyKind::kSubject;
    c.party = e.party;
    c.action = e.grant ? Action::kGrant : Action::kWithdraw;
    c.categories = {e.category};
    c.purposes = {e.purpose};
    c.at = kNow - 1000;
    records.push_back(c);
  }
  ASSERT_TRUE(ledger_->RecordConsents(records));
  for (const auto& purpose : purposes) {
    std::string manifest;
    std::vector<std::string> expected_kept;
    std::map<std::string, uint64_t> expected_reasons;
    for (int i = 0; i < 1500; ++i) {
      std::string c = categories[rng() % categories.size()];
      std::string account = rng() % 2 ? "a" + std::to_string(rng() % 20) : "";
      std::vector<std::string> subjects;
      for (int k = rng() % 4; k > 0; --k) subjects.push_back("u" + std::to_string(rng() % 20));
      std::string line = "{\"id\":\"m" + std::to_string(i) + "\",  \"category\":\"" + c + "\"";
      if (!account.empty()) line += ",\"account\":\"" + account + "\"";
      line += ",\"subjects\":[";
      for (size_t k = 0; k < subjects.size(); ++k) line += (k ? ",\"" : "\"") + subjects[k] + "\"";
      line += "], \"extra\": {\"keep\":\"me as I am\"}}";
      manifest += line + "\n";
      std::string want = Reference(*ledger_->engine().snapshot()->terms().version_ptr(0),
                                   events, c, purpose, account, subjects);
      if (want == "allow") {
        expected_kept.push_back(line);
      } else {
        ++expected_reasons[want];
      }
    }
    FilterOptions o;
    o.purpose = purpose;
    o.threads = 3;  // the result must not depend on it
    auto r = Filter(manifest, o);
    ASSERT_TRUE(r) << r.error().message;
    std::string kept;
    for (const auto& l : expected_kept) kept += l + "\n";
    EXPECT_EQ(Read(dir_ + "/out.jsonl"), kept) << purpose;
    EXPECT_EQ(r->kept, expected_kept.size());
    EXPECT_EQ(r->excluded_by_reason, expected_reasons) << purpose;
    EXPECT_EQ(r->input_sha256, ToHex(Sha256(manifest)));
    EXPECT_EQ(r->output_sha256, ToHex(Sha256(kept)));
  }
}

TEST_F(FilterTest, MalformedLinesFailTheRunOrAreCountedNeverKept) {
  const std::string good = R"({"id":"a","category":"content.audio","subjects":["u1"]})";
  std::string big(10 * 1024 * 1024, 'x');
  struct Case {
    std::string line, want;
  } cases[] = {
      {"not json", ":2: not a JSON object"},
      {"[1,2]", ":2: not a JSON object"},
      {R"({"category":"content.audio"})", ":2: no string \"id\""},
      {R"({"id":"b"})", ":2: no string \"category\""},
      {R"({"id":"b","category":"content","subjects":"u1"})", "must be an array of strings"},
      {R"({"id":"b","category":"content","account":7})", "must be a string"},
      {"{\"id\":\"b\",\"category\":\"content\xff\"}", "not valid UTF-8"},
      {"{\"id\":\"" + big + "\"", ":2: not a JSON object"},
  };
  for (const auto& c : cases) {
    std::string many;  // enough lines for several batches, the bad one far in
    for (int i = 0; i < 9000; ++i) many += good + "\n";
    auto late = Filter(many + c.line + "\n" + good + "\n");
    ASSERT_FALSE(late);
    EXPECT_NE(late.error().message.find(":9001: "), std::string::npos) << late.error().message;
    auto r = Filter(good + "\n" + c.line + "\n" + good + "\n");
    ASSERT_FALSE(r) << c.line.substr(0, 50);
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(r.error().message.find(c.want), std::string::npos) << r.error().message;
    EXPECT_FALSE(fs::exists(dir_ + "/out.jsonl")) << "nothing is left at --out";
    FilterOptions skip;
    skip.skip_malformed = true;
    auto s = Filter(good + "\n" + c.line + "\n" + good + "\n", skip);
    ASSERT_TRUE(s) << s.error().message;
    EXPECT_EQ(s->malformed, 1u);
    EXPECT_EQ(s->excluded_by_reason["malformed"], 1u);
    EXPECT_EQ(Read(dir_ + "/out.jsonl").find(c.line.substr(0, 20)), std::string::npos);
    fs::remove(dir_ + "/out.jsonl");
  }
}

TEST_F(FilterTest, EmptyManifestsDuplicateIdsAndUnknownPurposes) {
  auto empty = Filter("");
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->items, 0u);
  EXPECT_TRUE(fs::exists(dir_ + "/out.jsonl"));
  const std::string line = R"({"id":"same","category":"content.audio","subjects":["u1"]})";
  auto dup = Filter(line + "\n" + line + "\n" + line + "\n");
  ASSERT_TRUE(dup);
  EXPECT_EQ(dup->duplicate_ids, 2u);
  FilterOptions o;
  o.purpose = "ai_training.frist_party";
  auto bad = Filter(line + "\n", o);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("did you mean 'ai_training.first_party'"), std::string::npos);
}

TEST_F(FilterTest, AKillInTheMiddleLeavesNothingAtOut) {
  // The real binary on a manifest large enough to be killed while it runs.
  std::string data = dir_ + "/data";
  {
    LedgerOptions lo;
    lo.data_dir = data;
    auto l = Ledger::Open(lo);
    ASSERT_TRUE(l);
    ASSERT_TRUE((*l)->PublishTerms(
        Read(std::string(ASSENT_SOURCE_DIR) + "/examples/terms/example-meetings-2023-08-11.yaml"),
        "v3", {.backfill = true}));
  }
  {
    std::ofstream m(dir_ + "/big.jsonl");
    for (int i = 0; i < 2'000'000; ++i) {
      m << R"({"id":"m)" << i << R"(","category":"content.chat","subjects":["u1"]})" << "\n";
    }
  }
  pid_t pid = ::fork();
  if (pid == 0) {
    std::string in = dir_ + "/big.jsonl", out = dir_ + "/kept.jsonl";
    ::execl(ASSENT_BINARY, ASSENT_BINARY, "filter", "--data", data.c_str(), "--purpose",
            "service.delivery", "--in", in.c_str(), "--out", out.c_str(), nullptr);
    ::_exit(127);
  }
  ::usleep(300 * 1000);
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the filter finished before it could be killed";
  EXPECT_FALSE(fs::exists(dir_ + "/kept.jsonl"));
}

}  // namespace
}  // namespace assent

#include "filter/impact.h"
#include "ledger/lineage.h"

namespace assent {
namespace {

TEST_F(FilterTest, ShardsPartitionTheKeptSetBySubject) {
  std::string manifest;
  for (int i = 0; i < 2000; ++i) {
    manifest += R"({"id":"m)" + std::to_string(i) +
                R"(","category":"service_generated.telemetry","subjects":["u)" +
                std::to_string(i % 97) + "\"]}\n";
  }
  FilterOptions o;
  o.purpose = "ai_training.first_party";
  o.shards = 5;
  o.collect_parties = true;
  auto r = Filter(manifest, o);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_FALSE(fs::exists(dir_ + "/out.jsonl")) << "with shards, only the shard files";
  std::multiset<std::string> all;
  std::map<std::string, int> shard_of;
  uint64_t total = 0;
  for (int s = 0; s < 5; ++s) {
    std::ifstream in(ShardFileName(dir_ + "/out.jsonl", s, 5));
    ASSERT_TRUE(in) << s;
    for (std::string line; std::getline(in, line);) {
      all.insert(line);
      ++total;
      std::string subject = line.substr(line.find("\"subjects\":[\"") + 13);
      subject = subject.substr(0, subject.find('"'));
      auto [it, fresh] = shard_of.emplace(subject, s);
      EXPECT_EQ(it->second, s) << "every item of one subject goes to one shard";
    }
  }
  EXPECT_EQ(total, r->kept);
  EXPECT_EQ(total, 2000u);
  std::multiset<std::string> expected;
  std::istringstream lines(manifest);
  for (std::string line; std::getline(lines, line);) expected.insert(line);
  EXPECT_EQ(all, expected) << "the shards hold exactly the kept lines";
  EXPECT_EQ(r->subjects.size(), 97u);
}

TEST_F(FilterTest, ImpactListsExactlyTheAffectedDatasetsShardsAndModels) {
  std::string manifest;
  for (int i = 0; i < 200; ++i) {
    manifest += R"({"id":"m)" + std::to_string(i) +
                R"(","category":"service_generated.telemetry","account":"acme","subjects":["u)" +
                std::to_string(i % 10) + "\"]}\n";
  }
  auto build = [&](const std::string& name, const std::string& purpose) {
    FilterOptions o;
    o.purpose = purpose;
    o.shards = 3;
    o.collect_parties = true;
    auto r = Filter(manifest, o);
    EXPECT_TRUE(r) << r.error().message;
    DatasetRegistration d;
    d.name = name;
    d.purpose = purpose;
    d.terms = r->terms;
    d.ledger_position = r->position;
    d.items = r->kept;
    d.subjects = r->subjects;
    d.accounts = r->accounts;
    for (auto& sh : r->shards) d.shards.push_back({sh.file, sh.items, sh.subjects});
    EXPECT_TRUE(ledger_->RegisterDataset(d));
  };
  build("train-1", "ai_training.first_party");
  build("analytics-1", "product_development.analytics");
  ASSERT_TRUE(ledger_->RegisterModel("model-a", {"train-1"}));
  EXPECT_FALSE(ledger_->RegisterModel("model-b", {"no-such-dataset"}));
  ConsentEvent w;
  w.party = "u3";
  w.action = Action::kWithdraw;
  w.rule = "service-generated-for-improvement";
  w.purposes = {"ai_training.first_party"};
  w.categories = {"service_generated"};
  ASSERT_TRUE(ledger_->RecordConsent(w));
  build("train-2", "ai_training.first_party");  // after the withdrawal: u3 is not in it
  std::string json = ImpactJson(*ledger_, PartyKind::kSubject, "u3", std::nullopt);
  EXPECT_NE(json.find(R"("name":"train-1","purpose":"ai_training.first_party","recorded_at")"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find(R"("status":"built-before-withdrawal")"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("models":["model-a"])"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("name":"analytics-1")"), std::string::npos);
  EXPECT_NE(json.find(R"("status":"no-withdrawal")"), std::string::npos) << "other purpose";
  EXPECT_EQ(json.find("train-2"), std::string::npos) << "u3 was excluded from train-2";
  // Exactly one shard of train-1 holds u3.
  size_t shards = 0;
  for (size_t at = json.find("out.jsonl.0"); at != std::string::npos;
       at = json.find("out.jsonl.0", at + 1)) {
    ++shards;
  }
  EXPECT_EQ(shards, 2u) << "one shard in each of the two datasets holding u3: " << json;
  std::string account = ImpactJson(*ledger_, PartyKind::kAccount, "acme", std::nullopt);
  EXPECT_NE(account.find("train-2"), std::string::npos);
  std::string nobody = ImpactJson(*ledger_, PartyKind::kSubject, "nobody", std::nullopt);
  EXPECT_EQ(nobody, R"({"subject":"nobody","datasets":[]})");
}

// Kept lines are written exactly as read: CRLF stays CRLF, a last line without a newline gets
// none; a repeated key, an empty or blank subject or account is malformed, never kept.
TEST_F(FilterTest, KeptLinesAreByteForByteAndHostileLinesAreMalformed) {
  const std::string manifest =
      "{\"id\":\"a\",\"category\":\"content.audio\",\"account\":\"acme\"}\r\n"
      "{\"id\":\"b\",\"category\":\"content.audio\",\"account\":\"acme\"}\n"
      "{\"id\":\"c\",\"category\":\"content.audio\",\"account\":\"acme\"}";
  FilterOptions o;
  o.purpose = "service.delivery";
  auto r = Filter(manifest, o);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->kept, 3u);
  EXPECT_EQ(Read(dir_ + "/out.jsonl"), manifest);
  for (const std::string bad : {
           R"({"id":"d","category":"service_generated.telemetry","subjects":[""]})",
           R"({"id":"d","category":"service_generated.telemetry","subjects":["  "]})",
           R"({"id":"d","category":"service_generated.telemetry","account":" ","subjects":["u1"]})",
           R"({"id":"d","category":"service_generated.telemetry","subjects":["u1"],"subjects":[]})",
       }) {
    FilterOptions fo;
    fo.purpose = "ai_training.first_party";
    fo.skip_malformed = true;
    auto k = Filter(bad + "\n", fo);
    ASSERT_TRUE(k) << k.error().message;
    EXPECT_EQ(k->kept, 0u) << bad;
    EXPECT_EQ(k->malformed, 1u) << bad;
  }
}

// --out (or --report) that is the input itself, also through a link, is refused and the input
// is untouched; the report is in place only with the outputs; stale temporaries are removed.
TEST_F(FilterTest, TheInputIsNeverReplacedAndLeftoversAreCleaned) {
  const std::string manifest = "{\"id\":\"a\",\"category\":\"content.audio\"}\n";
  std::ofstream(dir_ + "/in.jsonl", std::ios::binary) << manifest;
  fs::create_symlink(dir_ + "/in.jsonl", dir_ + "/sym.jsonl");
  fs::create_hard_link(dir_ + "/in.jsonl", dir_ + "/hard.jsonl");
  for (const std::string out : {"/in.jsonl", "/sym.jsonl", "/hard.jsonl"}) {
    FilterOptions o;
    o.purpose = "service.delivery";
    o.in_path = dir_ + "/in.jsonl";
    o.out_path = dir_ + out;
    auto r = RunFilter(*ledger_->engine().snapshot(), kNow, o);
    ASSERT_FALSE(r) << out;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(r.error().message.find("in.jsonl"), std::string::npos) << r.error().message;
    FilterOptions rep = o;
    rep.out_path = dir_ + "/out.jsonl";
    rep.report_path = dir_ + out;
    EXPECT_FALSE(RunFilter(*ledger_->engine().snapshot(), kNow, rep)) << out;
    EXPECT_EQ(Read(dir_ + "/in.jsonl"), manifest);
  }
  // A temporary left by a killed run (a pid that no longer exists) is removed; a live one not.
  std::ofstream(dir_ + "/out.jsonl.tmp-999999999") << "partial";
  std::ofstream(dir_ + "/out.jsonl.tmp-1") << "pid 1 is alive";
  FilterOptions o;
  o.purpose = "service.delivery";
  o.in_path = dir_ + "/in.jsonl";
  o.out_path = dir_ + "/out.jsonl";
  o.report_path = dir_ + "/report.json";
  auto r = RunFilter(*ledger_->engine().snapshot(), kNow, o);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_FALSE(fs::exists(dir_ + "/out.jsonl.tmp-999999999"));
  EXPECT_TRUE(fs::exists(dir_ + "/out.jsonl.tmp-1"));
  EXPECT_NE(Read(dir_ + "/report.json").find("\"kept\":1"), std::string::npos);
  // A report that cannot be written: nothing is renamed into place.
  fs::remove(dir_ + "/out.jsonl");
  o.report_path = dir_ + "/no-such-dir/report.json";
  EXPECT_FALSE(RunFilter(*ledger_->engine().snapshot(), kNow, o));
  EXPECT_FALSE(fs::exists(dir_ + "/out.jsonl"));
}

// Limits checked up front: shards past the descriptor limit and too many threads are refused
// before any file is created; names of datasets and models are a documented character set.
TEST_F(FilterTest, ResourceLimitsAreCheckedUpFrontAndNothingIsLeftBehind) {
  const std::string manifest = "{\"id\":\"a\",\"category\":\"content.audio\"}\n";
  rlimit old{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &old), 0);
  rlimit low = old;
  low.rlim_cur = 128;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  FilterOptions o;
  o.purpose = "service.delivery";
  o.shards = 2000;
  auto r = Filter(manifest, o);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &old), 0);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(r.error().message.find("ulimit"), std::string::npos) << r.error().message;
  FilterOptions t;
  t.purpose = "service.delivery";
  t.threads = 10000;
  auto tr = Filter(manifest, t);
  ASSERT_FALSE(tr);
  EXPECT_EQ(tr.error().code, ErrorCode::kInvalidArgument);
  size_t left = 0;
  for (const auto& e : fs::directory_iterator(dir_)) {
    left += e.path().filename().string().find(".tmp-") != std::string::npos;
  }
  EXPECT_EQ(left, 0u);
  const std::vector<std::string> bad_names = {"", "two\nlines", "with space", std::string(129, 'x'),
                                              "\xc3\xa9"};
  for (const std::string& bad : bad_names) {
    DatasetRegistration d;
    d.name = bad;
    d.purpose = "service.delivery";
    auto pos = ledger_->RegisterDataset(d);
    ASSERT_FALSE(pos) << bad;
    EXPECT_EQ(pos.error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(ledger_->RegisterModel(bad, {"x"}).error().code, ErrorCode::kInvalidArgument);
  }
}

TEST(LineageTest, DatasetsAndModelsSurviveReplay) {
  std::string dir = (fs::temp_directory_path() / ("assent-lineage-" + std::to_string(::getpid()))).string();
  fs::remove_all(dir);
  {
    LedgerOptions lo;
    lo.data_dir = dir;
    auto l = *Ledger::Open(lo);
    DatasetRegistration d;
    d.name = "ds";
    d.purpose = "ai_training.first_party";
    d.subjects = {"a", "b", "c"};
    d.accounts = {"x"};
    d.shards = {{"f.00-of-2", 2, {"a", "b"}}, {"f.01-of-2", 1, {"c"}}};
    ASSERT_TRUE(l->RegisterDataset(d));
    DatasetRegistration e = d;
    e.name = "ds2";
    e.subjects = {"c", "d"};
    e.shards.clear();
    ASSERT_TRUE(l->RegisterDataset(e));
    ASSERT_TRUE(l->RegisterModel("m", {"ds", "ds2"}));
  }
  LedgerOptions lo;
  lo.data_dir = dir;
  lo.read_only = true;
  auto l = Ledger::Open(lo);
  ASSERT_TRUE(l) << l.error().message;
  // Datasets name parties by pseudonym, never by plain id.
  auto c = (*l)->PseudonymOf(PartyKind::kSubject, "c");
  ASSERT_TRUE(c);
  (*l)->WithLineage([&](const Lineage& lin) {
    ASSERT_EQ(lin.datasets.size(), 2u);
    EXPECT_EQ(lin.subjects.size(), 4u);
    EXPECT_FALSE(lin.subjects.Find("c"));
    EXPECT_EQ(lin.datasets[1].subjects.cardinality(), 2u);
    EXPECT_TRUE(lin.datasets[1].subjects.contains(*lin.subjects.Find(*c)));
    EXPECT_TRUE(lin.datasets[0].shards[1].subjects.contains(*lin.subjects.Find(*c)));
    ASSERT_EQ(lin.models.size(), 1u);
    EXPECT_EQ(lin.models[0].datasets.size(), 2u);
  });
  fs::remove_all(dir);
}

}  // namespace
}  // namespace assent

#include "filter/snapshot.h"

namespace assent {
namespace {

TEST_F(FilterTest, FilteringFromASnapshotEqualsFilteringFromTheLedger) {
  std::mt19937 rng(11);
  std::vector<ConsentEvent> records;
  for (int i = 0; i < 400; ++i) {
    ConsentEvent c;
    c.party = "u" + std::to_string(rng() % 50);
    c.action = rng() % 2 ? Action::kGrant : Action::kWithdraw;
    c.categories = {rng() % 2 ? "service_generated" : "service_generated.telemetry"};
    c.purposes = {rng() % 2 ? "ai_training.first_party" : "product_development"};
    c.at = kNow - 100000 + i;
    records.push_back(c);
  }
  ASSERT_TRUE(ledger_->RecordConsents(records));
  std::string manifest;
  for (int i = 0; i < 3000; ++i) {
    manifest += R"({"id":"m)" + std::to_string(i) + R"(","category":"service_generated.)" +
                (i % 3 ? "telemetry" : "diagnostics") + R"(","subjects":["u)" +
                std::to_string(rng() % 60) + "\"]}\n";
  }
  const std::string snap = dir_ + "/state.snap";
  auto info = WriteSnapshot(*ledger_, 0, snap);
  ASSERT_TRUE(info) << info.error().message;
  EXPECT_EQ(info->events, 400u);
  SnapshotInfo loaded;
  auto engine = LoadSnapshot(snap, &loaded, [] { return kNow; });
  ASSERT_TRUE(engine) << engine.error().message;
  EXPECT_EQ(loaded.sha256, info->sha256);
  EXPECT_EQ((*engine)->snapshot()->position(), ledger_->position());
  for (const char* purpose : {"ai_training.first_party", "product_development.analytics"}) {
    FilterOptions o;
    o.purpose = purpose;
    auto from_ledger = Filter(manifest, o);
    ASSERT_TRUE(from_ledger);
    std::string ledger_out = Read(dir_ + "/out.jsonl");
    o.in_path = dir_ + "/in.jsonl";
    o.out_path = dir_ + "/out.jsonl";
    auto from_snapshot = RunFilter(*(*engine)->snapshot(), kNow, o);
    ASSERT_TRUE(from_snapshot);
    EXPECT_EQ(Read(dir_ + "/out.jsonl"), ledger_out) << purpose;
    EXPECT_EQ(from_snapshot->excluded_by_reason, from_ledger->excluded_by_reason);
    EXPECT_EQ(from_snapshot->position, from_ledger->position);
  }
  // A changed byte is detected.
  {
    std::string bytes = Read(snap);
    bytes[bytes.size() / 2] ^= 1;
    std::ofstream(snap, std::ios::binary | std::ios::trunc) << bytes;
  }
  SnapshotInfo ignored;
  auto tampered = LoadSnapshot(snap, &ignored);
  ASSERT_FALSE(tampered);
  EXPECT_EQ(tampered.error().code, ErrorCode::kDataLoss);
}

// The hash covers the header too (a stale snapshot claiming a later position is refused), a
// snapshot names its ledger, and only its own ledger records a dataset from it, never beyond
// the head.
TEST_F(FilterTest, ASnapshotIsBoundToItsLedgerAndPosition) {
  ConsentEvent w;
  w.party = "u1";
  w.action = Action::kWithdraw;
  w.categories = {"service_generated"};
  w.purposes = {"ai_training.first_party"};
  ASSERT_TRUE(ledger_->RecordConsent(w));
  const std::string snap = dir_ + "/state.snap";
  auto info = WriteSnapshot(*ledger_, 0, snap);
  ASSERT_TRUE(info) << info.error().message;
  const std::string bytes = Read(snap);
  const std::string position = "\"position\":" + std::to_string(info->position) + ",";
  ASSERT_NE(bytes.find(position), std::string::npos) << bytes.substr(0, 200);
  std::string forged = bytes;
  forged.replace(forged.find(position), position.size(), "\"position\":999999,");
  std::ofstream(snap, std::ios::binary | std::ios::trunc) << forged;
  SnapshotInfo loaded;
  auto tampered = LoadSnapshot(snap, &loaded);
  ASSERT_FALSE(tampered);
  EXPECT_EQ(tampered.error().code, ErrorCode::kDataLoss);
  // A format-1 file (header outside the hash) is refused with what to do.
  std::string v1 = bytes;
  v1.replace(0, 18, "ASSENT-SNAPSHOT 1\n");
  std::ofstream(snap, std::ios::binary | std::ios::trunc) << v1;
  auto old = LoadSnapshot(snap, &loaded);
  ASSERT_FALSE(old);
  EXPECT_NE(old.error().message.find("assent snapshot"), std::string::npos);
  // Its own ledger accepts it (and says how far behind it is); another ledger does not.
  std::ofstream(snap, std::ios::binary | std::ios::trunc) << bytes;
  ASSERT_TRUE(LoadSnapshot(snap, &loaded));
  uint64_t behind = 99;
  EXPECT_TRUE(CheckSnapshotFor(*ledger_, loaded, &behind));
  EXPECT_EQ(behind, 0u);
  ASSERT_TRUE(ledger_->RecordConsent(w));
  EXPECT_TRUE(CheckSnapshotFor(*ledger_, loaded, &behind));
  EXPECT_EQ(behind, 1u);
  LedgerOptions lo;
  lo.in_memory = true;
  lo.clock = [] { return kNow; };
  auto other = std::move(*Ledger::Open(lo));
  ASSERT_TRUE(other->PublishTerms(
      Read(std::string(ASSENT_SOURCE_DIR) + "/examples/terms/example-meetings-2023-08-07.yaml"),
      "v2", {.backfill = true}));
  auto foreign = CheckSnapshotFor(*other, loaded, &behind);
  ASSERT_FALSE(foreign);
  EXPECT_EQ(foreign.error().code, ErrorCode::kFailedPrecondition);
  // An erased party stays erased for a stateless worker deciding from a snapshot.
  ASSERT_TRUE(ledger_->EraseParty(PartyKind::kSubject, "u1"));
  auto after = WriteSnapshot(*ledger_, 0, snap);
  ASSERT_TRUE(after) << after.error().message;
  auto worker = LoadSnapshot(snap, &loaded, [] { return kNow; });
  ASSERT_TRUE(worker) << worker.error().message;
  std::string_view who[] = {"u1"};
  DecisionRequest q;
  q.category = "service_generated.telemetry";
  q.purpose = "ai_training.first_party";
  q.subjects = who;
  auto d0 = (*worker)->snapshot()->Decide(q, kNow);
  ASSERT_TRUE(d0);
  EXPECT_EQ(d0->reason, Reason::kErased);
  // A dataset decided beyond the head is refused whatever its source.
  DatasetRegistration d;
  d.name = "future";
  d.purpose = "ai_training.first_party";
  d.ledger_position = ledger_->position() + 1000;
  auto pos = ledger_->RegisterDataset(d);
  ASSERT_FALSE(pos);
  EXPECT_EQ(pos.error().code, ErrorCode::kFailedPrecondition);
}

}  // namespace
}  // namespace assent
