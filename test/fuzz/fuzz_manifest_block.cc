// Fuzz target: a manifest block as the gate reads it (filter/manifest.h). Property: the fast
// path (one parse_many over the block) and reading each line alone give every line the same
// verdict — blank, malformed with the same reason, or the same item — whatever bytes follow the
// block.
#include <simdjson.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "filter/filter.h"
#include "filter/manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static simdjson::dom::parser block_parser, line_parser;
  static const assent::FilterOptions options = [] {
    assent::FilterOptions o;
    o.read_signals = true;
    return o;
  }();
  std::string block(reinterpret_cast<const char*>(data), size);
  // The padding is whatever follows in the file when a block is a mapping of it (the next
  // line): bytes a reader must not take for part of the block.
  static constexpr char kNext[] = "\"\n{\"id\":\"x\\\"\"}\r\n\t[,:]\xff";
  for (size_t k = 0; k < simdjson::SIMDJSON_PADDING; ++k) block.push_back(kNext[k % (sizeof kNext - 1)]);
  static assent::internal::BlockItems items;
  assent::internal::ReadBlock(block_parser, options, block.data(), size, &items);
  size_t covered = 0;
  for (const auto& line : items.lines) {
    if (line.begin != covered || line.end <= line.begin) std::abort();  // lines tile the block
    covered = line.end;
    std::string_view text(block.data() + line.begin, line.end - line.begin);
    if (text.ends_with('\n')) text.remove_suffix(1);
    if (text.ends_with('\r')) text.remove_suffix(1);
    const bool blank = text.find_first_not_of(" \t") == std::string_view::npos;
    assent::internal::ManifestItem alone;
    std::string error;
    if (!blank) {
      std::string copy(text);  // a line read alone, as the fuzzer of one line reads it
      error = assent::internal::ParseManifestItem(line_parser, options, copy, &alone);
    }
    using Kind = assent::internal::BlockItems::Line::Kind;
    if (blank != (line.kind == Kind::kBlank)) std::abort();
    if (blank) continue;
    if (!error.empty()) {
      if (line.kind != Kind::kMalformed || items.Error(line) != error) std::abort();
      continue;
    }
    if (line.kind != Kind::kItem) std::abort();
    const auto& it = items.items[line.item];
    if (it.id != alone.id || it.category != alone.category || it.has_account != alone.has_account ||
        (it.has_account && it.account != alone.account) || it.subject_count != alone.subjects.size()) {
      std::abort();
    }
    for (uint32_t k = 0; k < it.subject_count; ++k) {
      if (items.subjects[it.first_subject + k] != alone.subjects[k]) std::abort();
    }
  }
  if (covered != size) std::abort();
  return 0;
}
