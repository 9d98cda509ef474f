// Duplicate keys in JSON objects. RFC 8259 leaves their meaning open and parsers disagree (the
// first value, the last, an error), so an object read one way by Assent and another way by a
// Python or JavaScript reader of the same bytes could be decided on data nobody sees. Every
// JSON object Assent reads from outside is refused when a key repeats.
#ifndef ASSENT_COMMON_JSON_KEYS_H_
#define ASSENT_COMMON_JSON_KEYS_H_

#include <optional>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace assent {

// The first key of `obj` (a simdjson::dom::object, or anything iterable as {key, value}
// fields) that appears twice, or nullopt.
template <class Object>
std::optional<std::string_view> DuplicateKey(Object obj) {
  // Small objects (every object Assent reads has a handful of fields): a linear scan.
  std::string_view small[16];
  size_t n = 0;
  std::unordered_set<std::string_view> large;
  for (auto field : obj) {
    std::string_view k = field.key;
    if (n < 16) {
      for (size_t i = 0; i < n; ++i) {
        if (small[i] == k) return k;
      }
      small[n++] = k;
      continue;
    }
    if (large.empty()) large.insert(small, small + n);
    if (!large.insert(k).second) return k;
  }
  return std::nullopt;
}

}  // namespace assent

#endif  // ASSENT_COMMON_JSON_KEYS_H_
