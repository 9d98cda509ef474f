// What a party sees of the terms in effect (the settings and admin pages, GET
// /v1/{subjects,accounts}/{id}/consents), and the objections a Global Privacy Control signal
// stands for. Pure functions over a snapshot: no I/O.
#ifndef ASSENT_ENGINE_CONSENT_VIEW_H_
#define ASSENT_ENGINE_CONSENT_VIEW_H_

#include <string>
#include <string_view>
#include <vector>

#include "assent/engine.h"

namespace assent {

// One rule as a party sees it. `asks`: the rule is consent or objectable; `for_party`: it asks
// this kind of party (a subjects-only rule does not ask an account, and the reverse).
struct RuleView {
  const Rule* rule = nullptr;
  bool asks = false;
  bool for_party = false;
  // When asks && for_party: the party's state over the pairs the rule decides — one of
  // PartyStateName's, or "mixed" when the pairs differ; `stale` when any was granted under a
  // meaning that changed since; `event` the latest deciding event's position (0: none).
  std::string state = "none";
  bool stale = false;
  uint64_t event = 0;
  // The same per (category, purpose) pair the rule decides.
  struct Pair {
    std::string category, purpose;
    PartyState state = PartyState::kNone;
    uint64_t event = 0;
  };
  std::vector<Pair> pairs;
};

// Every rule of `terms` (the version in effect at `now`), in order, for the party.
std::vector<RuleView> ViewRules(const Snapshot& snap, const Terms& terms, PartyKind kind,
                                std::string_view id, Timestamp now);

// The objections (withdrawals, method gpc) a subject's `Sec-GPC: 1` stands for: one per
// objectable rule that asks subjects and covers a purpose marked `gpc: true`, scoped to those
// purposes; none for a rule the subject objected to already. Never a grant.
std::vector<ConsentEvent> GpcObjections(const Snapshot& snap, const Terms& terms,
                                        std::string_view subject, Timestamp now);

// kInvalidArgument when a choice would change nothing: its rule is necessary or prohibited,
// or it is a grant every category x purpose pair of which such a rule decides (a withdrawal by
// pairs is always recorded: it can only narrow use). Names the rule and
// its clauses. Unknown names pass (the ledger refuses them with its own message).
Status CheckChoiceMatters(const Terms& terms, const ConsentEvent& event);

}  // namespace assent

#endif  // ASSENT_ENGINE_CONSENT_VIEW_H_
