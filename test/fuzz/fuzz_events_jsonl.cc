// Fuzz target: the consent events JSON Lines reader (`check --events`, `ledger import`).
// Property: what it accepts is well formed — positions increase, times never decrease and lie
// in the storable range.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "engine/events_jsonl.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto events = assent::ParseEventsJsonl(text, "fuzz.jsonl");
  if (!events) {
    if (events.error().message.find("fuzz.jsonl:") != 0) std::abort();  // names its line
    return 0;
  }
  uint64_t last_position = 0;
  assent::Timestamp last_at = INT64_MIN;
  for (const auto& e : *events) {
    if (e.position <= last_position || e.at < last_at || !assent::TimeInRange(e.at)) std::abort();
    if (e.categories.empty() || e.purposes.empty() || e.party.empty()) std::abort();
    last_position = e.position;
    last_at = e.at;
  }
  return 0;
}
