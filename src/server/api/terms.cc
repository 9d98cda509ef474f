// Terms: the version in effect, any version, publishing, and diffs.
#include "server/api/handlers.h"

#include "engine/consent_view.h"
#include "terms/diff.h"
#include "common/json_writer.h"
#include "server/problem.h"
#include "server/request_json.h"

namespace assent::server {
namespace {

void WriteTerms(JsonWriter& w, const Terms& t) {
  w.BeginObject();
  w.Key("terms").String(t.id());
  w.Key("version").String(t.version());
  w.Key("effective").String(FormatTime(t.effective()));
  w.Key("clauses").BeginArray();
  for (const auto& c : t.clauses()) {
    w.BeginObject().Key("id").String(c.id).Key("title").String(c.title);
    w.Key("text").String(c.text).EndObject();
  }
  w.EndArray();
  for (bool cats : {true, false}) {
    w.Key(cats ? "categories" : "purposes").BeginArray();
    for (const auto& n : cats ? t.categories() : t.purposes()) {
      w.BeginObject().Key("name").String(n.name).Key("description").String(n.description);
      if (!cats && n.gpc) w.Key("gpc").Bool(true);
      if (!n.derived_from.empty()) {
        w.Key("derived_from").BeginArray();
        for (int32_t d : n.derived_from) w.String(t.categories()[d].name);
        w.EndArray();
      }
      w.EndObject();
    }
    w.EndArray();
  }
  w.Key("rules").BeginArray();
  for (const auto& r : t.rules()) {
    w.BeginObject().Key("id").String(r.id).Key("basis").String(BasisName(r.basis));
    if (!r.summary.empty()) w.Key("summary").String(r.summary);
    if (r.basis == Basis::kConsent || r.basis == Basis::kObjectable) {
      w.Key("consent_from").String(ConsentFromName(r.consent_from));
    }
    if (r.consent_valid_for) w.Key("consent_valid_for").String(FormatDuration(*r.consent_valid_for));
    w.Key("categories").BeginArray();
    for (int32_t c : r.categories) w.String(t.categories()[c].name);
    w.EndArray().Key("purposes").BeginArray();
    for (int32_t p : r.purposes) w.String(t.purposes()[p].name);
    w.EndArray().Key("clauses").BeginArray();
    for (const auto& c : r.clause_ids) w.String(c);
    w.EndArray().EndObject();
  }
  w.EndArray();
  w.EndObject();
}

}  // namespace

HandlerOutcome TermsCurrent(RouteContext& ctx) {
  Engine& engine = ctx.api->ledger().engine();
  auto snap = engine.snapshot();
  int32_t v = snap->terms().VersionAt(engine.Now());
  if (v < 0) return ProblemFor(Error{ErrorCode::kNotFound, "no terms are in effect now"});
  JsonWriter w;
  WriteTerms(w, snap->terms().version(v));
  return Json(w.Take());
}

HandlerOutcome TermsVersion(RouteContext& ctx) {
  auto snap = ctx.api->ledger().engine().snapshot();
  int32_t v = snap->terms().FindVersion(ctx.params[0]);
  if (v < 0) {
    return ProblemFor(Error{ErrorCode::kNotFound, "no terms version '" + ctx.params[0] + "'"});
  }
  JsonWriter w;
  WriteTerms(w, snap->terms().version(v));
  return Json(w.Take());
}

HandlerOutcome TermsPublish(RouteContext& ctx) {
  const std::string& yaml = ctx.request->body;
  LintResult lint = LintTerms(yaml, "request body");
  if (lint.has_errors()) {
    HttpResponse r = Problem(ProblemType::kTermsRefused,
                             "fix the diagnostics and publish again");
    JsonWriter w;
    w.BeginArray();
    for (const auto& d : lint.diagnostics) {
      w.BeginObject().Key("line").Int(d.line).Key("column").Int(d.column);
      w.Key("severity").String(d.severity == Severity::kError ? "error" : "warning");
      w.Key("message").String(d.message).Key("code").String(d.code).EndObject();
    }
    w.EndArray();
    r.body.pop_back();
    r.body += ",\"diagnostics\":" + w.Take() + "}";
    return r;
  }
  PublishOptions options;
  std::string flag;
  if (ctx.request->QueryParam("backfill", &flag)) {
    return ProblemFor(Invalid("backfilling terms (an effective time in the past) changes answers "
                              "already given; it is done only with `assent terms publish "
                              "--backfill` on the command line, never over HTTP"));
  }
  if (ctx.request->QueryParam("allow_loosening", &flag)) {
    if (flag != "true" && flag != "false") {
      return BadRequest("allow_loosening must be true or false");
    }
    options.allow_loosening = flag == "true";
  }
  auto start = std::chrono::steady_clock::now();
  auto p = ctx.api->ledger().PublishTerms(yaml, "request body", options);
  ctx.api->metrics().Append(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  if (!p) return ProblemFor(p.error());
  JsonWriter w;
  w.BeginObject().Key("terms").String(p->terms->label()).Key("position").UInt(p->position);
  w.Key("already_published").Bool(p->already_published);
  // Whom the new wording asks again: per rule, the grants it makes stale (from when it applies).
  w.Key("stale").BeginArray();
  if (!p->already_published) {
    auto snap = ctx.api->ledger().engine().snapshot();
    const Timestamp when = std::max(ctx.api->ledger().engine().Now(), p->terms->effective());
    const int32_t v = snap->terms().VersionAt(when);
    if (v >= 0 && snap->terms().version(v).label() == p->terms->label()) {
      for (const StaleCount& c : CountStale(*snap, snap->terms().version(v), when)) {
        w.BeginObject().Key("rule").String(c.rule).Key("grants").UInt(c.grants);
        w.Key("parties").UInt(c.parties).EndObject();
      }
    }
  }
  w.EndArray().EndObject();
  return Json(w.Take(), p->already_published ? 200 : 201);
}

// GET /v1/stale?rule=R[&cursor=C][&limit=N][&at=T]: the parties to ask again under a rule.
HandlerOutcome StaleRoute(RouteContext& ctx) {
  std::string rule, cursor, limit_text, at_text;
  if (!ctx.request->QueryParam("rule", &rule) || rule.empty()) {
    return BadRequest("give ?rule=R (a consent or objectable rule); optional cursor, limit, at");
  }
  ctx.request->QueryParam("cursor", &cursor);
  size_t limit = 100;
  if (ctx.request->QueryParam("limit", &limit_text)) {
    char* end = nullptr;
    const unsigned long long n = std::strtoull(limit_text.c_str(), &end, 10);
    if (limit_text.empty() || *end != '\0' || n < 1 || n > 1000) {
      return Problem(ProblemType::kInvalidArgument, "limit must be an integer 1-1000");
    }
    limit = n;
  }
  auto snap = ctx.api->ledger().engine().snapshot();
  Timestamp now = ctx.api->ledger().engine().Now();
  if (ctx.request->QueryParam("at", &at_text)) {
    auto at = ParseTime(at_text);
    if (!at) return Problem(ProblemType::kInvalidArgument, "at: " + at.error().message);
    now = *at;
  }
  const int32_t v = snap->terms().VersionAt(now);
  if (v < 0) return ProblemFor(FailedPreconditionError("no terms are in effect at " + FormatTime(now)).error());
  const Terms& terms = snap->terms().version(v);
  if (auto st = CheckAskingRule(terms, rule); !st) return ProblemFor(st.error());
  auto page = PageStale(StaleParties(*snap, terms, rule, now), cursor, limit);
  if (!page) return ProblemFor(page.error());
  JsonWriter w;
  w.BeginObject().Key("rule").String(rule).Key("terms").String(terms.label());
  w.Key("position").UInt(snap->position()).Key("total").UInt(page->total);
  w.Key("parties").BeginArray();
  for (const StaleParty& p : page->parties) {
    w.BeginObject().Key(PartyKindName(p.kind)).String(p.id).Key("grants").UInt(p.grants).EndObject();
  }
  w.EndArray();
  if (!page->next_cursor.empty()) w.Key("next_cursor").String(page->next_cursor);
  w.EndObject();
  return Json(w.Take());
}

HandlerOutcome TermsDiffRoute(RouteContext& ctx) {
  auto snap = ctx.api->ledger().engine().snapshot();
  int32_t a = snap->terms().FindVersion(ctx.params[0]);
  int32_t b = snap->terms().FindVersion(ctx.params[1]);
  if (a < 0 || b < 0) {
    return ProblemFor(Error{ErrorCode::kNotFound, "no terms version '" +
                                                      ctx.params[a < 0 ? 0 : 1] + "'"});
  }
  return Json(DiffJson(DiffTerms(snap->terms().version(a), snap->terms().version(b))).dump());
}

}  // namespace assent::server
