// Opening a ledger, publishing terms, recording consent and checkpoints (ledger_impl.h).
#include "ledger/ledger_impl.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "common/strings.h"
#include "ledger/append.h"
#include "ledger/lineage.h"
#include "ledger/parties.h"
#include "ledger/store.h"
#include "terms/diff.h"

namespace assent::internal {

std::array<uint8_t, 16> SuppressionKeyOf(const std::array<uint8_t, 32>& secret) {
  std::array<uint8_t, 16> key;
  std::copy(secret.begin(), secret.begin() + 16, key.begin());
  return key;
}

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

LedgerImpl::~LedgerImpl() {
  stopping_ = true;
  if (follower_.joinable()) follower_.join();
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

std::string LedgerImpl::store_description() const { return store_->Describe(); }

std::string LedgerImpl::store_problem() const {
  std::lock_guard lock(store_problem_mu_);
  return store_problem_;
}

void LedgerImpl::NoteStore(const Status& st) {
  if (st) {
    store_ok_ = true;
    return;
  }
  if (st.error().code != ErrorCode::kUnavailable) return;  // the store answered
  std::lock_guard lock(store_problem_mu_);
  store_problem_ = st.error().message;
  store_ok_ = false;
}


Result<std::unique_ptr<LedgerImpl>> LedgerImpl::Open(const LedgerOptions& options) {
  std::unique_ptr<LedgerImpl> ledger(new LedgerImpl());
  ledger->lineage_ = std::make_unique<Lineage>();
  ledger->parties_ = std::make_unique<PartyIndex>();
  ledger->data_dir_ = options.in_memory ? std::string("(memory)") : options.data_dir;
  ledger->clock_ = options.clock;
  ledger->read_only_ = options.read_only;
  if (options.in_memory) {
    ledger->store_ = NewMemoryStore();
  } else {
    if (!options.read_only) {
      std::error_code ec;
      std::filesystem::create_directories(options.data_dir, ec);
      ASSENT_ASSIGN_OR_RETURN(ledger->lock_fd_, LockDataDir(options.data_dir));
    }
    ASSENT_ASSIGN_OR_RETURN(ledger->store_, OpenStore(options.data_dir, options.database,
                                                                options.read_only));
  }
  ledger->follow_poll_ = options.follow_poll;
  ASSENT_ASSIGN_OR_RETURN(auto empty, TermsSet::Create({}));
  ledger->engine_ = std::make_unique<Engine>(empty, options.clock);
  ASSENT_RETURN_IF_ERROR(ledger->Replay(options.threads != 1));
  ledger->committer_ =
      std::make_unique<GroupCommitter>(ledger.get(), options.group_commit);
  if (ledger->store_->Shared() && !options.read_only) {
    LedgerImpl* l = ledger.get();
    ledger->follower_ = std::thread([l] { l->FollowLoop(); });
  }
  return ledger;
}

uint64_t LedgerImpl::position() const { return engine_->snapshot()->position(); }

Result<PublishResult> LedgerImpl::PublishTerms(std::string_view yaml, std::string_view file,
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
  ASSENT_ASSIGN_OR_RETURN(auto append, AppendLock::Take(this));
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
  StoredEntry entry = MakeTermsEntry(position, now, *terms, options.backfill,
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

Result<Receipt> LedgerImpl::RecordConsent(ConsentEvent event) {
  std::vector<ConsentEvent> one;
  one.push_back(std::move(event));
  ASSENT_ASSIGN_OR_RETURN(auto receipts, RecordConsents(std::move(one)));
  return std::move(receipts.front());
}

Result<std::vector<Receipt>> LedgerImpl::RecordConsents(std::vector<ConsentEvent> events) {
  if (read_only_) return FailedPreconditionError("the ledger was opened read-only");
  if (events.empty()) return std::vector<Receipt>{};
  return committer_->Submit(std::move(events));
}

Status LedgerImpl::ScanEntries(
    uint64_t after,
    const std::function<Status(uint64_t, std::string_view, std::string_view, std::string_view)>&
        fn) const {
  return store_->Scan(after, [&](const EntryView& v) -> Result<ScanControl> {
    ASSENT_RETURN_IF_ERROR(
        fn(v.position, EntryKindName(v.kind), v.body,
           std::string_view(reinterpret_cast<const char*>(v.hash.data()), v.hash.size())));
    return ScanControl::kContinue;
  });
}

Result<uint64_t> LedgerImpl::AppendCheckpoint(uint64_t size, std::string_view root_hex,
                                          std::string_view note) {
  if (read_only_) return FailedPreconditionError("the ledger was opened read-only");
  ASSENT_ASSIGN_OR_RETURN(auto append, AppendLock::Take(this));
  if (size != engine_->snapshot()->position()) {
    return FailedPreconditionError("the ledger moved on while the checkpoint was signed; retry");
  }
  ASSENT_ASSIGN_OR_RETURN(auto at, AppendEntryLocked(*append, [&](uint64_t pos, Timestamp now) {
    return MakeCheckpointEntry(pos, now, size, root_hex, note);
  }));
  return at.first;
}

Result<uint64_t> LedgerImpl::AppendCheckpoint(const CheckpointSigner& sign) {
  if (read_only_) return FailedPreconditionError("the ledger was opened read-only");
  ASSENT_ASSIGN_OR_RETURN(auto append, AppendLock::Take(this));
  const uint64_t size = engine_->snapshot()->position();
  ASSENT_ASSIGN_OR_RETURN(auto signed_, sign(size));
  const auto& [root_hex, note] = signed_;
  ASSENT_ASSIGN_OR_RETURN(auto at, AppendEntryLocked(*append, [&](uint64_t pos, Timestamp now) {
    return MakeCheckpointEntry(pos, now, size, root_hex, note);
  }));
  return at.first;
}

Result<std::pair<uint64_t, Timestamp>> LedgerImpl::AppendEntryLocked(
    AppendLock& append,
    const std::function<StoredEntry(uint64_t, Timestamp)>& make,
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

void LedgerImpl::SetAppendObserver(AppendObserver observer) {
  std::lock_guard guard(committer_->commit_mu);
  observer_ = std::move(observer);
}

Status LedgerImpl::SetAppendObserver(AppendObserver observer, uint64_t seen) {
  std::lock_guard guard(committer_->commit_mu);
  const uint64_t position = engine_->snapshot()->position();
  if (seen > position) return FailedPreconditionError("the observer has more than the ledger");
  if (seen < position) {
    ASSENT_RETURN_IF_ERROR(store_->Scan(seen, [&](const EntryView& v) -> Result<ScanControl> {
      if (v.position > position) return ScanControl::kStop;
      observer(v.position, v.body);
      return ScanControl::kContinue;
    }));
  }
  observer_ = std::move(observer);
  return OkStatus();
}

void LedgerImpl::NotifyAppended(std::span<const StoredEntry> entries) {
  if (!observer_) return;
  for (const auto& e : entries) observer_(e.position, e.body);
}

}  // namespace assent::internal
