// Fuzz target: the API request handler in process — a request's method, path, headers and
// body against an in-memory ledger with the example terms and a key of every role. Input:
// "METHOD TARGET\n", then "Name: value\n" lines up to an empty line, then the body; the
// words ROLE_operator, ROLE_service, ROLE_auditor, ROLE_portal in a header value stand for
// those keys. Properties: never a 500 (an internal error is a bug), never a crash.
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "assent/ledger.h"
#include "server/api.h"

namespace {

struct World {
  std::unique_ptr<assent::Ledger> ledger;
  std::unique_ptr<assent::server::Api> api;
  std::map<std::string, std::string> keys;
};

World& TheWorld() {
  static World* w = [] {
    auto* world = new World;
    assent::LedgerOptions o;
    o.in_memory = true;
    auto l = assent::Ledger::Open(o);
    if (!l) std::abort();
    world->ledger = std::move(*l);
    std::ifstream in(std::string(ASSENT_SOURCE_DIR) +
                     "/examples/terms/example-meetings-2023-08-11.yaml");
    std::stringstream ss;
    ss << in.rdbuf();
    if (!world->ledger->PublishTerms(ss.str(), "v3", {.backfill = true})) std::abort();
    for (auto role : {assent::Role::kOperator, assent::Role::kService, assent::Role::kAuditor,
                      assent::Role::kPortal}) {
      auto key = world->ledger->CreateKey(role, "fuzz-" + std::string(assent::RoleName(role)));
      if (!key) std::abort();
      world->keys["ROLE_" + std::string(assent::RoleName(role))] = *key;
    }
    world->api = std::make_unique<assent::server::Api>(world->ledger.get());
    return world;
  }();
  return *w;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  World& w = TheWorld();
  std::string_view text(reinterpret_cast<const char*>(data), size);
  assent::server::HttpRequest req;
  size_t nl = text.find('\n');
  std::string_view first = text.substr(0, nl);
  const size_t space = first.find(' ');
  if (space == std::string_view::npos) return 0;
  req.method = std::string(first.substr(0, space));
  req.target = std::string(first.substr(space + 1));
  text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
  while (!text.empty()) {
    nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (line.empty()) break;
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string value(line.substr(colon + 1));
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    for (const auto& [word, key] : w.keys) {
      for (size_t at; (at = value.find(word)) != std::string::npos;) value.replace(at, word.size(), key);
    }
    req.headers.emplace_back(std::string(line.substr(0, colon)), value);
  }
  req.body = std::string(text);
  if (auto denied = w.api->Admit(req)) {
    if (denied->status >= 500) std::abort();
    return 0;
  }
  auto result = w.api->Handle(req, false);
  if (result.wait_for_position) result = w.api->Handle(req, true);
  if (result.response.status >= 500 && result.response.status != 503) std::abort();
  return 0;
}
