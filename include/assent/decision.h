// A decision: may this category of data be used for this purpose, for these parties, at this
// time — with the reason, the rule and clauses behind it, and each party's state. A deny is
// a decision, not an error; an error means the question could not be answered.
#ifndef ASSENT_DECISION_H_
#define ASSENT_DECISION_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "assent/inline_vector.h"
#include "assent/terms.h"
#include "assent/time.h"

namespace assent {

// The exact reason strings of DESIGN.md, in this order.
enum class Reason : uint8_t {
  kNecessary,
  kConsented,
  kNotObjected,
  kProhibited,
  kUnlisted,
  kNoConsent,
  kWithdrawn,
  kStale,
  kExpired,
  kObjected,
  kNoSubject,
  kErased,  // a named party was erased: never usable again except under `necessary`
};
std::string_view ReasonName(Reason r);  // "no-consent", ...
std::optional<Reason> ParseReason(std::string_view s);

enum class PartyKind : uint8_t { kSubject, kAccount };
std::string_view PartyKindName(PartyKind k);  // "subject" | "account"
std::optional<PartyKind> ParsePartyKind(std::string_view s);

// A party's state for the pair asked about, from its effective consent event.
enum class PartyState : uint8_t { kGranted, kWithdrawn, kNone, kStale, kExpired };
std::string_view PartyStateName(PartyState s);

enum class Action : uint8_t { kGrant, kWithdraw };
std::string_view ActionName(Action a);
std::optional<Action> ParseAction(std::string_view s);

// How a consent event was made.
enum class Method : uint8_t { kSettings, kApi, kGpc, kAdmin, kImport };
std::string_view MethodName(Method m);
std::optional<Method> ParseMethod(std::string_view s);

// The question. All views must outlive the call and the Decision it returns.
struct DecisionRequest {
  std::string_view category;
  std::string_view purpose;
  std::optional<std::string_view> account;
  std::span<const std::string_view> subjects;
  // The time asked about; nullopt means "now", a question about the present.
  std::optional<Timestamp> at;
};

struct PartyDecision {
  PartyKind kind = PartyKind::kSubject;
  std::string_view id;  // points into the DecisionRequest
  PartyState state = PartyState::kNone;
  uint64_t event = 0;  // position of the deciding consent event; 0 when there is none
};

// The answer. `rule` and `terms` point into the Snapshot that decided: keep it alive.
struct Decision {
  bool allow = false;
  Reason reason = Reason::kUnlisted;
  std::optional<Basis> basis;  // nullopt when unlisted
  const Rule* rule = nullptr;  // null when unlisted
  const Terms* terms = nullptr;
  Timestamp at = 0;
  uint64_t position = 0;
  InlineVector<PartyDecision, 4> parties;  // no allocation for up to 4 parties
};

// The decision JSON of DESIGN.md, on one line:
// {"decision":"deny","reason":"withdrawn","basis":"consent","rule":"...","clauses":[...],
//  "terms":"id@version","at":"...","position":41,"parties":[{"subject":"u1",...}]}
std::string DecisionToJson(const Decision& d);

}  // namespace assent

#endif  // ASSENT_DECISION_H_
