// The HTTP API under /v1 (DESIGN.md "Interfaces"): routing, authentication by API key and
// role, request parsing and the JSON answers. Pure request -> response over a Ledger; the
// listener does the I/O.
//
// Thread safety: Handle may be called from many threads at once.
#ifndef ASSENT_SERVER_API_H_
#define ASSENT_SERVER_API_H_

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <variant>
#include <string>
#include <vector>

#include "assent/ledger.h"
#include "server/listener.h"
#include "server/metrics.h"
#include "server/sessions.h"

namespace assent::audit {
class Auditor;
}  // namespace assent::audit

namespace assent::server {

// Who may call a route: a bitmask of roles; kPublic needs no key.
enum RoleMask : unsigned {
  kPublic = 0,
  kOperator = 1u << 0,
  kService = 1u << 1,
  kAuditor = 1u << 2,
  kPortal = 1u << 3,  // mints sign-in links, nothing else
  kAnyRole = kOperator | kService | kAuditor,
  kPerson = 1u << 4,        // a person's session: only their own subject
  kAccountAdmin = 1u << 5,  // an account admin's session: only their account
};

// Who asks: a live API key, or a browser session (opened through a one-time link).
struct KeyCaller {
  std::string name;
  Role role = Role::kService;
};
struct SessionCaller {
  WebSession session;
  std::string token;  // the session's token (for logout)
};
struct Caller {
  std::variant<KeyCaller, SessionCaller> who;
  const KeyCaller* key() const { return std::get_if<KeyCaller>(&who); }
  const SessionCaller* session() const { return std::get_if<SessionCaller>(&who); }
  // What events recorded by this caller name: "key:NAME" or "session minted by key:NAME".
  std::string actor() const;
  // The key's name, or "session" (the access log).
  std::string log_name() const;
};

struct RouteContext;

// What a handler answers: a response, or "answer once the ledger has reached this position"
// (the listener waits, bounded, and calls the handler again with `waited` set).
struct WaitForPosition {
  uint64_t position = 0;
};
// Or a change feed the listener streams for as long as the client reads.
using HandlerOutcome = std::variant<HttpResponse, WaitForPosition, std::shared_ptr<FeedStream>>;

// Which party the route's {id} names: sessions may only touch their own.
enum class RouteParty : uint8_t { kNone, kSubject, kAccount };

struct Route {
  std::string method;
  std::string pattern;  // "/v1/terms/{version}"
  unsigned roles;
  std::string summary;
  HandlerOutcome (*handle)(RouteContext& ctx);
  RouteParty party = RouteParty::kNone;
  // Whether the route appends to the ledger (what a node whose audit has not passed refuses):
  // every POST and DELETE but decisions (reads asked with a body) and minting sign-in links,
  // and redeeming a link (a GET, since it is followed from an e-mail, that records the use).
  bool writes() const {
    if (pattern == "/session/{token}") return true;
    return (method == "POST" || method == "DELETE") && !pattern.starts_with("/v1/decisions") &&
           pattern != "/v1/sessions";
  }
};

class FeedCache;
std::shared_ptr<FeedCache> MakeFeedCache();  // api/changes.cc

class Api : public Handler {
 public:
  explicit Api(Ledger* ledger, std::ostream* access_log = nullptr,
               audit::Auditor* auditor = nullptr);

  HandlerResult Handle(const HttpRequest& request, bool waited) override;
  // Routing and authentication from the headers alone (404, 405, 422 for a blank id, 401,
  // 403, CSRF), before the body is read.
  std::optional<HttpResponse> Admit(const HttpRequest& request) override;
  // POST /v1/decisions:batch with Content-Type application/x-ndjson: answered line by line.
  std::unique_ptr<BodyStream> OpenStream(const HttpRequest& request) override;
  uint64_t AppliedPosition() const override;
  void Log(const HttpRequest& request, const HttpResponse& response, double ms) override;

  // Every route; the OpenAPI document is generated from this table.
  static const std::vector<Route>& Routes();
  static std::string OpenApiJson();

  void set_ready(bool ready) { ready_ = ready; }
  // The start-up audit of the log (`assent audit verify`), reported by /readyz: the server is
  // not ready while it runs in the background, nor after it fails.
  enum class AuditCheck { kNotRun, kRunning, kPassed, kFailed };
  void set_audit_check(AuditCheck state, std::string detail = "") {
    std::lock_guard lock(audit_check_mu_);
    audit_check_ = state;
    audit_check_detail_ = std::move(detail);
  }
  std::pair<AuditCheck, std::string> audit_check() const {
    std::lock_guard lock(audit_check_mu_);
    return {audit_check_, audit_check_detail_};
  }
  Ledger& ledger() { return *ledger_; }
  Metrics& metrics() { return metrics_; }
  Sessions& sessions() { return sessions_; }
  audit::Auditor* auditor() { return auditor_; }
  // What the change feeds share (api/changes.cc): the entries at the head, read once for all
  // subscribers. Made at the first feed.
  std::shared_ptr<FeedCache> feed_cache() {
    std::call_once(feed_cache_once_, [this] { feed_cache_ = MakeFeedCache(); });
    return feed_cache_;
  }

 private:
  // The route a request is for, with its caller authenticated into `ctx`; nullptr with
  // `*denied` set otherwise.
  const Route* Admission(const HttpRequest& req, RouteContext* ctx, size_t* route_index,
                         HttpResponse* denied);
  // The caller of a non-public route (auth.cc), or the 401/403 problem that refuses it.
  std::expected<Caller, HttpResponse> Authenticate(const HttpRequest& req, const Route& route,
                                                   const std::vector<std::string>& params);
  Ledger* ledger_;
  std::ostream* access_log_;
  audit::Auditor* auditor_;
  std::atomic<bool> ready_{true};
  mutable std::mutex audit_check_mu_;
  AuditCheck audit_check_ = AuditCheck::kNotRun;
  std::string audit_check_detail_;
  Metrics metrics_;
  Sessions sessions_;
  std::mutex access_log_mu_;
  std::once_flag feed_cache_once_;
  std::shared_ptr<FeedCache> feed_cache_;
};

// What a route handler sees.
struct RouteContext {
  Api* api;
  const HttpRequest* request;
  const Route* route = nullptr;
  std::vector<std::string> params;  // the {placeholders}, in order, percent-decoded
  std::optional<Caller> caller;
  bool waited = false;  // called again after waiting for a position
};

}  // namespace assent::server

#endif  // ASSENT_SERVER_API_H_
