// The read side of the engine: DESIGN.md "Decision semantics", steps 1-9, over one snapshot.
// This is the hot path: no locks, no allocation except the parties list, no string compares
// beyond the two name look-ups and the party id check.
#include <algorithm>

#include "assent/engine.h"
#include "common/strings.h"
#include "engine/consent_state.h"
#include "engine/shared_tables.h"

namespace assent {

using internal::PartyRecord;
using internal::Scope;
using internal::StoredEvent;

namespace {

std::unexpected<Error> Unknown(std::string_view what, std::string_view name, const Terms& t,
                               const std::vector<TaxonomyNode>& nodes) {
  std::vector<std::string> names;
  for (const auto& n : nodes) names.push_back(n.name);
  if (name.empty()) return InvalidArgumentError("no " + std::string(what) + " given");
  return InvalidArgumentError("unknown " + std::string(what) + " '" + std::string(name) +
                              "' in terms " + t.label() + DidYouMeanSuffix(name, names));
}

}  // namespace

uint64_t Snapshot::PositionAt(Timestamp t) const {
  // Consent events' times never decrease with position: binary search the timeline.
  uint64_t lo = 0, hi = consent_count_;
  while (lo < hi) {
    uint64_t mid = lo + (hi - lo) / 2;
    if (tables_->timeline[mid].at <= t) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo == 0 ? 0 : tables_->timeline[lo - 1].position;
}

Result<Decision> Snapshot::Decide(const DecisionRequest& q, Timestamp now) const {
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
  const int32_t gc = ts.category_vocabulary().Find(q.category);
  const int32_t c = gc < 0 ? -1 : ts.LocalCategory(v, gc);
  if (c < 0) return Unknown("category", q.category, terms, terms.categories());
  const int32_t gp = ts.purpose_vocabulary().Find(q.purpose);
  const int32_t p = gp < 0 ? -1 : ts.LocalPurpose(v, gp);
  if (p < 0) return Unknown("purpose", q.purpose, terms, terms.purposes());

  Decision d;
  d.terms = &terms;
  d.at = t;
  d.position = q.at ? PositionAt(t) : position_;
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
  if ((need_account && (!q.account || q.account->empty())) ||
      (need_subjects && q.subjects.empty())) {
    d.reason = Reason::kNoSubject;  // fail closed: nobody to check the choice of
    return d;
  }
  const Vocabulary& cats = ts.category_vocabulary();
  const Vocabulary& purs = ts.purpose_vocabulary();
  auto covers = [&](const Scope& s) {
    bool cat = false;
    for (int32_t sc : s.categories) {
      if (cats.Covers(sc, gc)) {
        cat = true;
        break;
      }
    }
    if (!cat) return false;
    for (int32_t sp : s.purposes) {
      if (purs.Covers(sp, gp)) return true;
    }
    return false;
  };
  bool failed = false;
  auto judge = [&](PartyKind kind, std::string_view id) {
    PartyDecision pd{kind, id, PartyState::kNone, 0};
    const StoredEvent* effective = nullptr;
    if (const PartyRecord* rec = state_->Find(kind, id)) {
      auto events = rec->events();
      for (auto it = events.rbegin(); it != events.rend(); ++it) {
        if (it->at > t) continue;
        if (covers(*tables_->scopes[it->scope])) {
          effective = &*it;
          break;
        }
      }
    }
    Reason failure = consent ? Reason::kNoConsent : Reason::kNotObjected;
    bool fails = consent;  // under consent, no event fails; under objectable it passes
    if (effective) {
      pd.event = effective->position;
      if (effective->action == Action::kWithdraw) {
        pd.state = PartyState::kWithdrawn;
        failure = consent ? Reason::kWithdrawn : Reason::kObjected;
        fails = true;
      } else if (consent && !ts.MeaningUnchanged(v, effective->version, c, p)) {
        pd.state = PartyState::kStale;
        failure = Reason::kStale;
      } else if (consent && rule.consent_valid_for &&
                 t >= effective->at + *rule.consent_valid_for) {
        pd.state = PartyState::kExpired;
        failure = Reason::kExpired;
      } else {
        pd.state = PartyState::kGranted;
        fails = false;
      }
    }
    if (fails && !failed) {
      failed = true;
      d.reason = failure;
    }
    d.parties.push_back(pd);
  };
  d.parties.reserve((need_account ? 1 : 0) + (need_subjects ? q.subjects.size() : 0));
  if (need_account) judge(PartyKind::kAccount, *q.account);
  if (need_subjects) {
    for (std::string_view s : q.subjects) judge(PartyKind::kSubject, s);
  }
  if (!failed) {
    d.allow = true;
    d.reason = consent ? Reason::kConsented : Reason::kNotObjected;
  }
  return d;
}

}  // namespace assent
