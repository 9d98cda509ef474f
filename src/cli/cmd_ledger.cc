// The ledger's own commands: `terms publish`, `ledger export|import`; and the registration of
// the other commands that change a ledger (consent, keys, erase).
#include <fmt/core.h>

#include <cstdio>
#include <fstream>
#include <filesystem>
#include <iostream>

#include <simdjson.h>

#include "assent/ledger.h"
#include "audit/audit.h"
#include "audit/export_check.h"
#include "cli/commands.h"
#include "engine/consent_view.h"

namespace assent::cli {
namespace {

struct PublishCommand {
  std::string file, data = "./assent-data";
  PublishOptions options;
};

int Publish(const PublishCommand& o) {
  std::string yaml;
  if (!ReadFile(o.file, &yaml)) return Fail("cannot read terms file '" + o.file + "'");
  auto ledger = OpenLedger(o.data, false);
  if (!ledger) return Fail(ledger.error());
  auto r = (*ledger)->PublishTerms(yaml, o.file, o.options);
  if (!r) return Fail(r.error());
  std::cout << fmt::format("{} {} at ledger position {} (effective {})\n",
                           r->already_published ? "already published:" : "published",
                           r->terms->label(), r->position, FormatTime(r->terms->effective()));
  if (r->already_published) return 0;
  // Whom the new wording asks again: grants it makes stale, per rule (from when it applies).
  auto snap = (*ledger)->engine().snapshot();
  const Timestamp when = std::max((*ledger)->engine().Now(), r->terms->effective());
  const int32_t v = snap->terms().VersionAt(when);
  if (v < 0 || snap->terms().version(v).label() != r->terms->label()) return 0;
  for (const StaleCount& c : CountStale(*snap, snap->terms().version(v), when)) {
    if (c.parties == 0) continue;
    std::cout << fmt::format("  rule {}: {} grant{} from {} part{} given under wording that "
                             "changed — ask again: assent consent stale --rule {}\n",
                             c.rule, c.grants, c.grants == 1 ? "" : "s", c.parties,
                             c.parties == 1 ? "y" : "ies", c.rule);
  }
  return 0;
}

struct ExportCommand {
  std::string data = "./assent-data", out;
  uint64_t since = 0;
};

// To standard output, or to a file written whole (a temporary renamed into place).
int Export(const ExportCommand& o) {
  auto ledger = OpenLedger(o.data, true);
  if (!ledger) return Fail(ledger.error());
  if (o.out.empty()) {
    if (auto st = (*ledger)->Export(o.since, std::cout); !st) return Fail(st.error());
    return 0;
  }
  const std::string tmp = o.out + ".tmp";
  std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
  Status st = f ? (*ledger)->Export(o.since, f)
                : MakeError(ErrorCode::kUnavailable, "cannot write '" + tmp + "'");
  f.close();
  if (st && std::rename(tmp.c_str(), o.out.c_str()) != 0) {
    st = MakeError(ErrorCode::kUnavailable, "cannot rename '" + tmp + "' to '" + o.out + "'");
  }
  if (!st) {
    std::remove(tmp.c_str());
    return Fail(st.error());
  }
  return 0;
}

struct ImportCommand {
  std::string data = "./assent-data", file, key;
  bool rehash = false;
};

// Every entry's hash and every checkpoint (with --key, its signature too), before anything is
// imported.
Status CheckImport(const ImportCommand& o) {
  std::string text;
  if (!ReadFile(o.file, &text)) return InvalidArgumentError("cannot read '" + o.file + "'");
  std::optional<audit::VerifierKey> key;
  if (!o.key.empty()) {
    auto k = audit::ParseVerifierKey(o.key);
    if (!k) return InvalidArgumentError("--key: " + k.error().message);
    key = *k;
  }
  auto checked = audit::CheckExport(text, o.file, key);
  if (!checked) {
    return InvalidArgumentError(checked.error().message +
                                " (--rehash imports it anyway and records that you vouch for it)");
  }
  std::cerr << fmt::format("checked {} entries and {} checkpoint(s){}\n", checked->entries,
                           checked->checkpoints,
                           checked->signatures_checked ? " with their signatures"
                                                       : " (signatures not checked: --key)");
  return OkStatus();
}

// The terms publications an export carries, in order (YAML), so that an import into an empty
// ledger has the versions its events were given under.
Result<std::vector<std::string>> TermsOfExport(const std::string& file) {
  std::string text;
  if (!ReadFile(file, &text)) return InvalidArgumentError("cannot read '" + file + "'");
  std::vector<std::string> yamls;
  simdjson::dom::parser parser;
  size_t line_no = 0;
  for (size_t at = 0; at < text.size();) {
    size_t nl = text.find('\n', at);
    if (nl == std::string::npos) nl = text.size();
    const std::string_view line(text.data() + at, nl - at);
    at = nl + 1;
    ++line_no;
    if (line.find("\"kind\":\"terms\"") == std::string_view::npos) continue;
    simdjson::dom::object obj;
    std::string_view kind, yaml;
    if (parser.parse(line.data(), line.size()).get_object().get(obj) ||
        obj["kind"].get_string().get(kind) || kind != "terms") {
      continue;  // not a terms entry after all (or not JSON: the consent reader says so)
    }
    if (obj["yaml"].get_string().get(yaml)) {
      return InvalidArgumentError(file + ":" + std::to_string(line_no) + ": a terms entry without its YAML");
    }
    yamls.emplace_back(yaml);
  }
  return yamls;
}

// Publishes the versions the ledger lacks (as recorded history: --backfill, --allow-loosening).
Status PublishMissingTerms(Ledger& ledger, const std::vector<std::string>& yamls,
                           const std::string& file) {
  for (const auto& yaml : yamls) {
    auto r = ledger.PublishTerms(yaml, file, {.backfill = true, .allow_loosening = true});
    if (!r) return std::unexpected(r.error());
  }
  return OkStatus();
}

int Import(const ImportCommand& o) {
  if (!o.rehash) {
    if (auto st = CheckImport(o); !st) return Fail(st.error().message + " (nothing was imported)");
  }
  auto events = ReadImportFile(o.file);
  if (!events) return Fail(events.error().message + " (nothing was imported)");
  if (o.rehash) {
    for (auto& e : *events) {
      e.actor = e.actor.empty() ? "ledger import --rehash (operator vouches)"
                                : e.actor + "; ledger import --rehash (operator vouches)";
    }
  }
  auto terms = TermsOfExport(o.file);
  if (!terms) return Fail(terms.error().message + " (nothing was imported)");
  // Into a directory with no ledger yet, a failed import leaves nothing behind.
  const bool fresh = Globals().database.empty() && !std::filesystem::exists(o.data + "/ledger.db");
  const bool dir_existed = std::filesystem::exists(o.data);
  auto undo = [&](const std::string& message) {
    if (fresh) {
      std::error_code ec;
      for (const char* f : {"/ledger.db", "/ledger.db-wal", "/ledger.db-shm", "/LOCK"}) {
        std::filesystem::remove(o.data + f, ec);
      }
      if (!dir_existed) std::filesystem::remove(o.data, ec);
    }
    return Fail(message + " (nothing was imported)");
  };
  size_t n = 0;
  std::string range;
  {
    auto ledger = OpenLedger(o.data, false);
    if (!ledger) return undo(ledger.error().message);
    if (auto st = PublishMissingTerms(**ledger, *terms, o.file); !st) {
      ledger->reset();
      return undo(o.file + ": " + st.error().message);
    }
    n = events->size();
    auto receipts = (*ledger)->RecordConsents(std::move(*events));
    if (!receipts) {
      ledger->reset();
      return undo(o.file + ": " + receipts.error().message);
    }
    if (n) range = fmt::format(" at positions {}-{}", receipts->front().position, receipts->back().position);
  }
  std::cout << fmt::format("imported {} consent event(s) from {}{}\n", n, o.file, range);
  return 0;
}

void RegisterPublish(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<PublishCommand>();
  auto* cmd = app.get_subcommand("terms")->add_subcommand(
      "publish", "Lint a terms file and record it in the ledger");
  cmd->add_option("FILE", o->file, "Terms YAML file")->required();
  cmd->add_flag("--backfill", o->options.backfill,
                "Allow an effective time before now (recorded history; changes answers about "
                "the past, and is recorded in the entry)");
  cmd->add_flag("--allow-loosening", o->options.allow_loosening,
                "Allow a version that makes some use more permissive (recorded in the entry)");
  AddDataOption(cmd, &o->data);
  cmd->callback([o, exit_code] { *exit_code = Publish(*o); });
}

void RegisterExportImport(CLI::App& app, int* exit_code) {
  CLI::App* ledger = app.add_subcommand("ledger", "Export and import the ledger");
  ledger->require_subcommand(1);
  auto e = std::make_shared<ExportCommand>();
  auto* exp = ledger->add_subcommand(
      "export", "Write every entry as a JSON line (position, kind, hash, fields)");
  AddDataOption(exp, &e->data);
  exp->add_option("--since", e->since, "Only entries after this position");
  exp->add_option("--out", e->out, "Write to this file (default standard output)");
  exp->callback([e, exit_code] { *exit_code = Export(*e); });
  auto i = std::make_shared<ImportCommand>();
  auto* imp = ledger->add_subcommand(
      "import", "Append an export's consent events in order, all or nothing, after checking "
                "every entry's hash and checkpoint");
  AddDataOption(imp, &i->data);
  imp->add_option("FILE", i->file, "A ledger export (JSON Lines with hashes)")->required();
  imp->add_option("--key", i->key,
                  "The exporting log's verifier key (as audit key prints it): also check the "
                  "checkpoints' signatures");
  imp->add_flag("--rehash", i->rehash,
                "Import without checking hashes (history from another system, or an edited "
                "export): you vouch for the content, and each event records that");
  imp->callback([i, exit_code] { *exit_code = Import(*i); });
}

}  // namespace

void RegisterLedgerCommands(CLI::App& app, int* exit_code) {
  RegisterPublish(app, exit_code);
  RegisterConsentCommands(app, exit_code);
  RegisterKeyCommands(app, exit_code);
  RegisterEraseCommands(app, exit_code);
  RegisterExportImport(app, exit_code);
  RegisterChangesCommand(app, exit_code);
}

}  // namespace assent::cli
