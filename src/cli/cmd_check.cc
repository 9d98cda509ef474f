// `assent check`: one decision, offline from terms and events files. Exit 0 allow, 1 deny,
// 2 when the question cannot be answered (like grep).
#include <fmt/core.h>

#include <iostream>

#include "assent/engine.h"
#include "assent/ledger.h"
#include "cli/commands.h"
#include "ledger/events_file.h"
#include "engine/events_jsonl.h"

namespace assent::cli {
namespace {

struct CheckOptions {
  std::vector<std::string> terms_files;
  std::string events_file;
  std::string data = "./assent-data";
  bool data_given = false;
  std::string category, purpose;
  std::vector<std::string> subjects;
  std::string account;
  std::string at;
  bool json = false;
};

std::string HumanDecision(const Decision& d) {
  std::string out = fmt::format("{}: {}", d.allow ? "allow" : "deny", ReasonName(d.reason));
  if (d.rule) {
    out += fmt::format(" — rule {} ({}), clause{} ", d.rule->id, BasisName(*d.basis),
                       d.rule->clause_ids.size() == 1 ? "" : "s");
    for (size_t i = 0; i < d.rule->clause_ids.size(); ++i) {
      out += (i ? ", " : "") + d.rule->clause_ids[i];
    }
  } else {
    out += " — no rule covers this pair";
  }
  out += fmt::format("\n  terms {} at {}, ledger position {}\n", d.terms->label(),
                     FormatTime(d.at), d.position);
  for (const auto& p : d.parties) {
    out += fmt::format("  {} {}: {}{}\n", PartyKindName(p.kind), p.id, PartyStateName(p.state),
                       p.event ? fmt::format(" (event {})", p.event) : std::string());
  }
  return out;
}

// The engine to ask: built from --terms/--events files, or folded from the ledger in --data.
struct Source {
  std::unique_ptr<Engine> engine;  // offline
  std::unique_ptr<Ledger> ledger;  // from the ledger
  Engine& get() { return ledger ? ledger->engine() : *engine; }
};

Result<Source> LoadOffline(const CheckOptions& o) {
  std::vector<std::shared_ptr<const Terms>> versions;
  for (const auto& f : o.terms_files) {
    ASSENT_ASSIGN_OR_RETURN(auto t, LoadTermsFile(f));
    versions.push_back(t);
  }
  ASSENT_ASSIGN_OR_RETURN(auto set, TermsSet::Create(std::move(versions)));
  Source src;
  src.engine = std::make_unique<Engine>(set);
  if (!o.events_file.empty()) {
    std::vector<uint64_t> lines;
    ASSENT_ASSIGN_OR_RETURN(auto events, LoadEventsFile(o.events_file, &lines));
    size_t failed = 0;
    if (auto st = src.engine->ApplyBatch(events, &failed); !st) {
      return InvalidArgumentError(o.events_file + ":" + std::to_string(lines[failed]) + ": " +
                                  st.error().message);
    }
  }
  return src;
}

int RunCheck(const CheckOptions& o) {
  if (!o.terms_files.empty() && o.data_given) {
    PrintError("give either --terms (offline, with --events) or --data (the ledger), not both");
    return 2;
  }
  if (o.terms_files.empty() && !o.events_file.empty()) {
    PrintError("--events needs --terms; with --data the events come from the ledger");
    return 2;
  }
  Source source;
  if (!o.terms_files.empty()) {
    auto src = LoadOffline(o);
    if (!src) {
      PrintError(src.error().message);
      return 2;
    }
    source = std::move(*src);
  } else {
    auto ledger = OpenLedger(o.data, true);
    if (!ledger) {
      PrintError(ledger.error().message);
      return 2;
    }
    source.ledger = std::move(*ledger);
  }
  Engine& engine = source.get();
  DecisionRequest q;
  q.category = o.category;
  q.purpose = o.purpose;
  std::vector<std::string_view> subjects(o.subjects.begin(), o.subjects.end());
  q.subjects = subjects;
  if (!o.account.empty()) q.account = o.account;
  if (!o.at.empty()) {
    auto at = ParseTime(o.at);
    if (!at) {
      PrintError("--at: " + at.error().message);
      return 2;
    }
    q.at = *at;
  }
  auto snap = engine.snapshot();
  auto d = snap->Decide(q, engine.Now());
  if (!d) {
    PrintError(d.error().message);
    return 2;
  }
  std::cout << (o.json ? DecisionToJson(*d) + "\n" : HumanDecision(*d));
  return d->allow ? 0 : 1;
}

}  // namespace

void RegisterCheckCommand(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<CheckOptions>();
  auto* cmd = app.add_subcommand(
      "check", "Decide whether a category of data may be used for a purpose (exit 0 allow, "
               "1 deny, 2 error)");
  cmd->add_option("--terms", o->terms_files,
                  "Terms YAML file; repeat for every version (offline, with --events)");
  cmd->add_option("--data", o->data, "Decide from the ledger in this data directory (default)")
      ->capture_default_str();
  cmd->add_option("--events", o->events_file, "Consent events, JSON Lines");
  cmd->add_option("--category", o->category, "Data category, e.g. content.chat")->required();
  cmd->add_option("--purpose", o->purpose, "Purpose, e.g. ai_training.first_party")->required();
  cmd->add_option("--subject", o->subjects, "A subject (user id) the data is about; repeatable");
  cmd->add_option("--account", o->account, "The account (customer organisation) of the data");
  cmd->add_option("--at", o->at, "Decide as of this time (RFC 3339); default now");
  cmd->add_flag("--json", o->json, "Print the decision JSON");
  cmd->callback([o, cmd, exit_code] {
    o->data_given = cmd->count("--data") > 0;
    *exit_code = RunCheck(*o);
  });
}

}  // namespace assent::cli
