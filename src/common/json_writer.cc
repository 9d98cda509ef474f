// JSON string escaping.
#include "common/json_writer.h"

#include "common/strings.h"

namespace assent {

void AppendJsonString(std::string& out, std::string_view s) {
  // JSON text is UTF-8 (RFC 8259 §8.1): bytes that are not are never echoed raw.
  if (!ValidUtf8(s)) return AppendJsonString(out, ReplaceInvalidUtf8(s));
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  size_t run = 0;  // start of the pending run of characters that need no escape
  for (size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        out += "\\u00";
        out += kHex[c >> 4];
        out += kHex[c & 15];
    }
  }
  out.append(s.data() + run, s.size() - run);
  out += '"';
}

}  // namespace assent
