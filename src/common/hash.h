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
  switch (len & 7) {
    case 7: h ^= uint64_t(static_cast<unsigned char>(data[6])) << 48; [[fallthrough]];
    case 6: h ^= uint64_t(static_cast<unsigned char>(data[5])) << 40; [[fallthrough]];
    case 5: h ^= uint64_t(static_cast<unsigned char>(data[4])) << 32; [[fallthrough]];
    case 4: h ^= uint64_t(static_cast<unsigned char>(data[3])) << 24; [[fallthrough]];
    case 3: h ^= uint64_t(static_cast<unsigned char>(data[2])) << 16; [[fallthrough]];
    case 2: h ^= uint64_t(static_cast<unsigned char>(data[1])) << 8; [[fallthrough]];
    case 1:
      h ^= uint64_t(static_cast<unsigned char>(data[0]));
      h *= m;
  }
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
