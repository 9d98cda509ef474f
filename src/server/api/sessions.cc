// Signing in with one-time links, the session, the GPC signal, and signing out.
#include "server/api/handlers.h"

#include "common/json_writer.h"
#include "common/strings.h"
#include "engine/consent_view.h"
#include "server/problem.h"
#include "server/request_json.h"

namespace assent::server {
namespace {

// Global Privacy Control: a person's browser saying "do not sell or share". It records an
// objection (method gpc) under every objectable rule that covers a purpose marked `gpc: true`,
// scoped to those purposes; it never grants anything. Returns the rules it objected under.
std::vector<std::string> HonourGpc(RouteContext& ctx, const WebSession& s, bool* honoured) {
  std::vector<std::string> recorded;
  *honoured = false;
  if (s.kind != PartyKind::kSubject || ctx.request->Header("Sec-GPC") != "1") return recorded;
  *honoured = true;
  Ledger& ledger = ctx.api->ledger();
  auto snap = ledger.engine().snapshot();
  const Timestamp now = ledger.engine().Now();
  int32_t v = snap->terms().VersionAt(now);
  if (v < 0) return recorded;
  for (ConsentEvent& e : GpcObjections(*snap, snap->terms().version(v), s.party, now)) {
    e.actor = "browser Sec-GPC, session minted by " + s.minted_by;
    std::string rule = e.rule;
    if (ledger.RecordConsent(std::move(e))) recorded.push_back(std::move(rule));
  }
  return recorded;
}

// The page a browser gets for a used, expired or damaged sign-in link (404).
HttpResponse LinkUsedPage() {
  HttpResponse r;
  r.status = 404;
  r.content_type = "text/html; charset=utf-8";
  r.headers.emplace_back("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'");
  r.headers.emplace_back("Cache-Control", "no-store");
  r.body = R"(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>This sign-in link cannot be used</title>
<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;line-height:1.5}</style>
</head><body>
<h1>This sign-in link cannot be used</h1>
<p>Sign-in links work once, for ten minutes. This one was already used, has expired, or was
copied incompletely.</p>
<p>If you did not open it before, your mail system may have checked the link for you and so
used it up. Nothing about your choices has changed.</p>
<p><strong>What to do:</strong> ask for a new link where you got this one (your account's
privacy settings), and open it within ten minutes.</p>
</body></html>
)";
  return r;
}

}  // namespace

HandlerOutcome MintSession(RouteContext& ctx) {
  Body b;
  if (auto p = ParseObject(*ctx.request, &b, {"subject", "account"})) return *p;
  std::string subject, account;
  if (auto p = GetString(b.obj, "subject", &subject, false)) return *p;
  if (auto p = GetString(b.obj, "account", &account, false)) return *p;
  if (subject.empty() == account.empty()) return BadRequest("give exactly one of \"subject\" or \"account\"");
  const bool person = !subject.empty();
  const Timestamp now = ctx.api->ledger().engine().Now();
  if (BlankId(person ? subject : account)) {
    return ProblemFor(Invalid("the id is empty or only whitespace: it names nobody"));
  }
  std::string token = ctx.api->sessions().MintLink(
      person ? PartyKind::kSubject : PartyKind::kAccount, person ? subject : account, now,
      "key:" + ctx.caller->key()->name);
  JsonWriter w;
  w.BeginObject().Key("link").String("/session/" + token);
  w.Key("expires_at").String(FormatTime(now + Sessions::kLinkLifetime)).EndObject();
  return Json(w.Take(), 201);
}

HandlerOutcome RedeemSession(RouteContext& ctx) {
  const Timestamp now = ctx.api->ledger().engine().Now();
  auto sid = ctx.api->sessions().Redeem(ctx.params[0], now);
  if (!sid && sid.error().code != ErrorCode::kNotFound) return ProblemFor(sid.error());
  if (!sid) {
    // Mail systems that check links open one-time links before the person does: so this is the
    // common case, and a browser gets a page that says what happened and what to do.
    if (ctx.request->Header("Accept").find("text/html") != std::string_view::npos) {
      return LinkUsedPage();
    }
    return Problem(ProblemType::kLinkExpired,
                   "session links work once and for a few minutes; ask for a new one");
  }
  auto session = ctx.api->sessions().Find(*sid, now);
  if (!session) return ProblemFor(Error{ErrorCode::kUnavailable, "the session could not be opened; retry"});
  HttpResponse r;
  r.status = 303;
  r.headers.emplace_back("Location",
                         session->kind == PartyKind::kSubject ? "/settings" : "/admin");
  r.headers.emplace_back("Set-Cookie", "assent_session=" + *sid +
                                           "; HttpOnly; SameSite=Strict; Path=/; Max-Age=" +
                                           std::to_string(Sessions::kSessionLifetime /
                                                          kMicrosPerSecond));
  r.headers.emplace_back("Cache-Control", "no-store");
  r.body = "{\"status\":\"signed in\"}";
  return r;
}

// GET /v1/session: reads only. A GPC signal is reported ("signal":true); the page records it
// with POST /v1/session/gpc (a state change needs a POST and its CSRF token, never a GET).
HandlerOutcome SessionInfo(RouteContext& ctx) {
  const WebSession& s = ctx.caller->session()->session;
  JsonWriter w;
  w.BeginObject().Key(PartyKindName(s.kind)).String(s.party);
  w.Key("csrf_token").String(s.csrf).Key("expires_at").String(FormatTime(s.expires));
  if (s.kind == PartyKind::kSubject && ctx.request->Header("Sec-GPC") == "1") {
    w.Key("gpc").BeginObject().Key("signal").Bool(true).EndObject();
  }
  w.EndObject();
  HttpResponse r = Json(w.Take());
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

// POST /v1/session/gpc: records the browser's Sec-GPC: 1 as objections (HonourGpc).
HandlerOutcome SessionGpc(RouteContext& ctx) {
  const WebSession& s = ctx.caller->session()->session;
  bool honoured = false;
  std::vector<std::string> recorded = HonourGpc(ctx, s, &honoured);
  JsonWriter w;
  w.BeginObject().Key("honoured").Bool(honoured).Key("recorded").BeginArray();
  for (const auto& r : recorded) w.String(r);
  w.EndArray().EndObject();
  HttpResponse r = Json(w.Take());
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

// POST /v1/session/logout: ends the session on every node (recorded in the ledger) and clears
// the cookie. When the end cannot be recorded the answer says so (503) and the cookie stays.
HandlerOutcome SessionLogout(RouteContext& ctx) {
  auto st = ctx.api->sessions().End(ctx.caller->session()->token, ctx.api->ledger().engine().Now());
  if (!st && st.error().code != ErrorCode::kNotFound) return ProblemFor(st.error());
  HttpResponse r = Json("{\"signed_out\":true}");
  r.headers.emplace_back("Set-Cookie",
                         "assent_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

}  // namespace assent::server
