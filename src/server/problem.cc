// Problem details (RFC 9457): the table of problem types, and the mapping from error codes.
#include "server/problem.h"

#include "common/json_writer.h"

namespace assent::server {
namespace {

struct ProblemInfo {
  int status;
  std::string_view slug, title;
};

ProblemInfo InfoOf(ProblemType type) {
  switch (type) {
    case ProblemType::kInvalidArgument:
      return {422, "invalid-argument", "The request cannot be processed"};
    case ProblemType::kNotFound: return {404, "not-found", "Not found"};
    case ProblemType::kAlreadyExists: return {409, "already-exists", "Already exists"};
    case ProblemType::kFailedPrecondition:
      return {409, "failed-precondition", "Not possible in the current state"};
    case ProblemType::kForbidden: return {403, "forbidden", "Forbidden"};
    case ProblemType::kUnavailable: return {503, "unavailable", "Temporarily unavailable"};
    case ProblemType::kDataLoss: return {500, "data-loss", "Stored data is damaged"};
    case ProblemType::kGone: return {410, "gone", "Gone"};
    case ProblemType::kInternal: return {500, "internal", "Internal error"};
    case ProblemType::kMalformedRequest: return {400, "malformed-request", "Malformed request"};
    case ProblemType::kMalformedHttp: return {400, "malformed-http", "Malformed HTTP request"};
    case ProblemType::kBodyTooLarge: return {413, "body-too-large", "Request body too large"};
    case ProblemType::kTooManyItems: return {413, "too-many-items", "Too many items"};
    case ProblemType::kHeadersTooLarge:
      return {431, "headers-too-large", "Request headers too large"};
    case ProblemType::kTransferCodingNotImplemented:
      return {501, "transfer-coding-not-implemented", "Transfer coding not implemented"};
    case ProblemType::kMethodNotAllowed: return {405, "method-not-allowed", "Method not allowed"};
    case ProblemType::kTermsRefused: return {422, "terms-refused", "The terms do not lint"};
    case ProblemType::kLinkExpired: return {404, "link-expired", "This link cannot be used"};
    case ProblemType::kUnauthenticated:
      return {401, "unauthenticated", "Missing or bad credentials"};
    case ProblemType::kNotYours: return {403, "not-yours", "Forbidden"};
    case ProblemType::kCsrf: return {403, "csrf", "Forbidden"};
    case ProblemType::kGrantNeedsThePerson: return {403, "grant-needs-the-person", "Forbidden"};
    case ProblemType::kSlowConsumer:
      return {503, "slow-consumer", "The subscriber did not keep up with the feed"};
  }
  return {500, "internal", "Internal error"};
}

}  // namespace

std::vector<ProblemTypeInfo> ProblemTypes() {
  std::vector<ProblemTypeInfo> out;
  for (int t = static_cast<int>(ProblemType::kInvalidArgument);
       t <= static_cast<int>(ProblemType::kSlowConsumer); ++t) {
    const ProblemInfo info = InfoOf(static_cast<ProblemType>(t));
    out.push_back({"https://assent.dev/problems/" + std::string(info.slug), info.status,
                   std::string(info.title)});
  }
  return out;
}

HttpResponse Problem(ProblemType type, std::string_view detail) {
  const ProblemInfo info = InfoOf(type);
  JsonWriter w;
  w.BeginObject();
  w.Key("type").String("https://assent.dev/problems/" + std::string(info.slug));
  w.Key("title").String(info.title);
  w.Key("status").Int(info.status);
  w.Key("detail").String(detail);
  w.EndObject();
  HttpResponse r;
  r.status = info.status;
  r.content_type = "application/problem+json";
  r.body = w.Take();
  r.detail = std::string(detail);
  if (type == ProblemType::kUnavailable) r.headers.emplace_back("Retry-After", "1");
  if (type == ProblemType::kUnauthenticated) r.headers.emplace_back("WWW-Authenticate", "Bearer");
  return r;
}

HttpResponse ProblemFor(const Error& e) {
  switch (e.code) {
    case ErrorCode::kInvalidArgument: return Problem(ProblemType::kInvalidArgument, e.message);
    case ErrorCode::kNotFound: return Problem(ProblemType::kNotFound, e.message);
    case ErrorCode::kAlreadyExists: return Problem(ProblemType::kAlreadyExists, e.message);
    case ErrorCode::kFailedPrecondition:
      return Problem(ProblemType::kFailedPrecondition, e.message);
    case ErrorCode::kPermissionDenied: return Problem(ProblemType::kForbidden, e.message);
    case ErrorCode::kUnavailable: return Problem(ProblemType::kUnavailable, e.message);
    case ErrorCode::kDataLoss: return Problem(ProblemType::kDataLoss, e.message);
    case ErrorCode::kGone: return Problem(ProblemType::kGone, e.message);
    case ErrorCode::kInternal: return Problem(ProblemType::kInternal, e.message);
  }
  return Problem(ProblemType::kInternal, e.message);
}

HttpResponse BadRequest(std::string_view detail) {
  return Problem(ProblemType::kMalformedRequest, detail);
}

}  // namespace assent::server
