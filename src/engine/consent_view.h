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

// Grants to ask again after the terms changed: a party's grant is stale for a rule when one of
// the pairs the rule decides was granted under a meaning that changed since (RuleView::stale).
struct StaleParty {
  PartyKind kind = PartyKind::kSubject;
  std::string id;
  uint64_t grants = 0;  // distinct stale grant events behind the rule's pairs
};
struct StaleCount {
  std::string rule;
  uint64_t grants = 0, parties = 0;
};

// Every party with a stale grant under `rule` (a consent or objectable rule of `terms`, the
// version in effect at `now`), sorted by kind then id. One pass over every party: for operator
// listings and publication reports, not request paths.
std::vector<StaleParty> StaleParties(const Snapshot& snap, const Terms& terms,
                                     std::string_view rule, Timestamp now);

// One page of a stale listing: parties after `cursor` (what the previous page's next_cursor
// was; "" for the first), at most `limit` (1-1000) of them; next_cursor is "" on the last page.
// kInvalidArgument for a cursor no page gave or a limit out of range.
struct StalePage {
  std::vector<StaleParty> parties;
  std::string next_cursor;
  uint64_t total = 0;  // parties in the whole listing
};
Result<StalePage> PageStale(const std::vector<StaleParty>& all, std::string_view cursor,
                            size_t limit);

// kInvalidArgument unless `rule` names a rule of `terms` that asks a choice (consent or
// objectable), naming those that do.
Status CheckAskingRule(const Terms& terms, std::string_view rule);

// For each rule of `terms` that asks a choice, how many stale grants and parties (rules with
// none included, with zeros), in the terms' order. One pass over every party.
std::vector<StaleCount> CountStale(const Snapshot& snap, const Terms& terms, Timestamp now);

// kInvalidArgument when a choice would change nothing: its rule is necessary or prohibited,
// or it is a grant every category x purpose pair of which such a rule decides (a withdrawal by
// pairs is always recorded: it can only narrow use). Names the rule and
// its clauses. Unknown names pass (the ledger refuses them with its own message).
Status CheckChoiceMatters(const Terms& terms, const ConsentEvent& event);

}  // namespace assent

#endif  // ASSENT_ENGINE_CONSENT_VIEW_H_
