// The OpenAPI 3.1 document, generated from the route table.
#include <algorithm>

#include "common/json_writer.h"
#include "server/api.h"

namespace assent::server {

std::string Api::OpenApiJson() {
  JsonWriter w;
  w.BeginObject();
  w.Key("openapi").String("3.1.0");
  w.Key("info").BeginObject().Key("title").String("Assent API").Key("version").String("1");
  w.Key("description").String("Consent-gated data use: decisions, consents, terms, ledger.");
  w.EndObject();
  w.Key("components").BeginObject().Key("securitySchemes").BeginObject();
  w.Key("bearer").BeginObject().Key("type").String("http").Key("scheme").String("bearer");
  w.EndObject().EndObject().EndObject();
  w.Key("paths").BeginObject();
  const auto& routes = Routes();
  std::vector<std::string> seen;
  for (const auto& r : routes) {
    if (std::find(seen.begin(), seen.end(), r.pattern) != seen.end()) continue;
    seen.push_back(r.pattern);
    w.Key(r.pattern).BeginObject();
    for (const auto& m : routes) {
      if (m.pattern != r.pattern) continue;
      std::string method = m.method;
      std::transform(method.begin(), method.end(), method.begin(), ::tolower);
      w.Key(method).BeginObject();
      w.Key("summary").String(m.summary);
      if (m.roles != kPublic) {
        w.Key("security").BeginArray().BeginObject().Key("bearer").BeginArray().EndArray();
        w.EndObject().EndArray();
        std::string roles;
        for (auto [bit, name] : {std::pair{kOperator, "operator"}, {kService, "service"},
                                 {kAuditor, "auditor"}, {kPortal, "portal"}}) {
          if (m.roles & bit) roles += (roles.empty() ? "" : ", ") + std::string(name);
        }
        w.Key("description").String("Roles: " + roles + ".");
      }
      std::vector<std::string> params;
      for (size_t at = 0; (at = m.pattern.find('{', at)) != std::string::npos; ++at) {
        params.push_back(m.pattern.substr(at + 1, m.pattern.find('}', at) - at - 1));
      }
      if (!params.empty()) {
        w.Key("parameters").BeginArray();
        for (const auto& p : params) {
          w.BeginObject().Key("name").String(p).Key("in").String("path");
          w.Key("required").Bool(true).Key("schema").BeginObject().Key("type").String("string");
          w.EndObject().EndObject();
        }
        w.EndArray();
      }
      w.Key("responses").BeginObject().Key("default").BeginObject();
      w.Key("description").String("JSON, or application/problem+json on error");
      w.EndObject().EndObject();
      w.EndObject();
    }
    w.EndObject();
  }
  w.EndObject();
  w.EndObject();
  return w.Take();
}

}  // namespace assent::server
