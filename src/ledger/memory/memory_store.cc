// The in-memory ledger store for tests: the same contract as SQLite, nothing durable.
#include <mutex>
#include <vector>

#include "ledger/store.h"

namespace assent::internal {
namespace {

class MemoryStore : public LedgerStore {
 public:
  Status Append(std::span<const StoredEntry> entries) override {
    std::lock_guard lock(mu_);
    uint64_t next = entries_.size() + 1;
    for (const auto& e : entries) {
      if (e.position != next++) {
        return FailedPreconditionError("position " + std::to_string(e.position) +
                                       " does not follow the stored ledger (last " +
                                       std::to_string(entries_.size()) + ")");
      }
    }
    entries_.insert(entries_.end(), entries.begin(), entries.end());
    return OkStatus();
  }

  Status Scan(uint64_t after, const std::function<Status(const EntryView&)>& fn) const override {
    std::vector<StoredEntry> copy;
    {
      std::lock_guard lock(mu_);
      if (after < entries_.size()) copy.assign(entries_.begin() + after, entries_.end());
    }
    for (const auto& e : copy) {
      ASSENT_RETURN_IF_ERROR(fn(EntryView{e.position, e.kind, e.body, e.hash}));
    }
    return OkStatus();
  }

  Result<uint64_t> LastPosition() const override {
    std::lock_guard lock(mu_);
    return entries_.size();
  }

  std::string Describe() const override { return "memory"; }

 private:
  mutable std::mutex mu_;
  std::vector<StoredEntry> entries_;
};

}  // namespace

std::unique_ptr<LedgerStore> NewMemoryStore() { return std::make_unique<MemoryStore>(); }

}  // namespace assent::internal
