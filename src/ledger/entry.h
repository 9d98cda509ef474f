// Ledger entries and their canonical bytes: the exact bytes that are stored, hashed (entry
// hash = SHA-256 of them; later the Merkle leaf), exported and verified. docs/formats/ledger.md
// is the reference.
//
// Grammar: one JSON object, no insignificant whitespace, keys in this order, strings escaped
// as RFC 8259 minimal escapes ("\"", "\\", \n, \r, \t, other controls as \u00XX), UTF-8 as is:
//   entry   = {"position":N,"kind":KIND,"recorded_at":TIME, FIELDS}
//   terms   : "terms":ID,"version":V,"effective":TIME,"sha256":HEX(yaml),"yaml":YAML
//             [,"backfill":true][,"allow_loosening":true]
//   key     : "action":("create"|"revoke"),"name":NAME,"role":ROLE,"key_sha256":HEX
//   consent : ("subject"|"account"):PSEUDONYM,   (ledger/parties.h; never the plain id)"action":("grant"|"withdraw"),
//             "categories":[NAME,...],"purposes":[NAME,...],"at":TIME,
//             "terms_version":V[,"terms":TERMS_ID],"method":METHOD[,"rule":ID][,"actor":TEXT]
//             (TERMS_ID: the terms document's id; entries written before it was added lack it)
//   TIME    = RFC 3339 UTC as FormatTime writes it ("2023-08-07T00:00:00Z", fraction if any)
// The export line of an entry is its canonical bytes with ,"hash":HEX inserted before the
// final "}" — so an export is also the events JSON Lines format.
#ifndef ASSENT_LEDGER_ENTRY_H_
#define ASSENT_LEDGER_ENTRY_H_

#include <cstdint>
#include <memory>
#include <span>
#include <optional>
#include <string>
#include <string_view>

#include "assent/engine.h"
#include "assent/result.h"
#include "common/sha256.h"

namespace assent::internal {

enum class EntryKind : uint8_t {
  kTerms, kConsent, kKey, kDataset, kModel, kCheckpoint, kErasure, kToken
};
std::string_view EntryKindName(EntryKind k);
Result<EntryKind> ParseEntryKind(std::string_view s);

// An entry as a store holds it. Views point into the store's buffers during a scan.
struct EntryView {
  uint64_t position = 0;
  EntryKind kind = EntryKind::kConsent;
  std::string_view body;  // canonical bytes
  std::span<const uint8_t> hash;
};

// Whether the stored hash is the SHA-256 of the entry's canonical bytes (replay, catch-up and
// audit all check it here).
bool HashMatches(const EntryView& entry);

// An entry to store: canonical bytes and their hash.
struct StoredEntry {
  uint64_t position = 0;
  EntryKind kind = EntryKind::kConsent;
  std::string body;
  Sha256Digest hash{};
  // Outside the canonical bytes: the caller's idempotency key (SHA-256 of caller and key),
  // stored beside the entry so a retry finds it; empty when none.
  std::string idempotency_key;
};

// `backfill` / `allow_loosening`: the publication was asked to take effect in the past or to
// loosen a use (Ledger::PublishTerms); written only when true.
StoredEntry MakeTermsEntry(uint64_t position, Timestamp recorded_at, const Terms& terms,
                           bool backfill = false, bool allow_loosening = false);
// REQUIRES: e.terms_version is the resolved version name.
// `terms_id` (the terms document's id, so that a receipt's "terms" is stated by the signed
// entry itself) is written after terms_version when given; entries from before it lack it.
StoredEntry MakeConsentEntry(uint64_t position, Timestamp recorded_at, const ConsentEvent& e,
                             std::string_view terms_id = "");

// An API key change. Only the key's SHA-256 is ever stored.
struct KeyFields {
  std::string action;  // "create" | "revoke"
  std::string name, role, key_sha256;
  Timestamp recorded_at = 0;  // filled when decoded
};
StoredEntry MakeKeyEntry(uint64_t position, Timestamp recorded_at, const KeyFields& key);

// A dataset registration as stored: bitmaps over dense ids, plus the names of the parties
// this entry gives their first ids (in id order).
//   dataset : "name":N,"purpose":P,"terms":T,"ledger_position":N,"items":N,
//             "input_sha256":H,"output_sha256":H,"snapshot_sha256":H,
//             "new_subjects":[ID,...],"new_accounts":[ID,...],"subjects":B64,"accounts":B64,
//             "shards":[{"file":F,"items":N,"subjects":B64},...]
//   model   : "name":N,"datasets":[NAME,...]
struct DatasetFields {
  std::string name, purpose, terms, input_sha256, output_sha256, snapshot_sha256;
  uint64_t ledger_position = 0, items = 0;
  std::vector<std::string> new_subjects, new_accounts;
  std::string subjects, accounts;  // base64 roaring
  struct Shard {
    std::string file;
    uint64_t items = 0;
    std::string subjects;
  };
  std::vector<Shard> shards;
};
struct ModelFields {
  std::string name;
  std::vector<std::string> datasets;
};
StoredEntry MakeDatasetEntry(uint64_t position, Timestamp recorded_at, const DatasetFields& d);
StoredEntry MakeModelEntry(uint64_t position, Timestamp recorded_at, const ModelFields& m);
// checkpoint : "size":N,"root":HEX,"note":TEXT   (a C2SP signed note over entries 1..N)
StoredEntry MakeCheckpointEntry(uint64_t position, Timestamp recorded_at, uint64_t size,
                                std::string_view root_hex, std::string_view note);

// erasure : "party":("subject"|"account"),"pseudonym":P   (the party's secret was deleted)
// What an erasure records beyond the pseudonym: the party's keyed hash on the suppression
// list (Engine::Suppress), and the datasets and models that held its data (the retraining the
// erasure obliges).
struct ErasureFields {
  std::optional<uint64_t> suppressed;
  std::vector<std::string> datasets, shards, models;
};
//   erasure : "party":KIND,"pseudonym":P[,"suppressed":HEX16]
//             [,"retrain":{"datasets":[NAME,...],"shards":[FILE,...],"models":[NAME,...]}]
StoredEntry MakeErasureEntry(uint64_t position, Timestamp recorded_at, PartyKind kind,
                             std::string_view pseudonym, const ErasureFields& extra = {});

// A sign-in token used up (server/sessions.cc): a one-time link redeemed, or a session ended.
// The token is named by the SHA-256 of its random nonce (never the token, nor whose it is);
// nodes remember it until it expires, so a link works once and a logout holds on every node.
//   token : "action":("redeem"|"end"),"token_sha256":HEX,"expires":TIME
struct TokenFields {
  std::string action;        // "redeem" | "end"
  std::string token_sha256;  // 64 lowercase hex digits
  Timestamp expires = 0;
};
StoredEntry MakeTokenEntry(uint64_t position, Timestamp recorded_at, const TokenFields& t);

// `body` with ,"hash":HEX before its final brace, and a newline.
std::string ExportLine(std::string_view body, std::span<const uint8_t> hash);
// The export line of a consent entry for people: the party's pseudonym replaced by its plain
// id with ,"pseudonym":P added, or (id null: erased) ,"erased":true added.
std::string ExportLineResolved(std::string_view body, std::span<const uint8_t> hash,
                               PartyKind kind, std::string_view pseudonym, const std::string* id);

// Decodes canonical bytes. Reuse one decoder for many entries. Not thread-safe.
class EntryDecoder {
 public:
  EntryDecoder();
  ~EntryDecoder();
  struct TermsFields {
    std::string id, version, yaml;
    Timestamp effective = 0;
    Sha256Digest yaml_sha256{};
  };
  // kDataLoss naming what is wrong. Fills `*consent` or `*terms` by kind; checks that the
  // body's position equals `position`.
  Status Decode(const EntryView& entry, ConsentEvent* consent, TermsFields* terms);
  Status DecodeKey(const EntryView& entry, KeyFields* key);
  Status DecodeDataset(const EntryView& entry, DatasetFields* d, Timestamp* recorded_at);
  Status DecodeModel(const EntryView& entry, ModelFields* m, Timestamp* recorded_at);
  // `suppressed` (optional) receives the keyed hash, when the entry has one.
  Status DecodeErasure(const EntryView& entry, PartyKind* kind, std::string* pseudonym,
                       std::optional<uint64_t>* suppressed = nullptr);
  Status DecodeToken(const EntryView& entry, TokenFields* token);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace assent::internal

#endif  // ASSENT_LEDGER_ENTRY_H_
