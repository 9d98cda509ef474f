// What every command shares: global options, opening the ledger and the audit key, reading
// files, and reporting errors.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/commands.h"

namespace assent::cli {

void PrintError(const std::string& message) {
  static const bool color = UseColor(2);
  std::cerr << (color ? "assent: \033[1;31merror:\033[0m " : "assent: error: ") << message << "\n";
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

int Fail(const std::string& message) {
  PrintError(message);
  return 2;
}

int Fail(const Error& error) { return Fail(error.message); }

Result<NamedParty> PartyFrom(const std::string& subject, const std::string& account) {
  if (subject.empty() == account.empty()) {
    return InvalidArgumentError("give exactly one of --subject or --account");
  }
  if (subject.empty()) return NamedParty{PartyKind::kAccount, account};
  return NamedParty{PartyKind::kSubject, subject};
}

void AddDataOption(CLI::App* cmd, std::string* data) {
  cmd->add_option("--data", *data, "Data directory of the embedded ledger")
      ->capture_default_str();
}

GlobalOptions& Globals() {
  static GlobalOptions globals;
  return globals;
}

void RegisterGlobalOptions(CLI::App& app) {
  app.add_option("--database", Globals().database,
                 "PostgreSQL URL of a ledger shared by several nodes "
                 "(postgresql://user@host:port/db); default: SQLite in --data")
      ->envname("ASSENT_DATABASE");
  app.add_option("--audit-key", Globals().audit_key,
                 "The audit signing-key file (default: DIR/audit.key); one for every node")
      ->envname("ASSENT_AUDIT_KEY");
  app.fallthrough();  // so they may follow the command's name too
}

Result<std::unique_ptr<Ledger>> OpenLedger(const std::string& data_dir, bool read_only,
                                           int threads) {
  LedgerOptions options;
  options.data_dir = data_dir;
  options.read_only = read_only;
  options.threads = threads;
  options.database = Globals().database;
  return Ledger::Open(options);
}

Result<std::unique_ptr<Ledger>> OpenExistingLedger(const std::string& data_dir, int threads) {
  if (Globals().database.empty() && !std::filesystem::exists(data_dir + "/ledger.db")) {
    return NotFoundError("no ledger in '" + data_dir + "' (give --data DIR, or publish terms "
                         "there first: assent terms publish --data DIR FILE)");
  }
  return OpenLedger(data_dir, false, threads);
}

Result<audit::SigningKey> LoadAuditKey(const std::string& data_dir, bool create) {
  const std::string path =
      Globals().audit_key.empty() ? data_dir + "/audit.key" : Globals().audit_key;
  auto key = audit::LoadSigningKeyFile(path, false);
  if (key || key.error().code != ErrorCode::kNotFound || !create) return key;
  if (!Globals().database.empty()) {
    return FailedPreconditionError(
        "no audit key at " + path + ": nodes sharing a --database ledger sign it with one key. "
        "Create it once (assent audit key --audit-key FILE) and give every node that file "
        "(--audit-key FILE, or copy it to each DIR/audit.key)");
  }
  return audit::LoadSigningKeyFile(path, true);
}

}  // namespace assent::cli
