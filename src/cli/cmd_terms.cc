// `assent terms lint|show|diff`: the terms author's tools.
#include <fmt/core.h>

#include <fstream>
#include <iostream>
#include <sstream>

#include "assent/terms.h"
#include "cli/commands.h"
#include "terms/diff.h"
#include "terms/show.h"

namespace assent::cli {

void PrintError(const std::string& message) {
  std::cerr << "assent: error: " << message << "\n";
}

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return false;
  *out = ss.str();
  return true;
}

namespace {

// Lints `path` for commands that need its rules; prints problems to stderr. Returns the
// draft (null after printing why), so documents missing only descriptions still compare.
std::shared_ptr<const Terms> LoadForReading(const std::string& path, int* exit_code) {
  std::string text;
  if (!ReadFile(path, &text)) {
    PrintError("cannot read terms file '" + path + "'");
    *exit_code = 2;
    return nullptr;
  }
  LintResult r = LintTerms(text, path);
  if (!r.draft) {
    for (const auto& d : r.diagnostics) std::cerr << d.ToString() << "\n";
    PrintError("'" + path + "' does not compile; fix the errors above");
    *exit_code = 2;
    return nullptr;
  }
  if (r.has_errors()) {
    size_t n = 0;
    for (const auto& d : r.diagnostics) n += d.severity == Severity::kError;
    std::cerr << "assent: warning: '" << path << "' has " << n
              << " lint error(s) (undefined terms) and may not be published; read as written. "
              << "Run 'assent terms lint " << path << "' for details.\n";
  }
  return r.draft;
}

}  // namespace

void RegisterTermsCommands(CLI::App& app, int* exit_code) {
  CLI::App* terms = app.add_subcommand("terms", "Lint, show and compare terms documents");
  terms->require_subcommand(1);

  {
    auto* cmd = terms->add_subcommand(
        "lint", "Check terms files; exit 0 without errors, 1 with any error, 2 if unreadable");
    auto files = std::make_shared<std::vector<std::string>>();
    auto json = std::make_shared<bool>(false);
    cmd->add_option("FILE", *files, "Terms YAML files")->required();
    cmd->add_flag("--json", *json, "Print diagnostics as JSON");
    cmd->callback([files, json, exit_code] {
      nlohmann::ordered_json all = nlohmann::ordered_json::array();
      int code = 0;
      for (const auto& f : *files) {
        std::string text;
        if (!ReadFile(f, &text)) {
          PrintError("cannot read terms file '" + f + "'");
          code = 2;
          continue;
        }
        LintResult r = LintTerms(text, f);
        size_t errors = 0, warnings = 0;
        for (const auto& d : r.diagnostics) {
          (d.severity == Severity::kError ? errors : warnings)++;
          if (*json) {
            all.push_back({{"file", d.file},
                           {"line", d.line},
                           {"column", d.column},
                           {"severity", d.severity == Severity::kError ? "error" : "warning"},
                           {"message", d.message},
                           {"code", d.code}});
          } else {
            std::cout << d.ToString() << "\n";
          }
        }
        if (!*json) {
          std::cout << fmt::format("{}: {} error(s), {} warning(s){}\n", f, errors, warnings,
                                   r.terms ? " — " + r.terms->label() + " compiles" : "");
        }
        if (errors && code == 0) code = 1;
      }
      if (*json) std::cout << all.dump(2) << "\n";
      *exit_code = code;
    });
  }

  {
    auto* cmd = terms->add_subcommand(
        "show", "Print the leaf matrix: each (category, purpose) with its basis and rule");
    auto file = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    cmd->add_option("FILE", *file, "Terms YAML file")->required();
    cmd->add_flag("--json", *json, "Print as JSON");
    cmd->callback([file, json, exit_code] {
      auto t = LoadForReading(*file, exit_code);
      if (!t) return;
      if (*json) {
        std::cout << MatrixJson(*t).dump(2) << "\n";
      } else {
        std::cout << RenderMatrixTable(*t);
      }
      *exit_code = 0;
    });
  }

  {
    auto* cmd = terms->add_subcommand(
        "diff", "Compare two versions; exit 0 when nothing loosened, 1 when something did");
    auto old_file = std::make_shared<std::string>();
    auto new_file = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    cmd->add_option("OLD", *old_file, "The earlier terms file")->required();
    cmd->add_option("NEW", *new_file, "The later terms file")->required();
    cmd->add_flag("--json", *json, "Print as JSON");
    cmd->callback([old_file, new_file, json, exit_code] {
      auto a = LoadForReading(*old_file, exit_code);
      if (!a) return;
      auto b = LoadForReading(*new_file, exit_code);
      if (!b) return;
      if (a->id() != b->id()) {
        PrintError("'" + *old_file + "' is document '" + a->id() + "' but '" + *new_file +
                   "' is '" + b->id() + "': compare versions of one document");
        *exit_code = 2;
        return;
      }
      TermsDiff d = DiffTerms(*a, *b);
      if (*json) {
        std::cout << DiffJson(d).dump(2) << "\n";
      } else {
        std::cout << RenderDiff(d);
      }
      *exit_code = d.loosened() ? 1 : 0;
    });
  }
}

}  // namespace assent::cli
