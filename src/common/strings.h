// Small string helpers shared by every module: edit distance for "did you mean" hints.
#ifndef ASSENT_COMMON_STRINGS_H_
#define ASSENT_COMMON_STRINGS_H_

#include <string>
#include <string_view>
#include <vector>

namespace assent {

// Levenshtein distance between a and b.
size_t EditDistance(std::string_view a, std::string_view b);

// The candidate closest to `word` when it is close enough to be a likely typo, else "".
std::string DidYouMean(std::string_view word, const std::vector<std::string>& candidates);

// " (did you mean 'x'?)" or "".
std::string DidYouMeanSuffix(std::string_view word, const std::vector<std::string>& candidates);
// The items with `sep` between them.
std::string Join(const std::vector<std::string>& items, std::string_view sep);

// Standard base64 (RFC 4648, with padding).
std::string Base64Encode(std::string_view bytes);
// False on anything that is not canonical base64.
bool Base64Decode(std::string_view text, std::string* bytes);

// True when an id (a subject's or an account's) is empty or only whitespace: nobody can ever
// be named by it, so it is refused wherever an id enters (fail closed, never "no objection").
inline bool BlankId(std::string_view id) {
  for (char c : id) {
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != '\v' && c != '\f') return false;
  }
  return true;
}

// True when `s` is well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF).
bool ValidUtf8(std::string_view s);

// `s` with every byte that is not part of well-formed UTF-8 replaced by U+FFFD: what JSON
// answers echo of input they did not accept (a path, a header), never the raw bytes.
std::string ReplaceInvalidUtf8(std::string_view s);

}  // namespace assent

#endif  // ASSENT_COMMON_STRINGS_H_
