// Reading a manifest block (manifest.h), a window at a time: the window indexed (line_index.h),
// then each line read by comparison with a layout learnt from an earlier line (LineShape), else
// in place by FastLine where it can be sure, else parsed alone by simdjson (a malformed line, an
// escape in a field read, an unusual number...), so every line gets the verdict simdjson would
// give it. UTF-8 is checked once a window (not at all for ASCII), or line by line.
#include "filter/manifest.h"

#include <cstring>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <optional>

#include "common/json_keys.h"
#include "common/strings.h"

namespace assent::internal {
namespace {

using simdjson::dom::element;
using simdjson::dom::object;

// Equal strings, cheaply told apart by size and first byte before any memcmp (keys are short).
// Short ones (keys, field names) by two overlapping loads from each end, never past either.
inline bool Same(std::string_view a, std::string_view b) {
  const size_t n = a.size();
  if (n != b.size()) return false;
  if (n == 0) return true;
  if (a[0] != b[0]) return false;
  auto load8 = [](const char* p) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    return v;
  };
  auto load4 = [](const char* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
  };
  if (n >= 8 && n <= 16) {
    return load8(a.data()) == load8(b.data()) && load8(a.data() + n - 8) == load8(b.data() + n - 8);
  }
  if (n >= 4 && n < 8) {
    return load4(a.data()) == load4(b.data()) && load4(a.data() + n - 4) == load4(b.data() + n - 4);
  }
  if (n < 4) return a.back() == b.back() && (n < 3 || a[1] == b[1]);
  return std::memcmp(a.data(), b.data(), n) == 0;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// A stated preference: what one key of a dictionary-like value says.
enum class Preference { kUnknown, kYes, kNo };

// The preference `key` has in a dictionary-like value ("train-ai=n, search=y"): members are
// separated by ',' (or ';'), keys and values compared without regard to case, a quoted value
// unquoted; y/yes/?1 allow, n/no/?0 disallow, anything else (or a key without '=') is unknown.
// As when Structured Fields parse a Dictionary, a key given again replaces what it said before.
Preference LastPreference(std::string_view value, std::string_view key) {
  Preference said = Preference::kUnknown;
  while (!value.empty()) {
    const size_t sep = value.find_first_of(",;");
    const std::string_view member = Trim(value.substr(0, sep));
    value = sep == std::string_view::npos ? std::string_view() : value.substr(sep + 1);
    const size_t eq = member.find('=');
    if (!EqualsIgnoreCase(Trim(member.substr(0, eq)), key)) continue;
    std::string_view v = eq == std::string_view::npos ? std::string_view() : Trim(member.substr(eq + 1));
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
    said = EqualsIgnoreCase(v, "n") || EqualsIgnoreCase(v, "no") || v == "?0"   ? Preference::kNo
           : EqualsIgnoreCase(v, "y") || EqualsIgnoreCase(v, "yes") || v == "?1" ? Preference::kYes
                                                                                 : Preference::kUnknown;
  }
  return said;
}

// Whether an IETF AIPREF Content-Usage value disallows training. The vocabulary's categories
// nest — automated processing (`bots`) holds AI training (`train-ai`), which holds generative AI
// training (`train-genai`) — and a preference stated for a wider category applies where none is
// stated for the narrower one. A "no" to generative training excludes too: the gate cannot know
// whether the model trained is generative.
bool ContentUsageSaysNo(std::string_view value) {
  Preference training = LastPreference(value, "train-ai");
  if (training == Preference::kUnknown) training = LastPreference(value, "bots");
  Preference generative = LastPreference(value, "train-genai");
  if (generative == Preference::kUnknown) generative = training;
  return training == Preference::kNo || generative == Preference::kNo;
}

// Whether a C2PA / CAWG training-and-data-mining value reserves training: an entry for
// ai_training or ai_generative_training (any prefix: cawg., c2pa.) whose `use` is notAllowed or
// constrained (which the spec says to treat as notAllowed without more information). The value
// may be the entries map itself, the assertion's data ({"entries": {...}}, as CAWG 1.1 and
// C2PA 1.x write it), a whole assertion ({"label": ..., "data": {...}}), or a list of those (a
// manifest's assertions). Nesting beyond that is not read.
bool C2paSaysNo(element value, int depth) {
  if (depth > 4) return false;
  simdjson::dom::array list;
  if (!value.get_array().get(list)) {
    for (element e : list) {
      if (C2paSaysNo(e, depth + 1)) return true;
    }
    return false;
  }
  object map;
  if (value.get_object().get(map)) return false;
  element inner;
  if (!map["entries"].get(inner) || !map["data"].get(inner)) return C2paSaysNo(inner, depth + 1);
  for (auto field : map) {
    const std::string_view key = field.key;
    const size_t dot = key.find('.');
    const std::string_view entry = dot == std::string_view::npos ? key : key.substr(dot + 1);
    if (!EqualsIgnoreCase(entry, "ai_training") && !EqualsIgnoreCase(entry, "ai_generative_training")) {
      continue;
    }
    std::string_view use;
    object assertion;
    if (!field.value.get_object().get(assertion) && !assertion["use"].get_string().get(use) &&
        (EqualsIgnoreCase(Trim(use), "notAllowed") || EqualsIgnoreCase(Trim(use), "constrained"))) {
      return true;
    }
  }
  return false;
}

// The opt-out signal in one field's value, as a SignalKind bit (0: none, or a "yes").
uint8_t SignalIn(uint8_t kind, element value) {
  std::string_view text;
  switch (kind) {
    case kSignalContentUsage:  // IETF AIPREF: train-ai=n (bots=n, train-genai=n too)
      return !value.get_string().get(text) && ContentUsageSaysNo(text) ? kind : 0;
    case kSignalContentSignal:  // Content-Signal: ai-train=no
      return !value.get_string().get(text) && LastPreference(text, "ai-train") == Preference::kNo
                 ? kind
                 : 0;
    case kSignalTdmRep: {  // W3C TDMRep: tdm-reservation 1 (a number, string or true)
      int64_t n = 0;
      bool b = false;
      return (!value.get_int64().get(n) && n == 1) ||
                     (!value.get_string().get(text) && Trim(text) == "1") ||
                     (!value.get_bool().get(b) && b)
                 ? kind
                 : 0;
    }
    case kSignalC2pa:
      return C2paSaysNo(value, 0) ? kind : 0;
  }
  return 0;
}

}  // namespace

// The item in one parsed object, or why the line is malformed.
std::string ReadItem(object obj, const FilterOptions& o, ItemView* it,
                     std::vector<std::string_view>* subjects, BlockItems::Arena* arena,
                     BlockItems::FieldStats* stats) {
  auto keep = [arena](std::string_view v) { return arena ? arena->Keep(v) : v; };
  // One pass over the fields: each known one is taken as it comes, and every key is checked
  // against the ones before it (a repeated key is refused: readers disagree on which counts).
  std::string_view keys[16];
  size_t nkeys = 0;
  std::optional<element> id, category, account, subs;
  const bool signals = o.read_signals;
  for (auto field : obj) {
    const std::string_view key = field.key;
    if (nkeys < 16) {
      for (size_t k = 0; k < nkeys; ++k) {
        if (Same(keys[k], key)) {
          return "the key \"" + std::string(key) + "\" appears twice (readers disagree on which counts)";
        }
      }
      keys[nkeys++] = key;
    } else if (auto dup = DuplicateKey(obj)) {  // (rare: a large object)
      return "the key \"" + std::string(*dup) + "\" appears twice (readers disagree on which counts)";
    }
    if (Same(key, o.id_field)) {
      id = field.value;
    } else if (Same(key, o.category_field)) {
      category = field.value;
    } else if (Same(key, o.account_field)) {
      account = field.value;
    } else if (Same(key, o.subjects_field)) {
      subs = field.value;
    } else if (signals) {
      if (Same(key, o.content_usage_field)) {
        it->signals |= SignalIn(kSignalContentUsage, field.value);
      } else if (Same(key, o.content_signal_field)) {
        it->signals |= SignalIn(kSignalContentSignal, field.value);
      } else if (Same(key, o.tdm_field)) {
        it->signals |= SignalIn(kSignalTdmRep, field.value);
      } else if (Same(key, o.c2pa_field)) {
        it->signals |= SignalIn(kSignalC2pa, field.value);
      }
    }
  }
  if (stats) {
    stats->with_subjects += subs.has_value();
    stats->with_account += account.has_value();
    if (!subs || !account) {
      for (auto field : obj) {
        const std::string_view key = field.key;
        if (!Same(key, o.id_field) && !Same(key, o.category_field)) stats->Other(key);
      }
    }
  }
  if (!id || id->get_string().get(it->id)) return "no string \"" + o.id_field + "\"";
  if (!category || category->get_string().get(it->category)) {
    return "no string \"" + o.category_field + "\"";
  }
  it->id = keep(it->id);
  it->category = keep(it->category);
  if (account && !account->is_null()) {
    if (account->get_string().get(it->account)) return "\"" + o.account_field + "\" must be a string";
    if (BlankId(it->account)) return "\"" + o.account_field + "\" is empty or only whitespace";
    it->account = keep(it->account);
    it->has_account = true;
  }
  it->first_subject = static_cast<uint32_t>(subjects->size());
  if (subs && !subs->is_null()) {
    simdjson::dom::array arr;
    if (subs->get_array().get(arr)) return "\"" + o.subjects_field + "\" must be an array of strings";
    for (auto e : arr) {
      std::string_view sv;
      if (e.get_string().get(sv)) return "\"" + o.subjects_field + "\" must be an array of strings";
      if (BlankId(sv)) return "\"" + o.subjects_field + "\" holds an empty or blank id";
      subjects->push_back(keep(sv));
    }
  }
  it->subject_count = static_cast<uint32_t>(subjects->size()) - it->first_subject;
  return "";
}

namespace {

// The text of a line: without its "\n" or "\r\n".
std::string_view Text(const char* block, const BlockItems::Line& l) {
  std::string_view t(block + l.begin, l.end - l.begin);
  if (t.ends_with('\n')) t.remove_suffix(1);
  if (t.ends_with('\r')) t.remove_suffix(1);
  return t;
}

bool Blank(std::string_view t) { return t.find_first_not_of(" \t") == std::string_view::npos; }

void Malformed(BlockItems* out, BlockItems::Line& line, std::string error) {
  line.kind = BlockItems::Line::Kind::kMalformed;
  line.item = static_cast<uint32_t>(out->errors.size());
  out->errors.push_back(std::move(error));
}

// Reads one parsed line's item: to the sink at once (its views die with the parser's next
// document), or copied into `out`.
void SetItem(BlockItems* out, BlockItems::Line& line, object obj, const FilterOptions& o,
             ItemSink* sink) {
  ItemView it;
  if (sink) out->subjects.clear();
  const size_t mark = out->subjects.size();
  std::string error =
      ReadItem(obj, o, &it, &out->subjects, sink ? nullptr : &out->arena, &out->stats);
  if (!error.empty()) {
    out->subjects.resize(mark);
    Malformed(out, line, std::move(error));
    return;
  }
  line.kind = BlockItems::Line::Kind::kItem;
  if (sink) {
    sink->Item(static_cast<uint32_t>(&line - out->lines.data()), it,
               std::span<const std::string_view>(out->subjects.data() + mark, it.subject_count));
    return;
  }
  line.item = static_cast<uint32_t>(out->items.size());
  out->items.push_back(it);
}

// One line at a time (the slow path; and how a line's verdict is defined).
void ReadLine(simdjson::dom::parser& parser, const FilterOptions& o, const char* block,
              BlockItems::Line& line, BlockItems* out, ItemSink* sink) {
  const std::string_view text = Text(block, line);
  if (Blank(text)) return;
  if (!ValidUtf8(text)) return Malformed(out, line, "not valid UTF-8");
  element doc;
  object obj;
  // The line is followed by at least SIMDJSON_PADDING readable bytes of the block.
  if (parser.parse(text.data(), text.size(), false).get(doc) || doc.get_object().get(obj)) {
    return Malformed(out, line, "not a JSON object");
  }
  SetItem(out, line, obj, o, sink);
}

// Lines of one manifest mostly share one layout, and often a few: the same keys in the same
// order, the same punctuation and spacing, the same numbers and literals; only the text inside
// the value strings differs. A LineShape is that layout, learnt from a line FastLine<true>
// read: every byte but those inside its value strings. A later line whose bytes outside its
// strings equal it, key strings included, is the same item to every reader but for the values'
// text (no '\\' or control byte is in either line, so each string's ends are two quotes in a
// row). It is read by comparing a few short pieces, where FastLine would read byte by byte.
// The values' own checks (a blank account or subject) are made again.
class LineShape {
 public:
  static constexpr uint32_t kMaxStrings = 32;
  enum class Role : uint8_t { kKey, kId, kCategory, kAccount, kSubject, kOther };
  // What each string of a line was, in order, as FastLine took it.
  struct Roles {
    Role role[kMaxStrings];
    uint32_t count = 0;
    void Add(Role r) {
      if (count < kMaxStrings) role[count] = r;
      ++count;
    }
  };

  // Learns the layout of the line `text` in `block`, which FastLine<true> read as `it` with
  // `roles`; `quote` is its first quote. False (and nothing learnt) when it has too many strings,
  // a key or a piece between strings longer than kMaxPiece, or its subjects apart.
  bool Learn(const FilterOptions& o, const char* block, std::string_view text,
             const uint32_t* quote, const Roles& roles, const ItemView& it) {
    strings_ = 0;
    const uint32_t n = roles.count;
    if (n > kMaxStrings || n == 0) return false;
    rest_.clear();
    longs_ = 0;
    const uint32_t begin = static_cast<uint32_t>(text.data() - block);
    const uint32_t end = begin + static_cast<uint32_t>(text.size());
    id_ = category_ = account_ = -1;
    first_subject_ = subject_count_ = 0;
    subjects_key_ = account_key_ = false;
    keys_ = 0;
    uint32_t prev = begin;
    for (uint32_t i = 0; i < n; ++i) {
      const uint32_t open = quote[2 * i], close = quote[2 * i + 1];
      if (!Expect(block, prev, open, &gap_[i], {false, i})) return false;
      const std::string_view value(block + open + 1, close - open - 1);
      key_[i] = Piece{};
      switch (roles.role[i]) {
        case Role::kKey:
          if (!Expect(block, open + 1, close, &key_[i], {true, i})) return false;
          key_[i].check = ~uint64_t{0};
          key_at_[keys_++] = static_cast<uint8_t>(i);
          subjects_key_ = subjects_key_ || Same(value, o.subjects_field);
          account_key_ = account_key_ || Same(value, o.account_field);
          break;
        case Role::kId:
          id_ = static_cast<int32_t>(i);
          break;
        case Role::kCategory:
          category_ = static_cast<int32_t>(i);
          break;
        case Role::kAccount:
          account_ = static_cast<int32_t>(i);
          break;
        case Role::kSubject:
          if (subject_count_ == 0) first_subject_ = i;
          if (first_subject_ + subject_count_ != i) return false;
          ++subject_count_;
          break;
        case Role::kOther:
          break;
      }
      prev = close + 1;
    }
    if (!Expect(block, prev, end, &gap_[n], {false, n}) || id_ < 0 || category_ < 0 ||
        (account_ >= 0) != it.has_account) {
      return false;
    }
    strings_ = n;
    return true;
  }

  uint32_t strings() const { return strings_; }

  // Reads `text` as an item of this layout: true, with its fields, when its bytes outside its
  // value strings are this layout's. `quote` is its first quote, and it has strings() strings.
  bool Match(const char* block, std::string_view text, const uint32_t* quote, ItemView* it,
             std::vector<std::string_view>* subjects) const {
    const uint32_t n = strings_;
    const uint32_t begin = static_cast<uint32_t>(text.data() - block);
    const uint32_t end = begin + static_cast<uint32_t>(text.size());
    // Every piece between strings, and every key, compared without a branch (8 bytes at a time
    // at most, masked to the piece; the block's padding makes reading past the line safe).
    uint64_t diff = 0;
    uint32_t prev = begin;
    for (uint32_t i = 0; i < n; ++i) {
      const uint32_t open = quote[2 * i], close = quote[2 * i + 1];
      diff |= Differs(block, prev, open, gap_[i]);
      diff |= Differs(block, open + 1, close, key_[i]) & key_[i].check;
      prev = close + 1;
    }
    diff |= Differs(block, prev, end, gap_[n]);
    if (diff) return false;
    // Pieces longer than 8 bytes: their first 8 were compared above, now the rest.
    for (uint32_t k = 0; k < longs_; ++k) {
      const uint32_t i = longs_at_[k].string;
      const Piece& p = longs_at_[k].key ? key_[i] : gap_[i];
      const uint32_t from = longs_at_[k].key ? quote[2 * i] + 1 : i == 0 ? begin : quote[2 * i - 1] + 1;
      if (std::memcmp(block + from + 8, rest_.data() + p.rest, p.len - 8) != 0) return false;
    }
    auto string = [&](uint32_t i) {
      return std::string_view(block + quote[2 * i] + 1, quote[2 * i + 1] - quote[2 * i] - 1);
    };
    it->id = string(static_cast<uint32_t>(id_));
    it->category = string(static_cast<uint32_t>(category_));
    it->has_account = account_ >= 0;
    if (it->has_account) {
      it->account = string(static_cast<uint32_t>(account_));
      if (BlankId(it->account)) return false;
    }
    const size_t mark = subjects->size();
    for (uint32_t i = first_subject_; i < first_subject_ + subject_count_; ++i) {
      const std::string_view subject = string(i);
      if (BlankId(subject)) {
        subjects->resize(mark);
        return false;
      }
      subjects->push_back(subject);
    }
    it->first_subject = static_cast<uint32_t>(mark);
    it->subject_count = subject_count_;
    return true;
  }

  // What FastLine counts for a line of this layout (FieldStats).
  void Count(const FilterOptions& o, BlockItems::FieldStats* stats) const {
    stats->with_subjects += subjects_key_;
    stats->with_account += account_key_;
    if (subjects_key_ && account_key_) return;
    for (uint32_t k = 0; k < keys_; ++k) {
      char text[kMaxPiece];
      const std::string_view key = Text(key_[key_at_[k]], text);
      if (!Same(key, o.id_field) && !Same(key, o.category_field)) stats->Other(key);
    }
  }

 private:
  // The longest key or piece between strings a layout holds.
  static constexpr uint32_t kMaxPiece = 256;
  // Bytes expected somewhere: their number, the first 8 of them (masked to the piece), and
  // where in rest_ the others are.
  struct Piece {
    uint64_t len = 0, bits = 0, mask = 0;
    uint64_t check = 0;  // keys: all ones (compared); other strings: 0 (any text)
    uint32_t rest = 0;
  };
  struct Long {
    bool key;         // key_[string], else gap_[string] (the piece before that string)
    uint32_t string;
  };
  static uint64_t Load8(const char* p) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    return v;
  }
  bool Expect(const char* block, uint32_t from, uint32_t to, Piece* out, Long where) {
    const uint32_t len = to - from;
    if (len > kMaxPiece) return false;
    const uint32_t head = std::min<uint32_t>(len, 8);
    out->len = len;
    out->mask = head == 0 ? 0 : ~uint64_t{0} >> (64 - 8 * head);
    out->bits = Load8(block + from) & out->mask;
    if (len > 8) {
      out->rest = static_cast<uint32_t>(rest_.size());
      rest_.append(block + from + 8, len - 8);
      longs_at_[longs_++] = where;
    }
    return true;
  }
  // A piece's bytes, put together in `buf` (kMaxPiece bytes).
  std::string_view Text(const Piece& p, char* buf) const {
    std::memcpy(buf, &p.bits, 8);
    if (p.len > 8) std::memcpy(buf + 8, rest_.data() + p.rest, p.len - 8);
    return std::string_view(buf, p.len);
  }
  // Nonzero when block[from, to) is not the piece.
  static uint64_t Differs(const char* block, uint32_t from, uint32_t to, const Piece& p) {
    return (uint64_t{to - from} ^ p.len) | ((Load8(block + from) & p.mask) ^ p.bits);
  }

  uint32_t strings_ = 0;  // 0: nothing learnt
  Piece gap_[kMaxStrings + 1], key_[kMaxStrings];
  int32_t id_ = -1, category_ = -1, account_ = -1;  // which string each is (-1: none)
  uint32_t first_subject_ = 0, subject_count_ = 0;  // the subjects' strings, one after another
  bool subjects_key_ = false, account_key_ = false;
  uint32_t keys_ = 0;               // how many of the strings are keys
  uint8_t key_at_[kMaxStrings]{};  // which strings they are
  uint32_t longs_ = 0;              // how many pieces are longer than 8 bytes
  Long longs_at_[2 * kMaxStrings + 1];
  std::string rest_;                // their bytes after the first 8
};

// The fast path: one line read in place, without a parse tree, for the common shape of an
// item. It accepts a strict subset of JSON — no \u escapes, no escapes at all in keys or in the
// fields the gate reads, numbers that fit a double exactly enough, nesting up to kMaxDepth —
// and reads the item exactly as ReadItem does. Anything else (a signal field, a missing or
// mistyped field, a blank id, any doubt) is "not sure", and the line is read by simdjson
// instead, which is also what says why a line is malformed. The block's UTF-8 is checked
// before, as a whole.
//
//
// kIndexed: the line has no '\\' and no control byte, and `quotes` lists where its quotes are
// (offsets from `block`, its first at or after the line's start), so each string is taken in
// one step instead of scanned for its end.
// With `roles`, it also records what each string it took was (LineShape).
template <bool kIndexed>
class FastLine {
 public:
  FastLine(const FilterOptions& o, std::string_view text, const char* block = nullptr,
           const uint32_t* quotes = nullptr, LineShape::Roles* roles = nullptr)
      : o_(o), p_(text.data()), end_(text.data() + text.size()), block_(block), quote_(quotes),
        roles_(roles) {}

  // True when the line is an item, read into `*it` and `*subjects` (views into the line).
  bool Read(ItemView* it, std::vector<std::string_view>* subjects, BlockItems::FieldStats* stats) {
    // Left uninitialised (a line's keys are few, and zeroing room for 16 cost more than reading
    // them); only the first nkeys are ever read.
    const char* key_at[kMaxKeys];
    uint32_t key_len[kMaxKeys];
    auto key_of = [&](size_t k) { return std::string_view(key_at[k], key_len[k]); };
    size_t nkeys = 0;
    bool id = false, category = false, account = false, subs = false;
    const size_t mark = subjects->size();
    Space();
    if (!Take('{')) return false;
    Space();
    if (p_ < end_ && *p_ == '}') {
      ++p_;
    } else {
      for (;;) {
        std::string_view key;
        if (!Plain(&key, Role::kKey) || nkeys == kMaxKeys) return false;
        for (size_t k = 0; k < nkeys; ++k) {
          if (Same(key_of(k), key)) return false;  // a repeated key: simdjson's path says so
        }
        key_at[nkeys] = key.data();
        key_len[nkeys++] = static_cast<uint32_t>(key.size());
        Space();
        if (!Take(':')) return false;
        Space();
        if (Same(key, o_.id_field)) {
          if (!Plain(&it->id, Role::kId)) return false;
          id = true;
        } else if (Same(key, o_.category_field)) {
          if (!Plain(&it->category, Role::kCategory)) return false;
          category = true;
        } else if (Same(key, o_.account_field)) {
          account = true;
          if (!Literal("null")) {
            if (!Plain(&it->account, Role::kAccount) || BlankId(it->account)) return false;
            it->has_account = true;
          }
        } else if (Same(key, o_.subjects_field)) {
          subs = true;
          if (!Literal("null") && !Subjects(subjects)) return false;
        } else if (o_.read_signals &&
                   (Same(key, o_.content_usage_field) || Same(key, o_.content_signal_field) ||
                    Same(key, o_.tdm_field) || Same(key, o_.c2pa_field))) {
          return false;
        } else if (!Value(0)) {
          return false;
        }
        Space();
        if (p_ < end_ && *p_ == ',') {
          ++p_;
          Space();
          continue;
        }
        if (!Take('}')) return false;
        break;
      }
    }
    Space();
    if (p_ != end_ || !id || !category) return false;
    it->first_subject = static_cast<uint32_t>(mark);
    it->subject_count = static_cast<uint32_t>(subjects->size() - mark);
    stats->with_subjects += subs;
    stats->with_account += account;
    if (!subs || !account) {
      for (size_t k = 0; k < nkeys; ++k) {
        const std::string_view key = key_of(k);
        if (!Same(key, o_.id_field) && !Same(key, o_.category_field)) stats->Other(key);
      }
    }
    return true;
  }

 private:
  using Role = LineShape::Role;
  static constexpr size_t kMaxKeys = 16;
  static constexpr int kMaxDepth = 32;

  void Space() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\r' || *p_ == '\n')) ++p_;
  }
  bool Take(char c) {
    if (p_ >= end_ || *p_ != c) return false;
    ++p_;
    return true;
  }
  bool Literal(std::string_view word) {
    if (static_cast<size_t>(end_ - p_) < word.size() || std::memcmp(p_, word.data(), word.size())) {
      return false;
    }
    p_ += word.size();
    return true;
  }
  // The next '"', '\\' or control byte at or after p_, or end_. Reads 16 bytes at a time: the
  // block's padding makes reading past the line's end safe.
  const char* Special(const char* p) const {
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'),
                  below_space = _mm_set1_epi8(0x1f);
    for (; p < end_; p += 16) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
      const __m128i hit = _mm_or_si128(
          _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
          _mm_cmpeq_epi8(_mm_min_epu8(v, below_space), v));
      const int mask = _mm_movemask_epi8(hit);
      if (mask) return std::min(end_, p + __builtin_ctz(static_cast<unsigned>(mask)));
    }
    return end_;
#else
    for (; p < end_; ++p) {
      const unsigned char c = static_cast<unsigned char>(*p);
      if (c == '"' || c == '\\' || c < 0x20) return p;
    }
    return end_;
#endif
  }
  // A string without escapes, as a view of its bytes.
  bool Plain(std::string_view* out, Role role = Role::kOther) {
    if (p_ >= end_ || *p_ != '"') return false;
    if constexpr (kIndexed) {
      if (roles_) roles_->Add(role);
      // Every quote before this one opened or closed a string the reader took, so this is the
      // next on the list, and the one after it closes it (if that is on this line). The list
      // ends in the block's size, which no line's quote equals.
      if (quote_[0] != static_cast<uint32_t>(p_ - block_)) return false;
      const char* q = block_ + quote_[1];
      if (q >= end_) return false;
      quote_ += 2;
      *out = std::string_view(p_ + 1, static_cast<size_t>(q - p_ - 1));
      p_ = q + 1;
      return true;
    }
    const char* q = Special(p_ + 1);
    if (q >= end_ || *q != '"') return false;
    *out = std::string_view(p_ + 1, static_cast<size_t>(q - p_ - 1));
    p_ = q + 1;
    return true;
  }
  // Any string whose escapes are the simple ones (\" \\ \/ \b \f \n \r \t).
  bool AnyString() {
    if constexpr (kIndexed) {  // no escapes in the line
      std::string_view ignored;
      return Plain(&ignored);
    }
    if (p_ >= end_ || *p_ != '"') return false;
    const char* q = p_ + 1;
    for (;;) {
      q = Special(q);
      if (q >= end_) return false;
      if (*q == '"') break;
      if (*q != '\\' || q + 1 >= end_) return false;  // a control byte, or a lone backslash
      const char e = q[1];
      if (e != '"' && e != '\\' && e != '/' && e != 'b' && e != 'f' && e != 'n' && e != 'r' &&
          e != 't') {
        return false;  // \u and anything else: the full parser decides
      }
      q += 2;
    }
    p_ = q + 1;
    return true;
  }
  bool Subjects(std::vector<std::string_view>* subjects) {
    if (!Take('[')) return false;
    Space();
    if (Take(']')) return true;
    for (;;) {
      std::string_view s;
      if (!Plain(&s, Role::kSubject) || BlankId(s)) return false;
      subjects->push_back(s);
      Space();
      if (Take(']')) return true;
      if (!Take(',')) return false;
      Space();
    }
  }
  // A number JSON allows, short enough that every reader gets the same value.
  bool Number() {
    const char* start = p_;
    Take('-');
    int digits = 0;
    if (p_ < end_ && *p_ == '0') {
      ++p_, ++digits;
    } else {
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_, ++digits;
    }
    if (digits == 0 || (start[*start == '-'] == '0' && p_ < end_ && *p_ >= '0' && *p_ <= '9')) {
      return false;
    }
    if (p_ < end_ && *p_ == '.') {
      ++p_;
      int fraction = 0;
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_, ++fraction;
      if (fraction == 0) return false;
      digits += fraction;
    }
    if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
      ++p_;
      if (p_ < end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      int exponent = 0;
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_, ++exponent;
      if (exponent == 0 || exponent > 2) return false;
    }
    return digits <= 15;
  }
  // Any value, checked and skipped.
  bool Value(int depth) {
    if (p_ >= end_ || depth > kMaxDepth) return false;
    switch (*p_) {
      case '"':
        return AnyString();
      case '{': {
        ++p_;
        Space();
        if (Take('}')) return true;
        std::string_view key;
        for (;;) {
          if (!Plain(&key)) return false;
          Space();
          if (!Take(':')) return false;
          Space();
          if (!Value(depth + 1)) return false;
          Space();
          if (Take('}')) return true;
          if (!Take(',')) return false;
          Space();
        }
      }
      case '[': {
        ++p_;
        Space();
        if (Take(']')) return true;
        for (;;) {
          if (!Value(depth + 1)) return false;
          Space();
          if (Take(']')) return true;
          if (!Take(',')) return false;
          Space();
        }
      }
      case 't':
        return Literal("true");
      case 'f':
        return Literal("false");
      case 'n':
        return Literal("null");
      default:
        return Number();
    }
  }

  const FilterOptions& o_;
  const char* p_;
  const char* const end_;
  const char* const block_;  // kIndexed: what the quotes' offsets count from
  const uint32_t* quote_;    // kIndexed: the next quote not yet taken
  LineShape::Roles* const roles_;
};

}  // namespace

// Two layouts for each number of strings (a line without an account and with two more
// subjects has as many strings as one with both), the one read last tried first.
//
// Where lines seldom share a layout (keys in any order, say), trying and learning layouts costs
// more than it saves: when fewer than half of 1,024 lines tried matched one, the next 65,536
// lines are read without them, and then they are tried again.
struct LineShapes {
  LineShape shape[LineShape::kMaxStrings + 1][2];
  uint8_t last[LineShape::kMaxStrings + 1]{};

  bool Trying() {
    if (resting == 0) return true;
    --resting;
    return false;
  }
  void Tried(bool matched) {
    ++tried;
    missed += !matched;
    if (tried < kPeriod) return;
    if (missed * 2 > tried) resting = kRest;
    tried = missed = 0;
  }

 private:
  static constexpr uint32_t kPeriod = 1024, kRest = 65536;
  uint32_t tried = 0, missed = 0, resting = 0;
};
void LineShapesDeleter::operator()(LineShapes* s) const { delete s; }

namespace {

// Reads the lines of block[from, to) (whole lines: `to` is a line's end), with `index` of that
// stretch or, without one, finding each line's end by a search.
void ReadLines(simdjson::dom::parser& parser, const FilterOptions& o, const char* block,
               size_t from, size_t to, const BlockIndex* index, BlockItems* out, ItemSink* sink) {
  // Lines take the fast path where the stretch is valid UTF-8 (all ASCII, or checked once as a
  // whole); otherwise each line is checked alone, and only its own bytes decide.
  const bool utf8 = (index && index->ascii()) || simdjson::validate_utf8(block + from, to - from);
  const uint32_t* newline = index ? index->newlines() : nullptr;
  const uint32_t* special = index ? index->specials() : nullptr;
  const uint32_t* quotes = index ? index->quotes() : nullptr;
  const uint32_t* quotes_before = index ? index->quotes_before_newlines() : nullptr;
  LineShapes* shapes = out->shapes.get();
  uint32_t quotes_after = 0;  // the line's quotes are quotes[line_quotes, quotes_after)
  for (size_t at = from; at < to;) {
    size_t end;
    const uint32_t line_quotes = quotes_after;
    if (index) {
      if (*newline < to) {
        end = *newline++ + 1;
        quotes_after = *quotes_before++;
      } else {
        end = to;
        quotes_after = static_cast<uint32_t>(index->quote_count());
      }
    } else {
      const void* nl = std::memchr(block + at, '\n', to - at);
      end = nl ? static_cast<const char*>(nl) - block + 1 : to;
    }
    BlockItems::Line& line =
        out->lines.emplace_back(BlockItems::Line{static_cast<uint32_t>(at), static_cast<uint32_t>(end)});
    const size_t begin = at;
    at = end;
    if (utf8) {
      const std::string_view text = Text(block, line);
      ItemView it;
      const size_t mark = out->subjects.size();
      if (sink) out->subjects.clear();
      bool plain = false;  // no '\\' or control byte in the line's text: the quotes say it all
      if (index) {
        while (*special < begin) ++special;
        plain = *special >= begin + text.size();
      }
      bool read;
      if (plain) {
        // The layout learnt from the last line with as many strings, else FastLine (and its
        // layout learnt).
        const uint32_t* quote = quotes + line_quotes;
        const uint32_t strings = (quotes_after - line_quotes) / 2;
        const bool shaped = shapes->Trying() && strings > 0 && strings <= LineShape::kMaxStrings &&
                            (quotes_after - line_quotes) % 2 == 0;
        read = false;
        if (shaped) {
          uint8_t& last = shapes->last[strings];
          for (uint8_t k : {last, static_cast<uint8_t>(last ^ 1)}) {
            const LineShape& shape = shapes->shape[strings][k];
            if (shape.strings() == strings && shape.Match(block, text, quote, &it, &out->subjects)) {
              shape.Count(o, &out->stats);
              last = k;
              read = true;
              break;
            }
          }
          shapes->Tried(read);
        }
        if (!read) {
          LineShape::Roles roles;
          read = FastLine<true>(o, text, block, quote, shaped ? &roles : nullptr)
                     .Read(&it, &out->subjects, &out->stats);
          if (read && shaped && roles.count == strings) {
            // Learnt in place of the one read longer ago.
            uint8_t& last = shapes->last[strings];
            if (shapes->shape[strings][last ^ 1].Learn(o, block, text, quote, roles, it)) last ^= 1;
          }
        }
      } else {
        read = FastLine<false>(o, text).Read(&it, &out->subjects, &out->stats);
      }
      if (read) {
        line.kind = BlockItems::Line::Kind::kItem;
        if (sink) {
          sink->Item(static_cast<uint32_t>(out->lines.size() - 1), it,
                     std::span<const std::string_view>(out->subjects.data(), it.subject_count));
        } else {
          // Copied like the full parser's strings, so that both paths give the same views' life.
          it.id = out->arena.Keep(it.id);
          it.category = out->arena.Keep(it.category);
          if (it.has_account) it.account = out->arena.Keep(it.account);
          for (size_t k = mark; k < out->subjects.size(); ++k) {
            out->subjects[k] = out->arena.Keep(out->subjects[k]);
          }
          line.item = static_cast<uint32_t>(out->items.size());
          out->items.push_back(it);
        }
        continue;
      }
      out->subjects.resize(sink ? 0 : mark);
    }
    ReadLine(parser, o, block, line, out, sink);
  }
}

}  // namespace

void ReadBlock(simdjson::dom::parser& parser, const FilterOptions& o, const char* block,
               size_t size, BlockItems* out, ItemSink* sink) {
  out->Clear();
  // Layouts are learnt under one set of field names (which keys are read, which refused as
  // signals): other names, other layouts.
  std::string names = o.id_field + '\0' + o.category_field + '\0' + o.account_field + '\0' +
                      o.subjects_field;
  if (o.read_signals) {
    names += '\0' + o.content_usage_field + '\0' + o.content_signal_field + '\0' + o.tdm_field +
             '\0' + o.c2pa_field;
  }
  if (!out->shapes || out->shapes_for != names) {
    out->shapes.reset(new LineShapes);
    out->shapes_for = std::move(names);
  }
  if (!sink) out->arena.Reset(size + 64);
  // Without a vector unit to index with (or past the index's reach, which the gate's blocks
  // never are), each line's end is searched for and its strings scanned.
  if (size > BlockIndex::kMaxBlockBytes || !BlockIndexVectorized()) {
    return ReadLines(parser, o, block, 0, size, nullptr, out, sink);
  }
  // A window at a time: its line ends and quotes indexed, then its whole lines read while its
  // bytes are still in the cache; the next window begins at the first line not read.
  constexpr size_t kWindow = 32 << 10;
  BlockIndex& index = out->index;
  for (size_t at = 0; at < size;) {
    const size_t to = std::min(size, at + kWindow);
    index.Index(block, at, to);
    const size_t lines_end = to == size                 ? size
                             : index.newline_count() > 0 ? index.newlines()[index.newline_count() - 1] + 1
                                                         : at;
    if (lines_end == at) {  // a line longer than the window: read alone, without the index
      const void* nl = std::memchr(block + at, '\n', size - at);
      const size_t end = nl ? static_cast<const char*>(nl) - block + 1 : size;
      ReadLines(parser, o, block, at, end, nullptr, out, sink);
      at = end;
      continue;
    }
    ReadLines(parser, o, block, at, lines_end, &index, out, sink);
    at = lines_end;
  }
}

}  // namespace assent::internal
