// Read-only views of a regular file's bytes, mapped instead of copied, that survive the file
// shrinking underneath them.
//
// The gate reads a plain manifest by mapping each block (reading it with read() copied every
// byte out of the page cache once more: about 3% of a run's CPU). A mapped page that another
// process truncates away would raise SIGBUS on the next touch and kill the run; here a handler
// puts a page of zeros there instead and sets the mapping's `shrank` flag, which its owner
// checks before trusting what it read (the gate then fails the run and writes nothing). A
// SIGBUS at any other address goes to the handler installed before, or kills the process as
// it would have.
#ifndef ASSENT_COMMON_FILE_MAPPING_H_
#define ASSENT_COMMON_FILE_MAPPING_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <utility>

namespace assent {

class FileMapping {
 public:
  // Maps `len` bytes of `fd` from `offset` (any offset: the page boundary below is found
  // here). Null data() when the system refuses (no mapping then: read the bytes instead).
  // `shrank` must outlive the mapping; it becomes true if any of its pages was touched after
  // the file no longer reached it (those bytes read as zeros).
  FileMapping(int fd, uint64_t offset, size_t len, std::atomic<bool>* shrank);
  FileMapping() = default;
  ~FileMapping() { Unmap(); }
  FileMapping(FileMapping&& other) noexcept { swap(other); }
  FileMapping& operator=(FileMapping&& other) noexcept {
    FileMapping(std::move(other)).swap(*this);
    return *this;
  }
  FileMapping(const FileMapping&) = delete;
  FileMapping& operator=(const FileMapping&) = delete;
  void swap(FileMapping& other) noexcept {
    std::swap(base_, other.base_);
    std::swap(base_len_, other.base_len_);
    std::swap(data_, other.data_);
    std::swap(slot_, other.slot_);
  }

  const char* data() const { return data_; }
  explicit operator bool() const { return data_ != nullptr; }
  void Unmap();

 private:
  void* base_ = nullptr;  // page-aligned
  size_t base_len_ = 0;
  const char* data_ = nullptr;  // base_ + (offset % page)
  int slot_ = -1;               // in the table the SIGBUS handler reads
};

}  // namespace assent

#endif  // ASSENT_COMMON_FILE_MAPPING_H_
