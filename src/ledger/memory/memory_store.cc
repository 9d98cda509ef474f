// The in-memory ledger store for tests: the same contract as SQLite, nothing durable.
#include <map>
#include <mutex>
#include <set>
#include <vector>

#include "ledger/store.h"

namespace assent::internal {
namespace {

class MemoryStore : public LedgerStore {
 public:
  Result<uint64_t> BeginAppend() override {
    append_mu_.lock();
    std::lock_guard lock(mu_);
    return entries_.size();
  }

  void AbortAppend() override { append_mu_.unlock(); }

  Status CommitAppend(std::span<const StoredEntry> entries,
                      std::span<const PartyChange> parties) override {
    std::unique_lock append(append_mu_, std::adopt_lock);
    std::lock_guard lock(mu_);
    ASSENT_RETURN_IF_ERROR(CheckFollows(entries, entries_.size()));
    // All or nothing: check every change before making any.
    std::set<std::pair<PartyKind, std::string>> keys;
    std::set<std::string> pseudonyms;
    for (const auto& c : parties) {
      auto key = std::make_pair(c.row.kind, c.row.id);
      if (c.erase) continue;
      if (parties_.count(key) || pseudonyms_.count(c.row.pseudonym) || !keys.insert(key).second ||
          !pseudonyms.insert(c.row.pseudonym).second) {
        return AlreadyExistsError("party '" + c.row.id + "' or its pseudonym is stored already");
      }
    }
    for (const auto& c : parties) {
      auto key = std::make_pair(c.row.kind, c.row.id);
      if (c.erase) {
        if (auto it = parties_.find(key); it != parties_.end()) {
          pseudonyms_.erase(it->second.pseudonym);
          parties_.erase(it);
        }
      } else {
        pseudonyms_.insert(c.row.pseudonym);
        parties_[key] = c.row;
      }
    }
    for (const auto& e : entries) {
      if (!e.idempotency_key.empty() && idempotency_.count(e.idempotency_key)) {
        return AlreadyExistsError("the idempotency key is stored already");
      }
    }
    for (const auto& e : entries) {
      if (!e.idempotency_key.empty()) idempotency_[e.idempotency_key] = e.position;
    }
    entries_.insert(entries_.end(), entries.begin(), entries.end());
    return OkStatus();
  }

  Result<std::optional<uint64_t>> FindIdempotencyKey(std::string_view key) const override {
    std::lock_guard lock(mu_);
    auto it = idempotency_.find(std::string(key));
    if (it == idempotency_.end()) return std::optional<uint64_t>();
    return std::optional<uint64_t>(it->second);
  }

  Result<uint64_t> PartyCount() const override {
    std::lock_guard lock(mu_);
    return parties_.size();
  }

  Result<std::optional<PartyRow>> FindParty(PartyKind kind, std::string_view id) const override {
    std::lock_guard lock(mu_);
    auto it = parties_.find(std::make_pair(kind, std::string(id)));
    if (it == parties_.end()) return std::optional<PartyRow>();
    return std::optional<PartyRow>(it->second);
  }

  Result<std::optional<PartyRow>> FindPseudonym(std::string_view pseudonym) const override {
    std::lock_guard lock(mu_);
    for (const auto& [k, r] : parties_) {
      if (r.pseudonym == pseudonym) return std::optional<PartyRow>(r);
    }
    return std::optional<PartyRow>();
  }

  Status ScanParties(const std::function<Status(const PartyRow&)>& fn) const override {
    std::map<std::pair<PartyKind, std::string>, PartyRow> copy;
    {
      std::lock_guard lock(mu_);
      copy = parties_;
    }
    for (const auto& [k, r] : copy) ASSENT_RETURN_IF_ERROR(fn(r));
    return OkStatus();
  }

  Status Scan(uint64_t after, const EntryVisitor& fn) const override {
    std::vector<StoredEntry> copy;
    {
      std::lock_guard lock(mu_);
      if (after < entries_.size()) copy.assign(entries_.begin() + after, entries_.end());
    }
    for (const auto& e : copy) {
      ASSENT_ASSIGN_OR_RETURN(auto next, fn(EntryView{e.position, e.kind, e.body, e.hash}));
      if (next == ScanControl::kStop) break;
    }
    return OkStatus();
  }

  Result<uint64_t> LastPosition() const override {
    std::lock_guard lock(mu_);
    return entries_.size();
  }

  std::string Describe() const override { return "memory"; }

 private:
  std::mutex append_mu_;  // held from BeginAppend to CommitAppend/AbortAppend
  mutable std::mutex mu_;
  std::vector<StoredEntry> entries_;
  std::map<std::pair<PartyKind, std::string>, PartyRow> parties_;
  std::set<std::string> pseudonyms_;
  std::map<std::string, uint64_t> idempotency_;
};

}  // namespace

std::unique_ptr<LedgerStore> NewMemoryStore() { return std::make_unique<MemoryStore>(); }

}  // namespace assent::internal
