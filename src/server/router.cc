// Routing: the route table, admission (route, audit gate, caller) and Api::Handle, the one
// pure request -> response function the listener calls; the access log.
#include <algorithm>
#include <chrono>
#include <ostream>

#include "common/json_writer.h"
#include "common/strings.h"
#include "server/api.h"
#include "server/api/handlers.h"
#include "server/pages.h"
#include "server/problem.h"
#include "server/request_json.h"

namespace assent::server {
namespace {

// Matches `path` against a pattern; fills the decoded {params}.
bool Match(std::string_view pattern, std::string_view path, std::vector<std::string>* params) {
  params->clear();
  while (!pattern.empty() || !path.empty()) {
    size_t brace = pattern.find('{');
    if (brace == std::string_view::npos) return pattern == path;
    if (path.substr(0, brace) != pattern.substr(0, brace)) return false;
    path.remove_prefix(brace);
    pattern.remove_prefix(pattern.find('}') + 1);
    size_t end = path.find('/');
    std::string_view raw = path.substr(0, end);
    if (raw.empty()) return false;
    std::string decoded;
    for (size_t i = 0; i < raw.size(); ++i) {
      auto hex = [](char c) {
        return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                               : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
      };
      if (raw[i] == '%' && i + 2 < raw.size() && hex(raw[i + 1]) >= 0 && hex(raw[i + 2]) >= 0) {
        decoded.push_back(static_cast<char>(hex(raw[i + 1]) * 16 + hex(raw[i + 2])));
        i += 2;
      } else {
        decoded.push_back(raw[i]);
      }
    }
    params->push_back(std::move(decoded));
    path = end == std::string_view::npos ? std::string_view() : path.substr(end);
  }
  return true;
}

}  // namespace

namespace {

// The routes, in matching order (the metrics list them in it too): the service's and the
// person's first, then lineage, keys, pages and the audit log.
std::vector<Route> ServiceRoutes() {
  return {
      {"GET", "/healthz", kPublic, "Liveness", Healthz},
      {"GET", "/readyz", kPublic, "Readiness: the ledger is loaded and its audit log verified", Readyz},
      {"GET", "/metrics", kPublic, "Prometheus metrics", MetricsRoute},
      {"GET", "/openapi.json", kPublic, "This API's OpenAPI 3.1 document", OpenApi},
      {"POST", "/v1/decisions", kOperator | kService, "Decide one use of data", Decide},
      {"POST", "/v1/decisions:batch", kOperator | kService,
       "Decide many uses (JSON up to 10,000 items, or NDJSON streams)", DecideBatch},
      {"GET", "/v1/terms", kAnyRole | kPerson | kAccountAdmin, "The terms in effect now",
       TermsCurrent},
      {"POST", "/v1/terms", kOperator, "Publish a terms version (YAML body)", TermsPublish},
      {"GET", "/v1/terms/{version}", kAnyRole | kPerson | kAccountAdmin, "One terms version",
       TermsVersion},
      {"GET", "/v1/terms/{a}/diff/{b}", kAnyRole | kPerson | kAccountAdmin,
       "What changed between two versions", TermsDiffRoute},
      {"GET", "/v1/changes", kAnyRole,
       "The change feed: ledger entries after ?after=N as NDJSON, then new ones as they commit",
       Changes},
      {"GET", "/v1/stale", kOperator,
       "The parties to ask again: grants under a rule given under wording that changed (paged)",
       StaleRoute},
      {"GET", "/v1/subjects/{id}/consents", kAnyRole | kPerson, "A person's choices per rule",
       Consents, RouteParty::kSubject},

      {"POST", "/v1/subjects/{id}/consents", kOperator | kService | kPerson,
       "Record a choice: keys record withdrawals only; the person's session also grants",
       RecordConsent, RouteParty::kSubject},

      {"GET", "/v1/subjects/{id}/history", kAnyRole | kPerson, "A person's consent events",
       History, RouteParty::kSubject},
      {"GET", "/v1/subjects/{id}/receipts/{position}", kAnyRole | kPerson,
       "The receipt of one of a person's events, with its proof (verifiable offline)", PartyReceipt,
       RouteParty::kSubject},

      {"DELETE", "/v1/subjects/{id}", kOperator,
       "Erase a person: delete their pseudonym secret and id (crypto-shredding)", PartyErase,
       RouteParty::kSubject},
      {"DELETE", "/v1/accounts/{id}", kOperator,
       "Erase an account: delete its pseudonym secret and id (crypto-shredding)", PartyErase,
       RouteParty::kAccount},
      {"GET", "/v1/accounts/{id}/consents", kAnyRole | kAccountAdmin,
       "An account's choices per rule", Consents, RouteParty::kAccount},

      {"POST", "/v1/accounts/{id}/consents", kOperator | kService | kAccountAdmin,
       "Record an account's choice: keys withdraw only; the admin's session also grants",
       RecordConsent, RouteParty::kAccount},

      {"GET", "/v1/accounts/{id}/history", kAnyRole | kAccountAdmin,
       "An account's consent events", History, RouteParty::kAccount},
      {"GET", "/v1/accounts/{id}/receipts/{position}", kAnyRole | kAccountAdmin,
       "The receipt of one of an account's events, with its proof", PartyReceipt,
       RouteParty::kAccount},

      {"POST", "/v1/sessions", kPortal,
       "Mint a one-time sign-in link for a person ({subject}) or an account admin ({account})",
       MintSession},
      {"GET", "/session/{token}", kPublic, "Exchange a one-time link for a session cookie",
       RedeemSession},
      {"GET", "/v1/session", kPerson | kAccountAdmin, "The current session and its CSRF token",
       SessionInfo},
      {"POST", "/v1/session/logout", kPerson | kAccountAdmin,
       "Sign out: end this session (CSRF token needed)", SessionLogout},
      {"POST", "/v1/session/gpc", kPerson,
       "Record the browser's Global Privacy Control signal (Sec-GPC: 1) as objections",
       SessionGpc},
  };
}

std::vector<Route> RecordRoutes() {
  return {
      {"GET", "/v1/ledger", kOperator | kAuditor, "Export the ledger (NDJSON)", LedgerExport},
      {"GET", "/v1/datasets", kAnyRole, "Recorded datasets and models", DatasetsList},
      {"POST", "/v1/datasets", kOperator | kService,
       "Record a dataset filtered elsewhere (subjects, accounts, shards)", DatasetRegister},
      {"GET", "/v1/datasets/{name}", kAnyRole, "One dataset", DatasetGet},
      {"POST", "/v1/models", kOperator | kService, "Record a model and its datasets",
       ModelRegister},
      {"GET", "/v1/impact", kAnyRole,
       "Datasets, shards and models holding a party (?subject= or ?account=)", ImpactRoute},
      {"GET", "/v1/subjects/{id}/usage", kAnyRole | kPerson,
       "Where a person's data was used (recorded datasets)", Usage, RouteParty::kSubject},

      {"GET", "/v1/keys", kOperator, "API keys: names and roles, never secrets", KeysList},
      {"POST", "/v1/keys", kOperator, "Create an API key {role, name}; its secret is shown once",
       KeysCreate},
      {"POST", "/v1/keys/{name}/revoke", kOperator, "Revoke an API key", KeysRevoke},
      {"GET", "/settings", kPublic, "A person's settings page", SettingsPage},
      {"GET", "/admin", kPublic, "The account-admin and operator page", AdminPage},
      {"GET", "/assets/{file}", kPublic, "The pages' CSS and JavaScript", Asset},
      {"GET", "/v1/audit/key", kPublic, "The log's verifier key (Ed25519, C2SP note format)",
       AuditKey},
      {"GET", "/v1/audit/checkpoint", kPublic, "A checkpoint of the whole log, signed now",
       AuditCheckpoint},
      {"GET", "/v1/audit/proof/inclusion", kPublic,
       "Inclusion proof of the entry at ?position=N in the tree of ?size=M", AuditInclusion},
      {"GET", "/v1/audit/proof/consistency", kPublic,
       "Consistency proof between trees of ?from=M and ?to=N entries", AuditConsistency},
  };
}

}  // namespace

const std::vector<Route>& Api::Routes() {
  static const std::vector<Route> routes = [] {
    std::vector<Route> all = ServiceRoutes();
    for (auto& r : RecordRoutes()) all.push_back(std::move(r));
    return all;
  }();
  return routes;
}

Api::Api(Ledger* ledger, std::ostream* access_log, audit::Auditor* auditor)
    : ledger_(ledger), access_log_(access_log), auditor_(auditor), sessions_(ledger) {}

uint64_t Api::AppliedPosition() const { return ledger_->position(); }

const Route* Api::Admission(const HttpRequest& req, RouteContext* ctx, size_t* route_index,
                            HttpResponse* denied) {
  const auto& routes = Routes();
  bool path_known = false;
  const Route* route = nullptr;
  // HEAD is GET without the body (RFC 9110 §9.3.2); the listener sends the headers only.
  const std::string_view method = req.method == "HEAD" ? std::string_view("GET") : req.method;
  for (size_t i = 0; i < routes.size(); ++i) {
    if (!Match(routes[i].pattern, req.Path(), &ctx->params)) continue;
    path_known = true;
    if (routes[i].method == method) {
      route = &routes[i];
      *route_index = i;
      break;
    }
  }
  if (!route) {
    *denied = path_known ? Problem(ProblemType::kMethodNotAllowed,
                                   req.method + " is not allowed on " + std::string(req.Path()))
                         : Problem(ProblemType::kNotFound,
                                   "no route " + std::string(req.Path()) + "; see /openapi.json");
    denied->route = "unmatched";
    return nullptr;
  }
  if (route->pattern.find("{id}") != std::string::npos &&
      std::any_of(ctx->params.begin(), ctx->params.end(),
                  [](const std::string& p) { return BlankId(p); })) {
    *denied = ProblemFor(
        Invalid("the id in the path is empty or only whitespace: it names nobody"));
    denied->route = route->method + " " + route->pattern;
    return nullptr;
  }
  // A node whose audit of the log has not passed (running in the background, or failed) writes
  // nothing: its state may be built on a changed log. Decisions (reads) are still answered.
  if (const auto [check, detail] = audit_check();
      (check == AuditCheck::kRunning || check == AuditCheck::kFailed) && route->writes()) {
    *denied = ProblemFor(Error{ErrorCode::kUnavailable,
                               check == AuditCheck::kRunning
                                   ? "the audit of the log is still running; writes are refused "
                                     "until it passes (see /readyz)"
                                   : "the audit of the log failed (" + detail +
                                         "); this node refuses every write"});
    denied->route = route->method + " " + route->pattern;
    return nullptr;
  }
  if (route->roles != kPublic) {
    auto caller = Authenticate(req, *route, ctx->params);
    if (!caller) {
      *denied = std::move(caller.error());
      denied->route = route->method + " " + route->pattern;
      return nullptr;
    }
    ctx->caller = std::move(*caller);
  }
  ctx->route = route;
  return route;
}

std::unique_ptr<BodyStream> Api::OpenStream(const HttpRequest& req) {
  if (req.method == "POST" && req.Path() == "/v1/decisions:batch" &&
      req.Header("Content-Type").starts_with("application/x-ndjson")) {
    return NewDecisionStream(this);
  }
  return nullptr;
}

std::optional<HttpResponse> Api::Admit(const HttpRequest& req) {
  RouteContext ctx{this, &req, nullptr, {}, std::nullopt, false};
  size_t route_index = Metrics::kMaxRoutes - 1;
  HttpResponse denied;
  if (Admission(req, &ctx, &route_index, &denied)) return std::nullopt;
  metrics_.Request(route_index, denied.status, 0);
  return denied;
}

HandlerResult Api::Handle(const HttpRequest& req, bool waited) {
  const auto start = std::chrono::steady_clock::now();
  HandlerResult result;
  RouteContext ctx{this, &req, nullptr, {}, std::nullopt, waited};
  size_t route_index = Metrics::kMaxRoutes - 1;
  HttpResponse& r = result.response;
  // Admission runs again although Admit passed: a body may take minutes to arrive and a
  // consistency wait up to two seconds, and a key revoked (or a session ended, or an audit
  // failed) meanwhile must not be honoured. It costs a hash and a map look-up.
  if (const Route* route = Admission(req, &ctx, &route_index, &r)) {
    HandlerOutcome outcome = route->handle(ctx);
    if (const auto* wait = std::get_if<WaitForPosition>(&outcome)) {
      result.wait_for_position = wait->position;
      result.wait_bound = std::chrono::milliseconds(2000);
    } else if (auto* feed = std::get_if<std::shared_ptr<FeedStream>>(&outcome)) {
      result.feed = std::move(*feed);
    } else {
      r = std::move(std::get<HttpResponse>(outcome));
    }
    r.route = route->method + " " + route->pattern;
    if (ctx.caller) r.key_name = ctx.caller->log_name();
  }
  if (!result.wait_for_position) {
    metrics_.Request(route_index, r.status,
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return result;
}

void Api::Log(const HttpRequest& req, const HttpResponse& res, double ms) {
  if (!access_log_) return;
  JsonWriter w;
  w.BeginObject();
  w.Key("time").String(FormatTime(ledger_->engine().Now()));
  w.Key("remote").String(req.remote);
  w.Key("method").String(ValidUtf8(req.method) ? req.method : "?");
  w.Key("route").String(res.route.empty() ? "unmatched" : res.route);
  w.Key("status").Int(res.status);
  w.Key("ms").Int(static_cast<int64_t>(ms * 1000) / 1000);
  if (!res.key_name.empty()) w.Key("key").String(res.key_name);
  w.EndObject();
  std::lock_guard lock(access_log_mu_);
  *access_log_ << w.str() << "\n";
  access_log_->flush();
}

}  // namespace assent::server
