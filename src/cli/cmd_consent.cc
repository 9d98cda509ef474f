// `consent grant|withdraw|history`: record a party's choice (printing its receipt, with its
// proof), and read a party's events and its state per rule.
#include <fmt/core.h>

#include <filesystem>
#include <iostream>
#include <set>

#include "common/strings.h"
#include "audit/audit.h"
#include "cli/commands.h"
#include "common/json_writer.h"
#include "engine/consent_view.h"
#include "engine/events_jsonl.h"

namespace assent::cli {
namespace {

struct ConsentOptions {
  std::string data = "./assent-data";
  std::string subject, account;
  std::vector<std::string> categories, purposes;
  std::string rule, method = "api", at, terms_version, actor;
  bool json = false;
};

Result<ConsentEvent> EventFrom(const ConsentOptions& o, Action action) {
  ASSENT_ASSIGN_OR_RETURN(const NamedParty party, PartyFrom(o.subject, o.account));
  if (o.rule.empty() && (o.categories.empty() || o.purposes.empty())) {
    return InvalidArgumentError(
        "give --category and --purpose (repeatable), or --rule for the rule's scope");
  }
  ConsentEvent e;
  e.party_kind = party.kind;
  e.party = party.id;
  e.action = action;
  e.categories = o.categories;
  e.purposes = o.purposes;
  e.rule = o.rule;
  e.actor = o.actor;
  e.terms_version = o.terms_version;
  auto method = ParseMethod(o.method);
  if (!method) {
    return InvalidArgumentError("--method must be api, gpc or import, not '" + o.method + "'");
  }
  // A person's own click (settings) or an admin's (admin) is recorded only from their own
  // session, never claimed by an operator's command (as the API refuses it from a key).
  if (*method == Method::kSettings || *method == Method::kAdmin) {
    return InvalidArgumentError("--method " + o.method + " is recorded only from the person's "
                                "or admin's own session (the settings or admin page); from the "
                                "command line use api, gpc or import");
  }
  e.method = *method;
  if (!o.at.empty()) {
    auto at = ParseTime(o.at);
    if (!at) return InvalidArgumentError("--at: " + at.error().message);
    e.at = *at;
  }
  return e;
}

int RecordConsent(const ConsentOptions& o, Action action) {
  auto e = EventFrom(o, action);
  if (!e) return Fail(e.error());
  auto ledger = OpenLedger(o.data, false);
  if (!ledger) return Fail(ledger.error());
  {  // a choice nobody's choice can change (necessary, prohibited) is not recorded
    auto snap = (*ledger)->engine().snapshot();
    const int32_t v = snap->terms().VersionAt(e->at ? e->at : (*ledger)->engine().Now());
    if (v >= 0) {
      if (auto st = CheckChoiceMatters(snap->terms().version(v), *e); !st) {
        return Fail(st.error().message + " (nothing was recorded)");
      }
    }
  }
  auto receipt = (*ledger)->RecordConsent(std::move(*e));
  if (!receipt) return Fail(receipt.error().message + " (nothing was recorded)");
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
  if (!provable) {
    std::cerr << "assent: warning: no proof in this receipt: " << provable.error().message << "\n";
  }
  return 0;
}

// The rules that ask this party, each with its pairs' states, as JSON into `w` and as text.
std::string WriteRules(const Snapshot& snap, PartyKind kind, const std::string& id, Timestamp now,
                       JsonWriter& w) {
  std::string text;
  w.Key("rules").BeginArray();
  const int32_t v = snap.terms().VersionAt(now);
  if (v >= 0) {
    const Terms& t = snap.terms().version(v);
    text += fmt::format("current state under terms {}:\n", t.label());
    for (const RuleView& view : ViewRules(snap, t, kind, id, now)) {
      if (!view.asks || !view.for_party) continue;
      const Rule& rule = *view.rule;
      std::set<std::string> states;  // one line when the pairs agree
      w.BeginObject().Key("rule").String(rule.id).Key("basis").String(BasisName(rule.basis));
      w.Key("summary").String(rule.summary).Key("pairs").BeginArray();
      for (const auto& pair : view.pairs) {
        w.BeginObject().Key("category").String(pair.category).Key("purpose").String(pair.purpose);
        w.Key("state").String(PartyStateName(pair.state)).Key("event");
        if (pair.event) {
          w.UInt(pair.event);
        } else {
          w.Null();
        }
        w.EndObject();
        states.insert(std::string(PartyStateName(pair.state)) +
                      (pair.event ? " (event " + std::to_string(pair.event) + ")" : ""));
      }
      w.EndArray().EndObject();
      std::string state;
      for (const auto& s : states) state += (state.empty() ? "" : " / ") + s;
      text += fmt::format("  {:<11} {:<36} {}\n    \"{}\"\n", BasisName(rule.basis), rule.id,
                          state, rule.summary);
    }
  }
  w.EndArray();
  return text;
}

int History(const ConsentOptions& o) {
  auto party = PartyFrom(o.subject, o.account);
  if (!party) return Fail(party.error());
  auto ledger = OpenLedger(o.data, true);
  if (!ledger) return Fail(ledger.error());
  const PartyKind kind = party->kind;
  const std::string& id = party->id;
  auto snap = (*ledger)->engine().snapshot();
  auto events = snap->EventsOf(kind, id);
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
                        FormatTime(e.at), ActionName(e.action), Join(e.categories, ","),
                        Join(e.purposes, ","), e.terms_version, MethodName(e.method));
  }
  w.EndArray();
  text += WriteRules(*snap, kind, id, (*ledger)->engine().Now(), w);
  w.EndObject();
  std::cout << (o.json ? w.str() + "\n" : text);
  return 0;
}

// The receipt of any consent entry, with its proof (as grant and withdraw print theirs): a
// receipt lost or never saved can be had again without recording anything.
int PrintReceipt(const ConsentOptions& o, uint64_t position) {
  auto ledger = OpenLedger(o.data, true);
  if (!ledger) return Fail(ledger.error());
  auto receipt = (*ledger)->ReceiptAt(position);
  if (!receipt) return Fail(receipt.error());
  auto key = LoadAuditKey(o.data, false);
  if (!key) {
    std::cout << receipt->ToJson() << "\n";
    std::cerr << "assent: warning: no proof in this receipt: " << key.error().message << "\n";
    return 0;
  }
  auto provable = audit::ProvableReceiptJson(**ledger, *key, *receipt);
  if (!provable) return Fail(provable.error());
  std::cout << *provable << "\n";
  return 0;
}

struct StaleOptions {
  std::string data = "./assent-data", rule, cursor, at;
  size_t limit = 1000;
  bool json = false;
};

// The parties whose grants under a rule were given under a meaning that changed since: the
// people to ask again. A page at a time; never cut short without saying how to go on.
int Stale(const StaleOptions& o) {
  if (Globals().database.empty() && !std::filesystem::exists(o.data + "/ledger.db")) {
    return Fail("no ledger in '" + o.data + "' (give --data DIR)");
  }
  auto ledger = OpenLedger(o.data, true);
  if (!ledger) return Fail(ledger.error());
  auto snap = (*ledger)->engine().snapshot();
  Timestamp now = (*ledger)->engine().Now();
  if (!o.at.empty()) {
    auto at = ParseTime(o.at);
    if (!at) return Fail("--at: " + at.error().message);
    now = *at;
  }
  const int32_t v = snap->terms().VersionAt(now);
  if (v < 0) return Fail("no terms are in effect at " + FormatTime(now));
  const Terms& terms = snap->terms().version(v);
  if (auto st = CheckAskingRule(terms, o.rule); !st) return Fail(st.error());
  auto page = PageStale(StaleParties(*snap, terms, o.rule, now), o.cursor, o.limit);
  if (!page) return Fail(page.error());
  JsonWriter w;
  w.BeginObject().Key("rule").String(o.rule).Key("terms").String(terms.label());
  w.Key("position").UInt(snap->position()).Key("total").UInt(page->total);
  w.Key("parties").BeginArray();
  std::string text = fmt::format("{} part{} with stale grants under rule {} (terms {}):\n",
                                 page->total, page->total == 1 ? "y" : "ies", o.rule, terms.label());
  for (const StaleParty& p : page->parties) {
    w.BeginObject().Key(PartyKindName(p.kind)).String(p.id).Key("grants").UInt(p.grants).EndObject();
    text += fmt::format("  {} {} ({} grant{})\n", PartyKindName(p.kind), p.id, p.grants,
                        p.grants == 1 ? "" : "s");
  }
  w.EndArray();
  if (!page->next_cursor.empty()) {
    w.Key("next_cursor").String(page->next_cursor);
    text += fmt::format("  ... {} more: assent consent stale --rule {} --cursor {}\n",
                        page->total - page->parties.size(), o.rule, page->next_cursor);
  }
  w.EndObject();
  std::cout << (o.json ? w.str() + "\n" : text);
  return 0;
}

void AddRecordCommand(CLI::App* consent, Action action, int* exit_code) {
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
  cmd->add_option("--method", o->method, "api | gpc | import (settings and admin come from sessions)")
      ->capture_default_str();
  cmd->add_option("--at", o->at, "When the choice was made (RFC 3339); default now");
  cmd->add_option("--terms-version", o->terms_version,
                  "The terms version shown; default the one in effect at --at");
  cmd->add_option("--actor", o->actor, "Who recorded it, if not the party");
  cmd->callback([o, action, exit_code] { *exit_code = RecordConsent(*o, action); });
}

}  // namespace

void RegisterConsentCommands(CLI::App& app, int* exit_code) {
  CLI::App* consent = app.add_subcommand("consent", "Record and read consent events");
  consent->require_subcommand(1);
  for (Action action : {Action::kGrant, Action::kWithdraw}) {
    AddRecordCommand(consent, action, exit_code);
  }
  auto o = std::make_shared<ConsentOptions>();
  auto* cmd = consent->add_subcommand(
      "history", "A party's consent events and its current state per rule");
  AddDataOption(cmd, &o->data);
  cmd->add_option("--subject", o->subject, "The person (user id)");
  cmd->add_option("--account", o->account, "The account id");
  cmd->add_flag("--json", o->json, "Print as JSON");
  cmd->callback([o, exit_code] { *exit_code = History(*o); });
  auto r = std::make_shared<ConsentOptions>();
  auto position = std::make_shared<uint64_t>(0);
  auto* receipt = consent->add_subcommand(
      "receipt", "Print the receipt of the consent event at a position, with its proof "
                 "(e.g. consent receipt --position 3 > receipt.json)");
  AddDataOption(receipt, &r->data);
  receipt->add_option("--position", *position, "The event's ledger position")->required();
  receipt->callback([r, position, exit_code] { *exit_code = PrintReceipt(*r, *position); });
  auto st = std::make_shared<StaleOptions>();
  auto* stale = consent->add_subcommand(
      "stale", "The parties to ask again: grants under a rule given under wording that changed since");
  AddDataOption(stale, &st->data);
  stale->add_option("--rule", st->rule, "A consent or objectable rule of the terms in effect")->required();
  stale->add_option("--limit", st->limit, "Parties per page (1-1000)")->capture_default_str();
  stale->add_option("--cursor", st->cursor, "Go on after the page that printed this cursor");
  stale->add_option("--at", st->at, "As of this time (RFC 3339), e.g. a new version's effective time; default now");
  stale->add_flag("--json", st->json, "Print as JSON");
  stale->callback([st, exit_code] { *exit_code = Stale(*st); });
}

}  // namespace assent::cli
