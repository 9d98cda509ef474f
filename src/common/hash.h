// A fast, well-mixed 64-bit hash for in-memory indexes (not for security: SHA-256 is used
// wherever a hash is evidence). MurmurHash64A by Austin Appleby, public domain.
#ifndef ASSENT_COMMON_HASH_H_
#define ASSENT_COMMON_HASH_H_

#include <cstdint>
#include <cstring>
#include <string_view>

namespace assent {

inline uint64_t Hash64(std::string_view s, uint64_t seed = 0x5bd1e9955bd1e995ULL) {
  constexpr uint64_t m = 0xc6a4a7935bd1e995ULL;
  constexpr int r = 47;
  const size_t len = s.size();
  uint64_t h = seed ^ (len * m);
  const char* data = s.data();
  const char* end = data + (len / 8) * 8;
  for (; data != end; data += 8) {
    uint64_t k;
    std::memcpy(&k, data, 8);
    k *= m;
    k ^= k >> r;
    k *= m;
    h ^= k;
    h *= m;
  }
  // The last len % 8 bytes, little-endian, as MurmurHash64A's tail switch takes them: read
  // with at most two loads and no jump table (ids are short, of varying length: a switch on
  // the length mispredicted on most of them).
  const size_t t = len & 7;
  const auto* p = reinterpret_cast<const unsigned char*>(data);
  uint64_t tail;
  if (t >= 4) {
    uint32_t lo, hi;
    std::memcpy(&lo, p, 4);
    std::memcpy(&hi, p + t - 4, 4);
    tail = uint64_t{lo} | (uint64_t{hi} << (8 * (t - 4)));
  } else {
    tail = t == 0 ? 0
                  : uint64_t{p[0]} | (uint64_t{p[t >> 1]} << (8 * (t >> 1))) |
                        (uint64_t{p[t - 1]} << (8 * (t - 1)));
  }
  const uint64_t mixed = (h ^ tail) * m;
  h = t ? mixed : h;
  h ^= h >> r;
  h *= m;
  h ^= h >> r;
  return h;
}

// Transparent hash and equality so unordered_map<std::string, V> can be searched with a
// string_view without building a std::string.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return Hash64(s); }
};
struct StringEq {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const { return a == b; }
};

}  // namespace assent

#endif  // ASSENT_COMMON_HASH_H_
