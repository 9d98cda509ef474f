// Parses a terms YAML document into Terms, reporting every problem at its file:line:col.
// yaml-cpp throws; every exception is caught here and becomes a diagnostic.
#include "terms/compiler.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "common/strings.h"
#include "terms/yaml_guard.h"

namespace assent {
namespace {

SourcePos PosOf(const YAML::Node& n) {
  if (!n.IsDefined()) return {};  // a missing key: it has no place (Mark() would throw)
  YAML::Mark m = n.Mark();
  if (m.is_null()) return {};
  return {m.line + 1, m.column + 1};
}

bool ValidName(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return false;
  }
  return true;
}

const std::vector<std::string> kTopKeys = {"terms",      "version",  "effective", "clauses",
                                           "categories", "purposes", "rules",     "locales",
                                           "translations"};
const std::vector<std::string> kTranslationKeys = {"categories", "purposes", "rules", "clauses"};

// A BCP 47 language tag as terms declare them: letters, digits and '-', a 2-3 letter language
// first ("en", "de", "de-CH", "zh-Hant").
bool ValidLocale(std::string_view s) {
  if (s.size() < 2 || s.size() > 35) return false;
  size_t lang = 0;
  while (lang < s.size() && s[lang] != '-') {
    if (!((s[lang] >= 'a' && s[lang] <= 'z') || (s[lang] >= 'A' && s[lang] <= 'Z'))) return false;
    ++lang;
  }
  if (lang < 2 || lang > 3) return false;
  for (char c : s.substr(lang)) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-')) {
      return false;
    }
  }
  return !s.ends_with('-');
}
const std::vector<std::string> kClauseKeys = {"id", "title", "text"};
const std::vector<std::string> kCategoryKeys = {"description", "children", "derived_from"};
const std::vector<std::string> kPurposeKeys = {"description", "children", "gpc"};
const std::vector<std::string> kRuleKeys = {"id",    "summary",      "categories",
                                            "purposes", "basis",     "consent_from",
                                            "clauses",  "consent_valid_for"};

}  // namespace

// The parsing half of TermsCompiler, kept apart from the table checks.
struct TermsCompilerParser {
  TermsCompiler& c;
  Terms& t;

  // Reports keys of `map` not in `allowed`, with a did-you-mean.
  void CheckKeys(const YAML::Node& map, const std::vector<std::string>& allowed,
                 std::string_view where) {
    for (auto it = map.begin(); it != map.end(); ++it) {
      if (!it->first.IsScalar()) {
        c.Err(PosOf(it->first), "keys must be plain names", "bad-key");
        continue;
      }
      std::string key = it->first.Scalar();
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        c.Err(PosOf(it->first),
              "unknown key '" + key + "' in " + std::string(where) + DidYouMeanSuffix(key, allowed),
              "unknown-key");
      }
    }
  }

  // The scalar text of `n`, or nullopt after reporting `what` as missing or not text.
  std::optional<std::string> Scalar(const YAML::Node& parent, const YAML::Node& n,
                                    std::string_view what, bool required) {
    if (!n.IsDefined() || n.IsNull()) {
      if (required) {
        c.Err(PosOf(parent), std::string(what) + " is required", "missing-field");
      }
      return std::nullopt;
    }
    if (!n.IsScalar()) {
      c.Err(PosOf(n), std::string(what) + " must be text, not a list or map", "wrong-type");
      return std::nullopt;
    }
    return n.Scalar();
  }

  // A list of names (or a single name) with each one's position.
  std::vector<std::pair<std::string, SourcePos>> Names(const YAML::Node& parent,
                                                      const YAML::Node& n, std::string_view what) {
    std::vector<std::pair<std::string, SourcePos>> out;
    if (!n.IsDefined() || n.IsNull()) {
      c.Err(PosOf(parent), std::string(what) + " is required", "missing-field");
      return out;
    }
    if (n.IsScalar()) {
      out.emplace_back(n.Scalar(), PosOf(n));
    } else if (n.IsSequence()) {
      for (const auto& e : n) {
        if (!e.IsScalar()) {
          c.Err(PosOf(e), std::string(what) + " must list names", "wrong-type");
          continue;
        }
        out.emplace_back(e.Scalar(), PosOf(e));
      }
      if (out.empty()) c.Err(PosOf(n), std::string(what) + " must not be empty", "missing-field");
    } else {
      c.Err(PosOf(n), std::string(what) + " must be a list of names", "wrong-type");
    }
    return out;
  }

  void Top(const YAML::Node& root) {
    if (!root.IsMap()) {
      c.Err(PosOf(root), "a terms document must be a map with terms, version, effective, ...",
            "wrong-type");
      return;
    }
    CheckKeys(root, kTopKeys, "the terms document");
    if (auto s = Scalar(root, root["terms"], "'terms' (the document id)", true)) {
      if (s->empty()) c.Err(PosOf(root["terms"]), "'terms' must not be empty", "missing-field");
      t.id_ = *s;
    }
    if (auto s = Scalar(root, root["version"], "'version'", true)) {
      if (s->empty() || s->find_first_of(" @/") != std::string::npos) {
        c.Err(PosOf(root["version"]), "'version' must be non-empty without spaces, '@' or '/'",
              "bad-version");
      }
      t.version_ = *s;
    }
    if (auto s = Scalar(root, root["effective"], "'effective' (an RFC 3339 time)", true)) {
      auto at = ParseTime(*s);
      if (!at) {
        c.Err(PosOf(root["effective"]), at.error().message, "bad-time");
      } else {
        t.effective_ = *at;
      }
    }
    t.label_ = t.id_ + "@" + t.version_;
    Clauses(root, root["clauses"]);
    Taxonomy(root, root["categories"], "categories", true);
    Taxonomy(root, root["purposes"], "purposes", false);
    Rules(root, root["rules"]);
    Locales(root);
  }

  // locales: [en, de, ...] and translations: {de: {categories, purposes, rules, clauses}}.
  void Locales(const YAML::Node& root) {
    const YAML::Node list = root["locales"];
    if (list.IsDefined() && !list.IsNull()) {
      t.locales_.clear();
      for (auto& [tag, pos] : Names(root, list, "'locales'")) {
        if (!ValidLocale(tag)) {
          c.Err(pos, "'" + tag + "' is not a language tag (BCP 47: en, de, de-CH, ...)", "bad-locale");
        } else if (std::find(t.locales_.begin(), t.locales_.end(), tag) != t.locales_.end()) {
          c.Err(pos, "locale '" + tag + "' is listed twice", "duplicate-id");
        } else {
          t.locales_.push_back(tag);
        }
      }
      if (t.locales_.empty()) t.locales_.push_back(std::string(kTermsLocale));
    }
    t.translations_.assign(t.locales_.size(), Terms::Translation{});
    const YAML::Node tr = root["translations"];
    if (tr.IsDefined() && !tr.IsNull() && !tr.IsMap()) {
      c.Err(PosOf(tr), "'translations' must be a map of locale: {categories, purposes, rules, clauses}",
            "wrong-type");
      return;
    }
    if (tr.IsDefined() && tr.IsMap()) {
      for (auto it = tr.begin(); it != tr.end(); ++it) {
        const std::string tag = it->first.IsScalar() ? it->first.Scalar() : "";
        const int32_t l = t.FindLocale(tag);
        if (l < 0) {
          c.Err(PosOf(it->first), "translations for '" + tag + "', which 'locales' does not list" +
                                      DidYouMeanSuffix(tag, t.locales_),
                "undeclared-locale");
        } else if (l == 0) {
          c.Err(PosOf(it->first), "'" + tag + "' is the document's own language (the first in "
                                  "'locales'): its texts are the document's, not translations",
                "misplaced-field");
        }
      }
    }
    for (size_t l = 1; l < t.locales_.size(); ++l) {
      Translate(tr.IsDefined() && tr.IsMap() ? tr[t.locales_[l]] : YAML::Node(), root,
                static_cast<int32_t>(l));
    }
  }

  // Every text in locale `l`; each one missing is an error naming it.
  void Translate(const YAML::Node& n, const YAML::Node& root, int32_t l) {
    const std::string& tag = t.locales_[l];
    Terms::Translation& out = t.translations_[l];
    out.categories.assign(t.categories_.size(), "");
    out.purposes.assign(t.purposes_.size(), "");
    out.summaries.assign(t.rules_.size(), "");
    out.clauses = t.clauses_;
    for (auto& cl : out.clauses) cl.title.clear(), cl.text.clear();
    const bool present = n.IsDefined() && !n.IsNull();
    const SourcePos where = present ? PosOf(n) : PosOf(root["locales"]);
    if (present && !n.IsMap()) {
      c.Err(PosOf(n), "translations." + tag + " must be a map of categories, purposes, rules, clauses",
            "wrong-type");
      return;
    }
    if (present) CheckKeys(n, kTranslationKeys, "translations." + tag);
    auto texts = [&](const char* section, const std::vector<std::string>& names,
                     std::vector<std::string>* into, const char* what) {
      const YAML::Node m = present ? n[section] : YAML::Node();
      if (m.IsDefined() && !m.IsNull() && !m.IsMap()) {
        c.Err(PosOf(m), "translations." + tag + "." + section + " must be a map of name: text",
              "wrong-type");
        return;
      }
      if (present && m.IsDefined() && m.IsMap()) {
        for (auto it = m.begin(); it != m.end(); ++it) {
          const std::string name = it->first.IsScalar() ? it->first.Scalar() : "";
          auto at = std::find(names.begin(), names.end(), name);
          if (at == names.end()) {
            c.Err(PosOf(it->first), "translations." + tag + "." + section + ": no " + what + " '" +
                                        name + "'" + DidYouMeanSuffix(name, names),
                  "unknown-key");
          } else if (!it->second.IsScalar() || it->second.Scalar().empty()) {
            c.Err(PosOf(it->second), "translations." + tag + "." + section + "." + name +
                                         " must be non-empty text", "wrong-type");
          } else {
            (*into)[at - names.begin()] = it->second.Scalar();
          }
        }
      }
      for (size_t i = 0; i < names.size(); ++i) {
        if ((*into)[i].empty()) {
          c.Err(where, "locale '" + tag + "' has no text for " + what + " '" + names[i] +
                           "' (add translations." + tag + "." + section + "." + names[i] + ")",
                "missing-translation");
        }
      }
    };
    texts("categories", AllNames(t.categories_), &out.categories, "category");
    texts("purposes", AllNames(t.purposes_), &out.purposes, "purpose");
    std::vector<std::string> with_summary;  // rules with a summary need one in every locale
    std::vector<int32_t> summary_rules;
    for (size_t r = 0; r < t.rules_.size(); ++r) {
      if (!t.rules_[r].summary.empty()) {
        with_summary.push_back(t.rules_[r].id);
        summary_rules.push_back(static_cast<int32_t>(r));
      }
    }
    std::vector<std::string> summaries(with_summary.size());
    texts("rules", with_summary, &summaries, "rule summary");
    for (size_t i = 0; i < summaries.size(); ++i) out.summaries[summary_rules[i]] = summaries[i];
    // clauses: id: {title, text}
    const YAML::Node m = present ? n["clauses"] : YAML::Node();
    std::vector<bool> done(t.clauses_.size(), false);
    if (m.IsDefined() && !m.IsNull() && !m.IsMap()) {
      c.Err(PosOf(m), "translations." + tag + ".clauses must be a map of id: {title, text}", "wrong-type");
    } else if (present && m.IsDefined() && m.IsMap()) {
      for (auto it = m.begin(); it != m.end(); ++it) {
        const std::string id = it->first.IsScalar() ? it->first.Scalar() : "";
        const int32_t k = t.FindClause(id);
        const YAML::Node body = it->second;
        if (k < 0) {
          std::vector<std::string> ids;
          for (const auto& cl : t.clauses_) ids.push_back(cl.id);
          c.Err(PosOf(it->first), "translations." + tag + ".clauses: no clause '" + id + "'" +
                                      DidYouMeanSuffix(id, ids), "unknown-key");
          continue;
        }
        if (!body.IsMap()) {
          c.Err(PosOf(body), "translations." + tag + ".clauses." + id + " must be {title, text}",
                "wrong-type");
          continue;
        }
        CheckKeys(body, kClauseKeys, "translations." + tag + ".clauses." + id);
        auto text = Scalar(body, body["text"], "translations." + tag + ".clauses." + id + ".text", true);
        auto title = Scalar(body, body["title"], "title", false);
        if (!t.clauses_[k].title.empty() && !title) {
          c.Err(PosOf(body), "translations." + tag + ".clauses." + id + " needs a title (the clause has one)",
                "missing-translation");
        }
        if (text && !text->empty()) {
          out.clauses[k].text = *text;
          out.clauses[k].title = title ? *title : "";
          done[k] = true;
        }
      }
    }
    for (size_t k = 0; k < t.clauses_.size(); ++k) {
      if (!done[k]) {
        c.Err(where, "locale '" + tag + "' has no text for clause '" + t.clauses_[k].id +
                         "' (add translations." + tag + ".clauses.\"" + t.clauses_[k].id + "\")",
              "missing-translation");
      }
    }
  }

  void Clauses(const YAML::Node& root, const YAML::Node& n) {
    if (!n.IsDefined() || n.IsNull()) {
      c.Err(PosOf(root), "'clauses' is required: rules must cite the text they rest on",
            "missing-field");
      return;
    }
    if (!n.IsSequence()) {
      c.Err(PosOf(n), "'clauses' must be a list of {id, title, text}", "wrong-type");
      return;
    }
    for (const auto& e : n) {
      if (!e.IsMap()) {
        c.Err(PosOf(e), "each clause must be a map with id, title and text", "wrong-type");
        continue;
      }
      CheckKeys(e, kClauseKeys, "a clause");
      Clause cl;
      auto id = Scalar(e, e["id"], "clause 'id'", true);
      auto text = Scalar(e, e["text"], "clause 'text' (quoted verbatim)", true);
      if (auto title = Scalar(e, e["title"], "clause 'title'", false)) cl.title = *title;
      if (!id || !text) continue;
      if (text->empty()) c.Err(PosOf(e["text"]), "clause text must not be empty", "missing-field");
      cl.id = *id;
      cl.text = *text;
      if (t.clause_index_.count(cl.id)) {
        c.Err(PosOf(e["id"]), "duplicate clause id '" + cl.id + "'", "duplicate-id");
        continue;
      }
      t.clause_index_[cl.id] = static_cast<int32_t>(t.clauses_.size());
      t.clauses_.push_back(std::move(cl));
    }
  }

  void Taxonomy(const YAML::Node& root, const YAML::Node& n, std::string_view what,
                bool categories) {
    if (!n.IsDefined() || n.IsNull()) {
      c.Err(PosOf(root), "'" + std::string(what) + "' is required", "missing-field");
      return;
    }
    if (!n.IsMap()) {
      c.Err(PosOf(n), "'" + std::string(what) + "' must be a map of name: {description, ...}",
            "wrong-type");
      return;
    }
    Nodes(n, "", -1, categories);
  }

  void Nodes(const YAML::Node& map, const std::string& prefix, int32_t parent, bool categories) {
    auto& table = categories ? t.categories_ : t.purposes_;
    auto& index = categories ? t.category_index_ : t.purpose_index_;
    auto& positions = categories ? c.category_pos_ : c.purpose_pos_;
    const char* kind = categories ? "category" : "purpose";
    for (auto it = map.begin(); it != map.end(); ++it) {
      if (!it->first.IsScalar()) {
        c.Err(PosOf(it->first), std::string(kind) + " names must be plain text", "bad-name");
        continue;
      }
      std::string local = it->first.Scalar();
      std::string name = prefix.empty() ? local : prefix + "." + local;
      SourcePos pos = PosOf(it->first);
      if (!ValidName(local)) {
        c.Err(pos,
              std::string(kind) + " name '" + local +
                  "' may hold only lower-case letters, digits, '_' and '-' (nesting makes the dots)",
              "bad-name");
        continue;
      }
      if (index.count(name)) {
        c.Err(pos, "duplicate " + std::string(kind) + " '" + name + "'", "duplicate-id");
        continue;
      }
      const YAML::Node body = it->second;  // a copy: it-> yields a temporary
      TaxonomyNode node;
      node.name = name;
      node.parent = parent;
      node.depth = parent < 0 ? 0 : table[parent].depth + 1;
      int32_t id = static_cast<int32_t>(table.size());
      index[name] = id;
      table.push_back(node);
      positions.push_back(pos);
      if (categories) c.derived_pos_.push_back({});
      if (parent >= 0) table[parent].children.push_back(id);
      std::string undefined = std::string(kind) + " '" + name +
                              "' has no description: every term must say in plain language what "
                              "it means";
      if (!body.IsDefined() || body.IsNull()) {
        c.Err(pos, undefined, "missing-description");
        continue;
      }
      if (!body.IsMap()) {
        c.Err(PosOf(body), std::string(kind) + " '" + name + "' must be a map with a description",
              "wrong-type");
        continue;
      }
      CheckKeys(body, categories ? kCategoryKeys : kPurposeKeys, std::string(kind) + " " + name);
      const YAML::Node d = body["description"];
      if (!d.IsDefined() || d.IsNull() || (d.IsScalar() && d.Scalar().empty())) {
        c.Err(pos, undefined, "missing-description");
      } else if (!d.IsScalar()) {
        c.Err(PosOf(d), "a description must be text", "wrong-type");
      } else {
        table[id].description = d.Scalar();
      }
      if (!categories && body["gpc"].IsDefined()) {
        const YAML::Node g = body["gpc"];
        if (!g.IsScalar() || (g.Scalar() != "true" && g.Scalar() != "false")) {
          c.Err(PosOf(g), "'gpc' must be true or false", "wrong-type");
        } else {
          table[id].gpc = g.Scalar() == "true";
        }
      }
      if (categories && body["derived_from"].IsDefined()) {
        c.derived_pos_[id] = PosOf(body["derived_from"]);
        pending_derived_.push_back({id, body["derived_from"]});
      }
      if (body["children"].IsDefined() && !body["children"].IsNull()) {
        if (!body["children"].IsMap()) {
          c.Err(PosOf(body["children"]), "'children' must be a map of name: {description, ...}",
                "wrong-type");
        } else {
          Nodes(body["children"], name, id, categories);
        }
      }
    }
  }

  void ResolveDerived() {
    for (auto& [id, node] : pending_derived_) {
      for (auto& [name, pos] : Names(node, node, "'derived_from'")) {
        int32_t src = t.FindCategory(name);
        if (src < 0) {
          c.Err(pos, "derived_from names undefined category '" + name + "'" +
                         DidYouMeanSuffix(name, AllNames(t.categories_)),
                "undefined-category");
        } else if (t.CategoryCovers(src, id) || t.CategoryCovers(id, src)) {
          c.Err(pos, "category '" + t.categories_[id].name + "' cannot derive from '" + name +
                         "': one contains the other",
                "bad-derived-from");
        } else {
          t.categories_[id].derived_from.push_back(src);
        }
      }
    }
    RefuseDerivedCycles();
  }

  // A category derived (directly, or through an ancestor's derived_from) from itself has no
  // source to be bounded by: the chain must end in data that is not derived.
  void RefuseDerivedCycles() {
    const size_t n = t.categories_.size();
    auto sources = [&](int32_t x) {  // x's own derived_from and its ancestors'
      std::vector<int32_t> out;
      for (int32_t a = x; a >= 0; a = t.categories_[a].parent) {
        out.insert(out.end(), t.categories_[a].derived_from.begin(),
                   t.categories_[a].derived_from.end());
      }
      return out;
    };
    std::vector<uint8_t> color(n, 0);  // 0 unseen, 1 on the path, 2 done
    std::vector<std::pair<int32_t, std::vector<int32_t>>> stack;
    for (size_t start = 0; start < n; ++start) {
      if (color[start]) continue;
      color[start] = 1;
      stack.push_back({static_cast<int32_t>(start), sources(static_cast<int32_t>(start))});
      while (!stack.empty()) {
        auto& [x, next] = stack.back();
        if (next.empty()) {
          color[x] = 2;
          stack.pop_back();
          continue;
        }
        const int32_t y = next.back();
        next.pop_back();
        if (color[y] == 1) {
          int32_t at = x;
          while (at >= 0 && t.categories_[at].derived_from.empty()) at = t.categories_[at].parent;
          c.Err(c.derived_pos_[at < 0 ? x : at],
                "derived_from makes a cycle: '" + t.categories_[x].name + "' is derived from '" +
                    t.categories_[y].name + "', which is derived from it in turn; a derived "
                    "category needs a source that is not derived from it",
                "derived-cycle");
          return;
        }
        if (color[y] == 0) {
          color[y] = 1;
          stack.push_back({y, sources(y)});
        }
      }
    }
  }

  static std::vector<std::string> AllNames(const std::vector<TaxonomyNode>& nodes) {
    std::vector<std::string> out;
    for (const auto& n : nodes) out.push_back(n.name);
    return out;
  }

  void Rules(const YAML::Node& root, const YAML::Node& n) {
    if (!n.IsDefined() || n.IsNull()) {
      c.Err(PosOf(root), "'rules' is required", "missing-field");
      return;
    }
    if (!n.IsSequence()) {
      c.Err(PosOf(n), "'rules' must be a list", "wrong-type");
      return;
    }
    ResolveDerived();
    std::vector<std::string> clause_ids;
    for (const auto& cl : t.clauses_) clause_ids.push_back(cl.id);
    for (const auto& e : n) {
      if (!e.IsMap()) {
        c.Err(PosOf(e), "each rule must be a map with id, categories, purposes, basis, clauses",
              "wrong-type");
        continue;
      }
      CheckKeys(e, kRuleKeys, "a rule");
      OneRule(e, clause_ids);
    }
  }

  // One rule, added when it is whole (an error is reported and the rule left out otherwise).
  void OneRule(const YAML::Node& e, const std::vector<std::string>& clause_ids) {
    Rule r;
    TermsCompiler::RuleSource src;
    src.pos = PosOf(e);
    auto id = Scalar(e, e["id"], "rule 'id'", true);
    if (!id) return;
    r.id = *id;
    if (!ValidName(r.id)) {
      c.Err(PosOf(e["id"]), "rule id '" + r.id + "' may hold only a-z, 0-9, '_' and '-'",
            "bad-name");
    }
    if (t.rule_index_.count(r.id)) {
      c.Err(PosOf(e["id"]), "duplicate rule id '" + r.id + "'", "duplicate-id");
      return;
    }
    if (auto s = Scalar(e, e["summary"], "rule 'summary'", false)) {
      r.summary = *s;
      src.summary_pos = PosOf(e["summary"]);
    }
    bool ok = RuleBasis(e, &r, &src);
    RuleConsentFields(e, ok, &r);
    ok &= RuleScope(e, clause_ids, &r, &src);
    if (!ok) return;
    if (r.basis == Basis::kNecessary) WarnNecessaryTraining(r, src);
    t.rule_index_[r.id] = static_cast<int32_t>(t.rules_.size());
    t.rules_.push_back(std::move(r));
    c.rule_pos_.push_back(std::move(src));
  }

  // basis (and, for a rule that asks people, its summary). False when it has none usable.
  bool RuleBasis(const YAML::Node& e, Rule* r, TermsCompiler::RuleSource* src) {
    auto basis = Scalar(e, e["basis"], "rule 'basis'", true);
    src->basis_pos = e["basis"].IsDefined() ? PosOf(e["basis"]) : src->pos;
    static const std::vector<std::string> kBases = {"necessary", "consent", "objectable",
                                                    "prohibited"};
    if (!basis) return false;
    if (*basis == "necessary") {
      r->basis = Basis::kNecessary;
    } else if (*basis == "consent") {
      r->basis = Basis::kConsent;
    } else if (*basis == "objectable") {
      r->basis = Basis::kObjectable;
    } else if (*basis == "prohibited") {
      r->basis = Basis::kProhibited;
    } else {
      c.Err(src->basis_pos,
            "unknown basis '" + *basis + "': use necessary, consent, objectable or prohibited" +
                DidYouMeanSuffix(*basis, kBases),
            "bad-basis");
      return false;
    }
    const bool asks = r->basis == Basis::kConsent || r->basis == Basis::kObjectable;
    if (asks && r->summary.empty()) {
      c.Err(src->pos,
            "rule '" + r->id + "' asks people to choose (basis " + *basis +
                ") but has no 'summary': the sentence shown next to its switch",
            "missing-summary");
    }
    return true;
  }

  // consent_from and consent_valid_for, where the basis allows them (`basis_ok`: it is known).
  void RuleConsentFields(const YAML::Node& e, bool basis_ok, Rule* r) {
    const bool asks = basis_ok && (r->basis == Basis::kConsent || r->basis == Basis::kObjectable);
    if (auto s = Scalar(e, e["consent_from"], "'consent_from'", false)) {
      static const std::vector<std::string> kFrom = {"subjects", "account",
                                                     "account_and_subjects"};
      if (*s == "subjects") {
        r->consent_from = ConsentFrom::kSubjects;
      } else if (*s == "account") {
        r->consent_from = ConsentFrom::kAccount;
      } else if (*s == "account_and_subjects") {
        r->consent_from = ConsentFrom::kAccountAndSubjects;
      } else {
        c.Err(PosOf(e["consent_from"]),
              "unknown consent_from '" + *s + "': use subjects, account or account_and_subjects" +
                  DidYouMeanSuffix(*s, kFrom),
              "bad-consent-from");
      }
      if (basis_ok && !asks) {
        c.Err(PosOf(e["consent_from"]), "consent_from applies only to consent and objectable rules",
              "misplaced-field");
      }
    }
    if (auto s = Scalar(e, e["consent_valid_for"], "'consent_valid_for'", false)) {
      auto d = ParseDuration(*s);
      if (!d) {
        c.Err(PosOf(e["consent_valid_for"]), d.error().message, "bad-duration");
      } else if (basis_ok && r->basis != Basis::kConsent) {
        c.Err(PosOf(e["consent_valid_for"]), "consent_valid_for applies only to consent rules",
              "misplaced-field");
      } else {
        r->consent_valid_for = *d;
      }
    }
  }

  // categories, purposes and clauses, each defined. False when one is not.
  bool RuleScope(const YAML::Node& e, const std::vector<std::string>& clause_ids, Rule* r,
                 TermsCompiler::RuleSource* src) {
    bool ok = true;
    auto undefined = [&](const SourcePos& pos, const char* what, const std::string& name,
                         const std::vector<std::string>& known, const char* code) {
      c.Err(pos, "rule '" + r->id + "' " + what + " '" + name + "'" +
                     DidYouMeanSuffix(name, known),
            code);
      ok = false;
    };
    for (auto& [name, pos] : Names(e, e["categories"], "rule 'categories'")) {
      const int32_t id = t.FindCategory(name);
      if (id < 0) {
        undefined(pos, "names undefined category", name, AllNames(t.categories_),
                  "undefined-category");
      } else if (std::find(r->categories.begin(), r->categories.end(), id) == r->categories.end()) {
        r->categories.push_back(id);
        src->category_pos.push_back(pos);
      }
    }
    for (auto& [name, pos] : Names(e, e["purposes"], "rule 'purposes'")) {
      const int32_t id = t.FindPurpose(name);
      if (id < 0) {
        undefined(pos, "names undefined purpose", name, AllNames(t.purposes_), "undefined-purpose");
      } else if (std::find(r->purposes.begin(), r->purposes.end(), id) == r->purposes.end()) {
        r->purposes.push_back(id);
        src->purpose_pos.push_back(pos);
      }
    }
    for (auto& [name, pos] : Names(e, e["clauses"], "rule 'clauses' (the clauses it rests on)")) {
      const int32_t id = t.FindClause(name);
      if (id < 0) {
        undefined(pos, "cites undefined clause", name, clause_ids, "undefined-clause");
      } else {
        r->clauses.push_back(id);
        r->clause_ids.push_back(name);
      }
    }
    return ok;
  }

  void WarnNecessaryTraining(const Rule& r, const TermsCompiler::RuleSource& src) {
    for (size_t i = 0; i < r.purposes.size(); ++i) {
      const std::string& pn = t.purposes_[r.purposes[i]].name;
      if (pn == "ai_training" || pn.starts_with("ai_training.")) {
        c.Warn(src.purpose_pos[i],
               "rule '" + r.id + "' makes '" + pn +
                   "' necessary: training models is not needed to deliver a service",
               "necessary-training");
      }
    }
  }

  std::vector<std::pair<int32_t, YAML::Node>> pending_derived_;
};

TermsCompiler::TermsCompiler(std::string_view yaml, std::string_view file)
    : yaml_(yaml), file_(file), terms_(std::make_shared<Terms>()) {}

void TermsCompiler::Report(Severity s, SourcePos pos, std::string message, std::string code) {
  diagnostics_.push_back(
      Diagnostic{file_, pos.line, pos.column, s, std::move(message), std::move(code)});
}

LintResult TermsCompiler::Run() {
  LintResult out;
  terms_->source_ = yaml_;
  YamlGuardProblem guard;
  if (!ValidUtf8(yaml_)) {
    guard = {1, 1, "the file is not valid UTF-8: save it as UTF-8", "not-utf8"};
  } else {
    guard = CheckYamlBounds(yaml_);
  }
  if (!guard.message.empty()) {
    Err({guard.line, guard.column}, guard.message, guard.code);
  } else try {
    YAML::Node root = YAML::Load(yaml_);
    TermsCompilerParser parser{*this, *terms_, {}};
    parser.Top(root);
  } catch (const YAML::Exception& e) {
    SourcePos pos = e.mark.is_null() ? SourcePos{} : SourcePos{e.mark.line + 1, e.mark.column + 1};
    Err(pos, "YAML syntax: " + e.msg, "yaml-syntax");
  } catch (const std::exception& e) {
    Err({}, std::string("could not read the document: ") + e.what(), "yaml-syntax");
  }
  // Missing descriptions and summaries leave the rules well defined; anything else does not.
  auto structural = [](const Diagnostic& d) {
    return d.severity == Severity::kError && d.code != "missing-description" &&
           d.code != "missing-summary";
  };
  bool parsed_ok = std::none_of(diagnostics_.begin(), diagnostics_.end(), structural);
  if (parsed_ok) {
    BuildTable();
    CheckDerived();
    WarnUncovered();
  }
  std::stable_sort(diagnostics_.begin(), diagnostics_.end(),
                   [](const Diagnostic& a, const Diagnostic& b) {
                     return std::tie(a.line, a.column) < std::tie(b.line, b.column);
                   });
  bool structural_ok = std::none_of(diagnostics_.begin(), diagnostics_.end(), structural);
  out.diagnostics = std::move(diagnostics_);
  if (structural_ok) out.draft = terms_;
  if (!out.has_errors()) out.terms = std::move(terms_);
  return out;
}

}  // namespace assent
