// Authentication: the one place a caller is recognised — a live API key and its role, or a
// browser session (its cookie, the party it is for, and its CSRF token on changes).
#include "common/sha256.h"
#include "server/api.h"
#include "server/problem.h"

namespace assent::server {
namespace {

// The assent_session cookie's value, or "".
std::string SessionCookie(std::string_view cookies) {
  std::string sid;
  for (size_t at = 0; at < cookies.size();) {
    size_t end = cookies.find(';', at);
    std::string_view c = cookies.substr(at, end == std::string_view::npos ? end : end - at);
    while (!c.empty() && c.front() == ' ') c.remove_prefix(1);
    if (c.starts_with("assent_session=")) sid = std::string(c.substr(15));
    if (end == std::string_view::npos) break;
    at = end + 1;
  }
  return sid;
}

}  // namespace

std::string Caller::actor() const {
  if (const auto* s = session()) return "session minted by " + s->session.minted_by;
  return "key:" + key()->name;
}

std::string Caller::log_name() const { return session() ? "session" : key()->name; }

std::expected<Caller, HttpResponse> Api::Authenticate(const HttpRequest& req, const Route& route,
                                                      const std::vector<std::string>& params) {
  const std::string route_name = route.method + " " + route.pattern;
  std::string_view auth = req.Header("Authorization");
  if (auth.starts_with("Bearer ")) {
    std::optional<ApiKey> key = ledger_->Authenticate(auth.substr(7));
    if (!key) {
      return std::unexpected(
          Problem(ProblemType::kUnauthenticated, "the API key is unknown or revoked"));
    }
    if (!(route.roles & (1u << static_cast<unsigned>(key->role)))) {
      HttpResponse denied = Problem(ProblemType::kForbidden, "role " +
                                                                 std::string(RoleName(key->role)) +
                                                                 " may not " + route_name);
      denied.key_name = key->name;
      return std::unexpected(std::move(denied));
    }
    return Caller{KeyCaller{key->name, key->role}};
  }
  const std::string sid = SessionCookie(req.Header("Cookie"));
  std::optional<WebSession> session;
  if (!sid.empty()) session = sessions_.Find(sid, ledger_->engine().Now());
  if (!session) {
    return std::unexpected(Problem(ProblemType::kUnauthenticated,
                                   "send Authorization: Bearer <key> with a live API key (assent "
                                   "keys create), or sign in through a session link"));
  }
  const bool person = session->kind == PartyKind::kSubject;
  if (!(route.roles & (person ? kPerson : kAccountAdmin))) {
    return std::unexpected(Problem(ProblemType::kForbidden, "a session may not " + route_name));
  }
  if (route.party != RouteParty::kNone &&
      ((route.party == RouteParty::kSubject) != person || params.empty() ||
       params[0] != session->party)) {
    return std::unexpected(Problem(ProblemType::kNotYours,
                                   "a session reads and changes only its own " +
                                       std::string(person ? "subject" : "account")));
  }
  if (req.method != "GET" && req.method != "HEAD" &&
      Sha256(req.Header("X-CSRF-Token")) != Sha256(session->csrf)) {  // no early exit on a prefix
    return std::unexpected(Problem(ProblemType::kCsrf, "a change from a session needs its "
                                                       "X-CSRF-Token header (GET /v1/session)"));
  }
  return Caller{SessionCaller{std::move(*session), sid}};
}

}  // namespace assent::server
