// Hash64 gives MurmurHash64A's values (they key in-memory indexes and which shard a kept line
// goes to, so they must not change): the reference below is the published algorithm as written.
#include "common/hash.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace assent {
namespace {

uint64_t MurmurHash64A(const void* key, size_t len, uint64_t seed) {
  const uint64_t m = 0xc6a4a7935bd1e995ULL;
  const int r = 47;
  uint64_t h = seed ^ (len * m);
  const unsigned char* data = static_cast<const unsigned char*>(key);
  const unsigned char* end = data + (len / 8) * 8;
  while (data != end) {
    uint64_t k = 0;
    for (int i = 7; i >= 0; --i) k = (k << 8) | data[i];
    data += 8;
    k *= m;
    k ^= k >> r;
    k *= m;
    h ^= k;
    h *= m;
  }
  switch (len & 7) {
    case 7: h ^= uint64_t(data[6]) << 48; [[fallthrough]];
    case 6: h ^= uint64_t(data[5]) << 40; [[fallthrough]];
    case 5: h ^= uint64_t(data[4]) << 32; [[fallthrough]];
    case 4: h ^= uint64_t(data[3]) << 24; [[fallthrough]];
    case 3: h ^= uint64_t(data[2]) << 16; [[fallthrough]];
    case 2: h ^= uint64_t(data[1]) << 8; [[fallthrough]];
    case 1:
      h ^= uint64_t(data[0]);
      h *= m;
  }
  h ^= h >> r;
  h *= m;
  h ^= h >> r;
  return h;
}

TEST(Hash64Test, GivesMurmurHash64AForEveryLength) {
  std::mt19937_64 rng(5);
  for (size_t len = 0; len <= 70; ++len) {
    for (int round = 0; round < 200; ++round) {
      std::string s(len, '\0');
      for (char& c : s) c = static_cast<char>(rng());
      const uint64_t seed = round % 2 ? rng() : 0x5bd1e9955bd1e995ULL;
      ASSERT_EQ(Hash64(s, seed), MurmurHash64A(s.data(), s.size(), seed)) << "length " << len;
    }
  }
  // Values pinned: which shard a kept line goes to depends on them.
  EXPECT_EQ(Hash64("u285"), 4772860285162135759ULL);
  EXPECT_EQ(Hash64("item-1999999"), 12852097243459027042ULL);
  EXPECT_EQ(Hash64("acct957"), 16469220631227905827ULL);
  EXPECT_EQ(Hash64(""), 13087348285812871249ULL);
  EXPECT_EQ(Hash64("service_generated.telemetry"), 6433467876992299757ULL);
  EXPECT_EQ(Hash64("u285", 0x51a4d5), 18405047442812178566ULL);
}

}  // namespace
}  // namespace assent
