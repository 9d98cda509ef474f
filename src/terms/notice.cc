// The notice a person answers when they make a choice under a rule: its canonical text and
// SHA-256 (docs/formats/ledger.md "Notices"). Consent events record the hash; anyone holding
// the terms can recompute it (`assent terms notice`).
#include "common/sha256.h"
#include "common/strings.h"
#include "assent/terms.h"

namespace assent {
namespace {

// Runs of whitespace as one space, none at either end: the text as displayed, whatever the
// YAML's line breaks.
std::string Normalized(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  bool space = false;
  for (char c : s) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

}  // namespace

std::vector<std::string> NoticeLocales(const Terms& t) { return t.locales(); }

std::optional<std::string> NoticeText(const Terms& t, const Rule& rule, std::string_view locale) {
  const int32_t l = t.FindLocale(locale);
  if (l < 0) return std::nullopt;
  const int32_t r = t.FindRule(rule.id);
  std::string out = "assent-notice/1\n";
  out += "terms: " + t.label() + "\n";
  out += "locale: " + std::string(locale) + "\n";
  out += "rule: " + rule.id + "\n";
  out += "summary: " + Normalized(r >= 0 ? t.RuleSummary(r, l) : rule.summary) + "\n";
  for (int32_t c : rule.categories) {
    const TaxonomyNode& node = t.categories()[c];
    out += "category " + node.name + ": " + Normalized(t.CategoryDescription(c, l)) + "\n";
    for (int32_t k : node.children) {
      out += "  includes " + t.categories()[k].name + ": " +
             Normalized(t.CategoryDescription(k, l)) + "\n";
    }
  }
  for (int32_t p : rule.purposes) {
    out += "purpose " + t.purposes()[p].name + ": " + Normalized(t.PurposeDescription(p, l)) + "\n";
  }
  for (int32_t c : rule.clauses) {
    const Clause& clause = t.ClauseText(c, l);
    out += "clause " + clause.id + " " + Normalized(clause.title) + ": " +
           Normalized(clause.text) + "\n";
  }
  return out;
}

std::string NoticeSha256(std::string_view text) { return ToHex(Sha256(text)); }

int32_t FindNotice(const Terms& t, std::string_view locale, std::string_view sha256) {
  for (size_t r = 0; r < t.rules().size(); ++r) {
    auto text = NoticeText(t, t.rules()[r], locale);
    if (text && NoticeSha256(*text) == sha256) return static_cast<int32_t>(r);
  }
  return -1;
}

}  // namespace assent
