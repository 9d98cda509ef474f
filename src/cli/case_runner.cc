// Decision cases as data (case_runner.h), the runner shared by `assent terms test` and the
// project's suite. The case format is documented in docs/formats/cases.md.
#include "cli/case_runner.h"

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>

#include "assent/engine.h"
#include "assent/ledger.h"
#include "common/strings.h"
#include "engine/events_jsonl.h"

namespace assent::cli {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, sep)) {
    if (!cur.empty()) out.push_back(cur);
  }
  return out;
}

std::map<std::string, std::string> KeyValues(const std::vector<std::string>& tokens,
                                             size_t from) {
  std::map<std::string, std::string> kv;
  for (size_t i = from; i < tokens.size(); ++i) {
    size_t eq = tokens[i].find('=');
    if (eq == std::string::npos) {
      kv[tokens[i]] = "";
    } else {
      kv[tokens[i].substr(0, eq)] = tokens[i].substr(eq + 1);
    }
  }
  return kv;
}

class CaseRunner {
 public:
  CaseRunner(const fs::path& file, const CaseOptions& o)
      : file_(file), through_ledger_(o.through_ledger), options_(o) {
    result_.file = file.string();
  }

  CaseResult Run() {
    RunLines();
    return std::move(result_);
  }

 private:
  // Records a failure when `ok` is false; the caller stops the case where an ASSERT stood.
  bool Check(bool ok, const std::string& message) {
    if (!ok) result_.failures.push_back({line_no_, message});
    return ok;
  }

  void RunLines() {
    std::ifstream in(file_);
    if (!Check(static_cast<bool>(in), "cannot read " + file_.string())) return;
    for (const auto& t : options_.terms) {
      std::ifstream f(t);
      std::stringstream ss;
      ss << f.rdbuf();
      if (!Check(static_cast<bool>(f), "cannot read terms file " + t)) return;
      AddTerms(ss.str(), t);
      if (!result_.failures.empty()) return;
    }
    std::vector<std::string> lines;
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    bool named = false;
    for (size_t i = 0; i < lines.size(); ++i) {
      line_no_ = i + 1;
      const std::string& line = lines[i];
      if (line.starts_with("# name:")) {
        named = true;
        result_.name = line.substr(7);
        while (!result_.name.empty() && result_.name.front() == ' ') result_.name.erase(0, 1);
      }
      if (line.empty() || line[0] == '#') continue;
      auto tokens = Split(line, ' ');
      const std::string& cmd = tokens[0];
      const size_t failures = result_.failures.size();
      if (cmd == "now") {
        auto t = tokens.size() > 1 ? ParseTime(tokens[1]) : ParseTime("");
        if (!Check(static_cast<bool>(t), "now: a time (RFC 3339) is needed")) return;
        now_ = *t;
      } else if (cmd == "terms" && tokens.size() == 2) {
        const std::string yaml = ReadTermsFile(tokens[1]);
        if (stop_) return;
        AddTerms(yaml, tokens[1]);
      } else if (cmd == "terms") {
        std::string yaml;
        for (++i; i < lines.size() && lines[i] != "end"; ++i) yaml += lines[i] + "\n";
        AddTerms(yaml, "inline@" + std::to_string(line_no_));
      } else if (cmd == "expect-terms-error") {
        const std::string code = tokens.size() > 1 ? tokens[1] : "";
        ++result_.expectations;
        if (!Check(!terms_error_code_.empty(), "terms compiled but " + code + " was expected")) return;
        Check(terms_error_code_.find("[" + code + "]") != std::string::npos,
              "terms refused for another reason:\n" + terms_error_code_);
        return;  // nothing else can run without terms
      } else if (cmd == "event") {
        Event(line.substr(6));
      } else if (cmd == "event-in" && tokens.size() >= 3) {
        // event-in LOCALE JSON: the event answered its rule's notice in that language.
        const size_t json = line.find('{');
        Event(json == std::string::npos ? "" : line.substr(json), tokens[1]);
      } else if (cmd == "expect-event-error") {
        ++result_.expectations;
        if (!Check(!last_event_error_.empty(), "the event above was accepted")) return;
        std::string text = line.substr(line.find(' ') + 1);
        Check(last_event_error_.find(text) != std::string::npos, last_event_error_);
        last_event_error_.clear();
      } else if (cmd == "decide") {
        if (!Check(last_event_error_.empty(), "event refused: " + last_event_error_)) return;
        Decide(KeyValues(tokens, 1));
      } else if (cmd == "expect") {
        Expect(tokens, line);
      } else if (cmd == "erase") {
        Erase(KeyValues(tokens, 1));
      } else {
        Check(false, "unknown directive '" + cmd + "'");
        return;
      }
      if (result_.failures.size() > failures && stop_) return;
      if (stop_) return;
    }
    line_no_ = 0;
    Check(named, file_.string() + " has no '# name:' line");
    Check(result_.expectations > 0, file_.string() + " checks nothing");
  }

  std::string Where() const { return file_.filename().string() + ":" + std::to_string(line_no_); }

  std::string ReadTermsFile(const std::string& name) {
    for (const fs::path& dir : {file_.parent_path() / "terms", file_.parent_path(),
                                fs::path(options_.terms_dir) / "terms"}) {
      std::ifstream in(dir / name);
      if (!in) continue;
      std::stringstream ss;
      ss << in.rdbuf();
      return ss.str();
    }
    Check(false, "no terms file " + name + " (looked in terms/ beside the case, and beside it)");
    stop_ = true;
    return "";
  }

  void AddTerms(const std::string& yaml, const std::string& name) {
    LintResult r = LintTerms(yaml, name);
    if (r.has_errors()) {
      for (const auto& d : r.diagnostics) terms_error_code_ += d.ToString() + "\n";
      return;
    }
    versions_.push_back(r.terms);
    if (through_ledger_) {
      if (!ledger_) {
        LedgerOptions o;
        o.in_memory = true;
        o.clock = [this] { return now_; };
        auto l = Ledger::Open(o);
        if (!Check(static_cast<bool>(l), l ? "" : l.error().message)) return Stop();
        ledger_ = std::move(*l);
      }
      auto p = ledger_->PublishTerms(yaml, name, {.backfill = true, .allow_loosening = true});
      if (!Check(static_cast<bool>(p), p ? "" : p.error().message)) return Stop();
      return;
    }
    auto set = TermsSet::Create(versions_);
    if (!Check(static_cast<bool>(set), set ? "" : set.error().message)) return Stop();
    engine_ = std::make_unique<Engine>(*set, [this] { return now_; });
  }

  Engine* engine() { return through_ledger_ ? (ledger_ ? &ledger_->engine() : nullptr) : engine_.get(); }

  void Stop() { stop_ = true; }

  void Event(const std::string& json, const std::string& locale = "") {
    if (!Check(last_event_error_.empty(), "event refused: " + last_event_error_)) return Stop();
    if (!Check(engine() != nullptr, "no terms before the first event")) return Stop();
    if (!Check(terms_error_code_.empty(), terms_error_code_)) return Stop();
    auto parsed = ParseEventsJsonl(json, Where());
    if (!parsed) {
      last_event_error_ = parsed.error().message;
      return;
    }
    if (!Check(parsed->size() == 1, "an event line holds one event")) return Stop();
    ConsentEvent e = (*parsed)[0];
    if (!locale.empty() && !Notice(locale, &e)) return Stop();
    if (json.find("\"position\"") == std::string::npos) e.position = ++events_;
    else events_ = e.position;
    if (through_ledger_) {
      const uint64_t case_position = e.position;
      e.position = 0;
      // Recorded when it was made: the ledger refuses events later than its clock.
      const Timestamp now = now_;
      now_ = std::max(now_, e.at);
      auto receipt = ledger_->RecordConsent(e);
      now_ = now;
      if (!receipt) {
        last_event_error_ = receipt.error().message;
        events_ = case_position - 1;
      } else {
        ledger_positions_[receipt->position] = case_position;
      }
      return;
    }
    if (auto st = engine_->Apply(e); !st) {
      last_event_error_ = st.error().message;
      events_ = engine_->snapshot()->position();
    }
  }

  // The notice of the event's rule in `locale`, under the version it is given under.
  bool Notice(const std::string& locale, ConsentEvent* e) {
    const TermsSet& ts = through_ledger_ ? ledger_->engine().snapshot()->terms()
                                         : engine_->snapshot()->terms();
    const int32_t v = e->terms_version.empty() ? ts.VersionAt(e->at) : ts.FindVersion(e->terms_version);
    if (!Check(v >= 0, "event-in: no terms version for the event")) return false;
    const Terms& t = ts.version(v);
    const int32_t r = t.FindRule(e->rule);
    if (!Check(r >= 0, "event-in needs the event's \"rule\" (its notice is that rule's)")) return false;
    auto text = NoticeText(t, t.rules()[r], locale);
    if (!Check(text.has_value(), "event-in: terms " + t.label() + " are not offered in '" + locale + "'")) {
      return false;
    }
    e->notice_locale = locale;
    e->notice_sha256 = NoticeSha256(*text);
    return true;
  }

  void Erase(const std::map<std::string, std::string>& kv) {
    if (!Check(engine() != nullptr, "no terms")) return Stop();
    if (!Check(kv.count("subject") || kv.count("account"), "erase subject=ID or account=ID")) {
      return Stop();
    }
    const bool subject = kv.count("subject");
    const PartyKind kind = subject ? PartyKind::kSubject : PartyKind::kAccount;
    const std::string& id = kv.at(subject ? "subject" : "account");
    if (through_ledger_) {
      auto erased = ledger_->EraseParty(kind, id);
      if (!Check(erased || erased.error().code == ErrorCode::kNotFound,
                 erased ? "" : erased.error().message)) {
        return Stop();
      }
      if (!erased) {  // never recorded: the suppression list still names it, as erasure would
        Engine& engine = ledger_->engine();
        if (!engine.has_suppression_key()) engine.SetSuppressionKey({9, 9, 9});
        Check(static_cast<bool>(engine.Suppress(ErasedPartyHash(*engine.suppression_key(), kind, id))),
              "cannot suppress");
      }
      return;
    }
    const std::array<uint8_t, 16> key{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    if (!engine_->has_suppression_key()) engine_->SetSuppressionKey(key);
    Check(static_cast<bool>(engine_->ForgetParty(kind, id)), "cannot forget the party");
    Check(static_cast<bool>(engine_->Suppress(ErasedPartyHash(key, kind, id))), "cannot suppress");
  }

  void Decide(const std::map<std::string, std::string>& kv) {
    if (!Check(terms_error_code_.empty(), "terms refused:\n" + terms_error_code_)) return Stop();
    if (!Check(engine() != nullptr, "no terms")) return Stop();
    request_strings_ = kv;
    subjects_.clear();
    subject_views_.clear();
    if (kv.count("subjects")) subjects_ = Split(kv.at("subjects"), ',');
    for (const auto& s : subjects_) subject_views_.push_back(s);
    DecisionRequest q;
    q.category = request_strings_["category"];
    q.purpose = request_strings_["purpose"];
    q.subjects = subject_views_;
    if (kv.count("account")) q.account = request_strings_["account"];
    if (kv.count("at")) {
      auto at = ParseTime(kv.at("at"));
      if (!Check(static_cast<bool>(at), at ? "" : at.error().message)) return Stop();
      q.at = *at;
    }
    snapshot_ = engine()->snapshot();
    decision_ = snapshot_->Decide(q, now_);
    decided_ = true;
  }

  void Expect(const std::vector<std::string>& tokens, const std::string& line) {
    if (!Check(decided_, "'expect' without 'decide'")) return Stop();
    decided_ = false;
    ++result_.expectations;
    if (!Check(tokens.size() > 1, "expect allow|deny REASON ... or expect error TEXT")) return;
    const std::string& what = tokens[1];
    if (what == "error") {
      if (!Check(!decision_, decision_ ? "expected an error, got " + DecisionToJson(*decision_) : "")) {
        return;
      }
      std::string text = line.substr(line.find("error") + 6);
      Check(decision_.error().message.find(text) != std::string::npos, decision_.error().message);
      return;
    }
    if (!Check(static_cast<bool>(decision_),
               decision_ ? "" : "could not decide: " + decision_.error().message)) {
      return;
    }
    const Decision& d = *decision_;
    const std::string json = DecisionToJson(d);
    auto same = [&](const std::string& got, const std::string& want, const char* what_field) {
      Check(got == want, std::string("expected ") + what_field + " " + want + ", got " + got +
                             ": " + json);
    };
    same(d.allow ? "allow" : "deny", what, "decision");
    if (!Check(tokens.size() > 2, "expect allow|deny REASON")) return;
    same(std::string(ReasonName(d.reason)), tokens[2], "reason");
    auto kv = KeyValues(tokens, 3);
    if (kv.count("rule")) same(d.rule ? d.rule->id : "-", kv["rule"], "rule");
    if (kv.count("position") && !through_ledger_) {
      same(std::to_string(d.position), kv["position"], "position");
    }
    if (kv.count("terms")) same(d.terms->version(), kv["terms"], "terms");
    if (kv.count("clauses")) {
      std::string got;
      for (const auto& c : d.rule ? d.rule->clause_ids : std::vector<std::string>{}) {
        got += (got.empty() ? "" : ",") + c;
      }
      same(got, kv["clauses"], "clauses");
    }
    if (kv.count("parties")) {
      std::string got;
      for (const auto& p : d.parties) {
        got += (got.empty() ? "" : ";") + std::string(PartyKindName(p.kind)) + "/" +
               std::string(p.id) + "/" + std::string(PartyStateName(p.state)) + "/" +
               (p.event ? std::to_string(CasePosition(p.event)) : "-");
      }
      same(got, kv["parties"], "parties");
    }
  }

  // The case's numbering of an event the ledger recorded at `position`.
  uint64_t CasePosition(uint64_t position) const {
    if (!through_ledger_) return position;
    auto it = ledger_positions_.find(position);
    return it == ledger_positions_.end() ? position : it->second;
  }

  fs::path file_;
  bool through_ledger_ = false;
  CaseOptions options_;
  CaseResult result_;
  bool stop_ = false;  // a failure the case cannot go on after
  std::unique_ptr<Ledger> ledger_;
  std::map<uint64_t, uint64_t> ledger_positions_;  // ledger position -> the case's
  size_t line_no_ = 0;
  Timestamp now_ = *ParseTime("2024-01-01T00:00:00Z");
  std::vector<std::shared_ptr<const Terms>> versions_;
  std::unique_ptr<Engine> engine_;
  std::string terms_error_code_;
  std::string last_event_error_;
  uint64_t events_ = 0;
  std::map<std::string, std::string> request_strings_;
  std::vector<std::string> subjects_;
  std::vector<std::string_view> subject_views_;
  std::shared_ptr<const Snapshot> snapshot_;
  Result<Decision> decision_ = InvalidArgumentError("no decision");
  bool decided_ = false;
};

}  // namespace

CaseResult RunCase(const std::string& path, const CaseOptions& options) {
  return CaseRunner(path, options).Run();
}

}  // namespace assent::cli
