// `datasets list|show`, `models register`, `impact`: what was trained on whose data.
#include <fmt/core.h>

#include <algorithm>
#include <iostream>

#include "cli/commands.h"
#include "filter/impact.h"
#include "ledger/lineage.h"

namespace assent::cli {
namespace {

struct LineageCommand {
  std::string data = "./assent-data", name, subject, account, purpose;
  std::vector<std::string> datasets;
  bool json = false;
};

int ListDatasets(const LineageCommand& o) {
  auto ledger = OpenLedger(o.data, true);
  if (!ledger) return Fail(ledger.error());
  (*ledger)->WithLineage([](const Lineage& l) {
    for (const auto& d : l.datasets) {
      std::cout << fmt::format("{:<24} {:<28} {:>9} items {:>7} subjects  position {}\n", d.name,
                               d.purpose, d.items, d.subjects.cardinality(), d.position);
    }
  });
  return 0;
}

void PrintDataset(const Lineage& l, const DatasetInfo& d) {
  std::cout << fmt::format(
      "dataset {}\n  purpose {}\n  terms {}\n  decided at ledger position {}\n  recorded at "
      "position {} ({})\n  items {}\n  subjects {}\n  accounts {}\n  input sha256 {}\n  "
      "output sha256 {}\n",
      d.name, d.purpose, d.terms, d.ledger_position, d.position, FormatTime(d.recorded_at),
      d.items, d.subjects.cardinality(), d.accounts.cardinality(), d.input_sha256,
      d.output_sha256);
  for (const auto& sh : d.shards) {
    std::cout << fmt::format("  shard {} ({} items, {} subjects)\n", sh.file, sh.items,
                             sh.subjects.cardinality());
  }
  for (const auto& m : l.models) {
    if (std::find(m.datasets.begin(), m.datasets.end(), d.name) != m.datasets.end()) {
      std::cout << "  trained model " << m.name << "\n";
    }
  }
}

int ShowDataset(const LineageCommand& o) {
  auto ledger = OpenLedger(o.data, true);
  if (!ledger) return Fail(ledger.error());
  bool found = false;
  (*ledger)->WithLineage([&](const Lineage& l) {
    if (const DatasetInfo* d = l.FindDataset(o.name)) {
      found = true;
      PrintDataset(l, *d);
    }
  });
  return found ? 0 : Fail("no dataset named '" + o.name + "'");
}

int RegisterModel(const LineageCommand& o) {
  auto ledger = OpenExistingLedger(o.data);
  if (!ledger) return Fail(ledger.error());
  auto pos = (*ledger)->RegisterModel(o.name, o.datasets);
  if (!pos) return Fail(pos.error());
  std::cout << "recorded model " << o.name << " at ledger position " << *pos << "\n";
  return 0;
}

int Impact(const LineageCommand& o) {
  auto party = PartyFrom(o.subject, o.account);
  if (!party) return Fail(party.error());
  auto ledger = OpenLedger(o.data, true);
  if (!ledger) return Fail(ledger.error());
  std::optional<std::string> p;
  if (!o.purpose.empty()) p = o.purpose;
  std::cout << (o.json ? ImpactJson(**ledger, party->kind, party->id, p) + "\n"
                       : ImpactText(**ledger, party->kind, party->id, p));
  return 0;
}

}  // namespace

void RegisterLineageCommands(CLI::App& app, int* exit_code) {
  CLI::App* datasets = app.add_subcommand("datasets", "Recorded training datasets");
  datasets->require_subcommand(1);
  auto l = std::make_shared<LineageCommand>();
  auto* list = datasets->add_subcommand("list", "Every recorded dataset");
  AddDataOption(list, &l->data);
  list->callback([l, exit_code] { *exit_code = ListDatasets(*l); });
  auto s = std::make_shared<LineageCommand>();
  auto* show = datasets->add_subcommand("show", "One dataset");
  show->add_option("NAME", s->name)->required();
  AddDataOption(show, &s->data);
  show->callback([s, exit_code] { *exit_code = ShowDataset(*s); });

  CLI::App* models = app.add_subcommand("models", "Models trained on recorded datasets");
  models->require_subcommand(1);
  auto m = std::make_shared<LineageCommand>();
  auto* reg = models->add_subcommand("register", "Record a model and the datasets it was trained on");
  reg->add_option("NAME", m->name)->required();
  reg->add_option("--dataset", m->datasets, "A dataset it was trained on; repeatable")->required();
  AddDataOption(reg, &m->data);
  reg->callback([m, exit_code] { *exit_code = RegisterModel(*m); });

  auto i = std::make_shared<LineageCommand>();
  auto* impact = app.add_subcommand(
      "impact", "Datasets, shards and models holding a party's data, before or after a withdrawal");
  impact->add_option("--subject", i->subject, "The person");
  impact->add_option("--account", i->account, "The account");
  impact->add_option("--purpose", i->purpose, "Only datasets for this purpose");
  AddDataOption(impact, &i->data);
  impact->add_flag("--json", i->json, "Print as JSON");
  impact->callback([i, exit_code] { *exit_code = Impact(*i); });
}

}  // namespace assent::cli
