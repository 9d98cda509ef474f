// Large buffers on transparent huge pages, for the gate's hot memory: its duplicate-id set
// (32 MB for 2M items, probed at random), its remembered judgements, and its 4 MB blocks.
//
// On 4 KiB pages each of those costs a page fault per 4 KiB the first time it is touched and,
// for the tables, a TLB miss on most probes (32 MB is 8,192 pages; the TLB holds a few
// thousand). Asked for 2 MiB pages (madvise, which is what Linux's default "madvise" mode
// honours), a 32 MB table takes 16 faults and 16 TLB entries. Where the kernel gives no huge
// pages (THP off, other systems), this is ordinary zeroed memory and everything works the same.
#ifndef ASSENT_COMMON_HUGE_MEMORY_H_
#define ASSENT_COMMON_HUGE_MEMORY_H_

#include <cstddef>
#include <cstring>
#include <string_view>
#include <type_traits>
#include <utility>

namespace assent {

// Zeroed memory of at least `bytes`. From 2 MiB on it is its own mapping of whole 2 MiB pages,
// aligned and advised for huge pages; below that it comes from the heap (a huge page for a
// smaller buffer would add up to 2 MiB of memory per buffer). Always 64-byte aligned. Throws
// std::bad_alloc.
class HugeMemory {
 public:
  static constexpr size_t kHugePage = size_t{2} << 20;

  HugeMemory() = default;
  explicit HugeMemory(size_t bytes);
  ~HugeMemory() { Free(); }
  HugeMemory(HugeMemory&& other) noexcept { swap(other); }
  HugeMemory& operator=(HugeMemory&& other) noexcept {
    HugeMemory(std::move(other)).swap(*this);
    return *this;
  }
  HugeMemory(const HugeMemory&) = delete;
  HugeMemory& operator=(const HugeMemory&) = delete;
  void swap(HugeMemory& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
    std::swap(mapped_, other.mapped_);
  }

  void* data() const { return data_; }
  size_t size() const { return size_; }  // usable bytes (at least those asked for)

 private:
  void Free();
  void* data_ = nullptr;
  size_t size_ = 0;
  bool mapped_ = false;  // its own mapping (munmap), else the heap's (free)
};

// A fixed number of zero-initialised Ts (trivially copyable: zero bytes are a valid T).
template <class T>
class HugeArray {
  static_assert(std::is_trivially_copyable_v<T>);

 public:
  HugeArray() = default;
  explicit HugeArray(size_t n) : memory_(n * sizeof(T)), size_(n) {}
  T* data() const { return static_cast<T*>(memory_.data()); }
  size_t size() const { return size_; }
  T& operator[](size_t i) const { return data()[i]; }
  T* begin() const { return data(); }
  T* end() const { return data() + size_; }
  void swap(HugeArray& other) noexcept {
    memory_.swap(other.memory_);
    std::swap(size_, other.size_);
  }

 private:
  HugeMemory memory_;
  size_t size_ = 0;
};

// A growable byte string whose memory is a HugeMemory: what a block's bytes and its kept lines
// are held in. Growing keeps the contents; clear() keeps the memory for the next use.
class HugeBytes {
 public:
  char* data() const { return static_cast<char*>(memory_.data()); }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  size_t capacity() const { return memory_.size(); }
  operator std::string_view() const { return {data(), size_}; }
  void clear() { size_ = 0; }
  // New bytes are not initialised.
  void resize(size_t n) {
    if (n > capacity()) Grow(n);
    size_ = n;
  }
  void append(std::string_view s) {
    if (size_ + s.size() > capacity()) Grow(size_ + s.size());
    if (!s.empty()) std::memcpy(data() + size_, s.data(), s.size());
    size_ += s.size();
  }

 private:
  void Grow(size_t at_least);
  HugeMemory memory_;
  size_t size_ = 0;
};

}  // namespace assent

#endif  // ASSENT_COMMON_HUGE_MEMORY_H_
