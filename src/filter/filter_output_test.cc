#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "filter/filter_test_util.h"
#include "filter/impact.h"
#include "ledger/lineage.h"

namespace assent::filter_test {
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
  w.rule = "service-generated-for-ai-training";
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
// A plain manifest is mapped rather than copied, so a file changed while the run reads it
// could give the hash and the parse different bytes: a change of size or modification time
// (appended, truncated away under the mapping, rewritten in place) fails the run, writes
// nothing, and never crashes it. The change is made from the progress callback, after the
// first block.
TEST_F(FilterTest, AManifestChangedWhileItIsReadFailsTheRun) {
  std::string manifest;
  for (int i = 0; i < 20'000; ++i) {
    manifest += R"({"id":"m)" + std::to_string(i) + R"(","category":"content.audio","subjects":["u1"]})" "\n";
  }
  const std::string in = dir_ + "/in.jsonl";
  const std::vector<std::function<void()>> changes = {
      [&] { std::ofstream(in, std::ios::app) << R"({"id":"late","category":"content.audio"})" "\n"; },
      [&] { fs::resize_file(in, 5'000); },
      [&] {
        std::fstream f(in, std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(static_cast<std::streamoff>(manifest.size() - 20)) << "X";
        f.close();
        const auto later = fs::last_write_time(in) + std::chrono::seconds(2);
        fs::last_write_time(in, later);  // however coarse the file system's clock
      },
  };
  for (size_t k = 0; k < changes.size(); ++k) {
    for (int threads : {1, 2}) {
      bool changed = false;
      FilterOptions o;
      o.threads = threads;
      o.block_bytes = 64 << 10;
      o.progress = [&](uint64_t, uint64_t) {
        if (!changed) changes[k]();
        changed = true;
      };
      auto r = Filter(manifest, o);
      ASSERT_TRUE(changed);
      ASSERT_FALSE(r) << "change " << k << ", threads " << threads;
      EXPECT_NE(r.error().message.find("changed while it was read"), std::string::npos)
          << "change " << k << ", threads " << threads << ": " << r.error().message;
      EXPECT_FALSE(fs::exists(dir_ + "/out.jsonl"));
    }
  }
  // Unchanged, the same manifest goes through, and progress ends at its size.
  std::pair<uint64_t, uint64_t> last;
  FilterOptions o;
  o.progress = [&last](uint64_t done, uint64_t total) { last = {done, total}; };
  auto ok = Filter(manifest, o);
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->items, 20'000u);
  EXPECT_EQ(last, std::make_pair(uint64_t{manifest.size()}, uint64_t{manifest.size()}));
}

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

// Durable runs (what `filter --dataset` asks for) sync each file before its rename and the
// directories after: the same bytes as any run, plain or compressed, sharded or not, with the
// report, and no temporary left. A report that cannot be renamed into place (a directory holds
// its name) fails the run with an error that says the outputs are in place, as they are.
TEST_F(FilterTest, DurableRunsWriteTheSameFilesAndSayWhatIsInPlace) {
  std::string manifest;
  for (int i = 0; i < 200; ++i) {
    manifest += "{\"id\":\"i" + std::to_string(i) + "\",\"category\":\"content.audio\",\"subjects\":[\"s" +
                std::to_string(i % 7) + "\"]}\n";
  }
  std::ofstream(dir_ + "/in.jsonl", std::ios::binary) << manifest;
  for (const std::string name : {"-out.jsonl", "-out.jsonl.gz", "-out.jsonl.zst"}) {
    for (int shards : {0, 3}) {
      FilterOptions o;
      o.purpose = "service.delivery";
      o.in_path = dir_ + "/in.jsonl";
      o.shards = shards;
      o.out_path = dir_ + "/plain" + name;
      o.report_path = dir_ + "/plain.json";
      auto plain = RunFilter(*ledger_->engine().snapshot(), kNow, o);
      ASSERT_TRUE(plain) << plain.error().message;
      o.durable = true;
      o.out_path = dir_ + "/durable" + name;
      o.report_path = dir_ + "/durable.json";
      auto durable = RunFilter(*ledger_->engine().snapshot(), kNow, o);
      ASSERT_TRUE(durable) << durable.error().message;
      EXPECT_EQ(durable->output_sha256, plain->output_sha256) << name << " shards " << shards;
      EXPECT_EQ(durable->kept, 200u);
      for (int s = 0; s < std::max(shards, 1); ++s) {
        const std::string a = shards ? ShardFileName(dir_ + "/plain" + name, s, shards) : dir_ + "/plain" + name;
        const std::string b = shards ? ShardFileName(dir_ + "/durable" + name, s, shards) : dir_ + "/durable" + name;
        EXPECT_EQ(Read(b), Read(a)) << b;
      }
      EXPECT_NE(Read(dir_ + "/durable.json").find("\"kept\":200"), std::string::npos);
    }
  }
  for (const auto& e : fs::directory_iterator(dir_)) {
    EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos) << e.path();
  }
  fs::create_directories(dir_ + "/taken.json/inside");
  FilterOptions o;
  o.purpose = "service.delivery";
  o.in_path = dir_ + "/in.jsonl";
  o.out_path = dir_ + "/kept.jsonl";
  o.report_path = dir_ + "/taken.json";
  o.durable = true;
  auto r = RunFilter(*ledger_->engine().snapshot(), kNow, o);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().message.starts_with(kOutputsInPlace)) << r.error().message;
  EXPECT_EQ(Read(dir_ + "/kept.jsonl"), manifest);
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
    ASSERT_TRUE(l->PublishTerms(
        Read(std::string(ASSENT_SOURCE_DIR) + "/examples/terms/example-meetings-2023-08-11.yaml"),
        "v3", {.backfill = true}));
    DatasetRegistration d;
    d.name = "ds";
    d.purpose = "ai_training.first_party";
    d.ledger_position = l->position();
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
}  // namespace assent::filter_test
