// The settings and admin pages and their assets, served from the binary with a strict
// Content-Security-Policy (no inline script, nothing from another origin).
#ifndef ASSENT_SERVER_PAGES_H_
#define ASSENT_SERVER_PAGES_H_

#include "server/api.h"
#include "server/http.h"

namespace assent::server {

HandlerOutcome SettingsPage(RouteContext& ctx);
HandlerOutcome AdminPage(RouteContext& ctx);
HandlerOutcome Asset(RouteContext& ctx);

}  // namespace assent::server

#endif  // ASSENT_SERVER_PAGES_H_
