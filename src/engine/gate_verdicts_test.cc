// The gate's lean verdicts equal Decide's allow and reason, question by question: for parties
// with and without events, ids too long to remember, judgements evicted from a small table
// and asked again, and after erasures.
#include "engine/gate_verdicts.h"

#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <sstream>

#include "engine/test_terms.h"

namespace assent {
namespace {

constexpr Timestamp kT0 = 1'700'000'000'000'000'000;

std::string PartyId(std::mt19937& rng, bool account) {
  const uint32_t n = rng() % 300;
  std::string id = (account ? "acct-" : "u") + std::to_string(n);
  if (n % 17 == 0) id += std::string(48, 'x');  // longer than a remembered id
  return id;
}

// Asks `questions` random questions of both paths and compares them.
void Compare(const Snapshot& snap, std::mt19937& rng, int questions, size_t expected_items) {
  const Timestamp now = kT0 + 20'000'000'000;
  auto made = GateVerdicts::Make(snap, "ai_training.first_party", now, expected_items);
  ASSERT_TRUE(made) << made.error().message;
  GateVerdicts& g = **made;
  const char* categories[] = {"content.chat", "content.audio", "content.video", "content",
                              "service_generated.telemetry", "service_generated"};
  for (int i = 0; i < questions; ++i) {
    const std::string category = categories[rng() % std::size(categories)];
    std::vector<std::string> ids;
    for (int k = rng() % 4; k > 0; --k) ids.push_back(PartyId(rng, false));
    const std::vector<std::string_view> subjects(ids.begin(), ids.end());
    const std::string account = PartyId(rng, true);
    const bool with_account = rng() % 2;
    DecisionRequest q;
    q.category = category;
    q.purpose = "ai_training.first_party";
    q.subjects = subjects;
    if (with_account) q.account = account;
    const Result<Decision> want = snap.Decide(q, now);
    ASSERT_TRUE(want) << want.error().message;
    const int32_t c = g.Category(category);
    ASSERT_GE(c, 0) << category;
    const std::string_view account_view = account;
    for (int again = 0; again < 2; ++again) {  // the second time from the remembered judgements
      const GateVerdicts::Verdict got =
          g.Judge(c, with_account ? &account_view : nullptr, subjects);
      EXPECT_EQ(got.allow, want->allow) << i << " " << category;
      EXPECT_EQ(got.reason, want->reason) << i << " " << category << " " << ReasonName(got.reason)
                                          << " vs " << ReasonName(want->reason);
    }
  }
  EXPECT_EQ(g.Category("content.nope"), -1);
}

// The example terms with each rule asking other parties: the account and the subjects, the
// account alone, or the subjects (with grants expiring).
std::shared_ptr<const TermsSet> TermsAsking(const std::string& chat_from,
                                            const std::string& telemetry_from) {
  std::ifstream in(std::string(ASSENT_SOURCE_DIR) + "/test/cases/terms/base.yaml");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  auto set = [&text](const std::string& after, const std::string& line) {
    const size_t at = text.find(after);
    if (at != std::string::npos) text.insert(text.find('\n', at) + 1, line);
  };
  text.replace(text.find("    consent_from: subjects\n"), 27,
               "    consent_from: " + chat_from + "\n    consent_valid_for: PT1S\n");
  set("    basis: objectable", "    consent_from: " + telemetry_from + "\n");
  auto t = CompileTerms(text, "base.yaml");
  EXPECT_TRUE(t) << t.error().message;
  return *TermsSet::Create({*t});
}

class GateVerdictsTest : public ::testing::TestWithParam<std::pair<const char*, const char*>> {};

TEST_P(GateVerdictsTest, EqualDecideForEveryQuestion) {
  Engine engine(TermsAsking(GetParam().first, GetParam().second));
  std::mt19937 rng(11);
  std::vector<ConsentEvent> events;
  const char* scopes[] = {"content.chat", "content", "content.audio", "service_generated"};
  for (uint64_t pos = 1; pos <= 2000; ++pos) {
    ConsentEvent e;
    e.position = pos;
    e.party_kind = rng() % 4 ? PartyKind::kSubject : PartyKind::kAccount;
    e.party = PartyId(rng, e.party_kind == PartyKind::kAccount);
    e.action = rng() % 3 ? Action::kGrant : Action::kWithdraw;
    e.categories = {scopes[rng() % std::size(scopes)]};
    e.purposes = {rng() % 2 ? "ai_training.first_party" : "ai_training"};
    // Times spread over 20 s: some grants are older than consent_valid_for (expired).
    e.at = kT0 + static_cast<Timestamp>(pos) * 10'000'000;
    events.push_back(e);
  }
  ASSERT_TRUE(engine.ApplyBatch(events));
  Compare(*engine.snapshot(), rng, 4000, 1);          // a table of 256: evictions all along
  Compare(*engine.snapshot(), rng, 4000, SIZE_MAX);   // the largest table

  // Erasures: the erased parties' events are gone and every decision naming one says "erased".
  std::array<uint8_t, 16> key{};
  key[0] = 7;
  engine.SetSuppressionKey(key);
  for (int i = 0; i < 40; ++i) {
    const bool account = i % 3 == 0;
    const std::string id = PartyId(rng, account);
    const PartyKind kind = account ? PartyKind::kAccount : PartyKind::kSubject;
    ASSERT_TRUE(engine.ForgetParty(kind, id));
    ASSERT_TRUE(engine.Suppress(ErasedPartyHash(key, kind, id)));
  }
  Compare(*engine.snapshot(), rng, 4000, 1);
}

INSTANTIATE_TEST_SUITE_P(
    Parties, GateVerdictsTest,
    ::testing::Values(std::pair{"subjects", "subjects"}, std::pair{"account_and_subjects", "account"},
                      std::pair{"account", "account_and_subjects"}));

// Category names are remembered in a small table by a hash of their bytes: whatever the names
// (alike in length and ends, short, empty, many more than the table holds) and their order,
// each gets the terms' own answer.
TEST(GateVerdictsCategoryTest, EveryNameGetsTheTermsAnswerInAnyOrder) {
  Engine engine(testing_terms::BaseTerms());
  auto snap = engine.snapshot();
  const Timestamp now = kT0 + 1;
  auto made = GateVerdicts::Make(*snap, "ai_training.first_party", now);
  ASSERT_TRUE(made) << made.error().message;
  GateVerdicts& g = **made;
  const TermsSet& ts = snap->terms();
  const int32_t v = ts.VersionAt(now);
  std::vector<std::string> names;
  for (const auto& c : ts.version(v).categories()) names.push_back(c.name);
  const size_t known = names.size();
  for (std::string base : {"content.chat", "service_generated.telemetry"}) {
    for (int k = 0; k < 40; ++k) {  // the same length and ends as a known name, one byte changed
      std::string like = base;
      like[1 + k % (like.size() - 2)] ^= static_cast<char>(1 + k / (like.size() - 2));
      names.push_back(like);
    }
  }
  for (const char* odd : {"", "c", "co", "content", "content.", "x.y", "content.chat2"}) names.push_back(odd);
  for (int k = 0; k < 60; ++k) names.push_back("unknown.category." + std::to_string(k));
  std::mt19937 rng(11);
  for (int i = 0; i < 20'000; ++i) {
    const std::string& name = names[rng() % names.size()];
    const int32_t gc = ts.category_vocabulary().Find(name);
    const int32_t want = gc < 0 ? -1 : ts.LocalCategory(v, gc);
    ASSERT_EQ(g.Category(name), want) << "'" << name << "'";
  }
  for (size_t k = 0; k < known; ++k) EXPECT_GE(g.Category(names[k]), 0) << names[k];
}

TEST(GateVerdictsRefusalTest, UnknownPurposeAndNoTermsAreRefused) {
  Engine engine(testing_terms::BaseTerms());
  auto snap = engine.snapshot();
  auto unknown = GateVerdicts::Make(*snap, "ai_trainin.first_party", kT0 + 1);
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, ErrorCode::kInvalidArgument);
  auto before = GateVerdicts::Make(*snap, "ai_training.first_party", 0);
  ASSERT_FALSE(before);
  EXPECT_EQ(before.error().code, ErrorCode::kFailedPrecondition);
}

}  // namespace
}  // namespace assent
