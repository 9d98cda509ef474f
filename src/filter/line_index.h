// Where a manifest block's lines end and where its quotes are, found in one pass 64 bytes at a
// time with the widest vector unit the processor has (AVX-512 with VBMI2, AVX-512BW, AVX2, else
// SSE2; chosen once, at first use). With the quotes' places known, the line reader takes each
// string in one step instead of scanning for its end (manifest.cc, FastLine and LineShape);
// with the newlines', it finds each line without a search of its own. docs/formats/manifest.md
// "How it runs".
#ifndef ASSENT_FILTER_LINE_INDEX_H_
#define ASSENT_FILTER_LINE_INDEX_H_

#include <cstddef>
#include <cstdint>
#include <memory>

namespace assent::internal {

// Offsets into one block of the bytes of interest in a stretch of it, each list ascending and
// followed by kSentinels copies of the stretch's end (so that a reader may look one or two
// places past the last without a bound check).
class BlockIndex {
 public:
  static constexpr size_t kSentinels = 2;
  // Blocks the index covers: offsets are 32-bit.
  static constexpr size_t kMaxBlockBytes = size_t{1} << 31;

  // Indexes the bytes [from, to) of `block` (to ≤ kMaxBlockBytes; at least 64 readable bytes
  // follow `to`). Replaces what was indexed before; keeps the memory.
  void Index(const char* block, size_t from, size_t to);

  const uint32_t* newlines() const { return newline_.data; }  // '\n'
  // For each newline, how many quotes are before it in the stretch (its quotes' place in
  // quotes(); no sentinels).
  const uint32_t* quotes_before_newlines() const { return quotes_before_.data; }
  const uint32_t* quotes() const { return quote_.data; }      // '"'
  // '\\' and every byte below 0x20 other than '\n' ("\r" and "\t" included).
  const uint32_t* specials() const { return special_.data; }
  // No byte at or above 0x80: the stretch is valid UTF-8 without a further check.
  bool ascii() const { return ascii_; }

  // Positions kept, for tests: in `newlines()` etc. before the sentinels.
  size_t newline_count() const { return newline_.size; }
  size_t quote_count() const { return quote_.size; }
  size_t special_count() const { return special_.size; }

 private:
  struct List {
    std::unique_ptr<uint32_t[]> owned;
    uint32_t* data = nullptr;
    size_t size = 0, capacity = 0;
    void Reserve(size_t n);
  };
  template <class Isa>
  friend void IndexWith(const char* block, size_t from, size_t to, BlockIndex* out);

  List newline_, quotes_before_, quote_, special_;
  bool ascii_ = true;
};

// Which implementation Index uses here: "avx512vbmi2", "avx512", "avx2", "sse2" or "bytes".
const char* BlockIndexIsa();
// Whether that is a vector unit's (elsewhere the reader does better without the index).
bool BlockIndexVectorized();

// Indexes with one implementation by name, for tests that hold each to the byte-by-byte one
// ("bytes", always there). False, doing nothing, when this processor lacks what it needs.
bool IndexBlockWith(const char* isa, const char* block, size_t from, size_t to, BlockIndex* out);

}  // namespace assent::internal

#endif  // ASSENT_FILTER_LINE_INDEX_H_
