// Fuzz target: one manifest line as the training-data gate reads it. Property: an accepted
// item has its id and category, and no subject or account that is empty or blank.
#include <simdjson.h>

#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/strings.h"
#include "filter/filter.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static simdjson::dom::parser parser;
  static const assent::FilterOptions options;
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  assent::internal::ManifestItem item;
  const std::string error = assent::internal::ParseManifestItem(parser, options, line, &item);
  if (!error.empty()) return 0;
  if (!assent::ValidUtf8(line)) std::abort();
  if (item.has_account && assent::BlankId(item.account)) std::abort();
  for (const auto& s : item.subjects) {
    if (assent::BlankId(s)) std::abort();
  }
  return 0;
}
