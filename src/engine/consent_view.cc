// What a party sees of the terms, and GPC objections (consent_view.h).
#include "engine/consent_view.h"

#include <algorithm>

namespace assent {
namespace {

// The party's state over the pairs `rule` decides.
void FillState(const Snapshot& snap, const Terms& t, const Rule& rule, PartyKind kind,
               std::string_view id, Timestamp now, RuleView* view) {
  bool mixed = false;
  for (int32_t c : rule.categories) {
    for (int32_t p : rule.purposes) {
      const int32_t r = t.DecidingRule(c, p);
      if (r < 0 || &t.rules()[r] != &rule) continue;
      auto st = snap.PartyStateFor(kind, id, t.categories()[c].name, t.purposes()[p].name, now);
      if (!st) continue;
      view->pairs.push_back({t.categories()[c].name, t.purposes()[p].name, st->state, st->event});
      const std::string s(PartyStateName(st->state));
      view->stale |= st->state == PartyState::kStale;
      if (view->event == 0 && view->state == "none") {
        view->state = s;
      } else if (s != view->state) {
        mixed = true;
      }
      view->event = std::max(view->event, st->event);
    }
  }
  if (mixed) view->state = "mixed";
}

}  // namespace

std::vector<RuleView> ViewRules(const Snapshot& snap, const Terms& t, PartyKind kind,
                                std::string_view id, Timestamp now) {
  std::vector<RuleView> views;
  views.reserve(t.rules().size());
  for (const Rule& rule : t.rules()) {
    RuleView v;
    v.rule = &rule;
    v.asks = rule.basis == Basis::kConsent || rule.basis == Basis::kObjectable;
    v.for_party = kind == PartyKind::kAccount ? rule.consent_from != ConsentFrom::kSubjects
                                              : rule.consent_from != ConsentFrom::kAccount;
    if (v.asks && v.for_party) FillState(snap, t, rule, kind, id, now, &v);
    views.push_back(std::move(v));
  }
  return views;
}

std::vector<ConsentEvent> GpcObjections(const Snapshot& snap, const Terms& t,
                                        std::string_view subject, Timestamp now) {
  std::vector<ConsentEvent> events;
  for (const Rule& rule : t.rules()) {
    if (rule.basis != Basis::kObjectable || rule.consent_from == ConsentFrom::kAccount) continue;
    std::vector<std::string> purposes;
    for (int32_t g = 0; g < static_cast<int32_t>(t.purposes().size()); ++g) {
      if (!t.purposes()[g].gpc) continue;
      for (int32_t rp : rule.purposes) {
        if (t.PurposeCovers(rp, g)) {
          purposes.push_back(t.purposes()[g].name);
        } else if (t.PurposeCovers(g, rp)) {
          purposes.push_back(t.purposes()[rp].name);
        }
      }
    }
    if (purposes.empty()) continue;
    auto st = snap.PartyStateFor(PartyKind::kSubject, subject,
                                 t.categories()[rule.categories[0]].name, purposes[0], now);
    if (st && st->state == PartyState::kWithdrawn) continue;  // already objected
    ConsentEvent e;
    e.party = std::string(subject);
    e.action = Action::kWithdraw;
    for (int32_t c : rule.categories) e.categories.push_back(t.categories()[c].name);
    e.purposes = std::move(purposes);
    e.method = Method::kGpc;
    e.rule = rule.id;
    events.push_back(std::move(e));
  }
  return events;
}

Status CheckChoiceMatters(const Terms& t, const ConsentEvent& e) {
  auto asks = [](const Rule& r) { return r.basis == Basis::kConsent || r.basis == Basis::kObjectable; };
  auto refuse = [&](const Rule& r) -> Status {
    std::string clauses;
    for (const auto& c : r.clause_ids) clauses += (clauses.empty() ? "" : ", ") + c;
    return InvalidArgumentError("rule '" + r.id + "' (clause " + clauses + ") makes this " +
                                std::string(BasisName(r.basis)) +
                                ": nobody's choice changes it, so there is nothing to record");
  };
  if (!e.rule.empty()) {
    const int32_t r = t.FindRule(e.rule);
    if (r >= 0 && !asks(t.rules()[r])) return refuse(t.rules()[r]);
    return OkStatus();
  }
  // A withdrawal by categories and purposes is always recorded (it can only ever narrow use);
  // a grant that could allow nothing is refused.
  if (e.action != Action::kGrant) return OkStatus();
  const Rule* first = nullptr;
  for (const auto& cn : e.categories) {
    for (const auto& pn : e.purposes) {
      const int32_t c = t.FindCategory(cn), p = t.FindPurpose(pn);
      if (c < 0 || p < 0) return OkStatus();
      const int32_t r = t.DecidingRule(c, p);
      if (r < 0 || asks(t.rules()[r])) return OkStatus();
      if (!first) first = &t.rules()[r];
    }
  }
  return first ? refuse(*first) : OkStatus();
}

}  // namespace assent
