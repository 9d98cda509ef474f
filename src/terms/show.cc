// The leaf matrix of a terms version, for people (an aligned table) and programs (JSON).
#include "terms/show.h"

#include <algorithm>
#include <map>

#include "common/strings.h"

namespace assent {
namespace {

std::string FromText(const Rule& r) {
  if (r.basis != Basis::kConsent && r.basis != Basis::kObjectable) return "";
  return std::string(ConsentFromName(r.consent_from));
}

}  // namespace

std::string PairBasisName(const Terms& t, int32_t c, int32_t p) {
  int32_t r = t.DecidingRule(c, p);
  return r == Terms::kUnlisted ? "unlisted" : std::string(BasisName(t.rules()[r].basis));
}

std::string RenderMatrixTable(const Terms& t) {
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"CATEGORY", "PURPOSE", "BASIS", "FROM", "RULE", "CLAUSES"});
  std::map<std::string, int> counts;
  for (int32_t c = 0; c < static_cast<int32_t>(t.categories().size()); ++c) {
    if (!t.categories()[c].leaf()) continue;
    for (int32_t p = 0; p < static_cast<int32_t>(t.purposes().size()); ++p) {
      if (!t.purposes()[p].leaf()) continue;
      int32_t r = t.DecidingRule(c, p);
      std::string basis = PairBasisName(t, c, p);
      ++counts[basis];
      if (r == Terms::kUnlisted) {
        rows.push_back({t.categories()[c].name, t.purposes()[p].name, basis, "", "-", ""});
      } else {
        const Rule& rule = t.rules()[r];
        std::string basis_text = basis;
        if (rule.consent_valid_for) basis_text += " (" + FormatDuration(*rule.consent_valid_for) + ")";
        rows.push_back({t.categories()[c].name, t.purposes()[p].name, basis_text, FromText(rule),
                        rule.id, Join(rule.clause_ids, ",")});
      }
    }
  }
  std::vector<size_t> width(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::string out = "terms " + t.label() + " (effective " + FormatTime(t.effective()) + ")\n";
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  std::string summary;
  for (const char* b : {"necessary", "objectable", "consent", "prohibited", "unlisted"}) {
    if (counts[b]) summary += (summary.empty() ? "" : ", ") + std::to_string(counts[b]) + " " + b;
  }
  out += std::to_string(rows.size() - 1) + " leaf pairs: " + summary + "\n";
  return out;
}

nlohmann::ordered_json MatrixJson(const Terms& t) {
  nlohmann::ordered_json j;
  j["terms"] = t.label();
  j["effective"] = FormatTime(t.effective());
  auto pairs = nlohmann::ordered_json::array();
  for (int32_t c = 0; c < static_cast<int32_t>(t.categories().size()); ++c) {
    if (!t.categories()[c].leaf()) continue;
    for (int32_t p = 0; p < static_cast<int32_t>(t.purposes().size()); ++p) {
      if (!t.purposes()[p].leaf()) continue;
      int32_t r = t.DecidingRule(c, p);
      nlohmann::ordered_json row;
      row["category"] = t.categories()[c].name;
      row["purpose"] = t.purposes()[p].name;
      row["basis"] = PairBasisName(t, c, p);
      if (r == Terms::kUnlisted) {
        row["rule"] = nullptr;
        row["clauses"] = nlohmann::ordered_json::array();
      } else {
        const Rule& rule = t.rules()[r];
        row["rule"] = rule.id;
        row["clauses"] = rule.clause_ids;
        if (!FromText(rule).empty()) row["consent_from"] = FromText(rule);
        if (rule.consent_valid_for) {
          row["consent_valid_for"] = FormatDuration(*rule.consent_valid_for);
        }
      }
      pairs.push_back(std::move(row));
    }
  }
  j["pairs"] = std::move(pairs);
  return j;
}

}  // namespace assent
