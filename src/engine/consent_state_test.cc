#include "engine/consent_state.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>

namespace assent::internal {
namespace {

StoredEvent Ev(uint64_t position) {
  return StoredEvent{position, static_cast<Timestamp>(position), 0, 0, Action::kGrant,
                     Method::kApi};
}

TEST(ConsentStateTest, FindsEveryPartyAfterManySplits) {
  ConsentState empty;
  ConsentStateBuilder b(empty);
  for (int i = 0; i < 20000; ++i) {
    EXPECT_TRUE(b.Append(PartyKind::kSubject, "u" + std::to_string(i), Ev(i + 1)));
  }
  EXPECT_FALSE(b.Append(PartyKind::kSubject, "u7", Ev(20001)));
  auto s = b.Finish();
  for (int i = 0; i < 20000; ++i) {
    const PartyRecord* r = s->Find(PartyKind::kSubject, "u" + std::to_string(i));
    ASSERT_NE(r, nullptr) << i;
    EXPECT_EQ(r->id(), "u" + std::to_string(i));
    EXPECT_EQ(r->events().size(), i == 7 ? 2u : 1u);
  }
  EXPECT_EQ(s->Find(PartyKind::kSubject, "u20000"), nullptr);
  EXPECT_EQ(s->Find(PartyKind::kAccount, "u1"), nullptr);
  EXPECT_GT(s->MemoryUsage(), 20000u * sizeof(StoredEvent));
}

// Removal (erasure) against a reference map, with enough parties per shard that probe runs
// wrap and backward shifts happen; the state before each removal must not change.
TEST(ConsentStateTest, RemovalMatchesAReferenceAndLeavesOlderStatesAlone) {
  std::mt19937_64 rng(7);
  std::map<std::string, size_t> reference;  // id -> events
  auto state = std::make_unique<ConsentState>();
  uint64_t position = 0;
  for (int round = 0; round < 40; ++round) {
    ConsentStateBuilder b(*state);
    for (int i = 0; i < 3000; ++i) {
      std::string id = "u" + std::to_string(rng() % 20000);
      b.Append(PartyKind::kSubject, id, Ev(++position));
      ++reference[id];
    }
    std::vector<std::string> removed;
    for (int i = 0; i < 1500; ++i) {
      std::string id = "u" + std::to_string(rng() % 20000);
      auto it = reference.find(id);
      int64_t got = b.Remove(PartyKind::kSubject, id);
      if (it == reference.end()) {
        EXPECT_EQ(got, -1) << id;
      } else {
        EXPECT_EQ(got, static_cast<int64_t>(it->second)) << id;
        reference.erase(it);
        removed.push_back(id);
      }
    }
    auto before = std::move(state);
    state = b.Finish();
    for (const auto& [id, n] : reference) {
      const PartyRecord* r = state->Find(PartyKind::kSubject, id);
      ASSERT_NE(r, nullptr) << id;
      EXPECT_EQ(r->events().size(), n);
    }
    for (const auto& id : removed) {
      EXPECT_EQ(state->Find(PartyKind::kSubject, id), nullptr) << id;
    }
    if (round == 20) {
      // An older state still has what it had: removal copied the shared path.
      size_t found = 0;
      for (const auto& id : removed) found += before->Find(PartyKind::kSubject, id) != nullptr;
      EXPECT_GT(found, 0u);
    }
  }
  EXPECT_EQ(ConsentStateBuilder(*state).Remove(PartyKind::kAccount, "u1"), -1);
}

TEST(ConsentStateTest, OlderStatesAreNeverChanged) {
  ConsentState empty;
  ConsentStateBuilder b1(empty);
  for (int i = 0; i < 1000; ++i) b1.Append(PartyKind::kSubject, "u" + std::to_string(i), Ev(i + 1));
  auto s1 = b1.Finish();
  ConsentStateBuilder b2(*s1);
  b2.Append(PartyKind::kSubject, "u5", Ev(2000));
  b2.Append(PartyKind::kAccount, "a1", Ev(2001));
  for (int i = 1000; i < 3000; ++i) b2.Append(PartyKind::kSubject, "u" + std::to_string(i), Ev(i + 5000));
  auto s2 = b2.Finish();
  EXPECT_EQ(s1->Find(PartyKind::kSubject, "u5")->events().size(), 1u);
  EXPECT_EQ(s2->Find(PartyKind::kSubject, "u5")->events().size(), 2u);
  EXPECT_EQ(s1->Find(PartyKind::kAccount, "a1"), nullptr);
  EXPECT_NE(s2->Find(PartyKind::kAccount, "a1"), nullptr);
  EXPECT_EQ(s1->Find(PartyKind::kSubject, "u2500"), nullptr);
  // Unchanged parties are shared, not copied.
  EXPECT_EQ(s1->Find(PartyKind::kSubject, "u6"), s2->Find(PartyKind::kSubject, "u6"));
  s1.reset();  // dropping the old state leaves the new one intact
  EXPECT_EQ(s2->Find(PartyKind::kSubject, "u5")->events()[1].position, 2000u);
}

TEST(ConsentStateTest, KeepsEventsInOrder) {
  ConsentState empty;
  ConsentStateBuilder b(empty);
  for (int i = 1; i <= 50; ++i) b.Append(PartyKind::kSubject, "same", Ev(i));
  auto s = b.Finish();
  auto ev = s->Find(PartyKind::kSubject, "same")->events();
  ASSERT_EQ(ev.size(), 50u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(ev[i].position, static_cast<uint64_t>(i + 1));
}

}  // namespace
}  // namespace assent::internal
