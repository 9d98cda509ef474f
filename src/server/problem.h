// RFC 9457 problem details: the one place where errors become HTTP statuses. Handlers and the
// listener name a problem (or pass an Error); the status, slug and title come from the table
// in problem.cc.
#ifndef ASSENT_SERVER_PROBLEM_H_
#define ASSENT_SERVER_PROBLEM_H_

#include <string>
#include <string_view>
#include <vector>

#include "assent/result.h"
#include "server/http.h"

namespace assent::server {

// Every problem the server answers with. The body's "type" is
// "https://assent.dev/problems/<slug>" (the slug in problem.cc's table).
enum class ProblemType {
  // From an Error's code (ProblemFor): what the caller should do.
  kInvalidArgument,     // 422
  kNotFound,            // 404
  kAlreadyExists,       // 409
  kFailedPrecondition,  // 409
  kForbidden,           // 403
  kUnavailable,         // 503, with Retry-After
  kDataLoss,            // 500
  kGone,                // 410
  kInternal,            // 500
  // The request itself.
  kMalformedRequest,    // 400: malformed JSON or a body of the wrong shape
  kMalformedHttp,       // 400: not HTTP/1.1 as RFC 9112 has it
  kBodyTooLarge,        // 413
  kTooManyItems,        // 413: a batch over its limit
  kHeadersTooLarge,     // 431
  kTransferCodingNotImplemented,  // 501
  kMethodNotAllowed,    // 405
  kTermsRefused,        // 422: terms that do not lint
  kLinkExpired,         // 404: a sign-in link used, forged or expired
  // Who asks.
  kUnauthenticated,     // 401, with WWW-Authenticate: Bearer
  kNotYours,            // 403: a session touching another party
  kCsrf,                // 403: a change from a session without its CSRF token
  kGrantNeedsThePerson, // 403: a key recording a grant
  // The last line of a change feed.
  kSlowConsumer,        // 503: the subscriber left too much unread; resume from a position
};

HttpResponse Problem(ProblemType type, std::string_view detail);

// Every problem type, for the OpenAPI document: its URI, status and title.
struct ProblemTypeInfo {
  std::string uri;
  int status;
  std::string title;
};
std::vector<ProblemTypeInfo> ProblemTypes();

// An Error as a problem, by its code: invalid_argument 422, not_found 404, already_exists 409,
// failed_precondition 409, permission_denied 403, unavailable 503, data_loss 500, gone 410,
// internal 500.
HttpResponse ProblemFor(const Error& e);

// Malformed JSON or a request of the wrong shape: 400.
HttpResponse BadRequest(std::string_view detail);

}  // namespace assent::server

#endif  // ASSENT_SERVER_PROBLEM_H_
