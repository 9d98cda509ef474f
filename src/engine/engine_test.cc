#include "assent/engine.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "engine/test_terms.h"

namespace assent {
namespace {

const Timestamp kT0 = *ParseTime("2023-09-01T00:00:00Z");

ConsentEvent Grant(uint64_t pos, const std::string& subject, const std::string& category,
                   Action action = Action::kGrant) {
  ConsentEvent e;
  e.position = pos;
  e.party = subject;
  e.action = action;
  e.categories = {category};
  e.purposes = {"ai_training.first_party"};
  e.at = kT0 + static_cast<Timestamp>(pos);
  return e;
}

Result<Decision> Ask(const Snapshot& s, std::string_view subject,
                     std::string_view category = "content.chat") {
  static thread_local std::string_view subjects[1];
  subjects[0] = subject;
  DecisionRequest q;
  q.category = category;
  q.purpose = "ai_training.first_party";
  q.subjects = subjects;
  return s.Decide(q, kT0 + 1'000'000'000);
}

TEST(EngineTest, BatchIsAllOrNothing) {
  Engine engine(testing_terms::BaseTerms());
  std::vector<ConsentEvent> batch = {Grant(1, "u1", "content.chat"),
                                     Grant(2, "u2", "content.nope")};
  size_t failed = 99;
  auto st = engine.ApplyBatch(batch, &failed);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(failed, 1u);
  auto s = engine.snapshot();
  EXPECT_EQ(s->position(), 0u);
  EXPECT_EQ(s->consent_events(), 0u);
  EXPECT_EQ(Ask(*s, "u1")->reason, Reason::kNoConsent);
}

TEST(EngineTest, RefusesPositionsAndTimesGoingBackwards) {
  Engine engine(testing_terms::BaseTerms());
  ASSERT_TRUE(engine.Apply(Grant(5, "u1", "content.chat")));
  auto same = engine.Apply(Grant(5, "u2", "content.chat"));
  ASSERT_FALSE(same);
  EXPECT_NE(same.error().message.find("does not follow"), std::string::npos);
  ConsentEvent earlier = Grant(6, "u2", "content.chat");
  earlier.at = kT0 - 10;
  EXPECT_FALSE(engine.Apply(earlier));
  ConsentEvent empty_id = Grant(7, "", "content.chat");
  EXPECT_FALSE(engine.Apply(empty_id));
  EXPECT_EQ(engine.snapshot()->position(), 5u);
}

TEST(EngineTest, SnapshotsAreIsolatedFromLaterEvents) {
  Engine engine(testing_terms::BaseTerms());
  ASSERT_TRUE(engine.Apply(Grant(1, "u1", "content.chat")));
  auto before = engine.snapshot();
  ASSERT_TRUE(engine.Apply(Grant(2, "u1", "content.chat", Action::kWithdraw)));
  EXPECT_TRUE(Ask(*before, "u1")->allow);
  EXPECT_EQ(Ask(*engine.snapshot(), "u1")->reason, Reason::kWithdrawn);
}

TEST(EngineTest, EventsOfReturnsHistoryInOrder) {
  Engine engine(testing_terms::BaseTerms());
  ASSERT_TRUE(engine.Apply(Grant(1, "u1", "content.chat")));
  ASSERT_TRUE(engine.Apply(Grant(2, "u2", "content.audio")));
  ASSERT_TRUE(engine.Apply(Grant(3, "u1", "content", Action::kWithdraw)));
  auto h = engine.snapshot()->EventsOf(PartyKind::kSubject, "u1");
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[0].position, 1u);
  EXPECT_EQ(h[1].action, Action::kWithdraw);
  EXPECT_EQ(h[1].categories, std::vector<std::string>{"content"});
  EXPECT_EQ(h[1].terms_version, "2023-08-07");
  EXPECT_EQ(engine.snapshot()->parties(), 2u);
}

TEST(EngineTest, DecisionJsonHasTheDesignShape) {
  Engine engine(testing_terms::BaseTerms());
  ASSERT_TRUE(engine.Apply(Grant(12, "u1", "content.chat")));
  ASSERT_TRUE(engine.Apply(Grant(40, "u2", "content.chat", Action::kWithdraw)));
  std::string_view subjects[] = {"u1", "u2"};
  DecisionRequest q{"content.chat", "ai_training.first_party", std::nullopt, subjects,
                    *ParseTime("2023-10-01T00:00:00Z")};
  auto d = engine.snapshot()->Decide(q, 0);
  ASSERT_TRUE(d);
  EXPECT_EQ(DecisionToJson(*d),
            R"({"decision":"deny","reason":"withdrawn","basis":"consent","rule":"content-ai-training",)"
            R"("clauses":["10.4"],"terms":"example-meetings@2023-08-07","at":"2023-10-01T00:00:00Z",)"
            R"("position":40,"parties":[{"subject":"u1","state":"granted","event":12},)"
            R"({"subject":"u2","state":"withdrawn","event":40}]})");
}

TEST(EngineTest, PublishTermsKeepsStateAndAdvancesPosition) {
  Engine engine(testing_terms::BaseTerms());
  ASSERT_TRUE(engine.Apply(Grant(1, "u1", "content.chat")));
  auto base = engine.snapshot()->terms().version_ptr(0);
  std::string later = base->source();
  later.replace(later.find("2023-08-07T00:00:00Z"), 20, "2023-09-01T00:10:00Z");
  later.replace(later.find("version: \"2023-08-07\""), 21, "version: \"2023-09-01\"");
  auto t2 = CompileTerms(later, "later");
  ASSERT_TRUE(t2);
  ASSERT_TRUE(engine.PublishTerms(*t2, 2));
  auto s = engine.snapshot();
  EXPECT_EQ(s->position(), 2u);
  EXPECT_EQ(s->terms().size(), 2);
  auto d = Ask(*s, "u1");
  ASSERT_TRUE(d);
  EXPECT_TRUE(d->allow);  // same meaning: the grant carries over
  EXPECT_EQ(d->terms->version(), "2023-09-01");
  EXPECT_FALSE(engine.PublishTerms(*t2, 3));  // not later than the latest
  EXPECT_FALSE(engine.AdvancePosition(2));
  EXPECT_TRUE(engine.AdvancePosition(3));
}

TEST(EngineTest, ReadersRunWhileAWriterApplies) {
  Engine engine(testing_terms::BaseTerms());
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> decisions{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&] {
      while (!stop.load()) {
        auto s = engine.snapshot();
        auto d = Ask(*s, "u" + std::to_string(decisions.load() % 50));
        ASSERT_TRUE(d);
        // A subject's latest event at position p is a grant iff p is odd: check consistency.
        for (const auto& p : d->parties) {
          if (p.event) {
            EXPECT_EQ(p.state == PartyState::kGranted, p.event % 2 == 1);
          }
        }
        decisions.fetch_add(1);
      }
    });
  }
  for (uint64_t pos = 1; pos <= 2000; ++pos) {
    ASSERT_TRUE(engine.Apply(Grant(pos, "u" + std::to_string(pos % 50), "content.chat",
                                   pos % 2 ? Action::kGrant : Action::kWithdraw)));
  }
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_GT(decisions.load(), 0u);
  EXPECT_EQ(engine.snapshot()->position(), 2000u);
}

}  // namespace
}  // namespace assent

namespace assent {
namespace {

TEST(EngineTest, DecideBatchAgreesWithDecide) {
  Engine engine(testing_terms::BaseTerms());
  std::vector<ConsentEvent> events;
  for (uint64_t pos = 1; pos <= 3000; ++pos) {
    events.push_back(Grant(pos, "u" + std::to_string(pos * 7 % 500),
                           pos % 3 ? "content.chat" : "content",
                           pos % 4 ? Action::kGrant : Action::kWithdraw));
  }
  ASSERT_TRUE(engine.ApplyBatch(events));
  auto snap = engine.snapshot();
  std::vector<std::string> ids;
  for (int i = 0; i < 600; ++i) ids.push_back("u" + std::to_string(i));
  std::vector<std::string_view> views(ids.begin(), ids.end());
  std::vector<DecisionRequest> requests;
  const char* categories[] = {"content.chat", "content.audio", "content.nope", "content"};
  for (size_t i = 0; i + 3 < views.size(); ++i) {
    DecisionRequest q;
    q.category = categories[i % 4];
    q.purpose = i % 5 ? "ai_training.first_party" : "service.delivery";
    q.subjects = std::span<const std::string_view>(&views[i], i % 3 + 1);
    if (i % 7 == 0) q.account = "a1";
    requests.push_back(q);
  }
  std::vector<Result<Decision>> batch;
  snap->DecideBatch(requests, kT0 + 1'000'000'000, &batch);
  ASSERT_EQ(batch.size(), requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    auto one = snap->Decide(requests[i], kT0 + 1'000'000'000);
    ASSERT_EQ(one.has_value(), batch[i].has_value()) << i;
    if (!one) {
      EXPECT_EQ(one.error().message, batch[i].error().message);
      continue;
    }
    EXPECT_EQ(DecisionToJson(*one), DecisionToJson(*batch[i])) << i;
  }
  // The lean path (the gate's): the same verdicts, without the parties.
  std::vector<Result<Decision>> lean;
  snap->DecideBatch(requests, kT0 + 1'000'000'000, &lean, /*with_parties=*/false);
  ASSERT_EQ(lean.size(), batch.size());
  for (size_t i = 0; i < lean.size(); ++i) {
    ASSERT_EQ(lean[i].has_value(), batch[i].has_value()) << i;
    if (!lean[i]) continue;
    EXPECT_EQ(lean[i]->allow, batch[i]->allow) << i;
    EXPECT_EQ(lean[i]->reason, batch[i]->reason) << i;
    EXPECT_EQ(lean[i]->rule, batch[i]->rule) << i;
    EXPECT_EQ(lean[i]->position, batch[i]->position) << i;
    EXPECT_TRUE(lean[i]->parties.empty()) << i;
  }
}

}  // namespace
}  // namespace assent
