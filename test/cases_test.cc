// Runs every decision case in test/cases/*.test (DESIGN.md "Decision semantics" as data) with
// the runner `assent terms test` uses (src/cli/case_runner.h): on an Engine, and through a
// Ledger on the memory store. The format: docs/formats/cases.md.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "assent/engine.h"
#include "assent/ledger.h"
#include "common/strings.h"
#include "engine/events_jsonl.h"
#include "cli/case_runner.h"

namespace assent {
namespace {

namespace fs = std::filesystem;

const fs::path kCasesDir = fs::path(ASSENT_SOURCE_DIR) / "test" / "cases";

// Every failure of a case, as a test failure naming its line.
void Holds(const std::string& name, bool through_ledger) {
  cli::CaseOptions o;
  o.through_ledger = through_ledger;
  const cli::CaseResult r = cli::RunCase((kCasesDir / (name + ".test")).string(), o);
  for (const auto& f : r.failures) {
    ADD_FAILURE() << name << ".test:" << f.line << ": " << f.message;
  }
  EXPECT_GT(r.expectations, 0);
}

std::vector<std::string> CaseFiles() {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(kCasesDir)) {
    if (e.path().extension() == ".test") out.push_back(e.path().stem().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

class DecisionCaseTest : public testing::TestWithParam<std::string> {};

TEST_P(DecisionCaseTest, Holds) { Holds(GetParam(), false); }

// The same case through the ledger's defaults (terms resolution, rule scopes, validation).
TEST_P(DecisionCaseTest, HoldsThroughTheLedger) { Holds(GetParam(), true); }

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
