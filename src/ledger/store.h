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

class LedgerStore {
 public:
  virtual ~LedgerStore() = default;

  // Appends entries (positions dense, continuing the ledger) and applies the party changes,
  // all in one transaction. kUnavailable on an I/O error or full disk; kFailedPrecondition
  // when positions do not follow the stored ledger; kAlreadyExists when a new party's id or
  // pseudonym is taken.
  virtual Status Append(std::span<const StoredEntry> entries,
                        std::span<const PartyChange> parties) = 0;
  Status Append(std::span<const StoredEntry> entries) { return Append(entries, {}); }

  // Calls `fn` for every stored party row (any order), stopping at its first error.
  virtual Status ScanParties(const std::function<Status(const PartyRow&)>& fn) const = 0;

  // Makes erased data unrecoverable from the store's files (SQLite: checkpoint and truncate
  // the WAL; deleted rows are zeroed by secure_delete). Best effort when readers hold the WAL.
  virtual Status Purge() { return OkStatus(); }

  // Calls `fn` for each entry with position > `after`, in position order, stopping at the
  // first error `fn` returns (which Scan returns). Views are valid only during the call.
  virtual Status Scan(uint64_t after, const std::function<Status(const EntryView&)>& fn) const = 0;

  // The highest stored position, 0 when empty.
  virtual Result<uint64_t> LastPosition() const = 0;

  // "sqlite:/path/ledger.db", "memory".
  virtual std::string Describe() const = 0;
};

std::unique_ptr<LedgerStore> NewMemoryStore();

// Opens or creates DIR/ledger.db. Refuses a database that is not an Assent ledger or has a
// newer schema (kFailedPrecondition), or a missing one when read-only (kNotFound).
Result<std::unique_ptr<LedgerStore>> OpenSqliteStore(const std::string& dir, bool read_only);

// Test hook: caps a SQLite store's size so its next appends fail as on a full disk.
Status LimitSqliteStoreSizeForTest(LedgerStore* store, int max_pages);

}  // namespace assent::internal

#endif  // ASSENT_LEDGER_STORE_H_
