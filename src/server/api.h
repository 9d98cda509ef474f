// The HTTP API under /v1 (DESIGN.md "Interfaces"): routing, authentication by API key and
// role, request parsing and the JSON answers. Pure request -> response over a Ledger; the
// listener does the I/O.
//
// Thread safety: Handle may be called from many threads at once.
#ifndef ASSENT_SERVER_API_H_
#define ASSENT_SERVER_API_H_

#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "assent/ledger.h"
#include "server/listener.h"
#include "server/metrics.h"

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

// A person's or an account admin's browser session, minted by a service through a one-time
// link and carried by an HttpOnly, SameSite=Strict cookie; changes need its CSRF token.
struct WebSession {
  PartyKind kind = PartyKind::kSubject;
  std::string party;
  std::string csrf;
  Timestamp expires = 0;
  // The API key that minted the sign-in link ("key:NAME"), or "demo" for serve --demo's
  // links: every event recorded through the session names it.
  std::string minted_by;
};

// Sign-in links and sessions as signed, self-contained tokens (sessions.cc): every node given
// the same key (derived from the ledger's signing key, which every node of a ledger shares)
// accepts the links and sessions any of them minted, so signing in works behind a load
// balancer and survives a restart. A token is hex of
//   type(1: 'L' link | 'S' session) kind(1) expires(8, big-endian µs) nonce(16)
//   len(minted_by)(2) minted_by party
// followed by hex of its HMAC-SHA-256 under the key; the CSRF token of a session is derived from
// it (HMAC of "csrf" + token). A redeemed link and an ended session are recorded in the ledger
// (Ledger::SpendToken: a token entry naming the SHA-256 of the nonce), so a link works once
// and a logout holds on every node; a session is checked after catching up with the shared
// store, so a logout on one node is seen by the next request on any other.
// Thread-safe.
class Sessions {
 public:
  static constexpr Duration kLinkLifetime = 10 * 60 * kMicrosPerSecond;
  static constexpr Duration kSessionLifetime = 60 * 60 * kMicrosPerSecond;
  // With a random key: tokens work on this process only until SetKey.
  explicit Sessions(Ledger* ledger);
  void SetKey(const std::array<uint8_t, 32>& key);
  // A one-time link token for the party, valid for kLinkLifetime.
  std::string MintLink(PartyKind kind, std::string party, Timestamp now,
                       std::string minted_by = "demo");
  // Exchanges a link token (once, across every node) for a session id. kNotFound when forged,
  // used or expired; the ledger's error (kUnavailable, ...) when it could not be recorded.
  Result<std::string> Redeem(const std::string& token, Timestamp now);
  std::optional<WebSession> Find(const std::string& session_id, Timestamp now);
  // Ends a session (logout) on every node. kNotFound when it was not a live session; the
  // ledger's error when the end could not be recorded (the session then still works).
  Status End(const std::string& session_id, Timestamp now);

 private:
  std::string Sign(char type, const WebSession& s) const;
  // The token's claims and, in `*id`, the hex SHA-256 of its nonce (what the ledger records).
  std::optional<WebSession> Open(char type, const std::string& token, Timestamp now,
                                 std::string* id) const;
  Ledger* ledger_;
  mutable std::mutex mu_;
  std::array<uint8_t, 32> key_{};
  bool keyed_ = false;  // no randomness for the key and none set: no token is valid
};

struct Caller {
  std::string key_name;  // the API key's name, or "session"
  Role role = Role::kService;
  std::optional<WebSession> session;  // set for browser sessions instead of a key
  std::string session_id;             // the session's token (for logout), when a session
};

struct RouteContext;

struct Route {
  std::string method;
  std::string pattern;  // "/v1/terms/{version}"
  unsigned roles;
  std::string summary;
  HttpResponse (*handle)(RouteContext& ctx);
  // Whether the route appends to the ledger (what a node whose audit has not passed refuses):
  // every POST and DELETE but decisions (reads asked with a body) and minting sign-in links,
  // and redeeming a link (a GET, since it is followed from an e-mail, that records the use).
  bool writes() const {
    if (pattern == "/session/{token}") return true;
    return (method == "POST" || method == "DELETE") && !pattern.starts_with("/v1/decisions") &&
           pattern != "/v1/sessions";
  }
};

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

 private:
  // The route a request is for, with its caller authenticated into `ctx`; nullptr with
  // `*denied` set otherwise.
  const Route* Admission(const HttpRequest& req, RouteContext* ctx, size_t* route_index,
                         HttpResponse* denied);
  // The caller of a non-public route, or nullopt with `*denied` set (401 or 403).
  std::optional<Caller> Authenticate(const HttpRequest& req, const Route& route,
                                     const std::vector<std::string>& params,
                                     HttpResponse* denied);
  Ledger* ledger_;
  std::ostream* access_log_;
  audit::Auditor* auditor_;
  std::atomic<bool> ready_{true};
  mutable std::mutex audit_check_mu_;
  AuditCheck audit_check_ = AuditCheck::kNotRun;
  std::string audit_check_detail_;
  Metrics metrics_;
  Sessions sessions_;
};

// What a route handler sees.
struct RouteContext {
  Api* api;
  const HttpRequest* request;
  std::vector<std::string> params;  // the {placeholders}, in order, percent-decoded
  std::optional<Caller> caller;
  bool waited = false;
  uint64_t wait_for = 0;  // set by a handler that needs the ledger at a position first
};

}  // namespace assent::server

#endif  // ASSENT_SERVER_API_H_
