#include <gtest/gtest.h>

#include "assent/terms.h"

namespace assent {
namespace {

const char* kGood = R"(terms: t
version: "1"
effective: "2023-01-01T00:00:00Z"
clauses:
  - {id: "1", title: One, text: "Clause one."}
categories:
  content:
    description: Content.
    children:
      chat: {description: Chat.}
purposes:
  service: {description: Service.}
  ai_training:
    description: Training.
    children:
      first_party: {description: First party.}
rules:
  - {id: svc, categories: [content], purposes: [service], basis: necessary, clauses: ["1"]}
  - id: train
    summary: Train on my chat.
    categories: [content.chat]
    purposes: [ai_training.first_party]
    basis: consent
    clauses: ["1"]
)";

// The diagnostics of `yaml` with code `code`.
std::vector<Diagnostic> Find(const std::string& yaml, const std::string& code) {
  std::vector<Diagnostic> out;
  for (auto& d : LintTerms(yaml, "t.yaml").diagnostics) {
    if (d.code == code) out.push_back(d);
  }
  return out;
}

std::string Replace(std::string s, const std::string& from, const std::string& to) {
  size_t at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) s.replace(at, from.size(), to);
  return s;
}

TEST(CompilerTest, CompilesGoodTerms) {
  auto r = LintTerms(kGood, "t.yaml");
  ASSERT_TRUE(r.terms);
  const Terms& t = *r.terms;
  EXPECT_EQ(t.label(), "t@1");
  int32_t chat = t.FindCategory("content.chat"), fp = t.FindPurpose("ai_training.first_party");
  ASSERT_GE(chat, 0);
  ASSERT_GE(fp, 0);
  EXPECT_EQ(t.rules()[t.DecidingRule(chat, fp)].id, "train");
  EXPECT_EQ(t.DecidingRule(t.FindCategory("content"), fp), Terms::kUnlisted);
  EXPECT_EQ(t.EffectiveBasis(chat, t.FindPurpose("service")), Basis::kNecessary);
}

TEST(CompilerTest, MissingDescriptionNamesLineAndColumn) {
  auto d = Find(Replace(kGood, "      chat: {description: Chat.}", "      chat: {}"),
                "missing-description");
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].line, 10);
  EXPECT_EQ(d[0].column, 7);
  EXPECT_EQ(d[0].severity, Severity::kError);
  EXPECT_NE(d[0].ToString().find("t.yaml:10:7: error: category 'content.chat' has no description"),
            std::string::npos)
      << d[0].ToString();
}

TEST(CompilerTest, UnknownKeySuggestsTheIntendedOne) {
  auto d = Find(Replace(kGood, "    basis: consent", "    basis: consent\n    clauses_: [\"1\"]"),
                "unknown-key");
  ASSERT_EQ(d.size(), 1u);
  EXPECT_NE(d[0].message.find("did you mean 'clauses'"), std::string::npos) << d[0].message;
}

TEST(CompilerTest, UndefinedNamesAreErrorsWithHints) {
  EXPECT_EQ(Find(Replace(kGood, "categories: [content.chat]", "categories: [content.chta]"),
                 "undefined-category")
                .size(),
            1u);
  EXPECT_EQ(
      Find(Replace(kGood, "purposes: [service]", "purposes: [servic]"), "undefined-purpose").size(),
      1u);
  auto d = Find(Replace(kGood, "    clauses: [\"1\"]\n", "    clauses: [\"2\"]\n"), "undefined-clause");
  EXPECT_EQ(d.size(), 1u);
}

TEST(CompilerTest, DuplicateIdsAreErrors) {
  std::string dup = Replace(kGood, "  - {id: svc,", "  - {id: train,");
  EXPECT_EQ(Find(dup, "duplicate-id").size(), 1u);
  std::string dup_clause =
      Replace(kGood, "  - {id: \"1\", title: One, text: \"Clause one.\"}",
              "  - {id: \"1\", title: One, text: \"Clause one.\"}\n  - {id: \"1\", text: x}");
  EXPECT_EQ(Find(dup_clause, "duplicate-id").size(), 1u);
}

TEST(CompilerTest, BadBasisAndMisplacedFields) {
  EXPECT_EQ(Find(Replace(kGood, "basis: necessary", "basis: necesary"), "bad-basis").size(), 1u);
  EXPECT_EQ(Find(Replace(kGood, "basis: necessary,", "basis: necessary, consent_from: account,"),
                 "misplaced-field")
                .size(),
            1u);
  EXPECT_EQ(Find(Replace(kGood, "    basis: consent", "    basis: consent\n    consent_valid_for: P1Y"),
                 "bad-duration")
                .size(),
            1u);
}

TEST(CompilerTest, WarnsAboutNecessaryTrainingAndUncoveredPairs) {
  auto r = LintTerms(Replace(kGood, "basis: consent", "basis: necessary"), "t.yaml");
  ASSERT_TRUE(r.terms);  // warnings do not stop compilation
  bool necessary_training = false;
  for (const auto& d : r.diagnostics) {
    necessary_training |= d.code == "necessary-training" && d.severity == Severity::kWarning;
  }
  EXPECT_TRUE(necessary_training);
  auto uncovered = Find(Replace(kGood, "  service: {description: Service.}",
                                "  service: {description: Service.}\n  ads: {description: Ads.}"),
                        "uncovered-pair");
  ASSERT_EQ(uncovered.size(), 1u);
  EXPECT_NE(uncovered[0].message.find("ads"), std::string::npos);
}

TEST(CompilerTest, SyntaxErrorsAndWrongTypesNeverThrow) {
  for (const char* bad : {"terms: [", "- a\n- b\n", "", "terms: t\nversion: {a: 1}\n",
                          "\x01\x02", "categories: 5\n", "rules: {a: 1}\n"}) {
    LintResult r = LintTerms(bad, "bad.yaml");
    EXPECT_TRUE(r.has_errors()) << bad;
    EXPECT_FALSE(r.terms) << "nothing partial is returned";
  }
  auto r = CompileTerms("terms: [", "bad.yaml");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(r.error().message.find("bad.yaml:1:"), std::string::npos) << r.error().message;
}

TEST(CompilerTest, DraftKeepsTermsMissingOnlyDescriptions) {
  auto r = LintTerms(Replace(kGood, "      chat: {description: Chat.}", "      chat: {}"), "t.yaml");
  EXPECT_FALSE(r.terms);
  ASSERT_TRUE(r.draft);
  auto s = LintTerms(Replace(kGood, "basis: necessary", "basis: maybe"), "t.yaml");
  EXPECT_FALSE(s.draft);
}

TEST(CompilerTest, LoadTermsFileReportsUnreadableFile) {
  auto r = LoadTermsFile("/nonexistent/terms.yaml");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
}

// A small file cannot cost minutes or gigabytes: aliases are refused before any node is built.
TEST(CompilerTest, AliasesAreRefusedBeforeTheyExpand) {
  std::string bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 30; ++i) {
    std::string prev = "*a" + std::to_string(i - 1);
    bomb += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [" + prev;
    for (int k = 0; k < 8; ++k) bomb += ", " + prev;
    bomb += "]\n";
  }
  auto d = Find(bomb, "yaml-alias");
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].line, 2);
  // Also inside otherwise good terms.
  EXPECT_EQ(Find(Replace(kGood, "svc, categories: [content]", "svc, categories: &c [content]") +
                     "extra: *c\n", "yaml-alias").size(), 1u);
}

TEST(CompilerTest, DeepNestingAndHugeDocumentsAreRefused) {
  std::string deep = "x: " + std::string(5000, '[') + std::string(5000, ']') + "\n";
  EXPECT_EQ(Find(deep, "yaml-too-large").size(), 1u);
  std::string big = kGood;
  big += "# " + std::string(17u << 20, 'x') + "\n";
  EXPECT_EQ(Find(big, "yaml-too-large").size(), 1u);
}

// Parsers disagree on which of two equal keys counts: a repeated key is an error, at any level.
TEST(CompilerTest, DuplicateKeysAreErrorsAtEveryLevel) {
  auto d = Find(Replace(kGood, "    basis: consent\n", "    basis: consent\n    basis: necessary\n"),
                "yaml-duplicate-key");
  ASSERT_EQ(d.size(), 1u);
  EXPECT_NE(d[0].message.find("'basis'"), std::string::npos);
  EXPECT_EQ(Find(Replace(kGood, "terms: t\n", "terms: t\nterms: u\n"), "yaml-duplicate-key").size(),
            1u);
  EXPECT_EQ(Find(Replace(kGood, "      chat: {description: Chat.}",
                         "      chat: {description: Chat., description: Talk.}"),
                 "yaml-duplicate-key").size(),
            1u);
  EXPECT_TRUE(Find(kGood, "yaml-duplicate-key").empty());
}

TEST(CompilerTest, ADurationPastTheStorableRangeIsAnError) {
  const std::string rule = "    basis: consent\n    consent_valid_for: P200000000D\n";
  auto d = Find(Replace(kGood, "    basis: consent\n", rule), "bad-duration");
  ASSERT_EQ(d.size(), 1u);
  EXPECT_NE(d[0].message.find("range"), std::string::npos) << d[0].message;
}

TEST(CompilerTest, LintRefusesWhatPublishRefuses) {
  EXPECT_EQ(Find(std::string(kGood) + "# \xff\xfe\n", "not-utf8").size(), 1u);
}

TEST(CompilerTest, ADerivedFromCycleIsAnError) {
  const std::string cats = R"(categories:
  content:
    description: Content.
    children:
      chat: {description: Chat.}
      a: {description: A., derived_from: [content.b]}
      b: {description: B., derived_from: [content.a]}
)";
  std::string yaml = Replace(kGood, R"(categories:
  content:
    description: Content.
    children:
      chat: {description: Chat.}
)", cats);
  auto d = Find(yaml, "derived-cycle");
  ASSERT_EQ(d.size(), 1u);
  EXPECT_FALSE(LintTerms(yaml, "t.yaml").terms);
  // Through an ancestor: everything under x is derived from y, and y from x.z.
  std::string via = Replace(kGood, R"(categories:
  content:
    description: Content.
    children:
      chat: {description: Chat.}
)", R"(categories:
  content:
    description: Content.
    children:
      chat: {description: Chat.}
      x:
        description: X.
        derived_from: [content.y]
        children:
          z: {description: Z.}
      y: {description: Y., derived_from: [content.x.z]}
)");
  EXPECT_EQ(Find(via, "derived-cycle").size(), 1u);
}

// The table is built from rule bitsets (several words of them here): each pair by its rule.
TEST(CompilerTest, ALargeTableDecidesEveryPairByItsRule) {
  constexpr int kN = 400;
  std::string y = "terms: big\nversion: \"1\"\neffective: \"2023-01-01T00:00:00Z\"\nclauses:\n"
                  "  - {id: \"1\", title: t, text: x}\ncategories:\n";
  for (int i = 0; i < kN; ++i) y += "  c" + std::to_string(i) + ": {description: c}\n";
  y += "purposes:\n";
  for (int i = 0; i < kN; ++i) y += "  p" + std::to_string(i) + ": {description: p}\n";
  y += "rules:\n";
  for (int i = 0; i < kN; ++i) {
    y += "  - {id: r" + std::to_string(i) + ", categories: [c" + std::to_string(i) +
         "], purposes: [p" + std::to_string(i) + "], basis: necessary, clauses: [\"1\"]}\n";
  }
  auto r = LintTerms(y, "big.yaml");
  ASSERT_TRUE(r.terms);
  EXPECT_EQ(r.terms->DecidingRule(r.terms->FindCategory("c7"), r.terms->FindPurpose("p7")),
            r.terms->FindRule("r7"));
  EXPECT_EQ(r.terms->DecidingRule(r.terms->FindCategory("c7"), r.terms->FindPurpose("p8")),
            Terms::kUnlisted);
}

TEST(TermsSetTest, RefusesMixedDocumentsAndEqualEffectiveTimes) {
  auto a = *CompileTerms(kGood, "a");
  auto b = *CompileTerms(Replace(kGood, "terms: t", "terms: other"), "b");
  auto s = TermsSet::Create({a, b});
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument);
  auto c = *CompileTerms(Replace(kGood, "version: \"1\"", "version: \"2\""), "c");
  EXPECT_FALSE(TermsSet::Create({a, c}));  // same effective time
  auto d = *CompileTerms(Replace(Replace(kGood, "version: \"1\"", "version: \"2\""),
                                 "2023-01-01", "2023-06-01"),
                         "d");
  auto set = TermsSet::Create({d, a});
  ASSERT_TRUE(set);
  EXPECT_EQ((*set)->version(0).version(), "1");
  EXPECT_EQ((*set)->VersionAt(*ParseTime("2023-03-01T00:00:00Z")), 0);
  EXPECT_EQ((*set)->VersionAt(*ParseTime("2023-07-01T00:00:00Z")), 1);
  EXPECT_EQ((*set)->VersionAt(*ParseTime("2022-07-01T00:00:00Z")), -1);
  EXPECT_FALSE((*set)->With(a));  // not later than the latest
}

}  // namespace
}  // namespace assent

namespace assent {
namespace {

// A rule without its basis gets one error, where the rule is — not a second "YAML syntax:
// invalid node" beside it.
TEST(CompilerTest, AMissingBasisIsOneErrorAtTheRule) {
  const std::string yaml = Replace(kGood, "    basis: consent\n", "");
  auto all = LintTerms(yaml, "t.yaml").diagnostics;
  size_t errors = 0;
  for (const auto& d : all) {
    errors += d.severity == Severity::kError;
    EXPECT_NE(d.code, "yaml-syntax") << d.ToString();
  }
  EXPECT_EQ(errors, 1u);
  auto missing = Find(yaml, "missing-field");
  ASSERT_EQ(missing.size(), 1u);
  EXPECT_NE(missing[0].message.find("rule 'basis' is required"), std::string::npos);
  EXPECT_EQ(missing[0].line, 19);  // the rule "- id: train"
}

}  // namespace
}  // namespace assent

namespace assent {
namespace {

const std::string kGerman = std::string(kGood) + R"(locales: [en, de]
translations:
  de:
    clauses:
      "1": {title: Eins, text: "Klausel eins."}
    categories: {content: Inhalte., content.chat: Chat.}
    purposes: {service: Dienst., ai_training: Training., ai_training.first_party: Eigene Modelle.}
    rules: {train: Mit meinem Chat trainieren.}
)";

TEST(CompilerTest, TranslationsGiveEveryTextInEachDeclaredLocale) {
  LintResult r = LintTerms(kGerman, "t.yaml");
  ASSERT_FALSE(r.has_errors()) << (r.diagnostics.empty() ? "" : r.diagnostics[0].ToString());
  const Terms& t = *r.terms;
  ASSERT_EQ(t.locales(), (std::vector<std::string>{"en", "de"}));
  const int32_t de = t.FindLocale("de");
  ASSERT_EQ(de, 1);
  EXPECT_EQ(t.CategoryDescription(t.FindCategory("content.chat"), de), "Chat.");
  EXPECT_EQ(t.PurposeDescription(t.FindPurpose("service"), de), "Dienst.");
  EXPECT_EQ(t.RuleSummary(t.FindRule("train"), de), "Mit meinem Chat trainieren.");
  EXPECT_EQ(t.RuleSummary(t.FindRule("train"), 0), "Train on my chat.");
  EXPECT_EQ(t.ClauseText(t.FindClause("1"), de).title, "Eins");
  // The notice in each language is its own text, with its own hash.
  const Rule& train = t.rules()[t.FindRule("train")];
  auto en = NoticeText(t, train, "en"), german = NoticeText(t, train, "de");
  ASSERT_TRUE(en && german);
  EXPECT_NE(german->find("summary: Mit meinem Chat trainieren.\n"), std::string::npos) << *german;
  EXPECT_NE(german->find("clause 1 Eins: Klausel eins.\n"), std::string::npos) << *german;
  EXPECT_NE(NoticeSha256(*en), NoticeSha256(*german));
  EXPECT_FALSE(NoticeText(t, train, "fr"));
  EXPECT_EQ(FindNotice(t, "de", NoticeSha256(*german)), t.FindRule("train"));
  EXPECT_EQ(FindNotice(t, "en", NoticeSha256(*german)), -1);
  // Without `locales`, a document is in English only.
  LintResult plain = LintTerms(kGood, "t.yaml");
  EXPECT_EQ(plain.terms->locales(), std::vector<std::string>{"en"});
}

TEST(CompilerTest, AMissingOrStrayTranslationIsAnErrorNamingIt) {
  auto replace = [](std::string s, const std::string& from, const std::string& to) {
    s.replace(s.find(from), from.size(), to);
    return s;
  };
  // Each text missing is named: a category, a rule summary, a clause.
  std::string missing = replace(kGerman, " content.chat: Chat.", "");
  missing = replace(missing, "    rules: {train: Mit meinem Chat trainieren.}\n", "");
  missing = replace(missing, "      \"1\": {title: Eins, text: \"Klausel eins.\"}\n", "");
  auto d = Find(missing, "missing-translation");
  ASSERT_EQ(d.size(), 3u);
  std::string all;
  for (const auto& x : d) all += x.message + "\n";
  EXPECT_NE(all.find("locale 'de' has no text for category 'content.chat'"), std::string::npos) << all;
  EXPECT_NE(all.find("no text for rule summary 'train'"), std::string::npos) << all;
  EXPECT_NE(all.find("no text for clause '1'"), std::string::npos) << all;
  // A declared locale with no translations at all: every text is missing.
  EXPECT_GE(Find(replace(kGerman, "translations:", "unused:"), "missing-translation").size(), 7u);
  // Translations for a language not declared, or for the document's own.
  EXPECT_EQ(Find(replace(kGerman, "locales: [en, de]", "locales: [en, de]\n# x"), "undeclared-locale").size(), 0u);
  EXPECT_EQ(Find(replace(kGerman, "  de:\n", "  fr:\n"), "undeclared-locale").size(), 1u);
  EXPECT_EQ(Find(kGerman + "  en: {}\n", "misplaced-field").size(), 1u);
  // A misspelt name gets a did-you-mean; a bad tag, a repeated one are refused.
  auto typo = Find(replace(kGerman, "content.chat: Chat.", "content.chta: Chat."), "unknown-key");
  ASSERT_EQ(typo.size(), 1u);
  EXPECT_NE(typo[0].message.find("did you mean 'content.chat'"), std::string::npos) << typo[0].message;
  EXPECT_EQ(Find(replace(kGerman, "locales: [en, de]", "locales: [en, \"d e\"]"), "bad-locale").size(), 1u);
  EXPECT_EQ(Find(replace(kGerman, "locales: [en, de]", "locales: [en, de, de]"), "duplicate-id").size(), 1u);
}

}  // namespace
}  // namespace assent
