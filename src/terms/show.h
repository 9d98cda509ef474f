// `assent terms show`: the leaf matrix of a terms version — each leaf (category, purpose)
// pair with its basis and deciding rule — as an aligned table or JSON.
#ifndef ASSENT_TERMS_SHOW_H_
#define ASSENT_TERMS_SHOW_H_

#include <nlohmann/json.hpp>
#include <string>

#include "assent/terms.h"

namespace assent {

std::string RenderMatrixTable(const Terms& terms);
nlohmann::ordered_json MatrixJson(const Terms& terms);

// "consent" or "unlisted" for one pair.
std::string PairBasisName(const Terms& terms, int32_t category, int32_t purpose);

}  // namespace assent

#endif  // ASSENT_TERMS_SHOW_H_
