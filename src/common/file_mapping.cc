// File mappings that survive truncation (file_mapping.h).
#include "common/file_mapping.h"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <mutex>

namespace assent {
namespace {

// The mappings alive, for the SIGBUS handler: begin 0 is a free slot, 1 one being set up.
constexpr int kSlots = 1024;
struct Range {
  std::atomic<uintptr_t> begin{0};
  std::atomic<uintptr_t> end{0};
  std::atomic<std::atomic<bool>*> shrank{nullptr};
};
Range g_ranges[kSlots];
struct sigaction g_previous {};
uintptr_t g_page = 4096;
std::once_flag g_installed;

// A page of a mapping that the file no longer reaches: zeros there, and the owner told.
// Anything else: the disposition from before, by faulting again (or raising it again when the
// signal was sent rather than caused).
void OnSigbus(int, siginfo_t* info, void*) {
  const uintptr_t addr = reinterpret_cast<uintptr_t>(info->si_addr);
  for (Range& r : g_ranges) {
    const uintptr_t begin = r.begin.load(std::memory_order_acquire);
    if (begin <= 1 || addr < begin || addr >= r.end.load(std::memory_order_relaxed)) continue;
    void* page = reinterpret_cast<void*>(addr & ~(g_page - 1));
    if (::mmap(page, g_page, PROT_READ, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) ==
        MAP_FAILED) {
      break;
    }
    if (std::atomic<bool>* shrank = r.shrank.load(std::memory_order_relaxed)) {
      shrank->store(true, std::memory_order_relaxed);
    }
    return;
  }
  ::sigaction(SIGBUS, &g_previous, nullptr);
  if (info->si_code <= 0) ::raise(SIGBUS);
}

void Install() {
  std::call_once(g_installed, [] {
    const long page = ::sysconf(_SC_PAGESIZE);
    if (page > 0) g_page = static_cast<uintptr_t>(page);
    struct sigaction sa {};
    sa.sa_sigaction = OnSigbus;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGBUS, &sa, &g_previous);
  });
}

}  // namespace

FileMapping::FileMapping(int fd, uint64_t offset, size_t len, std::atomic<bool>* shrank) {
  if (len == 0) return;
  Install();
  int slot = -1;
  for (int i = 0; i < kSlots && slot < 0; ++i) {
    uintptr_t free = 0;
    if (g_ranges[i].begin.compare_exchange_strong(free, 1, std::memory_order_acq_rel)) slot = i;
  }
  if (slot < 0) return;  // every slot taken: no mapping the handler could not find
  const uint64_t at = offset & ~uint64_t{g_page - 1};
  const size_t n = static_cast<size_t>(offset - at) + len;
  void* base = ::mmap(nullptr, n, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, static_cast<off_t>(at));
  if (base == MAP_FAILED) {
    g_ranges[slot].begin.store(0, std::memory_order_release);
    return;
  }
  Range& r = g_ranges[slot];
  r.end.store(reinterpret_cast<uintptr_t>(base) + n, std::memory_order_relaxed);
  r.shrank.store(shrank, std::memory_order_relaxed);
  r.begin.store(reinterpret_cast<uintptr_t>(base), std::memory_order_release);
  base_ = base;
  base_len_ = n;
  data_ = static_cast<const char*>(base) + (offset - at);
  slot_ = slot;
}

void FileMapping::Unmap() {
  if (!base_) return;
  g_ranges[slot_].begin.store(0, std::memory_order_release);
  ::munmap(base_, base_len_);
  base_ = nullptr;
  base_len_ = 0;
  data_ = nullptr;
  slot_ = -1;
}

}  // namespace assent
