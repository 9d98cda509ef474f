// SipHash-2-4 (Aumasson and Bernstein, 2012): a keyed 64-bit hash, fast on short inputs. Assent
// uses it where a keyed hash is checked on the decision path — the suppression list of erased
// parties — so that the list never holds an id, only what the key turns it into.
#ifndef ASSENT_COMMON_SIPHASH_H_
#define ASSENT_COMMON_SIPHASH_H_

#include <array>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace assent {

using SipKey = std::array<uint8_t, 16>;

inline uint64_t SipHash24(const SipKey& key, std::string_view data) {
  auto rotl = [](uint64_t x, int b) { return (x << b) | (x >> (64 - b)); };
  uint64_t k0, k1;
  std::memcpy(&k0, key.data(), 8);  // little-endian hosts (x86-64, AArch64)
  std::memcpy(&k1, key.data() + 8, 8);
  uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
  uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
  auto round = [&] {
    v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32);
    v2 += v3; v3 = rotl(v3, 16); v3 ^= v2;
    v0 += v3; v3 = rotl(v3, 21); v3 ^= v0;
    v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32);
  };
  const size_t n = data.size();
  const size_t whole = n & ~size_t{7};
  for (size_t i = 0; i < whole; i += 8) {
    uint64_t m;
    std::memcpy(&m, data.data() + i, 8);
    v3 ^= m;
    round();
    round();
    v0 ^= m;
  }
  uint64_t last = static_cast<uint64_t>(n) << 56;
  for (size_t i = whole; i < n; ++i) {
    last |= static_cast<uint64_t>(static_cast<uint8_t>(data[i])) << (8 * (i - whole));
  }
  v3 ^= last;
  round();
  round();
  v0 ^= last;
  v2 ^= 0xff;
  round();
  round();
  round();
  round();
  return v0 ^ v1 ^ v2 ^ v3;
}

}  // namespace assent

#endif  // ASSENT_COMMON_SIPHASH_H_
