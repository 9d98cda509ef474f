// Fuzz target: the receipt, checkpoint and proof verifier (`audit verify-receipt`). The input
// is split at NUL bytes into a receipt, a later checkpoint and a consistency proof. Property:
// nothing made up verifies under a key whose secret the fuzzer never sees.
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string_view>

#include "audit/audit.h"
#include "audit/checkpoint.h"

namespace {
const assent::audit::VerifierKey& Key() {
  static const assent::audit::VerifierKey key = [] {
    const std::string dir = std::filesystem::temp_directory_path() / "assent-fuzz-receipt-key";
    auto signing = assent::audit::LoadSigningKey(dir, true);
    if (!signing) std::abort();
    auto vk = assent::audit::ParseVerifierKey(assent::audit::VerifierKeyText(*signing));
    if (!vk) std::abort();
    return *vk;
  }();
  return key;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::string_view parts[3];
  for (int i = 0; i < 3; ++i) {
    const size_t nul = text.find('\0');
    parts[i] = text.substr(0, nul);
    text = nul == std::string_view::npos ? std::string_view() : text.substr(nul + 1);
  }
  if (assent::audit::VerifyReceipt(parts[0], Key())) std::abort();  // nobody else signs
  (void)assent::audit::OpenCheckpoint(parts[1], Key());
  if (assent::audit::VerifyReceiptInLaterCheckpoint(parts[0], parts[1], parts[2], Key())) {
    std::abort();
  }
  return 0;
}
