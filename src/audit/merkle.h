// The Merkle tree of the ledger in the style of Certificate Transparency (RFC 9162 §2.1):
// leaf hash = SHA-256(0x00 || entry bytes), node hash = SHA-256(0x01 || left || right), with
// inclusion and consistency proofs and their verification.
//
// Groundwork for the audit log: the tree keeps the hash of every complete subtree (about two
// hashes a leaf), so roots, inclusion proofs and consistency proofs for any size are
// O(log n) look-ups. Thread safety: not thread-safe.
#ifndef ASSENT_AUDIT_MERKLE_H_
#define ASSENT_AUDIT_MERKLE_H_

#include <cstdint>
#include <string_view>
#include <vector>

#include "assent/result.h"
#include "common/sha256.h"

namespace assent::audit {

using Hash = Sha256Digest;

Hash LeafHash(std::string_view entry_bytes);
Hash NodeHash(const Hash& left, const Hash& right);
// The root of the empty tree: SHA-256 of nothing.
Hash EmptyRoot();

class MerkleTree {
 public:
  void AppendLeafHash(const Hash& leaf);
  void Append(std::string_view entry_bytes) { AppendLeafHash(LeafHash(entry_bytes)); }
  uint64_t size() const { return levels_.empty() ? 0 : levels_[0].size(); }
  const Hash& leaf(uint64_t index) const { return levels_[0][index]; }

  // The root of the first `tree_size` leaves. kInvalidArgument past the end.
  Result<Hash> Root(uint64_t tree_size) const;
  // The audit path of leaf `index` in the tree of `tree_size` leaves (RFC 9162 PATH).
  Result<std::vector<Hash>> InclusionProof(uint64_t index, uint64_t tree_size) const;
  // The proof that the tree of `first` leaves is a prefix of the tree of `second` leaves.
  Result<std::vector<Hash>> ConsistencyProof(uint64_t first, uint64_t second) const;

 private:
  Hash RangeHash(uint64_t begin, uint64_t end) const;
  void Path(uint64_t index, uint64_t begin, uint64_t end, std::vector<Hash>* out) const;
  void SubProof(uint64_t m, uint64_t begin, uint64_t end, bool whole, std::vector<Hash>* out) const;
  // levels_[h][i]: the hash of leaves [i * 2^h, (i + 1) * 2^h), for complete subtrees only.
  std::vector<std::vector<Hash>> levels_;
};

// RFC 9162 §2.1.3.2: does `proof` show `leaf` at `index` in the tree with `root` of `tree_size`?
bool VerifyInclusion(uint64_t index, uint64_t tree_size, const Hash& leaf,
                     const std::vector<Hash>& proof, const Hash& root);
// RFC 9162 §2.1.4.2: is the tree (`first`, `first_root`) a prefix of (`second`, `second_root`)?
bool VerifyConsistency(uint64_t first, uint64_t second, const std::vector<Hash>& proof,
                       const Hash& first_root, const Hash& second_root);

}  // namespace assent::audit

#endif  // ASSENT_AUDIT_MERKLE_H_
