// JSON Lines consent events, parsed with simdjson's DOM API one line at a time so every
// error names its line. simdjson reports errors as codes; none escape as exceptions.
#include "engine/events_jsonl.h"

#include <algorithm>

#include <simdjson.h>


#include "common/json_keys.h"
#include "common/json_writer.h"
#include "common/strings.h"

namespace assent {
namespace {

const std::vector<std::string> kFields = {
    "kind", "position", "hash",          "subject", "account", "action",      "categories",
    "purposes", "at",   "terms_version", "method",  "rule",    "actor",       "recorded_at",
    "pseudonym", "erased", "terms", "notice"};

// Fills `*out` (reusing its strings' buffers) from an array of strings.
Status StringList(simdjson::dom::element v, std::string_view key, std::vector<std::string>* out) {
  simdjson::dom::array arr;
  if (v.get_array().get(arr) != simdjson::SUCCESS) {
    return InvalidArgumentError("\"" + std::string(key) + "\" must be an array of strings");
  }
  size_t n = 0;
  for (simdjson::dom::element e : arr) {
    std::string_view s;
    if (e.get_string().get(s) != simdjson::SUCCESS) {
      return InvalidArgumentError("\"" + std::string(key) + "\" must be an array of strings");
    }
    if (n == out->size()) out->emplace_back();
    (*out)[n++].assign(s);
  }
  out->resize(n);
  if (n == 0) return InvalidArgumentError("\"" + std::string(key) + "\" must not be empty");
  return OkStatus();
}

// The string value (a view into the parser's buffer, valid until its next parse).
Result<std::string_view> Str(simdjson::dom::element v, std::string_view key) {
  std::string_view s;
  if (v.get_string().get(s) != simdjson::SUCCESS) {
    return InvalidArgumentError("\"" + std::string(key) + "\" must be a string");
  }
  return s;
}

// "notice": "none", or {"locale": L, "sha256": H} (a BCP 47 tag and 64 lowercase hex digits).
Status ParseNotice(simdjson::dom::element v, ConsentEvent* e) {
  std::string_view none;
  if (v.get_string().get(none) == simdjson::SUCCESS) {
    if (none != "none") {
      return InvalidArgumentError("\"notice\" must be \"none\" or {\"locale\", \"sha256\"}");
    }
    return OkStatus();
  }
  simdjson::dom::object obj;
  if (v.get_object().get(obj) != simdjson::SUCCESS) {
    return InvalidArgumentError("\"notice\" must be \"none\" or {\"locale\", \"sha256\"}");
  }
  std::string_view locale, sha;
  size_t fields = 0;
  for (auto f : obj) {
    ++fields;
    if (f.key == "locale" && f.value.get_string().get(locale) == simdjson::SUCCESS) continue;
    if (f.key == "sha256" && f.value.get_string().get(sha) == simdjson::SUCCESS) continue;
    return InvalidArgumentError("\"notice\" takes \"locale\" and \"sha256\" (strings), not \"" +
                                std::string(f.key) + "\"");
  }
  if (fields != 2 || locale.empty() || sha.empty()) {
    return InvalidArgumentError("\"notice\" needs both \"locale\" and \"sha256\"");
  }
  ASSENT_RETURN_IF_ERROR(CheckNoticeFields(locale, sha));
  e->notice_locale.assign(locale);
  e->notice_sha256.assign(sha);
  return OkStatus();
}

// Parses one line's object. `skip` is set for entries of another kind.
Status ParseLine(simdjson::dom::object obj, ConsentEvent* e, bool* skip, bool* has_position,
                 bool stored_times) {
  if (auto dup = DuplicateKey(obj)) {
    return InvalidArgumentError("the key \"" + std::string(*dup) +
                                "\" appears twice: give each field once");
  }
  bool has_party = false, has_action = false, has_at = false, has_cats = false, has_purs = false;
  *skip = false;
  *has_position = false;
  // Another kind of ledger entry: only its position matters here; its fields are its own.
  std::string_view kind;
  if (obj["kind"].get_string().get(kind) == simdjson::SUCCESS && kind != "consent") {
    *skip = true;
    uint64_t pos = 0;
    if (obj["position"].get_uint64().get(pos) == simdjson::SUCCESS && pos > 0) {
      e->position = pos;
      *has_position = true;
    }
    return OkStatus();
  }
  // `e` may be reused from an earlier line: reset the optional fields.
  e->rule.clear();
  e->actor.clear();
  e->terms_version.clear();
  e->notice_locale.clear();
  e->notice_sha256.clear();
  e->method = Method::kApi;
  for (auto field : obj) {
    std::string_view key = field.key;
    simdjson::dom::element v = field.value;
    if (key == "kind") {
      ASSENT_ASSIGN_OR_RETURN(std::string_view kind, Str(v, key));
      if (kind != "consent") *skip = true;
    } else if (key == "position") {
      uint64_t pos;
      if (v.get_uint64().get(pos) != simdjson::SUCCESS || pos == 0) {
        return InvalidArgumentError("\"position\" must be a positive integer");
      }
      e->position = pos;
      *has_position = true;
    } else if (key == "recorded_at") {
      ASSENT_ASSIGN_OR_RETURN(std::string_view s, Str(v, key));
      ASSENT_RETURN_IF_ERROR(stored_times ? ParseStoredTime(s) : ParseTime(s));
    } else if (key == "erased") {
      // A ledger export's line for an erased party: no longer anyone's event.
      bool erased = false;
      if (v.get_bool().get(erased) != simdjson::SUCCESS) {
        return InvalidArgumentError("\"erased\" must be true or false");
      }
      if (erased) *skip = true;
    } else if (key == "hash" || key == "rule" || key == "actor" || key == "pseudonym" ||
               key == "terms") {
      ASSENT_ASSIGN_OR_RETURN(std::string_view s, Str(v, key));
      if (key == "rule") e->rule.assign(s);
      if (key == "actor") e->actor.assign(s);
    } else if (key == "notice") {
      ASSENT_RETURN_IF_ERROR(ParseNotice(v, e));
    } else if (key == "subject" || key == "account") {
      if (has_party) return InvalidArgumentError("give either \"subject\" or \"account\", not both");
      ASSENT_ASSIGN_OR_RETURN(std::string_view party, Str(v, key));
      e->party.assign(party);
      e->party_kind = key == "subject" ? PartyKind::kSubject : PartyKind::kAccount;
      has_party = true;
    } else if (key == "action") {
      ASSENT_ASSIGN_OR_RETURN(std::string_view a, Str(v, key));
      auto action = ParseAction(a);
      if (!action) {
        return InvalidArgumentError("\"action\" must be \"grant\" or \"withdraw\", not \"" +
                                    std::string(a) + "\"");
      }
      e->action = *action;
      has_action = true;
    } else if (key == "categories") {
      ASSENT_RETURN_IF_ERROR(StringList(v, key, &e->categories));
      has_cats = true;
    } else if (key == "purposes") {
      ASSENT_RETURN_IF_ERROR(StringList(v, key, &e->purposes));
      has_purs = true;
    } else if (key == "at") {
      ASSENT_ASSIGN_OR_RETURN(std::string_view s, Str(v, key));
      ASSENT_ASSIGN_OR_RETURN(e->at, stored_times ? ParseStoredTime(s) : ParseTime(s));
      has_at = true;
    } else if (key == "terms_version") {
      ASSENT_ASSIGN_OR_RETURN(std::string_view tv, Str(v, key));
      e->terms_version.assign(tv);
    } else if (key == "method") {
      ASSENT_ASSIGN_OR_RETURN(std::string_view m, Str(v, key));
      auto method = ParseMethod(m);
      if (!method) {
        return InvalidArgumentError(
            "\"method\" must be settings, api, gpc, admin or import, not \"" + std::string(m) +
            "\"");
      }
      e->method = *method;
    } else {
      return InvalidArgumentError("unknown field \"" + std::string(key) + "\"" +
                                  DidYouMeanSuffix(key, kFields));
    }
  }
  if (*skip) return OkStatus();
  if (!has_party) return InvalidArgumentError("missing \"subject\" or \"account\"");
  if (!has_action) return InvalidArgumentError("missing \"action\" (grant or withdraw)");
  if (!has_cats) return InvalidArgumentError("missing \"categories\"");
  if (!has_purs) return InvalidArgumentError("missing \"purposes\"");
  if (!has_at) return InvalidArgumentError("missing \"at\" (when the choice was made)");
  return OkStatus();
}

}  // namespace

Status CheckNoticeFields(std::string_view locale, std::string_view sha256) {
  if (locale.empty() || locale.size() > 35 ||
      !std::all_of(locale.begin(), locale.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
      })) {
    return InvalidArgumentError("\"notice\".\"locale\" must be a BCP 47 language tag such as en or de-CH");
  }
  if (sha256.size() != 64 || !std::all_of(sha256.begin(), sha256.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
      })) {
    return InvalidArgumentError("\"notice\".\"sha256\" must be 64 lowercase hex digits "
                                "(assent terms notice prints it)");
  }
  return OkStatus();
}

void WriteNotice(JsonWriter& w, std::string_view locale, std::string_view sha256) {
  w.Key("notice");
  if (sha256.empty()) {
    w.String("none");
    return;
  }
  w.BeginObject().Key("locale").String(locale).Key("sha256").String(sha256).EndObject();
}

void WriteHistoryEvent(JsonWriter& w, const ConsentEvent& e) {
  w.Key("position").UInt(e.position).Key("action").String(ActionName(e.action));
  w.Key("categories").BeginArray();
  for (const auto& c : e.categories) w.String(c);
  w.EndArray().Key("purposes").BeginArray();
  for (const auto& p : e.purposes) w.String(p);
  w.EndArray().Key("at").String(FormatTime(e.at));
  w.Key("terms_version").String(e.terms_version).Key("method").String(MethodName(e.method));
  if (!e.actor.empty()) w.Key("actor").String(e.actor);
  if (!e.notice_sha256.empty()) WriteNotice(w, e.notice_locale, e.notice_sha256);
}

struct EventLineDecoder::Impl {
  simdjson::dom::parser parser;
  bool stored_times = false;
};

EventLineDecoder::EventLineDecoder(bool stored_times) : impl_(std::make_unique<Impl>()) {
  impl_->stored_times = stored_times;
}
EventLineDecoder::~EventLineDecoder() = default;

Status EventLineDecoder::Decode(std::string_view line, ConsentEvent* e, bool* is_consent,
                                bool* has_position) {
  simdjson::dom::element doc;
  if (auto err = impl_->parser.parse(line.data(), line.size()).get(doc); err) {
    return InvalidArgumentError(std::string("not valid JSON: ") + simdjson::error_message(err));
  }
  simdjson::dom::object obj;
  if (doc.get_object().get(obj) != simdjson::SUCCESS) {
    return InvalidArgumentError("each line must be a JSON object describing one consent event");
  }
  bool skip = false;
  ASSENT_RETURN_IF_ERROR(ParseLine(obj, e, &skip, has_position, impl_->stored_times));
  *is_consent = !skip;
  return OkStatus();
}

Result<std::vector<ConsentEvent>> ParseEventsJsonl(std::string_view text, std::string_view file,
                                                   std::vector<uint64_t>* lines) {
  EventLineDecoder decoder;
  std::vector<ConsentEvent> out;
  uint64_t line_no = 0;
  uint64_t last_position = 0;
  Timestamp last_at = INT64_MIN;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    start = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    auto where = [&](const std::string& msg) {
      return InvalidArgumentError(std::string(file) + ":" + std::to_string(line_no) + ": " + msg);
    };
    ConsentEvent e;
    e.position = line_no;
    bool consent = false, has_position = false;
    if (auto st = decoder.Decode(line, &e, &consent, &has_position); !st) {
      return where(st.error().message);
    }
    if (e.position <= last_position) {
      return where("position " + std::to_string(e.position) + " does not follow position " +
                   std::to_string(last_position) + ": positions must increase");
    }
    last_position = e.position;
    if (!consent) continue;
    if (e.at < last_at) {
      return where("\"at\" " + FormatTime(e.at) + " is earlier than the line before (" +
                   FormatTime(last_at) + "): times must not decrease");
    }
    last_at = e.at;
    out.push_back(std::move(e));
    if (lines) lines->push_back(line_no);
  }
  return out;
}


}  // namespace assent
