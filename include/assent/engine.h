// The decision engine: compiled terms plus the consent state folded from consent events,
// answering DESIGN.md "Decision semantics" exactly, in memory, without locks on the read path.
//
// Example:
//   auto terms = assent::TermsSet::Create({*assent::LoadTermsFile("terms.yaml")});
//   assent::Engine engine(*terms);
//   engine.Apply(event);                      // from the ledger, in position order
//   auto snap = engine.snapshot();            // cheap; hold it while you use its decisions
//   std::string_view subjects[] = {"u1"};
//   auto d = snap->Decide({.category = "content.chat", .purpose = "ai_training.first_party",
//                          .subjects = subjects});
//   if (!d) { /* unknown category/purpose or no terms in effect: could not decide */ }
//   else if (d->allow) { ... }
//
// Thread safety: Engine is thread-safe; writers (Apply, Publish) are serialized internally.
// A Snapshot is immutable and may be used from any number of threads at once.
#ifndef ASSENT_ENGINE_H_
#define ASSENT_ENGINE_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "assent/decision.h"
#include "assent/result.h"
#include "assent/terms.h"
#include "assent/time.h"

namespace assent {

// One grant or withdrawal, as the ledger records it.
struct ConsentEvent {
  uint64_t position = 0;  // ledger position; must increase from event to event
  PartyKind party_kind = PartyKind::kSubject;
  std::string party;  // the subject's user id or the account id
  Action action = Action::kGrant;
  std::vector<std::string> categories;  // the scope: categories x purposes
  std::vector<std::string> purposes;
  Timestamp at = 0;           // when the choice was made; never decreases
  std::string terms_version;  // the version shown; empty: the version in effect at `at`
  Method method = Method::kApi;
  std::string rule;   // rule id shown to the person, if any (informational)
  std::string actor;  // who recorded it, if not the party (informational)
  // The notice the choice answered (NoticeText): its locale and SHA-256 (lowercase hex), both
  // set or both empty ("none": no notice was shown, or none was stated).
  std::string notice_locale;
  std::string notice_sha256;
  // For Ledger::RecordConsent only, never stored in the entry: a caller-chosen key (scoped to
  // the caller) under which a retried request returns the first one's receipt instead of
  // recording the event again.
  std::string idempotency_key;
};

// The keyed hash under which an erased party is remembered: SipHash-2-4 of "KIND:ID".
uint64_t ErasedPartyHash(const std::array<uint8_t, 16>& key, PartyKind kind, std::string_view id);

struct Suppression {
  std::array<uint8_t, 16> key{};
  bool has_key = false;
  std::vector<uint64_t> hashes;  // sorted
};

namespace internal {
class ConsentState;
class ConsentStateBuilder;
class PartyRecord;
struct SharedTables;
struct QuestionCache;
struct PartyPresence;
}  // namespace internal

class GateVerdicts;

// An immutable view: the terms and every consent event applied up to `position()`.
class Snapshot {
 public:
  ~Snapshot();
  Snapshot(const Snapshot&) = delete;
  Snapshot& operator=(const Snapshot&) = delete;

  // Decides per DESIGN.md. `now` is used when `request.at` is unset.
  // Errors: kInvalidArgument for an unknown category or purpose or a missing one;
  // kFailedPrecondition when no terms are in effect at the time asked about.
  Result<Decision> Decide(const DecisionRequest& request, Timestamp now) const;

  // Decides every request: (*results)[i] answers requests[i]. Faster per decision than one
  // Decide call each, because the memory look-ups of neighbouring requests overlap.
  // With `with_parties` false the decisions carry no `parties` (allow, reason, rule and
  // position only): the lean path of the training-data gate, which allocates nothing per
  // decision.
  void DecideBatch(std::span<const DecisionRequest> requests, Timestamp now,
                   std::vector<Result<Decision>>* results, bool with_parties = true) const;

  // One party's state for (category, purpose) at `t`, under the consent or objectable rule
  // deciding the pair (for history and settings pages). kFailedPrecondition when the pair
  // asks nobody's choice; kInvalidArgument for unknown names.
  Result<PartyDecision> PartyStateFor(PartyKind kind, std::string_view id,
                                      std::string_view category, std::string_view purpose,
                                      Timestamp t) const;

  // The position of the last consent event at or before `t`, or 0.
  uint64_t PositionAt(Timestamp t) const;
  // The position an answer about the past time `t` reflects: PositionAt(t), or the
  // publication of the terms version in effect at `t` if that came later.
  uint64_t AnswerPositionAt(Timestamp t) const;

  uint64_t position() const { return position_; }
  const TermsSet& terms() const { return *terms_; }
  const std::shared_ptr<const TermsSet>& terms_ptr() const { return terms_; }
  uint64_t consent_events() const { return consent_count_; }
  uint64_t parties() const { return parties_; }

  // Every consent event of one party, in position order (for history pages and tests).
  std::vector<ConsentEvent> EventsOf(PartyKind kind, std::string_view id) const;

  // Calls `f` with every party that has consent events (erased ones excluded), in no
  // particular order. For operator listings (stale grants to ask again), not request paths.
  void ForEachParty(const std::function<void(PartyKind, std::string_view)>& f) const;

 private:
  friend class Engine;
  friend class GateVerdicts;
  Snapshot() = default;
  struct PartyJudgement {
    PartyState state;
    uint64_t event;
    bool fails;
    Reason failure;
  };
  PartyJudgement JudgeParty(const internal::PartyRecord* record, const Rule& rule, int32_t v,
                            int32_t c, int32_t p, int32_t gc, int32_t gp, Timestamp t) const;
  template <typename FindRecord>
  Result<Decision> DecideImpl(const DecisionRequest& request, Timestamp now,
                              internal::QuestionCache* cache, FindRecord&& find,
                              bool with_parties = true) const;
  std::shared_ptr<const TermsSet> terms_;
  // The ledger position at which each terms version (by index) was published, when known: a
  // decision about a past time reflects the publication of the version it used.
  std::vector<uint64_t> terms_positions_;
  // Erased parties (keyed hashes, never ids) and the key; null while nobody was erased.
  std::shared_ptr<const Suppression> suppression_;
  bool Suppressed(PartyKind kind, std::string_view id) const;
  std::shared_ptr<internal::SharedTables> tables_;
  std::unique_ptr<internal::ConsentState> state_;
  uint64_t position_ = 0;
  uint64_t consent_count_ = 0;
  uint64_t position_breaks_ = 0;
  uint64_t parties_ = 0;
  Timestamp last_at_ = INT64_MIN;
  // Which parties have consent events, for the gate (GateVerdicts): built on first use.
  mutable std::once_flag presence_once_;
  mutable std::unique_ptr<internal::PartyPresence> presence_;
};

class Engine {
 public:
  explicit Engine(std::shared_ptr<const TermsSet> terms, Clock clock = SystemClock());
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // The current snapshot (an atomic load; never blocks on writers).
  std::shared_ptr<const Snapshot> snapshot() const { return current_.load(); }
  // Snapshots published since the engine was made (each a copy of the changed part of the
  // state): a bulk load publishes one at its end, however many batches it folded.
  uint64_t snapshots_published() const { return published_.load(std::memory_order_relaxed); }

  // Checks an event against the current state without applying it. kInvalidArgument names
  // what is wrong: unknown version, category or purpose; a time or position going backwards.
  Status Validate(const ConsentEvent& event) const;

  // Checks one event as if the ledger's last position and consent time were the given ones
  // (for callers validating a run of events before applying them together).
  Status ValidateAfter(const ConsentEvent& event, uint64_t last_position,
                       Timestamp last_at) const {
    return ValidateLocked(event, *snapshot(), last_position, last_at);
  }

  // Checks a batch as ApplyBatch would, without applying it.
  Status ValidateBatch(std::span<const ConsentEvent> events, size_t* failed_index) const;

  // The time of the latest consent event applied (INT64_MIN when none).
  Timestamp last_consent_at() const { return snapshot()->last_at_; }

  // Applies one event, or a batch all-or-nothing, and publishes a new snapshot.
  // On error nothing is applied.
  Status Apply(const ConsentEvent& event);
  // On error, `*failed_index` (when given) is set to the index of the offending event and
  // the message is the event's own; otherwise the message names the event's index.
  Status ApplyBatch(std::span<const ConsentEvent> events, size_t* failed_index = nullptr);

  // Bulk loading, for start-up replay before the engine is shared: between the two calls
  // ApplyBatch folds into one private state and publishes no snapshot (snapshot() keeps
  // returning the state from before), so replaying millions of events copies nothing.
  // PublishTerms and AdvancePosition publish what was folded so far.
  void BeginBulkLoad();
  void EndBulkLoad();

  // Publishes a new terms version (its `effective` must be later than the latest).
  // `position` is the ledger position of the publication (0: leave the position as is).
  Status PublishTerms(std::shared_ptr<const Terms> terms, uint64_t position = 0);

  // Records that the ledger advanced to `position` through an entry that is not a consent
  // event (so decisions report it). REQUIRES: position greater than the current one.
  Status AdvancePosition(uint64_t position);

  // Forgets a party and its events (an erasure): decisions then treat it as a party with no
  // events. OK also when the party had none.
  Status ForgetParty(PartyKind kind, std::string_view id);

  // The suppression list of erased parties: every decision naming one denies with reason
  // `erased`, except under `necessary` (erasure never turns a "no" into a "yes"). The list holds
  // ErasedPartyHash values under the ledger's suppression key, never ids.
  void SetSuppressionKey(const std::array<uint8_t, 16>& key);
  bool has_suppression_key() const { return suppression_key().has_value(); }
  std::optional<std::array<uint8_t, 16>> suppression_key() const;
  // The suppression list's hashes, sorted.
  std::vector<uint64_t> suppressed() const;
  // REQUIRES: the key is set (kFailedPrecondition otherwise).
  Status Suppress(uint64_t erased_party_hash);

  Timestamp Now() const { return clock_(); }

  // Bytes held by the consent state (records and index nodes), for capacity planning.
  size_t MemoryUsage() const;

 private:
  Status ValidateLocked(const ConsentEvent& e, const Snapshot& s, uint64_t last_position,
                        Timestamp last_at) const;
  // A new snapshot sharing everything of `cur`.
  static std::shared_ptr<Snapshot> DeriveSnapshot(const Snapshot& cur);
  // The counters a snapshot carries, tracked while bulk loading.
  struct Pending {
    uint64_t position = 0, consent_count = 0, parties = 0;
    Timestamp last_at = INT64_MIN;
    static Pending Of(const Snapshot& s);
    void ApplyTo(Snapshot& s, const internal::SharedTables& tables) const;
  };
  void FlushBulkLocked();
  bool bulk_ = false;
  std::unique_ptr<internal::ConsentStateBuilder> bulk_builder_;
  Pending pending_;
  Clock clock_;
  std::mutex write_mu_;
  std::atomic<std::shared_ptr<const Snapshot>> current_;
  std::atomic<uint64_t> published_{0};
  void Publish(std::shared_ptr<const Snapshot> next) {
    current_.store(std::move(next));
    published_.fetch_add(1, std::memory_order_relaxed);
  }
};

}  // namespace assent

#endif  // ASSENT_ENGINE_H_
