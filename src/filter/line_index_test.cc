// The block index (line_index.h) against its byte-by-byte reference, and the manifest reader's
// learnt line layouts (manifest.cc, LineShape) against reading each line alone.
#include "filter/line_index.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "filter/filter.h"
#include "filter/manifest.h"

namespace assent::internal {
namespace {

std::vector<uint32_t> List(const uint32_t* p, size_t n) { return std::vector<uint32_t>(p, p + n); }

TEST(BlockIndexTest, EveryImplementationAgreesWithTheByteByByteOne) {
  std::mt19937_64 rng(7);
  // Mostly the bytes that matter, some plain text and some bytes at and above 0x80.
  const std::string alphabet = "\"\"\"\n\n\\\r\t\x01 {}[]:,abcxyz0123\x80\xc3\xa9\xff";
  int compared = 0;
  for (int round = 0; round < 3000; ++round) {
    const size_t size = rng() % 700;
    std::string block(size + 64 + 64, ' ');
    for (size_t i = 0; i < size; ++i) block[i] = alphabet[rng() % alphabet.size()];
    if (rng() % 4 == 0) {  // all ASCII
      for (size_t i = 0; i < size; ++i) block[i] = static_cast<char>(block[i] & 0x7f);
    }
    const size_t from = size ? rng() % (size + 1) : 0;
    BlockIndex want;
    ASSERT_TRUE(IndexBlockWith("bytes", block.data(), from, size, &want));
    for (const char* isa : {"sse2", "avx2", "avx512", "avx512vbmi2"}) {
      BlockIndex got;
      if (!IndexBlockWith(isa, block.data(), from, size, &got)) continue;  // not on this machine
      ++compared;
      SCOPED_TRACE(std::string(isa) + " round " + std::to_string(round));
      ASSERT_EQ(List(got.newlines(), got.newline_count() + BlockIndex::kSentinels),
                List(want.newlines(), want.newline_count() + BlockIndex::kSentinels));
      ASSERT_EQ(List(got.quotes_before_newlines(), got.newline_count()),
                List(want.quotes_before_newlines(), want.newline_count()));
      ASSERT_EQ(List(got.quotes(), got.quote_count() + BlockIndex::kSentinels),
                List(want.quotes(), want.quote_count() + BlockIndex::kSentinels));
      ASSERT_EQ(List(got.specials(), got.special_count() + BlockIndex::kSentinels),
                List(want.specials(), want.special_count() + BlockIndex::kSentinels));
      ASSERT_EQ(got.ascii(), want.ascii());
    }
  }
  EXPECT_GT(compared, 3000);  // SSE2 at least, on every x86-64
}

TEST(BlockIndexTest, TheReferenceFindsWhatIsThere) {
  const std::string text = "{\"a\":\"b\\\"\"}\r\n\t\"\xc3\xa9\"\n";
  std::string block = text + std::string(64, ' ');
  BlockIndex index;
  ASSERT_TRUE(IndexBlockWith("bytes", block.data(), 0, text.size(), &index));
  EXPECT_EQ(List(index.newlines(), index.newline_count()), (std::vector<uint32_t>{12, 18}));
  EXPECT_EQ(List(index.quotes(), index.quote_count()), (std::vector<uint32_t>{1, 3, 5, 8, 9, 14, 17}));
  EXPECT_EQ(List(index.quotes_before_newlines(), index.newline_count()), (std::vector<uint32_t>{5, 7}));
  EXPECT_EQ(List(index.specials(), index.special_count()), (std::vector<uint32_t>{7, 11, 13}));
  EXPECT_EQ(index.newlines()[index.newline_count()], text.size());  // the sentinel
  EXPECT_FALSE(index.ascii());
}

// Reads `block` with ReadBlock and each line alone; every line must get the same verdict.
void ExpectSameAsAlone(const FilterOptions& o, const std::string& text, BlockItems* items) {
  static simdjson::dom::parser block_parser, line_parser;
  std::string block = text + std::string(simdjson::SIMDJSON_PADDING, ' ');
  ReadBlock(block_parser, o, block.data(), text.size(), items);
  size_t covered = 0, read = 0;
  for (const auto& line : items->lines) {
    ASSERT_EQ(line.begin, covered);
    covered = line.end;
    std::string_view t(block.data() + line.begin, line.end - line.begin);
    if (t.ends_with('\n')) t.remove_suffix(1);
    if (t.ends_with('\r')) t.remove_suffix(1);
    SCOPED_TRACE(std::string(t));
    if (t.find_first_not_of(" \t") == std::string_view::npos) continue;
    ManifestItem alone;
    const std::string copy(t);
    const std::string error = ParseManifestItem(line_parser, o, copy, &alone);
    using Kind = BlockItems::Line::Kind;
    if (!error.empty()) {
      ASSERT_EQ(line.kind, Kind::kMalformed);
      EXPECT_EQ(items->Error(line), error);
      continue;
    }
    ASSERT_EQ(line.kind, Kind::kItem);
    ++read;
    const ItemView& it = items->items[line.item];
    EXPECT_EQ(it.id, alone.id);
    EXPECT_EQ(it.category, alone.category);
    ASSERT_EQ(it.has_account, alone.has_account);
    if (it.has_account) {
      EXPECT_EQ(it.account, alone.account);
    }
    ASSERT_EQ(it.subject_count, alone.subjects.size());
    for (uint32_t k = 0; k < it.subject_count; ++k) {
      EXPECT_EQ(items->subjects[it.first_subject + k], alone.subjects[k]);
    }
  }
  EXPECT_EQ(covered, text.size());
  EXPECT_GT(read, 0u);
}

// Lines of a few layouts, and lines that differ from a layout in one place: a key, a space, a
// number, a literal, a blank or empty value, a repeated key, a string where an array was.
TEST(LineShapeTest, LinesLikeALearntOneAreReadAsEachAloneWouldBe) {
  std::mt19937_64 rng(11);
  auto id = [&] { return "item-" + std::to_string(rng() % 100000); };
  auto subjects = [&](int n) {
    std::string s = "[";
    for (int i = 0; i < n; ++i) s += (i ? ",\"u" : "\"u") + std::to_string(rng() % 1000) + "\"";
    return s + "]";
  };
  const std::vector<std::string> odd = {
      R"({"id":"x","category":"a.b","accounT":"acct1","subjects":["u1"],"uri":"s"})",
      R"({"id":"x","category":"a.b","account":"acct1","subjects":["u1"],"uri" :"s"})",
      R"({"id":"x","category":"a.b","account":"acct1","subjects":["u1"],"n":12})",
      R"({"id":"x","category":"a.b","account":"acct1","subjects":["u1"],"n":013})",
      R"({"id":"x","category":"a.b","account":"   ","subjects":["u1"],"uri":"s"})",
      R"({"id":"x","category":"a.b","account":"","subjects":["u1"],"uri":"s"})",
      R"({"id":"x","category":"a.b","account":"acct1","subjects":[""],"uri":"s"})",
      R"({"id":"x","category":"a.b","account":"acct1","subjects":[" "],"uri":"s"})",
      R"({"id":"x","category":"a.b","account":"acct1","subjects":["u1"],"id":"s"})",
      R"({"id":"x","category":"a.b","account":"acct1","subjects":"u1","uri":"s"})",
      R"({"id":"x","category":"a.b","account":null,"subjects":["u1"],"uri":"s"})",
      R"({"id":"x","category":"a.b","account":nul,"subjects":["u1"],"uri":"s"})",
      R"({"id":"x","category":"a.b","account":"acct1","subjects":["u1"],"uri":"s"} x)",
      R"({"id":"x","category":"a.b","account":"acct1","subjects":["u1"],"uri":"s",})",
      R"({"id":"x","category":"a.b","account":"acct1","subjects":["u1"],"meta":{"k":"v","k":"w"}})",
      R"({"id":"x","category":"a.b","account":"acct1","subjects":["u1"],"long_key_here":"s"})",
      R"({"category":"a.b","id":"x","subjects":["u1","u2"],"account":"acct1","uri":"s"})",
  };
  FilterOptions o;
  BlockItems items;
  for (int round = 0; round < 40; ++round) {
    std::string text;
    for (int i = 0; i < 300; ++i) {
      const int kind = static_cast<int>(rng() % 10);
      if (kind == 0) {
        text += odd[rng() % odd.size()];
      } else {
        text += "{\"id\":\"" + id() + "\",\"category\":\"service_generated.telemetry\"";
        if (kind != 1) text += ",\"account\":\"acct" + std::to_string(rng() % 50) + "\"";
        text += ",\"subjects\":" + subjects(static_cast<int>(rng() % 5));
        if (kind == 2) text += ",\"n\":" + std::to_string(rng() % 3) + ".5";
        text += ",\"uri\":\"s3://x/" + std::to_string(rng()) + "\"}";
      }
      text += rng() % 7 == 0 ? "\r\n" : "\n";
      if (rng() % 13 == 0) text += rng() % 2 ? "\n" : "  \n";  // blank lines: no strings at all
    }
    if (rng() % 2) text.pop_back();  // a last line without its newline
    ASSERT_NO_FATAL_FAILURE(ExpectSameAsAlone(o, text, &items)) << "round " << round;
  }
  // Layouts are learnt under one set of field names: other names, other layouts.
  FilterOptions renamed;
  renamed.subjects_field = "uri";
  const std::string line =
      R"({"id":"x","category":"a.b","account":"acct1","subjects":["u1"],"uri":["s"]})" "\n";
  ASSERT_NO_FATAL_FAILURE(ExpectSameAsAlone(o, line + line, &items));
  ASSERT_NO_FATAL_FAILURE(ExpectSameAsAlone(renamed, line + line, &items));
  EXPECT_EQ(items.items[0].subject_count, 1u);
  EXPECT_EQ(items.subjects[items.items[0].first_subject], "s");
}

// Keys in any order: layouts seldom repeat, the reader stops trying them for a while (and tries
// again later); every line is read the same either way.
TEST(LineShapeTest, LinesOfManyLayoutsAreReadAsWell) {
  std::mt19937_64 rng(13);
  FilterOptions o;
  BlockItems items;
  std::string text;
  for (int i = 0; i < 70'000; ++i) {
    std::vector<std::string> fields = {
        "\"id\":\"i" + std::to_string(i) + "\"", "\"category\":\"a.b\"",
        "\"account\":\"x" + std::to_string(rng() % 9) + "\"",
        "\"subjects\":[\"u" + std::to_string(rng() % 99) + "\"]", "\"uri\":\"s\""};
    // Shuffled for most lines, in one order for the last few thousand.
    if (i < 66'000) std::shuffle(fields.begin(), fields.end(), rng);
    text += "{" + fields[0];
    for (size_t f = 1; f < fields.size(); ++f) text += "," + fields[f];
    text += "}\n";
  }
  ASSERT_NO_FATAL_FAILURE(ExpectSameAsAlone(o, text, &items));
  EXPECT_EQ(items.items.size(), 70'000u);
}

// Keys and pieces between strings longer than 8 bytes are compared whole: a layout learnt with
// long field names, or with a long stretch of spaces and a literal, does not take a line that
// differs only past their 8th byte.
TEST(LineShapeTest, LongKeysAndPiecesAreComparedWhole) {
  FilterOptions o;
  o.subjects_field = "participant_ids";
  o.account_field = "account_identifier";
  BlockItems items;
  const std::string good =
      R"({"id":"a","category":"c.d","account_identifier":"x","participant_ids":["u1"],"n" :   null   })";
  std::string text;
  for (int i = 0; i < 20; ++i) text += good + "\n";
  for (const char* odd : {
           R"({"id":"a","category":"c.d","account_identifier":"x","participant_idX":["u1"],"n" :   null   })",
           R"({"id":"a","category":"c.d","account_identifieR":"x","participant_ids":["u1"],"n" :   null   })",
           R"({"id":"a","category":"c.d","account_identifier":"x","participant_ids":["u1"],"n" :   nulL   })",
           R"({"id":"a","category":"c.d","account_identifier":"x","participant_ids":["u1"],"n" :   null  ,})"}) {
    text += std::string(odd) + "\n" + good + "\n";
  }
  ASSERT_NO_FATAL_FAILURE(ExpectSameAsAlone(o, text, &items));
  size_t malformed = 0, without_subjects = 0, without_account = 0;
  for (const auto& line : items.lines) {
    if (line.kind == BlockItems::Line::Kind::kMalformed) {
      ++malformed;
    } else if (line.kind == BlockItems::Line::Kind::kItem) {
      without_subjects += items.items[line.item].subject_count == 0;
      without_account += !items.items[line.item].has_account;
    }
  }
  EXPECT_EQ(malformed, 2u);
  EXPECT_EQ(without_subjects, 1u);
  EXPECT_EQ(without_account, 1u);
}

// The reader indexes a block a window (32 KiB) at a time: lines across a window's end, and lines
// longer than a window (read without the index), are read like any other.
TEST(LineShapeTest, LinesAcrossAndLongerThanAWindow) {
  FilterOptions o;
  BlockItems items;
  auto line = [](int i, size_t uri_bytes) {
    return "{\"id\":\"i" + std::to_string(i) + "\",\"category\":\"a.b\",\"account\":\"x\"," +
           "\"subjects\":[\"u" + std::to_string(i % 7) + "\"],\"uri\":\"" + std::string(uri_bytes, 'q') +
           "\"}";
  };
  std::string text;
  int i = 0;
  for (; text.size() < 100'000; ++i) text += line(i, i % 50 == 49 ? 40'000 : 20 + i % 9) + "\n";
  ASSERT_NO_FATAL_FAILURE(ExpectSameAsAlone(o, text, &items));
  EXPECT_EQ(items.items.size(), static_cast<size_t>(i));
  // The last line longer than a window, without its newline.
  text += line(i, 70'000);
  ASSERT_NO_FATAL_FAILURE(ExpectSameAsAlone(o, text, &items));
  EXPECT_EQ(items.items.size(), static_cast<size_t>(i + 1));
}

}  // namespace
}  // namespace assent::internal
