#include "engine/consent_view.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace assent {
namespace {

const Timestamp kNow = *ParseTime("2024-01-01T00:00:00Z");

std::shared_ptr<const TermsSet> ExampleTerms() {
  std::ifstream in(std::string(ASSENT_SOURCE_DIR) +
                   "/examples/terms/example-meetings-2023-08-11.yaml");
  std::stringstream ss;
  ss << in.rdbuf();
  auto t = CompileTerms(ss.str(), "example");
  return *TermsSet::Create({*t});
}

ConsentEvent Event(uint64_t position, PartyKind kind, const std::string& party, Action action,
                   const std::string& rule, std::vector<std::string> categories,
                   std::vector<std::string> purposes) {
  ConsentEvent e;
  e.position = position;
  e.party_kind = kind;
  e.party = party;
  e.action = action;
  e.rule = rule;
  e.categories = std::move(categories);
  e.purposes = std::move(purposes);
  e.at = kNow - 1000 + static_cast<Timestamp>(position);
  e.terms_version = "2023-08-11";
  return e;
}

const RuleView& Find(const std::vector<RuleView>& views, const std::string& id) {
  for (const auto& v : views) {
    if (v.rule->id == id) return v;
  }
  ADD_FAILURE() << "no rule " << id;
  return views.front();
}

TEST(ConsentViewTest, EveryRuleInOrderWithWhomItAsksAndTheStateOfItsPairs) {
  Engine engine(ExampleTerms(), [] { return kNow; });
  const Terms& t = engine.snapshot()->terms().version(0);
  auto views = ViewRules(*engine.snapshot(), t, PartyKind::kSubject, "u1", kNow);
  ASSERT_EQ(views.size(), t.rules().size());
  for (size_t i = 0; i < views.size(); ++i) EXPECT_EQ(views[i].rule, &t.rules()[i]);
  const RuleView& necessary = Find(views, "content-for-service");
  EXPECT_FALSE(necessary.asks);
  EXPECT_TRUE(necessary.pairs.empty());
  const RuleView& review = Find(views, "meeting-quality-review");
  EXPECT_TRUE(review.asks);
  EXPECT_TRUE(review.for_party);
  EXPECT_EQ(review.state, "none");
  EXPECT_EQ(review.event, 0u);
  // Four categories x one purpose, every pair decided by this rule.
  EXPECT_EQ(review.pairs.size(), 4u);
  // An objectable rule that asks subjects: not objected to, it reads "none" too.
  EXPECT_EQ(Find(views, "service-generated-for-marketing").state, "none");
}

TEST(ConsentViewTest, PairsThatDisagreeReadMixedAndTheLatestEventIsNamed) {
  Engine engine(ExampleTerms(), [] { return kNow; });
  ASSERT_TRUE(engine.Apply(Event(1, PartyKind::kSubject, "u1", Action::kGrant,
                                 "meeting-quality-review", {"content.audio"},
                                 {"product_development.quality_review"})));
  const Terms& t = engine.snapshot()->terms().version(0);
  auto views = ViewRules(*engine.snapshot(), t, PartyKind::kSubject, "u1", kNow);
  const RuleView& review = Find(views, "meeting-quality-review");
  EXPECT_EQ(review.state, "mixed");  // audio granted, video and the rest not
  EXPECT_EQ(review.event, 1u);
  ASSERT_TRUE(engine.Apply(Event(2, PartyKind::kSubject, "u1", Action::kGrant,
                                 "meeting-quality-review",
                                 {"content.audio", "content.video", "content.screen_share",
                                  "content.transcript"},
                                 {"product_development.quality_review"})));
  views = ViewRules(*engine.snapshot(), t, PartyKind::kSubject, "u1", kNow);
  EXPECT_EQ(Find(views, "meeting-quality-review").state, "granted");
  EXPECT_EQ(Find(views, "meeting-quality-review").event, 2u);
  // Another person's view is untouched.
  views = ViewRules(*engine.snapshot(), t, PartyKind::kSubject, "u2", kNow);
  EXPECT_EQ(Find(views, "meeting-quality-review").state, "none");
}

TEST(ConsentViewTest, GpcObjectsUnderObjectableRulesCoveringGpcPurposesOnlyOnce) {
  Engine engine(ExampleTerms(), [] { return kNow; });
  const Terms& t = engine.snapshot()->terms().version(0);
  auto events = GpcObjections(*engine.snapshot(), t, "u1", kNow);
  // Only marketing is marked gpc; the one objectable rule over it asks subjects.
  ASSERT_EQ(events.size(), 1u);
  const ConsentEvent& e = events[0];
  EXPECT_EQ(e.rule, "service-generated-for-marketing");
  EXPECT_EQ(e.action, Action::kWithdraw);
  EXPECT_EQ(e.method, Method::kGpc);
  EXPECT_EQ(e.party, "u1");
  EXPECT_EQ(e.purposes, std::vector<std::string>{"marketing"});
  EXPECT_EQ(e.categories, std::vector<std::string>{"service_generated.product_usage"});
  // Once objected, the signal asks for nothing more; it never grants.
  ConsentEvent recorded = e;
  recorded.position = 1;
  recorded.at = kNow - 10;
  recorded.terms_version = "2023-08-11";
  ASSERT_TRUE(engine.Apply(recorded));
  EXPECT_TRUE(GpcObjections(*engine.snapshot(), t, "u1", kNow).empty());
  EXPECT_EQ(GpcObjections(*engine.snapshot(), t, "u2", kNow).size(), 1u);
}

}  // namespace
}  // namespace assent

namespace assent {
namespace {

TEST(ConsentViewTest, AChoiceNobodysChoiceChangesIsRefusedNamingTheRule) {
  auto set = ExampleTerms();
  const Terms& t = set->version(0);
  ConsentEvent grant;
  grant.action = Action::kGrant;
  grant.categories = {"content.chat"};
  grant.purposes = {"ai_training.first_party"};
  auto st = CheckChoiceMatters(t, grant);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(st.error().message.find("rule 'no-content-training' (clause 10.4)"), std::string::npos)
      << st.error().message;
  // A withdrawal by pairs is always recorded; a grant that asks someone passes.
  ConsentEvent withdraw = grant;
  withdraw.action = Action::kWithdraw;
  EXPECT_TRUE(CheckChoiceMatters(t, withdraw));
  grant.categories = {"content.audio"};
  grant.purposes = {"product_development.quality_review"};
  EXPECT_TRUE(CheckChoiceMatters(t, grant));
  // By rule: a necessary rule is refused either way.
  ConsentEvent by_rule;
  by_rule.action = Action::kWithdraw;
  by_rule.rule = "content-for-service";
  EXPECT_FALSE(CheckChoiceMatters(t, by_rule));
}

}  // namespace
}  // namespace assent
