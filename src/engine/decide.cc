// The read side of the engine: DESIGN.md "Decision semantics", steps 1-9, over one snapshot.
// This is the hot path: no locks, no allocation except the parties list, no string compares
// beyond the two name look-ups and the party id check.
#include <algorithm>

#include "assent/engine.h"
#include "common/strings.h"
#include "engine/consent_state.h"
#include "engine/shared_tables.h"
#include "engine/unknown_name.h"

namespace assent {
namespace internal {

// The last question's look-ups, reused while a batch keeps asking about the same category and
// purpose under the same terms version (a filter run asks one purpose for every item).
struct QuestionCache {
  std::string_view category, purpose;
  int32_t version = -1;
  int32_t gc = -1, gp = -1, c = -1, p = -1;
};

}  // namespace internal

using internal::PartyRecord;
using internal::Scope;
using internal::StoredEvent;

using internal::UnknownName;

Snapshot::PartyJudgement Snapshot::JudgeParty(const PartyRecord* rec, const Rule& rule,
                                               int32_t v, int32_t c, int32_t p, int32_t gc,
                                               int32_t gp, Timestamp t) const {
  const TermsSet& ts = *terms_;
  const Vocabulary& cats = ts.category_vocabulary();
  const Vocabulary& purs = ts.purpose_vocabulary();
  // A scope pattern covers the asked node when it sits on the node's ancestor chain.
  const std::vector<int32_t>& cat_chain = cats.chain(gc);
  const std::vector<int32_t>& pur_chain = purs.chain(gp);
  auto on_chain = [](const Vocabulary& vocab, const std::vector<int32_t>& chain, int32_t pattern) {
    const size_t d = static_cast<size_t>(vocab.depth(pattern));
    return d < chain.size() && chain[d] == pattern;
  };
  auto covers = [&](const Scope& s) {
    bool cat = false;
    for (int32_t sc : s.categories) {
      if (on_chain(cats, cat_chain, sc)) {
        cat = true;
        break;
      }
    }
    if (!cat) return false;
    for (int32_t sp : s.purposes) {
      if (on_chain(purs, pur_chain, sp)) return true;
    }
    return false;
  };
  // The effective event: the highest position at or before t whose scope covers the pair.
  const StoredEvent* effective = nullptr;
  if (rec) {
    auto events = rec->events();
    for (auto it = events.rbegin(); it != events.rend(); ++it) {
      if (it->at > t) continue;
      if (covers(*tables_->scopes[it->scope])) {
        effective = &*it;
        break;
      }
    }
  }
  const bool consent = rule.basis == Basis::kConsent;
  PartyJudgement j{PartyState::kNone, 0, consent,
                   consent ? Reason::kNoConsent : Reason::kNotObjected};
  if (!effective) return j;  // under consent nothing said fails; under objectable it passes
  j.event = effective->position;
  if (effective->action == Action::kWithdraw) {
    j.state = PartyState::kWithdrawn;
    j.failure = consent ? Reason::kWithdrawn : Reason::kObjected;
    j.fails = true;
  } else if (consent && !ts.MeaningUnchanged(v, VersionOf(*effective), c, p, LocaleOf(*effective))) {
    j.state = PartyState::kStale;
    j.failure = Reason::kStale;
  } else if (consent && rule.consent_valid_for &&
             t >= effective->at + *rule.consent_valid_for) {
    j.state = PartyState::kExpired;
    j.failure = Reason::kExpired;
  } else {
    j.state = PartyState::kGranted;
    j.fails = false;
  }
  return j;
}

Result<PartyDecision> Snapshot::PartyStateFor(PartyKind kind, std::string_view id,
                                              std::string_view category,
                                              std::string_view purpose, Timestamp t) const {
  const TermsSet& ts = *terms_;
  const int32_t v = ts.VersionAt(t);
  if (v < 0) return FailedPreconditionError("no terms are in effect at " + FormatTime(t));
  const Terms& terms = ts.version(v);
  const int32_t gc = ts.category_vocabulary().Find(category);
  const int32_t c = gc < 0 ? -1 : ts.LocalCategory(v, gc);
  if (c < 0) return UnknownName("category", category, terms, terms.categories());
  const int32_t gp = ts.purpose_vocabulary().Find(purpose);
  const int32_t p = gp < 0 ? -1 : ts.LocalPurpose(v, gp);
  if (p < 0) return UnknownName("purpose", purpose, terms, terms.purposes());
  const int32_t r = terms.DecidingRule(c, p);
  if (r == Terms::kUnlisted || (terms.rules()[r].basis != Basis::kConsent &&
                                terms.rules()[r].basis != Basis::kObjectable)) {
    return FailedPreconditionError("(" + std::string(category) + ", " + std::string(purpose) +
                                   ") asks nobody's choice under terms " + terms.label());
  }
  PartyJudgement j =
      JudgeParty(state_->Find(kind, id), terms.rules()[r], v, c, p, gc, gp, t);
  return PartyDecision{kind, id, j.state, j.event};
}

uint64_t Snapshot::AnswerPositionAt(Timestamp t) const {
  const int32_t v = terms_->VersionAt(t);
  const uint64_t published =
      v >= 0 && static_cast<size_t>(v) < terms_positions_.size() ? terms_positions_[v] : 0;
  return std::max(PositionAt(t), published);
}

uint64_t Snapshot::PositionAt(Timestamp t) const {
  // Consent events' times never decrease with position: binary search the timeline for how
  // many consent events happened at or before t.
  uint64_t lo = 0, hi = consent_count_;
  while (lo < hi) {
    uint64_t mid = lo + (hi - lo) / 2;
    if (tables_->timeline[mid] <= t) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  if (lo == 0) return 0;
  const uint64_t index = lo - 1;
  // The last position break at or before that event gives its position.
  uint64_t blo = 0, bhi = position_breaks_;
  while (blo < bhi) {
    uint64_t mid = blo + (bhi - blo) / 2;
    if (tables_->position_breaks[mid].index <= index) {
      blo = mid + 1;
    } else {
      bhi = mid;
    }
  }
  const uint64_t delta = blo == 0 ? 0 : tables_->position_breaks[blo - 1].delta;
  return index + 1 + delta;
}

template <typename FindRecord>
Result<Decision> Snapshot::DecideImpl(const DecisionRequest& q, Timestamp now,
                                      internal::QuestionCache* cache, FindRecord&& find,
                                      bool with_parties) const {
  const Timestamp t = q.at.value_or(now);
  const TermsSet& ts = *terms_;
  const int32_t v = ts.VersionAt(t);
  if (v < 0) {
    return FailedPreconditionError("no terms are in effect at " + FormatTime(t) +
                                   (ts.size() ? "; the first version takes effect at " +
                                                    FormatTime(ts.version(0).effective())
                                              : std::string("; publish terms first")));
  }
  const Terms& terms = ts.version(v);
  int32_t gc, gp, c, p;
  if (cache && cache->version == v && cache->category == q.category &&
      cache->purpose == q.purpose) {
    gc = cache->gc, gp = cache->gp, c = cache->c, p = cache->p;
  } else {
    gc = ts.category_vocabulary().Find(q.category);
    c = gc < 0 ? -1 : ts.LocalCategory(v, gc);
    if (c < 0) return UnknownName("category", q.category, terms, terms.categories());
    gp = ts.purpose_vocabulary().Find(q.purpose);
    p = gp < 0 ? -1 : ts.LocalPurpose(v, gp);
    if (p < 0) return UnknownName("purpose", q.purpose, terms, terms.purposes());
    if (cache) *cache = {q.category, q.purpose, v, gc, gp, c, p};
  }

  // An empty or blank id names nobody, so nobody could ever have objected for it: refused as
  // malformed rather than decided (an objectable rule would otherwise allow it).
  if (q.account && BlankId(*q.account)) {
    return InvalidArgumentError("the account id is empty or only whitespace");
  }
  for (std::string_view s : q.subjects) {
    if (BlankId(s)) return InvalidArgumentError("a subject id is empty or only whitespace");
  }
  Decision d;
  d.terms = &terms;
  d.at = t;
  // About the present: every entry applied. About a past time: the last consent event at or
  // before it, or the publication of the terms version it used if that came later (so a
  // version published afterwards with --backfill shows in the position of its answers).
  d.position = q.at ? AnswerPositionAt(t) : position_;
  const int32_t r = terms.DecidingRule(c, p);
  if (r == Terms::kUnlisted) {
    d.reason = Reason::kUnlisted;
    return d;
  }
  const Rule& rule = terms.rules()[r];
  d.rule = &rule;
  d.basis = rule.basis;
  switch (rule.basis) {
    case Basis::kProhibited:
      d.reason = Reason::kProhibited;
      return d;
    case Basis::kNecessary:
      d.allow = true;
      d.reason = Reason::kNecessary;
      return d;
    case Basis::kConsent:
    case Basis::kObjectable:
      break;
  }
  const bool consent = rule.basis == Basis::kConsent;
  const bool need_account = rule.consent_from != ConsentFrom::kSubjects;
  const bool need_subjects = rule.consent_from != ConsentFrom::kAccount;
  if ((need_account && !q.account) ||
      (need_subjects && q.subjects.empty())) {
    d.reason = Reason::kNoSubject;  // fail closed: nobody to check the choice of
    return d;
  }
  bool failed = false;
  // `index`: -1 for the account, else the subject's index in the request.
  auto judge = [&](PartyKind kind, std::string_view id, int index) {
    PartyJudgement j = JudgeParty(find(index, kind, id), rule, v, c, p, gc, gp, t);
    if (j.fails && !failed) {
      failed = true;
      d.reason = j.failure;
    }
    if (with_parties) d.parties.push_back(PartyDecision{kind, id, j.state, j.event});
  };
  if (with_parties) {
    d.parties.reserve((need_account ? 1 : 0) + (need_subjects ? q.subjects.size() : 0));
  }
  if (need_account) judge(PartyKind::kAccount, *q.account, -1);
  if (need_subjects) {
    for (size_t i = 0; i < q.subjects.size(); ++i) {
      judge(PartyKind::kSubject, q.subjects[i], static_cast<int>(i));
    }
  }
  if (!failed) {
    d.allow = true;
    d.reason = consent ? Reason::kConsented : Reason::kNotObjected;
  }
  // An erased party is never usable again (except under `necessary`): erasure must not turn
  // the "no" it can no longer state into the "not objected" of someone unknown.
  if (suppression_ && !suppression_->hashes.empty()) {
    bool erased = q.account && Suppressed(PartyKind::kAccount, *q.account);
    for (size_t i = 0; i < q.subjects.size() && !erased; ++i) {
      erased = Suppressed(PartyKind::kSubject, q.subjects[i]);
    }
    if (erased) {
      d.allow = false;
      d.reason = Reason::kErased;
    }
  }
  return d;
}

Result<Decision> Snapshot::Decide(const DecisionRequest& q, Timestamp now) const {
  return DecideImpl(q, now, nullptr, [this](int, PartyKind kind, std::string_view id) {
    return state_->Find(kind, id);
  });
}

void Snapshot::DecideBatch(std::span<const DecisionRequest> requests, Timestamp now,
                           std::vector<Result<Decision>>* results, bool with_parties) const {
  // A software pipeline over groups of requests: while group g starts its index walk, group
  // g-1 reads its shard slots, group g-2 picks its records and group g-3 is decided. Each
  // step only prefetches what the next step reads, so a group's cache misses are in flight
  // while other groups compute, instead of one after another.
  constexpr size_t kGroup = 16;
  constexpr size_t kStages = 4;   // branch, shard, candidate, decide
  constexpr int kMaxParties = 4;  // parties per request looked up ahead; more are found lazily
  using Lookup = internal::ConsentState::Lookup;
  struct Ahead {
    Lookup lookup[kMaxParties];
    int parties = 0;
  };
  results->clear();
  results->reserve(requests.size());
  Ahead ring[kStages][kGroup];
  const internal::ConsentState& state = *state_;
  internal::QuestionCache cache;
  const size_t groups = (requests.size() + kGroup - 1) / kGroup;
  auto group_size = [&](size_t g) { return std::min(kGroup, requests.size() - g * kGroup); };
  for (size_t step = 0; step < groups + kStages - 1; ++step) {
    if (step < groups) {  // stage 0: hash, and prefetch the branch slot
      Ahead* ahead = ring[step % kStages];
      for (size_t i = 0; i < group_size(step); ++i) {
        const DecisionRequest& q = requests[step * kGroup + i];
        Ahead& a = ahead[i];
        a.parties = 0;
        auto add = [&](PartyKind kind, std::string_view id) {
          if (a.parties == kMaxParties) return;
          Lookup& l = a.lookup[a.parties++];
          l = Lookup{internal::PartyHash(kind, id)};
          state.LookupBranch(l);
        };
        if (q.account) add(PartyKind::kAccount, *q.account);
        for (std::string_view sub : q.subjects) add(PartyKind::kSubject, sub);
      }
    }
    for (size_t stage = 1; stage <= 2; ++stage) {  // stages 1-2: shard slot, candidate record
      if (step < stage || step - stage >= groups) continue;
      const size_t g = step - stage;
      Ahead* ahead = ring[g % kStages];
      for (size_t i = 0; i < group_size(g); ++i) {
        for (int k = 0; k < ahead[i].parties; ++k) {
          if (stage == 1) {
            state.LookupShard(ahead[i].lookup[k]);
          } else {
            state.LookupCandidate(ahead[i].lookup[k]);
          }
        }
      }
    }
    if (step >= kStages - 1 && step - (kStages - 1) < groups) {  // stage 3: decide
      const size_t g = step - (kStages - 1);
      const Ahead* ahead = ring[g % kStages];
      for (size_t i = 0; i < group_size(g); ++i) {
        const DecisionRequest& q = requests[g * kGroup + i];
        const Ahead& a = ahead[i];
        const int account_slots = q.account ? 1 : 0;
        results->push_back(
            DecideImpl(q, now, &cache, [&](int index, PartyKind kind, std::string_view id) {
              int slot = index < 0 ? 0 : account_slots + index;
              if (slot < a.parties) return state.LookupFinish(a.lookup[slot], kind, id);
              return state.Find(kind, id);
            }, with_parties));
      }
    }
  }
}

}  // namespace assent
