// Reading requests: JSON bodies (one object, known fields, each given once) and query
// parameters. Each helper answers a 400 problem naming what is wrong, or nullopt when the
// value was read.
#ifndef ASSENT_SERVER_REQUEST_JSON_H_
#define ASSENT_SERVER_REQUEST_JSON_H_

#include <simdjson.h>

#include <optional>
#include <string>
#include <vector>

#include "assent/decision.h"
#include "assent/result.h"
#include "server/http.h"

namespace assent::server {

// A JSON answer.
HttpResponse Json(std::string body, int status = 200);
// An invalid-argument error (422 once a problem).
Error Invalid(std::string message);

// A parsed request body: the parser owns what `obj` points into.
struct Body {
  simdjson::dom::parser parser;
  simdjson::dom::object obj;
};
// Parses the body into an object whose fields are all in `allowed`.
std::optional<HttpResponse> ParseObject(const HttpRequest& req, Body* b,
                                        const std::vector<std::string>& allowed);
// Refuses a repeated field or one not in `allowed` (with a did-you-mean).
std::optional<HttpResponse> CheckFields(simdjson::dom::object o,
                                        const std::vector<std::string>& allowed);
std::optional<HttpResponse> GetString(simdjson::dom::object o, const char* key, std::string* out,
                                      bool required);
std::optional<HttpResponse> GetStrings(simdjson::dom::object o, const char* key,
                                       std::vector<std::string>* out, bool required);
// An optional non-negative integer field.
std::optional<HttpResponse> GetU64(simdjson::dom::object o, const char* key, uint64_t* out);
// ?name=N as a non-negative integer: false when absent or malformed.
bool QueryU64(const HttpRequest& req, const char* name, uint64_t* out);

// A decision question read from one JSON object (POST /v1/decisions, one batch item).
struct Question {
  std::string category, purpose, account;
  bool has_account = false;
  std::vector<std::string> subjects;
  std::vector<std::string_view> subject_views;
  std::optional<Timestamp> at;
  uint64_t min_position = 0;
};
// The fields a question may have.
extern const std::vector<std::string> kDecisionFields;
std::optional<HttpResponse> ReadQuestion(simdjson::dom::object o, Question* q);
// REQUIRES: `q` outlives the request (it views q's strings).
DecisionRequest ToRequest(const Question& q);

}  // namespace assent::server

#endif  // ASSENT_SERVER_REQUEST_JSON_H_
