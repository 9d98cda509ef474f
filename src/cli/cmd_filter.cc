// `assent filter`: keep the manifest items that may be used for a purpose.
#include <fmt/core.h>
#include <unistd.h>

#include <fstream>
#include <iostream>

#include "cli/commands.h"
#include "filter/filter.h"

namespace assent::cli {

void RegisterFilterCommand(CLI::App& app, int* exit_code) {
  struct Options {
    std::string data = "./assent-data", at, report;
    FilterOptions f;
  };
  auto o = std::make_shared<Options>();
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
  cmd->add_option("--report", o->report, "Write the report as JSON to this file");
  cmd->add_flag("--skip-malformed", o->f.skip_malformed,
                "Count malformed lines (never kept) instead of failing");
  cmd->add_option("--id-field", o->f.id_field, "Field holding the item id")->capture_default_str();
  cmd->add_option("--category-field", o->f.category_field, "Field holding the category")
      ->capture_default_str();
  cmd->add_option("--account-field", o->f.account_field, "Field holding the account")
      ->capture_default_str();
  cmd->add_option("--subjects-field", o->f.subjects_field, "Field holding the subjects")
      ->capture_default_str();
  cmd->callback([o, exit_code] {
    *exit_code = 2;
    if (!o->at.empty()) {
      auto at = ParseTime(o->at);
      if (!at) {
        PrintError("--at: " + at.error().message);
        return;
      }
      o->f.at = *at;
    }
    auto ledger = OpenLedger(o->data, true);
    if (!ledger) {
      PrintError(ledger.error().message);
      return;
    }
    if (::isatty(2)) {
      auto start = std::chrono::steady_clock::now();
      o->f.progress = [start](uint64_t done, uint64_t total) {
        double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        std::cerr << fmt::format("\r{:5.1f}%  {:.1f} MB/s ", total ? 100.0 * done / total : 100.0,
                                 secs > 0 ? done / 1e6 / secs : 0.0)
                  << std::flush;
      };
    }
    auto snap = (*ledger)->engine().snapshot();
    auto r = RunFilter(*snap, (*ledger)->engine().Now(), o->f);
    if (o->f.progress) std::cerr << "\n";
    if (!r) {
      PrintError(r.error().message + " (nothing was written to " + o->f.out_path + ")");
      return;
    }
    if (!o->report.empty()) {
      std::ofstream rep(o->report, std::ios::trunc);
      rep << r->ToJson() << "\n";
      if (!rep) {
        PrintError("cannot write the report to '" + o->report + "'");
        return;
      }
    }
    std::cerr << r->Summary();
    *exit_code = 0;
  });
}

}  // namespace assent::cli
