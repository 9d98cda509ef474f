// Fuzz target: the terms compiler (YAML in, diagnostics or a compiled table out). Properties:
// it never throws or crashes, and compiling the same source again gives the same table.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "assent/terms.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view yaml(reinterpret_cast<const char*>(data), size);
  assent::LintResult r = assent::LintTerms(yaml, "fuzz.yaml");
  for (const auto& d : r.diagnostics) {
    if (d.message.empty() || d.code.empty()) std::abort();
  }
  if (!r.terms) return 0;
  assent::LintResult again = assent::LintTerms(r.terms->source(), "again.yaml");
  if (!again.terms) std::abort();
  const auto& a = *r.terms;
  const auto& b = *again.terms;
  if (a.categories().size() != b.categories().size() || a.purposes().size() != b.purposes().size()) {
    std::abort();
  }
  for (int32_t c = 0; c < static_cast<int32_t>(a.categories().size()); ++c) {
    for (int32_t p = 0; p < static_cast<int32_t>(a.purposes().size()); ++p) {
      if (a.DecidingRule(c, p) != b.DecidingRule(c, p)) std::abort();
    }
  }
  return 0;
}
