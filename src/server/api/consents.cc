// A party's choices: per rule, history, recording one, and erasure.
#include "server/api/handlers.h"

#include <algorithm>
#include <charconv>
#include <chrono>

#include "common/strings.h"
#include "audit/audit.h"
#include "common/json_writer.h"
#include "common/sha256.h"
#include "engine/consent_view.h"
#include "engine/events_jsonl.h"
#include "server/problem.h"
#include "server/request_json.h"

namespace assent::server {

PartyKind KindOf(const RouteContext& ctx) {
  return ctx.route && ctx.route->party == RouteParty::kAccount ? PartyKind::kAccount
                                                               : PartyKind::kSubject;
}

namespace {

// The rule as a page shows it, in locale `l` of the terms.
void WriteRule(JsonWriter& w, const Terms& t, const RuleView& v, int32_t l) {
  const Rule& rule = *v.rule;
  const int32_t r = t.FindRule(rule.id);
  w.BeginObject();
  w.Key("rule").String(rule.id);
  w.Key("basis").String(BasisName(rule.basis));
  if (!rule.summary.empty()) w.Key("summary").String(t.RuleSummary(r, l));
  if (v.asks) w.Key("consent_from").String(ConsentFromName(rule.consent_from));
  w.Key("categories").BeginArray();
  for (int32_t c : rule.categories) {
    const TaxonomyNode& node = t.categories()[c];
    w.BeginObject().Key("name").String(node.name);
    w.Key("description").String(t.CategoryDescription(c, l));
    if (!node.leaf()) {  // what a broad category covers, so a person sees all of it
      w.Key("includes").BeginArray();
      for (int32_t k : node.children) {
        w.BeginObject().Key("name").String(t.categories()[k].name);
        w.Key("description").String(t.CategoryDescription(k, l)).EndObject();
      }
      w.EndArray();
    }
    w.EndObject();
  }
  w.EndArray().Key("purposes").BeginArray();
  for (int32_t p : rule.purposes) {
    w.BeginObject().Key("name").String(t.purposes()[p].name);
    w.Key("description").String(t.PurposeDescription(p, l)).EndObject();
  }
  w.EndArray().Key("clauses").BeginArray();
  for (int32_t c : rule.clauses) {
    const Clause& clause = t.ClauseText(c, l);
    w.BeginObject().Key("id").String(t.clauses()[c].id).Key("title").String(clause.title);
    w.Key("text").String(clause.text).EndObject();
  }
  w.EndArray();
  // The notice this rule shows (what a page displays: summary, categories, purposes, clauses):
  // sent back with a choice, it is recorded in the event and its receipt.
  if (auto text = NoticeText(t, rule, t.locales()[l])) {
    WriteNotice(w, t.locales()[l], NoticeSha256(*text));
  }
  if (v.asks && v.for_party) {
    w.Key("state").String(v.state);
    // A grant some of whose pairs changed meaning since it was given: ask again.
    w.Key("stale").Bool(v.stale);
    w.Key("event");
    if (v.event) {
      w.UInt(v.event);
    } else {
      w.Null();
    }
  }
  w.EndObject();
}

}  // namespace

// The language to show the terms in: ?locale=TAG (refused when the terms do not offer it),
// else the best Accept-Language match (an exact tag, or its language: de-CH -> de), else the
// terms' own language.
Result<int32_t> ChooseLocale(const HttpRequest& req, const Terms& t) {
  std::string asked;
  if (req.QueryParam("locale", &asked)) {
    const int32_t l = t.FindLocale(asked);
    if (l < 0) {
      return InvalidArgumentError("the terms " + t.label() + " are not offered in '" + asked +
                                  "' (they are in: " + Join(t.locales(), ", ") + ")");
    }
    return l;
  }
  int32_t best = 0;
  double best_q = 0;
  std::string_view header = req.Header("Accept-Language");
  if (header.size() > 1024) header = header.substr(0, 1024);  // bounded: a long list helps no one
  while (!header.empty()) {
    const size_t comma = header.find(',');
    std::string_view item = header.substr(0, comma);
    header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
    double q = 1;
    if (const size_t semi = item.find(';'); semi != std::string_view::npos) {
      const std::string_view param = item.substr(semi + 1);
      if (const size_t eq = param.find("q="); eq != std::string_view::npos) {
        q = std::atof(std::string(param.substr(eq + 2, 5)).c_str());
      }
      item = item.substr(0, semi);
    }
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    int32_t l = t.FindLocale(item);
    if (l < 0) l = t.FindLocale(item.substr(0, item.find('-')));
    if (l >= 0 && q > best_q) {
      best = l;
      best_q = q;
    }
  }
  return best;
}

HandlerOutcome Consents(RouteContext& ctx) {
  const PartyKind kind = KindOf(ctx);
  const std::string& id = ctx.params[0];
  Engine& engine = ctx.api->ledger().engine();
  auto snap = engine.snapshot();
  const Timestamp now = engine.Now();
  int32_t v = snap->terms().VersionAt(now);
  if (v < 0) return ProblemFor(Error{ErrorCode::kNotFound, "no terms are in effect now"});
  const Terms& t = snap->terms().version(v);
  auto l = ChooseLocale(*ctx.request, t);
  if (!l) return ProblemFor(l.error());
  JsonWriter w;
  w.BeginObject();
  w.Key(PartyKindName(kind)).String(id);
  w.Key("terms").String(t.label());
  w.Key("position").UInt(snap->position());
  w.Key("locale").String(t.locales()[*l]).Key("locales").BeginArray();
  for (const auto& tag : t.locales()) w.String(tag);
  w.EndArray();
  w.Key("rules").BeginArray();
  for (const RuleView& view : ViewRules(*snap, t, kind, id, now)) WriteRule(w, t, view, *l);
  w.EndArray();
  w.EndObject();
  HttpResponse out = Json(w.Take());
  out.headers.emplace_back("Content-Language", t.locales()[*l]);
  out.headers.emplace_back("Vary", "Accept-Language");
  return out;
}

HandlerOutcome History(RouteContext& ctx) {
  const PartyKind kind = KindOf(ctx);
  auto snap = ctx.api->ledger().engine().snapshot();
  JsonWriter w;
  w.BeginObject();
  w.Key(PartyKindName(kind)).String(ctx.params[0]);
  w.Key("position").UInt(snap->position());
  w.Key("events").BeginArray();
  for (const auto& e : snap->EventsOf(kind, ctx.params[0])) {
    w.BeginObject();
    WriteHistoryEvent(w, e);
    // Who recorded it (a key, or a session and the key that minted its link) is in the entry.
    // So are the notice the choice answered, when one was stated.
    if (auto rc = ctx.api->ledger().ReceiptAt(e.position); rc) {
      if (!rc->actor.empty()) w.Key("actor").String(rc->actor);
      if (!rc->notice_sha256.empty()) WriteNotice(w, rc->notice_locale, rc->notice_sha256);
    }
    if (auto h = ctx.api->ledger().EntryHash(e.position)) w.Key("hash").String(*h);
    w.EndObject();
  }
  w.EndArray().EndObject();
  return Json(w.Take());
}

namespace {

// Checks what the body says of who made the choice: a grant only from the party's own session;
// the method follows from the caller (a session is the person's own settings page or the
// admin's page; a key is the API, or a Global Privacy Control signal it relays — a key can
// never claim a person's or an admin's own click).
std::optional<HttpResponse> SetMethod(const Caller& caller, const std::string& method,
                                      ConsentEvent* e) {
  const SessionCaller* session = caller.session();
  if (e->action == Action::kGrant && !session) {
    return Problem(ProblemType::kGrantNeedsThePerson,
                   "an API key may record withdrawals and objections, never grants: nobody "
                   "grants consent on another's behalf. Grants come from the person's own "
                   "settings session.");
  }
  e->method = Method::kApi;
  if (session) {
    e->method = session->session.kind == PartyKind::kSubject ? Method::kSettings : Method::kAdmin;
    if (!method.empty() && method != MethodName(e->method)) {
      return BadRequest("\"method\" follows from the session (" +
                        std::string(MethodName(e->method)) + "); leave it out");
    }
  } else if (!method.empty()) {
    auto m = ParseMethod(method);
    if (!m || (*m != Method::kApi && *m != Method::kGpc)) {
      return BadRequest("\"method\" from an API key must be api or gpc (settings and admin "
                        "are recorded only from the person's or admin's own session)");
    }
    e->method = *m;
  }
  // Who wrote it: the key, or the session and the key that minted its sign-in link.
  e->actor = caller.actor();
  return std::nullopt;
}

// A choice under a rule that asks nobody's choice has no effect: say so instead of 201.
std::optional<HttpResponse> CheckRuleAsks(Ledger& ledger, const ConsentEvent& e) {
  auto snap = ledger.engine().snapshot();
  const int32_t v = snap->terms().VersionAt(ledger.engine().Now());
  if (v < 0) return std::nullopt;
  if (auto st = CheckChoiceMatters(snap->terms().version(v), e); !st) return ProblemFor(st.error());
  return std::nullopt;
}

// A live write is stamped by the server's clock. A client's time is only checked: one in the
// future would hold every later event's time there (times never decrease), and backdated
// history enters through `assent ledger import`, never the live API.
std::optional<HttpResponse> CheckClientTime(const std::string& at, Timestamp now) {
  if (at.empty()) return std::nullopt;
  auto t = ParseTime(at);
  if (!t) return ProblemFor(t.error());
  if (*t > now + kMaxClockSkew) {
    return ProblemFor(Invalid("\"at\" " + FormatTime(*t) + " is in the future (the server's "
                              "time is " + FormatTime(now) + "); leave \"at\" out: the server "
                              "stamps every event"));
  }
  if (*t < now - kMaxClockSkew) {
    return ProblemFor(Invalid("\"at\" " + FormatTime(*t) + " is in the past (the server's time "
                              "is " + FormatTime(now) + "); the live API records choices as "
                              "they are made; import older history with `assent ledger "
                              "import`"));
  }
  return std::nullopt;
}

// Idempotency-Key (as in the IETF httpapi draft): a retry after a lost connection gets the
// first request's receipt instead of recording the event twice. Keys are scoped to the
// caller; only their SHA-256 is stored.
std::optional<HttpResponse> SetIdempotencyKey(const HttpRequest& req, const Caller& caller,
                                              ConsentEvent* e) {
  const std::string_view key = req.Header("Idempotency-Key");
  if (key.empty()) return std::nullopt;
  if (key.size() > 255 ||
      !std::all_of(key.begin(), key.end(), [](char c) { return c >= 0x21 && c <= 0x7e; })) {
    return BadRequest("Idempotency-Key must be 1-255 printable ASCII characters, e.g. a UUID");
  }
  const SessionCaller* session = caller.session();
  const std::string scope = session ? std::string(PartyKindName(session->session.kind)) + ":" +
                                          session->session.party
                                    : "key:" + caller.key()->name;
  const Sha256Digest digest = Sha256(scope + '\0' + std::string(key));
  e->idempotency_key.assign(reinterpret_cast<const char*>(digest.data()), digest.size());
  return std::nullopt;
}

// "notice": {locale, sha256} — the notice displayed (each rule's is in the consents listing);
// checked against the terms' text when recorded (422 when it is not one of them).
std::optional<HttpResponse> GetNotice(simdjson::dom::object body, ConsentEvent* e) {
  simdjson::dom::element v;
  if (body["notice"].get(v) != simdjson::SUCCESS) return std::nullopt;
  simdjson::dom::object n;
  if (v.get_object().get(n) != simdjson::SUCCESS) {
    return BadRequest("\"notice\" must be an object {\"locale\", \"sha256\"}: the notice "
                      "displayed, as the consents listing gives it for each rule");
  }
  if (auto p = CheckFields(n, {"locale", "sha256"})) return p;
  if (auto p = GetString(n, "locale", &e->notice_locale, true)) return p;
  if (auto p = GetString(n, "sha256", &e->notice_sha256, true)) return p;
  if (auto st = CheckNoticeFields(e->notice_locale, e->notice_sha256); !st) {
    return ProblemFor(st.error());
  }
  return std::nullopt;
}

}  // namespace

HandlerOutcome RecordConsent(RouteContext& ctx) {
  Body b;
  if (auto p = ParseObject(*ctx.request, &b,
                           {"rule", "categories", "purposes", "action", "at", "method",
                            "notice"})) {
    return *p;
  }
  ConsentEvent e;
  e.party_kind = KindOf(ctx);
  e.party = ctx.params[0];
  std::string action, at, method;
  if (auto p = GetString(b.obj, "action", &action, true)) return *p;
  if (auto p = GetString(b.obj, "rule", &e.rule, false)) return *p;
  if (auto p = GetStrings(b.obj, "categories", &e.categories, false)) return *p;
  if (auto p = GetStrings(b.obj, "purposes", &e.purposes, false)) return *p;
  if (auto p = GetString(b.obj, "at", &at, false)) return *p;
  if (auto p = GetString(b.obj, "method", &method, false)) return *p;
  if (auto p = GetNotice(b.obj, &e)) return *p;
  auto a = ParseAction(action);
  if (!a) return BadRequest("\"action\" must be \"grant\" or \"withdraw\"");
  e.action = *a;
  Ledger& ledger = ctx.api->ledger();
  if (auto p = SetMethod(*ctx.caller, method, &e)) return *p;
  if (e.rule.empty() && (e.categories.empty() || e.purposes.empty())) {
    return BadRequest("give \"rule\", or \"categories\" and \"purposes\"");
  }
  if (auto p = CheckRuleAsks(ledger, e)) return *p;
  if (auto p = CheckClientTime(at, ledger.engine().Now())) return *p;
  if (auto p = SetIdempotencyKey(*ctx.request, *ctx.caller, &e)) return *p;
  auto start = std::chrono::steady_clock::now();
  auto r = ledger.RecordConsent(std::move(e));
  ctx.api->metrics().Append(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  if (!r) return ProblemFor(r.error());
  HttpResponse out = Json(r->ToJson(), 201);
  if (ctx.api->auditor()) {  // the receipt carries its proof
    auto provable = ctx.api->auditor()->ProvableReceipt(ledger, *r);
    if (provable) out = Json(*provable, 201);
  }
  if (r->replayed) out.headers.emplace_back("Idempotent-Replayed", "true");
  return out;
}

// GET /v1/{subjects,accounts}/{id}/receipts/{position}: the receipt of one of the party's own
// events (a download on the settings page), with its proof when the server keeps the log.
HandlerOutcome PartyReceipt(RouteContext& ctx) {
  uint64_t position = 0;
  const std::string& p = ctx.params[1];
  auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), position);
  if (ec != std::errc() || ptr != p.data() + p.size() || p.empty()) {
    return BadRequest("the position must be a non-negative integer");
  }
  auto receipt = ctx.api->ledger().ReceiptAt(position);
  // Another party's event is as unknown as a missing one: nothing about it is said.
  if (!receipt || receipt->party_kind != KindOf(ctx) || receipt->party != ctx.params[0]) {
    return ProblemFor(Error{ErrorCode::kNotFound, "no event of yours at position " + p});
  }
  std::string body = receipt->ToJson();
  if (ctx.api->auditor()) {
    if (auto provable = ctx.api->auditor()->ProvableReceipt(ctx.api->ledger(), *receipt)) {
      body = std::move(*provable);
    }
  }
  HttpResponse r = Json(std::move(body));
  r.headers.emplace_back("Content-Disposition",
                         "attachment; filename=\"receipt-" + std::to_string(position) + ".json\"");
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

// Crypto-shredding (DELETE /v1/{subjects,accounts}/{id}): the party's pseudonym secret and
// plain id are deleted; its entries stay in the log, unlinkable.
HandlerOutcome PartyErase(RouteContext& ctx) {
  const PartyKind kind = KindOf(ctx);
  const std::string& id = ctx.params[0];
  auto snap = ctx.api->ledger().engine().snapshot();
  const size_t events = snap->EventsOf(kind, id).size();
  auto pseudonym = ctx.api->ledger().PseudonymOf(kind, id);
  ErasureReport report;
  auto position = ctx.api->ledger().EraseParty(kind, id, &report);
  if (!position) return ProblemFor(position.error());
  JsonWriter w;
  w.BeginObject().Key(PartyKindName(kind)).String(id).Key("erased").Bool(true);
  w.Key("pseudonym").String(pseudonym ? *pseudonym : "").Key("events").UInt(events);
  w.Key("position").UInt(*position);
  w.Key("retrain").BeginObject();
  for (auto [key, list] : {std::pair{"datasets", &report.datasets}, {"shards", &report.shards},
                           {"models", &report.models}}) {
    w.Key(key).BeginArray();
    for (const auto& x : *list) w.String(x);
    w.EndArray();
  }
  w.EndObject().EndObject();
  return Json(w.Take());
}

}  // namespace assent::server
