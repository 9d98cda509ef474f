// The only main() in the tree: dispatches to the subcommands of src/cli/.
#include <CLI/CLI.hpp>
#include <iostream>

#include "cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"Assent: consent-gated data use. Terms as code, a consent ledger, decisions."};
  app.name("assent");
  app.require_subcommand(1);
  app.set_version_flag("--version", "assent 0.1.0");
  int exit_code = 0;
  assent::cli::RegisterGlobalOptions(app);
  assent::cli::RegisterTermsCommands(app, &exit_code);
  assent::cli::RegisterCheckCommand(app, &exit_code);
  assent::cli::RegisterLedgerCommands(app, &exit_code);
  assent::cli::RegisterServeCommand(app, &exit_code);
  assent::cli::RegisterFilterCommand(app, &exit_code);
  assent::cli::RegisterAuditCommands(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "assent: error: " << e.what() << "\nRun 'assent --help' (or 'assent "
              << "SUBCOMMAND --help') for usage.\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "assent: internal error: " << e.what() << "\n";
    return 2;
  }
  return exit_code;
}
