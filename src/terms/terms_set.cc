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
bool SameChain(const std::vector<TaxonomyNode>& now_nodes, int32_t node, const Terms& given,
               bool categories) {
  for (int32_t n = node; n >= 0; n = now_nodes[n].parent) {
    int32_t g = categories ? given.FindCategory(now_nodes[n].name)
                           : given.FindPurpose(now_nodes[n].name);
    if (g < 0) return false;
    const auto& gnodes = categories ? given.categories() : given.purposes();
    if (gnodes[g].description != now_nodes[n].description) return false;
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
  unchanged_.assign(static_cast<size_t>(n) * n, {});
  for (int32_t now = 0; now < n; ++now) {
    const Terms& t = *versions_[now];
    const size_t nc = t.categories().size(), np = t.purposes().size();
    for (int32_t given = 0; given < n; ++given) {
      if (given == now) continue;
      const Terms& g = *versions_[given];
      std::vector<uint8_t> cat_same(nc), pur_same(np);
      for (size_t c = 0; c < nc; ++c) cat_same[c] = SameChain(t.categories(), c, g, true);
      for (size_t p = 0; p < np; ++p) pur_same[p] = SameChain(t.purposes(), p, g, false);
      auto& cells = unchanged_[now * n + given];
      cells.assign(nc * np, 0);
      for (size_t c = 0; c < nc; ++c) {
        for (size_t p = 0; p < np; ++p) {
          if (!cat_same[c] || !pur_same[p]) continue;
          int32_t r = t.DecidingRule(c, p);
          bool same = true;
          if (r != Terms::kUnlisted) {
            for (int32_t cl : t.rules()[r].clauses) {
              int32_t gc = g.FindClause(t.clauses()[cl].id);
              if (gc < 0 || g.clauses()[gc].text != t.clauses()[cl].text) same = false;
            }
          }
          cells[c * np + p] = same;
        }
      }
    }
  }
  return OkStatus();
}

}  // namespace assent
