#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "filter/filter_test_util.h"

namespace assent::filter_test {
namespace {

TEST_F(FilterTest, AgreesItemByItemWithAStraightforwardImplementation) {
  const std::vector<std::string> categories = {"content.audio", "content.video", "content.chat",
                                               "content.transcript", "content",
                                               "service_generated.telemetry", "content.nope"};
  const std::vector<std::string> purposes = {"product_development.quality_review",
                                             "product_development.analytics", "marketing",
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
    // The result depends neither on the threads nor on where blocks end (small blocks put
    // many lines across their boundaries).
    for (auto [threads, block] :
         {std::pair{1, size_t{2} << 20}, {2, size_t{4096}}, {3, size_t{333}}, {40, size_t{2} << 20}}) {
      FilterOptions o;
      o.purpose = purpose;
      o.threads = threads;
      o.block_bytes = block;
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
  // Killed once it has written part of its output (its temporary file holds kept lines), not
  // before it opened it — else the test would prove nothing.
  const std::string tmp = dir_ + "/kept.jsonl.tmp-" + std::to_string(pid);
  bool writing = false;
  for (int i = 0; i < 2000 && !writing; ++i) {
    std::error_code ec;
    writing = fs::exists(tmp, ec) && fs::file_size(tmp, ec) > 0;
    if (!writing) ::usleep(5 * 1000);
  }
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(writing) << "the filter never wrote its temporary output";
  ASSERT_TRUE(WIFSIGNALED(status)) << "the filter finished before it could be killed";
  EXPECT_FALSE(fs::exists(dir_ + "/kept.jsonl"));
}

}  // namespace
}  // namespace assent::filter_test
