// Reading a manifest block (manifest.h). The fast path parses the whole block with one
// parse_many; a block that is not exactly one JSON document per line (a malformed line, two
// objects on one line, an object over several lines) is read again line by line, so every line
// gets the same verdict either way.
#include "filter/manifest.h"

#include <cstring>
#include <optional>

#include "common/json_keys.h"
#include "common/strings.h"

namespace assent::internal {
namespace {

using simdjson::dom::element;
using simdjson::dom::object;

// Equal strings, cheaply told apart by size and first byte before any memcmp (keys are short).
inline bool Same(std::string_view a, std::string_view b) {
  return a.size() == b.size() && (a.empty() || (a[0] == b[0] && std::memcmp(a.data(), b.data(), a.size()) == 0));
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

// Whether a dictionary-like header value ("train-ai=n, search=y") says `no` for one of `keys`.
bool DictionarySaysNo(std::string_view value, std::initializer_list<std::string_view> keys,
                      std::initializer_list<std::string_view> no) {
  while (!value.empty()) {
    const size_t comma = value.find_first_of(",;");
    std::string_view member = Trim(value.substr(0, comma));
    value = comma == std::string_view::npos ? std::string_view() : value.substr(comma + 1);
    const size_t eq = member.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view key = Trim(member.substr(0, eq)), v = Trim(member.substr(eq + 1));
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
    for (auto k : keys) {
      if (!EqualsIgnoreCase(key, k)) continue;
      for (auto n : no) {
        if (EqualsIgnoreCase(v, n)) return true;
      }
    }
  }
  return false;
}

// The opt-out signal in one field's value, as a SignalKind bit (0: none, or a "yes").
uint8_t SignalIn(uint8_t kind, element value) {
  std::string_view text;
  switch (kind) {
    case kSignalContentUsage:  // IETF AIPREF: train-ai=n (train-genai=n too: it is training)
      return !value.get_string().get(text) &&
                     DictionarySaysNo(text, {"train-ai", "train-genai"}, {"n", "no", "?0"})
                 ? kind
                 : 0;
    case kSignalContentSignal:  // Content-Signal: ai-train=no
      return !value.get_string().get(text) && DictionarySaysNo(text, {"ai-train"}, {"no", "n"})
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
    case kSignalC2pa: {  // {"cawg.ai_training": {"use": "notAllowed"}, ...}; constrained = not
      object c2pa;
      if (value.get_object().get(c2pa)) return 0;
      for (auto field : c2pa) {
        std::string_view key = field.key;
        const size_t dot = key.find('.');
        const std::string_view entry = dot == std::string_view::npos ? key : key.substr(dot + 1);
        if (!EqualsIgnoreCase(entry, "ai_training") &&
            !EqualsIgnoreCase(entry, "ai_generative_training")) {
          continue;
        }
        std::string_view use;
        object assertion;
        if (!field.value.get_object().get(assertion) && !assertion["use"].get_string().get(use) &&
            (EqualsIgnoreCase(use, "notAllowed") || EqualsIgnoreCase(use, "constrained"))) {
          return kind;
        }
      }
      return 0;
    }
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

// The fast path: true when every non-blank line held exactly one object (the items are then
// read); false, having read nothing, when the block must be read line by line.
bool ReadMany(simdjson::dom::parser& parser, const FilterOptions& o, const char* block,
              size_t size, BlockItems* out, ItemSink* sink) {
  simdjson::dom::document_stream stream;
  if (parser.parse_many(reinterpret_cast<const uint8_t*>(block), size, size + 64).get(stream)) {
    return false;
  }
  size_t next = 0;  // the line the next document must start
  auto it = stream.begin();
  for (; it != stream.end(); ++it) {
    element doc;
    if ((*it).get(doc)) return false;
    const size_t at = it.current_index();
    // The lines before the document must be blank (a document never starts inside one).
    while (next < out->lines.size() && out->lines[next].end <= at) {
      if (!Blank(Text(block, out->lines[next]))) return false;
      ++next;
    }
    if (next == out->lines.size()) return false;
    BlockItems::Line& line = out->lines[next];
    const std::string_view text = Text(block, line);
    // The document must be the whole line (after leading blanks): one object per line.
    const size_t first = line.begin + text.find_first_not_of(" \t");
    const std::string_view source = it.source();
    if (at != first || at + source.size() > line.begin + text.size()) return false;
    if (!Blank(std::string_view(block + at + source.size(), line.begin + text.size() - at - source.size()))) {
      return false;
    }
    object obj;
    if (doc.get_object().get(obj)) return false;
    SetItem(out, line, obj, o, sink);
    ++next;
  }
  for (; next < out->lines.size(); ++next) {
    if (!Blank(Text(block, out->lines[next]))) return false;
  }
  return stream.truncated_bytes() == 0;
}

}  // namespace

void ReadBlock(simdjson::dom::parser& parser, const FilterOptions& o, const char* block,
               size_t size, BlockItems* out, ItemSink* sink) {
  out->Clear();
  if (!sink) out->arena.Reset(size + 64);
  for (size_t at = 0; at < size;) {
    const void* nl = std::memchr(block + at, '\n', size - at);
    const size_t end = nl ? static_cast<const char*>(nl) - block + 1 : size;
    out->lines.push_back(BlockItems::Line{static_cast<uint32_t>(at), static_cast<uint32_t>(end)});
    at = end;
  }
  if (ReadMany(parser, o, block, size, out, sink)) return;
  if (sink) sink->Restart();
  out->items.clear();
  out->subjects.clear();
  out->errors.clear();
  out->stats = BlockItems::FieldStats{};
  if (!sink) out->arena.Reset(size + 64);
  for (auto& line : out->lines) {
    line.kind = BlockItems::Line::Kind::kBlank;
    ReadLine(parser, o, block, line, out, sink);
  }
}

}  // namespace assent::internal
