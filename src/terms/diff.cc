// Differences between two terms versions: clauses, meanings, and the leaf pairs whose basis,
// consent_from or consent validity changed, each marked tightened or loosened.
#include "terms/diff.h"

#include <algorithm>
#include <set>

#include "terms/show.h"

namespace assent {
namespace {

// The node for `name` or its nearest defined ancestor, or -1.
int32_t Nearest(const Terms& t, std::string name, bool category) {
  for (;;) {
    int32_t id = category ? t.FindCategory(name) : t.FindPurpose(name);
    if (id >= 0) return id;
    size_t dot = name.rfind('.');
    if (dot == std::string::npos) return -1;
    name.resize(dot);
  }
}

// Rank of who must agree: requiring both is stricter than either alone.
int FromRank(ConsentFrom f) { return f == ConsentFrom::kAccountAndSubjects ? 1 : 0; }

void Meanings(const std::vector<TaxonomyNode>& a, const std::vector<TaxonomyNode>& b,
              const Terms& ta, const Terms& tb, bool category, std::vector<std::string>* added,
              std::vector<std::string>* removed, std::vector<std::string>* redefined) {
  auto find = [&](const Terms& t, const std::string& n) {
    return category ? t.FindCategory(n) : t.FindPurpose(n);
  };
  for (const auto& n : b) {
    if (find(ta, n.name) < 0) added->push_back(n.name);
  }
  for (const auto& n : a) {
    if (find(tb, n.name) < 0) removed->push_back(n.name);
  }
  for (const auto& n : b) {
    if (find(ta, n.name) < 0) continue;
    // Meaning changed: its own description or an ancestor's.
    for (std::string name = n.name;;) {
      int32_t ia = find(ta, name), ib = find(tb, name);
      if (ia < 0 || ib < 0 || a[ia].description != b[ib].description) {
        redefined->push_back(n.name);
        break;
      }
      size_t dot = name.rfind('.');
      if (dot == std::string::npos) break;
      name.resize(dot);
    }
  }
}

}  // namespace

bool TermsDiff::loosened() const {
  return std::any_of(pairs.begin(), pairs.end(),
                     [](const PairChange& p) { return p.change == Change::kLoosened; });
}

TermsDiff DiffTerms(const Terms& a, const Terms& b) {
  TermsDiff d;
  d.old_label = a.label();
  d.new_label = b.label();
  for (const auto& c : b.clauses()) {
    int32_t i = a.FindClause(c.id);
    if (i < 0) {
      d.clauses_added.push_back(c.id);
    } else if (a.clauses()[i].text != c.text) {
      d.clauses_reworded.push_back(c.id);
    }
  }
  for (const auto& c : a.clauses()) {
    if (b.FindClause(c.id) < 0) d.clauses_removed.push_back(c.id);
  }
  Meanings(a.categories(), b.categories(), a, b, true, &d.categories_added,
           &d.categories_removed, &d.categories_redefined);
  Meanings(a.purposes(), b.purposes(), a, b, false, &d.purposes_added, &d.purposes_removed,
           &d.purposes_redefined);

  std::set<std::string> cats, purs;
  for (const Terms* t : {&a, &b}) {
    for (const auto& n : t->categories()) {
      if (n.leaf()) cats.insert(n.name);
    }
    for (const auto& n : t->purposes()) {
      if (n.leaf()) purs.insert(n.name);
    }
  }
  for (const auto& c : cats) {
    for (const auto& p : purs) {
      int32_t ac = Nearest(a, c, true), ap = Nearest(a, p, false);
      int32_t bc = Nearest(b, c, true), bp = Nearest(b, p, false);
      int32_t ar = (ac < 0 || ap < 0) ? Terms::kUnlisted : a.DecidingRule(ac, ap);
      int32_t br = (bc < 0 || bp < 0) ? Terms::kUnlisted : b.DecidingRule(bc, bp);
      const Rule* ra = ar == Terms::kUnlisted ? nullptr : &a.rules()[ar];
      const Rule* rb = br == Terms::kUnlisted ? nullptr : &b.rules()[br];
      Basis ba = ra ? ra->basis : Basis::kProhibited, bb = rb ? rb->basis : Basis::kProhibited;
      PairChange pc;
      pc.category = c;
      pc.purpose = p;
      pc.old_basis = ra ? std::string(BasisName(ba)) : "unlisted";
      pc.new_basis = rb ? std::string(BasisName(bb)) : "unlisted";
      pc.old_rule = ra ? ra->id : "";
      pc.new_rule = rb ? rb->id : "";
      if (bb != ba) {
        pc.change = bb > ba ? Change::kLoosened : Change::kTightened;
        pc.why = "basis";
      } else if (ra && rb && (ba == Basis::kConsent || ba == Basis::kObjectable)) {
        if (ra->consent_from != rb->consent_from) {
          pc.why = "consent_from";
          pc.detail = std::string(ConsentFromName(ra->consent_from)) + " -> " +
                      std::string(ConsentFromName(rb->consent_from));
          // Fewer parties must agree, or a different party decides: someone lost their say.
          pc.change = FromRank(rb->consent_from) > FromRank(ra->consent_from) ? Change::kTightened
                                                                            : Change::kLoosened;
        } else if (ra->consent_valid_for != rb->consent_valid_for) {
          pc.why = "consent_valid_for";
          auto text = [](const std::optional<Duration>& v) {
            return v ? FormatDuration(*v) : std::string("unlimited");
          };
          pc.detail = text(ra->consent_valid_for) + " -> " + text(rb->consent_valid_for);
          bool longer = !rb->consent_valid_for ||
                        (ra->consent_valid_for && *rb->consent_valid_for > *ra->consent_valid_for);
          pc.change = longer ? Change::kLoosened : Change::kTightened;
        }
      }
      if (!pc.why.empty()) d.pairs.push_back(std::move(pc));
    }
  }
  return d;
}

std::string RenderDiff(const TermsDiff& d) {
  std::string out = "terms diff " + d.old_label + " -> " + d.new_label + "\n";
  auto list = [&](const char* title, const std::vector<std::string>& v, const char* mark) {
    for (const auto& s : v) out += std::string("  ") + mark + " " + title + " " + s + "\n";
  };
  list("clause", d.clauses_added, "added    ");
  list("clause", d.clauses_removed, "removed  ");
  list("clause", d.clauses_reworded, "reworded ");
  list("category", d.categories_added, "added    ");
  list("category", d.categories_removed, "removed  ");
  list("category", d.categories_redefined, "redefined");
  list("purpose", d.purposes_added, "added    ");
  list("purpose", d.purposes_removed, "removed  ");
  list("purpose", d.purposes_redefined, "redefined");
  size_t tightened = 0, loosened = 0;
  for (const auto& p : d.pairs) {
    bool loose = p.change == Change::kLoosened;
    (loose ? loosened : tightened)++;
    out += std::string("  ") + (loose ? "LOOSENED " : "tightened") + " " + p.category + " x " +
           p.purpose + ": ";
    if (p.why == "basis") {
      out += p.old_basis + (p.old_rule.empty() ? "" : " (" + p.old_rule + ")") + " -> " +
             p.new_basis + (p.new_rule.empty() ? "" : " (" + p.new_rule + ")");
    } else {
      out += p.why + " " + p.detail + " (" + p.new_rule + ")";
    }
    out += "\n";
  }
  out += std::to_string(tightened) + " pairs tightened, " + std::to_string(loosened) +
         " loosened" + (loosened ? ": the new terms allow more than the old" : "") + "\n";
  return out;
}

nlohmann::ordered_json DiffJson(const TermsDiff& d) {
  nlohmann::ordered_json j;
  j["old"] = d.old_label;
  j["new"] = d.new_label;
  j["clauses"] = {{"added", d.clauses_added},
                  {"removed", d.clauses_removed},
                  {"reworded", d.clauses_reworded}};
  j["categories"] = {{"added", d.categories_added},
                     {"removed", d.categories_removed},
                     {"redefined", d.categories_redefined}};
  j["purposes"] = {{"added", d.purposes_added},
                   {"removed", d.purposes_removed},
                   {"redefined", d.purposes_redefined}};
  auto pairs = nlohmann::ordered_json::array();
  for (const auto& p : d.pairs) {
    nlohmann::ordered_json pj;
    pj["category"] = p.category;
    pj["purpose"] = p.purpose;
    pj["change"] = p.change == Change::kLoosened ? "loosened" : "tightened";
    pj["why"] = p.why;
    auto rule = [](const std::string& r) {
      return r.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(r);
    };
    pj["old"] = {{"basis", p.old_basis}, {"rule", rule(p.old_rule)}};
    pj["new"] = {{"basis", p.new_basis}, {"rule", rule(p.new_rule)}};
    if (!p.detail.empty()) pj["detail"] = p.detail;
    pairs.push_back(std::move(pj));
  }
  j["pairs"] = std::move(pairs);
  j["loosened"] = d.loosened();
  return j;
}

}  // namespace assent
