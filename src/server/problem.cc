// Problem details (RFC 9457) and the mapping from error codes to statuses.
#include "server/problem.h"

#include "common/json_writer.h"

namespace assent::server {

HttpResponse Problem(int status, std::string_view type, std::string_view title,
                     std::string_view detail) {
  JsonWriter w;
  w.BeginObject();
  w.Key("type").String("https://assent.dev/problems/" + std::string(type));
  w.Key("title").String(title);
  w.Key("status").Int(status);
  w.Key("detail").String(detail);
  w.EndObject();
  HttpResponse r;
  r.status = status;
  r.content_type = "application/problem+json";
  r.body = w.Take();
  return r;
}

HttpResponse ProblemFor(const Error& e) {
  switch (e.code) {
    case ErrorCode::kInvalidArgument:
      return Problem(422, "invalid-argument", "The request cannot be processed", e.message);
    case ErrorCode::kNotFound:
      return Problem(404, "not-found", "Not found", e.message);
    case ErrorCode::kAlreadyExists:
      return Problem(409, "already-exists", "Already exists", e.message);
    case ErrorCode::kFailedPrecondition:
      return Problem(409, "failed-precondition", "Not possible in the current state", e.message);
    case ErrorCode::kPermissionDenied:
      return Problem(403, "forbidden", "Forbidden", e.message);
    case ErrorCode::kUnavailable: {
      HttpResponse r = Problem(503, "unavailable", "Temporarily unavailable", e.message);
      r.headers.emplace_back("Retry-After", "1");
      return r;
    }
    case ErrorCode::kDataLoss:
      return Problem(500, "data-loss", "Stored data is damaged", e.message);
    case ErrorCode::kGone:
      return Problem(410, "gone", "Gone", e.message);
    case ErrorCode::kInternal:
      return Problem(500, "internal", "Internal error", e.message);
  }
  return Problem(500, "internal", "Internal error", e.message);
}

HttpResponse BadRequest(std::string_view detail) {
  return Problem(400, "malformed-request", "Malformed request", detail);
}

}  // namespace assent::server
