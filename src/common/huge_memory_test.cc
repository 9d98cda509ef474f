// HugeMemory, HugeArray and HugeBytes: zeroed, aligned where they are mappings of their own, and
// contents kept when a buffer grows across the heap/mapping boundary.
#include "common/huge_memory.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>

namespace assent {
namespace {

TEST(HugeMemoryTest, ZeroedAndAlignedWhereItIsAMappingOfItsOwn) {
  for (size_t bytes : {size_t{1}, size_t{4096}, (size_t{2} << 20) - 1, size_t{2} << 20,
                       (size_t{2} << 20) + 1, size_t{33} << 20}) {
    HugeMemory m(bytes);
    ASSERT_NE(m.data(), nullptr) << bytes;
    EXPECT_GE(m.size(), bytes);
    const auto* p = static_cast<const unsigned char*>(m.data());
    for (size_t i = 0; i < m.size(); i += 4093) ASSERT_EQ(p[i], 0) << bytes << " at " << i;
    EXPECT_EQ(p[m.size() - 1], 0);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(m.data()) % 64, 0u) << bytes;
    if (bytes >= HugeMemory::kHugePage) {
      EXPECT_EQ(reinterpret_cast<uintptr_t>(m.data()) % HugeMemory::kHugePage, 0u) << bytes;
      EXPECT_EQ(m.size() % HugeMemory::kHugePage, 0u) << bytes;
    }
    // Every byte is writable.
    std::memset(m.data(), 0xab, m.size());
  }
  HugeMemory none(0);
  EXPECT_EQ(none.data(), nullptr);
  EXPECT_EQ(none.size(), 0u);
}

TEST(HugeMemoryTest, MovesAndSwapsOwnership) {
  HugeMemory a(3 << 20);
  void* p = a.data();
  HugeMemory b(std::move(a));
  EXPECT_EQ(b.data(), p);
  EXPECT_EQ(a.data(), nullptr);
  HugeMemory c(100);
  c = std::move(b);
  EXPECT_EQ(c.data(), p);
}

TEST(HugeMemoryTest, ArraysAreZeroInitialised) {
  struct Pair {
    uint64_t a;
    uint32_t b;
  };
  HugeArray<Pair> big(300'000);
  ASSERT_EQ(big.size(), 300'000u);
  for (const Pair& p : big) ASSERT_TRUE(p.a == 0 && p.b == 0);
  big[299'999].a = 7;
  HugeArray<Pair> other(4);
  other.swap(big);
  EXPECT_EQ(other.size(), 300'000u);
  EXPECT_EQ(other[299'999].a, 7u);
  EXPECT_EQ(big.size(), 4u);
}

TEST(HugeMemoryTest, BytesKeepTheirContentsAsTheyGrow) {
  // Appends of random sizes across the heap (small) and mapping (from 2 MiB) sizes, against a
  // std::string doing the same.
  std::mt19937_64 rng(7);
  HugeBytes b;
  std::string want;
  EXPECT_TRUE(b.empty());
  while (want.size() < (size_t{5} << 20)) {
    std::string piece(rng() % 70'000, '\0');
    for (char& ch : piece) ch = static_cast<char>(rng());
    b.append(piece);
    want += piece;
    ASSERT_EQ(b.size(), want.size());
    ASSERT_GE(b.capacity(), b.size());
  }
  EXPECT_EQ(std::string_view(b), want);
  // A resize keeps what is there; clear keeps the memory.
  const size_t cap = b.capacity();
  b.resize(want.size() + 3 * cap);
  EXPECT_EQ(std::string_view(b.data(), want.size()), want);
  b.clear();
  EXPECT_TRUE(b.empty());
  EXPECT_GE(b.capacity(), want.size() + 3 * cap);
  b.append("x");
  EXPECT_EQ(std::string_view(b), "x");
}

}  // namespace
}  // namespace assent
