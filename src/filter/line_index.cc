// Indexing a manifest block (line_index.h): one loop over 64-byte chunks for every vector unit,
// compiled once per instruction set and chosen by what the processor says it has.
#include "filter/line_index.h"

#include <algorithm>
#include <cstring>
#include <string_view>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace assent::internal {
namespace {

// One 64-byte chunk's bytes of interest, a bit each.
struct Masks {
  uint64_t newline, quote, special, high;  // '\n'; '"'; '\\' or below 0x20; 0x80 and above
};

// Without a vector unit: byte by byte (other processors than x86-64; the tests' reference).
struct Bytes {
  static constexpr bool kCompress = false;
  static constexpr bool kPopcount = false;
  static Masks Chunk(const char* p) {
    Masks m{0, 0, 0, 0};
    for (int i = 0; i < 64; ++i) {
      const unsigned char c = static_cast<unsigned char>(p[i]);
      m.newline |= uint64_t{c == '\n'} << i;
      m.quote |= uint64_t{c == '"'} << i;
      m.special |= uint64_t{c == '\\' || c < 0x20} << i;
      m.high |= uint64_t{c >= 0x80} << i;
    }
    return m;
  }
};

}  // namespace

void BlockIndex::List::Reserve(size_t n) {
  if (n <= capacity) return;
  const size_t want = std::max(n, 2 * capacity);
  auto grown = std::make_unique<uint32_t[]>(want);
  if (size) std::memcpy(grown.get(), data, size * sizeof(uint32_t));
  owned = std::move(grown);
  data = owned.get();
  capacity = want;
}

// The loop every implementation shares; Isa::Chunk gives one chunk's masks. Each entry point
// below is compiled for its instruction set with this loop and its Chunk inlined into it
// ("flatten": inlined into the entry point, Chunk's instructions are allowed there).
template <class Isa>
inline void IndexWith(const char* block, size_t from, size_t to, BlockIndex* out) {
  constexpr size_t kRoom = 64 + BlockIndex::kSentinels;  // what one chunk may add, and the end
  BlockIndex::List& newline = out->newline_;
  BlockIndex::List& quotes_before = out->quotes_before_;
  BlockIndex::List& quote = out->quote_;
  BlockIndex::List& special = out->special_;
  newline.size = quotes_before.size = quote.size = special.size = 0;
  newline.Reserve((to - from) / 64 + kRoom);
  quotes_before.Reserve(newline.capacity);
  quote.Reserve((to - from) / 4 + kRoom);
  special.Reserve(kRoom);
  uint64_t high = 0;
  for (size_t base = from; base < to; base += 64) {
    Masks m = Isa::Chunk(block + base);
    const size_t left = to - base;
    const uint64_t in = left < 64 ? (uint64_t{1} << left) - 1 : ~uint64_t{0};
    m.newline &= in;
    m.quote &= in;
    m.special &= in & ~m.newline;
    high |= m.high & in;
    const uint32_t offset = static_cast<uint32_t>(base);
    if (quote.capacity - quote.size < kRoom) quote.Reserve(quote.size + kRoom);
    if (newline.capacity - newline.size < kRoom) {
      newline.Reserve(newline.size + kRoom);
      quotes_before.Reserve(newline.capacity);
    }
    const size_t quotes_so_far = quote.size;
    uint64_t q = m.quote;
    if constexpr (Isa::kCompress) {
      quote.size += Isa::Flatten(q, offset, quote.data + quote.size);
    } else if constexpr (Isa::kPopcount) {
      // Eight places written whether there are or not, so that the loop's end is seldom
      // mispredicted (a manifest's chunk holds about seven quotes); the high bit keeps ctz defined.
      const uint32_t count = static_cast<uint32_t>(__builtin_popcountll(q));
      uint32_t* at = quote.data + quote.size;
      for (uint32_t i = 0; i < 8; ++i, q &= q - 1) {
        at[i] = offset + static_cast<uint32_t>(__builtin_ctzll(q | (uint64_t{1} << 63)));
      }
      for (uint32_t i = 8; i < count; ++i, q &= q - 1) {
        at[i] = offset + static_cast<uint32_t>(__builtin_ctzll(q));
      }
      quote.size += count;
    } else {
      for (; q; q &= q - 1) {
        quote.data[quote.size++] = offset + static_cast<uint32_t>(__builtin_ctzll(q));
      }
    }
    // A chunk holds at most one newline, most often (lines are longer than 64 bytes): the first
    // is written whether there is one or not, and counted only if there is, so that no branch
    // depends on it; any more are written one by one.
    auto add_newline = [&](uint64_t n) {
      const uint32_t bit = static_cast<uint32_t>(__builtin_ctzll(n | (uint64_t{1} << 63)));
      const uint64_t below = (uint64_t{1} << bit) - 1;
      quotes_before.data[quotes_before.size] =
          static_cast<uint32_t>(quotes_so_far + static_cast<size_t>(__builtin_popcountll(m.quote & below)));
      newline.data[newline.size] = offset + bit;
      const size_t found = n != 0;
      quotes_before.size += found;
      newline.size += found;
    };
    add_newline(m.newline);
    for (uint64_t n = m.newline & (m.newline - 1); n; n &= n - 1) add_newline(n);
    for (uint64_t s = m.special; s; s &= s - 1) {
      if (special.capacity - special.size < kRoom) special.Reserve(special.size + kRoom);
      special.data[special.size++] = offset + static_cast<uint32_t>(__builtin_ctzll(s));
    }
  }
  for (BlockIndex::List* list : {&newline, &quote, &special}) {
    list->Reserve(list->size + BlockIndex::kSentinels);
    std::fill_n(list->data + list->size, BlockIndex::kSentinels, static_cast<uint32_t>(to));
  }
  out->ascii_ = high == 0;
}

namespace {

#if defined(__x86_64__)
struct Sse2 {
  static constexpr bool kCompress = false;
  static constexpr bool kPopcount = false;
  static inline Masks Chunk(const char* p) {
    const __m128i newline = _mm_set1_epi8('\n'), quote = _mm_set1_epi8('"'),
                  backslash = _mm_set1_epi8('\\'), below_space = _mm_set1_epi8(0x1f);
    Masks m{0, 0, 0, 0};
    for (int i = 0; i < 4; ++i) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * i));
      const int shift = 16 * i;
      auto bits = [](__m128i x) { return uint64_t{static_cast<uint16_t>(_mm_movemask_epi8(x))}; };
      m.newline |= bits(_mm_cmpeq_epi8(v, newline)) << shift;
      m.quote |= bits(_mm_cmpeq_epi8(v, quote)) << shift;
      m.special |= bits(_mm_or_si128(_mm_cmpeq_epi8(v, backslash),
                                     _mm_cmpeq_epi8(_mm_min_epu8(v, below_space), v)))
                   << shift;
      m.high |= bits(v) << shift;
    }
    return m;
  }
};

#define ASSENT_AVX2 __attribute__((target("avx2,bmi,bmi2,popcnt,lzcnt")))
#define ASSENT_AVX512 __attribute__((target("avx512f,avx512bw,avx2,bmi,bmi2,popcnt,lzcnt")))

struct Avx2 {
  static constexpr bool kCompress = false;
  static constexpr bool kPopcount = true;
  ASSENT_AVX2 static inline Masks Chunk(const char* p) {
    const __m256i newline = _mm256_set1_epi8('\n'), quote = _mm256_set1_epi8('"'),
                  backslash = _mm256_set1_epi8('\\'), below_space = _mm256_set1_epi8(0x1f);
    Masks m{0, 0, 0, 0};
    for (int i = 0; i < 2; ++i) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32 * i));
      const int shift = 32 * i;
      auto bits = [](__m256i x) ASSENT_AVX2 {
        return uint64_t{static_cast<uint32_t>(_mm256_movemask_epi8(x))};
      };
      m.newline |= bits(_mm256_cmpeq_epi8(v, newline)) << shift;
      m.quote |= bits(_mm256_cmpeq_epi8(v, quote)) << shift;
      m.special |= bits(_mm256_or_si256(_mm256_cmpeq_epi8(v, backslash),
                                        _mm256_cmpeq_epi8(_mm256_min_epu8(v, below_space), v)))
                   << shift;
      m.high |= bits(v) << shift;
    }
    return m;
  }
};

struct Avx512 {
  static constexpr bool kCompress = false;
  static constexpr bool kPopcount = true;
  ASSENT_AVX512 static inline Masks Chunk(const char* p) {
    const __m512i v = _mm512_loadu_si512(p);
    return Masks{
        _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('\n')),
        _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('"')),
        _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('\\')) |
            _mm512_cmplt_epu8_mask(v, _mm512_set1_epi8(0x20)),
        _mm512_movepi8_mask(v),
    };
  }
};

#define ASSENT_VBMI2 \
  __attribute__((target("avx512f,avx512bw,avx512vbmi2,avx2,bmi,bmi2,popcnt,lzcnt")))

// GCC 12's own AVX-512 headers trip its -Wmaybe-uninitialized (their "undefined" vectors)
// once inlined here; nothing of ours is uninitialised.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

// With AVX-512 VBMI2: a chunk's quote places packed by one compress instead of one at a time.
struct Avx512Vbmi2 {
  static constexpr bool kCompress = true;
  ASSENT_VBMI2 static inline Masks Chunk(const char* p) { return Avx512::Chunk(p); }
  // Writes the places of q's bits (plus `offset`) to `at`, 16 at a time (up to 63 past the
  // last one written); returns how many there are.
  ASSENT_VBMI2 static inline uint32_t Flatten(uint64_t q, uint32_t offset, uint32_t* at) {
    alignas(64) static constexpr uint8_t kPlaces[64] = {
        0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
        22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43,
        44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63};
    const __m512i packed = _mm512_maskz_compress_epi8(q, _mm512_load_si512(kPlaces));
    const __m512i base = _mm512_set1_epi32(static_cast<int>(offset));
    const uint32_t count = static_cast<uint32_t>(__builtin_popcountll(q));
    _mm512_storeu_si512(at, _mm512_add_epi32(_mm512_cvtepu8_epi32(_mm512_castsi512_si128(packed)), base));
    if (count > 16) {
      _mm512_storeu_si512(at + 16, _mm512_add_epi32(
                                       _mm512_cvtepu8_epi32(_mm512_extracti32x4_epi32(packed, 1)), base));
      if (count > 32) {
        _mm512_storeu_si512(at + 32, _mm512_add_epi32(
                                         _mm512_cvtepu8_epi32(_mm512_extracti32x4_epi32(packed, 2)), base));
        _mm512_storeu_si512(at + 48, _mm512_add_epi32(
                                         _mm512_cvtepu8_epi32(_mm512_extracti32x4_epi32(packed, 3)), base));
      }
    }
    return count;
  }
};

[[gnu::flatten]] void IndexSse2(const char* block, size_t from, size_t to, BlockIndex* out) {
  IndexWith<Sse2>(block, from, to, out);
}
[[gnu::flatten]] ASSENT_AVX2 void IndexAvx2(const char* block, size_t from, size_t to, BlockIndex* out) {
  IndexWith<Avx2>(block, from, to, out);
}
[[gnu::flatten]] ASSENT_AVX512 void IndexAvx512(const char* block, size_t from, size_t to, BlockIndex* out) {
  IndexWith<Avx512>(block, from, to, out);
}
[[gnu::flatten]] ASSENT_VBMI2 void IndexAvx512Vbmi2(const char* block, size_t from, size_t to,
                                                  BlockIndex* out) {
  IndexWith<Avx512Vbmi2>(block, from, to, out);
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif

[[gnu::flatten]] void IndexBytes(const char* block, size_t from, size_t to, BlockIndex* out) {
  IndexWith<Bytes>(block, from, to, out);
}

using IndexFn = void (*)(const char*, size_t, size_t, BlockIndex*);

struct Choice {
  IndexFn index;
  const char* name;
};

// The implementation named, if this processor has what it needs.
IndexFn Named(std::string_view name) {
  if (name == "bytes") return IndexBytes;
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (name == "sse2") return IndexSse2;
  if (name == "avx2") {
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi2") ? IndexAvx2 : nullptr;
  }
  if (name == "avx512vbmi2") {
    return __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512f") &&
                   __builtin_cpu_supports("avx512vbmi2")
               ? IndexAvx512Vbmi2
               : nullptr;
  }
  if (name == "avx512") {
    return __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512f") ? IndexAvx512
                                                                                    : nullptr;
  }
#endif
  return nullptr;
}

const Choice& Chosen() {
  static const Choice choice = [] {
    for (const char* name : {"avx512vbmi2", "avx512", "avx2", "sse2"}) {
      if (IndexFn f = Named(name)) return Choice{f, name};
    }
    return Choice{IndexBytes, "bytes"};
  }();
  return choice;
}

}  // namespace

void BlockIndex::Index(const char* block, size_t from, size_t to) {
  Chosen().index(block, from, to, this);
}

const char* BlockIndexIsa() { return Chosen().name; }

bool BlockIndexVectorized() { return Chosen().index != IndexBytes; }

bool IndexBlockWith(const char* isa, const char* block, size_t from, size_t to, BlockIndex* out) {
  const IndexFn f = Named(isa);
  if (f) f(block, from, to, out);
  return f != nullptr;
}

}  // namespace assent::internal
