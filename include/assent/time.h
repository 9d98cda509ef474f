// Time as Assent stores it: microseconds since the Unix epoch, UTC, in one int64.
// Text form is RFC 3339 in UTC ("2023-08-07T00:00:00Z", fractions only when present).
#ifndef ASSENT_TIME_H_
#define ASSENT_TIME_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "assent/result.h"

namespace assent {

using Timestamp = int64_t;  // microseconds since 1970-01-01T00:00:00Z
using Duration = int64_t;   // microseconds

inline constexpr Duration kMicrosPerSecond = 1'000'000;

// The range of times Assent accepts, stores and reads back: RFC 3339's four-digit years in
// UTC, 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z. Every time that enters (HTTP, CLI,
// import, terms) is checked against it before anything is written, so every stored time can be
// formatted and parsed again.
inline constexpr Timestamp kMinTime = -62135596800LL * kMicrosPerSecond;
inline constexpr Timestamp kMaxTime = 253402300799LL * kMicrosPerSecond + 999999;
// The longest duration accepted (the whole storable range): anything longer cannot matter and
// would overflow time arithmetic.
inline constexpr Duration kMaxDuration = kMaxTime - kMinTime;
// How far ahead of the server's clock a client may claim a live write happened (clock skew).
inline constexpr Duration kMaxClockSkew = 5 * kMicrosPerSecond;

inline constexpr bool TimeInRange(Timestamp t) { return t >= kMinTime && t <= kMaxTime; }

// t + d clamped to the storable range (never overflows): a grant valid for longer than the
// range can express is valid until its end.
inline constexpr Timestamp AddClamped(Timestamp t, Duration d) {
  if (d >= 0) return t > kMaxTime - d ? kMaxTime : t + d;
  return t < kMinTime - d ? kMinTime : t + d;
}

// Parses RFC 3339 ("2023-08-07T00:00:00Z", "2023-08-07T02:00:00.5+02:00") or a bare date
// ("2023-08-07", midnight UTC). Returns kInvalidArgument naming what is wrong, also for a
// time outside [kMinTime, kMaxTime] once its offset is applied.
Result<Timestamp> ParseTime(std::string_view text);

// Formats in UTC with a "Z"; fractional seconds only when non-zero (trailing zeros trimmed).
// REQUIRES for a round trip through ParseTime: TimeInRange(t). Outside it the text is
// "time(<microseconds>us)", which ParseStoredTime (not ParseTime) reads back.
std::string FormatTime(Timestamp t);

// Reads a time as the ledger stores it: what ParseTime reads, and also the "time(Nus)" form
// that builds before the range check wrote for times outside it, so that a ledger holding one
// can still be replayed and exported.
Result<Timestamp> ParseStoredTime(std::string_view text);

// Parses an ISO 8601 duration of days and time: "P365D", "P2W", "PT12H", "P1DT30M".
// Years and months are refused (their length varies); say "P365D" instead. Longer than
// kMaxDuration (about 10,000 years) is refused rather than overflowing.
Result<Duration> ParseDuration(std::string_view text);

// Formats as ISO 8601 ("P365D", "PT1H30M").
std::string FormatDuration(Duration d);

// The injectable clock: returns "now". Tests pass a fixed or stepping clock.
using Clock = std::function<Timestamp()>;
Clock SystemClock();

}  // namespace assent

#endif  // ASSENT_TIME_H_
