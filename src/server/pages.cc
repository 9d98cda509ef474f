// Serving the embedded pages with security headers.
#include "server/pages.h"

#include "server/problem.h"
#include "server/web_assets.h"

namespace assent::server {
namespace {

constexpr const char* kCsp =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

HttpResponse Serve(std::string_view name) {
  for (const auto& a : WebAssets()) {
    if (a.name != name) continue;
    HttpResponse r;
    r.body = std::string(a.content);
    if (name.ends_with(".html")) {
      r.content_type = "text/html; charset=utf-8";
    } else if (name.ends_with(".css")) {
      r.content_type = "text/css; charset=utf-8";
    } else if (name.ends_with(".js")) {
      r.content_type = "text/javascript; charset=utf-8";
    } else if (name.ends_with(".svg")) {
      r.content_type = "image/svg+xml";
    } else {
      r.content_type = "application/octet-stream";
    }
    r.headers.emplace_back("Content-Security-Policy", kCsp);
    r.headers.emplace_back("X-Content-Type-Options", "nosniff");
    r.headers.emplace_back("Referrer-Policy", "no-referrer");
    r.headers.emplace_back("X-Frame-Options", "DENY");
    r.headers.emplace_back("Cache-Control", "no-cache");
    return r;
  }
  return Problem(ProblemType::kNotFound, "no asset '" + std::string(name) + "'");
}

}  // namespace

HandlerOutcome SettingsPage(RouteContext&) { return Serve("settings.html"); }
HandlerOutcome AdminPage(RouteContext&) { return Serve("admin.html"); }

HandlerOutcome Asset(RouteContext& ctx) {
  const std::string& file = ctx.params[0];
  if (file.ends_with(".html")) return Problem(ProblemType::kNotFound, "no such asset");
  return Serve(file);
}

}  // namespace assent::server
