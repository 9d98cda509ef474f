// Start-up replay (ledger_impl.h): every stored entry, checked and folded into a new engine.
// Two threads: a reader checks hashes and density, decodes consent events and names their
// parties in batches; this thread applies what it hands over, in ledger order.
#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "ledger/ledger_impl.h"
#include "ledger/parties.h"
#include "ledger/store.h"

namespace assent::internal {
namespace {

// What the reading thread of a replay hands to the applying thread, in ledger order: a batch
// of consent events (their parties named by id), or any other entry as stored.
struct ReplayItem {
  enum class Kind { kEvents, kEntry, kEnd, kError } kind = Kind::kEnd;
  explicit ReplayItem(Kind k = Kind::kEnd) : kind(k) {}
  std::vector<ConsentEvent> events;
  StoredEntry entry;
  Error error;
};

// A small bounded queue between the two threads, which also hands applied batches back to the
// reader: its decoder reuses their strings' buffers, so replaying millions of events
// allocates almost nothing per event.
class ReplayQueue {
 public:
  void Push(ReplayItem item) {
    std::unique_lock lock(mu_);
    not_full_.wait(lock, [&] { return items_.size() < kCapacity || closed_; });
    if (closed_) return;
    items_.push_back(std::move(item));
    not_empty_.notify_one();
  }
  ReplayItem Pop() {
    std::unique_lock lock(mu_);
    not_empty_.wait(lock, [&] { return !items_.empty(); });
    ReplayItem item = std::move(items_.front());
    items_.erase(items_.begin());
    not_full_.notify_one();
    return item;
  }
  // The consumer gave up: unblock and stop the producer.
  void Close() {
    std::lock_guard lock(mu_);
    closed_ = true;
    not_full_.notify_all();
  }
  bool closed() {
    std::lock_guard lock(mu_);
    return closed_;
  }
  void GiveBack(std::vector<ConsentEvent> events) {
    std::lock_guard lock(mu_);
    if (spare_.size() < 4) spare_.push_back(std::move(events));
  }
  std::vector<ConsentEvent> TakeSpare() {
    std::lock_guard lock(mu_);
    if (spare_.empty()) return {};
    auto events = std::move(spare_.back());
    spare_.pop_back();
    return events;
  }

 private:
  static constexpr size_t kCapacity = 4;
  std::mutex mu_;
  std::condition_variable not_full_, not_empty_;
  std::vector<ReplayItem> items_;
  std::vector<std::vector<ConsentEvent>> spare_;
  bool closed_ = false;
};

// The reading thread: entries 1..head in order, checked, consent events decoded and resolved
// to their parties in batches (events of erased parties leave the batch: they are no longer
// anyone's), everything else passed on as stored.
class ReplayReader {
 public:
  ReplayReader(const LedgerStore& store, const PartyIndex& parties, ReplayQueue& queue,
               uint64_t head)
      : store_(store), parties_(parties), queue_(queue), head_(head) {
    // A batch's events are filled in place: growing the vector as it fills would move every
    // event again at each doubling (and fault in twice the memory).
    batch_.events.reserve(static_cast<size_t>(std::min<uint64_t>(kBatch, head)));
  }

  void Run() {
    Status st = store_.Scan(0, [&](const EntryView& v) { return OnEntry(v); });
    if (st) {
      SendBatch();
      st = resolve_error_;
    }
    if (st) {
      queue_.Push(ReplayItem(ReplayItem::Kind::kEnd));
    } else {
      ReplayItem err(ReplayItem::Kind::kError);
      err.error = st.error();
      queue_.Push(std::move(err));
    }
  }
  uint64_t last_read() const { return expected_ - 1; }
  uint64_t erased_skipped() const { return erased_skipped_; }

 private:
  // Batches begin small and double up to kBatch, so that the applying thread has work from
  // the start: with one batch of a small ledger's every event, it would only wait.
  static constexpr size_t kFirstBatch = 256, kBatch = 16384;

  Result<ScanControl> OnEntry(const EntryView& v) {
    if (v.position > head_) return ScanControl::kStop;  // later ones are the follower's
    if (v.position != expected_) {
      return DataLossError("the ledger jumps from position " + std::to_string(expected_ - 1) +
                           " to " + std::to_string(v.position) + ": entries are missing");
    }
    ++expected_;
    if (!HashMatches(v)) {
      return DataLossError("ledger entry at position " + std::to_string(v.position) +
                           " does not match its hash: it was changed after it was written");
    }
    if (v.kind != EntryKind::kConsent) {
      SendBatch();
      ReplayItem item(ReplayItem::Kind::kEntry);
      item.entry.position = v.position;
      item.entry.kind = v.kind;
      item.entry.body.assign(v.body);
      std::copy(v.hash.begin(), v.hash.end(), item.entry.hash.begin());
      queue_.Push(std::move(item));
      return ScanControl::kContinue;
    }
    if (used_ == batch_.events.size()) batch_.events.emplace_back();
    ConsentEvent& e = batch_.events[used_];
    ASSENT_RETURN_IF_ERROR(decoder_.Decode(v, &e, nullptr));
    if (!IsPseudonym(e.party)) {
      return DataLossError("ledger entry at position " + std::to_string(v.position) +
                           " names its party by something that is not a pseudonym");
    }
    ++used_;  // named by pseudonym until the batch is resolved (SendBatch)
    if (used_ == batch_size_) {
      SendBatch();
      batch_size_ = std::min(kBatch, batch_size_ * 2);
      if (queue_.closed()) return InternalError("replay stopped");
    }
    return ScanControl::kContinue;
  }

  // Pseudonyms to ids for the whole batch at once (their look-ups overlap).
  void Resolve() {
    names_.clear();
    for (size_t i = 0; i < used_; ++i) names_.push_back(batch_.events[i].party);
    parties_.ResolveMany(names_, &ids_, &kinds_, &found_);
    size_t out = 0;
    for (size_t i = 0; i < used_; ++i) {
      if (!found_[i]) {
        ++erased_skipped_;
        continue;
      }
      if (kinds_[i] != batch_.events[i].party_kind && resolve_error_) {
        resolve_error_ = DataLossError("ledger entry at position " +
                                       std::to_string(batch_.events[i].position) +
                                       " names a party of another kind than its pseudonym's");
      }
      batch_.events[i].party.swap(ids_[i]);
      if (out != i) std::swap(batch_.events[out], batch_.events[i]);
      ++out;
    }
    used_ = out;
  }

  void SendBatch() {
    if (used_ == 0) return;
    Resolve();
    if (used_ == 0) return;
    batch_.events.resize(used_);
    queue_.Push(std::move(batch_));
    batch_ = ReplayItem(ReplayItem::Kind::kEvents);
    batch_.events = queue_.TakeSpare();
    batch_.events.reserve(static_cast<size_t>(std::min<uint64_t>(kBatch, head_ + 1 - expected_)));
    used_ = 0;
  }

  const LedgerStore& store_;
  const PartyIndex& parties_;
  ReplayQueue& queue_;
  const uint64_t head_;
  EntryDecoder decoder_;
  ReplayItem batch_{ReplayItem::Kind::kEvents};
  size_t used_ = 0;  // events of `batch_` filled so far (the rest are spare objects)
  size_t batch_size_ = kFirstBatch;  // events sent together next
  uint64_t expected_ = 1;
  uint64_t erased_skipped_ = 0;
  std::vector<std::string_view> names_;
  std::vector<std::string> ids_;
  std::vector<PartyKind> kinds_;
  std::vector<uint8_t> found_;
  Status resolve_error_ = OkStatus();
};

}  // namespace

// The head first, then the parties: every entry up to the head has its party's row in the
// table by then (they were committed together). Entries after it — other nodes keep
// appending — are left to the follower, which looks new parties up. (Whether each pseudonym
// matches its secret is `audit verify`'s to check: an HMAC per party would add seconds to
// every start at millions of parties.)
Status LedgerImpl::Replay() {
  ASSENT_ASSIGN_OR_RETURN(const uint64_t replay_head, store_->LastPosition());
  ASSENT_RETURN_IF_ERROR(LoadParties());
  engine_->BeginBulkLoad();
  struct EndBulk {
    Engine* e;
    ~EndBulk() { e->EndBulkLoad(); }
  } end_bulk{engine_.get()};
  ReplayQueue queue;
  ReplayReader reader(*store_, *parties_, queue, replay_head);
  std::thread reading([&] { reader.Run(); });
  EntryDecoder decoder;
  Status result = OkStatus();
  for (;;) {
    ReplayItem item = queue.Pop();
    if (item.kind == ReplayItem::Kind::kEnd) break;
    if (item.kind == ReplayItem::Kind::kError) {
      result = std::unexpected(item.error);
      break;
    }
    if (item.kind == ReplayItem::Kind::kEntry) {
      const StoredEntry& e = item.entry;
      result = ApplyEntry(EntryView{e.position, e.kind, e.body, e.hash}, decoder);
      if (!result) break;
      continue;
    }
    size_t failed = 0;
    if (auto st = engine_->ApplyBatch(item.events, &failed); !st) {
      result = DataLossError("ledger entry at position " +
                             std::to_string(item.events[failed].position) +
                             " cannot be applied: " + st.error().message);
      break;
    }
    queue.GiveBack(std::move(item.events));
  }
  queue.Close();
  reading.join();
  erased_skipped_ = reader.erased_skipped();
  ASSENT_RETURN_IF_ERROR(result);
  engine_->EndBulkLoad();
  // Checkpoints, keys, tokens and the like move the position too.
  if (reader.last_read() > engine_->snapshot()->position()) {
    ASSENT_RETURN_IF_ERROR(engine_->AdvancePosition(reader.last_read()));
  }
  return OkStatus();
}

// Every party row into the directory (and the suppression key, kept as a reserved row).
Status LedgerImpl::LoadParties() {
  ASSENT_ASSIGN_OR_RETURN(const uint64_t party_count, store_->PartyCount());
  parties_->Reserve(party_count);
  std::vector<PartyRow> rows;
  rows.reserve(64);
  ASSENT_RETURN_IF_ERROR(store_->ScanParties([&](const PartyRow& row) -> Status {
    if (row.id == kSuppressionKeyId) {
      engine_->SetSuppressionKey(SuppressionKeyOf(row.secret));
      return OkStatus();
    }
    if (!IsPseudonym(row.pseudonym)) {
      return DataLossError("the stored pseudonym of " + std::string(PartyKindName(row.kind)) +
                           " '" + row.id + "' is damaged");
    }
    rows.push_back(row);
    if (rows.size() == 64) {
      parties_->AddMany(rows);
      rows.clear();
    }
    return OkStatus();
  }));
  parties_->AddMany(rows);
  return OkStatus();
}

}  // namespace assent::internal
