#include "ledger/parties.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

#include "ledger/store.h"

namespace assent::internal {
namespace {

TEST(PseudonymTest, IsKeyedByTheSecretAndShapedAlike) {
  PartySecret a = *NewPartySecret(), b = *NewPartySecret();
  const std::string p = MakePseudonym(a, PartyKind::kSubject, "alice");
  EXPECT_EQ(p.size(), 23u);
  EXPECT_TRUE(IsPseudonym(p));
  EXPECT_EQ(p, MakePseudonym(a, PartyKind::kSubject, "alice")) << "deterministic for one secret";
  EXPECT_NE(p, MakePseudonym(b, PartyKind::kSubject, "alice")) << "another secret, unlinkable";
  EXPECT_NE(p, MakePseudonym(a, PartyKind::kAccount, "alice")) << "kinds apart";
  for (const char* bad : {"", "alice", "p", "pAAAAAAAAAAAAAAAAAAAAA", "qAAAAAAAAAAAAAAAAAAAAAA",
                          "pAAAAAAAAAAAAAAAAAAAA+A", "pAAAAAAAAAAAAAAAAAAAAAB"}) {
    EXPECT_FALSE(IsPseudonym(bad)) << bad;  // (the last: trailing bits must be zero)
  }
}

TEST(PartyIndexTest, AgreesWithAReferenceThroughAddsErasuresAndGrowth) {
  std::mt19937_64 rng(42);
  PartyIndex index;
  struct Known {
    std::string pseudonym;
    bool live;
  };
  std::map<std::pair<PartyKind, std::string>, Known> reference;
  std::vector<PartyRow> rows;
  for (int i = 0; i < 30000; ++i) {
    PartyRow r;
    r.kind = rng() % 3 == 0 ? PartyKind::kAccount : PartyKind::kSubject;
    r.id = "party-" + std::to_string(rng() % 1000000);
    if (reference.count({r.kind, r.id})) continue;
    r.secret = *NewPartySecret();
    r.pseudonym = MakePseudonym(r.secret, r.kind, r.id);
    reference[{r.kind, r.id}] = {r.pseudonym, true};
    rows.push_back(r);
    if (rows.size() == 64) {
      index.AddMany(rows);
      rows.clear();
    }
  }
  index.AddMany(rows);
  size_t erased = 0;
  for (auto& [key, known] : reference) {
    if (rng() % 5 != 0) continue;
    ASSERT_TRUE(index.Erase(key.first, key.second));
    EXPECT_FALSE(index.Erase(key.first, key.second));
    known.live = false;
    ++erased;
  }
  EXPECT_EQ(index.size(), reference.size() - erased);
  std::vector<std::string> names;
  for (const auto& [key, known] : reference) names.push_back(known.pseudonym);
  std::vector<std::string_view> views(names.begin(), names.end());
  std::vector<std::string> ids;
  std::vector<PartyKind> kinds;
  std::vector<uint8_t> found;
  index.ResolveMany(views, &ids, &kinds, &found);
  size_t i = 0;
  for (const auto& [key, known] : reference) {
    PartySecret secret{};
    auto p = index.PseudonymOf(key.first, key.second, &secret);
    PartyKind kind;
    std::string id;
    const bool resolved = index.Resolve(known.pseudonym, &kind, &id);
    if (known.live) {
      ASSERT_TRUE(p) << key.second;
      EXPECT_EQ(*p, known.pseudonym);
      EXPECT_EQ(MakePseudonym(secret, key.first, key.second), known.pseudonym);
      ASSERT_TRUE(resolved);
      EXPECT_EQ(id, key.second);
      EXPECT_EQ(kind, key.first);
      EXPECT_TRUE(found[i]);
      EXPECT_EQ(ids[i], key.second);
    } else {
      EXPECT_FALSE(p) << "erased: " << key.second;
      EXPECT_FALSE(resolved);
      EXPECT_FALSE(found[i]);
    }
    ++i;
  }
  // An erased id may come back: a new party with a new pseudonym.
  for (const auto& [key, known] : reference) {
    if (known.live) continue;
    PartySecret s = *NewPartySecret();
    const std::string again = MakePseudonym(s, key.first, key.second);
    index.Add(key.first, key.second, again, s);
    EXPECT_EQ(*index.PseudonymOf(key.first, key.second), again);
    EXPECT_FALSE(index.Resolve(known.pseudonym, nullptr, nullptr));
    break;
  }
}

}  // namespace
}  // namespace assent::internal
