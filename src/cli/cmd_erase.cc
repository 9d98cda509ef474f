// `subject erase ID` / `account erase ID`: crypto-shredding, after showing what held the
// party's data (the retraining the erasure obliges).
#include <fmt/core.h>

#include <iostream>

#include "cli/commands.h"

namespace assent::cli {
namespace {

struct EraseOptions {
  PartyKind kind = PartyKind::kSubject;
  std::string data = "./assent-data";
  std::string id;
  bool yes = false;
};

std::string List(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& x : v) out += (out.empty() ? "" : ", ") + x;
  return v.empty() ? std::string("none") : out;
}

// Exit 1 when the ledger knows no such party (a finding), 2 for errors.
int ExitFor(const Error& e) {
  PrintError(e.message);
  return e.code == ErrorCode::kNotFound ? 1 : 2;
}

int Erase(const EraseOptions& o) {
  const std::string name(PartyKindName(o.kind));
  auto ledger = o.yes ? OpenExistingLedger(o.data) : OpenLedger(o.data, true);
  if (!ledger) return Fail(ledger.error());
  // First what the erasure obliges: every recorded dataset, shard and model holding its data.
  auto impact = (*ledger)->ErasureImpact(o.kind, o.id);
  if (!impact) return ExitFor(impact.error());
  std::cout << fmt::format("{} '{}' is held in\n  datasets: {}\n  shards:   {}\n  models:   {}\n",
                           name, o.id, List(impact->datasets), List(impact->shards),
                           List(impact->models));
  if (!o.yes) {
    return Fail("erasing " + name + " '" + o.id + "' cannot be undone: retrain what is listed "
                "above without it, and add --yes to confirm");
  }
  const size_t events = (*ledger)->engine().snapshot()->EventsOf(o.kind, o.id).size();
  auto pseudonym = (*ledger)->PseudonymOf(o.kind, o.id);
  auto position = (*ledger)->EraseParty(o.kind, o.id);
  if (!position) return ExitFor(position.error());
  std::cout << fmt::format(
      "erased {} '{}': {} consent event(s) under pseudonym {} can no longer be linked to it; "
      "it is on the suppression list (decisions naming it: erased); the erasure and the "
      "retraining it obliges are recorded at position {}\n",
      name, o.id, events, pseudonym ? *pseudonym : "?", *position);
  return 0;
}

}  // namespace

void RegisterEraseCommands(CLI::App& app, int* exit_code) {
  for (PartyKind kind : {PartyKind::kSubject, PartyKind::kAccount}) {
    const std::string name(PartyKindName(kind));
    CLI::App* group = app.add_subcommand(
        name, std::string(kind == PartyKind::kAccount ? "Erase an " : "Erase a ") + name +
                  " (crypto-shredding)");
    group->require_subcommand(1);
    auto o = std::make_shared<EraseOptions>();
    o->kind = kind;
    auto* erase = group->add_subcommand(
        "erase", "Delete the " + name + "'s pseudonym secret and plain id: its ledger entries stay "
                 "(the audit log still verifies) but can no longer be linked to it; it joins the "
                 "suppression list, so no decision allows its data again (except necessary "
                 "uses). Without --yes, shows what held its data. Cannot be undone.");
    AddDataOption(erase, &o->data);
    erase->add_option("ID", o->id, "The " + name + "'s id")->required();
    erase->add_flag("--yes", o->yes, "Confirm: erasure cannot be undone");
    erase->callback([o, exit_code] { *exit_code = Erase(*o); });
  }
}

}  // namespace assent::cli
