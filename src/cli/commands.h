// The subcommands of the `assent` binary. Each Register* adds its subcommands to the app;
// the callback sets *exit_code (0 success/allow, 1 a finding/deny, 2 an error, like grep).
#ifndef ASSENT_CLI_COMMANDS_H_
#define ASSENT_CLI_COMMANDS_H_

#include <CLI/CLI.hpp>
#include <string>

namespace assent::cli {

void RegisterTermsCommands(CLI::App& app, int* exit_code);
void RegisterCheckCommand(CLI::App& app, int* exit_code);

// Prints "assent: error: <message>" to stderr.
void PrintError(const std::string& message);

// Reads a whole file; false when it cannot be read.
bool ReadFile(const std::string& path, std::string* out);

}  // namespace assent::cli

#endif  // ASSENT_CLI_COMMANDS_H_
