#include "audit/merkle.h"

#include <gtest/gtest.h>

#include <random>

namespace assent::audit {
namespace {

Hash H(std::string_view hex) {
  Hash h{};
  EXPECT_TRUE(ParseSha256Hex(hex, &h)) << hex;
  return h;
}

std::string Bytes(std::string_view hex) {
  std::string out;
  for (size_t i = 0; i < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

// The Certificate Transparency / RFC 6962 reference leaves and tree heads.
const char* kLeaves[] = {"",         "00",       "10",
                         "2021",     "3031",     "40414243",
                         "5051525354555657", "606162636465666768696a6b6c6d6e6f"};
const char* kRoots[] = {
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"};

MerkleTree Reference() {
  MerkleTree t;
  for (const char* l : kLeaves) t.Append(Bytes(l));
  return t;
}

TEST(MerkleTest, RootsMatchTheReferenceTreeHeads) {
  MerkleTree t = Reference();
  for (uint64_t n = 0; n <= 8; ++n) EXPECT_EQ(ToHex(*t.Root(n)), kRoots[n]) << n;
  EXPECT_FALSE(t.Root(9));
}

TEST(MerkleTest, InclusionProofsMatchTheReferenceVectors) {
  struct Vector {
    uint64_t index, size;
    std::vector<const char*> proof;
  } vectors[] = {
      {0, 8,
       {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
      {5, 8,
       {"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
      {2, 3, {"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"}},
      {1, 5,
       {"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
  };
  MerkleTree t = Reference();
  for (const auto& v : vectors) {
    auto proof = t.InclusionProof(v.index, v.size);
    ASSERT_TRUE(proof);
    ASSERT_EQ(proof->size(), v.proof.size()) << v.index << "/" << v.size;
    for (size_t i = 0; i < proof->size(); ++i) EXPECT_EQ(ToHex((*proof)[i]), v.proof[i]);
    EXPECT_TRUE(VerifyInclusion(v.index, v.size, t.leaf(v.index), *proof, H(kRoots[v.size])));
    EXPECT_FALSE(VerifyInclusion(v.index, v.size, t.leaf(v.index), *proof, H(kRoots[0])));
  }
}

TEST(MerkleTest, ConsistencyProofsMatchTheReferenceVectors) {
  struct Vector {
    uint64_t first, second;
    std::vector<const char*> proof;
  } vectors[] = {
      {1, 1, {}},
      {1, 8,
       {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
      {6, 8,
       {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
      {2, 5,
       {"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
  };
  MerkleTree t = Reference();
  for (const auto& v : vectors) {
    auto proof = t.ConsistencyProof(v.first, v.second);
    ASSERT_TRUE(proof);
    ASSERT_EQ(proof->size(), v.proof.size()) << v.first << "->" << v.second;
    for (size_t i = 0; i < proof->size(); ++i) EXPECT_EQ(ToHex((*proof)[i]), v.proof[i]);
    EXPECT_TRUE(VerifyConsistency(v.first, v.second, *proof, H(kRoots[v.first]),
                                  H(kRoots[v.second])));
  }
}

TEST(MerkleTest, EveryProofOfEverySizeVerifiesAndTamperingFails) {
  std::mt19937 rng(9162);
  MerkleTree t;
  std::vector<Hash> roots = {EmptyRoot()};
  for (int i = 0; i < 70; ++i) {
    t.Append(std::string(1 + rng() % 9, static_cast<char>(rng())));
    roots.push_back(*t.Root(t.size()));
  }
  for (uint64_t n = 1; n <= t.size(); ++n) {
    EXPECT_EQ(*t.Root(n), roots[n]);
    for (uint64_t i = 0; i < n; ++i) {
      auto p = *t.InclusionProof(i, n);
      ASSERT_TRUE(VerifyInclusion(i, n, t.leaf(i), p, roots[n])) << i << "/" << n;
      Hash wrong = t.leaf(i);
      wrong[0] ^= 1;
      ASSERT_FALSE(VerifyInclusion(i, n, wrong, p, roots[n]));
      if (!p.empty()) {
        p[0][5] ^= 1;
        ASSERT_FALSE(VerifyInclusion(i, n, t.leaf(i), p, roots[n]));
      }
    }
    for (uint64_t m = 1; m <= n; ++m) {
      auto c = *t.ConsistencyProof(m, n);
      ASSERT_TRUE(VerifyConsistency(m, n, c, roots[m], roots[n])) << m << "->" << n;
      if (m < n) {
        Hash wrong = roots[m];
        wrong[31] ^= 1;
        ASSERT_FALSE(VerifyConsistency(m, n, c, wrong, roots[n]));
      }
    }
  }
  EXPECT_FALSE(t.InclusionProof(70, 70));
  EXPECT_FALSE(t.ConsistencyProof(0, 5));
  EXPECT_FALSE(t.ConsistencyProof(6, 5));
}

}  // namespace
}  // namespace assent::audit
