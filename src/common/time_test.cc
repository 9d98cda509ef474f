#include "assent/time.h"

#include <gtest/gtest.h>

namespace assent {
namespace {

TEST(TimeTest, ParsesAndFormatsUtc) {
  auto t = ParseTime("2023-08-07T00:00:00Z");
  ASSERT_TRUE(t);
  EXPECT_EQ(*t, 1691366400LL * kMicrosPerSecond);
  EXPECT_EQ(FormatTime(*t), "2023-08-07T00:00:00Z");
}

TEST(TimeTest, AppliesOffsetsAndFractions) {
  auto t = ParseTime("2023-08-07T02:00:00.25+02:00");
  ASSERT_TRUE(t);
  EXPECT_EQ(FormatTime(*t), "2023-08-07T00:00:00.25Z");
  EXPECT_EQ(*ParseTime("2023-08-07"), *ParseTime("2023-08-07T00:00:00Z"));
}

TEST(TimeTest, HandlesLeapDaysAndEpoch) {
  EXPECT_TRUE(ParseTime("2024-02-29T12:00:00Z"));
  EXPECT_FALSE(ParseTime("2023-02-29T12:00:00Z"));
  EXPECT_EQ(FormatTime(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatTime(-1), "1969-12-31T23:59:59.999999Z");
}

TEST(TimeTest, RefusesMalformedTimes) {
  for (const char* bad : {"", "2023", "2023-13-01T00:00:00Z", "2023-08-07T25:00:00Z",
                          "2023-08-07T00:00:00", "2023-08-07T00:00:00Zjunk", "yesterday",
                          "2023-08-07T00:00Z", "2023-08-07T00:00:00.Z"}) {
    auto t = ParseTime(bad);
    ASSERT_FALSE(t) << bad;
    EXPECT_EQ(t.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(t.error().message.find("RFC 3339"), std::string::npos);
  }
}

TEST(TimeTest, ParsesDurations) {
  EXPECT_EQ(*ParseDuration("P365D"), 365LL * 86400 * kMicrosPerSecond);
  EXPECT_EQ(*ParseDuration("P2W"), 14LL * 86400 * kMicrosPerSecond);
  EXPECT_EQ(*ParseDuration("PT1H30M"), 5400LL * kMicrosPerSecond);
  EXPECT_EQ(FormatDuration(*ParseDuration("P1DT2H")), "P1DT2H");
  for (const char* bad : {"", "P", "365D", "P1Y", "P1M", "PT", "P0D", "P1X", "PT1D"}) {
    EXPECT_FALSE(ParseDuration(bad)) << bad;
  }
}

// Every time that enters is within what the ledger stores and reads back (issue: one request
// with 9999-12-31T23:59:59-14:00 made the ledger unreadable).
TEST(TimeTest, RefusesTimesOutsideTheStorableRange) {
  for (const char* bad : {"9999-12-31T23:59:59-14:00", "9999-12-31T23:00:00-01:00",
                          "0000-12-31T23:59:59Z", "0001-01-01T00:00:00+00:01"}) {
    auto t = ParseTime(bad);
    ASSERT_FALSE(t) << bad;
    EXPECT_EQ(t.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(t.error().message.find("range"), std::string::npos) << t.error().message;
  }
  // The ends of the range parse, format and parse back to the same instant.
  for (const char* edge : {"9999-12-31T23:59:59.999999Z", "0001-01-01T00:00:00Z",
                           "9999-12-31T23:59:59+14:00", "0001-01-01T12:00:00+11:00"}) {
    auto t = ParseTime(edge);
    ASSERT_TRUE(t) << edge;
    EXPECT_TRUE(TimeInRange(*t));
    EXPECT_EQ(*ParseTime(FormatTime(*t)), *t) << edge;
  }
  EXPECT_EQ(*ParseTime("9999-12-31T23:59:59.999999Z"), kMaxTime);
  EXPECT_EQ(*ParseTime("0001-01-01T00:00:00Z"), kMinTime);
  // What builds before the check wrote for such a time still reads back from a ledger.
  EXPECT_EQ(*ParseStoredTime(FormatTime(kMaxTime + 1)), kMaxTime + 1);
  EXPECT_EQ(*ParseStoredTime(FormatTime(kMinTime - 5)), kMinTime - 5);
  EXPECT_FALSE(ParseTime(FormatTime(kMaxTime + 1)));
}

TEST(TimeTest, DurationsNeverOverflow) {
  for (const char* bad : {"P200000000D", "P99999999999999W", "PT9223372036854775807S",
                          "P4000000D", "P10000000DT1S", "P1000000000000D"}) {
    auto d = ParseDuration(bad);
    ASSERT_FALSE(d) << bad;
    EXPECT_EQ(d.error().code, ErrorCode::kInvalidArgument);
  }
  auto longest = ParseDuration("P3652000D");  // about 9,999 years: still storable
  ASSERT_TRUE(longest);
  EXPECT_LE(*longest, kMaxDuration);
  EXPECT_EQ(AddClamped(kMaxTime - 10, kMaxDuration), kMaxTime);
  EXPECT_EQ(AddClamped(kMinTime + 10, -kMaxDuration), kMinTime);
  EXPECT_EQ(AddClamped(0, 5), 5);
}

}  // namespace
}  // namespace assent

#include "common/json_writer.h"

namespace assent {
namespace {

TEST(JsonWriterTest, EscapesAndNests) {
  JsonWriter w;
  w.BeginObject().Key("a\"b").String("x\\y\n\t\x01z").Key("list").BeginArray();
  w.Int(-5).UInt(18446744073709551615ULL).Bool(true).Null().BeginObject().EndObject();
  w.EndArray().EndObject();
  EXPECT_EQ(w.str(),
            R"({"a\"b":"x\\y\n\t\u0001z","list":[-5,18446744073709551615,true,null,{}]})");
}

}  // namespace
}  // namespace assent
