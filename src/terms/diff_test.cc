#include "terms/diff.h"

#include <gtest/gtest.h>

namespace assent {
namespace {

std::shared_ptr<const Terms> Make(const std::string& version, const std::string& rules,
                                  const std::string& chat = "Chat.",
                                  const std::string& clause = "Clause one.") {
  std::string yaml = "terms: t\nversion: \"" + version +
                     "\"\neffective: \"2023-0" + version + "-01T00:00:00Z\"\n"
                     "clauses:\n  - {id: \"1\", text: \"" + clause + "\"}\n"
                     "categories:\n  content:\n    description: C.\n    children:\n"
                     "      chat: {description: \"" + chat + "\"}\n"
                     "purposes:\n  train: {description: T.}\nrules:\n" + rules;
  auto t = CompileTerms(yaml, "v" + version);
  EXPECT_TRUE(t) << (t ? "" : t.error().message);
  return t ? *t : nullptr;
}

const std::string kConsent =
    "  - {id: r, summary: s, categories: [content], purposes: [train], basis: consent, "
    "consent_from: account_and_subjects, consent_valid_for: P30D, clauses: [\"1\"]}\n";

TEST(DiffTest, NothingChangedIsNotLoosened) {
  auto d = DiffTerms(*Make("1", kConsent), *Make("2", kConsent));
  EXPECT_TRUE(d.pairs.empty());
  EXPECT_FALSE(d.loosened());
}

TEST(DiffTest, BasisChangesAreTightenedOrLoosened) {
  std::string necessary =
      "  - {id: r, categories: [content], purposes: [train], basis: necessary, clauses: [\"1\"]}\n";
  auto d = DiffTerms(*Make("1", kConsent), *Make("2", necessary));
  ASSERT_FALSE(d.pairs.empty());
  EXPECT_TRUE(d.loosened());
  EXPECT_EQ(d.pairs[0].why, "basis");
  auto back = DiffTerms(*Make("1", necessary), *Make("2", kConsent));
  EXPECT_FALSE(back.loosened());
  EXPECT_EQ(back.pairs[0].change, Change::kTightened);
}

TEST(DiffTest, WeakerConsentFromIsLoosened) {
  std::string subjects = kConsent;
  subjects.replace(subjects.find("account_and_subjects"), 20, "subjects");
  auto d = DiffTerms(*Make("1", kConsent), *Make("2", subjects));
  ASSERT_FALSE(d.pairs.empty());
  EXPECT_EQ(d.pairs[0].why, "consent_from");
  EXPECT_TRUE(d.loosened());
}

TEST(DiffTest, LongerValidityIsLoosened) {
  std::string longer = kConsent;
  longer.replace(longer.find("P30D"), 4, "P90D");
  auto d = DiffTerms(*Make("1", kConsent), *Make("2", longer));
  ASSERT_FALSE(d.pairs.empty());
  EXPECT_EQ(d.pairs[0].why, "consent_valid_for");
  EXPECT_TRUE(d.loosened());
}

TEST(DiffTest, ReportsRewordedClausesAndRedefinedCategories) {
  auto d = DiffTerms(*Make("1", kConsent), *Make("2", kConsent, "Chat and channels.", "New text."));
  EXPECT_EQ(d.clauses_reworded, std::vector<std::string>{"1"});
  EXPECT_EQ(d.categories_redefined, std::vector<std::string>{"content.chat"});
  EXPECT_FALSE(d.loosened());
}

}  // namespace
}  // namespace assent
