// `assent filter`: keep the manifest items that may be used for a purpose.
#include <fmt/core.h>
#include <unistd.h>

#include <fstream>
#include <thread>
#include <iostream>

#include "cli/commands.h"
#include "filter/filter.h"
#include "filter/impact.h"
#include "filter/snapshot.h"
#include "ledger/lineage.h"

namespace assent::cli {

void RegisterFilterCommand(CLI::App& app, int* exit_code) {
  struct Options {
    std::string data = "./assent-data", at, dataset, snapshot;
    FilterOptions f;
  };
  auto o = std::make_shared<Options>();
  o->f.threads = 0;  // one per core unless --threads
  auto* cmd = app.add_subcommand(
      "filter", "Keep the manifest items allowed for a purpose, byte for byte, with a report");
  cmd->add_option("--data", o->data, "Data directory of the embedded ledger")
      ->capture_default_str();
  cmd->add_option("--purpose", o->f.purpose, "The purpose, e.g. ai_training.first_party")
      ->required();
  cmd->add_option("--in", o->f.in_path, "Manifest: JSON Lines of items")->required();
  cmd->add_option("--out", o->f.out_path, "Where the kept lines go (written only on success)")
      ->required();
  cmd->add_option("--at", o->at, "Decide as of this time (RFC 3339); default now");
  cmd->add_option("--report", o->f.report_path,
                  "Write the report as JSON to this file (renamed into place with the outputs)");
  cmd->add_option("--snapshot", o->snapshot,
                  "Decide from a snapshot file (assent snapshot) instead of the ledger");
  cmd->add_option("--dataset", o->dataset,
                  "Record the result in the ledger as a dataset with this name");
  cmd->add_option("--shards", o->f.shards, "Write N shard files OUT.00-of-N..., by subject");
  cmd->add_option("--threads", o->f.threads, "Threads parsing and deciding (default: one per core)");
  cmd->add_flag("--skip-malformed", o->f.skip_malformed,
                "Count malformed lines (never kept) instead of failing");
  cmd->add_option("--id-field", o->f.id_field, "Field holding the item id")->capture_default_str();
  cmd->add_option("--category-field", o->f.category_field, "Field holding the category")
      ->capture_default_str();
  cmd->add_option("--account-field", o->f.account_field, "Field holding the account")
      ->capture_default_str();
  cmd->add_option("--subjects-field", o->f.subjects_field, "Field holding the subjects")
      ->capture_default_str();
  cmd->callback([o, cmd, exit_code] {
    *exit_code = 2;
    if (cmd->count("--shards") && o->f.shards < 1) {
      PrintError("--shards must be 1-4096 (leave it out for one output file)");
      return;
    }
    if (!o->at.empty()) {
      auto at = ParseTime(o->at);
      if (!at) {
        PrintError("--at: " + at.error().message);
        return;
      }
      o->f.at = *at;
    }
    o->f.collect_parties = !o->dataset.empty();
    if (o->f.threads <= 0) o->f.threads = std::max(1u, std::thread::hardware_concurrency());
    // The ledger: to decide from (unless a snapshot is given) and to record the dataset in.
    std::unique_ptr<Ledger> ledger;
    if (o->snapshot.empty() || !o->dataset.empty()) {
      auto l = o->dataset.empty() ? OpenLedger(o->data, true) : OpenExistingLedger(o->data);
      if (!l) {
        PrintError(l.error().message);
        return;
      }
      ledger = std::move(*l);
    }
    std::unique_ptr<Engine> from_snapshot;
    SnapshotInfo snapshot_info;
    if (!o->snapshot.empty()) {
      auto e = LoadSnapshot(o->snapshot, &snapshot_info);
      if (!e) {
        PrintError(e.error().message);
        return;
      }
      from_snapshot = std::move(*e);
      if (ledger) {  // recording a dataset from it: it must be this ledger's, at or before the head
        uint64_t behind = 0;
        if (auto st = CheckSnapshotFor(*ledger, snapshot_info, &behind); !st) {
          PrintError(st.error().message);
          return;
        }
        if (behind > 0) {
          std::cerr << fmt::format(
              "note: the snapshot is at ledger position {}, {} entries behind this ledger ({}): "
              "choices recorded since are not reflected in this dataset\n",
              snapshot_info.position, behind, ledger->position());
        }
      }
    }
    Engine& engine = from_snapshot ? *from_snapshot : ledger->engine();
    if (::isatty(2)) {
      auto start = std::chrono::steady_clock::now();
      o->f.progress = [start](uint64_t done, uint64_t total) {
        double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        std::cerr << fmt::format("\r{:5.1f}%  {:.1f} MB/s ", total ? 100.0 * done / total : 100.0,
                                 secs > 0 ? done / 1e6 / secs : 0.0)
                  << std::flush;
      };
    }
    if (!o->dataset.empty()) {
      bool taken = false;
      ledger->WithLineage([&](const Lineage& l) { taken = l.FindDataset(o->dataset); });
      if (taken) {
        PrintError("a dataset named '" + o->dataset + "' is recorded already; choose another name");
        return;
      }
    }
    auto snap = engine.snapshot();
    auto r = RunFilter(*snap, engine.Now(), o->f);
    if (o->f.progress) std::cerr << "\n";
    if (!r) {
      PrintError(r.error().message + " (nothing was written to " + o->f.out_path + ")");
      return;
    }
    std::cerr << r->Summary();
    if (!o->dataset.empty()) {
      DatasetRegistration d;
      d.name = o->dataset;
      d.purpose = o->f.purpose;
      d.terms = r->terms;
      d.ledger_position = r->position;
      d.input_sha256 = r->input_sha256;
      d.output_sha256 = r->output_sha256;
      d.snapshot_sha256 = snapshot_info.sha256;
      d.items = r->kept;
      d.subjects = std::move(r->subjects);
      d.accounts = std::move(r->accounts);
      for (auto& sh : r->shards) d.shards.push_back({sh.file, sh.items, std::move(sh.subjects)});
      auto pos = ledger->RegisterDataset(d);
      if (!pos) {
        PrintError("the output was written but the dataset was not recorded: " +
                   pos.error().message);
        return;
      }
      std::cerr << fmt::format("recorded dataset {} at ledger position {} ({} subjects)\n",
                               o->dataset, *pos, d.subjects.size());
    }
    *exit_code = 0;
  });

  // snapshot
  {
    auto sdata = std::make_shared<std::string>("./assent-data");
    auto out = std::make_shared<std::string>();
    auto at = std::make_shared<std::string>();
    auto* snap = app.add_subcommand(
        "snapshot", "Write the terms and consent state at one position to a content-hashed file");
    snap->add_option("--data", *sdata, "Data directory")->capture_default_str();
    snap->add_option("--out", *out, "The snapshot file")->required();
    snap->add_option("--at", *at, "The state as of this time (RFC 3339); default now");
    snap->callback([sdata, out, at, exit_code] {
      *exit_code = 2;
      auto ledger = OpenLedger(*sdata, true);
      if (!ledger) {
        PrintError(ledger.error().message);
        return;
      }
      uint64_t position = 0;
      if (!at->empty()) {
        auto t = ParseTime(*at);
        if (!t) {
          PrintError("--at: " + t.error().message);
          return;
        }
        position = (*ledger)->engine().snapshot()->PositionAt(*t);
        if (position == 0) {
          PrintError("no consent event at or before " + *at + ": nothing to snapshot");
          return;
        }
      }
      auto info = WriteSnapshot(**ledger, position, *out);
      if (!info) {
        PrintError(info.error().message);
        return;
      }
      std::cout << fmt::format("snapshot {} at ledger position {}: {} consent events, sha256 {}\n",
                               *out, info->position, info->events, info->sha256);
      *exit_code = 0;
    });
  }

  // datasets list|show, models register|list, impact
  auto data = std::make_shared<std::string>("./assent-data");
  auto json = std::make_shared<bool>(false);
  CLI::App* datasets = app.add_subcommand("datasets", "Recorded training datasets");
  datasets->require_subcommand(1);
  auto* list = datasets->add_subcommand("list", "Every recorded dataset");
  list->add_option("--data", *data, "Data directory")->capture_default_str();
  list->callback([data, exit_code] {
    auto ledger = OpenLedger(*data, true);
    if (!ledger) {
      PrintError(ledger.error().message);
      *exit_code = 2;
      return;
    }
    (*ledger)->WithLineage([](const Lineage& l) {
      for (const auto& d : l.datasets) {
        std::cout << fmt::format("{:<24} {:<28} {:>9} items {:>7} subjects  position {}\n",
                                 d.name, d.purpose, d.items, d.subjects.cardinality(), d.position);
      }
    });
    *exit_code = 0;
  });
  auto name = std::make_shared<std::string>();
  auto* show = datasets->add_subcommand("show", "One dataset");
  show->add_option("NAME", *name)->required();
  show->add_option("--data", *data, "Data directory")->capture_default_str();
  show->callback([data, name, exit_code] {
    auto ledger = OpenLedger(*data, true);
    if (!ledger) {
      PrintError(ledger.error().message);
      *exit_code = 2;
      return;
    }
    bool found = false;
    (*ledger)->WithLineage([&](const Lineage& l) {
      const DatasetInfo* d = l.FindDataset(*name);
      if (!d) return;
      found = true;
      std::cout << fmt::format(
          "dataset {}\n  purpose {}\n  terms {}\n  decided at ledger position {}\n  recorded at "
          "position {} ({})\n  items {}\n  subjects {}\n  accounts {}\n  input sha256 {}\n  "
          "output sha256 {}\n",
          d->name, d->purpose, d->terms, d->ledger_position, d->position,
          FormatTime(d->recorded_at), d->items, d->subjects.cardinality(),
          d->accounts.cardinality(), d->input_sha256, d->output_sha256);
      for (const auto& sh : d->shards) {
        std::cout << fmt::format("  shard {} ({} items, {} subjects)\n", sh.file, sh.items,
                                 sh.subjects.cardinality());
      }
      for (const auto& m : l.models) {
        if (std::find(m.datasets.begin(), m.datasets.end(), d->name) != m.datasets.end()) {
          std::cout << "  trained model " << m.name << "\n";
        }
      }
    });
    if (!found) PrintError("no dataset named '" + *name + "'");
    *exit_code = found ? 0 : 2;
  });

  CLI::App* models = app.add_subcommand("models", "Models trained on recorded datasets");
  models->require_subcommand(1);
  auto model = std::make_shared<std::string>();
  auto model_datasets = std::make_shared<std::vector<std::string>>();
  auto* reg = models->add_subcommand("register", "Record a model and the datasets it was trained on");
  reg->add_option("NAME", *model)->required();
  reg->add_option("--dataset", *model_datasets, "A dataset it was trained on; repeatable")->required();
  reg->add_option("--data", *data, "Data directory")->capture_default_str();
  reg->callback([data, model, model_datasets, exit_code] {
    auto ledger = OpenExistingLedger(*data);
    if (!ledger) {
      PrintError(ledger.error().message);
      *exit_code = 2;
      return;
    }
    auto pos = (*ledger)->RegisterModel(*model, *model_datasets);
    if (!pos) {
      PrintError(pos.error().message);
      *exit_code = 2;
      return;
    }
    std::cout << "recorded model " << *model << " at ledger position " << *pos << "\n";
    *exit_code = 0;
  });

  auto subject = std::make_shared<std::string>(), account = std::make_shared<std::string>(),
       purpose = std::make_shared<std::string>();
  auto* impact = app.add_subcommand(
      "impact", "Datasets, shards and models holding a party's data, before or after a withdrawal");
  impact->add_option("--subject", *subject, "The person");
  impact->add_option("--account", *account, "The account");
  impact->add_option("--purpose", *purpose, "Only datasets for this purpose");
  impact->add_option("--data", *data, "Data directory")->capture_default_str();
  impact->add_flag("--json", *json, "Print as JSON");
  impact->callback([data, subject, account, purpose, json, exit_code] {
    *exit_code = 2;
    if (subject->empty() == account->empty()) {
      PrintError("give exactly one of --subject or --account");
      return;
    }
    auto ledger = OpenLedger(*data, true);
    if (!ledger) {
      PrintError(ledger.error().message);
      return;
    }
    PartyKind kind = subject->empty() ? PartyKind::kAccount : PartyKind::kSubject;
    const std::string& id = subject->empty() ? *account : *subject;
    std::optional<std::string> p;
    if (!purpose->empty()) p = *purpose;
    std::cout << (*json ? ImpactJson(**ledger, kind, id, p) + "\n"
                        : ImpactText(**ledger, kind, id, p));
    *exit_code = 0;
  });
}

}  // namespace assent::cli
