// The server's request and response values. Handlers are pure functions from one to the
// other; only the listener (listener.cc) does I/O, so handlers are tested without sockets.
#ifndef ASSENT_SERVER_HTTP_H_
#define ASSENT_SERVER_HTTP_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace assent::server {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and query, as received
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string remote;  // peer address, for logs

  // The first header of that name (case-insensitive), or "".
  std::string_view Header(std::string_view name) const;
  std::string_view Path() const;   // target without the query
  std::string_view Query() const;  // after '?', or ""
  // The value of a query parameter (not percent-decoded beyond '%XX'), or nullopt.
  bool QueryParam(std::string_view name, std::string* value) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // A problem's detail, as in its body (problem.h), so that one problem can quote another.
  std::string detail;
  // Filled by the handler for the access log.
  std::string route;     // "POST /v1/decisions"
  std::string key_name;  // the API key's name, never the key
};

}  // namespace assent::server

#endif  // ASSENT_SERVER_HTTP_H_
