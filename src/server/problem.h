// RFC 9457 problem details: the one place where errors become HTTP statuses.
#ifndef ASSENT_SERVER_PROBLEM_H_
#define ASSENT_SERVER_PROBLEM_H_

#include <string>
#include <string_view>

#include "assent/result.h"
#include "server/http.h"

namespace assent::server {

// A problem+json response. `type` is a stable slug: the body's "type" is
// "https://assent.dev/problems/<type>".
HttpResponse Problem(int status, std::string_view type, std::string_view title,
                     std::string_view detail);

// An Error as a problem, with the status chosen by its code (what the caller should do):
// invalid_argument 422, not_found 404, already_exists 409, failed_precondition 409,
// permission_denied 403, unavailable 503, data_loss 500, internal 500.
HttpResponse ProblemFor(const Error& e);

// Malformed JSON or a request of the wrong shape: 400.
HttpResponse BadRequest(std::string_view detail);

}  // namespace assent::server

#endif  // ASSENT_SERVER_PROBLEM_H_
