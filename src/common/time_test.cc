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
