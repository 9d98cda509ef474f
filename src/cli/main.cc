// The only main() in the tree: dispatches to the subcommands of src/cli/.
#include <CLI/CLI.hpp>
#include <iostream>

#include "cli/commands.h"
#include "common/strings.h"

namespace {

// "assent consent grant" for the grant subcommand.
std::string FullName(const CLI::App* app) {
  std::string name;
  for (; app; app = app->get_parent()) name = app->get_name() + (name.empty() ? "" : " " + name);
  return name;
}

// "did you mean" for a mistyped subcommand or flag: the deepest subcommand parsed, the words
// it did not expect, and its subcommands' and options' names.
std::string Suggestion(CLI::App& app) {
  CLI::App* cur = &app;
  while (!cur->get_subcommands().empty()) cur = cur->get_subcommands().back();
  std::vector<std::string> commands, flags;
  for (const CLI::App* sub : cur->get_subcommands([](const CLI::App*) { return true; })) {
    commands.push_back(sub->get_name());
  }
  for (const CLI::Option* opt : cur->get_options()) {
    for (const auto& l : opt->get_lnames()) flags.push_back("--" + l);
  }
  for (const std::string& word : app.remaining(true)) {
    const bool flag = word.starts_with("-");
    const std::string like = assent::DidYouMean(word, flag ? flags : commands);
    if (!like.empty()) {
      return "'" + word + "' is not " + (flag ? "an option" : "a command") + " of '" +
             FullName(cur) +
             "': did you mean '" + like + "'?\n";
    }
  }
  if (!commands.empty() && cur->get_subcommands().empty()) {
    std::string list;
    for (const auto& c : commands) list += (list.empty() ? "" : ", ") + c;
    return "commands: " + list + "\n";
  }
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Assent: consent-gated data use. Terms as code, a consent ledger, decisions."};
  app.name("assent");
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("assent 0.1.0 (commit ") + ASSENT_COMMIT +
                                        ", " + ASSENT_BUILD_TYPE + " build)");
  int exit_code = 0;
  assent::cli::RegisterGlobalOptions(app);
  assent::cli::RegisterTermsCommands(app, &exit_code);
  assent::cli::RegisterCheckCommand(app, &exit_code);
  assent::cli::RegisterLedgerCommands(app, &exit_code);
  assent::cli::RegisterServeCommand(app, &exit_code);
  assent::cli::RegisterFilterCommand(app, &exit_code);
  assent::cli::RegisterAuditCommands(app, &exit_code);
  assent::cli::RegisterDocCommands(app, &exit_code);
  assent::cli::AddHelpExamples(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "assent: error: " << e.what() << "\n" << Suggestion(app)
              << "Run 'assent --help' (or 'assent SUBCOMMAND --help') for usage.\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "assent: internal error: " << e.what() << "\n";
    return 2;
  }
  return exit_code;
}
