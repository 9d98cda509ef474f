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

// Parses RFC 3339 ("2023-08-07T00:00:00Z", "2023-08-07T02:00:00.5+02:00") or a bare date
// ("2023-08-07", midnight UTC). Returns kInvalidArgument naming what is wrong.
Result<Timestamp> ParseTime(std::string_view text);

// Formats in UTC with a "Z"; fractional seconds only when non-zero (trailing zeros trimmed).
std::string FormatTime(Timestamp t);

// Parses an ISO 8601 duration of days and time: "P365D", "P2W", "PT12H", "P1DT30M".
// Years and months are refused (their length varies); say "P365D" instead.
Result<Duration> ParseDuration(std::string_view text);

// Formats as ISO 8601 ("P365D", "PT1H30M").
std::string FormatDuration(Duration d);

// The injectable clock: returns "now". Tests pass a fixed or stepping clock.
using Clock = std::function<Timestamp()>;
Clock SystemClock();

}  // namespace assent

#endif  // ASSENT_TIME_H_
