// How the ledger appends: the append lock every write takes, and group commit for consent
// events (many callers, one transaction, one fsync).
#ifndef ASSENT_LEDGER_APPEND_H_
#define ASSENT_LEDGER_APPEND_H_

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "assent/ledger.h"
#include "ledger/entry.h"

namespace assent::internal {

class LedgerImpl;
struct PartyChange;

// Every append takes the store's append lock first (across nodes: PostgreSQL's advisory lock)
// and then the ledger's write lock, and catches up with what other nodes appended before it
// looks at the state: so its checks and positions are against the whole ledger. The follower
// takes only the write lock — and, since the append lock is taken without it, keeps applying
// other nodes' entries while a writer waits for its turn, leaving it little to catch up.
class AppendLock {
 public:
  static Result<std::unique_ptr<AppendLock>> Take(LedgerImpl* ledger);
  ~AppendLock();
  uint64_t head() const { return head_; }
  // Ends the append either way.
  Status Commit(std::span<const StoredEntry> entries, std::span<const PartyChange> parties);

 private:
  AppendLock(LedgerImpl* ledger, uint64_t head);
  LedgerImpl* ledger_;
  uint64_t head_;
  bool open_ = true;
  std::unique_lock<std::mutex> write_;
};

// Group commit: callers queue their events; whichever caller finds no commit running becomes
// the leader, takes everything queued, validates it, writes it in one transaction (one
// fsync), applies it to the engine and wakes the others with their receipts.
class GroupCommitter {
 public:
  GroupCommitter(LedgerImpl* ledger, bool group) : ledger_(ledger), group_(group) {}

  Result<std::vector<Receipt>> Submit(std::vector<ConsentEvent> events);

  // Held while committing consent events or publishing terms.
  std::mutex commit_mu;
  bool broken = false;  // the engine could not apply what was stored: restart to recover

 private:
  struct Request {
    std::vector<ConsentEvent> events;
    Result<std::vector<Receipt>> result = InternalError("not committed");
    bool done = false;
  };
  // What a batch accepted: the completed events, and each request's first index among them.
  struct Accepted {
    std::vector<ConsentEvent> events;
    std::vector<std::pair<Request*, size_t>> owners;
  };
  // The entries written for a batch and the pseudonyms that name their parties.
  struct Written {
    std::vector<StoredEntry> entries;
    std::vector<std::string> pseudonyms;
  };

  void CommitAll(const std::vector<Request*>& batch);
  // A retried request (its idempotency key is recorded already) gets the earlier receipt, a
  // different request under the key 409, a key in use by this batch 503. True when `r` was
  // answered so; false when it is new.
  bool AnswerRetry(Request* r, std::set<std::string>* batch_keys);
  // Completes and validates every new request's events against the state and each other.
  Accepted Validate(const std::vector<Request*>& batch, const Snapshot& snap, Timestamp now);
  // Fills in defaults (time, terms version, the rule's scope) for one event.
  Status Complete(ConsentEvent& e, const Snapshot& snap, Timestamp now, Timestamp last_at);
  // Names the parties by pseudonym, writes the entries in one transaction; answers every owner
  // with the error when it fails.
  Result<Written> Write(Accepted& accepted, AppendLock& append, const Snapshot& snap,
                        Timestamp now);
  void AnswerReceipts(const Accepted& accepted, const Written& written, const Snapshot& snap);

  LedgerImpl* ledger_;
  bool group_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Request*> queue_;
  bool leader_active_ = false;
};

}  // namespace assent::internal

#endif  // ASSENT_LEDGER_APPEND_H_
