// The route handlers of the HTTP API, one file per area (decisions.cc, terms.cc, consents.cc,
// sessions.cc, keys.cc, lineage.cc, audit.cc, ops.cc); the route table that names them is in
// ../router.cc. A handler reads the request, asks the ledger, and answers JSON or a named
// problem (../problem.h) — it never picks a status number.
#ifndef ASSENT_SERVER_API_HANDLERS_H_
#define ASSENT_SERVER_API_HANDLERS_H_

#include <memory>

#include "server/api.h"
#include "server/listener.h"

namespace assent::server {

// ops.cc
HandlerOutcome Healthz(RouteContext& ctx);
HandlerOutcome Readyz(RouteContext& ctx);
HandlerOutcome MetricsRoute(RouteContext& ctx);
HandlerOutcome OpenApi(RouteContext& ctx);
HandlerOutcome LedgerExport(RouteContext& ctx);

// decisions.cc
HandlerOutcome Decide(RouteContext& ctx);
HandlerOutcome DecideBatch(RouteContext& ctx);
// POST /v1/decisions:batch as NDJSON, answered line by line as it arrives.
std::unique_ptr<BodyStream> NewDecisionStream(Api* api);
// 503: this node has not applied the position a request asked for.
HttpResponse NotAtPosition(uint64_t wanted, uint64_t applied);

// terms.cc
HandlerOutcome TermsCurrent(RouteContext& ctx);
HandlerOutcome TermsVersion(RouteContext& ctx);
HandlerOutcome TermsPublish(RouteContext& ctx);
HandlerOutcome TermsDiffRoute(RouteContext& ctx);
HandlerOutcome StaleRoute(RouteContext& ctx);
HandlerOutcome Changes(RouteContext& ctx);

// consents.cc (subjects and accounts alike: the route's `party` says which)
HandlerOutcome Consents(RouteContext& ctx);
HandlerOutcome History(RouteContext& ctx);
HandlerOutcome RecordConsent(RouteContext& ctx);
HandlerOutcome PartyErase(RouteContext& ctx);
HandlerOutcome PartyReceipt(RouteContext& ctx);

// sessions.cc
HandlerOutcome MintSession(RouteContext& ctx);
HandlerOutcome RedeemSession(RouteContext& ctx);
HandlerOutcome SessionInfo(RouteContext& ctx);
HandlerOutcome SessionGpc(RouteContext& ctx);
HandlerOutcome SessionLogout(RouteContext& ctx);

// keys.cc
HandlerOutcome KeysList(RouteContext& ctx);
HandlerOutcome KeysCreate(RouteContext& ctx);
HandlerOutcome KeysRevoke(RouteContext& ctx);

// lineage.cc
HandlerOutcome DatasetsList(RouteContext& ctx);
HandlerOutcome DatasetGet(RouteContext& ctx);
HandlerOutcome DatasetRegister(RouteContext& ctx);
HandlerOutcome ModelRegister(RouteContext& ctx);
HandlerOutcome ImpactRoute(RouteContext& ctx);
HandlerOutcome Usage(RouteContext& ctx);

// audit.cc
HandlerOutcome AuditKey(RouteContext& ctx);
HandlerOutcome AuditCheckpoint(RouteContext& ctx);
HandlerOutcome AuditInclusion(RouteContext& ctx);
HandlerOutcome AuditConsistency(RouteContext& ctx);

// The party kind the route's {id} names.
PartyKind KindOf(const RouteContext& ctx);

}  // namespace assent::server

#endif  // ASSENT_SERVER_API_HANDLERS_H_
