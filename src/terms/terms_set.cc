// All published versions of one terms document over a shared vocabulary, and the
// cross-version table that decides whether a grant given under one version still means the
// same under another ("stale consent" in DESIGN.md).
#include <algorithm>

#include "assent/terms.h"

namespace assent {

int32_t Vocabulary::Find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? -1 : it->second;
}

int32_t Vocabulary::Intern(std::string_view name) {
  if (int32_t id = Find(name); id >= 0) return id;
  std::vector<int32_t> chain;
  size_t dot = name.rfind('.');
  if (dot != std::string_view::npos) chain = ancestors_[Intern(name.substr(0, dot))];
  int32_t id = static_cast<int32_t>(names_.size());
  chain.push_back(id);
  names_.emplace_back(name);
  depth_.push_back(static_cast<int32_t>(chain.size()) - 1);
  ancestors_.push_back(std::move(chain));
  index_.emplace(std::string(name), id);
  return id;
}

namespace {

// True when `name` and each of its ancestors have the same description in both versions.
// Whether the descriptions of `node` and its ancestors read the same in both versions, in
// the languages `ln` (of `now`) and `lg` (of `given`).
bool SameChain(const Terms& now, int32_t ln, int32_t node, const Terms& given, int32_t lg,
               bool categories) {
  const auto& now_nodes = categories ? now.categories() : now.purposes();
  for (int32_t n = node; n >= 0; n = now_nodes[n].parent) {
    int32_t g = categories ? given.FindCategory(now_nodes[n].name)
                           : given.FindPurpose(now_nodes[n].name);
    if (g < 0) return false;
    const std::string& a = categories ? now.CategoryDescription(n, ln) : now.PurposeDescription(n, ln);
    const std::string& b = categories ? given.CategoryDescription(g, lg) : given.PurposeDescription(g, lg);
    if (a != b) return false;
  }
  return true;
}

}  // namespace

Result<std::shared_ptr<const TermsSet>> TermsSet::Create(
    std::vector<std::shared_ptr<const Terms>> versions) {
  std::stable_sort(versions.begin(), versions.end(),
                   [](const auto& a, const auto& b) { return a->effective() < b->effective(); });
  auto set = std::make_shared<TermsSet>();
  for (auto& v : versions) {
    if (!v) return InvalidArgumentError("null terms version");
    if (!set->versions_.empty()) {
      const Terms& last = *set->versions_.back();
      if (v->id() != last.id()) {
        return InvalidArgumentError("terms '" + v->label() + "' belong to document '" + v->id() +
                                    "', not '" + last.id() + "': one deployment has one document");
      }
      if (set->FindVersion(v->version()) >= 0) {
        return InvalidArgumentError("terms version '" + v->version() + "' given twice");
      }
      if (v->effective() <= last.effective()) {
        return InvalidArgumentError("terms " + v->label() + " and " + last.label() +
                                    " take effect at the same time (" +
                                    FormatTime(v->effective()) +
                                    "): each version needs its own effective time");
      }
    }
    set->versions_.push_back(std::move(v));
  }
  ASSENT_RETURN_IF_ERROR(set->Build());
  return std::shared_ptr<const TermsSet>(std::move(set));
}

Result<std::shared_ptr<const TermsSet>> TermsSet::With(std::shared_ptr<const Terms> terms) const {
  if (!versions_.empty() && terms->effective() <= versions_.back()->effective()) {
    return InvalidArgumentError("terms " + terms->label() + " take effect at " +
                                FormatTime(terms->effective()) + ", not after the latest version " +
                                versions_.back()->label() + " (" +
                                FormatTime(versions_.back()->effective()) +
                                "): a new version must take effect later");
  }
  auto v = versions_;
  v.push_back(std::move(terms));
  return Create(std::move(v));
}

int32_t TermsSet::FindVersion(std::string_view version) const {
  for (int32_t i = 0; i < size(); ++i) {
    if (versions_[i]->version() == version) return i;
  }
  return -1;
}

int32_t TermsSet::VersionAt(Timestamp t) const {
  for (int32_t i = size() - 1; i >= 0; --i) {
    if (versions_[i]->effective() <= t) return i;
  }
  return -1;
}

int32_t TermsSet::LocaleCode(int32_t version, std::string_view tag) const {
  if (tag.empty()) return 0;
  if (versions_[version]->FindLocale(tag) < 0) return -1;
  const int32_t id = static_cast<int32_t>(
      std::find(locale_tags_.begin(), locale_tags_.end(), tag) - locale_tags_.begin());
  return id == own_locale_[version] ? 0 : id;
}

Status TermsSet::Build() {
  const int32_t n = size();
  for (const auto& v : versions_) {
    for (const auto& c : v->categories()) categories_.Intern(c.name);
    for (const auto& p : v->purposes()) purposes_.Intern(p.name);
  }
  cat_to_global_.assign(n, {});
  pur_to_global_.assign(n, {});
  cat_to_local_.assign(n, std::vector<int32_t>(categories_.size(), -1));
  pur_to_local_.assign(n, std::vector<int32_t>(purposes_.size(), -1));
  for (int32_t v = 0; v < n; ++v) {
    const Terms& t = *versions_[v];
    for (int32_t i = 0; i < static_cast<int32_t>(t.categories().size()); ++i) {
      int32_t g = categories_.Find(t.categories()[i].name);
      cat_to_global_[v].push_back(g);
      cat_to_local_[v][g] = i;
    }
    for (int32_t i = 0; i < static_cast<int32_t>(t.purposes().size()); ++i) {
      int32_t g = purposes_.Find(t.purposes()[i].name);
      pur_to_global_[v].push_back(g);
      pur_to_local_[v][g] = i;
    }
  }
  if (n > 4096) {
    return InvalidArgumentError("more than 4096 terms versions: a grant names its version in 12 bits");
  }
  // Every language any version offers, in order of first appearance (ids never change as
  // versions are added).
  own_locale_.assign(n, 0);
  for (int32_t v = 0; v < n; ++v) {
    for (const auto& tag : versions_[v]->locales()) {
      if (std::find(locale_tags_.begin(), locale_tags_.end(), tag) == locale_tags_.end()) {
        if (static_cast<int32_t>(locale_tags_.size()) >= kMaxLocales) {
          return InvalidArgumentError("the terms offer more than " + std::to_string(kMaxLocales - 1) +
                                      " languages across their versions");
        }
        locale_tags_.push_back(tag);
      }
    }
    own_locale_[v] = static_cast<int32_t>(
        std::find(locale_tags_.begin(), locale_tags_.end(), versions_[v]->locales()[0]) -
        locale_tags_.begin());
  }
  unchanged_.assign(locale_tags_.size(), {});
  for (size_t l = 1; l < locale_tags_.size(); ++l) {
    auto& by_pair = unchanged_[l];
    by_pair.assign(static_cast<size_t>(n) * n, {});
    for (int32_t now = 0; now < n; ++now) {
      const Terms& t = *versions_[now];
      const size_t nc = t.categories().size(), np = t.purposes().size();
      const int32_t ln = t.FindLocale(locale_tags_[l]);
      for (int32_t given = 0; given < n; ++given) {
        const Terms& g = *versions_[given];
        const int32_t lg = g.FindLocale(locale_tags_[l]);
        auto& cells = by_pair[now * n + given];
        cells.assign(nc * np, 0);
        if (ln < 0 || lg < 0) continue;  // not offered in that language by both: stale
        if (given == now) {
          std::fill(cells.begin(), cells.end(), 1);
          continue;
        }
        std::vector<uint8_t> cat_same(nc), pur_same(np);
        for (size_t c = 0; c < nc; ++c) cat_same[c] = SameChain(t, ln, c, g, lg, true);
        for (size_t p = 0; p < np; ++p) pur_same[p] = SameChain(t, ln, p, g, lg, false);
        for (size_t c = 0; c < nc; ++c) {
          for (size_t p = 0; p < np; ++p) {
            if (!cat_same[c] || !pur_same[p]) continue;
            int32_t r = t.DecidingRule(c, p);
            bool same = true;
            if (r != Terms::kUnlisted) {
              for (int32_t cl : t.rules()[r].clauses) {
                int32_t gc = g.FindClause(t.clauses()[cl].id);
                if (gc < 0 || g.ClauseText(gc, lg).text != t.ClauseText(cl, ln).text) same = false;
              }
              // The rule's summary is what the person read on the card: reworded (the same
              // rule in both versions, in that language), the grant no longer counts either.
              const int32_t gr = g.FindRule(t.rules()[r].id);
              if (gr >= 0 && g.RuleSummary(gr, lg) != t.RuleSummary(r, ln)) same = false;
            }
            cells[c * np + p] = same;
          }
        }
      }
    }
  }
  return OkStatus();
}

}  // namespace assent
