// The rule table of a compiled Terms: for every (category, purpose) pair the one rule that
// decides it (DESIGN.md "Decision semantics" steps 2-5), with the checks that make the table
// well defined — ambiguity, derived categories, uncovered pairs.
#include <algorithm>
#include <set>

#include "terms/compiler.h"

namespace assent {
namespace {

bool Covers(const std::vector<TaxonomyNode>& nodes, int32_t ancestor, int32_t node) {
  if (ancestor < 0 || node < 0) return false;
  int32_t d = nodes[ancestor].depth;
  while (node >= 0 && nodes[node].depth > d) node = nodes[node].parent;
  return node == ancestor;
}

int32_t FindIn(const NameIndex& m, std::string_view k) {
  auto it = m.find(k);
  return it == m.end() ? -1 : it->second;
}

int FromStrictness(ConsentFrom f) { return f == ConsentFrom::kAccountAndSubjects ? 1 : 0; }

}  // namespace

std::string_view BasisName(Basis b) {
  switch (b) {
    case Basis::kProhibited: return "prohibited";
    case Basis::kConsent: return "consent";
    case Basis::kObjectable: return "objectable";
    case Basis::kNecessary: return "necessary";
  }
  return "prohibited";
}

std::string_view ConsentFromName(ConsentFrom f) {
  switch (f) {
    case ConsentFrom::kSubjects: return "subjects";
    case ConsentFrom::kAccount: return "account";
    case ConsentFrom::kAccountAndSubjects: return "account_and_subjects";
  }
  return "subjects";
}

int32_t Terms::FindCategory(std::string_view name) const { return FindIn(category_index_, name); }
int32_t Terms::FindPurpose(std::string_view name) const { return FindIn(purpose_index_, name); }
int32_t Terms::FindClause(std::string_view id) const { return FindIn(clause_index_, id); }
int32_t Terms::FindRule(std::string_view id) const { return FindIn(rule_index_, id); }

int32_t Terms::FindLocale(std::string_view tag) const {
  for (size_t i = 0; i < locales_.size(); ++i) {
    if (locales_[i] == tag) return static_cast<int32_t>(i);
  }
  return -1;
}

bool Terms::CategoryCovers(int32_t ancestor, int32_t node) const {
  return Covers(categories_, ancestor, node);
}
bool Terms::PurposeCovers(int32_t ancestor, int32_t node) const {
  return Covers(purposes_, ancestor, node);
}

Basis Terms::EffectiveBasis(int32_t category, int32_t purpose) const {
  int32_t r = DecidingRule(category, purpose);
  return r == kUnlisted ? Basis::kProhibited : rules_[r].basis;
}

int32_t TermsCompiler::MatchedCategory(const Rule& r, int32_t c) const {
  int32_t best = -1;
  for (int32_t rc : r.categories) {
    if (terms_->CategoryCovers(rc, c) &&
        (best < 0 || terms_->categories_[rc].depth > terms_->categories_[best].depth)) {
      best = rc;
    }
  }
  return best;
}

int32_t TermsCompiler::MatchedPurpose(const Rule& r, int32_t p) const {
  int32_t best = -1;
  for (int32_t rp : r.purposes) {
    if (terms_->PurposeCovers(rp, p) &&
        (best < 0 || terms_->purposes_[rp].depth > terms_->purposes_[best].depth)) {
      best = rp;
    }
  }
  return best;
}

int32_t TermsCompiler::MostSpecific(const std::vector<int32_t>& rules, int32_t c, int32_t p,
                                    bool* ambiguous, int32_t* other) const {
  const Terms& t = *terms_;
  std::vector<std::pair<int32_t, int32_t>> matched;
  for (int32_t r : rules) {
    matched.emplace_back(MatchedCategory(t.rules_[r], c), MatchedPurpose(t.rules_[r], p));
  }
  // r1 strictly more specific than r2: r1's patterns descend-or-equal r2's, one strictly.
  auto strictly = [&](size_t i, size_t j) {
    auto [ci, pi] = matched[i];
    auto [cj, pj] = matched[j];
    return t.CategoryCovers(cj, ci) && t.PurposeCovers(pj, pi) && (ci != cj || pi != pj);
  };
  std::vector<size_t> maximal;
  for (size_t i = 0; i < rules.size(); ++i) {
    bool dominated = false;
    for (size_t j = 0; j < rules.size() && !dominated; ++j) dominated = j != i && strictly(j, i);
    if (!dominated) maximal.push_back(i);
  }
  *ambiguous = maximal.size() > 1;
  if (*ambiguous) *other = rules[maximal[1]];
  return rules[maximal[0]];
}

void TermsCompiler::BuildTable() {
  Terms& t = *terms_;
  const int32_t nc = static_cast<int32_t>(t.categories_.size());
  const int32_t np = static_cast<int32_t>(t.purposes_.size());
  t.table_.assign(static_cast<size_t>(nc) * np, Terms::kUnlisted);
  std::set<std::pair<int32_t, int32_t>> reported;
  // Which rules match a category (a pattern on it or an ancestor), and a purpose, as bitsets
  // over rules: the rules matching a pair are one AND of two rows, so the table costs about
  // (categories x purposes x rules / 64) word operations rather than a scan of every rule's
  // patterns per pair (1,000 x 1,000 x 1,000 took 18 s that way).
  const size_t nr = t.rules_.size();
  const size_t words = (nr + 63) / 64;
  auto rows = [&](const std::vector<TaxonomyNode>& nodes, bool categories) {
    std::vector<uint64_t> direct(nodes.size() * words, 0), all(nodes.size() * words, 0);
    for (size_t r = 0; r < nr; ++r) {
      for (int32_t n : categories ? t.rules_[r].categories : t.rules_[r].purposes) {
        direct[static_cast<size_t>(n) * words + r / 64] |= uint64_t{1} << (r % 64);
      }
    }
    // Nodes come parents first (a child is added after its parent), so one pass suffices.
    for (size_t n = 0; n < nodes.size(); ++n) {
      for (size_t w = 0; w < words; ++w) {
        uint64_t v = direct[n * words + w];
        if (nodes[n].parent >= 0) v |= all[static_cast<size_t>(nodes[n].parent) * words + w];
        all[n * words + w] = v;
      }
    }
    return all;
  };
  const std::vector<uint64_t> by_category = rows(t.categories_, true);
  const std::vector<uint64_t> by_purpose = rows(t.purposes_, false);
  std::vector<int32_t> prohibited, others;
  for (int32_t c = 0; c < nc; ++c) {
    for (int32_t p = 0; p < np; ++p) {
      prohibited.clear();
      others.clear();
      const uint64_t* rc = &by_category[static_cast<size_t>(c) * words];
      const uint64_t* rp = &by_purpose[static_cast<size_t>(p) * words];
      for (size_t w = 0; w < words; ++w) {
        for (uint64_t both = rc[w] & rp[w]; both != 0; both &= both - 1) {
          const int32_t r = static_cast<int32_t>(w * 64 + static_cast<size_t>(__builtin_ctzll(both)));
          (t.rules_[r].basis == Basis::kProhibited ? prohibited : others).push_back(r);
        }
      }
      int32_t decider = Terms::kUnlisted;
      if (!others.empty()) {
        bool ambiguous = false;
        int32_t other = -1;
        decider = MostSpecific(others, c, p, &ambiguous, &other);
        if (ambiguous) {
          auto key = std::minmax(decider, other);
          if (reported.insert(key).second) {
            Err(rule_pos_[key.second].pos,
                "rules '" + t.rules_[key.first].id + "' and '" + t.rules_[key.second].id +
                    "' both decide (" + t.categories_[c].name + ", " + t.purposes_[p].name +
                    ") and neither is more specific: add a rule for exactly that pair, or "
                    "narrow one of them",
                "ambiguous");
          }
        }
      }
      if (!prohibited.empty()) {
        bool ambiguous = false;
        int32_t other = -1;
        decider = MostSpecific(prohibited, c, p, &ambiguous, &other);  // ties: first written
      }
      t.table_[static_cast<size_t>(c) * np + p] = decider;
    }
  }
}

void TermsCompiler::CheckDerived() {
  Terms& t = *terms_;
  const int32_t nc = static_cast<int32_t>(t.categories_.size());
  const int32_t np = static_cast<int32_t>(t.purposes_.size());
  auto from_of = [&](int32_t c, int32_t p) {
    int32_t r = t.DecidingRule(c, p);
    return r == Terms::kUnlisted ? ConsentFrom::kSubjects : t.rules_[r].consent_from;
  };
  for (int32_t d = 0; d < nc; ++d) {
    for (int32_t src : t.categories_[d].derived_from) {
      for (int32_t x = 0; x < nc; ++x) {
        if (!t.CategoryCovers(d, x)) continue;
        for (int32_t p = 0; p < np; ++p) {
          Basis bx = t.EffectiveBasis(x, p), bs = t.EffectiveBasis(src, p);
          bool looser = bx > bs;
          if (!looser && bx == bs && (bx == Basis::kConsent || bx == Basis::kObjectable)) {
            looser = FromStrictness(from_of(x, p)) < FromStrictness(from_of(src, p));
          }
          if (!looser) continue;
          auto rule_name = [&](int32_t c) {
            int32_t r = t.DecidingRule(c, p);
            if (r == Terms::kUnlisted) return std::string("unlisted");
            const Rule& rule = t.rules_[r];
            std::string s = std::string(BasisName(rule.basis));
            if (rule.basis == Basis::kConsent || rule.basis == Basis::kObjectable) {
              s += " from " + std::string(ConsentFromName(rule.consent_from));
            }
            return s + " by rule '" + rule.id + "'";
          };
          Err(derived_pos_[d],
              "category '" + t.categories_[x].name + "' is derived from '" +
                  t.categories_[src].name + "' but is more permissive for purpose '" +
                  t.purposes_[p].name + "' (" + rule_name(x) + ", while the source is " +
                  rule_name(src) +
                  "): data compiled from customer content may never be used more freely than "
                  "that content",
              "derived-more-permissive");
          p = np;  // one finding per (category, source) is enough to act on
        }
      }
    }
  }
}

void TermsCompiler::WarnUncovered() {
  Terms& t = *terms_;
  for (int32_t c = 0; c < static_cast<int32_t>(t.categories_.size()); ++c) {
    if (!t.categories_[c].leaf()) continue;
    std::string missing;
    for (int32_t p = 0; p < static_cast<int32_t>(t.purposes_.size()); ++p) {
      if (!t.purposes_[p].leaf() || t.DecidingRule(c, p) != Terms::kUnlisted) continue;
      missing += (missing.empty() ? "" : ", ") + t.purposes_[p].name;
    }
    if (!missing.empty()) {
      Warn(category_pos_[c],
           "no rule covers category '" + t.categories_[c].name + "' for " + missing +
               ": such uses are denied as unlisted; write a rule (basis prohibited if that is "
               "the intent)",
           "uncovered-pair");
    }
  }
}

}  // namespace assent
