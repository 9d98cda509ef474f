// `assent terms diff`: what changed between two versions of a terms document, and whether
// any use became more permissive (a loosening a CI job can refuse).
#ifndef ASSENT_TERMS_DIFF_H_
#define ASSENT_TERMS_DIFF_H_

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "assent/terms.h"

namespace assent {

enum class Change : uint8_t { kTightened, kLoosened };

// One leaf (category, purpose) pair whose treatment changed.
struct PairChange {
  std::string category, purpose;
  std::string old_basis, new_basis;  // "unlisted" when no rule decides
  std::string old_rule, new_rule;    // "" when unlisted
  Change change = Change::kTightened;
  std::string why;  // "basis", "consent_from", "consent_valid_for"
  std::string detail;
};

struct TermsDiff {
  std::string old_label, new_label;
  std::vector<std::string> clauses_added, clauses_removed, clauses_reworded;
  std::vector<std::string> categories_added, categories_removed, categories_redefined;
  std::vector<std::string> purposes_added, purposes_removed, purposes_redefined;
  std::vector<PairChange> pairs;
  bool loosened() const;
};

// Compares every leaf pair of either version. A pair named in only one version is read in
// the other through its nearest defined ancestor (data labelled "service_generated.telemetry"
// was "service_generated" data before the finer category existed); nothing defined: unlisted.
TermsDiff DiffTerms(const Terms& old_terms, const Terms& new_terms);

std::string RenderDiff(const TermsDiff& d);
nlohmann::ordered_json DiffJson(const TermsDiff& d);

}  // namespace assent

#endif  // ASSENT_TERMS_DIFF_H_
