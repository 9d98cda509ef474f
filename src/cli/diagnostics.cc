// Diagnostics as compilers print them: "file:line:col: error: message [code]", then the
// offending source line and a caret under the column; coloured on a terminal only.
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "cli/commands.h"

namespace assent::cli {
namespace {

constexpr const char* kBold = "\033[1m";
constexpr const char* kRed = "\033[1;31m";
constexpr const char* kMagenta = "\033[1;35m";
constexpr const char* kGreen = "\033[1;32m";
constexpr const char* kReset = "\033[0m";

// Line `n` (1-based) of `source`, without its ending; nullopt past the end.
std::optional<std::string_view> SourceLine(std::string_view source, int n) {
  size_t at = 0;
  for (int i = 1; i < n; ++i) {
    const size_t nl = source.find('\n', at);
    if (nl == std::string_view::npos) return std::nullopt;
    at = nl + 1;
  }
  if (at > source.size() || (at == source.size() && n > 1)) return std::nullopt;
  std::string_view line = source.substr(at, source.find('\n', at) - at);
  if (line.ends_with('\r')) line.remove_suffix(1);
  return line;
}

}  // namespace

bool UseColor(int fd) {
  const char* force = std::getenv("CLICOLOR_FORCE");
  if (force && *force && std::strcmp(force, "0") != 0) return true;
  const char* no_color = std::getenv("NO_COLOR");  // https://no-color.org: any value turns it off
  if (no_color && *no_color) return false;
  const char* term = std::getenv("TERM");
  if (term && std::strcmp(term, "dumb") == 0) return false;
  return ::isatty(fd) == 1;
}

std::string RenderDiagnostic(const Diagnostic& d, std::string_view source, bool color) {
  const bool error = d.severity == Severity::kError;
  std::string where = d.file;
  if (d.line > 0) where += ":" + std::to_string(d.line) + ":" + std::to_string(d.column);
  std::string out = color ? std::string(kBold) + where + ":" + kReset + " " +
                                (error ? kRed : kMagenta) + (error ? "error:" : "warning:") + kReset
                          : where + ": " + (error ? "error:" : "warning:");
  out += " " + d.message + (d.code.empty() ? "" : " [" + d.code + "]") + "\n";
  auto line = d.line > 0 ? SourceLine(source, d.line) : std::nullopt;
  if (!line) return out;
  // A window of at most 160 bytes around the column, so a huge line stays readable.
  const size_t col = d.column > 0 ? static_cast<size_t>(d.column - 1) : 0;
  const size_t from = col > 100 ? col - 60 : 0;
  std::string_view shown = line->substr(std::min(from, line->size()), 160);
  const std::string number = std::to_string(d.line);
  out += " " + number + " | " + (from > 0 ? "..." : "") + std::string(shown) + "\n";
  std::string pad(number.size() + 1, ' ');
  pad += " | " + std::string(from > 0 ? 3 : 0, ' ');
  for (size_t i = from; i < col && i < line->size(); ++i) pad += (*line)[i] == '\t' ? '\t' : ' ';
  out += pad + (color ? std::string(kGreen) + "^" + kReset : "^") + "\n";
  return out;
}

}  // namespace assent::cli
