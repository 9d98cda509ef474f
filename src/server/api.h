// The HTTP API under /v1 (DESIGN.md "Interfaces"): routing, authentication by API key and
// role, request parsing and the JSON answers. Pure request -> response over a Ledger; the
// listener does the I/O.
//
// Thread safety: Handle may be called from many threads at once.
#ifndef ASSENT_SERVER_API_H_
#define ASSENT_SERVER_API_H_

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "assent/ledger.h"
#include "server/listener.h"
#include "server/metrics.h"

namespace assent::server {

// Who may call a route: a bitmask of roles; kPublic needs no key.
enum RoleMask : unsigned {
  kPublic = 0,
  kOperator = 1u << 0,
  kService = 1u << 1,
  kAuditor = 1u << 2,
  kAnyRole = kOperator | kService | kAuditor,
};

struct Caller {
  std::string key_name;
  Role role = Role::kService;
};

struct RouteContext;

struct Route {
  std::string method;
  std::string pattern;  // "/v1/terms/{version}"
  unsigned roles;
  std::string summary;
  HttpResponse (*handle)(RouteContext& ctx);
};

class Api : public Handler {
 public:
  explicit Api(Ledger* ledger, std::ostream* access_log = nullptr);

  HandlerResult Handle(const HttpRequest& request, bool waited) override;
  uint64_t AppliedPosition() const override;
  void Log(const HttpRequest& request, const HttpResponse& response, double ms) override;

  // Every route; the OpenAPI document is generated from this table.
  static const std::vector<Route>& Routes();
  static std::string OpenApiJson();

  void set_ready(bool ready) { ready_ = ready; }
  Ledger& ledger() { return *ledger_; }
  Metrics& metrics() { return metrics_; }

 private:
  Ledger* ledger_;
  std::ostream* access_log_;
  std::atomic<bool> ready_{true};
  Metrics metrics_;
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
