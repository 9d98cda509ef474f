// The settings and admin pages and their assets, served from the binary with a strict
// Content-Security-Policy (no inline script, nothing from another origin).
#ifndef ASSENT_SERVER_PAGES_H_
#define ASSENT_SERVER_PAGES_H_

#include "server/api.h"
#include "server/http.h"

namespace assent::server {

HttpResponse SettingsPage(RouteContext& ctx);
HttpResponse AdminPage(RouteContext& ctx);
HttpResponse Asset(RouteContext& ctx);

}  // namespace assent::server

#endif  // ASSENT_SERVER_PAGES_H_
