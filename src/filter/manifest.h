// Reading a manifest block by block: lines split at '\n' (kept byte for byte, "\r\n" and a last
// line without an ending included), each line's item read in place — no copy of its strings —
// by a reader for the common shape of an item, and by simdjson where that reader is not sure
// (simdjson's verdict defines what is malformed). docs/formats/manifest.md "How it runs".
#ifndef ASSENT_FILTER_MANIFEST_H_
#define ASSENT_FILTER_MANIFEST_H_

#include <simdjson.h>

#include <deque>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "filter/filter.h"
#include "filter/line_index.h"

namespace assent::internal {

// One item's fields, as views into the block (or the parser's string buffer).
struct ItemView {
  std::string_view id, category, account;
  bool has_account = false;
  uint32_t first_subject = 0, subject_count = 0;  // a range of BlockItems::subjects
  // Opt-out signals found on the item (FilterOptions' signal fields): bit per SignalKind.
  uint8_t signals = 0;
};

// The layouts of lines a reader has learnt (manifest.cc, LineShape).
struct LineShapes;
struct LineShapesDeleter {
  void operator()(LineShapes* s) const;
};

// The lines of one block and what each holds.
struct BlockItems {
  struct Line {
    uint32_t begin = 0, end = 0;  // the line's bytes, its ending included
    enum class Kind : uint8_t { kBlank, kItem, kMalformed } kind = Kind::kBlank;
    // kItem: the index into `items` (when collected); kMalformed: into `errors`.
    uint32_t item = 0;
  };
  std::vector<Line> lines;
  std::vector<std::string> errors;  // why each malformed line is
  const std::string& Error(const Line& l) const { return errors[l.item]; }
  std::vector<ItemView> items;
  std::vector<std::string_view> subjects;
  // For field-name mistakes: how many items carried the subjects and account fields, and the
  // other keys of those that lacked one (so a misspelt field name can be named).
  struct FieldStats {
    uint64_t with_subjects = 0, with_account = 0;
    std::vector<std::pair<std::string, uint64_t>> other_keys;  // at most kMaxOtherKeys
    static constexpr size_t kMaxOtherKeys = 32;
    void Other(std::string_view key, uint64_t count = 1) {
      for (auto& [k, n] : other_keys) {
        if (k == key) {
          n += count;
          return;
        }
      }
      if (other_keys.size() < kMaxOtherKeys) other_keys.emplace_back(std::string(key), count);
    }
  } stats;
  // Copies of the items' strings (the parser reuses its buffers for every document): `text`
  // is reserved to the block's size, which their total never exceeds, so views into it stay
  // valid; `overflow` is the guard should it ever not be.
  struct Arena {
    std::string text;
    std::deque<std::string> overflow;
    std::string_view Keep(std::string_view v) {
      if (text.size() + v.size() > text.capacity()) return overflow.emplace_back(v);
      const size_t at = text.size();
      text.append(v);
      return std::string_view(text.data() + at, v.size());
    }
    void Reset(size_t capacity) {
      text.clear();
      text.reserve(capacity);
      overflow.clear();
    }
  } arena;
  BlockIndex index;  // the block's line ends and quotes (scratch, kept for its memory)
  // Line layouts learnt from earlier lines (kept from block to block), and the field names
  // they were learnt under.
  std::unique_ptr<LineShapes, LineShapesDeleter> shapes;
  std::string shapes_for;
  void Clear() {
    lines.clear();
    errors.clear();
    items.clear();
    subjects.clear();
    stats = FieldStats{};
  }
};

// Opt-out signals an item may carry (ItemView::signals).
inline constexpr uint8_t kSignalContentUsage = 1, kSignalContentSignal = 2, kSignalTdmRep = 4,
                         kSignalC2pa = 8;

// The item in one parsed object, or why it is malformed; with `arena`, the strings are copied
// into it (the views then outlive the parser's next use).
std::string ReadItem(simdjson::dom::object obj, const FilterOptions& o, ItemView* it,
                     std::vector<std::string_view>* subjects, BlockItems::Arena* arena,
                     BlockItems::FieldStats* stats = nullptr);

// Receives a block's items in line order as they are read, each while its views are valid
// (only during the call): what the gate decides at once, copying nothing.
class ItemSink {
 public:
  virtual ~ItemSink() = default;
  virtual void Item(uint32_t line, const ItemView& item,
                    std::span<const std::string_view> subjects) = 0;
  // Forget every item received for this block: it is read again line by line.
  virtual void Restart() = 0;
};

// Reads every line of `block` (its first `size` bytes; at least SIMDJSON_PADDING readable bytes
// follow them) into `out->lines`. Each item goes to `sink`; without one, items are collected in
// `out->items` and `out->subjects`, whose views stay valid while `block` does, until the next
// call. Never writes to `block`.
void ReadBlock(simdjson::dom::parser& parser, const FilterOptions& o, const char* block,
               size_t size, BlockItems* out, ItemSink* sink = nullptr);

}  // namespace assent::internal

#endif  // ASSENT_FILTER_MANIFEST_H_
