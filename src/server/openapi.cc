// The OpenAPI 3.1 document: the route table (paths, methods, roles, path parameters) joined
// with src/server/openapi_spec.json (JSON Schemas of every body and answer, query parameters),
// and the problem types of problem.cc. test/api_contract_test.py checks every answer the
// server tests receive against it.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>

#include "server/api.h"
#include "server/problem.h"

namespace assent::server {

extern const char kOpenApiSpec[];  // generated from openapi_spec.json

namespace {

using Json = nlohmann::ordered_json;

std::string Ref(const std::string& schema) { return "#/components/schemas/" + schema; }

// "json" stands for application/json in the spec's answers.
Json Content(const Json& answer) {
  Json content = Json::object();
  for (const auto& [media, schema] : answer.items()) {
    if (media == "description" || media == "none") continue;
    content[media == "json" ? "application/json" : media] = {{"schema", schema}};
  }
  return content;
}

std::string RolesText(unsigned roles) {
  std::string out;
  for (auto [bit, name] : {std::pair{kOperator, "operator"}, {kService, "service"},
                           {kAuditor, "auditor"}, {kPortal, "portal"}, {kPerson, "person session"},
                           {kAccountAdmin, "account-admin session"}}) {
    if (roles & bit) out += (out.empty() ? "" : ", ") + std::string(name);
  }
  return out;
}

// The problems a route may answer, by status, beside its own answers.
std::vector<int> ErrorStatuses(const Route& r, const Json& spec) {
  const bool body = spec.contains("body") || spec.contains("yaml_body") || spec.contains("body_any");
  const bool params = r.pattern.find('{') != std::string::npos;
  std::vector<int> out = {400};
  if (r.roles != kPublic) out.insert(out.end(), {401, 403});
  if (params) out.push_back(404);
  if (r.writes()) out.push_back(409);
  if (r.pattern.starts_with("/v1/subjects/{id}") || r.pattern.starts_with("/v1/accounts/{id}")) {
    out.push_back(410);  // an erased party
  }
  if (body) out.push_back(413);
  if (body || params || spec.contains("query")) out.push_back(422);
  out.insert(out.end(), {500, 503});
  return out;
}

Json Operation(const Route& r, const Json& spec, const std::map<int, std::string>& problems) {
  Json op = {{"summary", r.summary}, {"operationId", r.method + " " + r.pattern}};
  if (r.roles != kPublic) {
    op["description"] = "Roles: " + RolesText(r.roles) + ".";
    op["security"] = Json::array({{{"bearer", Json::array()}}, {{"session", Json::array()}}});
  }
  Json params = Json::array();
  for (size_t at = 0; (at = r.pattern.find('{', at)) != std::string::npos; ++at) {
    const std::string name = r.pattern.substr(at + 1, r.pattern.find('}', at) - at - 1);
    params.push_back({{"name", name}, {"in", "path"}, {"required", true},
                      {"schema", {{"type", name == "position" ? "integer" : "string"}}}});
  }
  for (const auto& q : spec.value("query", Json::array())) {
    Json p = q;
    p["in"] = "query";
    params.push_back(p);
  }
  if (spec.value("idempotency", false)) {
    params.push_back({{"name", "Idempotency-Key"}, {"in", "header"}, {"required", false},
                      {"description", "A retry with the same key returns the first answer"},
                      {"schema", {{"type", "string"}, {"minLength", 1}, {"maxLength", 255}}}});
  }
  if (!params.empty()) op["parameters"] = params;
  if (spec.contains("body")) {
    Json content = {{"application/json", {{"schema", {{"$ref", Ref(spec["body"])}}}}}};
    if (spec.contains("ndjson_body")) {
      content["application/x-ndjson"] = {{"schema", {{"$ref", Ref(spec["ndjson_body"])}}}};
    }
    op["requestBody"] = {{"required", true}, {"content", content}};
  } else if (spec.value("yaml_body", false)) {
    op["requestBody"] = {{"required", true},
                         {"content", {{"application/yaml", {{"schema", {{"type", "string"}}}}}}}};
  } else if (spec.value("body_any", false)) {
    op["requestBody"] = {{"required", false},
                         {"content", {{"application/json", {{"schema", {{"type", "object"}}}}}}}};
  }
  Json responses = Json::object();
  for (const auto& [status, answer] : spec.at("responses").items()) {
    Json resp = {{"description", answer.value("description", "Success")}};
    Json content = Content(answer);
    if (!content.empty()) resp["content"] = content;
    responses[status] = resp;
  }
  for (int status : ErrorStatuses(r, spec)) {
    const std::string key = std::to_string(status);
    if (responses.contains(key)) continue;
    auto it = problems.find(status);
    responses[key] = {{"description", it == problems.end() ? "A problem" : it->second},
                      {"content", {{"application/problem+json",
                                    {{"schema", {{"$ref", Ref("Problem")}}}}}}}};
  }
  responses["default"] = {{"description", "Any other problem (RFC 9457)"},
                          {"content", {{"application/problem+json",
                                        {{"schema", {{"$ref", Ref("Problem")}}}}}}}};
  op["responses"] = responses;
  return op;
}

std::string Build() {
  const Json spec = Json::parse(kOpenApiSpec);
  Json doc = {{"openapi", "3.1.0"},
              {"info", {{"title", "Assent API"}, {"version", "1"},
                        {"description", "Consent-gated data use: decisions, consents, terms, "
                                        "ledger, lineage and audit. Errors are RFC 9457 problems "
                                        "(x-problem-types lists every type)."}}}};
  Json schemas = spec.at("schemas");
  // The problem types, from the one table that makes them.
  std::map<int, std::string> by_status;
  Json types = Json::array(), uris = Json::array();
  for (const auto& t : ProblemTypes()) {
    types.push_back({{"type", t.uri}, {"status", t.status}, {"title", t.title}});
    uris.push_back(t.uri);
    std::string& text = by_status[t.status];
    text += (text.empty() ? "Problem: " : ", ") + t.uri.substr(t.uri.rfind('/') + 1);
  }
  schemas["Problem"]["properties"]["type"]["enum"] = uris;
  doc["components"] = {
      {"securitySchemes",
       {{"bearer", {{"type", "http"}, {"scheme", "bearer"}, {"description", "An API key"}}},
        {"session", {{"type", "apiKey"}, {"in", "cookie"}, {"name", "assent_session"},
                     {"description", "A person's or account admin's session (changes also need "
                                     "the X-CSRF-Token header)"}}}}},
      {"schemas", schemas}};
  doc["x-problem-types"] = types;
  Json paths = Json::object();
  const Json& ops = spec.at("operations");
  for (const auto& r : Api::Routes()) {
    std::string method = r.method;
    std::transform(method.begin(), method.end(), method.begin(), ::tolower);
    const std::string key = r.method + " " + r.pattern;
    const Json& op_spec = ops.contains(key) ? ops.at(key) : Json{{"responses", {{"200", {{"description", "Undocumented"}}}}}};
    paths[r.pattern][method] = Operation(r, op_spec, by_status);
  }
  doc["paths"] = paths;
  return doc.dump();
}

}  // namespace

std::string Api::OpenApiJson() {
  static const std::string doc = Build();
  return doc;
}

}  // namespace assent::server
