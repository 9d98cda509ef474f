// Lineage tables and bitmap encoding.
#include "ledger/lineage.h"

#include "common/strings.h"

namespace assent {

std::optional<uint32_t> PartyDirectory::Find(std::string_view name) const {
  auto it = ids_.find(std::string(name));
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

uint32_t PartyDirectory::Add(std::string name) {
  uint32_t id = static_cast<uint32_t>(names_.size());
  ids_.emplace(name, id);
  names_.push_back(std::move(name));
  return id;
}

const DatasetInfo* Lineage::FindDataset(std::string_view name) const {
  for (const auto& d : datasets) {
    if (d.name == name) return &d;
  }
  return nullptr;
}

const ModelInfo* Lineage::FindModel(std::string_view name) const {
  for (const auto& m : models) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

std::string EncodeBitmap(const Roaring& r) {
  Roaring copy = r;
  copy.runOptimize();
  std::string bytes(copy.getSizeInBytes(true), '\0');
  copy.write(bytes.data(), true);
  return Base64Encode(bytes);
}

bool DecodeBitmap(std::string_view base64, Roaring* out) {
  std::string bytes;
  if (!Base64Decode(base64, &bytes)) return false;
  try {
    *out = Roaring::readSafe(bytes.data(), bytes.size());
  } catch (const std::exception&) {
    return false;
  }
  return true;
}

}  // namespace assent
