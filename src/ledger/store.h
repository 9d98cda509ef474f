// The one storage seam of the ledger. SQLite (embedded default) and memory (tests) implement
// it here; PostgreSQL follows (docs/ledger-stores.md lists what it needs). Callers never know
// which store they use.
//
// Contract for every store:
// - Append is atomic and durable: when it returns OK every entry is on stable storage; when it
//   fails none is visible, now or after a crash.
// - Positions are dense from 1 and assigned by the caller; Append refuses entries whose first
//   position is not LastPosition() + 1 (another writer got there first) with kAborted-like
//   kFailedPrecondition, so the caller can catch up and retry.
// - Nothing is updated or deleted in place.
// Thread safety: a store is used by one writer thread at a time (the ledger's group
// committer); Scan and LastPosition may run concurrently with Append.
#ifndef ASSENT_LEDGER_STORE_H_
#define ASSENT_LEDGER_STORE_H_

#include <array>
#include <chrono>
#include <optional>
#include <vector>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "assent/result.h"
#include "ledger/entry.h"

namespace assent::internal {

// A party's pseudonym secret, kept outside the tree (docs/formats/ledger.md "Parties"): the
// ledger's entries name a party only by HMAC-SHA-256(secret, id); deleting this row (and with
// it the plain id) leaves the entries unlinkable to the person.
struct PartyRow {
  PartyKind kind = PartyKind::kSubject;
  std::string id;
  std::string pseudonym;
  std::array<uint8_t, 32> secret{};
};

// A change to the parties table made with an append: a new party's row, or an erasure.
struct PartyChange {
  bool erase = false;  // delete the row of (kind, id); otherwise insert `row`
  PartyRow row;
};

// What a scan's visitor answers: go on, or stop here (the scan then returns OK). An error
// stops the scan too, and the scan returns it.
enum class ScanControl { kContinue, kStop };
using EntryVisitor = std::function<Result<ScanControl>(const EntryView&)>;

class LedgerStore {
 public:
  virtual ~LedgerStore() = default;

  // Starts an exclusive append: until CommitAppend or AbortAppend no other writer (thread,
  // process or node) can append. Returns the stored head position, so the caller can catch up
  // with entries other writers made before it encodes its own (positions are inside the
  // canonical bytes). kUnavailable when the store cannot be reached.
  virtual Result<uint64_t> BeginAppend() = 0;
  // Appends entries (dense, continuing the head BeginAppend returned) and applies the party
  // changes, in the one transaction, and ends the append either way. When it returns OK
  // everything is durable; otherwise nothing is visible, now or after a crash. kUnavailable on
  // an I/O error, full disk or lost connection (when the outcome is known: a store that loses
  // the connection during COMMIT finds out whether it committed before answering);
  // kFailedPrecondition when positions do not follow the head; kAlreadyExists when a new
  // party's id or pseudonym is taken (checked by stores several writers share; a store with
  // one writer may rely on that writer's index, as the ledger's is).
  virtual Status CommitAppend(std::span<const StoredEntry> entries,
                              std::span<const PartyChange> parties) = 0;
  // Ends an append without writing.
  virtual void AbortAppend() = 0;

  // BeginAppend, a check that `entries` continue the head (kFailedPrecondition otherwise:
  // another writer got there first), CommitAppend.
  Status Append(std::span<const StoredEntry> entries, std::span<const PartyChange> parties);
  Status Append(std::span<const StoredEntry> entries) { return Append(entries, {}); }

  // Calls `fn` for each entry with position > `after`, in position order, until it answers
  // kStop or an error (which Scan returns). Views are valid only during the call.
  virtual Status Scan(uint64_t after, const EntryVisitor& fn) const = 0;

  // Calls `fn` for every stored party row (any order), stopping at its first error.
  virtual Status ScanParties(const std::function<Status(const PartyRow&)>& fn) const = 0;
  virtual Result<uint64_t> PartyCount() const = 0;
  // One party's row, by id or by pseudonym; nullopt when there is none (never created, or
  // erased). For stores several writers share, where another one may have created it.
  virtual Result<std::optional<PartyRow>> FindParty(PartyKind kind, std::string_view id) const = 0;
  virtual Result<std::optional<PartyRow>> FindPseudonym(std::string_view pseudonym) const = 0;
  // Many at once (one round trip where the store can): the rows found, in any order.
  virtual Result<std::vector<PartyRow>> FindParties(PartyKind kind,
                                                    std::span<const std::string> ids) const;
  virtual Result<std::vector<PartyRow>> FindPseudonyms(
      std::span<const std::string> pseudonyms) const;

  // Like Scan, for entries in (after, up_to], at most `limit` of them: a catch-up's read (one
  // round trip where the store can). When `named` is given, a store may add to it the rows of
  // parties its consent entries name, read in the same round trip (the caller looks up any
  // it still does not know).
  virtual Status ScanRange(uint64_t after, uint64_t up_to, size_t limit, const EntryVisitor& fn,
                           std::vector<PartyRow>* named = nullptr) const;

  // The position of the entry appended with this idempotency key, if any.
  virtual Result<std::optional<uint64_t>> FindIdempotencyKey(std::string_view key) const = 0;

  // The highest stored position, 0 when empty.
  virtual Result<uint64_t> LastPosition() const = 0;

  // Whether other processes append to this store too (PostgreSQL with several nodes): then the
  // ledger follows it, catching up before each append and on every wake-up.
  virtual bool Shared() const { return false; }
  // Whether ScanParties may run while a Scan is in progress on another thread without waiting
  // for it (SQLite: each scan reads through a connection of its own).
  virtual bool ScansConcurrently() const { return false; }
  // Waits until another writer may have appended (a wake-up only: the caller scans by
  // position, so a missed one costs at most `timeout`), or `timeout` passed. kUnavailable
  // when the store cannot be reached (the caller backs off and calls again: it reconnects).
  virtual Status WaitForAppends(std::chrono::milliseconds timeout);

  // Makes erased data unrecoverable from the store's files (SQLite: checkpoint and truncate
  // the WAL; deleted rows are zeroed by secure_delete). Best effort when readers hold the WAL.
  virtual Status Purge() { return OkStatus(); }

  // "sqlite:/path/ledger.db", "memory", "postgresql://host:port/db" (never a password).
  virtual std::string Describe() const = 0;
};

std::unique_ptr<LedgerStore> NewMemoryStore();

// Opens or creates the PostgreSQL ledger at `url` (a libpq connection URI or key=value
// string), applying schema migrations under an advisory lock. kUnavailable when the server
// cannot be reached; kFailedPrecondition for a database holding something else or a newer
// schema.
Result<std::unique_ptr<LedgerStore>> OpenPostgresStore(const std::string& url, bool read_only);

// Test hook: the next PostgreSQL append loses its connection just after sending COMMIT (1) or
// just before sending its rows (2), so tests can see an interrupted commit resolved.
void SetPostgresFaultForTest(int fault);

// OK when `entries` are dense and continue `head`; else kFailedPrecondition (another writer
// appended first, or a gap). For stores' CommitAppend.
Status CheckFollows(std::span<const StoredEntry> entries, uint64_t head);

// The store a deployment names: PostgreSQL when `database` is set, else DIR/ledger.db.
Result<std::unique_ptr<LedgerStore>> OpenStore(const std::string& data_dir,
                                               const std::string& database, bool read_only);

// Opens or creates DIR/ledger.db. Refuses a database that is not an Assent ledger or has a
// newer schema (kFailedPrecondition), or a missing one when read-only (kNotFound).
Result<std::unique_ptr<LedgerStore>> OpenSqliteStore(const std::string& dir, bool read_only);

// Test hook: caps a SQLite store's size so its next appends fail as on a full disk.
Status LimitSqliteStoreSizeForTest(LedgerStore* store, int max_pages);

}  // namespace assent::internal

#endif  // ASSENT_LEDGER_STORE_H_
