// The subcommands of the `assent` binary. Each Register* adds its subcommands to the app;
// the callback sets *exit_code (0 success/allow, 1 a finding/deny, 2 an error, like grep).
#ifndef ASSENT_CLI_COMMANDS_H_
#define ASSENT_CLI_COMMANDS_H_

#include <CLI/CLI.hpp>
#include <optional>
#include <string_view>
#include <memory>
#include <string>

#include "assent/ledger.h"
#include "audit/checkpoint.h"

namespace assent::cli {

void RegisterTermsCommands(CLI::App& app, int* exit_code);
void RegisterCheckCommand(CLI::App& app, int* exit_code);
// REQUIRES: RegisterTermsCommands ran first (adds `terms publish` to it).
void RegisterLedgerCommands(CLI::App& app, int* exit_code);
// `consent grant|withdraw|history` (cmd_consent.cc), `keys` (cmd_keys.cc), `subject|account
// erase` (cmd_erase.cc): called by RegisterLedgerCommands.
void RegisterConsentCommands(CLI::App& app, int* exit_code);
void RegisterKeyCommands(CLI::App& app, int* exit_code);
void RegisterEraseCommands(CLI::App& app, int* exit_code);
// `changes` (cmd_changes.cc): the change feed, local or from a server.
void RegisterChangesCommand(CLI::App& app, int* exit_code);
void RegisterServeCommand(CLI::App& app, int* exit_code);
// `filter` and `snapshot` (cmd_filter.cc); it also registers `datasets`, `models` and
// `impact` (cmd_lineage.cc).
void RegisterFilterCommand(CLI::App& app, int* exit_code);
void RegisterLineageCommands(CLI::App& app, int* exit_code);
void RegisterAuditCommands(CLI::App& app, int* exit_code);
// `completion bash` and `man`, from the command table. REQUIRES: every other command first.
void RegisterDocCommands(CLI::App& app, int* exit_code);
// Sets every command's --help footer to its example (src/cli/help_examples.cc).
void AddHelpExamples(CLI::App& app);

// Options every command takes (before or after its name): where the ledger lives when it is
// not DIR/ledger.db, and the audit signing key when it is not DIR/audit.key.
struct GlobalOptions {
  std::string database;   // --database / ASSENT_DATABASE: a PostgreSQL URL
  std::string audit_key;  // --audit-key / ASSENT_AUDIT_KEY: a signing-key file
};
GlobalOptions& Globals();
void RegisterGlobalOptions(CLI::App& app);

// Prints "assent: error: <message>" to stderr.
void PrintError(const std::string& message);
// Whether output to `fd` is coloured: a terminal, NO_COLOR unset, TERM not "dumb" (or
// CLICOLOR_FORCE set).
bool UseColor(int fd);
// A diagnostic as compilers print one: its place, severity and message, then the source line
// (from `source`, the file's text) with a caret under the column.
std::string RenderDiagnostic(const Diagnostic& d, std::string_view source, bool color);
// The same, and the exit code of an error (2): `return Fail(...)`.
int Fail(const std::string& message);
int Fail(const Error& error);
// The party named by --subject or --account: exactly one of them.
struct NamedParty {
  PartyKind kind = PartyKind::kSubject;
  std::string id;
};
Result<NamedParty> PartyFrom(const std::string& subject, const std::string& account);
// --data DIR (default ./assent-data).
void AddDataOption(CLI::App* cmd, std::string* data);

// Opens the ledger: the embedded one in `data_dir`, or the --database one. threads: as
// LedgerOptions::threads (1 replays it on the calling thread alone).
Result<std::unique_ptr<Ledger>> OpenLedger(const std::string& data_dir, bool read_only,
                                           int threads = 0);
// For commands that change a ledger that must already exist (models register, subject erase,
// filter --dataset): kNotFound, and no directory created, when DIR holds no ledger.
Result<std::unique_ptr<Ledger>> OpenExistingLedger(const std::string& data_dir, int threads = 0);

// The audit signing key: --audit-key FILE, else DIR/audit.key. Created when missing and
// `create` is set — except for a shared --database ledger, whose nodes must all sign with one
// key: there it must exist (assent audit key creates it; copy it to every node).
Result<audit::SigningKey> LoadAuditKey(const std::string& data_dir, bool create);

// Reads a whole file; false when it cannot be read.
bool ReadFile(const std::string& path, std::string* out);

}  // namespace assent::cli

#endif  // ASSENT_CLI_COMMANDS_H_
