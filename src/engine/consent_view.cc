// What a party sees of the terms, and GPC objections (consent_view.h).
#include "engine/consent_view.h"

#include "common/strings.h"

#include <algorithm>
#include <optional>
#include <set>
#include <tuple>

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

namespace {

// The stale grant events behind one rule's view of a party.
uint64_t StaleGrants(const RuleView& v) {
  std::set<uint64_t> events;
  for (const auto& p : v.pairs) {
    if (p.state == PartyState::kStale) events.insert(p.event);
  }
  return events.size();
}

}  // namespace

std::vector<StaleParty> StaleParties(const Snapshot& snap, const Terms& t, std::string_view rule,
                                     Timestamp now) {
  std::vector<StaleParty> out;
  snap.ForEachParty([&](PartyKind kind, std::string_view id) {
    for (const RuleView& v : ViewRules(snap, t, kind, id, now)) {
      if (v.rule->id != rule || !v.stale) continue;
      out.push_back({kind, std::string(id), StaleGrants(v)});
    }
  });
  std::sort(out.begin(), out.end(), [](const StaleParty& a, const StaleParty& b) {
    return std::tie(a.kind, a.id) < std::tie(b.kind, b.id);
  });
  return out;
}

std::vector<StaleCount> CountStale(const Snapshot& snap, const Terms& t, Timestamp now) {
  std::vector<StaleCount> out;
  for (const Rule& r : t.rules()) {
    if (r.basis == Basis::kConsent || r.basis == Basis::kObjectable) out.push_back({r.id, 0, 0});
  }
  snap.ForEachParty([&](PartyKind kind, std::string_view id) {
    for (const RuleView& v : ViewRules(snap, t, kind, id, now)) {
      if (!v.stale) continue;
      for (StaleCount& c : out) {
        if (c.rule != v.rule->id) continue;
        c.grants += StaleGrants(v);
        ++c.parties;
      }
    }
  });
  return out;
}

namespace {

std::string CursorOf(const StaleParty& p) {
  static const char* kHex = "0123456789abcdef";
  const std::string key = (p.kind == PartyKind::kSubject ? "s:" : "a:") + p.id;
  std::string out;
  for (unsigned char c : key) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

std::optional<StaleParty> FromCursor(std::string_view cursor) {
  if (cursor.size() % 2 != 0 || cursor.size() > 2 * 600) return std::nullopt;
  std::string key;
  for (size_t i = 0; i < cursor.size(); i += 2) {
    auto nibble = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      return -1;
    };
    const int hi = nibble(cursor[i]), lo = nibble(cursor[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    key += static_cast<char>(hi * 16 + lo);
  }
  if (key.size() < 3 || (key[0] != 's' && key[0] != 'a') || key[1] != ':') return std::nullopt;
  return StaleParty{key[0] == 's' ? PartyKind::kSubject : PartyKind::kAccount, key.substr(2), 0};
}

}  // namespace

Result<StalePage> PageStale(const std::vector<StaleParty>& all, std::string_view cursor,
                            size_t limit) {
  if (limit < 1 || limit > 1000) return InvalidArgumentError("limit must be 1-1000");
  size_t from = 0;
  if (!cursor.empty()) {
    auto after = FromCursor(cursor);
    if (!after) return InvalidArgumentError("cursor '" + std::string(cursor.substr(0, 64)) +
                                            "' is not one a page gave (start without a cursor)");
    from = std::upper_bound(all.begin(), all.end(), *after, [](const StaleParty& a, const StaleParty& b) {
             return std::tie(a.kind, a.id) < std::tie(b.kind, b.id);
           }) - all.begin();
  }
  StalePage page;
  page.total = all.size();
  const size_t to = std::min(all.size(), from + limit);
  page.parties.assign(all.begin() + static_cast<ptrdiff_t>(from), all.begin() + static_cast<ptrdiff_t>(to));
  if (to < all.size()) page.next_cursor = CursorOf(all[to - 1]);
  return page;
}

Status CheckAskingRule(const Terms& t, std::string_view rule) {
  std::vector<std::string> asking;
  for (const Rule& r : t.rules()) {
    if (r.basis != Basis::kConsent && r.basis != Basis::kObjectable) continue;
    if (r.id == rule) return OkStatus();
    asking.push_back(r.id);
  }
  std::string list;
  for (const auto& a : asking) list += (list.empty() ? "" : ", ") + a;
  const int32_t r = t.FindRule(rule);
  if (r >= 0) {
    return InvalidArgumentError("rule '" + std::string(rule) + "' is " +
                                std::string(BasisName(t.rules()[r].basis)) +
                                ": it asks nobody, so no grant under it goes stale (rules that ask: " +
                                list + ")");
  }
  return InvalidArgumentError("no rule '" + std::string(rule) + "' in terms " + t.label() +
                              DidYouMeanSuffix(rule, asking) + " (rules that ask: " + list + ")");
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
