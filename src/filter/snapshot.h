// Snapshot files: the compiled terms (as their YAML) and every consent event up to one ledger
// position, compact and content-hashed, so stateless workers of any batch engine can filter
// their own partitions without the ledger (`assent filter --snapshot FILE`).
// Format: docs/formats/snapshot.md.
#ifndef ASSENT_FILTER_SNAPSHOT_H_
#define ASSENT_FILTER_SNAPSHOT_H_

#include <memory>
#include <string>

#include "assent/engine.h"
#include "assent/ledger.h"

namespace assent {

struct SnapshotInfo {
  uint64_t position = 0;
  uint64_t events = 0;
  std::string sha256;  // of the whole content (header fields and body): what a dataset records
  std::string ledger;  // hex hash of the first entry of the ledger it was made from
};

// Whether a snapshot may record a dataset in `ledger`: it must come from this ledger (the same
// first entry) and not claim a position beyond its head. kFailedPrecondition naming both.
// `behind` receives how many entries the ledger has past the snapshot's position.
Status CheckSnapshotFor(const Ledger& ledger, const SnapshotInfo& info, uint64_t* behind);

// Writes the state at `position` (the ledger's position when 0) to `path` (via a temporary
// file renamed on success).
Result<SnapshotInfo> WriteSnapshot(const Ledger& ledger, uint64_t position, const std::string& path);

// A new engine holding the state at ledger `position` (terms and every consent event up to it;
// decisions then answer as the ledger did there). kInvalidArgument beyond the head.
Result<std::unique_ptr<Engine>> EngineAt(const Ledger& ledger, uint64_t position,
                                         Clock clock = SystemClock());

// Reads and verifies a snapshot file into a new engine. kDataLoss when the content does not
// match its hash or does not decode; kNotFound when unreadable.
Result<std::unique_ptr<Engine>> LoadSnapshot(const std::string& path, SnapshotInfo* info,
                                             Clock clock = SystemClock());
// The same from the file's bytes (`path` names it in errors).
Result<std::unique_ptr<Engine>> LoadSnapshotBytes(std::string_view file, const std::string& path,
                                                  SnapshotInfo* info, Clock clock = SystemClock());

}  // namespace assent

#endif  // ASSENT_FILTER_SNAPSHOT_H_
