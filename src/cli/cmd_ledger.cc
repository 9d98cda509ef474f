// The ledger's commands: `terms publish`, `consent grant|withdraw|history`, `ledger
// export|import`. Each takes --data DIR (the embedded SQLite store, default ./assent-data).
#include <fmt/core.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>

#include "assent/ledger.h"
#include "cli/commands.h"
#include "audit/audit.h"
#include "audit/export_check.h"
#include "common/json_writer.h"
#include "engine/events_jsonl.h"

namespace assent::cli {

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

Result<std::unique_ptr<Ledger>> OpenLedger(const std::string& data_dir, bool read_only) {
  LedgerOptions options;
  options.data_dir = data_dir;
  options.read_only = read_only;
  options.database = Globals().database;
  return Ledger::Open(options);
}

Result<std::unique_ptr<Ledger>> OpenExistingLedger(const std::string& data_dir) {
  if (Globals().database.empty() && !std::filesystem::exists(data_dir + "/ledger.db")) {
    return NotFoundError("no ledger in '" + data_dir + "' (give --data DIR, or publish terms "
                         "there first: assent terms publish --data DIR FILE)");
  }
  return OpenLedger(data_dir, false);
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

namespace {

struct ConsentOptions {
  std::string data = "./assent-data";
  std::string subject, account;
  std::vector<std::string> categories, purposes;
  std::string rule, method = "api", at, terms_version, actor;
  bool json = false;
};

void AddDataOption(CLI::App* cmd, std::string* data) {
  cmd->add_option("--data", *data, "Data directory of the embedded ledger")
      ->capture_default_str();
}

int RecordConsent(const ConsentOptions& o, Action action) {
  if (o.subject.empty() == o.account.empty()) {
    PrintError("give exactly one of --subject or --account");
    return 2;
  }
  if (o.rule.empty() && (o.categories.empty() || o.purposes.empty())) {
    PrintError("give --category and --purpose (repeatable), or --rule for the rule's scope");
    return 2;
  }
  ConsentEvent e;
  e.party_kind = o.subject.empty() ? PartyKind::kAccount : PartyKind::kSubject;
  e.party = o.subject.empty() ? o.account : o.subject;
  e.action = action;
  e.categories = o.categories;
  e.purposes = o.purposes;
  e.rule = o.rule;
  e.actor = o.actor;
  e.terms_version = o.terms_version;
  auto method = ParseMethod(o.method);
  if (!method) {
    PrintError("--method must be settings, api, gpc, admin or import, not '" + o.method + "'");
    return 2;
  }
  e.method = *method;
  if (!o.at.empty()) {
    auto at = ParseTime(o.at);
    if (!at) {
      PrintError("--at: " + at.error().message);
      return 2;
    }
    e.at = *at;
  }
  auto ledger = OpenLedger(o.data, false);
  if (!ledger) {
    PrintError(ledger.error().message);
    return 2;
  }
  auto receipt = (*ledger)->RecordConsent(std::move(e));
  if (!receipt) {
    PrintError(receipt.error().message + " (nothing was recorded)");
    return 2;
  }
  // With the log's signing key (created on first use), the receipt carries its proof: a
  // signed checkpoint covering the event and the inclusion proof against it.
  auto key = LoadAuditKey(o.data, true);
  if (!key) {
    std::cout << receipt->ToJson() << "\n";
    std::cerr << "assent: warning: no proof in this receipt: " << key.error().message << "\n";
    return 0;
  }
  auto provable = audit::ProvableReceiptJson(**ledger, *key, *receipt);
  std::cout << (provable ? *provable : receipt->ToJson()) << "\n";
  if (!provable) std::cerr << "assent: warning: no proof in this receipt: " << provable.error().message << "\n";
  return 0;
}

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? "," : "") + v[i];
  return out;
}

int History(const ConsentOptions& o) {
  if (o.subject.empty() == o.account.empty()) {
    PrintError("give exactly one of --subject or --account");
    return 2;
  }
  auto ledger = OpenLedger(o.data, true);
  if (!ledger) {
    PrintError(ledger.error().message);
    return 2;
  }
  const PartyKind kind = o.subject.empty() ? PartyKind::kAccount : PartyKind::kSubject;
  const std::string& id = o.subject.empty() ? o.account : o.subject;
  auto snap = (*ledger)->engine().snapshot();
  auto events = snap->EventsOf(kind, id);
  const Timestamp now = (*ledger)->engine().Now();
  int32_t v = snap->terms().VersionAt(now);
  JsonWriter w;
  w.BeginObject();
  w.Key(PartyKindName(kind)).String(id);
  w.Key("position").UInt(snap->position());
  w.Key("events").BeginArray();
  std::string text = fmt::format("{} {} — {} consent event(s), ledger position {}\n",
                                 PartyKindName(kind), id, events.size(), snap->position());
  for (const auto& e : events) {
    w.BeginObject();
    WriteHistoryEvent(w, e);
    w.EndObject();
    text += fmt::format("  {:>6}  {}  {:<8}  {} x {}  (terms {}, {})\n", e.position,
                        FormatTime(e.at), ActionName(e.action), Join(e.categories),
                        Join(e.purposes), e.terms_version, MethodName(e.method));
  }
  w.EndArray();
  w.Key("rules").BeginArray();
  if (v >= 0) {
    const Terms& t = snap->terms().version(v);
    text += fmt::format("current state under terms {}:\n", t.label());
    for (const Rule& rule : t.rules()) {
      if (rule.basis != Basis::kConsent && rule.basis != Basis::kObjectable) continue;
      const bool asks_account = rule.consent_from != ConsentFrom::kSubjects;
      const bool asks_subjects = rule.consent_from != ConsentFrom::kAccount;
      if ((kind == PartyKind::kAccount && !asks_account) ||
          (kind == PartyKind::kSubject && !asks_subjects)) {
        continue;
      }
      // The rule's own pairs that it decides; one state when they agree.
      std::set<std::string> states;
      w.BeginObject();
      w.Key("rule").String(rule.id);
      w.Key("basis").String(BasisName(rule.basis));
      w.Key("summary").String(rule.summary);
      w.Key("pairs").BeginArray();
      for (int32_t c : rule.categories) {
        for (int32_t p : rule.purposes) {
          if (t.DecidingRule(c, p) < 0 || &t.rules()[t.DecidingRule(c, p)] != &rule) continue;
          auto st = snap->PartyStateFor(kind, id, t.categories()[c].name, t.purposes()[p].name,
                                        now);
          if (!st) continue;
          w.BeginObject();
          w.Key("category").String(t.categories()[c].name);
          w.Key("purpose").String(t.purposes()[p].name);
          w.Key("state").String(PartyStateName(st->state));
          w.Key("event");
          if (st->event) {
            w.UInt(st->event);
          } else {
            w.Null();
          }
          w.EndObject();
          states.insert(std::string(PartyStateName(st->state)) +
                        (st->event ? " (event " + std::to_string(st->event) + ")" : ""));
        }
      }
      w.EndArray();
      w.EndObject();
      std::string state;
      for (const auto& s : states) state += (state.empty() ? "" : " / ") + s;
      text += fmt::format("  {:<11} {:<36} {}\n    \"{}\"\n", BasisName(rule.basis), rule.id,
                          state, rule.summary);
    }
  }
  w.EndArray();
  w.EndObject();
  std::cout << (o.json ? w.str() + "\n" : text);
  return 0;
}

}  // namespace

void RegisterLedgerCommands(CLI::App& app, int* exit_code) {
  // terms publish
  {
    CLI::App* terms = app.get_subcommand("terms");
    auto* cmd = terms->add_subcommand("publish", "Lint a terms file and record it in the ledger");
    auto file = std::make_shared<std::string>();
    auto data = std::make_shared<std::string>("./assent-data");
    auto options = std::make_shared<PublishOptions>();
    cmd->add_option("FILE", *file, "Terms YAML file")->required();
    cmd->add_flag("--backfill", options->backfill,
                  "Allow an effective time before now (recorded history; changes answers about "
                  "the past, and is recorded in the entry)");
    cmd->add_flag("--allow-loosening", options->allow_loosening,
                  "Allow a version that makes some use more permissive (recorded in the entry)");
    AddDataOption(cmd, data.get());
    cmd->callback([file, data, options, exit_code] {
      std::string yaml;
      if (!ReadFile(*file, &yaml)) {
        PrintError("cannot read terms file '" + *file + "'");
        *exit_code = 2;
        return;
      }
      auto ledger = OpenLedger(*data, false);
      if (!ledger) {
        PrintError(ledger.error().message);
        *exit_code = 2;
        return;
      }
      auto r = (*ledger)->PublishTerms(yaml, *file, *options);
      if (!r) {
        PrintError(r.error().message);
        *exit_code = 2;
        return;
      }
      std::cout << fmt::format("{} {} at ledger position {} (effective {})\n",
                               r->already_published ? "already published:" : "published",
                               r->terms->label(), r->position,
                               FormatTime(r->terms->effective()));
      *exit_code = 0;
    });
  }
  // consent grant|withdraw|history
  {
    CLI::App* consent = app.add_subcommand("consent", "Record and read consent events");
    consent->require_subcommand(1);
    for (Action action : {Action::kGrant, Action::kWithdraw}) {
      auto o = std::make_shared<ConsentOptions>();
      auto* cmd = consent->add_subcommand(
          std::string(ActionName(action)),
          action == Action::kGrant ? "Record a grant and print its receipt"
                                   : "Record a withdrawal (or objection) and print its receipt");
      AddDataOption(cmd, &o->data);
      cmd->add_option("--subject", o->subject, "The person (user id)");
      cmd->add_option("--account", o->account, "The account (customer organisation) id");
      cmd->add_option("--category", o->categories, "Category of the scope; repeatable");
      cmd->add_option("--purpose", o->purposes, "Purpose of the scope; repeatable");
      cmd->add_option("--rule", o->rule, "The rule shown; alone, its categories x purposes");
      cmd->add_option("--method", o->method, "settings | api | gpc | admin | import")
          ->capture_default_str();
      cmd->add_option("--at", o->at, "When the choice was made (RFC 3339); default now");
      cmd->add_option("--terms-version", o->terms_version,
                      "The terms version shown; default the one in effect at --at");
      cmd->add_option("--actor", o->actor, "Who recorded it, if not the party");
      cmd->callback([o, action, exit_code] { *exit_code = RecordConsent(*o, action); });
    }
    auto o = std::make_shared<ConsentOptions>();
    auto* cmd = consent->add_subcommand(
        "history", "A party's consent events and its current state per rule");
    AddDataOption(cmd, &o->data);
    cmd->add_option("--subject", o->subject, "The person (user id)");
    cmd->add_option("--account", o->account, "The account id");
    cmd->add_flag("--json", o->json, "Print as JSON");
    cmd->callback([o, exit_code] { *exit_code = History(*o); });
  }
  // keys create|list|revoke
  {
    CLI::App* keys = app.add_subcommand("keys", "API keys for the HTTP API (stored hashed)");
    keys->require_subcommand(1);
    auto data = std::make_shared<std::string>("./assent-data");
    auto role = std::make_shared<std::string>();
    auto name = std::make_shared<std::string>();
    auto* create = keys->add_subcommand("create", "Create a key and print its secret once");
    AddDataOption(create, data.get());
    create->add_option("--role", *role, "operator | service | auditor")->required();
    create->add_option("--name", *name, "A name to list and revoke it by (default: the role)");
    create->callback([data, role, name, exit_code] {
      auto r = ParseRole(*role);
      if (!r) {
        PrintError("--role must be operator, service or auditor, not '" + *role + "'");
        *exit_code = 2;
        return;
      }
      auto ledger = OpenLedger(*data, false);
      if (!ledger) {
        PrintError(ledger.error().message);
        *exit_code = 2;
        return;
      }
      auto secret = (*ledger)->CreateKey(*r, name->empty() ? *role : *name);
      if (!secret) {
        PrintError(secret.error().message);
        *exit_code = 2;
        return;
      }
      std::cout << *secret << "\n";
      std::cerr << "assent: the key is shown only now; only its SHA-256 is stored.\n";
      *exit_code = 0;
    });
    auto* list = keys->add_subcommand("list", "List keys (names and roles, never secrets)");
    auto ldata = std::make_shared<std::string>("./assent-data");
    AddDataOption(list, ldata.get());
    list->callback([ldata, exit_code] {
      auto ledger = OpenLedger(*ldata, true);
      if (!ledger) {
        PrintError(ledger.error().message);
        *exit_code = 2;
        return;
      }
      for (const auto& k : (*ledger)->Keys()) {
        std::cout << fmt::format("{:<24} {:<9} created at position {}{}\n", k.name,
                                 RoleName(k.role), k.position, k.revoked ? "  (revoked)" : "");
      }
      *exit_code = 0;
    });
    auto* revoke = keys->add_subcommand("revoke", "Revoke a key by name");
    auto rdata = std::make_shared<std::string>("./assent-data");
    auto rname = std::make_shared<std::string>();
    AddDataOption(revoke, rdata.get());
    revoke->add_option("NAME", *rname, "The key's name")->required();
    revoke->callback([rdata, rname, exit_code] {
      auto ledger = OpenLedger(*rdata, false);
      if (!ledger) {
        PrintError(ledger.error().message);
        *exit_code = 2;
        return;
      }
      if (auto st = (*ledger)->RevokeKey(*rname); !st) {
        PrintError(st.error().message);
        *exit_code = 2;
        return;
      }
      std::cout << "revoked " << *rname << "\n";
      *exit_code = 0;
    });
  }
  // subject erase U | account erase A
  for (PartyKind kind : {PartyKind::kSubject, PartyKind::kAccount}) {
    const std::string name(PartyKindName(kind));
    CLI::App* group = app.add_subcommand(name, "Erase a" + std::string(kind == PartyKind::kAccount ? "n " : " ") + name +
                                                   " (crypto-shredding)");
    group->require_subcommand(1);
    auto data = std::make_shared<std::string>("./assent-data");
    auto id = std::make_shared<std::string>();
    auto yes = std::make_shared<bool>(false);
    auto* erase = group->add_subcommand(
        "erase", "Delete the " + name + "'s pseudonym secret and plain id: its ledger entries stay "
                 "(the audit log still verifies) but can no longer be linked to it; it joins the "
                 "suppression list, so no decision allows its data again (except necessary "
                 "uses). Without --yes, shows what held its data. Cannot be undone.");
    AddDataOption(erase, data.get());
    erase->add_option("ID", *id, "The " + name + "'s id")->required();
    erase->add_flag("--yes", *yes, "Confirm: erasure cannot be undone");
    erase->callback([kind, name, data, id, yes, exit_code] {
      auto ledger = *yes ? OpenExistingLedger(*data) : OpenLedger(*data, true);
      if (!ledger) {
        PrintError(ledger.error().message);
        *exit_code = 2;
        return;
      }
      // First what the erasure obliges: every recorded dataset, shard and model holding its data.
      auto impact = (*ledger)->ErasureImpact(kind, *id);
      if (!impact) {
        PrintError(impact.error().message);
        *exit_code = impact.error().code == ErrorCode::kNotFound ? 1 : 2;
        return;
      }
      auto list = [](const std::vector<std::string>& v) {
        std::string out;
        for (const auto& x : v) out += (out.empty() ? "" : ", ") + x;
        return v.empty() ? std::string("none") : out;
      };
      std::cout << fmt::format("{} '{}' is held in\n  datasets: {}\n  shards:   {}\n  models:   {}\n",
                               name, *id, list(impact->datasets), list(impact->shards),
                               list(impact->models));
      if (!*yes) {
        PrintError("erasing " + name + " '" + *id + "' cannot be undone: retrain what is listed "
                   "above without it, and add --yes to confirm");
        *exit_code = 2;
        return;
      }
      const size_t events = (*ledger)->engine().snapshot()->EventsOf(kind, *id).size();
      auto pseudonym = (*ledger)->PseudonymOf(kind, *id);
      auto position = (*ledger)->EraseParty(kind, *id);
      if (!position) {
        PrintError(position.error().message);
        *exit_code = position.error().code == ErrorCode::kNotFound ? 1 : 2;
        return;
      }
      std::cout << fmt::format(
          "erased {} '{}': {} consent event(s) under pseudonym {} can no longer be linked to it; "
          "it is on the suppression list (decisions naming it: erased); the erasure and the "
          "retraining it obliges are recorded at position {}\n",
          name, *id, events, pseudonym ? *pseudonym : "?", *position);
      *exit_code = 0;
    });
  }
  // ledger export|import
  {
    CLI::App* ledger_cmd = app.add_subcommand("ledger", "Export and import the ledger");
    ledger_cmd->require_subcommand(1);
    auto data = std::make_shared<std::string>("./assent-data");
    auto since = std::make_shared<uint64_t>(0);
    auto out = std::make_shared<std::string>();
    auto* exp = ledger_cmd->add_subcommand(
        "export", "Write every entry as a JSON line (position, kind, hash, fields)");
    AddDataOption(exp, data.get());
    exp->add_option("--since", *since, "Only entries after this position");
    exp->add_option("--out", *out, "Write to this file (default standard output)");
    exp->callback([data, since, out, exit_code] {
      auto ledger = OpenLedger(*data, true);
      if (!ledger) {
        PrintError(ledger.error().message);
        *exit_code = 2;
        return;
      }
      Status st;
      if (out->empty()) {
        st = (*ledger)->Export(*since, std::cout);
      } else {
        const std::string tmp = *out + ".tmp";
        std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
        st = f ? (*ledger)->Export(*since, f)
               : MakeError(ErrorCode::kUnavailable, "cannot write '" + tmp + "'");
        f.close();
        if (st && std::rename(tmp.c_str(), out->c_str()) != 0) {
          st = MakeError(ErrorCode::kUnavailable, "cannot rename '" + tmp + "' to '" + *out + "'");
        }
        if (!st) std::remove(tmp.c_str());
      }
      if (!st) {
        PrintError(st.error().message);
        *exit_code = 2;
        return;
      }
      *exit_code = 0;
    });
    auto idata = std::make_shared<std::string>("./assent-data");
    auto file = std::make_shared<std::string>();
    auto rehash = std::make_shared<bool>(false);
    auto import_key = std::make_shared<std::string>();
    auto* imp = ledger_cmd->add_subcommand(
        "import", "Append an export's consent events in order, all or nothing, after checking "
                  "every entry's hash and checkpoint");
    AddDataOption(imp, idata.get());
    imp->add_option("FILE", *file, "A ledger export (JSON Lines with hashes)")->required();
    imp->add_option("--key", *import_key,
                    "The exporting log's verifier key (as audit key prints it): also check the "
                    "checkpoints' signatures");
    imp->add_flag("--rehash", *rehash,
                  "Import without checking hashes (history from another system, or an edited "
                  "export): you vouch for the content, and each event records that");
    imp->callback([idata, file, rehash, import_key, exit_code] {
      *exit_code = 2;
      if (!*rehash) {
        std::string text;
        if (!ReadFile(*file, &text)) {
          PrintError("cannot read '" + *file + "' (nothing was imported)");
          return;
        }
        std::optional<audit::VerifierKey> key;
        if (!import_key->empty()) {
          auto k = audit::ParseVerifierKey(*import_key);
          if (!k) {
            PrintError("--key: " + k.error().message);
            return;
          }
          key = *k;
        }
        auto checked = audit::CheckExport(text, *file, key);
        if (!checked) {
          PrintError(checked.error().message + " (nothing was imported; --rehash imports it "
                                               "anyway and records that you vouch for it)");
          return;
        }
        std::cerr << fmt::format("checked {} entries and {} checkpoint(s){}\n", checked->entries,
                                 checked->checkpoints,
                                 checked->signatures_checked ? " with their signatures"
                                                             : " (signatures not checked: --key)");
      }
      auto events = ReadImportFile(*file);
      if (events && *rehash) {
        for (auto& e : *events) {
          e.actor = e.actor.empty() ? "ledger import --rehash (operator vouches)"
                                    : e.actor + "; ledger import --rehash (operator vouches)";
        }
      }
      if (!events) {
        PrintError(events.error().message + " (nothing was imported)");
        *exit_code = 2;
        return;
      }
      auto ledger = OpenLedger(*idata, false);
      if (!ledger) {
        PrintError(ledger.error().message);
        *exit_code = 2;
        return;
      }
      const size_t n = events->size();
      auto receipts = (*ledger)->RecordConsents(std::move(*events));
      if (!receipts) {
        PrintError(*file + ": " + receipts.error().message + " (nothing was imported)");
        *exit_code = 2;
        return;
      }
      std::cout << fmt::format("imported {} consent event(s) from {}{}\n", n, *file,
                               n ? fmt::format(" at positions {}-{}", receipts->front().position,
                                               receipts->back().position)
                                 : "");
      *exit_code = 0;
    });
  }
}

}  // namespace assent::cli
