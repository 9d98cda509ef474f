// `assent impact`: which datasets, shards and models hold a party's data, and whether each was
// built before or after the party's latest withdrawal or objection for its purpose — the
// retraining obligations a withdrawal creates.
#ifndef ASSENT_FILTER_IMPACT_H_
#define ASSENT_FILTER_IMPACT_H_

#include <optional>
#include <string>

#include "assent/ledger.h"

namespace assent {

// JSON: {"subject"|"account":ID,"datasets":[{"name","purpose","ledger_position",
//  "withdrawal":N|null,"status":"built-before-withdrawal"|"built-after-withdrawal"|
//  "no-withdrawal","shards":[FILE...],"models":[NAME...]}...]}
std::string ImpactJson(const Ledger& ledger, PartyKind kind, const std::string& id,
                       const std::optional<std::string>& purpose);
std::string ImpactText(const Ledger& ledger, PartyKind kind, const std::string& id,
                       const std::optional<std::string>& purpose);

}  // namespace assent

#endif  // ASSENT_FILTER_IMPACT_H_
