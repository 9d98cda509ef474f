// Decision cases as data (test/cases/*.test, docs/formats/cases.md): runs a case file against
// an Engine, or through a Ledger on the memory store, and says which expectations failed.
// Shared by `assent terms test` (your own terms, pinned as tests in your CI) and the project's
// own suite (test/cases_test.cc).
#ifndef ASSENT_CLI_CASE_RUNNER_H_
#define ASSENT_CLI_CASE_RUNNER_H_

#include <cstddef>
#include <string>
#include <vector>

namespace assent::cli {

struct CaseOptions {
  // Through a Ledger (its defaults: terms resolution, rule scopes, validation) rather than an
  // Engine directly.
  bool through_ledger = false;
  // Terms files published before the case's own directives (`assent terms test --terms`).
  std::vector<std::string> terms;
  // Where `terms NAME` directives look, after the case file's own directory: DIR/terms.
  std::string terms_dir;
};

struct CaseFailure {
  size_t line = 0;  // in the case file; 0 for the file as a whole
  std::string message;
};

struct CaseResult {
  std::string file, name;  // name: the "# name:" line
  int expectations = 0;
  std::vector<CaseFailure> failures;
  bool passed() const { return failures.empty(); }
};

CaseResult RunCase(const std::string& path, const CaseOptions& options);

}  // namespace assent::cli

#endif  // ASSENT_CLI_CASE_RUNNER_H_
