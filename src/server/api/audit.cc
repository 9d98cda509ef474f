// The audit log over HTTP: the verifier key, checkpoints and proofs.
#include "server/api/handlers.h"

#include "audit/audit.h"
#include "common/json_writer.h"
#include "common/strings.h"
#include "server/problem.h"
#include "server/request_json.h"

namespace assent::server {

using simdjson::dom::element;
using simdjson::dom::object;
namespace {

std::string B64(const audit::Hash& h) {
  return Base64Encode(std::string_view(reinterpret_cast<const char*>(h.data()), 32));
}

HttpResponse NoAuditor() {
  return ProblemFor(Error{ErrorCode::kFailedPrecondition, "this server keeps no audit log"});
}

}  // namespace

HandlerOutcome AuditKey(RouteContext& ctx) {
  if (!ctx.api->auditor()) return NoAuditor();
  HttpResponse r = Json(ctx.api->auditor()->VerifierKey() + "\n");
  r.content_type = "text/plain; charset=utf-8";
  return r;
}

HandlerOutcome AuditCheckpoint(RouteContext& ctx) {
  if (!ctx.api->auditor()) return NoAuditor();
  HttpResponse r = Json(ctx.api->auditor()->Checkpoint());
  r.content_type = "text/plain; charset=utf-8";
  return r;
}

HandlerOutcome AuditInclusion(RouteContext& ctx) {
  if (!ctx.api->auditor()) return NoAuditor();
  uint64_t position = 0, size = 0;
  if (!QueryU64(*ctx.request, "position", &position) || !QueryU64(*ctx.request, "size", &size)) {
    return BadRequest("give ?position=N&size=M (integers)");
  }
  auto proof = ctx.api->auditor()->InclusionProof(position, size);
  if (!proof) return ProblemFor(proof.error());
  JsonWriter w;
  w.BeginObject().Key("position").UInt(position).Key("size").UInt(size);
  w.Key("leaf_hash").String(ToHex(*ctx.api->auditor()->Leaf(position)));
  w.Key("proof").BeginArray();
  for (const auto& h : *proof) w.String(B64(h));
  w.EndArray().EndObject();
  return Json(w.Take());
}

HandlerOutcome AuditConsistency(RouteContext& ctx) {
  if (!ctx.api->auditor()) return NoAuditor();
  uint64_t from = 0, to = 0;
  if (!QueryU64(*ctx.request, "from", &from) || !QueryU64(*ctx.request, "to", &to)) {
    return BadRequest("give ?from=M&to=N (integers)");
  }
  auto proof = ctx.api->auditor()->ConsistencyProof(from, to);
  if (!proof) return ProblemFor(proof.error());
  JsonWriter w;
  w.BeginObject().Key("from").UInt(from).Key("to").UInt(to).Key("proof").BeginArray();
  for (const auto& h : *proof) w.String(B64(h));
  w.EndArray().EndObject();
  return Json(w.Take());
}

}  // namespace assent::server
