// RFC 3339 timestamps and ISO 8601 durations, parsed strictly: a consent event's time is
// evidence, so "almost a date" is an error, never a guess.
#include "assent/time.h"

#include <chrono>
#include <cstdio>

namespace assent {
namespace {

// Days from 1970-01-01 to y-m-d (proleptic Gregorian), Howard Hinnant's algorithm.
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void CivilFromDays(int64_t z, int64_t* y, unsigned* m, unsigned* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t yy = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = yy + (*m <= 2);
}

bool IsLeap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

unsigned DaysInMonth(int64_t y, unsigned m) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[m - 1];
}

// Reads exactly `n` digits at `*i`.
bool Digits(std::string_view s, size_t* i, int n, int64_t* out) {
  if (*i + n > s.size()) return false;
  int64_t v = 0;
  for (int k = 0; k < n; ++k) {
    char c = s[*i + k];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *i += n;
  *out = v;
  return true;
}

std::unexpected<Error> BadTime(std::string_view text, std::string_view why) {
  return InvalidArgumentError("invalid time \"" + std::string(text) + "\": " + std::string(why) +
                              " (expected RFC 3339 such as 2023-08-07T00:00:00Z)");
}

}  // namespace

Result<Timestamp> ParseTime(std::string_view text) {
  size_t i = 0;
  int64_t y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0, frac = 0;
  if (!Digits(text, &i, 4, &y) || i >= text.size() || text[i++] != '-' ||
      !Digits(text, &i, 2, &mo) || i >= text.size() || text[i++] != '-' ||
      !Digits(text, &i, 2, &d)) {
    return BadTime(text, "the date must be YYYY-MM-DD");
  }
  if (mo < 1 || mo > 12) return BadTime(text, "month out of range");
  if (d < 1 || d > DaysInMonth(y, static_cast<unsigned>(mo))) {
    return BadTime(text, "day out of range");
  }
  int64_t offset_seconds = 0;
  if (i < text.size()) {
    if (text[i] != 'T' && text[i] != 't' && text[i] != ' ') {
      return BadTime(text, "expected 'T' after the date");
    }
    ++i;
    if (!Digits(text, &i, 2, &h) || i >= text.size() || text[i++] != ':' ||
        !Digits(text, &i, 2, &mi) || i >= text.size() || text[i++] != ':' ||
        !Digits(text, &i, 2, &sec)) {
      return BadTime(text, "the time must be hh:mm:ss");
    }
    if (h > 23 || mi > 59 || sec > 59) return BadTime(text, "time of day out of range");
    if (i < text.size() && text[i] == '.') {
      ++i;
      int n = 0;
      int64_t scale = 100000;
      while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
        if (n < 6) frac += (text[i] - '0') * scale, scale /= 10;
        ++i, ++n;
      }
      if (n == 0) return BadTime(text, "empty fraction of a second");
    }
    if (i >= text.size()) return BadTime(text, "missing time zone ('Z' or +hh:mm)");
    char z = text[i++];
    if (z == 'Z' || z == 'z') {
      // UTC
    } else if (z == '+' || z == '-') {
      int64_t oh = 0, om = 0;
      if (!Digits(text, &i, 2, &oh) || i >= text.size() || text[i++] != ':' ||
          !Digits(text, &i, 2, &om) || oh > 23 || om > 59) {
        return BadTime(text, "time zone offset must be +hh:mm");
      }
      offset_seconds = (oh * 3600 + om * 60) * (z == '+' ? 1 : -1);
    } else {
      return BadTime(text, "missing time zone ('Z' or +hh:mm)");
    }
    if (i != text.size()) return BadTime(text, "unexpected text after the time zone");
  }
  int64_t days = DaysFromCivil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  int64_t seconds = days * 86400 + h * 3600 + mi * 60 + sec - offset_seconds;
  const Timestamp t = seconds * kMicrosPerSecond + frac;  // |seconds| < 2^39: no overflow
  if (!TimeInRange(t)) {
    return BadTime(text, "outside the range Assent stores (0001-01-01T00:00:00Z to "
                         "9999-12-31T23:59:59.999999Z in UTC)");
  }
  return t;
}

Result<Timestamp> ParseStoredTime(std::string_view text) {
  if (text.starts_with("time(") && text.ends_with("us)") && text.size() > 8) {
    std::string_view digits = text.substr(5, text.size() - 8);
    bool negative = !digits.empty() && digits[0] == '-';
    if (negative) digits.remove_prefix(1);
    if (digits.empty() || digits.size() > 19) return BadTime(text, "bad stored time");
    int64_t v = 0;
    for (char c : digits) {
      if (c < '0' || c > '9' || v > (INT64_MAX - (c - '0')) / 10) {
        return BadTime(text, "bad stored time");
      }
      v = v * 10 + (c - '0');
    }
    return negative ? -v : v;
  }
  return ParseTime(text);
}

std::string FormatTime(Timestamp t) {
  // Outside the range (never stored by this build): still say something exact.
  if (!TimeInRange(t)) return "time(" + std::to_string(t) + "us)";
  int64_t secs = t >= 0 ? t / kMicrosPerSecond : -((-t + kMicrosPerSecond - 1) / kMicrosPerSecond);
  int64_t micros = t - secs * kMicrosPerSecond;
  int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
  int64_t rem = secs - days * 86400;
  int64_t y = 0;
  unsigned m = 0, d = 0;
  CivilFromDays(days, &y, &m, &d);
  if (y < 0 || y > 9999) {  // outside RFC 3339's four-digit years: still say something exact
    return "time(" + std::to_string(t) + "us)";
  }
  // Hand-formatted: this runs once per decision rendered.
  char buf[32] = "0000-00-00T00:00:00";
  auto two = [&](int at, int64_t v) {
    buf[at] = static_cast<char>('0' + v / 10);
    buf[at + 1] = static_cast<char>('0' + v % 10);
  };
  two(0, y / 100);
  two(2, y % 100);
  two(5, m);
  two(8, d);
  two(11, rem / 3600);
  two(14, rem / 60 % 60);
  two(17, rem % 60);
  size_t n = 19;
  if (micros != 0) {
    buf[n++] = '.';
    int64_t scale = 100000;
    while (micros != 0) {
      buf[n++] = static_cast<char>('0' + micros / scale);
      micros %= scale;
      scale /= 10;
    }
  }
  buf[n++] = 'Z';
  return std::string(buf, n);
}

Result<Duration> ParseDuration(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return InvalidArgumentError("invalid duration \"" + std::string(text) + "\": " +
                                std::string(why) + " (expected ISO 8601 such as P365D or PT12H)");
  };
  if (text.size() < 3 || text[0] != 'P') return bad("must start with 'P' and name an amount");
  size_t i = 1;
  bool in_time = false, any = false;
  int64_t seconds = 0;
  while (i < text.size()) {
    if (text[i] == 'T') {
      if (in_time) return bad("'T' appears twice");
      in_time = true;
      ++i;
      continue;
    }
    int64_t v = 0;
    size_t start = i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      if (v > 1'000'000'000'000LL) return bad("amount too large (at most about 10,000 years)");
      v = v * 10 + (text[i++] - '0');
    }
    if (i == start || i >= text.size()) return bad("each amount needs a unit");
    char u = text[i++];
    if (!in_time) {
      if (u == 'Y' || u == 'M') return bad("years and months vary in length; use days (P365D)");
      if (u == 'W') seconds += v * 7 * 86400;
      else if (u == 'D') seconds += v * 86400;
      else return bad("unknown unit");
    } else {
      if (u == 'H') seconds += v * 3600;
      else if (u == 'M') seconds += v * 60;
      else if (u == 'S') seconds += v;
      else return bad("unknown unit");
    }
    any = true;
    // Each amount is below 10^13 and the sum is checked at every step: no overflow.
    if (seconds > kMaxDuration / kMicrosPerSecond) {
      return bad("longer than the range Assent stores (about 10,000 years)");
    }
  }
  if (!any) return bad("no amount");
  if (seconds <= 0) return bad("must be longer than zero");
  return seconds * kMicrosPerSecond;
}

std::string FormatDuration(Duration d) {
  int64_t s = d / kMicrosPerSecond;
  std::string out = "P";
  if (s / 86400) out += std::to_string(s / 86400) + "D";
  s %= 86400;
  if (s) {
    out += "T";
    if (s / 3600) out += std::to_string(s / 3600) + "H";
    if (s / 60 % 60) out += std::to_string(s / 60 % 60) + "M";
    if (s % 60) out += std::to_string(s % 60) + "S";
  }
  if (out == "P") out += "T0S";
  return out;
}

Clock SystemClock() {
  return [] {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
}

}  // namespace assent
