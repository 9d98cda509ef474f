#include "engine/events_jsonl.h"

#include <gtest/gtest.h>

namespace assent {
namespace {

const char* kLine =
    R"({"subject":"u1","action":"grant","categories":["content"],"purposes":["ai_training.first_party"],"at":"2023-08-08T10:00:00Z"})";

TEST(EventsJsonlTest, ParsesEventsWithLineNumbersAsPositions) {
  std::string text = std::string(kLine) + "\n\n" +
                     R"({"account":"a1","action":"withdraw","categories":["content.chat"],"purposes":["service"],"at":"2023-08-09T10:00:00Z","method":"admin","terms_version":"v2"})" +
                     "\n";
  std::vector<uint64_t> lines;
  auto r = ParseEventsJsonl(text, "e.jsonl", &lines);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].position, 1u);
  EXPECT_EQ((*r)[1].position, 3u);
  EXPECT_EQ((*r)[1].party_kind, PartyKind::kAccount);
  EXPECT_EQ((*r)[1].method, Method::kAdmin);
  EXPECT_EQ((*r)[1].terms_version, "v2");
  EXPECT_EQ(lines, (std::vector<uint64_t>{1, 3}));
}

TEST(EventsJsonlTest, SkipsOtherKindsOfLedgerEntries) {
  std::string text = R"({"position":1,"kind":"terms","hash":"ab"})" "\n" +
                     std::string(R"({"kind":"consent","position":2,"hash":"cd","subject":"u1","action":"grant","categories":["c"],"purposes":["p"],"at":"2023-08-08T10:00:00Z"})");
  auto r = ParseEventsJsonl(text, "export.jsonl");
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].position, 2u);
}

TEST(EventsJsonlTest, ErrorsNameTheLine) {
  struct Case {
    std::string line2;
    std::string want;
  } cases[] = {
      {"{not json", "e.jsonl:2: not valid JSON"},
      {"[1,2]", "e.jsonl:2: each line must be a JSON object"},
      {R"({"subject":"u1","action":"maybe","categories":["c"],"purposes":["p"],"at":"2023-08-09T00:00:00Z"})",
       "e.jsonl:2: \"action\" must be"},
      {R"({"subject":"u1","action":"grant","categories":[],"purposes":["p"],"at":"2023-08-09T00:00:00Z"})",
       "must not be empty"},
      {R"({"subject":"u1","action":"grant","categories":["c"],"purposes":["p"],"at":"2023-08-01T00:00:00Z"})",
       "times must not decrease"},
      {R"({"subject":"u1","action":"grant","categories":["c"],"purpose":["p"],"at":"2023-08-09T00:00:00Z"})",
       "did you mean 'purposes'"},
      {R"({"subject":"u1","account":"a","action":"grant","categories":["c"],"purposes":["p"],"at":"2023-08-09T00:00:00Z"})",
       "not both"},
      {R"({"subject":"u1","action":"grant","categories":["c"],"purposes":["p"],"at":"2023-08-09T00:00:00Z","position":1})",
       "positions must increase"},
      {R"({"subject":"u1","action":"grant","categories":["c"],"purposes":["p"]})", "missing \"at\""},
      {R"({"subject":"u1","action":"grant","categories":["c"],"purposes":["p"],"at":"2023-08-09"})", ""},
      {R"({"subject":1,"action":"grant","categories":["c"],"purposes":["p"],"at":"2023-08-09T00:00:00Z"})",
       "must be a string"},
  };
  for (const auto& c : cases) {
    auto r = ParseEventsJsonl(std::string(kLine) + "\n" + c.line2 + "\n", "e.jsonl");
    if (c.want.empty()) {
      EXPECT_TRUE(r) << c.line2;  // a bare date is a valid time
      continue;
    }
    ASSERT_FALSE(r) << c.line2;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(r.error().message.find(c.want), std::string::npos) << r.error().message;
  }
}

TEST(EventsJsonlTest, InvalidUtf8IsRefused) {
  std::string bad = std::string(R"({"subject":"u)") + "\xff\xfe" +
                    R"(","action":"grant","categories":["c"],"purposes":["p"],"at":"2023-08-09T00:00:00Z"})";
  auto r = ParseEventsJsonl(bad, "e.jsonl");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("e.jsonl:1:"), std::string::npos);
}

}  // namespace
}  // namespace assent
