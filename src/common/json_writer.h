// A minimal streaming JSON writer for hot paths (decision JSON). It writes compact JSON with
// keys in the order given; strings are escaped per RFC 8259.
#ifndef ASSENT_COMMON_JSON_WRITER_H_
#define ASSENT_COMMON_JSON_WRITER_H_

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

namespace assent {

// Appends `s` to `out` as a JSON string literal (with the quotes).
void AppendJsonString(std::string& out, std::string_view s);

class JsonWriter {
 public:
  JsonWriter& BeginObject() { return Open('{'); }
  JsonWriter& EndObject() { return Close('}'); }
  JsonWriter& BeginArray() { return Open('['); }
  JsonWriter& EndArray() { return Close(']'); }
  JsonWriter& Key(std::string_view k) {
    Separate();
    AppendJsonString(out_, k);
    out_ += ':';
    after_key_ = true;
    return *this;
  }
  JsonWriter& String(std::string_view s) {
    Separate();
    AppendJsonString(out_, s);
    return *this;
  }
  JsonWriter& Int(int64_t v) {
    Separate();
    return Number(v);
  }
  JsonWriter& UInt(uint64_t v) {
    Separate();
    return Number(v);
  }
  JsonWriter& Bool(bool v) {
    Separate();
    out_ += v ? "true" : "false";
    return *this;
  }
  JsonWriter& Null() {
    Separate();
    out_ += "null";
    return *this;
  }
  // A value already in JSON form (a number's text), written as it is.
  JsonWriter& RawValue(std::string_view json) {
    Separate();
    out_ += json;
    return *this;
  }
  // A finite number, in the shortest form that reads back the same.
  JsonWriter& Double(double v) {
    Separate();
    return Number(v);
  }
  // Ends one line of JSON Lines (between top-level values).
  void Newline() { out_ += '\n'; }
  void Reserve(size_t n) { out_.reserve(n); }
  const std::string& str() const { return out_; }
  std::string Take() { return std::move(out_); }

 private:
  template <typename N>
  JsonWriter& Number(N v) {
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out_.append(buf, r.ptr);
    return *this;
  }
  // Nesting deeper than 64 levels is not supported (Assent never writes it).
  JsonWriter& Open(char c) {
    Separate();
    out_ += c;
    ++depth_;
    has_items_ &= ~(uint64_t{1} << (depth_ & 63));
    return *this;
  }
  JsonWriter& Close(char c) {
    out_ += c;
    --depth_;
    return *this;
  }
  void Separate() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (depth_ > 0) {
      const uint64_t bit = uint64_t{1} << (depth_ & 63);
      if (has_items_ & bit) out_ += ',';
      has_items_ |= bit;
    }
  }
  std::string out_;
  int depth_ = 0;
  uint64_t has_items_ = 0;  // bit d: the container at depth d has an item already
  bool after_key_ = false;
};

}  // namespace assent

#endif  // ASSENT_COMMON_JSON_WRITER_H_
