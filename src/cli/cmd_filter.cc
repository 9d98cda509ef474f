// `assent filter`: keep the manifest items that may be used for a purpose; `assent snapshot`:
// the state to filter from elsewhere.
#include <fmt/core.h>
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <thread>

#include "cli/commands.h"
#include "filter/filter.h"
#include "filter/snapshot.h"
#include "ledger/lineage.h"

namespace assent::cli {
namespace {

struct FilterCommand {
  std::string data = "./assent-data", at, dataset, snapshot;
  uint64_t position = 0;  // --position: decide at this ledger position
  bool shards_given = false;
  FilterOptions f;
};

// What the filter decides from: a snapshot, or the ledger (also needed to record a dataset).
struct Source {
  std::unique_ptr<Ledger> ledger;
  std::unique_ptr<Engine> snapshot;
  SnapshotInfo info;
  Engine& engine() { return snapshot ? *snapshot : ledger->engine(); }
};

Result<Source> OpenSource(const FilterCommand& o) {
  Source s;
  if (o.position && !o.snapshot.empty()) {
    return InvalidArgumentError("give --position or --snapshot, not both");
  }
  if (o.snapshot.empty() || !o.dataset.empty()) {
    // --threads 1 holds for opening the ledger too.
    ASSENT_ASSIGN_OR_RETURN(s.ledger, o.dataset.empty()
                                          ? OpenLedger(o.data, true, o.f.threads)
                                          : OpenExistingLedger(o.data, o.f.threads));
  }
  if (o.position) {  // the state at that position, built from the ledger
    ASSENT_ASSIGN_OR_RETURN(s.snapshot, EngineAt(*s.ledger, o.position));
    return s;
  }
  if (o.snapshot.empty()) return s;
  ASSENT_ASSIGN_OR_RETURN(s.snapshot, LoadSnapshot(o.snapshot, &s.info));
  if (!s.ledger) return s;
  // Recording a dataset from it: it must be this ledger's, at or before the head.
  uint64_t behind = 0;
  ASSENT_RETURN_IF_ERROR(CheckSnapshotFor(*s.ledger, s.info, &behind));
  if (behind > 0) {
    std::cerr << fmt::format(
        "note: the snapshot is at ledger position {}, {} entries behind this ledger ({}): "
        "choices recorded since are not reflected in this dataset\n",
        s.info.position, behind, s.ledger->position());
  }
  return s;
}

Status RecordDataset(const FilterCommand& o, Source& source, FilterReport& r) {
  DatasetRegistration d;
  d.name = o.dataset;
  d.purpose = o.f.purpose;
  d.terms = r.terms;
  d.ledger_position = r.position;
  d.input_sha256 = r.input_sha256;
  d.output_sha256 = r.output_sha256;
  d.snapshot_sha256 = source.info.sha256;
  d.items = r.kept;
  d.subjects = std::move(r.subjects);
  d.accounts = std::move(r.accounts);
  for (auto& sh : r.shards) d.shards.push_back({sh.file, sh.items, std::move(sh.subjects)});
  auto pos = source.ledger->RegisterDataset(d);
  if (!pos) {
    return MakeError(pos.error().code, "the output was written but the dataset was not "
                                       "recorded: " + pos.error().message);
  }
  std::cerr << fmt::format("recorded dataset {} at ledger position {} ({} subjects)\n", o.dataset,
                           *pos, d.subjects.size());
  return OkStatus();
}

void ShowProgress(FilterOptions* f) {
  if (!::isatty(2) || f->out_path == "-") return;
  auto start = std::chrono::steady_clock::now();
  f->progress = [start](uint64_t done, uint64_t total) {
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cerr << fmt::format("\r{:5.1f}%  {:.1f} MB/s ", total ? 100.0 * done / total : 100.0,
                             secs > 0 ? done / 1e6 / secs : 0.0)
              << std::flush;
  };
}

int Filter(FilterCommand& o) {
  if (o.shards_given && o.f.shards < 1) {
    return Fail("--shards must be 1-4096 (leave it out for one output file)");
  }
  if (o.f.threads < 0) return Fail("--threads must be 1-256, or 0 for one per core (the default)");
  if (!o.at.empty()) {
    auto at = ParseTime(o.at);
    if (!at) return Fail("--at: " + at.error().message);
    o.f.at = *at;
  }
  o.f.collect_parties = !o.dataset.empty();
  // A dataset's record names its files by their hashes: they are on the disk before it is made.
  o.f.durable = !o.dataset.empty();
  // The hashes are in the report and what a dataset records; a run that shows neither does not
  // read every byte a second time for them.
  o.f.hash = !o.dataset.empty() || !o.f.report_path.empty() || o.f.out_path == "-";
  if (o.f.threads <= 0) o.f.threads = std::max(1u, std::thread::hardware_concurrency());
  // The input's hash begins while the ledger opens (a second thread only when one is allowed).
  std::unique_ptr<InputHashAhead> ahead;
  if (o.f.threads >= 2 && o.f.hash) ahead = InputHashAhead::Start(o.f.in_path);
  o.f.hash_ahead = ahead.get();
  auto source = OpenSource(o);
  if (!source) return Fail(source.error());
  if (!o.dataset.empty()) {
    bool taken = false;
    source->ledger->WithLineage([&](const Lineage& l) { taken = l.FindDataset(o.dataset); });
    if (taken) {
      return Fail("a dataset named '" + o.dataset + "' is recorded already; choose another name");
    }
  }
  ShowProgress(&o.f);
  Engine& engine = source->engine();
  auto r = RunFilter(*engine.snapshot(), engine.Now(), o.f);
  if (o.f.progress) std::cerr << "\n";
  if (!r && r.error().message.starts_with(kOutputsInPlace)) return Fail(r.error().message);
  if (!r) return Fail(r.error().message + " (nothing was written to " + o.f.out_path + ")");
  std::cerr << r->Summary();
  // Writing the kept lines to standard output: the report, when not in a file, goes to stderr.
  if (o.f.out_path == "-" && o.f.report_path.empty()) std::cerr << r->ToJson() << "\n";
  if (!o.dataset.empty()) {
    if (auto st = RecordDataset(o, *source, *r); !st) return Fail(st.error());
    return 0;
  }
  // Only read from, an embedded ledger has nothing to finish: the process ends next, and its
  // memory — the whole consent state, a few milliseconds of freeing at 10k events, seconds at
  // millions — goes back with it at once rather than object by object (as compilers do with
  // theirs). A PostgreSQL ledger is closed as usual: its server hears the session end.
  if (Globals().database.empty()) {
    static Source* const kept_until_exit = new Source(std::move(*source));
    (void)kept_until_exit;
  }
  return 0;
}

struct SnapshotCommand {
  std::string data = "./assent-data", out, at;
  uint64_t position = 0;
};

int Snapshot(const SnapshotCommand& o) {
  auto ledger = OpenLedger(o.data, true);
  if (!ledger) return Fail(ledger.error());
  uint64_t position = o.position;
  if (position && !o.at.empty()) return Fail("give --at or --position, not both");
  if (!o.at.empty()) {
    auto t = ParseTime(o.at);
    if (!t) return Fail("--at: " + t.error().message);
    position = (*ledger)->engine().snapshot()->PositionAt(*t);
    if (position == 0) return Fail("no consent event at or before " + o.at + ": nothing to snapshot");
  }
  auto info = WriteSnapshot(**ledger, position, o.out);
  if (!info) return Fail(info.error());
  std::cout << fmt::format("snapshot {} at ledger position {}: {} consent events, sha256 {}\n",
                           o.out, info->position, info->events, info->sha256);
  return 0;
}

void RegisterSnapshot(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<SnapshotCommand>();
  auto* snap = app.add_subcommand(
      "snapshot", "Write the terms and consent state at one position to a content-hashed file");
  AddDataOption(snap, &o->data);
  snap->add_option("--out", o->out, "The snapshot file")->required();
  snap->add_option("--at", o->at, "The state as of this time (RFC 3339); default now");
  snap->add_option("--position", o->position, "The state at this ledger position");
  snap->callback([o, exit_code] { *exit_code = Snapshot(*o); });
}

}  // namespace

void RegisterFilterCommand(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<FilterCommand>();
  o->f.threads = 0;  // one per core unless --threads
  auto* cmd = app.add_subcommand(
      "filter", "Keep the manifest items allowed for a purpose, byte for byte, with a report");
  AddDataOption(cmd, &o->data);
  cmd->add_option("--purpose", o->f.purpose, "The purpose, e.g. ai_training.first_party")
      ->required();
  cmd->add_option("--in", o->f.in_path, "Manifest: JSON Lines of items")->required();
  cmd->add_option("--out", o->f.out_path, "Where the kept lines go (written only on success)")
      ->required();
  cmd->add_option("--at", o->at, "Decide as of this time (RFC 3339); default now");
  cmd->add_option("--position", o->position,
                  "Decide on the ledger as it was at this position (re-deriving a dataset)");
  cmd->add_option("--report", o->f.report_path,
                  "Write the report as JSON, with the input's and output's SHA-256, to this file "
                  "(renamed into place with the outputs)");
  cmd->add_option("--snapshot", o->snapshot,
                  "Decide from a snapshot file (assent snapshot) instead of the ledger");
  cmd->add_option("--dataset", o->dataset,
                  "Record the result in the ledger as a dataset with this name");
  cmd->add_option("--shards", o->f.shards, "Write N shard files OUT.00-of-N..., by subject");
  cmd->add_option("--threads", o->f.threads,
                  "Threads the run takes, reading, hashing, parsing, deciding and writing "
                  "(default, or 0: one per core; 1 runs everything on one)");
  cmd->add_flag("--skip-malformed", o->f.skip_malformed,
                "Count malformed lines (never kept) instead of failing");
  cmd->add_option("--id-field", o->f.id_field, "Field holding the item id")->capture_default_str();
  cmd->add_option("--category-field", o->f.category_field, "Field holding the category")
      ->capture_default_str();
  cmd->add_option("--account-field", o->f.account_field, "Field holding the account")
      ->capture_default_str();
  cmd->add_option("--subjects-field", o->f.subjects_field, "Field holding the subjects")
      ->capture_default_str();
  cmd->add_option("--content-usage-field", o->f.content_usage_field,
                  "Field holding an IETF AIPREF Content-Usage value (train-ai=n opts out); "
                  "'' to ignore")
      ->capture_default_str();
  cmd->add_option("--content-signal-field", o->f.content_signal_field,
                  "Field holding a Content-Signal value (ai-train=no opts out); '' to ignore")
      ->capture_default_str();
  cmd->add_option("--tdm-field", o->f.tdm_field,
                  "Field holding W3C TDMRep tdm-reservation (1 opts out); '' to ignore")
      ->capture_default_str();
  cmd->add_option("--c2pa-field", o->f.c2pa_field,
                  "Field holding C2PA/CAWG training-and-mining assertions; '' to ignore")
      ->capture_default_str();
  cmd->callback([o, cmd, exit_code] {
    o->shards_given = cmd->count("--shards") > 0;
    *exit_code = Filter(*o);
  });
  RegisterSnapshot(app, exit_code);
  RegisterLineageCommands(app, exit_code);
}

}  // namespace assent::cli
