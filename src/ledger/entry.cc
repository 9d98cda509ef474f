// Canonical bytes of ledger entries (the grammar is in entry.h) and their decoding.
#include "ledger/entry.h"

#include <charconv>
#include <cstdio>

#include <simdjson.h>

#include "common/json_writer.h"
#include "engine/events_jsonl.h"

namespace assent::internal {

std::string_view EntryKindName(EntryKind k) {
  switch (k) {
    case EntryKind::kTerms: return "terms";
    case EntryKind::kConsent: return "consent";
    case EntryKind::kKey: return "key";
    case EntryKind::kDataset: return "dataset";
    case EntryKind::kModel: return "model";
    case EntryKind::kCheckpoint: return "checkpoint";
    case EntryKind::kErasure: return "erasure";
    case EntryKind::kToken: return "token";
  }
  return "consent";
}

Result<EntryKind> ParseEntryKind(std::string_view s) {
  if (s == "terms") return EntryKind::kTerms;
  if (s == "consent") return EntryKind::kConsent;
  if (s == "key") return EntryKind::kKey;
  if (s == "dataset") return EntryKind::kDataset;
  if (s == "model") return EntryKind::kModel;
  if (s == "checkpoint") return EntryKind::kCheckpoint;
  if (s == "erasure") return EntryKind::kErasure;
  if (s == "token") return EntryKind::kToken;
  return DataLossError("unknown entry kind '" + std::string(s) + "'");
}

bool HashMatches(const EntryView& v) {
  return v.hash.size() == 32 &&
         Sha256(v.body) == *reinterpret_cast<const Sha256Digest*>(v.hash.data());
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

StoredEntry MakeTermsEntry(uint64_t position, Timestamp recorded_at, const Terms& t,
                           bool backfill, bool allow_loosening) {
  JsonWriter w;
  Head(w, position, EntryKind::kTerms, recorded_at);
  w.Key("terms").String(t.id());
  w.Key("version").String(t.version());
  w.Key("effective").String(FormatTime(t.effective()));
  w.Key("sha256").String(ToHex(Sha256(t.source())));
  w.Key("yaml").String(t.source());
  if (backfill) w.Key("backfill").Bool(true);
  if (allow_loosening) w.Key("allow_loosening").Bool(true);
  return Finish(position, EntryKind::kTerms, w);
}

StoredEntry MakeConsentEntry(uint64_t position, Timestamp recorded_at, const ConsentEvent& e,
                             std::string_view terms_id) {
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
  if (!terms_id.empty()) w.Key("terms").String(terms_id);
  w.Key("method").String(MethodName(e.method));
  if (!e.rule.empty()) w.Key("rule").String(e.rule);
  if (!e.actor.empty()) w.Key("actor").String(e.actor);
  // Schema 3: every consent entry says which notice it answered, or "none".
  WriteNotice(w, e.notice_locale, e.notice_sha256);
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

StoredEntry MakeDatasetEntry(uint64_t position, Timestamp recorded_at, const DatasetFields& d) {
  JsonWriter w;
  Head(w, position, EntryKind::kDataset, recorded_at);
  w.Key("name").String(d.name).Key("purpose").String(d.purpose).Key("terms").String(d.terms);
  w.Key("ledger_position").UInt(d.ledger_position).Key("items").UInt(d.items);
  w.Key("input_sha256").String(d.input_sha256).Key("output_sha256").String(d.output_sha256);
  w.Key("snapshot_sha256").String(d.snapshot_sha256);
  w.Key("new_subjects").BeginArray();
  for (const auto& n : d.new_subjects) w.String(n);
  w.EndArray().Key("new_accounts").BeginArray();
  for (const auto& n : d.new_accounts) w.String(n);
  w.EndArray();
  w.Key("subjects").String(d.subjects).Key("accounts").String(d.accounts);
  w.Key("shards").BeginArray();
  for (const auto& sh : d.shards) {
    w.BeginObject().Key("file").String(sh.file).Key("items").UInt(sh.items);
    w.Key("subjects").String(sh.subjects).EndObject();
  }
  w.EndArray();
  return Finish(position, EntryKind::kDataset, w);
}

StoredEntry MakeModelEntry(uint64_t position, Timestamp recorded_at, const ModelFields& m) {
  JsonWriter w;
  Head(w, position, EntryKind::kModel, recorded_at);
  w.Key("name").String(m.name).Key("datasets").BeginArray();
  for (const auto& d : m.datasets) w.String(d);
  w.EndArray();
  return Finish(position, EntryKind::kModel, w);
}

StoredEntry MakeErasureEntry(uint64_t position, Timestamp recorded_at, PartyKind kind,
                             std::string_view pseudonym, const ErasureFields& extra) {
  JsonWriter w;
  Head(w, position, EntryKind::kErasure, recorded_at);
  w.Key("party").String(PartyKindName(kind)).Key("pseudonym").String(pseudonym);
  if (extra.suppressed) {
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(*extra.suppressed));
    w.Key("suppressed").String(hex);
  }
  if (!extra.datasets.empty() || !extra.models.empty()) {
    w.Key("retrain").BeginObject().Key("datasets").BeginArray();
    for (const auto& d : extra.datasets) w.String(d);
    w.EndArray().Key("shards").BeginArray();
    for (const auto& f : extra.shards) w.String(f);
    w.EndArray().Key("models").BeginArray();
    for (const auto& m : extra.models) w.String(m);
    w.EndArray().EndObject();
  }
  return Finish(position, EntryKind::kErasure, w);
}

StoredEntry MakeTokenEntry(uint64_t position, Timestamp recorded_at, const TokenFields& t) {
  JsonWriter w;
  Head(w, position, EntryKind::kToken, recorded_at);
  w.Key("action").String(t.action).Key("token_sha256").String(t.token_sha256);
  w.Key("expires").String(FormatTime(t.expires));
  return Finish(position, EntryKind::kToken, w);
}

StoredEntry MakeCheckpointEntry(uint64_t position, Timestamp recorded_at, uint64_t size,
                                std::string_view root_hex, std::string_view note) {
  JsonWriter w;
  Head(w, position, EntryKind::kCheckpoint, recorded_at);
  w.Key("size").UInt(size).Key("root").String(root_hex).Key("note").String(note);
  return Finish(position, EntryKind::kCheckpoint, w);
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
  EventLineDecoder events{/*stored_times=*/true};
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
  auto eff = ParseStoredTime(effective);
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
  std::string recorded;
  if (str("recorded_at", &recorded)) {
    if (auto t = ParseStoredTime(recorded)) key->recorded_at = *t;
  }
  return OkStatus();
}

namespace {

struct Reader {
  simdjson::dom::element doc;
  bool Str(const char* k, std::string* out) {
    std::string_view v;
    if (doc[k].get_string().get(v) != simdjson::SUCCESS) return false;
    *out = std::string(v);
    return true;
  }
  bool U64(const char* k, uint64_t* out) { return doc[k].get_uint64().get(*out) == simdjson::SUCCESS; }
  bool Strings(simdjson::dom::element e, std::vector<std::string>* out) {
    simdjson::dom::array a;
    if (e.get_array().get(a) != simdjson::SUCCESS) return false;
    for (auto x : a) {
      std::string_view v;
      if (x.get_string().get(v) != simdjson::SUCCESS) return false;
      out->emplace_back(v);
    }
    return true;
  }
};

}  // namespace

Status EntryDecoder::DecodeDataset(const EntryView& entry, DatasetFields* d, Timestamp* at) {
  auto bad = [&](const std::string& why) {
    return DataLossError("dataset entry at position " + std::to_string(entry.position) + ": " + why);
  };
  Reader r;
  if (impl_->parser.parse(entry.body.data(), entry.body.size()).get(r.doc) != simdjson::SUCCESS) {
    return bad("not valid JSON");
  }
  uint64_t pos = 0;
  std::string rec;
  if (!r.U64("position", &pos) || pos != entry.position) return bad("its body names another position");
  if (!r.Str("recorded_at", &rec) || !ParseStoredTime(rec)) return bad("bad recorded_at");
  *at = *ParseStoredTime(rec);
  simdjson::dom::element ns, na, shards;
  if (!r.Str("name", &d->name) || !r.Str("purpose", &d->purpose) || !r.Str("terms", &d->terms) ||
      !r.U64("ledger_position", &d->ledger_position) || !r.U64("items", &d->items) ||
      !r.Str("input_sha256", &d->input_sha256) || !r.Str("output_sha256", &d->output_sha256) ||
      !r.Str("snapshot_sha256", &d->snapshot_sha256) || !r.Str("subjects", &d->subjects) ||
      !r.Str("accounts", &d->accounts) || r.doc["new_subjects"].get(ns) ||
      r.doc["new_accounts"].get(na) || !r.Strings(ns, &d->new_subjects) ||
      !r.Strings(na, &d->new_accounts) || r.doc["shards"].get(shards)) {
    return bad("missing or malformed fields");
  }
  simdjson::dom::array arr;
  if (shards.get_array().get(arr)) return bad("shards must be an array");
  for (auto sh : arr) {
    DatasetFields::Shard s;
    std::string_view f, b;
    if (sh["file"].get_string().get(f) || sh["items"].get_uint64().get(s.items) ||
        sh["subjects"].get_string().get(b)) {
      return bad("malformed shard");
    }
    s.file = std::string(f);
    s.subjects = std::string(b);
    d->shards.push_back(std::move(s));
  }
  return OkStatus();
}

Status EntryDecoder::DecodeModel(const EntryView& entry, ModelFields* m, Timestamp* at) {
  Reader r;
  if (impl_->parser.parse(entry.body.data(), entry.body.size()).get(r.doc) != simdjson::SUCCESS) {
    return DataLossError("model entry at position " + std::to_string(entry.position) + ": not JSON");
  }
  uint64_t pos = 0;
  std::string rec;
  simdjson::dom::element ds;
  if (!r.U64("position", &pos) || pos != entry.position || !r.Str("recorded_at", &rec) ||
      !ParseStoredTime(rec) || !r.Str("name", &m->name) || r.doc["datasets"].get(ds) ||
      !r.Strings(ds, &m->datasets)) {
    return DataLossError("model entry at position " + std::to_string(entry.position) +
                         ": missing or malformed fields");
  }
  *at = *ParseStoredTime(rec);
  return OkStatus();
}

Status EntryDecoder::DecodeErasure(const EntryView& entry, PartyKind* kind, std::string* pseudonym,
                                   std::optional<uint64_t>* suppressed) {
  Reader r;
  if (impl_->parser.parse(entry.body.data(), entry.body.size()).get(r.doc) != simdjson::SUCCESS) {
    return DataLossError("erasure entry at position " + std::to_string(entry.position) +
                         ": not JSON");
  }
  uint64_t pos = 0;
  std::string party;
  std::optional<PartyKind> parsed;
  if (!r.U64("position", &pos) || pos != entry.position || !r.Str("party", &party) ||
      !(parsed = ParsePartyKind(party)) || !r.Str("pseudonym", pseudonym)) {
    return DataLossError("erasure entry at position " + std::to_string(entry.position) +
                         ": missing or malformed fields");
  }
  *kind = *parsed;
  if (suppressed) {
    std::string hex;
    suppressed->reset();
    if (r.Str("suppressed", &hex)) {
      uint64_t v = 0;
      auto [ptr, ec] = std::from_chars(hex.data(), hex.data() + hex.size(), v, 16);
      if (ec != std::errc() || ptr != hex.data() + hex.size() || hex.size() != 16) {
        return DataLossError("erasure entry at position " + std::to_string(entry.position) +
                             ": malformed \"suppressed\"");
      }
      *suppressed = v;
    }
  }
  return OkStatus();
}

Status EntryDecoder::DecodeToken(const EntryView& entry, TokenFields* token) {
  auto bad = [&](const std::string& why) {
    return DataLossError("token entry at position " + std::to_string(entry.position) + ": " +
                         why);
  };
  Reader r;
  if (impl_->parser.parse(entry.body.data(), entry.body.size()).get(r.doc) != simdjson::SUCCESS) {
    return bad("not JSON");
  }
  uint64_t pos = 0;
  std::string expires;
  if (!r.U64("position", &pos) || pos != entry.position || !r.Str("action", &token->action) ||
      !r.Str("token_sha256", &token->token_sha256) || !r.Str("expires", &expires)) {
    return bad("missing or malformed fields");
  }
  if (token->action != "redeem" && token->action != "end") {
    return bad("unknown action '" + token->action + "'");
  }
  std::string raw;
  if (token->token_sha256.size() != 64 || !ParseHex(token->token_sha256, &raw)) {
    return bad("token_sha256 is not 64 hex digits");
  }
  auto t = ParseStoredTime(expires);
  if (!t) return bad("expires: " + t.error().message);
  token->expires = *t;
  return OkStatus();
}

}  // namespace assent::internal

namespace assent::internal {

std::string ExportLineResolved(std::string_view body, std::span<const uint8_t> hash,
                               PartyKind kind, std::string_view pseudonym,
                               const std::string* id) {
  std::string line = ExportLine(body, hash);
  const std::string field = "\"" + std::string(PartyKindName(kind)) + "\":";
  const std::string quoted = field + "\"" + std::string(pseudonym) + "\"";
  const size_t at = line.find(quoted);
  if (at == std::string::npos) return line;
  const size_t close = line.rfind('}');
  if (id) {
    JsonWriter w;
    w.String(*id);
    line.insert(close, ",\"pseudonym\":\"" + std::string(pseudonym) + "\"");
    line.replace(at + field.size(), quoted.size() - field.size(), w.Take());
  } else {
    line.insert(close, ",\"erased\":true");
  }
  return line;
}

}  // namespace assent::internal
