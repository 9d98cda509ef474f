// Terms of service as code: one compiled, immutable version of a terms document, and the set
// of all versions a deployment has published. Compiling refuses anything the decision
// semantics of DESIGN.md cannot answer exactly (undefined terms, ambiguous rules, a derived
// category more permissive than its source), so a compiled Terms always decides.
//
// Thread safety: Terms and TermsSet are immutable after construction; share them freely.
#ifndef ASSENT_TERMS_H_
#define ASSENT_TERMS_H_

#include <cstdint>
#include <memory>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "assent/result.h"
#include "assent/time.h"

namespace assent {

// Why a use may happen. The numeric order is permissiveness: prohibited (= unlisted) <
// consent < objectable < necessary.
enum class Basis : uint8_t { kProhibited = 0, kConsent = 1, kObjectable = 2, kNecessary = 3 };
std::string_view BasisName(Basis b);

// Whose choice a consent or objectable rule requires.
enum class ConsentFrom : uint8_t { kSubjects, kAccount, kAccountAndSubjects };
std::string_view ConsentFromName(ConsentFrom f);

// A name -> index map searchable by string_view without allocating.
struct NameHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using NameIndex = std::unordered_map<std::string, int32_t, NameHash, std::equal_to<>>;

enum class Severity : uint8_t { kError, kWarning };

// One lint finding: "FILE:LINE:COL: error|warning: message [code]".
struct Diagnostic {
  std::string file;
  int line = 0;  // 1-based; 0 when the finding has no place in the file
  int column = 0;
  Severity severity = Severity::kError;
  std::string message;
  std::string code;  // stable kebab-case id, e.g. "missing-description"

  std::string ToString() const;
};

struct Clause {
  std::string id;
  std::string title;
  std::string text;
};

// A category or purpose. Names are full dotted paths ("content.audio").
struct TaxonomyNode {
  std::string name;
  std::string description;
  int32_t parent = -1;  // index in the same table, -1 for a root
  int32_t depth = 0;    // 0 for a root
  std::vector<int32_t> children;
  std::vector<int32_t> derived_from;  // categories only
  bool gpc = false;                   // purposes only: Sec-GPC records an objection
  bool leaf() const { return children.empty(); }
};

struct Rule {
  std::string id;
  std::string summary;
  Basis basis = Basis::kProhibited;
  ConsentFrom consent_from = ConsentFrom::kSubjects;
  std::vector<int32_t> categories;  // indexes into Terms::categories()
  std::vector<int32_t> purposes;    // indexes into Terms::purposes()
  std::vector<int32_t> clauses;     // indexes into Terms::clauses()
  std::vector<std::string> clause_ids;
  std::optional<Duration> consent_valid_for;  // consent rules only
};

// One compiled version. Every (category, purpose) pair of nodes, leaves and inner nodes
// alike, has its deciding rule precomputed: a decision never walks YAML or compares strings.
struct TermsCompilerParser;
class TermsCompiler;

class Terms {
 public:
  static constexpr int32_t kUnlisted = -1;

  const std::string& id() const { return id_; }
  const std::string& version() const { return version_; }
  const std::string& label() const { return label_; }  // "id@version"
  Timestamp effective() const { return effective_; }
  const std::string& source() const { return source_; }  // the YAML text compiled

  const std::vector<Clause>& clauses() const { return clauses_; }
  const std::vector<TaxonomyNode>& categories() const { return categories_; }
  const std::vector<TaxonomyNode>& purposes() const { return purposes_; }
  const std::vector<Rule>& rules() const { return rules_; }

  // Index of a dotted name, or -1.
  int32_t FindCategory(std::string_view name) const;
  int32_t FindPurpose(std::string_view name) const;
  int32_t FindClause(std::string_view id) const;
  int32_t FindRule(std::string_view id) const;

  // The rule deciding (category, purpose): a prohibited rule if any matches, else the unique
  // most specific rule, else kUnlisted.
  int32_t DecidingRule(int32_t category, int32_t purpose) const {
    return table_[static_cast<size_t>(category) * purposes_.size() + purpose];
  }
  // The basis of (category, purpose), unlisted counting as kProhibited.
  Basis EffectiveBasis(int32_t category, int32_t purpose) const;

  // True when `ancestor` equals `node` or is one of its ancestors.
  bool CategoryCovers(int32_t ancestor, int32_t node) const;
  bool PurposeCovers(int32_t ancestor, int32_t node) const;

  // Languages (BCP 47 tags): the first is the one the document's own texts are written in;
  // `translations` give every human-readable text in each of the others (lint refuses a
  // missing one). ["en"] when the document declares none.
  const std::vector<std::string>& locales() const { return locales_; }
  // Index into locales(), or -1.
  int32_t FindLocale(std::string_view tag) const;
  // The texts in locale `l` (an index into locales()).
  const std::string& CategoryDescription(int32_t c, int32_t l) const {
    return l == 0 ? categories_[c].description : translations_[l].categories[c];
  }
  const std::string& PurposeDescription(int32_t p, int32_t l) const {
    return l == 0 ? purposes_[p].description : translations_[l].purposes[p];
  }
  const std::string& RuleSummary(int32_t r, int32_t l) const {
    return l == 0 ? rules_[r].summary : translations_[l].summaries[r];
  }
  const Clause& ClauseText(int32_t c, int32_t l) const {
    return l == 0 ? clauses_[c] : translations_[l].clauses[c];
  }

 private:
  struct Translation {  // aligned with the base tables
    std::vector<std::string> categories, purposes, summaries;
    std::vector<Clause> clauses;
  };
  friend class TermsCompiler;
  friend struct TermsCompilerParser;
  std::string id_, version_, label_, source_;
  Timestamp effective_ = 0;
  std::vector<Clause> clauses_;
  std::vector<TaxonomyNode> categories_, purposes_;
  std::vector<Rule> rules_;
  std::vector<std::string> locales_{"en"};
  std::vector<Translation> translations_{Translation{}};  // [0]: the base texts (unused)
  NameIndex category_index_, purpose_index_, clause_index_, rule_index_;
  std::vector<int32_t> table_;  // categories x purposes -> rule or kUnlisted
};

// Notices: what a person is shown when they make a choice under a rule — the rule's summary,
// the plain descriptions of its categories (and what a broad one includes) and purposes, and
// its clauses — in a canonical text (docs/formats/ledger.md "Notices") whose SHA-256 a consent
// event records. kTermsLocale: the language of a document that declares none.
inline constexpr std::string_view kTermsLocale = "en";
std::vector<std::string> NoticeLocales(const Terms& t);
// The canonical text, or nullopt when the terms offer no text in `locale`.
std::optional<std::string> NoticeText(const Terms& t, const Rule& rule, std::string_view locale);
std::string NoticeSha256(std::string_view text);  // lowercase hex
// The index of the rule whose notice in `locale` has this hash, or -1.
int32_t FindNotice(const Terms& t, std::string_view locale, std::string_view sha256);

// The result of linting: every diagnostic, and the compiled terms when there was no error.
struct LintResult {
  std::vector<Diagnostic> diagnostics;
  std::shared_ptr<const Terms> terms;  // null when any diagnostic is an error
  // The document compiled as written when its only errors are missing descriptions or
  // summaries (it still decides, but may not be published): lets `terms diff` and `terms
  // show` read the 2023-style terms that left "service generated data" undefined.
  std::shared_ptr<const Terms> draft;
  bool has_errors() const;
};

// Parses and checks a terms document. `file` is used only in diagnostics.
LintResult LintTerms(std::string_view yaml, std::string_view file);

// Compiles a terms document; on any lint error returns kInvalidArgument whose message lists
// every error as "FILE:LINE:COL: message [code]".
Result<std::shared_ptr<const Terms>> CompileTerms(std::string_view yaml, std::string_view file);

// Reads and compiles a file. kNotFound when it cannot be read.
Result<std::shared_ptr<const Terms>> LoadTermsFile(const std::string& path);

// A name table shared by all versions, so a consent event's scope means the same thing under
// every version. Ids are stable: extending a vocabulary only appends.
class Vocabulary {
 public:
  int32_t Find(std::string_view name) const;
  int32_t size() const { return static_cast<int32_t>(names_.size()); }
  const std::string& name(int32_t id) const { return names_[id]; }
  // True when `ancestor` equals `node` or is one of its ancestors (by dotted name).
  bool Covers(int32_t ancestor, int32_t node) const {
    const auto& chain = ancestors_[node];
    int32_t d = depth_[ancestor];
    return d < static_cast<int32_t>(chain.size()) && chain[d] == ancestor;
  }
  int32_t depth(int32_t id) const { return depth_[id]; }
  // The ids of `node`'s ancestors by depth: [root, ..., node].
  const std::vector<int32_t>& chain(int32_t node) const { return ancestors_[node]; }
  // Interns `name` and its dotted prefixes; returns its id.
  int32_t Intern(std::string_view name);

 private:
  std::vector<std::string> names_;
  std::vector<int32_t> depth_;
  std::vector<std::vector<int32_t>> ancestors_;  // [id][depth] root ... self
  NameIndex index_;
};

// Every published version, ordered by `effective`, over one shared vocabulary, with the
// precomputed cross-version facts decisions need (which grants stay valid across versions).
class TermsSet {
 public:
  // REQUIRES nothing: all versions must share one document id, have distinct versions and
  // strictly increasing `effective` once sorted. kInvalidArgument otherwise.
  static Result<std::shared_ptr<const TermsSet>> Create(
      std::vector<std::shared_ptr<const Terms>> versions);

  // A new set with one more version (ids of the old vocabulary are kept).
  Result<std::shared_ptr<const TermsSet>> With(std::shared_ptr<const Terms> terms) const;

  int32_t size() const { return static_cast<int32_t>(versions_.size()); }
  const Terms& version(int32_t v) const { return *versions_[v]; }
  const std::shared_ptr<const Terms>& version_ptr(int32_t v) const { return versions_[v]; }
  // Index of the version named `version`, or -1.
  int32_t FindVersion(std::string_view version) const;
  // Index of the version in effect at `t` (latest effective <= t), or -1.
  int32_t VersionAt(Timestamp t) const;

  const Vocabulary& category_vocabulary() const { return categories_; }
  const Vocabulary& purpose_vocabulary() const { return purposes_; }
  int32_t GlobalCategory(int32_t v, int32_t local) const { return cat_to_global_[v][local]; }
  int32_t GlobalPurpose(int32_t v, int32_t local) const { return pur_to_global_[v][local]; }
  // Local index in version v of a global id, or -1 when v does not define it.
  int32_t LocalCategory(int32_t v, int32_t global) const {
    const auto& m = cat_to_local_[v];
    return global < static_cast<int32_t>(m.size()) ? m[global] : -1;
  }
  int32_t LocalPurpose(int32_t v, int32_t global) const {
    const auto& m = pur_to_local_[v];
    return global < static_cast<int32_t>(m.size()) ? m[global] : -1;
  }

  // True when a grant given under version `given` still means the same for the pair
  // (category, purpose) of version `now` (local indexes of `now`): the descriptions of the
  // category, the purpose and their ancestors and the text of the clauses cited by the
  // deciding rule are identical in both versions (DESIGN.md "Stale consent").
  //
  // Per language: a grant given in locale `locale` (a LocaleCode; 0, the default, is the
  // language the given version is written in) compares the texts in that language, so a
  // grant given in English does not go stale because the German translation was corrected,
  // and one given in German does when the German text changes meaning (or is no longer offered).
  bool MeaningUnchanged(int32_t now, int32_t given, int32_t category, int32_t purpose,
                        int32_t locale = 0) const {
    if (now == given && locale == 0) return true;
    const int32_t l = locale == 0 ? own_locale_[given] : locale;
    const Terms& t = *versions_[now];
    return unchanged_[l][now * size() + given][category * t.purposes().size() + purpose] != 0;
  }
  // A compact code for the language a grant was given in under `version`: 0 for the version's
  // own language (and for an empty tag), else 1..kMaxLocales-1; -1 when the version does not
  // offer `tag`.
  static constexpr int32_t kMaxLocales = 16;
  int32_t LocaleCode(int32_t version, std::string_view tag) const;

 private:
  Status Build();
  std::vector<std::shared_ptr<const Terms>> versions_;
  Vocabulary categories_, purposes_;
  std::vector<std::vector<int32_t>> cat_to_global_, pur_to_global_, cat_to_local_,
      pur_to_local_;
  // [locale id][now*size+given][cell]; locale ids index locale_tags_ (0 unused).
  std::vector<std::vector<std::vector<uint8_t>>> unchanged_;
  std::vector<std::string> locale_tags_{""};
  std::vector<int32_t> own_locale_;  // per version: the id of its own language
};

}  // namespace assent

#endif  // ASSENT_TERMS_H_
