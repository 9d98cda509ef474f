// Runs every decision case in test/cases/*.test (DESIGN.md "Decision semantics" as data).
//
// A case file is a sequence of directives, one per line ('#' lines are comments; the first
// ones give "# name:" and "# description:"):
//   now TIME                       the clock for questions about the present
//   terms FILE                     a terms version from test/cases/terms/ (repeatable)
//   terms                          an inline terms version: YAML lines up to a line "end"
//   expect-terms-error CODE        the terms given so far must be refused with that lint code
//   event JSON                     a consent event (JSON Lines format); position = count + 1
//   expect-event-error TEXT        the event just above must be refused, message containing TEXT
//   decide category=C purpose=P [subjects=u1,u2] [account=A] [at=TIME]
//   expect allow|deny REASON [rule=ID|-] [position=N] [terms=VERSION] [clauses=a,b]
//          [parties=KIND/ID/STATE/EVENT;...]   (EVENT is a position or "-")
//   expect error TEXT              the question cannot be answered; message contains TEXT
//   erase subject=ID | account=ID  erasure: the party's events are forgotten and it joins the
//                                  suppression list (under a fixed test key)
//
// Every case runs twice: on an Engine, and through a Ledger on the memory store (terms
// published with --backfill, events recorded with the ledger's defaults, erasure by
// EraseParty). The ledger numbers its own entries (terms take positions too), so there
// `position=` is not compared and the event positions in `parties=` are translated.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "assent/engine.h"
#include "assent/ledger.h"
#include "common/strings.h"
#include "engine/events_jsonl.h"

namespace assent {
namespace {

namespace fs = std::filesystem;

const fs::path kCasesDir = fs::path(ASSENT_SOURCE_DIR) / "test" / "cases";

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
  CaseRunner(const fs::path& file, bool through_ledger)
      : file_(file), through_ledger_(through_ledger) {}

  void Run() {
    std::ifstream in(file_);
    ASSERT_TRUE(in) << "cannot read " << file_;
    std::vector<std::string> lines;
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    bool named = false;
    for (size_t i = 0; i < lines.size(); ++i) {
      line_no_ = i + 1;
      const std::string& line = lines[i];
      if (line.starts_with("# name:")) named = true;
      if (line.empty() || line[0] == '#') continue;
      auto tokens = Split(line, ' ');
      const std::string& cmd = tokens[0];
      SCOPED_TRACE(Where());
      if (cmd == "now") {
        now_ = *ParseTime(tokens.at(1));
      } else if (cmd == "terms" && tokens.size() == 2) {
        AddTerms(ReadTermsFile(tokens[1]), tokens[1]);
      } else if (cmd == "terms") {
        std::string yaml;
        for (++i; i < lines.size() && lines[i] != "end"; ++i) yaml += lines[i] + "\n";
        AddTerms(yaml, "inline@" + std::to_string(line_no_));
      } else if (cmd == "expect-terms-error") {
        ASSERT_FALSE(terms_error_code_.empty())
            << "terms compiled but " << tokens.at(1) << " was expected";
        EXPECT_NE(terms_error_code_.find("[" + tokens.at(1) + "]"), std::string::npos)
            << "terms refused for another reason:\n" << terms_error_code_;
        return;  // nothing else can run without terms
      } else if (cmd == "event") {
        Event(line.substr(6));
      } else if (cmd == "expect-event-error") {
        ASSERT_FALSE(last_event_error_.empty()) << "the event above was accepted";
        std::string text = line.substr(line.find(' ') + 1);
        EXPECT_NE(last_event_error_.find(text), std::string::npos) << last_event_error_;
        last_event_error_.clear();
      } else if (cmd == "decide") {
        ASSERT_TRUE(last_event_error_.empty()) << "event refused: " << last_event_error_;
        Decide(KeyValues(tokens, 1));
      } else if (cmd == "expect") {
        Expect(tokens, line);
      } else if (cmd == "erase") {
        Erase(KeyValues(tokens, 1));
      } else {
        FAIL() << "unknown directive '" << cmd << "'";
      }
    }
    EXPECT_TRUE(named) << file_ << " has no '# name:' line";
    EXPECT_GT(expectations_, 0) << file_ << " checks nothing";
  }

 private:
  std::string Where() const { return file_.filename().string() + ":" + std::to_string(line_no_); }

  std::string ReadTermsFile(const std::string& name) {
    std::ifstream in(kCasesDir / "terms" / name);
    EXPECT_TRUE(in) << "no terms file " << name;
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
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
        ASSERT_TRUE(l) << l.error().message;
        ledger_ = std::move(*l);
      }
      auto p = ledger_->PublishTerms(yaml, name, {.backfill = true, .allow_loosening = true});
      ASSERT_TRUE(p) << p.error().message;
      return;
    }
    auto set = TermsSet::Create(versions_);
    ASSERT_TRUE(set) << set.error().message;
    engine_ = std::make_unique<Engine>(*set, [this] { return now_; });
  }

  Engine* engine() { return through_ledger_ ? (ledger_ ? &ledger_->engine() : nullptr) : engine_.get(); }

  void Event(const std::string& json) {
    ASSERT_TRUE(last_event_error_.empty()) << "event refused: " << last_event_error_;
    ASSERT_TRUE(engine()) << "no terms before the first event";
    ASSERT_TRUE(terms_error_code_.empty()) << terms_error_code_;
    auto parsed = ParseEventsJsonl(json, Where());
    if (!parsed) {
      last_event_error_ = parsed.error().message;
      return;
    }
    ASSERT_EQ(parsed->size(), 1u);
    ConsentEvent e = (*parsed)[0];
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

  void Erase(const std::map<std::string, std::string>& kv) {
    ASSERT_TRUE(engine()) << "no terms";
    const bool subject = kv.count("subject");
    const PartyKind kind = subject ? PartyKind::kSubject : PartyKind::kAccount;
    const std::string& id = kv.at(subject ? "subject" : "account");
    if (through_ledger_) {
      auto erased = ledger_->EraseParty(kind, id);
      ASSERT_TRUE(erased || erased.error().code == ErrorCode::kNotFound) << erased.error().message;
      if (!erased) {  // never recorded: the suppression list still names it, as erasure would
        Engine& engine = ledger_->engine();
        if (!engine.has_suppression_key()) engine.SetSuppressionKey({9, 9, 9});
        ASSERT_TRUE(engine.Suppress(ErasedPartyHash(*engine.suppression_key(), kind, id)));
      }
      return;
    }
    const std::array<uint8_t, 16> key{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    if (!engine_->has_suppression_key()) engine_->SetSuppressionKey(key);
    ASSERT_TRUE(engine_->ForgetParty(kind, id));
    ASSERT_TRUE(engine_->Suppress(ErasedPartyHash(key, kind, id)));
  }

  void Decide(const std::map<std::string, std::string>& kv) {
    ASSERT_TRUE(terms_error_code_.empty()) << "terms refused:\n" << terms_error_code_;
    ASSERT_TRUE(engine()) << "no terms";
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
      ASSERT_TRUE(at) << at.error().message;
      q.at = *at;
    }
    snapshot_ = engine()->snapshot();
    decision_ = snapshot_->Decide(q, now_);
    decided_ = true;
  }

  void Expect(const std::vector<std::string>& tokens, const std::string& line) {
    ASSERT_TRUE(decided_) << "'expect' without 'decide'";
    decided_ = false;
    ++expectations_;
    const std::string& what = tokens.at(1);
    if (what == "error") {
      ASSERT_FALSE(decision_) << "expected an error, got " << DecisionToJson(*decision_);
      std::string text = line.substr(line.find("error") + 6);
      EXPECT_NE(decision_.error().message.find(text), std::string::npos)
          << decision_.error().message;
      return;
    }
    ASSERT_TRUE(decision_) << "could not decide: " << decision_.error().message;
    const Decision& d = *decision_;
    std::string json = DecisionToJson(d);
    EXPECT_EQ(d.allow ? "allow" : "deny", what) << json;
    EXPECT_EQ(ReasonName(d.reason), tokens.at(2)) << json;
    auto kv = KeyValues(tokens, 3);
    if (kv.count("rule")) {
      EXPECT_EQ(d.rule ? d.rule->id : "-", kv["rule"]) << json;
    }
    if (kv.count("position") && !through_ledger_) {
      EXPECT_EQ(std::to_string(d.position), kv["position"]) << json;
    }
    if (kv.count("terms")) {
      EXPECT_EQ(d.terms->version(), kv["terms"]) << json;
    }
    if (kv.count("clauses")) {
      std::string got;
      for (const auto& c : d.rule ? d.rule->clause_ids : std::vector<std::string>{}) {
        got += (got.empty() ? "" : ",") + c;
      }
      EXPECT_EQ(got, kv["clauses"]) << json;
    }
    if (kv.count("parties")) {
      std::string got;
      for (const auto& p : d.parties) {
        got += (got.empty() ? "" : ";") + std::string(PartyKindName(p.kind)) + "/" +
               std::string(p.id) + "/" + std::string(PartyStateName(p.state)) + "/" +
               (p.event ? std::to_string(CasePosition(p.event)) : "-");
      }
      EXPECT_EQ(got, kv["parties"]) << json;
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
  int expectations_ = 0;
};

std::vector<std::string> CaseFiles() {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(kCasesDir)) {
    if (e.path().extension() == ".test") out.push_back(e.path().stem().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

class DecisionCaseTest : public testing::TestWithParam<std::string> {};

TEST_P(DecisionCaseTest, Holds) { CaseRunner(kCasesDir / (GetParam() + ".test"), false).Run(); }

// The same case through the ledger's defaults (terms resolution, rule scopes, validation).
TEST_P(DecisionCaseTest, HoldsThroughTheLedger) {
  CaseRunner(kCasesDir / (GetParam() + ".test"), true).Run();
}

INSTANTIATE_TEST_SUITE_P(Cases, DecisionCaseTest, testing::ValuesIn(CaseFiles()),
                         [](const testing::TestParamInfo<std::string>& info) {
                           std::string n = info.param;
                           for (char& c : n) {
                             if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return n;
                         });

TEST(DecisionCaseSuite, HasAtLeastSixtyCases) { EXPECT_GE(CaseFiles().size(), 60u); }

}  // namespace
}  // namespace assent
