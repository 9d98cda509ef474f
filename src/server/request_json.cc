// Reading requests (request_json.h).
#include "server/request_json.h"

#include <algorithm>
#include <charconv>

#include "common/json_keys.h"
#include "common/strings.h"
#include "server/problem.h"

namespace assent::server {

using simdjson::dom::element;
using simdjson::dom::object;

Error Invalid(std::string message) { return Error{ErrorCode::kInvalidArgument, std::move(message)}; }

HttpResponse Json(std::string body, int status) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}


std::optional<HttpResponse> ParseObject(const HttpRequest& req, Body* b,
                                        const std::vector<std::string>& allowed) {
  if (!ValidUtf8(req.body)) return BadRequest("the body is not valid UTF-8");
  element doc;
  auto err = b->parser.parse(req.body.data(), req.body.size()).get(doc);
  if (err) return BadRequest(std::string("the body is not valid JSON: ") + simdjson::error_message(err));
  if (doc.get_object().get(b->obj) != simdjson::SUCCESS) {
    return BadRequest("the body must be a JSON object");
  }
  return CheckFields(b->obj, allowed);
}

std::optional<HttpResponse> CheckFields(object o, const std::vector<std::string>& allowed) {
  if (auto dup = DuplicateKey(o)) {
    return BadRequest("the field \"" + std::string(*dup) + "\" appears twice: give it once");
  }
  for (auto field : o) {
    std::string_view k = field.key;
    if (std::find(allowed.begin(), allowed.end(), k) == allowed.end()) {
      return BadRequest("unknown field \"" + std::string(k) + "\"" + DidYouMeanSuffix(k, allowed));
    }
  }
  return std::nullopt;
}

std::optional<HttpResponse> GetString(object o, const char* key, std::string* out, bool required) {
  element v;
  if (o[key].get(v) != simdjson::SUCCESS) {
    if (required) return BadRequest(std::string("missing \"") + key + "\"");
    return std::nullopt;
  }
  std::string_view s;
  if (v.get_string().get(s) != simdjson::SUCCESS) {
    return BadRequest(std::string("\"") + key + "\" must be a string");
  }
  *out = std::string(s);
  return std::nullopt;
}

std::optional<HttpResponse> GetStrings(object o, const char* key, std::vector<std::string>* out,
                                       bool required) {
  element v;
  if (o[key].get(v) != simdjson::SUCCESS) {
    if (required) return BadRequest(std::string("missing \"") + key + "\"");
    return std::nullopt;
  }
  simdjson::dom::array a;
  if (v.get_array().get(a) != simdjson::SUCCESS) {
    return BadRequest(std::string("\"") + key + "\" must be an array of strings");
  }
  for (element e : a) {
    std::string_view s;
    if (e.get_string().get(s) != simdjson::SUCCESS) {
      return BadRequest(std::string("\"") + key + "\" must be an array of strings");
    }
    out->emplace_back(s);
  }
  return std::nullopt;
}

std::optional<HttpResponse> GetU64(object o, const char* key, uint64_t* out) {
  element v;
  if (o[key].get(v) != simdjson::SUCCESS) return std::nullopt;
  if (v.get_uint64().get(*out) != simdjson::SUCCESS) {
    return BadRequest(std::string("\"") + key + "\" must be a non-negative integer");
  }
  return std::nullopt;
}

bool QueryU64(const HttpRequest& req, const char* name, uint64_t* out) {
  std::string s;
  if (!req.QueryParam(name, &s)) return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && ptr == s.data() + s.size() && !s.empty();
}


const std::vector<std::string> kDecisionFields = {"category", "purpose", "subjects", "account",
                                                   "at",       "min_position"};

std::optional<HttpResponse> ReadQuestion(object o, Question* q) {
  if (auto p = CheckFields(o, kDecisionFields)) return p;
  if (auto p = GetString(o, "category", &q->category, true)) return p;
  if (auto p = GetString(o, "purpose", &q->purpose, true)) return p;
  if (auto p = GetStrings(o, "subjects", &q->subjects, false)) return p;
  element acc;
  if (o["account"].get(acc) == simdjson::SUCCESS && !acc.is_null()) {
    if (auto p = GetString(o, "account", &q->account, true)) return p;
    q->has_account = true;
  }
  std::string at;
  if (auto p = GetString(o, "at", &at, false)) return p;
  if (!at.empty()) {
    auto t = ParseTime(at);
    if (!t) return ProblemFor(t.error());
    q->at = *t;
  }
  if (auto p = GetU64(o, "min_position", &q->min_position)) return p;
  for (const auto& s : q->subjects) q->subject_views.push_back(s);
  return std::nullopt;
}

DecisionRequest ToRequest(const Question& q) {
  DecisionRequest r;
  r.category = q.category;
  r.purpose = q.purpose;
  r.subjects = q.subject_views;
  if (q.has_account) r.account = q.account;
  r.at = q.at;
  return r;
}

}  // namespace assent::server
