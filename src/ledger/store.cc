// What every store shares: the checked one-call append, the default wait, and choosing a store.
#include "ledger/store.h"

#include <thread>

namespace assent::internal {

Status CheckFollows(std::span<const StoredEntry> entries, uint64_t head) {
  for (size_t i = 0; i < entries.size(); ++i) {
    if (entries[i].position != head + 1 + i) {
      return FailedPreconditionError("position " + std::to_string(entries[i].position) +
                                     " does not follow the stored ledger (last " +
                                     std::to_string(head + i) + "): another writer appended");
    }
  }
  return OkStatus();
}

Status LedgerStore::Append(std::span<const StoredEntry> entries,
                           std::span<const PartyChange> parties) {
  ASSENT_ASSIGN_OR_RETURN(uint64_t head, BeginAppend());
  if (auto st = CheckFollows(entries.first(std::min<size_t>(entries.size(), 1)), head); !st) {
    AbortAppend();
    return st;
  }
  return CommitAppend(entries, parties);
}

Result<std::vector<PartyRow>> LedgerStore::FindParties(PartyKind kind,
                                                       std::span<const std::string> ids) const {
  std::vector<PartyRow> rows;
  for (const auto& id : ids) {
    ASSENT_ASSIGN_OR_RETURN(auto row, FindParty(kind, id));
    if (row) rows.push_back(std::move(*row));
  }
  return rows;
}

Result<std::vector<PartyRow>> LedgerStore::FindPseudonyms(
    std::span<const std::string> pseudonyms) const {
  std::vector<PartyRow> rows;
  for (const auto& p : pseudonyms) {
    ASSENT_ASSIGN_OR_RETURN(auto row, FindPseudonym(p));
    if (row) rows.push_back(std::move(*row));
  }
  return rows;
}

Status LedgerStore::ScanRange(uint64_t after, uint64_t up_to, size_t limit,
                              const EntryVisitor& fn, std::vector<PartyRow>*) const {
  size_t n = 0;
  return Scan(after, [&](const EntryView& v) -> Result<ScanControl> {
    if (v.position > up_to || n == limit) return ScanControl::kStop;
    ++n;
    return fn(v);
  });
}

Status LedgerStore::WaitForAppends(std::chrono::milliseconds timeout) {
  std::this_thread::sleep_for(timeout);
  return OkStatus();
}

Result<std::unique_ptr<LedgerStore>> OpenStore(const std::string& data_dir,
                                               const std::string& database, bool read_only) {
  if (database.empty()) return OpenSqliteStore(data_dir, read_only);
  if (database.rfind("postgresql://", 0) == 0 || database.rfind("postgres://", 0) == 0 ||
      database.find("dbname=") != std::string::npos) {
    return OpenPostgresStore(database, read_only);
  }
  return InvalidArgumentError("--database must be a PostgreSQL URL (postgresql://user@host:port/db)"
                              ", not '" + database + "'; leave it out for the embedded SQLite "
                              "ledger in --data");
}

}  // namespace assent::internal
