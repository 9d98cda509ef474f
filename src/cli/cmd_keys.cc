// `keys create|list|revoke`: API keys for the HTTP API (the ledger stores only their SHA-256).
#include <fmt/core.h>

#include <iostream>

#include "cli/commands.h"

namespace assent::cli {
namespace {

struct KeyOptions {
  std::string data = "./assent-data";
  std::string role, name;
};

int CreateKey(const KeyOptions& o) {
  auto role = ParseRole(o.role);
  if (!role) {
    return Fail("--role must be operator, service, auditor or portal, not '" + o.role + "'");
  }
  auto ledger = OpenLedger(o.data, false);
  if (!ledger) return Fail(ledger.error());
  auto secret = (*ledger)->CreateKey(*role, o.name.empty() ? o.role : o.name);
  if (!secret) return Fail(secret.error());
  std::cout << *secret << "\n";
  std::cerr << "assent: the key is shown only now; only its SHA-256 is stored.\n";
  return 0;
}

int ListKeys(const KeyOptions& o) {
  auto ledger = OpenLedger(o.data, true);
  if (!ledger) return Fail(ledger.error());
  if ((*ledger)->Keys().empty()) {
    std::cout << "no keys (create one: assent keys create --role service --name NAME)\n";
    return 0;
  }
  for (const auto& k : (*ledger)->Keys()) {
    std::cout << fmt::format("{:<24} {:<9} created {} (position {}){}\n", k.name, RoleName(k.role),
                             k.created_at ? FormatTime(k.created_at) : "?", k.position,
                             k.revoked ? "  (revoked)" : "");
  }
  return 0;
}

int RevokeKey(const KeyOptions& o) {
  auto ledger = OpenLedger(o.data, false);
  if (!ledger) return Fail(ledger.error());
  if (auto st = (*ledger)->RevokeKey(o.name); !st) return Fail(st.error());
  std::cout << "revoked " << o.name << "\n";
  return 0;
}

}  // namespace

void RegisterKeyCommands(CLI::App& app, int* exit_code) {
  CLI::App* keys = app.add_subcommand("keys", "API keys for the HTTP API (stored hashed)");
  keys->require_subcommand(1);
  auto c = std::make_shared<KeyOptions>();
  auto* create = keys->add_subcommand("create", "Create a key and print its secret once");
  AddDataOption(create, &c->data);
  create->add_option("--role", c->role, "operator | service | auditor | portal")->required();
  create->add_option("--name", c->name, "A name to list and revoke it by (default: the role)");
  create->callback([c, exit_code] { *exit_code = CreateKey(*c); });
  auto l = std::make_shared<KeyOptions>();
  auto* list = keys->add_subcommand("list", "List keys (names and roles, never secrets)");
  AddDataOption(list, &l->data);
  list->callback([l, exit_code] { *exit_code = ListKeys(*l); });
  auto r = std::make_shared<KeyOptions>();
  auto* revoke = keys->add_subcommand("revoke", "Revoke a key by name");
  AddDataOption(revoke, &r->data);
  revoke->add_option("NAME", r->name, "The key's name")->required();
  revoke->callback([r, exit_code] { *exit_code = RevokeKey(*r); });
}

}  // namespace assent::cli
