// Canonical bytes of ledger entries (the grammar is in entry.h) and their decoding.
#include "ledger/entry.h"

#include <simdjson.h>

#include "common/json_writer.h"
#include "engine/events_jsonl.h"

namespace assent::internal {

std::string_view EntryKindName(EntryKind k) {
  switch (k) {
    case EntryKind::kTerms: return "terms";
    case EntryKind::kConsent: return "consent";
    case EntryKind::kKey: return "key";
  }
  return "consent";
}

Result<EntryKind> ParseEntryKind(std::string_view s) {
  if (s == "terms") return EntryKind::kTerms;
  if (s == "consent") return EntryKind::kConsent;
  if (s == "key") return EntryKind::kKey;
  return DataLossError("unknown entry kind '" + std::string(s) + "'");
}

namespace {

void Head(JsonWriter& w, uint64_t position, EntryKind kind, Timestamp recorded_at) {
  w.BeginObject();
  w.Key("position").UInt(position);
  w.Key("kind").String(EntryKindName(kind));
  w.Key("recorded_at").String(FormatTime(recorded_at));
}

StoredEntry Finish(uint64_t position, EntryKind kind, JsonWriter& w) {
  w.EndObject();
  StoredEntry e;
  e.position = position;
  e.kind = kind;
  e.body = w.Take();
  e.hash = Sha256(e.body);
  return e;
}

}  // namespace

StoredEntry MakeTermsEntry(uint64_t position, Timestamp recorded_at, const Terms& t) {
  JsonWriter w;
  Head(w, position, EntryKind::kTerms, recorded_at);
  w.Key("terms").String(t.id());
  w.Key("version").String(t.version());
  w.Key("effective").String(FormatTime(t.effective()));
  w.Key("sha256").String(ToHex(Sha256(t.source())));
  w.Key("yaml").String(t.source());
  return Finish(position, EntryKind::kTerms, w);
}

StoredEntry MakeConsentEntry(uint64_t position, Timestamp recorded_at, const ConsentEvent& e) {
  JsonWriter w;
  w.Reserve(256);
  Head(w, position, EntryKind::kConsent, recorded_at);
  w.Key(PartyKindName(e.party_kind)).String(e.party);
  w.Key("action").String(ActionName(e.action));
  w.Key("categories").BeginArray();
  for (const auto& c : e.categories) w.String(c);
  w.EndArray();
  w.Key("purposes").BeginArray();
  for (const auto& p : e.purposes) w.String(p);
  w.EndArray();
  w.Key("at").String(FormatTime(e.at));
  w.Key("terms_version").String(e.terms_version);
  w.Key("method").String(MethodName(e.method));
  if (!e.rule.empty()) w.Key("rule").String(e.rule);
  if (!e.actor.empty()) w.Key("actor").String(e.actor);
  return Finish(position, EntryKind::kConsent, w);
}

StoredEntry MakeKeyEntry(uint64_t position, Timestamp recorded_at, const KeyFields& key) {
  JsonWriter w;
  Head(w, position, EntryKind::kKey, recorded_at);
  w.Key("action").String(key.action);
  w.Key("name").String(key.name);
  w.Key("role").String(key.role);
  w.Key("key_sha256").String(key.key_sha256);
  return Finish(position, EntryKind::kKey, w);
}

std::string ExportLine(std::string_view body, std::span<const uint8_t> hash) {
  std::string line;
  line.reserve(body.size() + 80);
  line.append(body.substr(0, body.size() - 1));
  line += ",\"hash\":\"";
  line += ToHex(hash.data(), hash.size());
  line += "\"}\n";
  return line;
}

struct EntryDecoder::Impl {
  EventLineDecoder events;
  simdjson::dom::parser parser;
};

EntryDecoder::EntryDecoder() : impl_(std::make_unique<Impl>()) {}
EntryDecoder::~EntryDecoder() = default;

Status EntryDecoder::Decode(const EntryView& entry, ConsentEvent* consent, TermsFields* terms) {
  auto bad = [&](const std::string& why) {
    return DataLossError("ledger entry at position " + std::to_string(entry.position) + ": " +
                         why);
  };
  if (entry.body.empty() || entry.body.back() != '}') return bad("not a JSON object");
  if (entry.kind == EntryKind::kConsent) {
    bool is_consent = false, has_position = false;
    if (auto st = impl_->events.Decode(entry.body, consent, &is_consent, &has_position); !st) {
      return bad(st.error().message);
    }
    if (!is_consent) return bad("stored as a consent event but its body says another kind");
    if (!has_position || consent->position != entry.position) {
      return bad("its body names another position");
    }
    if (consent->terms_version.empty()) return bad("no terms_version");
    return OkStatus();
  }
  simdjson::dom::element doc;
  if (impl_->parser.parse(entry.body.data(), entry.body.size()).get(doc) != simdjson::SUCCESS) {
    return bad("not valid JSON");
  }
  auto str = [&](const char* key, std::string* out) -> bool {
    std::string_view v;
    if (doc[key].get_string().get(v) != simdjson::SUCCESS) return false;
    *out = std::string(v);
    return true;
  };
  uint64_t pos = 0;
  std::string kind, effective, sha;
  if (doc["position"].get_uint64().get(pos) != simdjson::SUCCESS || pos != entry.position) {
    return bad("its body names another position");
  }
  if (!str("kind", &kind) || kind != "terms") return bad("stored as terms but its body differs");
  if (!str("terms", &terms->id) || !str("version", &terms->version) ||
      !str("effective", &effective) || !str("sha256", &sha) || !str("yaml", &terms->yaml)) {
    return bad("a terms entry needs terms, version, effective, sha256 and yaml");
  }
  auto eff = ParseTime(effective);
  if (!eff) return bad(eff.error().message);
  terms->effective = *eff;
  if (!ParseSha256Hex(sha, &terms->yaml_sha256) || terms->yaml_sha256 != Sha256(terms->yaml)) {
    return bad("the terms text does not match its sha256");
  }
  return OkStatus();
}

Status EntryDecoder::DecodeKey(const EntryView& entry, KeyFields* key) {
  auto bad = [&](const std::string& why) {
    return DataLossError("ledger entry at position " + std::to_string(entry.position) + ": " +
                         why);
  };
  simdjson::dom::element doc;
  if (impl_->parser.parse(entry.body.data(), entry.body.size()).get(doc) != simdjson::SUCCESS) {
    return bad("not valid JSON");
  }
  uint64_t pos = 0;
  if (doc["position"].get_uint64().get(pos) != simdjson::SUCCESS || pos != entry.position) {
    return bad("its body names another position");
  }
  auto str = [&](const char* k, std::string* out) {
    std::string_view v;
    if (doc[k].get_string().get(v) != simdjson::SUCCESS) return false;
    *out = std::string(v);
    return true;
  };
  std::string kind;
  if (!str("kind", &kind) || kind != "key" || !str("action", &key->action) ||
      !str("name", &key->name) || !str("role", &key->role) ||
      !str("key_sha256", &key->key_sha256)) {
    return bad("a key entry needs action, name, role and key_sha256");
  }
  return OkStatus();
}

}  // namespace assent::internal
