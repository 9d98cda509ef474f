// Fuzz target: the snapshot loader (`filter --snapshot`, stateless workers). The input is an
// event count and the body; the target writes the header with its true hash, so the fuzzer
// explores the decoder behind the hash check rather than the check itself. Property: never crashes; a loaded
// snapshot answers decisions.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "assent/engine.h"
#include "common/sha256.h"
#include "filter/snapshot.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  // The first two bytes give the header's event count; the rest is the body.
  const uint64_t events = data[0] | (static_cast<uint64_t>(data[1]) << 8);
  const std::string body(reinterpret_cast<const char*>(data + 2), size - 2);
  const std::string head = "{\"position\":" + std::to_string(size % 7) + ",\"events\":" +
                           std::to_string(events) + ",\"ledger\":\"" + std::string(64, '0') +
                           "\"}\n";
  // Format 3 (notices) or, every other input, format 2 (which refuses them).
  std::string file = std::string(size % 2 ? "ASSENT-SNAPSHOT 2\n" : "ASSENT-SNAPSHOT 3\n") + head.substr(0, head.size() - 2) + ",\"sha256\":\"" +
                     assent::ToHex(assent::Sha256(head + body)) + "\"}\n" + body;
  assent::SnapshotInfo info;
  auto engine = assent::LoadSnapshotBytes(file, "fuzz.snap", &info, [] { return 0; });
  if (!engine) {
    if (engine.error().code != assent::ErrorCode::kDataLoss &&
        engine.error().code != assent::ErrorCode::kInvalidArgument) {
      std::abort();
    }
    return 0;
  }
  std::string_view subjects[] = {"u1"};
  assent::DecisionRequest q;
  q.category = "content";
  q.purpose = "service";
  q.subjects = subjects;
  (void)(*engine)->snapshot()->Decide(q, 0);
  return 0;
}
