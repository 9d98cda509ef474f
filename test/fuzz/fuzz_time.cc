// Fuzz target: the time and duration parsers. Property: whatever parses is in the storable
// range and survives a round trip through its text form.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "assent/time.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto t = assent::ParseTime(text)) {
    if (!assent::TimeInRange(*t)) std::abort();
    auto back = assent::ParseTime(assent::FormatTime(*t));
    if (!back || *back != *t) std::abort();
  }
  if (auto d = assent::ParseDuration(text)) {
    if (*d <= 0 || *d > assent::kMaxDuration) std::abort();
    auto back = assent::ParseDuration(assent::FormatDuration(*d));
    if (!back || *back != *d) std::abort();
  }
  if (auto s = assent::ParseStoredTime(text)) {
    auto back = assent::ParseStoredTime(assent::FormatTime(*s));
    if (!back || *back != *s) std::abort();
  }
  return 0;
}
