// API keys: list, create, revoke.
#include "server/api/handlers.h"

#include "common/json_writer.h"
#include "server/problem.h"
#include "server/request_json.h"

namespace assent::server {
namespace {

void WriteKey(JsonWriter& w, const ApiKey& k) {
  w.BeginObject().Key("name").String(k.name).Key("role").String(RoleName(k.role));
  w.Key("position").UInt(k.position);
  if (k.created_at) w.Key("created_at").String(FormatTime(k.created_at));
  w.Key("revoked").Bool(k.revoked).EndObject();
}

}  // namespace

HandlerOutcome KeysList(RouteContext& ctx) {
  JsonWriter w;
  w.BeginObject().Key("keys").BeginArray();
  for (const auto& k : ctx.api->ledger().Keys()) WriteKey(w, k);
  w.EndArray().EndObject();
  return Json(w.Take());
}

HandlerOutcome KeysCreate(RouteContext& ctx) {
  Body b;
  if (auto p = ParseObject(*ctx.request, &b, {"role", "name"})) return *p;
  std::string role, name;
  if (auto p = GetString(b.obj, "role", &role, true)) return *p;
  if (auto p = GetString(b.obj, "name", &name, true)) return *p;
  auto r = ParseRole(role);
  if (!r) return BadRequest("\"role\" must be operator, service, auditor or portal");
  auto secret = ctx.api->ledger().CreateKey(*r, name);
  if (!secret) return ProblemFor(secret.error());
  JsonWriter w;
  w.BeginObject().Key("name").String(name).Key("role").String(role);
  w.Key("key").String(*secret).Key("note").String("shown once; only its SHA-256 is stored");
  w.EndObject();
  HttpResponse res = Json(w.Take(), 201);
  res.headers.emplace_back("Cache-Control", "no-store");
  return res;
}

HandlerOutcome KeysRevoke(RouteContext& ctx) {
  if (ctx.caller && ctx.caller->key() && ctx.caller->key()->name == ctx.params[0]) {
    return ProblemFor(Error{ErrorCode::kFailedPrecondition,
                            "a key cannot revoke itself; use another operator key"});
  }
  if (auto st = ctx.api->ledger().RevokeKey(ctx.params[0]); !st) return ProblemFor(st.error());
  return Json("{\"revoked\":true}");
}

}  // namespace assent::server
