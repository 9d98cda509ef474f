// The ledger's implementation behind the public `assent::Ledger` (include/assent/ledger.h,
// which forwards every call here), as LevelDB's DBImpl is behind DB. The pieces live in their
// own files: append.{h,cc} (the append lock and group commit), replay.cc, follower.cc (catch
// up with other nodes), entry_applier.cc (the one place a stored entry becomes state),
// party_directory.cc (pseudonyms and erasure), key_ring.cc (API keys and used-up sign-in
// tokens), lineage_records.cc (datasets and models), receipts.cc (receipts and export) and
// ledger_impl.cc (opening, publishing, recording, checkpoints).
#ifndef ASSENT_LEDGER_LEDGER_IMPL_H_
#define ASSENT_LEDGER_LEDGER_IMPL_H_

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "assent/ledger.h"
#include "ledger/entry.h"

namespace assent {
class LedgerTestPeer;
}

namespace assent::internal {

class LedgerStore;
class GroupCommitter;
class AppendLock;
class PartyIndex;
struct PartyChange;
struct PartyRow;

// The suppression key (Engine::SetSuppressionKey) lives in the parties table — outside the
// audit tree, shared by every node, written in the same transaction as the first erasure —
// as the row of a reserved id no party can have (party ids refuse control characters).
inline constexpr std::string_view kSuppressionKeyId = "\x01assent:suppression-key";
std::array<uint8_t, 16> SuppressionKeyOf(const std::array<uint8_t, 32>& secret);

class LedgerImpl {
 public:
  using AppendObserver = Ledger::AppendObserver;
  using CheckpointSigner = Ledger::CheckpointSigner;
  // The calls of Ledger, documented in include/assent/ledger.h.
  static Result<std::unique_ptr<LedgerImpl>> Open(const LedgerOptions& options);
  ~LedgerImpl();

  Engine& engine() { return *engine_; }
  const Engine& engine() const { return *engine_; }

  Result<PublishResult> PublishTerms(std::string_view yaml, std::string_view file,
                                     PublishOptions options = {});

  Result<Receipt> RecordConsent(ConsentEvent event);

  Result<std::vector<Receipt>> RecordConsents(std::vector<ConsentEvent> events);

  Result<std::string> CreateKey(Role role, std::string name);
  Status RevokeKey(std::string_view name);
  std::vector<ApiKey> Keys() const;
  std::optional<ApiKey> Authenticate(std::string_view secret) const;

  Status SpendToken(std::string_view action, std::string_view token_sha256, Timestamp expires);
  bool TokenSpent(std::string_view token_sha256) const;
  size_t tokens_remembered() const;

  Result<uint64_t> RegisterDataset(const DatasetRegistration& d);
  Result<uint64_t> RegisterModel(std::string name, std::vector<std::string> datasets);
  void WithLineage(const std::function<void(const Lineage&)>& fn) const;

  Status ScanEntries(uint64_t after,
                     const std::function<Status(uint64_t position, std::string_view kind,
                                                std::string_view body,
                                                std::string_view stored_hash)>& fn) const;
  void SetAppendObserver(AppendObserver observer);
  Status SetAppendObserver(AppendObserver observer, uint64_t seen);

  Result<uint64_t> AppendCheckpoint(uint64_t size, std::string_view root_hex,
                                    std::string_view note);
  Result<uint64_t> AppendCheckpoint(const CheckpointSigner& sign);

  Status ScanConsents(uint64_t up_to,
                      const std::function<Status(const ConsentEvent&)>& fn) const;

  Result<Receipt> ReceiptAt(uint64_t position) const;

  Result<std::string> EntryHash(uint64_t position) const;

  Status Export(uint64_t since, std::ostream& out) const;
  Status ExportPage(uint64_t after, uint64_t up_to, size_t max_bytes, bool with_ids,
                    std::string* out, uint64_t* last) const;

  std::optional<std::string> PseudonymOf(PartyKind kind, std::string_view id) const;

  Result<uint64_t> EraseParty(PartyKind kind, const std::string& id,
                              struct ErasureReport* report = nullptr);
  Result<struct ErasureReport> ErasureImpact(PartyKind kind, const std::string& id) const;
  uint64_t erased_events_skipped() const { return erased_skipped_; }

  uint64_t position() const;
  const std::string& data_dir() const { return data_dir_; }
  std::string store_description() const;

  Status CatchUp();
  bool store_reachable() const { return store_ok_.load(); }
  std::string store_problem() const;

 private:
  friend class GroupCommitter;
  friend class AppendLock;
  friend class ::assent::LedgerTestPeer;
  LedgerImpl() = default;

  // ledger_impl.cc
  void NoteStore(const Status& st);
  // Appends one entry made for the next position. REQUIRES: `append` held (the store's
  // append lock and the write lock, caught up).
  Result<std::pair<uint64_t, Timestamp>> AppendEntryLocked(
      AppendLock& append, const std::function<StoredEntry(uint64_t, Timestamp)>& make,
      std::span<const PartyChange> parties = {});
  void NotifyAppended(std::span<const StoredEntry> entries);

  // replay.cc
  // concurrent: a reading thread beside this one (and on SQLite one loading the parties).
  Status Replay(bool concurrent);
  // Every party row into the directory; the suppression key's row, when there is one, into
  // `*suppression_key` (the caller gives it to the engine).
  Status LoadParties(std::optional<std::array<uint8_t, 16>>* suppression_key);

  // follower.cc. Catch-up applies entries (head] that other writers appended, in chunks.
  // REQUIRES (the *Locked and the helpers): commit_mu.
  static constexpr size_t kCatchUpChunk = 4096;
  void FollowLoop();
  Status CatchUpLocked(uint64_t head);
  Status ReadChunk(uint64_t head, uint64_t* next, std::vector<StoredEntry>* chunk,
                   EntryDecoder& decoder);
  Status LearnParties(std::vector<PartyRow> rows);
  Status ApplyCaughtUp(const EntryView& v, EntryDecoder& decoder,
                       std::vector<ConsentEvent>* events);
  Result<bool> ResolveParty(ConsentEvent* e);
  Status FlushEvents(std::vector<ConsentEvent>* events);

  // entry_applier.cc: the one place a stored entry (other than a consent event, which replay
  // and catch-up fold in batches) becomes state. kDataLoss naming the entry when it cannot.
  Status ApplyEntry(const EntryView& v, EntryDecoder& decoder);
  Status ApplyTermsEntry(uint64_t position, const std::string& id, const std::string& version,
                         const std::string& yaml);
  Status ApplyErasure(const EntryView& v, EntryDecoder& decoder);
  Status ApplyDataset(uint64_t position, Timestamp at, const DatasetFields& f);
  Status ApplyModel(uint64_t position, Timestamp at, const ModelFields& f);
  // Remembers a used-up sign-in token until it expires, dropping a few expired ones (never a
  // scan).
  void ApplyToken(const std::string& token_sha256, Timestamp expires);

  // receipts.cc: the receipt of an event (its party named by id) in the entry `hash`.
  Receipt ReceiptOf(const ConsentEvent& e, const Snapshot& snap, const Sha256Digest& hash,
                    const std::string& pseudonym) const;

  // key_ring.cc
  Status ApplyKey(uint64_t position, const std::string& action, const std::string& name,
                  const std::string& role, const std::string& key_sha256,
                  Timestamp recorded_at = 0);

  // party_directory.cc. The pseudonym of each party (creating new ones into `*created`).
  // REQUIRES: commit_mu.
  Result<std::string> PseudonymForLocked(PartyKind kind, const std::string& id,
                                 std::vector<PartyChange>* created,
                                 std::map<std::pair<PartyKind, std::string>, std::string>* fresh,
                                 bool ask_store = true);
  void AddPartiesLocked(std::span<const PartyChange> created);
  ErasureReport Holding(PartyKind kind, const std::string& pseudonym) const;
  std::string PartyKeyLocked(PartyKind kind, std::string_view id) const;

  // Where the ledger lives and how it is reached.
  std::string data_dir_;
  Clock clock_;
  bool read_only_ = false;
  int lock_fd_ = -1;  // DIR/LOCK, held while open for writing
  std::unique_ptr<LedgerStore> store_;
  std::atomic<bool> store_ok_{true};
  mutable std::mutex store_problem_mu_;
  std::string store_problem_;
  // Appending and following.
  std::unique_ptr<GroupCommitter> committer_;
  AppendObserver observer_;
  std::chrono::milliseconds follow_poll_{250};
  std::atomic<bool> stopping_{false};
  std::thread follower_;
  // State folded from the entries.
  std::unique_ptr<Engine> engine_;
  std::map<std::string, uint64_t> published_at_;  // terms version -> ledger position
  mutable std::shared_mutex parties_mu_;
  std::unique_ptr<PartyIndex> parties_;
  uint64_t erased_skipped_ = 0;
  mutable std::shared_mutex lineage_mu_;
  std::unique_ptr<Lineage> lineage_;
  mutable std::shared_mutex keys_mu_;
  std::map<std::string, ApiKey> keys_by_hash_;  // hex SHA-256 of the secret -> key
  // Used-up sign-in tokens that have not expired: token_sha256 -> expiry, and the same by
  // expiry.
  mutable std::mutex tokens_mu_;
  std::unordered_map<std::string, Timestamp> tokens_;
  std::multimap<Timestamp, std::string> token_expiry_;
};

}  // namespace assent::internal

#endif  // ASSENT_LEDGER_LEDGER_IMPL_H_
