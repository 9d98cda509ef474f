// `datasets list|show`, `models register`, `impact`: what was trained on whose data.
#include <fmt/core.h>

#include <algorithm>
#include <iostream>

#include "cli/commands.h"
#include "common/json_writer.h"
#include <unistd.h>

#include <thread>

#include "filter/filter.h"
#include "filter/impact.h"
#include "filter/snapshot.h"
#include "ledger/lineage.h"

namespace assent::cli {
namespace {

struct LineageCommand {
  std::string data = "./assent-data", name, subject, account, purpose, in;
  std::vector<std::string> datasets;
  bool json = false;
};

int ListDatasets(const LineageCommand& o) {
  auto ledger = OpenLedger(o.data, true);
  if (!ledger) return Fail(ledger.error());
  (*ledger)->WithLineage([&](const Lineage& l) {
    if (o.json) {
      JsonWriter w;
      w.BeginArray();
      for (const auto& d : l.datasets) {
        w.BeginObject().Key("name").String(d.name).Key("purpose").String(d.purpose);
        w.Key("terms").String(d.terms).Key("ledger_position").UInt(d.ledger_position);
        w.Key("position").UInt(d.position).Key("recorded_at").String(FormatTime(d.recorded_at));
        w.Key("items").UInt(d.items).Key("subjects").UInt(d.subjects.cardinality());
        w.Key("accounts").UInt(d.accounts.cardinality());
        w.Key("input_sha256").String(d.input_sha256).Key("output_sha256").String(d.output_sha256);
        w.EndObject();
      }
      w.EndArray();
      std::cout << w.Take() << "\n";
      return;
    }
    if (l.datasets.empty()) std::cout << "no datasets (record one: assent filter ... --dataset NAME)\n";
    for (const auto& d : l.datasets) {
      std::cout << fmt::format("{:<24} {:<28} {:>9} items {:>7} subjects  position {}\n", d.name,
                               d.purpose, d.items, d.subjects.cardinality(), d.position);
    }
  });
  return 0;
}

int ListModels(const LineageCommand& o) {
  auto ledger = OpenLedger(o.data, true);
  if (!ledger) return Fail(ledger.error());
  (*ledger)->WithLineage([&](const Lineage& l) {
    if (l.models.empty()) std::cout << "no models (record one: assent models register NAME --dataset D)\n";
    for (const auto& m : l.models) {
      std::string datasets;
      for (const auto& d : m.datasets) datasets += (datasets.empty() ? "" : ", ") + d;
      std::cout << fmt::format("{:<24} trained on {}  (position {})\n", m.name, datasets, m.position);
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

// How many parties were erased: their events no longer resolve, so a dataset built before
// can no longer be re-derived exactly.
uint64_t Erasures(const Ledger& ledger) {
  uint64_t n = 0;
  (void)ledger.ScanEntries(0, [&](uint64_t, std::string_view kind, std::string_view,
                                  std::string_view) -> Status {
    n += kind == "erasure";
    return OkStatus();
  });
  return n;
}

// Re-runs the gate on MANIFEST at the dataset's recorded position, purpose and time; exit 0
// only when the input and the kept output hash as recorded.
int VerifyDataset(const LineageCommand& o) {
  auto ledger = OpenLedger(o.data, true);
  if (!ledger) return Fail(ledger.error());
  std::optional<DatasetInfo> d;
  (*ledger)->WithLineage([&](const Lineage& l) {
    if (const DatasetInfo* found = l.FindDataset(o.name)) d = *found;
  });
  if (!d) return Fail("no dataset named '" + o.name + "'");
  if (d->input_sha256.empty() || d->output_sha256.empty()) {
    return Fail("dataset '" + o.name + "' was recorded without input and output hashes: "
                "there is nothing to verify against");
  }
  // The manifest's hash begins while the ledger is rebuilt at the dataset's position.
  const int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::unique_ptr<InputHashAhead> ahead;
  if (threads >= 2) ahead = InputHashAhead::Start(o.in);
  auto engine = EngineAt(**ledger, d->ledger_position);
  if (!engine) return Fail(engine.error());
  char tmp[] = "/tmp/assent-verify-XXXXXX";
  const int fd = ::mkstemp(tmp);
  if (fd < 0) return Fail("cannot create a temporary file in /tmp");
  ::close(fd);
  FilterOptions f;
  f.purpose = d->purpose;
  f.in_path = o.in;
  f.out_path = tmp;
  f.at = d->recorded_at;
  f.threads = threads;
  f.hash_ahead = ahead.get();
  auto r = RunFilter(*(*engine)->snapshot(), d->recorded_at, f);
  std::remove(tmp);
  if (!r) return Fail(r.error());
  std::cout << fmt::format("dataset {}: re-derived at ledger position {} for {}\n", d->name,
                           d->ledger_position, d->purpose);
  if (r->input_sha256 != d->input_sha256) {
    std::cout << "FAIL the manifest is not the one the dataset was built from (input sha256 "
              << r->input_sha256 << ", recorded " << d->input_sha256 << ")\n";
    return 1;
  }
  if (r->output_sha256 != d->output_sha256 || r->kept != d->items) {
    std::cout << fmt::format("FAIL the gate keeps {} items hashing {}; the dataset recorded {} "
                             "hashing {}\n", r->kept, r->output_sha256, d->items, d->output_sha256);
    if (const uint64_t erased = Erasures(**ledger)) {
      std::cout << fmt::format("  {} part{} erased since: their events no longer resolve, so "
                               "the difference may be theirs\n", erased, erased == 1 ? "y was" : "ies were");
    }
    return 1;
  }
  std::cout << "ok: the same manifest gives the same " << r->kept << " kept items\n";
  return 0;
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
  list->add_flag("--json", l->json, "Print as JSON");
  list->callback([l, exit_code] { *exit_code = ListDatasets(*l); });
  auto s = std::make_shared<LineageCommand>();
  auto* show = datasets->add_subcommand("show", "One dataset");
  show->add_option("NAME", s->name, "The dataset, as filter --dataset named it")->required();
  AddDataOption(show, &s->data);
  show->callback([s, exit_code] { *exit_code = ShowDataset(*s); });
  auto v = std::make_shared<LineageCommand>();
  auto* verify = datasets->add_subcommand(
      "verify", "Re-run the gate on a manifest at the dataset's recorded position: exit 0 when "
                "the input and the kept items hash as recorded, 1 when not");
  verify->add_option("NAME", v->name, "The dataset")->required();
  verify->add_option("--in", v->in, "The manifest it was built from")->required();
  AddDataOption(verify, &v->data);
  verify->callback([v, exit_code] { *exit_code = VerifyDataset(*v); });

  CLI::App* models = app.add_subcommand("models", "Models trained on recorded datasets");
  models->require_subcommand(1);
  auto m = std::make_shared<LineageCommand>();
  auto* reg = models->add_subcommand("register", "Record a model and the datasets it was trained on");
  reg->add_option("NAME", m->name, "The model's name (a new one)")->required();
  reg->add_option("--dataset", m->datasets, "A dataset it was trained on; repeatable")->required();
  AddDataOption(reg, &m->data);
  reg->callback([m, exit_code] { *exit_code = RegisterModel(*m); });
  auto ml = std::make_shared<LineageCommand>();
  auto* mlist = models->add_subcommand("list", "Every recorded model and its datasets");
  AddDataOption(mlist, &ml->data);
  mlist->callback([ml, exit_code] { *exit_code = ListModels(*ml); });

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
