// RFC 9162 Merkle tree hashing, proofs and verification.
#include "audit/merkle.h"

#include <bit>
#include <cstring>

namespace assent::audit {
namespace {

// The largest power of two smaller than n. REQUIRES: n > 1.
uint64_t SplitPoint(uint64_t n) { return std::bit_floor(n - 1); }

}  // namespace

Hash LeafHash(std::string_view bytes) {
  std::string buf(1, '\0');
  buf.append(bytes);
  return Sha256(buf);
}

Hash NodeHash(const Hash& left, const Hash& right) {
  char buf[65];
  buf[0] = 1;
  std::memcpy(buf + 1, left.data(), 32);
  std::memcpy(buf + 33, right.data(), 32);
  return Sha256(std::string_view(buf, sizeof buf));
}

Hash EmptyRoot() { return Sha256(""); }

void MerkleTree::AppendLeafHash(const Hash& leaf) {
  if (levels_.empty()) levels_.emplace_back();
  levels_[0].push_back(leaf);
  // Close every subtree this leaf completes.
  for (size_t h = 0; levels_[h].size() % 2 == 0; ++h) {
    if (h + 1 == levels_.size()) levels_.emplace_back();
    const auto& level = levels_[h];
    levels_[h + 1].push_back(NodeHash(level[level.size() - 2], level[level.size() - 1]));
  }
}

Hash MerkleTree::RangeHash(uint64_t begin, uint64_t end) const {
  const uint64_t n = end - begin;
  if (std::has_single_bit(n) && begin % n == 0) {
    return levels_[std::countr_zero(n)][begin / n];
  }
  const uint64_t k = SplitPoint(n);
  return NodeHash(RangeHash(begin, begin + k), RangeHash(begin + k, end));
}

Result<Hash> MerkleTree::Root(uint64_t tree_size) const {
  if (tree_size > size()) {
    return InvalidArgumentError("the tree has " + std::to_string(size()) + " leaves, not " +
                                std::to_string(tree_size));
  }
  if (tree_size == 0) return EmptyRoot();
  return RangeHash(0, tree_size);
}

void MerkleTree::Path(uint64_t index, uint64_t begin, uint64_t end, std::vector<Hash>* out) const {
  const uint64_t n = end - begin;
  if (n == 1) return;
  const uint64_t k = SplitPoint(n);
  if (index < k) {
    Path(index, begin, begin + k, out);
    out->push_back(RangeHash(begin + k, end));
  } else {
    Path(index - k, begin + k, end, out);
    out->push_back(RangeHash(begin, begin + k));
  }
}

Result<std::vector<Hash>> MerkleTree::InclusionProof(uint64_t index, uint64_t tree_size) const {
  if (tree_size > size() || index >= tree_size) {
    return InvalidArgumentError("no leaf " + std::to_string(index) + " in a tree of " +
                                std::to_string(tree_size) + " (the log has " +
                                std::to_string(size()) + ")");
  }
  std::vector<Hash> out;
  Path(index, 0, tree_size, &out);
  return out;
}

void MerkleTree::SubProof(uint64_t m, uint64_t begin, uint64_t end, bool whole,
                          std::vector<Hash>* out) const {
  const uint64_t n = end - begin;
  if (m == n) {
    if (!whole) out->push_back(RangeHash(begin, end));
    return;
  }
  const uint64_t k = SplitPoint(n);
  if (m <= k) {
    SubProof(m, begin, begin + k, whole, out);
    out->push_back(RangeHash(begin + k, end));
  } else {
    SubProof(m - k, begin + k, end, false, out);
    out->push_back(RangeHash(begin, begin + k));
  }
}

Result<std::vector<Hash>> MerkleTree::ConsistencyProof(uint64_t first, uint64_t second) const {
  if (first == 0 || first > second || second > size()) {
    return InvalidArgumentError("no consistency proof from " + std::to_string(first) + " to " +
                                std::to_string(second) + " (the log has " +
                                std::to_string(size()) + ")");
  }
  std::vector<Hash> out;
  SubProof(first, 0, second, true, &out);
  return out;
}

bool VerifyInclusion(uint64_t index, uint64_t tree_size, const Hash& leaf,
                     const std::vector<Hash>& proof, const Hash& root) {
  if (index >= tree_size) return false;
  uint64_t fn = index, sn = tree_size - 1;
  Hash r = leaf;
  for (const Hash& p : proof) {
    if (sn == 0) return false;
    if ((fn & 1) || fn == sn) {
      r = NodeHash(p, r);
      if (!(fn & 1)) {
        while (!(fn & 1) && fn != 0) fn >>= 1, sn >>= 1;
      }
    } else {
      r = NodeHash(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  return sn == 0 && r == root;
}

bool VerifyConsistency(uint64_t first, uint64_t second, const std::vector<Hash>& proof_in,
                       const Hash& first_root, const Hash& second_root) {
  if (first == 0 || first > second) return false;
  if (first == second) return proof_in.empty() && first_root == second_root;
  std::vector<Hash> proof = proof_in;
  if (std::has_single_bit(first)) proof.insert(proof.begin(), first_root);
  if (proof.empty()) return false;
  uint64_t fn = first - 1, sn = second - 1;
  while (fn & 1) fn >>= 1, sn >>= 1;
  Hash fr = proof[0], sr = proof[0];
  for (size_t i = 1; i < proof.size(); ++i) {
    const Hash& c = proof[i];
    if (sn == 0) return false;
    if ((fn & 1) || fn == sn) {
      fr = NodeHash(c, fr);
      sr = NodeHash(c, sr);
      if (!(fn & 1)) {
        while (!(fn & 1) && fn != 0) fn >>= 1, sn >>= 1;
      }
    } else {
      sr = NodeHash(sr, c);
    }
    fn >>= 1;
    sn >>= 1;
  }
  return fr == first_root && sr == second_root && sn == 0;
}

}  // namespace assent::audit
