// The subcommands of the `assent` binary. Each Register* adds its subcommands to the app;
// the callback sets *exit_code (0 success/allow, 1 a finding/deny, 2 an error, like grep).
#ifndef ASSENT_CLI_COMMANDS_H_
#define ASSENT_CLI_COMMANDS_H_

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "assent/ledger.h"

namespace assent::cli {

void RegisterTermsCommands(CLI::App& app, int* exit_code);
void RegisterCheckCommand(CLI::App& app, int* exit_code);
// REQUIRES: RegisterTermsCommands ran first (adds `terms publish` to it).
void RegisterLedgerCommands(CLI::App& app, int* exit_code);
void RegisterServeCommand(CLI::App& app, int* exit_code);
void RegisterFilterCommand(CLI::App& app, int* exit_code);
void RegisterAuditCommands(CLI::App& app, int* exit_code);

// Prints "assent: error: <message>" to stderr.
void PrintError(const std::string& message);

// Opens the embedded ledger in `data_dir`.
Result<std::unique_ptr<Ledger>> OpenLedger(const std::string& data_dir, bool read_only);

// Reads a whole file; false when it cannot be read.
bool ReadFile(const std::string& path, std::string* out);

}  // namespace assent::cli

#endif  // ASSENT_CLI_COMMANDS_H_
