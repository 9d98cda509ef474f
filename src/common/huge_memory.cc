// Huge-page memory (huge_memory.h).
#include "common/huge_memory.h"

#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

namespace assent {

HugeMemory::HugeMemory(size_t bytes) {
  if (bytes == 0) return;
  if (bytes < kHugePage) {
    // Cache-line aligned, as the mapping is (tables of 64-byte slots rely on it).
    const size_t size = (bytes + 63) & ~size_t{63};
    data_ = std::aligned_alloc(64, size);
    if (!data_) throw std::bad_alloc();
    std::memset(data_, 0, size);
    size_ = size;
    return;
  }
  // Map a huge page more than needed, then unmap the unaligned head and the tail, so that the
  // whole of what is kept can be backed by 2 MiB pages.
  const size_t size = (bytes + kHugePage - 1) & ~(kHugePage - 1);
  if (size < bytes || size + kHugePage < size) throw std::bad_alloc();
  void* raw = ::mmap(nullptr, size + kHugePage, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  const uintptr_t begin = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (begin + kHugePage - 1) & ~uintptr_t{kHugePage - 1};
  if (aligned > begin) ::munmap(raw, aligned - begin);
  const uintptr_t tail = aligned + size;
  const uintptr_t end = begin + size + kHugePage;
  if (end > tail) ::munmap(reinterpret_cast<void*>(tail), end - tail);
#ifdef MADV_HUGEPAGE
  // Advice only: without huge pages the memory is ordinary pages.
  ::madvise(reinterpret_cast<void*>(aligned), size, MADV_HUGEPAGE);
#endif
  data_ = reinterpret_cast<void*>(aligned);
  size_ = size;
  mapped_ = true;
}

void HugeMemory::Free() {
  if (!data_) return;
  if (mapped_) {
    ::munmap(data_, size_);
  } else {
    std::free(data_);
  }
  data_ = nullptr;
  size_ = 0;
  mapped_ = false;
}

void HugeBytes::Grow(size_t at_least) {
  // Appends double the memory (so that they cost O(1) each); one large resize takes what it asks.
  const size_t doubled = capacity() < 2048 ? 4096 : capacity() * 2;
  HugeMemory bigger(doubled > at_least ? doubled : at_least);
  if (size_) std::memcpy(bigger.data(), memory_.data(), size_);
  memory_.swap(bigger);
}

}  // namespace assent
