// The public entry points of terms/ (assent/terms.h): lint, compile, and load a file.
#include <algorithm>
#include <fstream>
#include <sstream>

#include "assent/terms.h"
#include "terms/compiler.h"

namespace assent {

std::string Diagnostic::ToString() const {
  std::ostringstream os;
  os << file << ":" << line << ":" << column << ": "
     << (severity == Severity::kError ? "error" : "warning") << ": " << message << " [" << code
     << "]";
  return os.str();
}

bool LintResult::has_errors() const {
  return std::any_of(diagnostics.begin(), diagnostics.end(),
                     [](const Diagnostic& d) { return d.severity == Severity::kError; });
}

LintResult LintTerms(std::string_view yaml, std::string_view file) {
  return TermsCompiler(yaml, file).Run();
}

Result<std::shared_ptr<const Terms>> CompileTerms(std::string_view yaml, std::string_view file) {
  LintResult r = LintTerms(yaml, file);
  if (!r.has_errors()) return r.terms;
  std::string msg = "terms do not compile:";
  for (const auto& d : r.diagnostics) {
    if (d.severity == Severity::kError) msg += "\n  " + d.ToString();
  }
  return InvalidArgumentError(msg);
}

Result<std::shared_ptr<const Terms>> LoadTermsFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError("cannot read terms file '" + path + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return NotFoundError("cannot read terms file '" + path + "'");
  return CompileTerms(ss.str(), path);
}

}  // namespace assent
