// Names of the decision vocabulary and the decision JSON of DESIGN.md.
#include "assent/decision.h"

#include "common/json_writer.h"

namespace assent {

namespace {
constexpr std::string_view kReasons[] = {
    "necessary", "consented", "not-objected", "prohibited", "unlisted", "no-consent",
    "withdrawn", "stale",     "expired",      "objected",   "no-subject", "erased"};
constexpr std::string_view kStates[] = {"granted", "withdrawn", "none", "stale", "expired"};
constexpr std::string_view kMethods[] = {"settings", "api", "gpc", "admin", "import"};
}  // namespace

std::string_view ReasonName(Reason r) { return kReasons[static_cast<int>(r)]; }

std::optional<Reason> ParseReason(std::string_view s) {
  for (size_t i = 0; i < std::size(kReasons); ++i) {
    if (kReasons[i] == s) return static_cast<Reason>(i);
  }
  return std::nullopt;
}

std::string_view PartyKindName(PartyKind k) {
  return k == PartyKind::kSubject ? "subject" : "account";
}

std::string_view PartyStateName(PartyState s) { return kStates[static_cast<int>(s)]; }

std::optional<PartyKind> ParsePartyKind(std::string_view s) {
  if (s == "subject") return PartyKind::kSubject;
  if (s == "account") return PartyKind::kAccount;
  return std::nullopt;
}

std::string_view ActionName(Action a) { return a == Action::kGrant ? "grant" : "withdraw"; }

std::optional<Action> ParseAction(std::string_view s) {
  if (s == "grant") return Action::kGrant;
  if (s == "withdraw") return Action::kWithdraw;
  return std::nullopt;
}

std::string_view MethodName(Method m) { return kMethods[static_cast<int>(m)]; }

std::optional<Method> ParseMethod(std::string_view s) {
  for (size_t i = 0; i < std::size(kMethods); ++i) {
    if (kMethods[i] == s) return static_cast<Method>(i);
  }
  return std::nullopt;
}

std::string DecisionToJson(const Decision& d) {
  JsonWriter w;
  w.Reserve(256);
  w.BeginObject();
  w.Key("decision").String(d.allow ? "allow" : "deny");
  w.Key("reason").String(ReasonName(d.reason));
  w.Key("basis");
  if (d.basis) {
    w.String(BasisName(*d.basis));
  } else {
    w.Null();
  }
  w.Key("rule");
  if (d.rule) {
    w.String(d.rule->id);
  } else {
    w.Null();
  }
  w.Key("clauses").BeginArray();
  if (d.rule) {
    for (const auto& c : d.rule->clause_ids) w.String(c);
  }
  w.EndArray();
  w.Key("terms").String(d.terms ? d.terms->label() : std::string());
  w.Key("at").String(FormatTime(d.at));
  w.Key("position").UInt(d.position);
  w.Key("parties").BeginArray();
  for (const auto& p : d.parties) {
    w.BeginObject();
    w.Key(PartyKindName(p.kind)).String(p.id);
    w.Key("state").String(PartyStateName(p.state));
    w.Key("event");
    if (p.event) {
      w.UInt(p.event);
    } else {
      w.Null();
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return w.Take();
}

}  // namespace assent
