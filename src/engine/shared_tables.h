// Append-only tables shared by every snapshot of one Engine: interned consent scopes and the
// timeline of consent events (time, position). A snapshot reads only the prefix that existed
// when it was published, so the writer may append while readers read, without locks.
#ifndef ASSENT_ENGINE_SHARED_TABLES_H_
#define ASSENT_ENGINE_SHARED_TABLES_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "assent/time.h"

namespace assent::internal {

// A growable array whose elements never move. One writer appends; readers may read any
// index below a size they learnt through a release/acquire pair (a published snapshot).
template <typename T>
class AppendOnlyArray {
 public:
  static constexpr size_t kChunkBits = 12;
  static constexpr size_t kChunk = size_t{1} << kChunkBits;
  static constexpr size_t kMaxChunks = size_t{1} << 16;  // 268M elements

  AppendOnlyArray() : chunks_(new std::atomic<T*>[kMaxChunks]) {
    for (size_t i = 0; i < kMaxChunks; ++i) chunks_[i].store(nullptr, std::memory_order_relaxed);
  }
  ~AppendOnlyArray() {
    for (size_t i = 0; i < kMaxChunks; ++i) delete[] chunks_[i].load(std::memory_order_relaxed);
  }
  AppendOnlyArray(const AppendOnlyArray&) = delete;
  AppendOnlyArray& operator=(const AppendOnlyArray&) = delete;

  // Writer only. False when full.
  bool push_back(const T& v) {
    size_t c = size_ >> kChunkBits;
    if (c >= kMaxChunks) return false;
    T* chunk = chunks_[c].load(std::memory_order_relaxed);
    if (!chunk) {
      chunk = new T[kChunk]();
      chunks_[c].store(chunk, std::memory_order_release);
    }
    chunk[size_ & (kChunk - 1)] = v;
    ++size_;
    return true;
  }
  // Writer only: forget elements past `n` (an aborted batch).
  void truncate(size_t n) {
    if (n < size_) size_ = n;
  }
  size_t size() const { return size_; }  // writer only
  const T& operator[](size_t i) const {
    return chunks_[i >> kChunkBits].load(std::memory_order_acquire)[i & (kChunk - 1)];
  }

 private:
  std::unique_ptr<std::atomic<T*>[]> chunks_;
  size_t size_ = 0;
};

// A consent event's scope: categories x purposes, as global vocabulary ids.
struct Scope {
  std::vector<int32_t> categories;
  std::vector<int32_t> purposes;
};

// Where consent event positions stop following one another (other ledger entries between):
// from consent event `index` on, position = index + 1 + delta.
struct PositionBreak {
  uint64_t index;
  uint64_t delta;
};

struct SharedTables {
  AppendOnlyArray<const Scope*> scopes;
  // One time per consent event, in position order (8 bytes an event); positions are implied
  // by `position_breaks`, which grows only when other ledger entries come in between.
  AppendOnlyArray<Timestamp> timeline;
  AppendOnlyArray<PositionBreak> position_breaks;
  // Writer only:
  uint64_t last_delta = 0;
  std::unordered_map<std::string, uint32_t> scope_index;
  std::vector<std::unique_ptr<Scope>> scope_storage;
};

}  // namespace assent::internal

#endif  // ASSENT_ENGINE_SHARED_TABLES_H_
