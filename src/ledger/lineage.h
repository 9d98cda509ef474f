// Lineage: the datasets and models recorded in the ledger, with the subjects and accounts each
// dataset (and each of its shards) contains as compressed bitmaps over dense ids, so that a
// withdrawal can be traced to what it affects (DESIGN.md "Training-data gate and lineage").
//
// Dense ids are given to a party the first time a dataset entry names it, in ledger order:
// the entry lists its new parties' names, so replay assigns the same ids.
//
// Thread safety: not thread-safe; the Ledger guards it.
#ifndef ASSENT_LEDGER_LINEAGE_H_
#define ASSENT_LEDGER_LINEAGE_H_

#include <roaring/roaring.hh>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "assent/decision.h"
#include "assent/time.h"

namespace assent {

struct ShardInfo {
  std::string file;
  uint64_t items = 0;
  Roaring subjects;
};

struct DatasetInfo {
  std::string name, purpose, terms;
  uint64_t position = 0;         // of the registration entry
  uint64_t ledger_position = 0;  // the pinned position the filter decided at
  Timestamp recorded_at = 0;
  std::string input_sha256, output_sha256, snapshot_sha256;
  uint64_t items = 0;
  Roaring subjects, accounts;
  std::vector<ShardInfo> shards;
};

struct ModelInfo {
  std::string name;
  std::vector<std::string> datasets;
  uint64_t position = 0;
  Timestamp recorded_at = 0;
};

class PartyDirectory {
 public:
  std::optional<uint32_t> Find(std::string_view name) const;
  uint32_t Add(std::string name);  // REQUIRES: not present
  size_t size() const { return names_.size(); }

 private:
  std::unordered_map<std::string, uint32_t> ids_;
  std::vector<std::string> names_;
};

struct Lineage {
  PartyDirectory subjects, accounts;
  std::vector<DatasetInfo> datasets;
  std::vector<ModelInfo> models;
  const DatasetInfo* FindDataset(std::string_view name) const;
  const ModelInfo* FindModel(std::string_view name) const;
};

// Portable roaring bytes as base64, and back (false on damage).
std::string EncodeBitmap(const Roaring& r);
bool DecodeBitmap(std::string_view base64, Roaring* out);

}  // namespace assent

#endif  // ASSENT_LEDGER_LINEAGE_H_
