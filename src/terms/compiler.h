// The terms compiler: YAML text -> diagnostics and, when there is no error, a compiled Terms.
// Parsing (this file's .cc) and the rule table with its checks (table.cc) are one class
// because the table checks report at the YAML marks the parser recorded.
#ifndef ASSENT_TERMS_COMPILER_H_
#define ASSENT_TERMS_COMPILER_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "assent/terms.h"

namespace assent {

// Where something was written in the YAML (1-based; 0 when unknown).
struct SourcePos {
  int line = 0;
  int column = 0;
};

class TermsCompiler {
 public:
  TermsCompiler(std::string_view yaml, std::string_view file);
  // Runs every check. Not reentrant; call once.
  LintResult Run();

 private:
  struct RuleSource {
    SourcePos pos, summary_pos, basis_pos;
    std::vector<SourcePos> category_pos, purpose_pos;
  };

  void Report(Severity s, SourcePos pos, std::string message, std::string code);
  void Err(SourcePos pos, std::string message, std::string code) {
    Report(Severity::kError, pos, std::move(message), std::move(code));
  }
  void Warn(SourcePos pos, std::string message, std::string code) {
    Report(Severity::kWarning, pos, std::move(message), std::move(code));
  }

  // table.cc
  void BuildTable();
  void CheckDerived();
  void WarnUncovered();
  int32_t MostSpecific(const std::vector<int32_t>& rules, int32_t c, int32_t p,
                       bool* ambiguous, int32_t* other) const;
  int32_t MatchedCategory(const Rule& r, int32_t c) const;
  int32_t MatchedPurpose(const Rule& r, int32_t p) const;

  friend struct TermsCompilerParser;

  std::string yaml_;
  std::string file_;
  std::vector<Diagnostic> diagnostics_;
  std::shared_ptr<Terms> terms_;
  std::vector<SourcePos> category_pos_, purpose_pos_, derived_pos_;
  std::vector<RuleSource> rule_pos_;
};

}  // namespace assent

#endif  // ASSENT_TERMS_COMPILER_H_
