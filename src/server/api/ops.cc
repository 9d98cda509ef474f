// Health, readiness, metrics, the OpenAPI document and the ledger export.
#include "server/api/handlers.h"

#include <sstream>

#include "audit/audit.h"
#include "common/json_writer.h"
#include "server/problem.h"
#include "server/request_json.h"

namespace assent::server {

HandlerOutcome Healthz(RouteContext&) { return Json("{\"status\":\"ok\"}"); }

HandlerOutcome Readyz(RouteContext& ctx) {
  using AuditCheck = Api::AuditCheck;
  const uint64_t pos = ctx.api->ledger().position();
  const auto [check, detail] = ctx.api->audit_check();
  static constexpr const char* kNames[] = {"not_run", "running", "passed", "failed"};
  const bool ready = check != AuditCheck::kRunning && check != AuditCheck::kFailed;
  // A node that cannot reach a shared ledger still answers decisions from the state it has
  // applied (with its position), so it stays ready — "degraded": writes fail with 503 until
  // the database is back. Taking every node out of a load balancer would stop decisions too.
  const bool reachable = ctx.api->ledger().store_reachable();
  JsonWriter w;
  w.BeginObject();
  w.Key("status").String(!ready ? (check == AuditCheck::kRunning ? "verifying" : "audit_failed")
                         : reachable ? "ready"
                                     : "degraded");
  w.Key("position").UInt(pos);
  w.Key("audit").String(kNames[static_cast<int>(check)]);
  if (!detail.empty()) w.Key("audit_detail").String(detail);
  // Unauthenticated: what is wrong with the database is in the node's log, not here.
  w.Key("ledger").String(reachable ? "reachable" : "unreachable");
  if (!reachable) w.Key("ledger_detail").String("degraded: database unreachable");
  w.EndObject();
  return Json(w.Take(), ready ? 200 : 503);
}

HandlerOutcome MetricsRoute(RouteContext& ctx) {
  HttpResponse r;
  r.content_type = "text/plain; version=0.0.4";
  r.body = ctx.api->metrics().Render(ctx.api->ledger().position());
  return r;
}

HandlerOutcome OpenApi(RouteContext&) { return Json(Api::OpenApiJson()); }


HandlerOutcome LedgerExport(RouteContext& ctx) {
  uint64_t since = 0;
  std::string s;
  if (ctx.request->QueryParam("since", &s)) {
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), since);
    if (ec != std::errc() || ptr != s.data() + s.size()) {
      return BadRequest("\"since\" must be a non-negative integer");
    }
  }
  std::ostringstream out;
  if (auto st = ctx.api->ledger().Export(since, out); !st) return ProblemFor(st.error());
  HttpResponse r = Json(out.str());
  r.content_type = "application/x-ndjson";
  return r;
}

}  // namespace assent::server
