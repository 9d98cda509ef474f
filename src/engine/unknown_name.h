// The error for a category or purpose the terms do not define, naming the nearest one: what
// Decide and the gate's verdicts both answer.
#ifndef ASSENT_ENGINE_UNKNOWN_NAME_H_
#define ASSENT_ENGINE_UNKNOWN_NAME_H_

#include <string>
#include <string_view>
#include <vector>

#include "assent/result.h"
#include "assent/terms.h"
#include "common/strings.h"

namespace assent::internal {

inline std::unexpected<Error> UnknownName(std::string_view what, std::string_view name,
                                          const Terms& t, const std::vector<TaxonomyNode>& nodes) {
  std::vector<std::string> names;
  for (const auto& n : nodes) names.push_back(n.name);
  if (name.empty()) return InvalidArgumentError("no " + std::string(what) + " given");
  return InvalidArgumentError("unknown " + std::string(what) + " '" + std::string(name) +
                              "' in terms " + t.label() + DidYouMeanSuffix(name, names));
}

}  // namespace assent::internal

#endif  // ASSENT_ENGINE_UNKNOWN_NAME_H_
