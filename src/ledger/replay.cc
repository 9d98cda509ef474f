// Start-up replay (ledger_impl.h): every stored entry, checked and folded into a new engine.
// Two threads: a reader takes the entries from the store in order, checks their density and
// hashes, and hands them over in batches; this thread decodes consent events, names their
// parties in batches and applies them, and every other entry, in ledger order. Decoding goes
// where there is time for it: while this thread is behind (the queue between them holds
// batches waiting), the reader decodes the consent events of its next batch itself. Asked for
// one thread (LedgerOptions::threads), the reader hands each batch to the applying code as it
// fills, on the calling thread, and the parties load first.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <thread>

#include "ledger/ledger_impl.h"
#include "ledger/parties.h"
#include "ledger/store.h"

namespace assent::internal {
namespace {

// What the reading thread of a replay hands to the applying thread, in ledger order: a batch
// of entries as stored (checked), the end, or the error that stopped the reading.
struct ReplayItem {
  // Entries as stored, consent events the reader decoded (named by pseudonym), the end, or the
  // error that stopped the reading.
  enum class Kind { kEntries, kEvents, kEnd, kError } kind = Kind::kEnd;
  explicit ReplayItem(Kind k = Kind::kEnd) : kind(k) {}
  std::vector<StoredEntry> entries;
  std::vector<ConsentEvent> events;
  size_t used = 0;  // entries or events filled (the rest are spare objects)
  Error error;
};

// A small bounded queue between the two threads, which also hands applied batches back to the
// reader: it reuses their strings' buffers, so replaying millions of entries allocates almost
// nothing per entry.
class ReplayQueue {
 public:
  // One thread only: each batch goes to `consume` as it is pushed (on the reading thread).
  // It returns false to stop the replay.
  explicit ReplayQueue(std::function<bool(ReplayItem&)> consume = nullptr)
      : consume_(std::move(consume)) {}

  void Push(ReplayItem item) {
    if (consume_) {
      if (!closed() && !consume_(item)) Close();
      GiveBack(std::move(item));
      return;
    }
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
  // Batches waiting for the consumer.
  size_t waiting() {
    std::lock_guard lock(mu_);
    return items_.size();
  }
  void GiveBack(ReplayItem item) {
    std::lock_guard lock(mu_);
    if (spare_.size() < kCapacity + 2) spare_.push_back(std::move(item));
  }
  // A used batch (its buffers kept), else an empty one.
  ReplayItem TakeSpare(ReplayItem::Kind kind) {
    std::lock_guard lock(mu_);
    ReplayItem item(kind);
    if (!spare_.empty()) {
      item = std::move(spare_.back());
      spare_.pop_back();
      item.kind = kind;
      item.used = 0;
    }
    return item;
  }

 private:
  static constexpr size_t kCapacity = 4;
  const std::function<bool(ReplayItem&)> consume_;
  std::mutex mu_;
  std::condition_variable not_full_, not_empty_;
  std::vector<ReplayItem> items_;
  std::vector<ReplayItem> spare_;
  bool closed_ = false;
};

// A consent event names its party by pseudonym (until replay names it by id).
Status CheckPseudonym(const ConsentEvent& e) {
  if (IsPseudonym(e.party)) return OkStatus();
  return DataLossError("ledger entry at position " + std::to_string(e.position) +
                       " names its party by something that is not a pseudonym");
}

// Consent events decoded before the parties have loaded, at most (then the replay waits).
constexpr size_t kMaxPendingEvents = 65536;

// The reading thread: entries 1..head in order, their density and hashes checked, copied out
// of the store's buffers in batches.
class ReplayReader {
 public:
  ReplayReader(const LedgerStore& store, ReplayQueue& queue, uint64_t head)
      : store_(store), queue_(queue), head_(head) {}

  void Run() {
    Status st = store_.Scan(0, [&](const EntryView& v) { return OnEntry(v); });
    if (st) SendBatch();
    if (st) {
      queue_.Push(ReplayItem(ReplayItem::Kind::kEnd));
    } else {
      // What was read before the error is not applied: the replay fails as a whole.
      ReplayItem err(ReplayItem::Kind::kError);
      err.error = st.error();
      queue_.Push(std::move(err));
    }
  }
  uint64_t last_read() const { return expected_ - 1; }

 private:
  // Batches begin small and double up to kBatch, so that the applying thread has work from
  // the start (with one batch of a small ledger's every entry, it would only wait), and are
  // small at the end too: what it has left when the reading ends is one batch.
  static constexpr size_t kFirstBatch = 256, kBatch = 1024;

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
    if (batch_.kind == ReplayItem::Kind::kEvents && v.kind != EntryKind::kConsent) {
      SendBatch();  // decoded events only: the entry goes as stored, in the next batch
    }
    if (batch_.used == 0) {
      // The applying thread is behind (batches are waiting): this batch's consent events are
      // decoded here.
      batch_.kind = v.kind == EntryKind::kConsent && queue_.waiting() >= 2
                        ? ReplayItem::Kind::kEvents
                        : ReplayItem::Kind::kEntries;
    }
    if (batch_.kind == ReplayItem::Kind::kEvents) {
      if (batch_.used == batch_.events.size()) batch_.events.emplace_back();
      ConsentEvent& e = batch_.events[batch_.used];
      ASSENT_RETURN_IF_ERROR(decoder_.Decode(v, &e, nullptr));
      ASSENT_RETURN_IF_ERROR(CheckPseudonym(e));
    } else {
      if (batch_.used == batch_.entries.size()) batch_.entries.emplace_back();
      StoredEntry& e = batch_.entries[batch_.used];
      e.position = v.position;
      e.kind = v.kind;
      e.body.assign(v.body);
      std::copy(v.hash.begin(), v.hash.end(), e.hash.begin());  // 32 bytes (HashMatches)
    }
    if (++batch_.used == batch_size_) {
      SendBatch();
      batch_size_ = std::min(kBatch, batch_size_ * 2);
      if (queue_.closed()) return InternalError("replay stopped");
    }
    return ScanControl::kContinue;
  }

  void SendBatch() {
    if (batch_.used == 0) return;
    queue_.Push(std::move(batch_));
    batch_ = queue_.TakeSpare(ReplayItem::Kind::kEntries);
  }

  const LedgerStore& store_;
  ReplayQueue& queue_;
  const uint64_t head_;
  EntryDecoder decoder_;
  ReplayItem batch_{ReplayItem::Kind::kEntries};
  size_t batch_size_ = kFirstBatch;  // entries sent together next
  uint64_t expected_ = 1;
};

// The applying thread's consent events: decoded in place into reused objects, then named by
// id for a whole batch at once (their look-ups overlap). Events of erased parties leave the
// batch: they are no longer anyone's.
class EventBatch {
 public:
  explicit EventBatch(const PartyIndex& parties) : parties_(parties) {}

  Status Add(const EntryView& v) {
    if (used_ == events_.size()) events_.emplace_back();
    ConsentEvent& e = events_[used_];
    ASSENT_RETURN_IF_ERROR(decoder_.Decode(v, &e, nullptr));
    ASSENT_RETURN_IF_ERROR(CheckPseudonym(e));
    ++used_;  // named by pseudonym until Resolve
    return OkStatus();
  }

  // An event the reader decoded (and checked), taken over; `e` gets a spare object back.
  void Take(ConsentEvent& e) {
    if (used_ == events_.size()) events_.emplace_back();
    std::swap(events_[used_++], e);
  }

  // The events added since the last call, named by id (without those of erased parties).
  std::span<const ConsentEvent> Resolve() {
    names_.clear();
    for (size_t i = 0; i < used_; ++i) names_.push_back(events_[i].party);
    parties_.ResolveMany(names_, &ids_, &kinds_, &found_);
    size_t out = 0;
    for (size_t i = 0; i < used_; ++i) {
      if (!found_[i]) {
        ++erased_skipped_;
        continue;
      }
      if (kinds_[i] != events_[i].party_kind && resolve_error_) {
        resolve_error_ = DataLossError("ledger entry at position " +
                                       std::to_string(events_[i].position) +
                                       " names a party of another kind than its pseudonym's");
      }
      events_[i].party.swap(ids_[i]);
      if (out != i) std::swap(events_[out], events_[i]);
      ++out;
    }
    used_ = 0;
    return std::span<const ConsentEvent>(events_.data(), out);
  }

  bool empty() const { return used_ == 0; }
  size_t pending() const { return used_; }
  uint64_t erased_skipped() const { return erased_skipped_; }
  const Status& resolve_error() const { return resolve_error_; }

 private:
  const PartyIndex& parties_;
  EntryDecoder decoder_;
  std::vector<ConsentEvent> events_;
  size_t used_ = 0;  // events filled since the last Resolve (the rest are spare objects)
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
// every start at millions of parties.) Where the store reads parties beside a scan (SQLite),
// they load on a thread of their own while the entries are read and decoded: only naming
// events' parties and applying an erasure wait for them.
Status LedgerImpl::Replay(bool concurrent) {
  ASSENT_ASSIGN_OR_RETURN(const uint64_t replay_head, store_->LastPosition());
  std::optional<std::array<uint8_t, 16>> suppression_key;
  Status parties_loaded = OkStatus();
  std::atomic<bool> parties_done{false};
  std::thread loading;
  if (concurrent && store_->ScansConcurrently()) {
    loading = std::thread([&] {
      parties_loaded = LoadParties(&suppression_key);
      parties_done.store(true, std::memory_order_release);
    });
  } else {
    ASSENT_RETURN_IF_ERROR(LoadParties(&suppression_key));
    if (suppression_key) engine_->SetSuppressionKey(*suppression_key);
  }
  // Events fold into one private state, published once at the end (EndBulkLoad).
  engine_->BeginBulkLoad();
  struct EndBulk {
    Engine* e;
    ~EndBulk() { e->EndBulkLoad(); }
  } end_bulk{engine_.get()};
  // The parties, once loaded (an error loading them is the replay's). Nothing is folded in
  // before: the suppression key given to the engine flushes nothing.
  auto await_parties = [&]() -> Status {
    if (loading.joinable()) {
      loading.join();
      if (parties_loaded && suppression_key) engine_->SetSuppressionKey(*suppression_key);
    }
    return parties_loaded;
  };
  struct Joined {  // on every way out
    std::thread& t;
    ~Joined() {
      if (t.joinable()) t.join();
    }
  } joined{loading};
  EntryDecoder decoder;
  EventBatch events(*parties_);
  // The events decoded so far, applied (before any other entry, and at each batch's end once
  // the parties are loaded).
  auto apply_events = [&]() -> Status {
    if (events.empty()) return OkStatus();
    ASSENT_RETURN_IF_ERROR(await_parties());
    const std::span<const ConsentEvent> batch = events.Resolve();
    size_t failed = 0;
    if (auto st = engine_->ApplyBatch(batch, &failed); !st) {
      return DataLossError("ledger entry at position " + std::to_string(batch[failed].position) +
                           " cannot be applied: " + st.error().message);
    }
    return OkStatus();
  };
  Status result = OkStatus();
  // One batch from the reader, applied in order; false when the replay ends (or fails).
  auto consume = [&](ReplayItem& item) -> bool {
    if (item.kind == ReplayItem::Kind::kEnd) return false;
    if (item.kind == ReplayItem::Kind::kError) {
      result = std::unexpected(item.error);
      return false;
    }
    if (item.kind == ReplayItem::Kind::kEvents) {
      for (size_t i = 0; i < item.used; ++i) events.Take(item.events[i]);
    }
    for (size_t i = 0; item.kind == ReplayItem::Kind::kEntries && i < item.used && result; ++i) {
      const StoredEntry& e = item.entries[i];
      const EntryView v{e.position, e.kind, e.body, e.hash};
      if (e.kind == EntryKind::kConsent) {
        result = events.Add(v);
        continue;
      }
      result = apply_events();
      if (result && e.kind == EntryKind::kErasure) result = await_parties();  // it erases one
      if (result) result = ApplyEntry(v, decoder);
    }
    // Events wait for the parties only while few are waiting (bounded memory).
    if (result && (parties_done.load(std::memory_order_acquire) || !loading.joinable() ||
                   events.pending() >= kMaxPendingEvents)) {
      result = apply_events();
    }
    return static_cast<bool>(result);
  };
  // Alone, the reader hands each batch straight to `consume` on this thread.
  ReplayQueue queue(concurrent ? nullptr : std::function<bool(ReplayItem&)>(consume));
  ReplayReader reader(*store_, queue, replay_head);
  if (concurrent) {
    std::thread reading([&] { reader.Run(); });
    for (bool more = true; more;) {
      ReplayItem item = queue.Pop();
      more = consume(item);
      queue.GiveBack(std::move(item));
    }
    queue.Close();
    reading.join();
  } else {
    reader.Run();
  }
  if (result) result = apply_events();
  erased_skipped_ = events.erased_skipped();
  // As when the parties loaded first: their error comes before any the entries gave.
  if (Status st = await_parties(); !st) return st;
  ASSENT_RETURN_IF_ERROR(result);
  ASSENT_RETURN_IF_ERROR(events.resolve_error());
  engine_->EndBulkLoad();
  // Checkpoints, keys, tokens and the like move the position too.
  if (reader.last_read() > engine_->snapshot()->position()) {
    ASSENT_RETURN_IF_ERROR(engine_->AdvancePosition(reader.last_read()));
  }
  return OkStatus();
}

// Every party row into the directory (and the suppression key, kept as a reserved row).
Status LedgerImpl::LoadParties(std::optional<std::array<uint8_t, 16>>* suppression_key) {
  ASSENT_ASSIGN_OR_RETURN(const uint64_t party_count, store_->PartyCount());
  parties_->Reserve(party_count);
  std::vector<PartyRow> rows;
  rows.reserve(64);
  ASSENT_RETURN_IF_ERROR(store_->ScanParties([&](const PartyRow& row) -> Status {
    if (row.id == kSuppressionKeyId) {
      *suppression_key = SuppressionKeyOf(row.secret);
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
