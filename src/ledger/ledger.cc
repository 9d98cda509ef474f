// The ledger: opening and replaying a store into the engine, group commit of consent events,
// terms publication, export and import.
#include "assent/ledger.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/json_writer.h"
#include "common/sha256.h"
#include "common/strings.h"
#include "engine/events_jsonl.h"
#include "ledger/entry.h"
#include "ledger/lineage.h"
#include "ledger/parties.h"
#include "ledger/store.h"
#include "terms/diff.h"

namespace assent {

namespace {
// The suppression key (Engine::SetSuppressionKey) lives in the parties table — outside the
// audit tree, shared by every node, written in the same transaction as the first erasure —
// as the row of a reserved id no party can have (party ids refuse control characters).
constexpr std::string_view kSuppressionKeyId = "\x01assent:suppression-key";

std::array<uint8_t, 16> SuppressionKeyOf(const std::array<uint8_t, 32>& secret) {
  std::array<uint8_t, 16> key;
  std::copy(secret.begin(), secret.begin() + 16, key.begin());
  return key;
}
}  // namespace

using internal::EntryDecoder;
using internal::EntryKind;
using internal::EntryView;
using internal::PartyChange;
using internal::StoredEntry;

namespace internal {

// Every append takes the store's append lock first (across nodes: PostgreSQL's advisory lock)
// and then the ledger's write lock, and catches up with what other nodes appended before it
// looks at the state: so its checks and positions are against the whole ledger. The follower
// takes only the write lock — and, since the append lock is taken without it, keeps applying
// other nodes' entries while a writer waits for its turn, leaving it little to catch up.
class AppendLock {
 public:
  static Result<std::unique_ptr<AppendLock>> Take(Ledger* ledger) {
    auto head = ledger->store_->BeginAppend();
    if (!head) {
      ledger->NoteStore(Status(std::unexpected(head.error())));
      return std::unexpected(head.error());
    }
    std::unique_ptr<AppendLock> lock(new AppendLock(ledger, *head));
    if (auto st = ledger->CatchUpLocked(*head); !st) return std::unexpected(st.error());
    return lock;
  }
  ~AppendLock() {
    if (open_) ledger_->store_->AbortAppend();
  }
  uint64_t head() const { return head_; }
  // Ends the append either way.
  Status Commit(std::span<const StoredEntry> entries, std::span<const PartyChange> parties) {
    open_ = false;
    Status st = ledger_->store_->CommitAppend(entries, parties);
    ledger_->NoteStore(st);
    return st;
  }

 private:
  AppendLock(Ledger* ledger, uint64_t head);
  Ledger* ledger_;
  uint64_t head_;
  bool open_ = true;
  std::unique_lock<std::mutex> write_;
};

// Group commit: callers queue their events; whichever caller finds no commit running becomes
// the leader, takes everything queued, validates it, writes it in one transaction (one
// fsync), applies it to the engine and wakes the others with their receipts.
class GroupCommitter {
 public:
  GroupCommitter(Ledger* ledger, bool group) : ledger_(ledger), group_(group) {}

  Result<std::vector<Receipt>> Submit(std::vector<ConsentEvent> events) {
    Request req;
    req.events = std::move(events);
    std::unique_lock lock(mu_);
    queue_.push_back(&req);
    while (!req.done) {
      if (!leader_active_) {
        leader_active_ = true;
        std::vector<Request*> batch;
        if (group_) {
          batch.swap(queue_);
        } else {  // one request per transaction
          batch.push_back(queue_.front());
          queue_.erase(queue_.begin());
        }
        lock.unlock();
        CommitAll(batch);
        lock.lock();
        for (Request* r : batch) r->done = true;
        leader_active_ = false;
        cv_.notify_all();
      } else {
        cv_.wait(lock);
      }
    }
    return std::move(req.result);
  }

  // Held while committing consent events or publishing terms.
  std::mutex commit_mu;
  bool broken = false;  // the engine could not apply what was stored: restart to recover

 private:
  struct Request {
    std::vector<ConsentEvent> events;
    Result<std::vector<Receipt>> result = InternalError("not committed");
    bool done = false;
  };

  // Fills in defaults (time, terms version, the rule's scope) for one event.
  Status Complete(ConsentEvent& e, const Snapshot& snap, Timestamp now, Timestamp last_at) {
    if (e.at == 0) {
      e.at = std::max(now, last_at);
    } else if (!TimeInRange(e.at)) {
      return InvalidArgumentError("time " + FormatTime(e.at) + " is outside the range a ledger "
                                  "stores (years 0001 to 9999, UTC)");
    } else if (e.at > now + kMaxClockSkew) {
      // Times never decrease with position: one event in the future would hold every later
      // event's time there, and decisions about now would ignore them (withdrawals included).
      return InvalidArgumentError("time " + FormatTime(e.at) + " is in the future (now " +
                                  FormatTime(now) + "): a choice is recorded when it is made; "
                                  "leave the time out and the server stamps it");
    }
    const TermsSet& ts = snap.terms();
    int32_t v = e.terms_version.empty() ? ts.VersionAt(e.at) : ts.FindVersion(e.terms_version);
    if (v < 0) {
      return InvalidArgumentError(
          e.terms_version.empty()
              ? "no terms are in effect at " + FormatTime(e.at) + ": publish terms first"
              : "unknown terms version '" + e.terms_version + "': publish it first");
    }
    const Terms& t = ts.version(v);
    e.terms_version = t.version();
    if (!e.rule.empty()) {
      int32_t r = t.FindRule(e.rule);
      if (r < 0) {
        return InvalidArgumentError("unknown rule '" + e.rule + "' in terms " + t.label());
      }
      const Rule& rule = t.rules()[r];
      if (e.categories.empty() && e.purposes.empty()) {
        for (int32_t c : rule.categories) e.categories.push_back(t.categories()[c].name);
        for (int32_t p : rule.purposes) e.purposes.push_back(t.purposes()[p].name);
      }
    }
    return OkStatus();
  }

  void CommitAll(const std::vector<Request*>& batch) {
    // The append lock, then the write lock, caught up: positions and times are assigned
    // against the whole ledger, inside the committing transaction.
    auto append = AppendLock::Take(ledger_);
    if (!append) {
      for (Request* r : batch) {
        r->result = MakeError(append.error().code, "not recorded: " + append.error().message);
      }
      return;
    }
    if (broken) {
      for (Request* r : batch) {
        r->result = InternalError("the ledger stopped accepting writes after an internal error; "
                                  "restart to recover from the stored ledger");
      }
      return;
    }
    internal::LedgerStore& store = *ledger_->store_;
    Engine& engine = *ledger_->engine_;
    auto snap = engine.snapshot();
    const Timestamp now = ledger_->clock_();
    uint64_t last_position = snap->position();
    Timestamp last_at = engine.last_consent_at();
    std::vector<ConsentEvent> accepted;
    std::vector<std::pair<Request*, size_t>> owners;  // request, first index in `accepted`
    std::set<std::string> batch_keys;  // idempotency keys taken by requests of this batch
    for (Request* r : batch) {
      // A retried request (same idempotency key as one already recorded) gets that one's
      // receipt; nothing is recorded again.
      if (r->events.size() == 1 && !r->events[0].idempotency_key.empty()) {
        const ConsentEvent& asked = r->events[0];
        if (!batch_keys.insert(asked.idempotency_key).second) {
          r->result = MakeError(ErrorCode::kUnavailable,
                                "a request with this idempotency key is being recorded; retry");
          continue;
        }
        auto found = store.FindIdempotencyKey(asked.idempotency_key);
        if (!found) {
          r->result = std::unexpected(found.error());
          continue;
        }
        if (*found) {
          auto earlier = ledger_->ReceiptAt(**found);
          // The whole request must be the same, not only its party and action: a different
          // scope under a reused key would otherwise be answered with the first receipt and
          // never recorded (a withdrawal lost).
          if (earlier && (earlier->party != asked.party || earlier->party_kind != asked.party_kind ||
                          earlier->action != asked.action || earlier->method != asked.method ||
                          earlier->rule != asked.rule ||
                          (!asked.categories.empty() && earlier->categories != asked.categories) ||
                          (!asked.purposes.empty() && earlier->purposes != asked.purposes))) {
            r->result = AlreadyExistsError(
                "this idempotency key was used for a different request (position " +
                std::to_string(**found) + "); use a new key for a new request");
          } else if (earlier) {
            earlier->replayed = true;
            r->result = std::vector<Receipt>{*earlier};
          } else if (earlier.error().code == ErrorCode::kNotFound) {
            // Recorded then, and the party erased since: its receipt is gone with its secret.
            r->result = MakeError(ErrorCode::kGone,
                                  "this request was recorded at position " +
                                      std::to_string(**found) + ", and the " +
                                      std::string(PartyKindName(asked.party_kind)) +
                                      " has since been erased: the event stays in the log, "
                                      "unlinkable; there is no receipt to give again");
          } else {
            r->result = std::unexpected(earlier.error());
          }
          continue;
        }
      }
      const size_t mark = accepted.size();
      const uint64_t position_mark = last_position;
      const Timestamp at_mark = last_at;
      Status st = OkStatus();
      for (size_t i = 0; i < r->events.size() && st; ++i) {
        ConsentEvent e = r->events[i];
        e.position = last_position + 1;
        st = Complete(e, *snap, now, last_at);
        if (st) st = engine.ValidateAfter(e, last_position, last_at);
        if (!st) {
          if (r->events.size() > 1) {
            st = MakeError(st.error().code,
                           "event " + std::to_string(i + 1) + ": " + st.error().message);
          }
          break;
        }
        last_position = e.position;
        last_at = e.at;
        accepted.push_back(std::move(e));
      }
      if (!st) {
        r->result = std::unexpected(st.error());
        accepted.resize(mark);
        last_position = position_mark;
        last_at = at_mark;
      } else {
        owners.emplace_back(r, mark);
      }
    }
    if (accepted.empty()) {  // (the append is aborted as `append` goes)
      for (auto& [r, first] : owners) r->result = std::vector<Receipt>{};
      return;
    }
    std::vector<StoredEntry> entries;
    entries.reserve(accepted.size());
    std::vector<PartyChange> created;
    std::map<std::pair<PartyKind, std::string>, std::string> fresh;
    std::vector<std::string> pseudonyms;
    pseudonyms.reserve(accepted.size());
    // After the catch-up this node knows every party the ledger names (replay loaded them, and
    // catch-ups fetch those of other nodes' entries), so a party it does not know is new.
    const bool shared = store.Shared();
    ConsentEvent named;  // the event as the entry names it: by pseudonym
    for (const auto& e : accepted) {
      pseudonyms.push_back(
          ledger_->PseudonymForLocked(e.party_kind, e.party, &created, &fresh, !shared));
      named = e;
      named.party = pseudonyms.back();
      const int32_t tv = snap->terms().FindVersion(e.terms_version);
      entries.push_back(internal::MakeConsentEntry(
          e.position, now, named, tv >= 0 ? std::string_view(snap->terms().version(tv).id()) : ""));
      entries.back().idempotency_key = e.idempotency_key;
    }
    Status committed = (*append)->Commit(entries, created);
    if (!committed && shared && committed.error().code == ErrorCode::kAlreadyExists) {
      // Never expected (see above); should it happen, learn the stored rows so a retry uses
      // them, and ask the callers to retry rather than fail them for good.
      for (PartyKind kind : {PartyKind::kSubject, PartyKind::kAccount}) {
        std::vector<std::string> ids;
        for (const auto& c : created) {
          if (c.row.kind == kind) ids.push_back(c.row.id);
        }
        if (auto rows = store.FindParties(kind, ids); rows) {
          std::vector<PartyChange> known(rows->size());
          for (size_t i = 0; i < rows->size(); ++i) known[i].row = std::move((*rows)[i]);
          ledger_->AddPartiesLocked(known);
        }
      }
      committed = MakeError(ErrorCode::kUnavailable, committed.error().message + "; retry");
    }
    if (auto st = committed; !st) {
      for (auto& [r, first] : owners) {
        r->result = MakeError(st.error().code, "not recorded: " + st.error().message);
      }
      return;
    }
    ledger_->AddPartiesLocked(created);
    ledger_->NotifyAppended(entries);
    if (auto st = engine.ApplyBatch(accepted); !st) {
      broken = true;  // durable but not applied: never answer from a state missing it
      for (auto& [r, first] : owners) {
        r->result = InternalError("recorded but not applied (" + st.error().message +
                                  "); restart assent to reload the ledger");
      }
      return;
    }
    for (size_t k = 0; k < owners.size(); ++k) {
      auto [r, first] = owners[k];
      const size_t end = k + 1 < owners.size() ? owners[k + 1].second : accepted.size();
      std::vector<Receipt> receipts;
      for (size_t i = first; i < end; ++i) {
        const ConsentEvent& e = accepted[i];
        Receipt rc;
        rc.position = e.position;
        rc.party_kind = e.party_kind;
        rc.party = e.party;
        rc.action = e.action;
        rc.categories = e.categories;
        rc.purposes = e.purposes;
        rc.terms = snap->terms().version(snap->terms().FindVersion(e.terms_version)).label();
        rc.at = e.at;
        rc.method = e.method;
        rc.rule = e.rule;
        rc.actor = e.actor;
        rc.hash = ToHex(entries[i].hash);
        rc.pseudonym = pseudonyms[i];
        rc.pseudonym_key = ledger_->PartyKeyLocked(e.party_kind, e.party);
        receipts.push_back(std::move(rc));
      }
      r->result = std::move(receipts);
    }
  }

  Ledger* ledger_;
  bool group_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Request*> queue_;
  bool leader_active_ = false;
};

AppendLock::AppendLock(Ledger* ledger, uint64_t head)
    : ledger_(ledger), head_(head), write_(ledger->committer_->commit_mu) {}

}  // namespace internal

namespace {

// Takes DIR/LOCK so that one writer process owns a data directory at a time.
Result<int> LockDataDir(const std::string& dir) {
  const std::string path = dir + "/LOCK";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return MakeError(ErrorCode::kUnavailable,
                     "cannot open " + path + ": " + std::strerror(errno));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    char buf[32] = {};
    ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    ::close(fd);
    std::string pid = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "?";
    while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
    return FailedPreconditionError("data directory '" + dir +
                                   "' is in use by another assent process (pid " + pid +
                                   "); stop it, or send this change through its API");
  }
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    // The pid is only a hint for the error message above; the lock is what matters.
  }
  return fd;
}

}  // namespace

Ledger::~Ledger() {
  stopping_ = true;
  if (follower_.joinable()) follower_.join();
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

std::string Ledger::store_description() const { return store_->Describe(); }

std::string Ledger::store_problem() const {
  std::lock_guard lock(store_problem_mu_);
  return store_problem_;
}

void Ledger::NoteStore(const Status& st) {
  if (st) {
    store_ok_ = true;
    return;
  }
  if (st.error().code != ErrorCode::kUnavailable) return;  // the store answered
  std::lock_guard lock(store_problem_mu_);
  store_problem_ = st.error().message;
  store_ok_ = false;
}

// Follows a shared store: waits for a wake-up (LISTEN/NOTIFY) or the poll interval, then
// applies whatever other nodes appended. While the store is unreachable it backs off (up to
// 2 s between attempts) and keeps serving decisions from the state it has.
void Ledger::FollowLoop() {
  std::chrono::milliseconds backoff(50);
  while (!stopping_) {
    Status st = store_->WaitForAppends(follow_poll_);
    if (stopping_) break;
    if (st) st = CatchUp();
    NoteStore(st);
    if (st) {
      backoff = std::chrono::milliseconds(50);
      continue;
    }
    if (st.error().code != ErrorCode::kUnavailable) {
      std::lock_guard lock(store_problem_mu_);
      store_problem_ = st.error().message;
    }
    for (auto slept = std::chrono::milliseconds(0); slept < backoff && !stopping_;
         slept += std::chrono::milliseconds(50)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
  }
}

Status Ledger::CatchUp() {
  if (!store_->Shared()) return OkStatus();
  std::lock_guard guard(committer_->commit_mu);
  return CatchUpLocked(UINT64_MAX);
}

Result<std::unique_ptr<Ledger>> Ledger::Open(const LedgerOptions& options) {
  std::unique_ptr<Ledger> ledger(new Ledger());
  ledger->lineage_ = std::make_unique<Lineage>();
  ledger->parties_ = std::make_unique<internal::PartyIndex>();
  ledger->data_dir_ = options.in_memory ? std::string("(memory)") : options.data_dir;
  ledger->clock_ = options.clock;
  ledger->read_only_ = options.read_only;
  if (options.in_memory) {
    ledger->store_ = internal::NewMemoryStore();
  } else {
    if (!options.read_only) {
      std::error_code ec;
      std::filesystem::create_directories(options.data_dir, ec);
      ASSENT_ASSIGN_OR_RETURN(ledger->lock_fd_, LockDataDir(options.data_dir));
    }
    ASSENT_ASSIGN_OR_RETURN(ledger->store_, internal::OpenStore(options.data_dir, options.database,
                                                                options.read_only));
  }
  ledger->follow_poll_ = options.follow_poll;
  ASSENT_ASSIGN_OR_RETURN(auto empty, TermsSet::Create({}));
  ledger->engine_ = std::make_unique<Engine>(empty, options.clock);
  ASSENT_RETURN_IF_ERROR(ledger->Replay());
  ledger->committer_ =
      std::make_unique<internal::GroupCommitter>(ledger.get(), options.group_commit);
  if (ledger->store_->Shared() && !options.read_only) {
    Ledger* l = ledger.get();
    ledger->follower_ = std::thread([l] { l->FollowLoop(); });
  }
  return ledger;
}

namespace {

// What the reading thread of a replay hands to the applying thread, in ledger order.
struct ReplayItem {
  enum class Kind { kEvents, kTerms, kKey, kDataset, kModel, kSuppress, kEnd, kError } kind = Kind::kEnd;
  explicit ReplayItem(Kind k = Kind::kEnd) : kind(k) {}
  std::vector<ConsentEvent> events;
  EntryDecoder::TermsFields terms;
  internal::KeyFields key;
  internal::DatasetFields dataset;
  internal::ModelFields model;
  Timestamp recorded_at = 0;
  uint64_t position = 0;
  uint64_t suppressed = 0;
  Error error;
};

// A small bounded queue between the two threads of a replay.
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

 private:
  static constexpr size_t kCapacity = 4;
  std::mutex mu_;
  std::condition_variable not_full_, not_empty_;
  std::vector<ReplayItem> items_;
  bool closed_ = false;
};

}  // namespace

// Replays the store into the engine with two threads: one reads, checks hashes and decodes
// entries; the other (this one) folds them into the engine, which bulk-loads without
// publishing intermediate snapshots.
Status Ledger::Replay() {
  constexpr size_t kBatch = 16384;
  // (Whether each pseudonym matches its secret is `audit verify`'s to check: an HMAC per
  // party would add seconds to every start at millions of parties.)
  // The head first, then the parties: every entry up to the head has its party's row in the
  // table by then (they were committed together). Entries after it — other nodes keep
  // appending — are left to the follower, which looks new parties up.
  ASSENT_ASSIGN_OR_RETURN(const uint64_t replay_head, store_->LastPosition());
  ASSENT_ASSIGN_OR_RETURN(const uint64_t party_count, store_->PartyCount());
  parties_->Reserve(party_count);
  std::vector<internal::PartyRow> rows;
  rows.reserve(64);
  ASSENT_RETURN_IF_ERROR(store_->ScanParties([&](const internal::PartyRow& row) -> Status {
    if (row.id == kSuppressionKeyId) {
      engine_->SetSuppressionKey(SuppressionKeyOf(row.secret));
      return OkStatus();
    }
    if (!internal::IsPseudonym(row.pseudonym)) {
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
  engine_->BeginBulkLoad();
  struct EndBulk {
    Engine* e;
    ~EndBulk() { e->EndBulkLoad(); }
  } end_bulk{engine_.get()};
  ReplayQueue queue;
  // Applied batches go back to the reader, whose decoder reuses their strings' buffers:
  // replaying millions of events then allocates almost nothing per event.
  std::mutex spare_mu;
  std::vector<std::vector<ConsentEvent>> spare;
  uint64_t last_read = 0;
  uint64_t erased_skipped = 0;
  std::thread reader([&] {
    EntryDecoder decoder;
    ReplayItem batch(ReplayItem::Kind::kEvents);
    size_t used = 0;  // events of `batch` filled so far (the rest are spare objects)
    uint64_t expected = 1;
    // Pseudonyms to ids for the whole batch at once (their look-ups overlap); events of
    // erased parties leave the batch: they are no longer anyone's.
    std::vector<std::string_view> names;
    std::vector<std::string> ids;
    std::vector<PartyKind> kinds;
    std::vector<uint8_t> found;
    Status resolve_error = OkStatus();
    auto resolve = [&] {
      names.clear();
      for (size_t i = 0; i < used; ++i) names.push_back(batch.events[i].party);
      parties_->ResolveMany(names, &ids, &kinds, &found);
      size_t out = 0;
      for (size_t i = 0; i < used; ++i) {
        if (!found[i]) {
          ++erased_skipped;
          continue;
        }
        if (kinds[i] != batch.events[i].party_kind && resolve_error) {
          resolve_error = DataLossError("ledger entry at position " +
                                        std::to_string(batch.events[i].position) +
                                        " names a party of another kind than its pseudonym's");
        }
        batch.events[i].party.swap(ids[i]);
        if (out != i) std::swap(batch.events[out], batch.events[i]);
        ++out;
      }
      used = out;
    };
    auto send_batch = [&] {
      if (used == 0) return;
      resolve();
      if (used == 0) return;
      batch.events.resize(used);
      queue.Push(std::move(batch));
      batch = ReplayItem(ReplayItem::Kind::kEvents);
      used = 0;
      std::lock_guard lock(spare_mu);
      if (!spare.empty()) {
        batch.events = std::move(spare.back());
        spare.pop_back();
      }
    };
    const Status past_head = MakeError(ErrorCode::kAlreadyExists, "past the replay head");
    Status st = store_->Scan(0, [&](const EntryView& v) -> Status {
      if (v.position > replay_head) return past_head;
      if (v.position != expected) {
        return DataLossError("the ledger jumps from position " + std::to_string(expected - 1) +
                             " to " + std::to_string(v.position) + ": entries are missing");
      }
      ++expected;
      if (v.hash.size() != 32 ||
          Sha256(v.body) != *reinterpret_cast<const Sha256Digest*>(v.hash.data())) {
        return DataLossError("ledger entry at position " + std::to_string(v.position) +
                             " does not match its hash: it was changed after it was written");
      }
      if (v.kind == EntryKind::kConsent) {
        if (used == batch.events.size()) batch.events.emplace_back();
        ConsentEvent& e = batch.events[used];
        ASSENT_RETURN_IF_ERROR(decoder.Decode(v, &e, nullptr));
        if (!internal::IsPseudonym(e.party)) {
          return DataLossError("ledger entry at position " + std::to_string(v.position) +
                               " names its party by something that is not a pseudonym");
        }
        ++used;  // named by pseudonym until the batch is resolved (send_batch)
        if (used == kBatch) {
          send_batch();
          if (queue.closed()) return InternalError("replay stopped");
        }
        return OkStatus();
      }
      send_batch();
      if (v.kind == EntryKind::kDataset || v.kind == EntryKind::kModel) {
        ReplayItem item(v.kind == EntryKind::kDataset ? ReplayItem::Kind::kDataset
                                                      : ReplayItem::Kind::kModel);
        item.position = v.position;
        if (v.kind == EntryKind::kDataset) {
          ASSENT_RETURN_IF_ERROR(decoder.DecodeDataset(v, &item.dataset, &item.recorded_at));
        } else {
          ASSENT_RETURN_IF_ERROR(decoder.DecodeModel(v, &item.model, &item.recorded_at));
        }
        queue.Push(std::move(item));
        return OkStatus();
      }
      // Checkpoints and erasures move the position only (an erased party's secret is gone
      // from the parties table, so its events were skipped above).
      if (v.kind == EntryKind::kCheckpoint) return OkStatus();
      if (v.kind == EntryKind::kToken) {  // a set: applied here, in any order
        internal::TokenFields t;
        ASSENT_RETURN_IF_ERROR(decoder.DecodeToken(v, &t));
        ApplyToken(t.token_sha256, t.expires);
        return OkStatus();
      }
      if (v.kind == EntryKind::kErasure) {  // the party's keyed hash joins the suppression list
        ReplayItem item(ReplayItem::Kind::kSuppress);
        item.position = v.position;
        PartyKind kind;
        std::string pseudonym;
        std::optional<uint64_t> suppressed;
        ASSENT_RETURN_IF_ERROR(decoder.DecodeErasure(v, &kind, &pseudonym, &suppressed));
        if (!suppressed) return OkStatus();  // erased before the suppression list existed
        item.suppressed = *suppressed;
        queue.Push(std::move(item));
        return OkStatus();
      }
      if (v.kind == EntryKind::kKey) {
        ReplayItem key(ReplayItem::Kind::kKey);
        key.position = v.position;
        ASSENT_RETURN_IF_ERROR(decoder.DecodeKey(v, &key.key));
        queue.Push(std::move(key));
        return OkStatus();
      }
      ReplayItem terms(ReplayItem::Kind::kTerms);
      terms.position = v.position;
      ASSENT_RETURN_IF_ERROR(decoder.Decode(v, nullptr, &terms.terms));
      queue.Push(std::move(terms));
      return OkStatus();
    });
    if (!st && st.error().code == ErrorCode::kAlreadyExists &&
        st.error().message == "past the replay head") {
      st = OkStatus();
    }
    if (st) {
      send_batch();
      if (!resolve_error) st = resolve_error;
    }
    if (st) {
      last_read = expected - 1;
      queue.Push(ReplayItem(ReplayItem::Kind::kEnd));
    } else {
      ReplayItem err(ReplayItem::Kind::kError);
      err.error = st.error();
      queue.Push(std::move(err));
    }
  });
  Status result = OkStatus();
  for (;;) {
    ReplayItem item = queue.Pop();
    if (item.kind == ReplayItem::Kind::kEnd) break;
    if (item.kind == ReplayItem::Kind::kError) {
      result = std::unexpected(item.error);
      break;
    }
    if (item.kind == ReplayItem::Kind::kEvents) {
      size_t failed = 0;
      if (auto st = engine_->ApplyBatch(item.events, &failed); !st) {
        result = DataLossError("ledger entry at position " +
                               std::to_string(item.events[failed].position) +
                               " cannot be applied: " + st.error().message);
        break;
      }
      std::lock_guard lock(spare_mu);
      if (spare.size() < 4) spare.push_back(std::move(item.events));
      continue;
    }
    if (item.kind == ReplayItem::Kind::kDataset || item.kind == ReplayItem::Kind::kModel) {
      Status st = item.kind == ReplayItem::Kind::kDataset
                      ? ApplyDataset(item.position, item.recorded_at, &item.dataset)
                      : ApplyModel(item.position, item.recorded_at, &item.model);
      if (!st) {
        result = DataLossError("lineage entry at ledger position " + std::to_string(item.position) +
                               ": " + st.error().message);
        break;
      }
      continue;
    }
    if (item.kind == ReplayItem::Kind::kSuppress) {
      if (auto st = engine_->Suppress(item.suppressed); !st) {
        result = DataLossError("erasure entry at ledger position " +
                               std::to_string(item.position) + ": " + st.error().message);
        break;
      }
      continue;
    }
    if (item.kind == ReplayItem::Kind::kKey) {
      const auto& k = item.key;
      if (auto st = ApplyKey(item.position, k.action, k.name, k.role, k.key_sha256); !st) {
        result = DataLossError("key entry at ledger position " + std::to_string(item.position) +
                               ": " + st.error().message);
        break;
      }
      continue;
    }
    const auto& f = item.terms;
    if (auto st = ApplyTermsEntry(item.position, f.id, f.version, f.yaml); !st) {
      result = st;
      break;
    }
  }
  queue.Close();
  reader.join();
  erased_skipped_ = erased_skipped;
  ASSENT_RETURN_IF_ERROR(result);
  engine_->EndBulkLoad();
  // Entries of other kinds (later issues) still move the position.
  if (last_read > engine_->snapshot()->position()) {
    ASSENT_RETURN_IF_ERROR(engine_->AdvancePosition(last_read));
  }
  return OkStatus();
}

Status Ledger::ApplyTermsEntry(uint64_t position, const std::string& id,
                               const std::string& version, const std::string& yaml) {
  const std::string where = "terms at ledger position " + std::to_string(position);
  auto terms = CompileTerms(yaml, "ledger position " + std::to_string(position));
  if (!terms) return DataLossError(where + " no longer compile: " + terms.error().message);
  if ((*terms)->version() != version || (*terms)->id() != id) {
    return DataLossError(where + " do not match their recorded id and version");
  }
  if (auto p = engine_->PublishTerms(*terms, position); !p) {
    return DataLossError(where + " cannot be applied: " + p.error().message);
  }
  published_at_[(*terms)->version()] = position;
  return OkStatus();
}

// Applies the entries after the engine's position up to `head` that other nodes appended,
// in order, as replay does (one thread: these are few). Consent entries naming a party this
// node has not seen bring its row from the store; an erasure made elsewhere is applied here.
Status Ledger::CatchUpLocked(uint64_t head) {
  if (!store_->Shared()) return OkStatus();  // only this process writes: nothing to catch
  const uint64_t from = engine_->snapshot()->position();
  if (head <= from) return OkStatus();
  EntryDecoder decoder;
  std::vector<ConsentEvent> events;
  uint64_t expected = from + 1;
  auto flush = [&]() -> Status {
    if (events.empty()) return OkStatus();
    size_t failed = 0;
    if (auto st = engine_->ApplyBatch(events, &failed); !st) {
      return DataLossError("ledger entry at position " + std::to_string(events[failed].position) +
                           " cannot be applied: " + st.error().message);
    }
    events.clear();
    return OkStatus();
  };
  auto advance = [&](uint64_t position) -> Status {
    if (position <= engine_->snapshot()->position()) return OkStatus();
    return engine_->AdvancePosition(position);
  };
  // Read a chunk, then apply it: applying may ask the store about parties, which it cannot
  // answer in the middle of a scan.
  constexpr size_t kChunk = 4096;
  const Status stop = MakeError(ErrorCode::kAlreadyExists, "caught up");
  auto apply = [&](const EntryView& v) -> Status {
    const std::string at = "ledger entry at position " + std::to_string(v.position);
    if (v.hash.size() != 32 ||
        Sha256(v.body) != *reinterpret_cast<const Sha256Digest*>(v.hash.data())) {
      return DataLossError(at + " does not match its hash: it was changed after it was written");
    }
    // The observer (the audit tree) sees each entry exactly once, when it is sure to apply:
    // an entry that fails here is read again by the next catch-up.
    auto observed = [&] {
      if (observer_) observer_(v.position, v.body);
    };
    if (v.kind == EntryKind::kConsent) {
      ConsentEvent e;
      ASSENT_RETURN_IF_ERROR(decoder.Decode(v, &e, nullptr));
      const std::string pseudonym = std::move(e.party);
      PartyKind kind = e.party_kind;
      bool known;
      {
        std::shared_lock lock(parties_mu_);
        known = parties_->Resolve(pseudonym, &kind, &e.party);
      }
      if (!known) {
        ASSENT_ASSIGN_OR_RETURN(auto row, store_->FindPseudonym(pseudonym));
        if (!row) {  // erased since: no one's event
          observed();
          return OkStatus();
        }
        PartyChange c;
        c.row = *row;
        AddPartiesLocked({&c, 1});
        kind = row->kind;
        e.party = row->id;
      }
      if (kind != e.party_kind) {
        return DataLossError(at + " names a party of another kind than its pseudonym's");
      }
      events.push_back(std::move(e));
      observed();
      return OkStatus();
    }
    ASSENT_RETURN_IF_ERROR(flush());
    switch (v.kind) {
      case EntryKind::kTerms: {
        EntryDecoder::TermsFields f;
        ASSENT_RETURN_IF_ERROR(decoder.Decode(v, nullptr, &f));
        ASSENT_RETURN_IF_ERROR(ApplyTermsEntry(v.position, f.id, f.version, f.yaml));
        observed();
        return OkStatus();
      }
      case EntryKind::kKey: {
        internal::KeyFields k;
        ASSENT_RETURN_IF_ERROR(decoder.DecodeKey(v, &k));
        ASSENT_RETURN_IF_ERROR(ApplyKey(v.position, k.action, k.name, k.role, k.key_sha256));
        break;
      }
      case EntryKind::kDataset: {
        internal::DatasetFields d;
        Timestamp recorded = 0;
        ASSENT_RETURN_IF_ERROR(decoder.DecodeDataset(v, &d, &recorded));
        if (auto a = ApplyDataset(v.position, recorded, &d); !a) {
          return DataLossError("lineage " + at + ": " + a.error().message);
        }
        break;
      }
      case EntryKind::kModel: {
        internal::ModelFields m;
        Timestamp recorded = 0;
        ASSENT_RETURN_IF_ERROR(decoder.DecodeModel(v, &m, &recorded));
        if (auto a = ApplyModel(v.position, recorded, &m); !a) {
          return DataLossError("lineage " + at + ": " + a.error().message);
        }
        break;
      }
      case EntryKind::kErasure: {
        PartyKind kind;
        std::string pseudonym, id;
        std::optional<uint64_t> suppressed;
        ASSENT_RETURN_IF_ERROR(decoder.DecodeErasure(v, &kind, &pseudonym, &suppressed));
        if (suppressed) {  // another node erased: its key row came with that erasure
          if (!engine_->has_suppression_key()) {
            ASSENT_ASSIGN_OR_RETURN(auto row,
                                    store_->FindParty(PartyKind::kSubject, kSuppressionKeyId));
            if (!row) return DataLossError("an erasure " + at + " but no suppression key");
            engine_->SetSuppressionKey(SuppressionKeyOf(row->secret));
          }
          ASSENT_RETURN_IF_ERROR(engine_->Suppress(*suppressed));
        }
        bool known;
        {
          std::shared_lock lock(parties_mu_);
          known = parties_->Resolve(pseudonym, nullptr, &id);
        }
        if (known) {
          {
            std::unique_lock lock(parties_mu_);
            parties_->Erase(kind, id);
          }
          ASSENT_RETURN_IF_ERROR(engine_->ForgetParty(kind, id));
        }
        break;
      }
      case EntryKind::kToken: {
        internal::TokenFields t;
        ASSENT_RETURN_IF_ERROR(decoder.DecodeToken(v, &t));
        ApplyToken(t.token_sha256, t.expires);
        break;
      }
      case EntryKind::kCheckpoint:
      case EntryKind::kConsent:
        break;
    }
    ASSENT_RETURN_IF_ERROR(advance(v.position));
    observed();
    return OkStatus();
  };
  std::vector<StoredEntry> chunk;
  for (;;) {
    chunk.clear();
    const uint64_t after = expected - 1;
    std::vector<internal::PartyRow> named;
    Status st = store_->ScanRange(after, head, kChunk, [&](const EntryView& v) -> Status {
      if (v.position > head || chunk.size() == kChunk) return stop;
      if (v.position != expected) {
        return DataLossError("the ledger jumps from position " + std::to_string(expected - 1) +
                             " to " + std::to_string(v.position) + ": entries are missing");
      }
      ++expected;
      StoredEntry e;
      e.position = v.position;
      e.kind = v.kind;
      e.body.assign(v.body);
      e.hash.fill(0);  // a damaged hash (wrong size) stays zeros: apply() reports it
      if (v.hash.size() == 32) std::copy(v.hash.begin(), v.hash.end(), e.hash.begin());
      chunk.push_back(std::move(e));
      return OkStatus();
    }, &named);
    if (!named.empty()) {  // parties other nodes created, read with the entries
      std::vector<PartyChange> found;
      {
        std::shared_lock lock(parties_mu_);
        for (auto& row : named) {
          if (parties_->Resolve(row.pseudonym, nullptr, nullptr)) continue;
          PartyChange c;
          c.row = std::move(row);
          found.push_back(std::move(c));
        }
      }
      std::sort(found.begin(), found.end(),
                [](const PartyChange& a, const PartyChange& b) { return a.row.pseudonym < b.row.pseudonym; });
      found.erase(std::unique(found.begin(), found.end(),
                              [](const PartyChange& a, const PartyChange& b) {
                                return a.row.pseudonym == b.row.pseudonym;
                              }),
                  found.end());
      AddPartiesLocked(found);
    }
    if (!st && !(st.error().code == ErrorCode::kAlreadyExists && st.error().message == "caught up")) {
      return st;
    }
    // The parties other nodes created, fetched together (one round trip for the chunk).
    std::vector<std::string> unknown;
    auto note = [&](std::string pseudonym) {
      std::shared_lock lock(parties_mu_);
      if (!parties_->Resolve(pseudonym, nullptr, nullptr)) unknown.push_back(std::move(pseudonym));
    };
    // (Consent entries' parties came with the scan where the store can; a store that cannot
    // leaves them to apply(), which looks an unknown one up.)
    for (const auto& e : chunk) {
      const EntryView v{e.position, e.kind, e.body, e.hash};
      if (e.kind == EntryKind::kDataset) {  // it may name parties with no consent event
        internal::DatasetFields d;
        Timestamp recorded = 0;
        if (decoder.DecodeDataset(v, &d, &recorded)) {
          for (auto& p : d.new_subjects) note(std::move(p));
          for (auto& p : d.new_accounts) note(std::move(p));
        }
      }
    }
    if (!unknown.empty()) {
      std::sort(unknown.begin(), unknown.end());
      unknown.erase(std::unique(unknown.begin(), unknown.end()), unknown.end());
      ASSENT_ASSIGN_OR_RETURN(auto rows, store_->FindPseudonyms(unknown));
      std::vector<PartyChange> found(rows.size());
      for (size_t i = 0; i < rows.size(); ++i) found[i].row = std::move(rows[i]);
      AddPartiesLocked(found);
    }
    for (const auto& e : chunk) {
      if (auto st = apply(EntryView{e.position, e.kind, e.body, e.hash}); !st) {
        (void)flush();  // what was read before the failure is applied (and observed) already
        return st;
      }
    }
    if (chunk.size() < kChunk) break;
  }
  ASSENT_RETURN_IF_ERROR(flush());
  if (head != UINT64_MAX && engine_->snapshot()->position() < head) {
    return MakeError(ErrorCode::kUnavailable, "the store's head is " + std::to_string(head) +
                                                  " but only " +
                                                  std::to_string(engine_->snapshot()->position()) +
                                                  " could be read; retry");
  }
  return OkStatus();
}

uint64_t Ledger::position() const { return engine_->snapshot()->position(); }

Result<PublishResult> Ledger::PublishTerms(std::string_view yaml, std::string_view file,
                                           PublishOptions options) {
  if (!ValidUtf8(yaml)) return InvalidArgumentError(std::string(file) + ": not valid UTF-8");
  LintResult lint = LintTerms(yaml, file);
  if (lint.has_errors()) {
    std::string msg = "terms refused: fix these errors and publish again:";
    for (const auto& d : lint.diagnostics) {
      if (d.severity == Severity::kError) msg += "\n  " + d.ToString();
    }
    return InvalidArgumentError(msg);
  }
  ASSENT_ASSIGN_OR_RETURN(auto append, internal::AppendLock::Take(this));
  auto snap = engine_->snapshot();
  const auto& terms = lint.terms;
  if (int32_t v = snap->terms().FindVersion(terms->version()); v >= 0) {
    const Terms& existing = snap->terms().version(v);
    if (existing.source() == terms->source()) {
      return PublishResult{published_at_[terms->version()], true, snap->terms().version_ptr(v)};
    }
    return InvalidArgumentError("terms version '" + terms->version() +
                                "' is already published (position " +
                                std::to_string(published_at_[terms->version()]) +
                                ") with different content: give the new text a new version");
  }
  ASSENT_RETURN_IF_ERROR(snap->terms().With(terms));  // same document, later effective
  const Timestamp now = clock_();
  if (terms->effective() < now - kMaxClockSkew && !options.backfill) {
    return FailedPreconditionError(
        "terms " + terms->label() + " take effect at " + FormatTime(terms->effective()) +
        ", before now (" + FormatTime(now) + "): publishing them would change answers already "
        "given for the time since. Publish with a later effective time, or, to record history "
        "on purpose, with `assent terms publish --backfill` (CLI only)");
  }
  if (snap->terms().size() > 0 && !options.allow_loosening) {
    const Terms& latest = snap->terms().version(snap->terms().size() - 1);
    TermsDiff diff = DiffTerms(latest, *terms);
    if (diff.loosened()) {
      std::string what;
      for (const auto& pc : diff.pairs) {
        if (pc.change != Change::kLoosened) continue;
        what += "\n  " + pc.category + " x " + pc.purpose + ": " + pc.old_basis + " -> " +
                pc.new_basis + (pc.detail.empty() ? "" : " (" + pc.detail + ")");
        if (what.size() > 2000) break;
      }
      return FailedPreconditionError(
          "terms " + terms->label() + " loosen uses allowed under " + latest.label() +
          " (see `assent terms diff`):" + what +
          "\npublish with --allow-loosening (HTTP: ?allow_loosening=true) if that is intended");
    }
  }
  const uint64_t position = snap->position() + 1;
  StoredEntry entry = internal::MakeTermsEntry(position, now, *terms, options.backfill,
                                               options.allow_loosening);
  ASSENT_RETURN_IF_ERROR(append->Commit({&entry, 1}, {}));
  NotifyAppended({&entry, 1});
  if (auto st = engine_->PublishTerms(terms, position); !st) {
    committer_->broken = true;
    return InternalError("terms recorded but not applied: " + st.error().message);
  }
  published_at_[terms->version()] = position;
  return PublishResult{position, false, terms};
}

Result<Receipt> Ledger::RecordConsent(ConsentEvent event) {
  std::vector<ConsentEvent> one;
  one.push_back(std::move(event));
  ASSENT_ASSIGN_OR_RETURN(auto receipts, RecordConsents(std::move(one)));
  return std::move(receipts.front());
}

Result<std::vector<Receipt>> Ledger::RecordConsents(std::vector<ConsentEvent> events) {
  if (read_only_) return FailedPreconditionError("the ledger was opened read-only");
  if (events.empty()) return std::vector<Receipt>{};
  return committer_->Submit(std::move(events));
}

Status Ledger::ScanEntries(
    uint64_t after,
    const std::function<Status(uint64_t, std::string_view, std::string_view, std::string_view)>&
        fn) const {
  return store_->Scan(after, [&](const EntryView& v) -> Status {
    return fn(v.position, internal::EntryKindName(v.kind), v.body,
              std::string_view(reinterpret_cast<const char*>(v.hash.data()), v.hash.size()));
  });
}

Result<uint64_t> Ledger::AppendCheckpoint(uint64_t size, std::string_view root_hex,
                                          std::string_view note) {
  if (read_only_) return FailedPreconditionError("the ledger was opened read-only");
  ASSENT_ASSIGN_OR_RETURN(auto append, internal::AppendLock::Take(this));
  if (size != engine_->snapshot()->position()) {
    return FailedPreconditionError("the ledger moved on while the checkpoint was signed; retry");
  }
  ASSENT_ASSIGN_OR_RETURN(auto at, AppendEntryLocked(*append, [&](uint64_t pos, Timestamp now) {
    return internal::MakeCheckpointEntry(pos, now, size, root_hex, note);
  }));
  return at.first;
}

Result<uint64_t> Ledger::AppendCheckpoint(const CheckpointSigner& sign) {
  if (read_only_) return FailedPreconditionError("the ledger was opened read-only");
  ASSENT_ASSIGN_OR_RETURN(auto append, internal::AppendLock::Take(this));
  const uint64_t size = engine_->snapshot()->position();
  ASSENT_ASSIGN_OR_RETURN(auto signed_, sign(size));
  const auto& [root_hex, note] = signed_;
  ASSENT_ASSIGN_OR_RETURN(auto at, AppendEntryLocked(*append, [&](uint64_t pos, Timestamp now) {
    return internal::MakeCheckpointEntry(pos, now, size, root_hex, note);
  }));
  return at.first;
}

Status Ledger::ScanConsents(uint64_t up_to,
                            const std::function<Status(const ConsentEvent&)>& fn) const {
  EntryDecoder decoder;
  const Status stop = MakeError(ErrorCode::kAlreadyExists, "past the snapshot position");
  auto st = store_->Scan(0, [&](const EntryView& v) -> Status {
    if (v.position > up_to) return stop;
    if (v.kind != EntryKind::kConsent) return OkStatus();
    ConsentEvent e;
    ASSENT_RETURN_IF_ERROR(decoder.Decode(v, &e, nullptr));
    const std::string pseudonym = std::move(e.party);
    {
      std::shared_lock lock(parties_mu_);
      if (!parties_->Resolve(pseudonym, nullptr, &e.party)) return OkStatus();  // erased
    }
    return fn(e);
  });
  if (!st && st.error().code == ErrorCode::kAlreadyExists &&
      st.error().message == "past the snapshot position") {
    return OkStatus();
  }
  return st;
}

Result<Receipt> Ledger::ReceiptAt(uint64_t position) const {
  if (position == 0) return NotFoundError("position 0 holds no entry");
  std::optional<StoredEntry> entry;
  auto st = store_->Scan(position - 1, [&](const EntryView& v) -> Status {
    if (v.position == position) {
      entry.emplace();
      entry->position = v.position;
      entry->kind = v.kind;
      entry->body.assign(v.body);
      entry->hash.fill(0);
      if (v.hash.size() == 32) std::copy(v.hash.begin(), v.hash.end(), entry->hash.begin());
    }
    return MakeError(ErrorCode::kAlreadyExists, "found");  // stop after the first entry
  });
  if (!entry) {
    if (!st && st.error().code != ErrorCode::kAlreadyExists) return std::unexpected(st.error());
    return NotFoundError("no entry at position " + std::to_string(position));
  }
  if (entry->kind != EntryKind::kConsent) {
    return NotFoundError("the entry at position " + std::to_string(position) +
                         " is not a consent event");
  }
  EntryDecoder decoder;
  ConsentEvent e;
  ASSENT_RETURN_IF_ERROR(
      decoder.Decode(EntryView{entry->position, entry->kind, entry->body, entry->hash}, &e, nullptr));
  Receipt rc;
  rc.pseudonym = e.party;
  {
    std::shared_lock lock(parties_mu_);
    if (!parties_->Resolve(rc.pseudonym, nullptr, &rc.party)) {
      return NotFoundError("the party of the event at position " + std::to_string(position) +
                           " was erased");
    }
  }
  rc.position = e.position;
  rc.party_kind = e.party_kind;
  rc.action = e.action;
  rc.categories = e.categories;
  rc.purposes = e.purposes;
  auto snap = engine_->snapshot();
  const int32_t v = snap->terms().FindVersion(e.terms_version);
  rc.terms = v >= 0 ? snap->terms().version(v).label() : e.terms_version;
  rc.at = e.at;
  rc.method = e.method;
  rc.rule = e.rule;
  rc.actor = e.actor;
  rc.hash = ToHex(entry->hash);
  rc.pseudonym_key = PartyKeyLocked(rc.party_kind, rc.party);
  return rc;
}

Result<std::string> Ledger::EntryHash(uint64_t position) const {
  if (position == 0) return NotFoundError("position 0 holds no entry");
  std::string hash;
  auto st = store_->Scan(position - 1, [&](const EntryView& v) -> Status {
    if (v.position == position) hash = ToHex(v.hash.data(), v.hash.size());
    return MakeError(ErrorCode::kAlreadyExists, "found");  // stop after the first entry
  });
  if (hash.empty()) {
    if (!st && st.error().code != ErrorCode::kAlreadyExists) return std::unexpected(st.error());
    return NotFoundError("no entry at position " + std::to_string(position));
  }
  return hash;
}

Status Ledger::Export(uint64_t since, std::ostream& out) const {
  EntryDecoder decoder;
  ConsentEvent e;
  std::string id;
  ASSENT_RETURN_IF_ERROR(store_->Scan(since, [&](const EntryView& v) -> Status {
    if (v.kind == EntryKind::kConsent) {
      ASSENT_RETURN_IF_ERROR(decoder.Decode(v, &e, nullptr));
      bool known;
      {
        std::shared_lock lock(parties_mu_);
        known = parties_->Resolve(e.party, nullptr, &id);
      }
      out << internal::ExportLineResolved(v.body, v.hash, e.party_kind, e.party,
                                          known ? &id : nullptr);
    } else {
      out << internal::ExportLine(v.body, v.hash);
    }
    if (!out) return MakeError(ErrorCode::kUnavailable, "cannot write the export");
    return OkStatus();
  }));
  out.flush();
  if (!out) return MakeError(ErrorCode::kUnavailable, "cannot write the export");
  return OkStatus();
}

Result<std::pair<uint64_t, Timestamp>> Ledger::AppendEntryLocked(
    internal::AppendLock& append,
    const std::function<internal::StoredEntry(uint64_t, Timestamp)>& make,
    std::span<const PartyChange> parties) {
  const uint64_t position = append.head() + 1;
  const Timestamp now = clock_();
  StoredEntry entry = make(position, now);
  ASSENT_RETURN_IF_ERROR(append.Commit({&entry, 1}, parties));
  AddPartiesLocked(parties);
  NotifyAppended({&entry, 1});
  ASSENT_RETURN_IF_ERROR(engine_->AdvancePosition(position));
  return std::make_pair(position, now);
}

std::string Ledger::PseudonymForLocked(
    PartyKind kind, const std::string& id, std::vector<PartyChange>* created,
    std::map<std::pair<PartyKind, std::string>, std::string>* fresh, bool ask_store) {
  {
    std::shared_lock lock(parties_mu_);
    if (auto p = parties_->PseudonymOf(kind, id)) return *p;
  }
  auto key = std::make_pair(kind, id);
  if (auto it = fresh->find(key); it != fresh->end()) return it->second;
  if (ask_store && store_->Shared()) {  // another node may have named this party first
    if (auto row = store_->FindParty(kind, id); row && *row) {
      PartyChange known;
      known.row = **row;
      AddPartiesLocked({&known, 1});
      return known.row.pseudonym;
    }
    // Unreachable or not there: a new row; a taken id fails the append (kAlreadyExists).
  }
  PartyChange c;
  c.row.kind = kind;
  c.row.id = id;
  for (;;) {  // a 128-bit pseudonym taken already: never seen, but never allowed either
    c.row.secret = internal::NewPartySecret();
    c.row.pseudonym = internal::MakePseudonym(c.row.secret, kind, id);
    std::shared_lock lock(parties_mu_);
    if (!parties_->Resolve(c.row.pseudonym, nullptr, nullptr)) break;
  }
  (*fresh)[key] = c.row.pseudonym;
  created->push_back(std::move(c));
  return created->back().row.pseudonym;
}

void Ledger::AddPartiesLocked(std::span<const PartyChange> created) {
  if (created.empty()) return;
  std::unique_lock lock(parties_mu_);
  for (const auto& c : created) {
    if (c.row.id == kSuppressionKeyId) continue;  // a key, not a party
    if (c.erase) {
      parties_->Erase(c.row.kind, c.row.id);
    } else {
      parties_->Add(c.row.kind, c.row.id, c.row.pseudonym, c.row.secret);
    }
  }
}

std::string Ledger::PartyKeyLocked(PartyKind kind, std::string_view id) const {
  internal::PartySecret secret;
  std::shared_lock lock(parties_mu_);
  if (!parties_->PseudonymOf(kind, id, &secret)) return "";
  return Base64Encode(std::string_view(reinterpret_cast<const char*>(secret.data()), 32));
}

std::optional<std::string> Ledger::PseudonymOf(PartyKind kind, std::string_view id) const {
  std::shared_lock lock(parties_mu_);
  return parties_->PseudonymOf(kind, id);
}

Result<uint64_t> Ledger::EraseParty(PartyKind kind, const std::string& id,
                                    ErasureReport* report) {
  if (read_only_) return FailedPreconditionError("the ledger was opened read-only");
  if (BlankId(id) || std::any_of(id.begin(), id.end(), [](char c) {
        return static_cast<unsigned char>(c) < 0x20;
      })) {
    return InvalidArgumentError("not a party id: empty, blank or with control characters");
  }
  ASSENT_ASSIGN_OR_RETURN(auto append, internal::AppendLock::Take(this));
  auto pseudonym = PseudonymOf(kind, id);
  if (!pseudonym) {
    return NotFoundError("the ledger holds nothing about " + std::string(PartyKindName(kind)) +
                         " '" + id + "': nothing to erase");
  }
  std::vector<PartyChange> changes(1);
  changes[0].erase = true;
  changes[0].row.kind = kind;
  changes[0].row.id = id;
  // The suppression key: made with the first erasure, in the same transaction.
  std::array<uint8_t, 16> key{};
  if (auto known = engine_->suppression_key()) {
    key = *known;
  } else {
    PartyChange k;
    k.row.kind = PartyKind::kSubject;
    k.row.id = std::string(kSuppressionKeyId);
    k.row.secret = internal::NewPartySecret();
    k.row.pseudonym = internal::MakePseudonym(k.row.secret, k.row.kind, k.row.id);
    key = SuppressionKeyOf(k.row.secret);
    changes.push_back(std::move(k));
  }
  internal::ErasureFields fields;
  fields.suppressed = ErasedPartyHash(key, kind, id);
  ErasureReport held = Holding(kind, *pseudonym);
  fields.datasets = held.datasets;
  fields.shards = held.shards;
  fields.models = held.models;
  ASSENT_ASSIGN_OR_RETURN(auto at, AppendEntryLocked(*append,
                                       [&](uint64_t pos, Timestamp now) {
                                         return internal::MakeErasureEntry(pos, now, kind,
                                                                           *pseudonym, fields);
                                       },
                                       changes));
  if (changes.size() > 1) engine_->SetSuppressionKey(key);
  ASSENT_RETURN_IF_ERROR(engine_->Suppress(*fields.suppressed));
  if (report) *report = std::move(held);
  ASSENT_RETURN_IF_ERROR(engine_->ForgetParty(kind, id));
  append.reset();  // the store's locks are taken before the write lock, never inside it
  // Old copies of the row may remain in the WAL until it is checkpointed; with readers
  // holding it open, the next checkpoint (at the latest, at close) removes them.
  (void)store_->Purge();
  return at.first;
}

ErasureReport Ledger::Holding(PartyKind kind, const std::string& pseudonym) const {
  ErasureReport r;
  WithLineage([&](const Lineage& l) {
    auto dense = kind == PartyKind::kSubject ? l.subjects.Find(pseudonym)
                                             : l.accounts.Find(pseudonym);
    if (!dense) return;
    std::set<std::string> models;
    for (const auto& d : l.datasets) {
      const Roaring& set = kind == PartyKind::kSubject ? d.subjects : d.accounts;
      if (!set.contains(*dense)) continue;
      r.datasets.push_back(d.name);
      for (const auto& s : d.shards) {
        if (kind == PartyKind::kSubject && s.subjects.contains(*dense)) r.shards.push_back(s.file);
      }
      for (const auto& m : l.models) {
        if (std::find(m.datasets.begin(), m.datasets.end(), d.name) != m.datasets.end()) {
          models.insert(m.name);
        }
      }
    }
    r.models.assign(models.begin(), models.end());
  });
  return r;
}

Result<ErasureReport> Ledger::ErasureImpact(PartyKind kind, const std::string& id) const {
  auto pseudonym = PseudonymOf(kind, id);
  if (!pseudonym) {
    return NotFoundError("the ledger holds nothing about " + std::string(PartyKindName(kind)) +
                         " '" + id + "': nothing to erase");
  }
  return Holding(kind, *pseudonym);
}

void Ledger::SetAppendObserver(AppendObserver observer) {
  std::lock_guard guard(committer_->commit_mu);
  observer_ = std::move(observer);
}

Status Ledger::SetAppendObserver(AppendObserver observer, uint64_t seen) {
  std::lock_guard guard(committer_->commit_mu);
  const uint64_t position = engine_->snapshot()->position();
  if (seen > position) return FailedPreconditionError("the observer has more than the ledger");
  if (seen < position) {
    ASSENT_RETURN_IF_ERROR(store_->Scan(seen, [&](const EntryView& v) -> Status {
      if (v.position > position) return OkStatus();
      observer(v.position, v.body);
      return OkStatus();
    }));
  }
  observer_ = std::move(observer);
  return OkStatus();
}

void Ledger::NotifyAppended(std::span<const StoredEntry> entries) {
  if (!observer_) return;
  for (const auto& e : entries) observer_(e.position, e.body);
}

Status Ledger::ApplyDataset(uint64_t position, Timestamp at, const void* fields) {
  const auto& f = *static_cast<const internal::DatasetFields*>(fields);
  std::unique_lock lock(lineage_mu_);
  Lineage& l = *lineage_;
  if (l.FindDataset(f.name)) return AlreadyExistsError("dataset '" + f.name + "' is recorded already");
  for (const auto& n : f.new_subjects) {
    if (l.subjects.Find(n)) return InvalidArgumentError("subject '" + n + "' has an id already");
    l.subjects.Add(n);
  }
  for (const auto& n : f.new_accounts) {
    if (l.accounts.Find(n)) return InvalidArgumentError("account '" + n + "' has an id already");
    l.accounts.Add(n);
  }
  DatasetInfo d;
  d.name = f.name;
  d.purpose = f.purpose;
  d.terms = f.terms;
  d.position = position;
  d.ledger_position = f.ledger_position;
  d.recorded_at = at;
  d.input_sha256 = f.input_sha256;
  d.output_sha256 = f.output_sha256;
  d.snapshot_sha256 = f.snapshot_sha256;
  d.items = f.items;
  if (!DecodeBitmap(f.subjects, &d.subjects) || !DecodeBitmap(f.accounts, &d.accounts)) {
    return InvalidArgumentError("damaged bitmap");
  }
  for (const auto& sh : f.shards) {
    ShardInfo s;
    s.file = sh.file;
    s.items = sh.items;
    if (!DecodeBitmap(sh.subjects, &s.subjects)) return InvalidArgumentError("damaged bitmap");
    d.shards.push_back(std::move(s));
  }
  l.datasets.push_back(std::move(d));
  return OkStatus();
}

Status Ledger::ApplyModel(uint64_t position, Timestamp at, const void* fields) {
  const auto& f = *static_cast<const internal::ModelFields*>(fields);
  std::unique_lock lock(lineage_mu_);
  if (lineage_->FindModel(f.name)) return AlreadyExistsError("model '" + f.name + "' exists");
  for (const auto& d : f.datasets) {
    if (!lineage_->FindDataset(d)) return NotFoundError("no dataset named '" + d + "'");
  }
  lineage_->models.push_back(ModelInfo{f.name, f.datasets, position, at});
  return OkStatus();
}

void Ledger::WithLineage(const std::function<void(const Lineage&)>& fn) const {
  std::shared_lock lock(lineage_mu_);
  fn(*lineage_);
}

namespace {
// Dataset and model names: 1-128 of A-Z a-z 0-9 . _ - (they are printed one per line, used in
// file names and URLs; a newline or blank would split or hide them).
Status CheckLineageName(std::string_view what, std::string_view name) {
  const bool ok = !name.empty() && name.size() <= 128 &&
                  std::all_of(name.begin(), name.end(), [](char c) {
                    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                           (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
                  });
  if (ok) return OkStatus();
  return InvalidArgumentError("a " + std::string(what) + " name is 1 to 128 letters, digits, '.', "
                              "'_' or '-' (e.g. assistant-v3)");
}
}  // namespace

Result<uint64_t> Ledger::RegisterDataset(const DatasetRegistration& r) {
  if (read_only_) return FailedPreconditionError("the ledger was opened read-only");
  ASSENT_RETURN_IF_ERROR(CheckLineageName("dataset", r.name));
  if (r.ledger_position > position()) {
    return FailedPreconditionError("a dataset decided at ledger position " +
                                   std::to_string(r.ledger_position) +
                                   " cannot be recorded: the ledger's head is " +
                                   std::to_string(position()));
  }
  ASSENT_ASSIGN_OR_RETURN(auto append, internal::AppendLock::Take(this));
  internal::DatasetFields f;
  f.name = r.name;
  f.purpose = r.purpose;
  f.terms = r.terms;
  f.ledger_position = r.ledger_position;
  f.items = r.items;
  f.input_sha256 = r.input_sha256;
  f.output_sha256 = r.output_sha256;
  f.snapshot_sha256 = r.snapshot_sha256;
  // The entry names parties by pseudonym, like consent entries (a party with no consent event
  // yet, kept under a necessary or objectable rule, gets its pseudonym here).
  std::vector<PartyChange> created;
  std::map<std::pair<PartyKind, std::string>, std::string> fresh;
  auto subject_ps = [&](const std::string& id) {
    return PseudonymForLocked(PartyKind::kSubject, id, &created, &fresh);
  };
  {
    std::shared_lock lock(lineage_mu_);
    if (lineage_->FindDataset(r.name)) {
      return AlreadyExistsError("a dataset named '" + r.name + "' is recorded already");
    }
    // Ids continue where the directory ends; these pseudonyms get them in this order.
    uint32_t next_subject = static_cast<uint32_t>(lineage_->subjects.size());
    uint32_t next_account = static_cast<uint32_t>(lineage_->accounts.size());
    std::map<std::string, uint32_t> new_subjects, new_accounts;
    auto subject_id = [&](const std::string& id) {
      const std::string s = subject_ps(id);
      if (auto found = lineage_->subjects.Find(s)) return *found;
      auto it = new_subjects.find(s);
      if (it != new_subjects.end()) return it->second;
      f.new_subjects.push_back(s);
      return new_subjects[s] = next_subject++;
    };
    Roaring subjects, accounts;
    for (const auto& s : r.subjects) subjects.add(subject_id(s));
    for (const auto& id : r.accounts) {
      const std::string a = PseudonymForLocked(PartyKind::kAccount, id, &created, &fresh);
      uint32_t dense;
      if (auto found = lineage_->accounts.Find(a)) {
        dense = *found;
      } else if (new_accounts.count(a)) {
        dense = new_accounts[a];
      } else {
        f.new_accounts.push_back(a);
        dense = new_accounts[a] = next_account++;
      }
      accounts.add(dense);
    }
    f.subjects = EncodeBitmap(subjects);
    f.accounts = EncodeBitmap(accounts);
    for (const auto& sh : r.shards) {
      Roaring b;
      for (const auto& s : sh.subjects) b.add(subject_id(s));
      f.shards.push_back({sh.file, sh.items, EncodeBitmap(b)});
    }
  }
  ASSENT_ASSIGN_OR_RETURN(auto at, AppendEntryLocked(*append,
                                       [&](uint64_t pos, Timestamp now) {
                                         return internal::MakeDatasetEntry(pos, now, f);
                                       },
                                       created));
  ASSENT_RETURN_IF_ERROR(ApplyDataset(at.first, at.second, &f));
  return at.first;
}

Result<uint64_t> Ledger::RegisterModel(std::string name, std::vector<std::string> datasets) {
  if (read_only_) return FailedPreconditionError("the ledger was opened read-only");
  ASSENT_RETURN_IF_ERROR(CheckLineageName("model", name));
  if (datasets.empty()) return InvalidArgumentError("a model is trained on at least one dataset");
  ASSENT_ASSIGN_OR_RETURN(auto append, internal::AppendLock::Take(this));
  {
    std::shared_lock lock(lineage_mu_);
    if (lineage_->FindModel(name)) return AlreadyExistsError("a model named '" + name + "' exists");
    for (const auto& d : datasets) {
      if (!lineage_->FindDataset(d)) {
        return NotFoundError("no dataset named '" + d + "': register it with assent filter --dataset");
      }
    }
  }
  internal::ModelFields f{std::move(name), std::move(datasets)};
  ASSENT_ASSIGN_OR_RETURN(auto at, AppendEntryLocked(*append, [&](uint64_t pos, Timestamp now) {
    return internal::MakeModelEntry(pos, now, f);
  }));
  ASSENT_RETURN_IF_ERROR(ApplyModel(at.first, at.second, &f));
  return at.first;
}

std::string_view RoleName(Role r) {
  switch (r) {
    case Role::kOperator: return "operator";
    case Role::kService: return "service";
    case Role::kAuditor: return "auditor";
    case Role::kPortal: return "portal";
  }
  return "service";
}

std::optional<Role> ParseRole(std::string_view s) {
  if (s == "operator") return Role::kOperator;
  if (s == "service") return Role::kService;
  if (s == "auditor") return Role::kAuditor;
  if (s == "portal") return Role::kPortal;
  return std::nullopt;
}

Status Ledger::ApplyKey(uint64_t position, const std::string& action, const std::string& name,
                        const std::string& role, const std::string& key_sha256) {
  std::unique_lock lock(keys_mu_);
  if (action == "create") {
    auto r = ParseRole(role);
    if (!r) return InvalidArgumentError("unknown role '" + role + "'");
    keys_by_hash_[key_sha256] = ApiKey{name, *r, position, false};
    return OkStatus();
  }
  if (action == "revoke") {
    for (auto& [hash, key] : keys_by_hash_) {
      if (key.name == name && !key.revoked) {
        key.revoked = true;
        return OkStatus();
      }
    }
    return NotFoundError("no live key named '" + name + "'");
  }
  return InvalidArgumentError("unknown key action '" + action + "'");
}

Result<std::string> Ledger::CreateKey(Role role, std::string name) {
  if (read_only_) return FailedPreconditionError("the ledger was opened read-only");
  if (name.empty() || name.size() > 100 || !ValidUtf8(name) ||
      name.find_first_of("\r\n\t") != std::string::npos) {
    return InvalidArgumentError("a key name must be 1-100 printable characters");
  }
  ASSENT_ASSIGN_OR_RETURN(auto append, internal::AppendLock::Take(this));
  {
    std::shared_lock lock(keys_mu_);
    for (const auto& [hash, key] : keys_by_hash_) {
      if (key.name == name && !key.revoked) {
        return AlreadyExistsError("a live key is already named '" + name + "'");
      }
    }
  }
  uint8_t raw[32];
  if (RAND_bytes(raw, sizeof raw) != 1) return InternalError("no secure randomness available");
  std::string secret = "assent_" + ToHex(raw, sizeof raw);
  internal::KeyFields f{"create", name, std::string(RoleName(role)), ToHex(Sha256(secret))};
  ASSENT_ASSIGN_OR_RETURN(auto at, AppendEntryLocked(*append, [&](uint64_t pos, Timestamp now) {
    return internal::MakeKeyEntry(pos, now, f);
  }));
  ASSENT_RETURN_IF_ERROR(ApplyKey(at.first, f.action, f.name, f.role, f.key_sha256));
  return secret;
}

Status Ledger::SpendToken(std::string_view action, std::string_view token_sha256,
                          Timestamp expires) {
  if (read_only_) return FailedPreconditionError("the ledger was opened read-only");
  std::string raw;
  if ((action != "redeem" && action != "end") || token_sha256.size() != 64 ||
      !ParseHex(token_sha256, &raw)) {
    return InvalidArgumentError("a used-up token is 'redeem' or 'end' and 64 hex digits");
  }
  if (!TimeInRange(expires) || expires <= clock_()) {
    return InvalidArgumentError("a used-up token's expiry must lie ahead, within the storable range");
  }
  ASSENT_ASSIGN_OR_RETURN(auto append, internal::AppendLock::Take(this));
  if (TokenSpent(token_sha256)) return AlreadyExistsError("the token was used already");
  internal::TokenFields f{std::string(action), std::string(token_sha256), expires};
  ASSENT_ASSIGN_OR_RETURN(auto at, AppendEntryLocked(*append, [&](uint64_t pos, Timestamp now) {
    return internal::MakeTokenEntry(pos, now, f);
  }));
  (void)at;
  ApplyToken(f.token_sha256, f.expires);
  return OkStatus();
}

bool Ledger::TokenSpent(std::string_view token_sha256) const {
  std::lock_guard lock(tokens_mu_);
  return tokens_.find(std::string(token_sha256)) != tokens_.end();
}

size_t Ledger::tokens_remembered() const {
  std::lock_guard lock(tokens_mu_);
  return tokens_.size();
}

void Ledger::ApplyToken(const std::string& token_sha256, Timestamp expires) {
  const Timestamp now = clock_();
  std::lock_guard lock(tokens_mu_);
  for (int n = 0; n < 8 && !token_expiry_.empty() && token_expiry_.begin()->first <= now; ++n) {
    tokens_.erase(token_expiry_.begin()->second);
    token_expiry_.erase(token_expiry_.begin());
  }
  if (expires <= now) return;  // can no longer be presented: nothing to remember
  if (tokens_.emplace(token_sha256, expires).second) token_expiry_.emplace(expires, token_sha256);
}

Status Ledger::RevokeKey(std::string_view name) {
  if (read_only_) return FailedPreconditionError("the ledger was opened read-only");
  ASSENT_ASSIGN_OR_RETURN(auto append, internal::AppendLock::Take(this));
  internal::KeyFields f{"revoke", std::string(name), "", ""};
  {
    std::shared_lock lock(keys_mu_);
    bool found = false;
    for (const auto& [hash, key] : keys_by_hash_) {
      if (key.name == name && !key.revoked) {
        found = true;
        f.role = std::string(RoleName(key.role));
        f.key_sha256 = hash;
      }
    }
    if (!found) return NotFoundError("no live key named '" + std::string(name) + "'");
  }
  ASSENT_ASSIGN_OR_RETURN(auto at, AppendEntryLocked(*append, [&](uint64_t pos, Timestamp now) {
    return internal::MakeKeyEntry(pos, now, f);
  }));
  return ApplyKey(at.first, f.action, f.name, f.role, f.key_sha256);
}

std::vector<ApiKey> Ledger::Keys() const {
  std::shared_lock lock(keys_mu_);
  std::vector<ApiKey> out;
  for (const auto& [hash, key] : keys_by_hash_) out.push_back(key);
  std::sort(out.begin(), out.end(), [](const ApiKey& a, const ApiKey& b) {
    return a.position < b.position;
  });
  return out;
}

std::optional<ApiKey> Ledger::Authenticate(std::string_view secret) const {
  // Look up by the secret's hash: the comparison never touches the secret itself.
  const std::string hash = ToHex(Sha256(secret));
  std::shared_lock lock(keys_mu_);
  auto it = keys_by_hash_.find(hash);
  if (it == keys_by_hash_.end() || it->second.revoked) return std::nullopt;
  return it->second;
}

std::string Receipt::ToJson() const {
  JsonWriter w;
  w.BeginObject();
  w.Key("position").UInt(position);
  w.Key(PartyKindName(party_kind)).String(party);
  if (!pseudonym.empty()) w.Key("pseudonym").String(pseudonym);
  if (!pseudonym_key.empty()) w.Key("pseudonym_key").String(pseudonym_key);
  w.Key("action").String(ActionName(action));
  w.Key("categories").BeginArray();
  for (const auto& c : categories) w.String(c);
  w.EndArray();
  w.Key("purposes").BeginArray();
  for (const auto& p : purposes) w.String(p);
  w.EndArray();
  w.Key("terms").String(terms);
  w.Key("at").String(FormatTime(at));
  w.Key("method").String(MethodName(method));
  if (!rule.empty()) w.Key("rule").String(rule);
  if (!actor.empty()) w.Key("actor").String(actor);
  w.Key("hash").String(hash);
  if (replayed) w.Key("replayed").Bool(true);
  w.EndObject();
  return w.Take();
}

Result<std::vector<ConsentEvent>> ReadImportFile(const std::string& path) {
  ASSENT_ASSIGN_OR_RETURN(auto events, LoadEventsFile(path));
  for (auto& e : events) e.position = 0;  // the importing ledger assigns positions
  return events;
}

}  // namespace assent
