// Following a shared store: the follower thread, and catching up with what other nodes
// appended (before each append, on every wake-up, and when a session is checked).
#include <algorithm>
#include <thread>

#include "ledger/append.h"
#include "ledger/ledger_impl.h"
#include "ledger/parties.h"
#include "ledger/store.h"

namespace assent::internal {

// Follows a shared store: waits for a wake-up (LISTEN/NOTIFY) or the poll interval, then
// applies whatever other nodes appended. While the store is unreachable it backs off (up to
// 2 s between attempts) and keeps serving decisions from the state it has.
void LedgerImpl::FollowLoop() {
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

Status LedgerImpl::CatchUp() {
  if (!store_->Shared()) return OkStatus();
  std::lock_guard guard(committer_->commit_mu);
  return CatchUpLocked(UINT64_MAX);
}

// Applies the entries after the engine's position up to `head` that other nodes appended,
// in order, as replay does (one thread: these are few). Consent entries naming a party this
// node has not seen bring its row from the store; an erasure made elsewhere is applied here.
Status LedgerImpl::CatchUpLocked(uint64_t head) {
  if (!store_->Shared()) return OkStatus();  // only this process writes: nothing to catch
  const uint64_t from = engine_->snapshot()->position();
  if (head <= from) return OkStatus();
  EntryDecoder decoder;
  std::vector<ConsentEvent> events;
  std::vector<StoredEntry> chunk;
  uint64_t next = from + 1;
  for (;;) {
    ASSENT_RETURN_IF_ERROR(ReadChunk(head, &next, &chunk, decoder));
    for (const auto& e : chunk) {
      const EntryView v{e.position, e.kind, e.body, e.hash};
      if (auto st = ApplyCaughtUp(v, decoder, &events); !st) {
        (void)FlushEvents(&events);  // what was read before the failure is applied (and observed)
        return st;
      }
    }
    if (chunk.size() < kCatchUpChunk) break;
  }
  ASSENT_RETURN_IF_ERROR(FlushEvents(&events));
  const uint64_t applied = engine_->snapshot()->position();
  if (head != UINT64_MAX && applied < head) {
    return MakeError(ErrorCode::kUnavailable, "the store's head is " + std::to_string(head) +
                                                  " but only " + std::to_string(applied) +
                                                  " could be read; retry");
  }
  return OkStatus();
}

// Reads the next chunk, then learns the parties it names: applying may ask the store about
// parties, which it cannot answer in the middle of a scan.
Status LedgerImpl::ReadChunk(uint64_t head, uint64_t* next, std::vector<StoredEntry>* chunk,
                             EntryDecoder& decoder) {
  chunk->clear();
  std::vector<PartyRow> named;
  ASSENT_RETURN_IF_ERROR(store_->ScanRange(
      *next - 1, head, kCatchUpChunk,
      [&](const EntryView& v) -> Result<ScanControl> {
        if (v.position > head || chunk->size() == kCatchUpChunk) return ScanControl::kStop;
        if (v.position != *next) {
          return DataLossError("the ledger jumps from position " + std::to_string(*next - 1) +
                               " to " + std::to_string(v.position) + ": entries are missing");
        }
        ++*next;
        StoredEntry e;
        e.position = v.position;
        e.kind = v.kind;
        e.body.assign(v.body);
        e.hash.fill(0);  // a damaged hash (wrong size) stays zeros: the apply reports it
        if (v.hash.size() == 32) std::copy(v.hash.begin(), v.hash.end(), e.hash.begin());
        chunk->push_back(std::move(e));
        return ScanControl::kContinue;
      },
      &named));
  ASSENT_RETURN_IF_ERROR(LearnParties(std::move(named)));
  // Dataset entries may name parties with no consent event: fetched together (one round trip
  // for the chunk). (Consent entries' parties came with the scan where the store can; a store
  // that cannot leaves them to ApplyCaughtUp, which looks an unknown one up.)
  std::vector<std::string> unknown;
  for (const auto& e : *chunk) {
    if (e.kind != EntryKind::kDataset) continue;
    DatasetFields d;
    Timestamp recorded = 0;
    if (!decoder.DecodeDataset(EntryView{e.position, e.kind, e.body, e.hash}, &d, &recorded)) {
      continue;  // reported when it is applied
    }
    std::shared_lock lock(parties_mu_);
    for (auto* list : {&d.new_subjects, &d.new_accounts}) {
      for (auto& p : *list) {
        if (!parties_->Resolve(p, nullptr, nullptr)) unknown.push_back(std::move(p));
      }
    }
  }
  if (unknown.empty()) return OkStatus();
  std::sort(unknown.begin(), unknown.end());
  unknown.erase(std::unique(unknown.begin(), unknown.end()), unknown.end());
  ASSENT_ASSIGN_OR_RETURN(auto rows, store_->FindPseudonyms(unknown));
  return LearnParties(std::move(rows));
}

// Adds the rows of parties other nodes created (any this node knows already are skipped).
// kDataLoss for a damaged row: its events must not be read as no one's.
Status LedgerImpl::LearnParties(std::vector<PartyRow> rows) {
  if (rows.empty()) return OkStatus();
  std::vector<PartyChange> found;
  {
    std::shared_lock lock(parties_mu_);
    for (auto& row : rows) {
      if (!IsPseudonym(row.pseudonym)) {
        return DataLossError("the stored pseudonym of " + std::string(PartyKindName(row.kind)) +
                             " '" + row.id + "' is damaged");
      }
      if (parties_->Resolve(row.pseudonym, nullptr, nullptr)) continue;
      PartyChange c;
      c.row = std::move(row);
      found.push_back(std::move(c));
    }
  }
  std::sort(found.begin(), found.end(), [](const PartyChange& a, const PartyChange& b) {
    return a.row.pseudonym < b.row.pseudonym;
  });
  found.erase(std::unique(found.begin(), found.end(),
                          [](const PartyChange& a, const PartyChange& b) {
                            return a.row.pseudonym == b.row.pseudonym;
                          }),
              found.end());
  AddPartiesLocked(found);
  return OkStatus();
}

// One caught-up entry: a consent event joins `events` (applied in a batch by FlushEvents),
// anything else is applied after the events before it. The observer (the audit tree) sees
// each entry exactly once, when it is sure to apply: an entry that fails here is read again by
// the next catch-up.
Status LedgerImpl::ApplyCaughtUp(const EntryView& v, EntryDecoder& decoder,
                                 std::vector<ConsentEvent>* events) {
  const std::string at = "ledger entry at position " + std::to_string(v.position);
  if (!HashMatches(v)) {
    return DataLossError(at + " does not match its hash: it was changed after it was written");
  }
  if (v.kind == EntryKind::kConsent) {
    ConsentEvent e;
    ASSENT_RETURN_IF_ERROR(decoder.Decode(v, &e, nullptr));
    ASSENT_ASSIGN_OR_RETURN(const bool known, ResolveParty(&e));
    if (known && e.party.empty()) {
      return DataLossError(at + " names a party of another kind than its pseudonym's");
    }
    if (known) events->push_back(std::move(e));  // (an erased party's event is no one's)
    if (observer_) observer_(v.position, v.body);
    return OkStatus();
  }
  ASSENT_RETURN_IF_ERROR(FlushEvents(events));
  ASSENT_RETURN_IF_ERROR(ApplyEntry(v, decoder));
  if (v.position > engine_->snapshot()->position()) {
    ASSENT_RETURN_IF_ERROR(engine_->AdvancePosition(v.position));
  }
  if (observer_) observer_(v.position, v.body);
  return OkStatus();
}

// Replaces the event's pseudonym by its party's id, fetching a row another node created.
// False when the party was erased since; the id left empty when the pseudonym names a party
// of another kind than the entry says.
Result<bool> LedgerImpl::ResolveParty(ConsentEvent* e) {
  const std::string pseudonym = std::move(e->party);
  e->party.clear();
  PartyKind kind = e->party_kind;
  bool known;
  {
    std::shared_lock lock(parties_mu_);
    known = parties_->Resolve(pseudonym, &kind, &e->party);
  }
  if (!known) {
    ASSENT_ASSIGN_OR_RETURN(auto row, store_->FindPseudonym(pseudonym));
    if (!row) return false;
    if (!IsPseudonym(row->pseudonym)) {
      return DataLossError("the stored pseudonym of a party named at position " +
                           std::to_string(e->position) + " is damaged");
    }
    PartyChange c;
    c.row = *row;
    AddPartiesLocked({&c, 1});
    kind = row->kind;
    e->party = row->id;
  }
  if (kind != e->party_kind) e->party.clear();
  return true;
}

Status LedgerImpl::FlushEvents(std::vector<ConsentEvent>* events) {
  if (events->empty()) return OkStatus();
  size_t failed = 0;
  if (auto st = engine_->ApplyBatch(*events, &failed); !st) {
    return DataLossError("ledger entry at position " +
                         std::to_string((*events)[failed].position) +
                         " cannot be applied: " + st.error().message);
  }
  events->clear();
  return OkStatus();
}

}  // namespace assent::internal
