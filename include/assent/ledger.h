// The consent ledger: the append-only, durable source of truth for terms publications and
// every grant and withdrawal, from which the engine's state is folded (DESIGN.md "Consent
// ledger"). An event is acknowledged only once it is on stable storage; concurrent writers
// share one transaction and one fsync (group commit).
//
// Example:
//   assent::LedgerOptions options;
//   options.data_dir = "./assent-data";
//   auto ledger = assent::Ledger::Open(options);       // replays every entry, verifying it
//   if (!ledger) { /* corrupt or foreign database, locked directory, ... */ }
//   auto receipt = (*ledger)->RecordConsent(event);      // durable when it returns
//   auto snapshot = (*ledger)->engine().snapshot();       // decisions see the event
//
// Thread safety: Ledger is thread-safe. Appends from many threads are committed together.
#ifndef ASSENT_LEDGER_H_
#define ASSENT_LEDGER_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "assent/engine.h"
#include "assent/result.h"
#include "assent/terms.h"

namespace assent {

namespace internal {
class LedgerImpl;
}  // namespace internal

struct Lineage;  // src/ledger/lineage.h: datasets and models with their bitmaps

// A filtered training set to record: what it was built for and who is in it.
struct DatasetRegistration {
  std::string name, purpose, terms;
  uint64_t ledger_position = 0;  // the pinned position the filter decided at
  std::string input_sha256, output_sha256, snapshot_sha256;
  uint64_t items = 0;
  std::set<std::string> subjects, accounts;
  struct Shard {
    std::string file;
    uint64_t items = 0;
    std::set<std::string> subjects;
  };
  std::vector<Shard> shards;
};

struct LedgerOptions {
  // The embedded SQLite store lives in this directory (created if missing).
  std::string data_dir = "./assent-data";
  // Open for reading only: no writer lock is taken and nothing can be appended.
  bool read_only = false;
  // For tests: use an in-memory store instead of SQLite (data_dir is ignored).
  bool in_memory = false;
  // A PostgreSQL URL (postgresql://user@host:port/db): the ledger lives there, shared by
  // every node given the same URL; each follows the others' appends. Empty: SQLite in
  // data_dir (which still holds the writer lock and the audit key).
  std::string database;
  // How long a follower waits for a wake-up before it asks the database anyway.
  std::chrono::milliseconds follow_poll{250};
  // Share one transaction (one fsync) among concurrent appends. Off only to measure what
  // group commit buys: then every append is its own transaction.
  bool group_commit = true;
  // Threads opening may keep busy, the calling one included, replaying what is stored: 1 does
  // everything on the calling thread (as `assent filter --threads 1` promises); anything else
  // lets it read beside applying, and on SQLite load the parties beside both.
  int threads = 0;
  Clock clock = SystemClock();
};

// What a party gets back for a consent event: where it is and how to check it.
struct Receipt {
  uint64_t position = 0;
  PartyKind party_kind = PartyKind::kSubject;
  std::string party;
  Action action = Action::kGrant;
  std::vector<std::string> categories, purposes;
  std::string terms;  // "id@version" the event was given under
  Timestamp at = 0;
  Method method = Method::kApi;
  std::string rule;
  std::string actor;  // who recorded it: "key:NAME", "session minted by key:NAME", ...
  // The notice the choice answered (empty: "none"); not stated at all by entries written
  // before ledger schema 3 (`notice_recorded` false).
  bool notice_recorded = true;
  std::string notice_locale, notice_sha256;
  std::string hash;  // hex SHA-256 of the entry's canonical bytes
  std::string pseudonym;  // how the entry (and the audit tree) names the party
  // Base64 of the party's pseudonym secret: with it anyone holding the receipt can check that
  // the pseudonym is HMAC-SHA-256(key, "subject:" id). It links nothing the receipt does not
  // already say (the id and the pseudonym side by side).
  std::string pseudonym_key;
  // True when this is the receipt of an earlier request with the same idempotency key (the
  // event was recorded then, not now).
  bool replayed = false;

  // {"position":..,"subject":..,"pseudonym":..,"pseudonym_key":..,"action":..,"categories":[..],"purposes":[..],
  //  "terms":..,"at":..,"method":..,"rule":..,"hash":..}
  std::string ToJson() const;
};

// The retraining an erasure obliges: what held the erased party's data.
struct ErasureReport {
  std::vector<std::string> datasets, shards, models;
};

// Who an API key speaks for (DESIGN.md "Roles").
// `portal` is the platform's sign-in backend: it may only mint sign-in links for people (a
// service key may not, or it could act as anyone through a link it opened itself).
enum class Role : uint8_t { kOperator, kService, kAuditor, kPortal };
std::string_view RoleName(Role r);
std::optional<Role> ParseRole(std::string_view s);

struct ApiKey {
  std::string name;
  Role role = Role::kService;
  uint64_t position = 0;  // where it was created
  bool revoked = false;
  Timestamp created_at = 0;  // when (the key entry's recorded_at)
};

// What a publication may do that changes answers: both are refused unless asked for, and
// recorded in the terms entry when they are.
struct PublishOptions {
  // The version's `effective` lies before its publication: answers already given for the time
  // since may change. CLI only (`terms publish --backfill`); the HTTP API never backfills.
  bool backfill = false;
  // Some use becomes more permissive than under the latest version (what `terms diff` exits 1
  // for): `terms publish --allow-loosening`, or ?allow_loosening=true over HTTP.
  bool allow_loosening = false;
};

// The outcome of publishing a terms document.
struct PublishResult {
  uint64_t position = 0;
  bool already_published = false;  // the same version with identical content was there
  std::shared_ptr<const Terms> terms;
};

class Ledger {
 public:
  // Opens (creating if needed) the ledger and folds every entry into a new engine, checking
  // that positions are dense, hashes match and every entry decodes. Errors:
  // kDataLoss for a corrupt ledger (naming the position), kFailedPrecondition for a foreign
  // database or a data directory locked by another writer, kUnavailable for I/O errors.
  static Result<std::unique_ptr<Ledger>> Open(const LedgerOptions& options);
  ~Ledger();

  Engine& engine();
  const Engine& engine() const;

  // Lints, checks and records a terms document. kInvalidArgument listing lint errors, or
  // when the version exists with different content, or `effective` is not after the latest;
  // kFailedPrecondition when `effective` lies in the past without options.backfill, or the
  // version loosens a use without options.allow_loosening (naming what loosened).
  Result<PublishResult> PublishTerms(std::string_view yaml, std::string_view file,
                                     PublishOptions options = {});

  // Validates and durably records one consent event; `event.position` is assigned and
  // `event.at` defaults to now when 0. kInvalidArgument when invalid (nothing written),
  // kUnavailable when storage failed (nothing acknowledged).
  Result<Receipt> RecordConsent(ConsentEvent event);

  // Records many consent events in order, all or nothing, in one transaction.
  Result<std::vector<Receipt>> RecordConsents(std::vector<ConsentEvent> events);

  // Creates an API key and returns its secret, which is shown once and stored only as a
  // SHA-256. kAlreadyExists when a live key has that name; kInvalidArgument for a bad name.
  Result<std::string> CreateKey(Role role, std::string name);
  // Revokes the live key of that name. kNotFound when there is none.
  Status RevokeKey(std::string_view name);
  std::vector<ApiKey> Keys() const;
  // The live key whose secret this is, if any. Thread-safe; constant time in the secret.
  std::optional<ApiKey> Authenticate(std::string_view secret) const;

  // Sign-in tokens (src/server/sessions.cc) used up — a one-time link redeemed ("redeem") or a
  // session ended ("end") — named by the hex SHA-256 of the token's nonce, remembered until
  // `expires`. Recorded in the ledger, so every node of a shared store knows it: the check and
  // the append happen under the store's append lock after catching up, so two nodes can never
  // both redeem one link. kAlreadyExists when the token was used up already (here or on
  // another node); kInvalidArgument for a malformed name or an expiry outside the storable
  // range or already past.
  Status SpendToken(std::string_view action, std::string_view token_sha256, Timestamp expires);
  // Whether the token was used up, as far as this node has applied the ledger (a follower
  // applies other nodes' entries within milliseconds; CatchUp() first to be sure).
  bool TokenSpent(std::string_view token_sha256) const;
  // How many used-up tokens that have not expired yet this node remembers.
  size_t tokens_remembered() const;

  // Records a dataset (kAlreadyExists for a name in use) or a model trained on recorded
  // datasets (kNotFound for an unknown one). Returns the entry's position.
  Result<uint64_t> RegisterDataset(const DatasetRegistration& d);
  Result<uint64_t> RegisterModel(std::string name, std::vector<std::string> datasets);
  // Calls `fn` with the lineage under a lock (it must not call back into the ledger).
  void WithLineage(const std::function<void(const Lineage&)>& fn) const;

  // Calls `fn` for every entry after `after` as stored: position, kind, canonical bytes and
  // stored hash (for audits). Stops at fn's error.
  Status ScanEntries(uint64_t after,
                     const std::function<Status(uint64_t position, std::string_view kind,
                                                std::string_view body,
                                                std::string_view stored_hash)>& fn) const;
  // Called with every entry this ledger appends (position, canonical bytes), in order, once it
  // is durable, under the write lock: it must be quick and must not call back into the ledger.
  using AppendObserver = std::function<void(uint64_t position, std::string_view body)>;
  void SetAppendObserver(AppendObserver observer);
  // The same for an owner that already has entries 1..seen: the entries after `seen` that
  // the ledger applied meanwhile (other nodes keep appending) are given to `observer` first,
  // under the write lock, so it misses none.
  Status SetAppendObserver(AppendObserver observer, uint64_t seen);

  // Records a signed checkpoint (a C2SP note over entries 1..size). Returns its position.
  Result<uint64_t> AppendCheckpoint(uint64_t size, std::string_view root_hex,
                                    std::string_view note);
  // The same, signed at the moment of appending: inside the append lock, after catching up
  // with other nodes, `sign(size)` returns the root (hex) and note of entries 1..size (the
  // append observer has seen every one of them). Never refused because others appended.
  using CheckpointSigner =
      std::function<Result<std::pair<std::string, std::string>>(uint64_t size)>;
  Result<uint64_t> AppendCheckpoint(const CheckpointSigner& sign);

  // Calls `fn` for every consent event up to `up_to` (inclusive), in order, read back from
  // storage (for snapshots). Stops at fn's error.
  Status ScanConsents(uint64_t up_to,
                      const std::function<Status(const ConsentEvent&)>& fn) const;

  // The receipt of the consent event at `position` (kNotFound when it is not one, or its
  // party was erased).
  Result<Receipt> ReceiptAt(uint64_t position) const;

  // The hex SHA-256 of the entry at `position` (a receipt's hash). kNotFound past the end.
  Result<std::string> EntryHash(uint64_t position) const;

  // Writes every entry after `since` as one JSON line (canonical bytes plus "hash"; in consent
  // entries the party's plain id in place of its pseudonym, which follows as "pseudonym", or
  // "erased":true for an erased party).
  Status Export(uint64_t since, std::ostream& out) const;
  // A page of the same: the entries after `after` up to `up_to` (inclusive), appended to `*out`
  // until it holds `max_bytes` or more (whole lines; at least one entry when there is one);
  // `*last` is the last position written (`after` when none). With `with_ids` false, consent
  // entries name their party by pseudonym only (what an auditor may see). For change feeds.
  Status ExportPage(uint64_t after, uint64_t up_to, size_t max_bytes, bool with_ids,
                    std::string* out, uint64_t* last) const;

  // The pseudonym that names this party in the ledger's entries, if it has any entry.
  std::optional<std::string> PseudonymOf(PartyKind kind, std::string_view id) const;

  // Crypto-shredding: deletes the party's pseudonym secret and plain id from the store, records
  // an erasure entry (naming only the pseudonym) and forgets the party's consent state, so
  // decisions treat it as a party with no events and its entries can no longer be linked to
  // it; the audit tree still verifies. Returns the erasure entry's position. kNotFound when
  // the ledger knows no such party. A later event for the same id starts a new pseudonym.
  // Also: the party joins the suppression list (Engine::Suppress), so every later decision
  // naming it denies with reason `erased` (except under `necessary`), and the erasure entry
  // records the datasets, shards and models that held its data (also given in `*report`).
  Result<uint64_t> EraseParty(PartyKind kind, const std::string& id,
                              struct ErasureReport* report = nullptr);
  // What erasing the party obliges: the recorded datasets, shards and models holding its data.
  // kNotFound when the ledger knows no such party.
  Result<struct ErasureReport> ErasureImpact(PartyKind kind, const std::string& id) const;
  // Consent events replayed at start-up that belong to erased parties (and were skipped).
  uint64_t erased_events_skipped() const;

  uint64_t position() const;
  const std::string& data_dir() const;
  // "sqlite:DIR/ledger.db", "postgresql://host:port/db", "memory".
  std::string store_description() const;

  // Applies what other nodes appended to a shared store (a no-op otherwise). A follower
  // thread calls it on every wake-up; appends call it first.
  Status CatchUp();
  // Whether the store answered the last time it was asked (appends, the follower). When it
  // does not, decisions are still served from the last applied state and writes fail with
  // kUnavailable; `store_problem` says what failed.
  bool store_reachable() const;
  std::string store_problem() const;

 private:
  explicit Ledger(std::unique_ptr<internal::LedgerImpl> impl);
  friend class LedgerTestPeer;
  std::unique_ptr<internal::LedgerImpl> impl_;  // src/ledger/ledger_impl.h
};

// Reads an export (or any JSON Lines of consent events) for `Ledger::RecordConsents`:
// consent lines only, positions dropped (the importing ledger assigns its own).
Result<std::vector<ConsentEvent>> ReadImportFile(const std::string& path);

}  // namespace assent

#endif  // ASSENT_LEDGER_H_
