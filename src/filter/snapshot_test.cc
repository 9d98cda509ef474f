#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "filter/filter_test_util.h"
#include "filter/snapshot.h"

namespace assent::filter_test {
namespace {

TEST_F(FilterTest, FilteringFromASnapshotEqualsFilteringFromTheLedger) {
  std::mt19937 rng(11);
  std::vector<ConsentEvent> records;
  for (int i = 0; i < 400; ++i) {
    ConsentEvent c;
    c.party = "u" + std::to_string(rng() % 50);
    c.action = rng() % 2 ? Action::kGrant : Action::kWithdraw;
    c.categories = {rng() % 2 ? "service_generated" : "service_generated.telemetry"};
    c.purposes = {rng() % 2 ? "ai_training.first_party" : "product_development"};
    c.at = kNow - 100000 + i;
    records.push_back(c);
  }
  ASSERT_TRUE(ledger_->RecordConsents(records));
  std::string manifest;
  for (int i = 0; i < 3000; ++i) {
    manifest += R"({"id":"m)" + std::to_string(i) + R"(","category":"service_generated.)" +
                (i % 3 ? "telemetry" : "diagnostics") + R"(","subjects":["u)" +
                std::to_string(rng() % 60) + "\"]}\n";
  }
  const std::string snap = dir_ + "/state.snap";
  auto info = WriteSnapshot(*ledger_, 0, snap);
  ASSERT_TRUE(info) << info.error().message;
  EXPECT_EQ(info->events, 400u);
  SnapshotInfo loaded;
  auto engine = LoadSnapshot(snap, &loaded, [] { return kNow; });
  ASSERT_TRUE(engine) << engine.error().message;
  EXPECT_EQ(loaded.sha256, info->sha256);
  EXPECT_EQ((*engine)->snapshot()->position(), ledger_->position());
  for (const char* purpose : {"ai_training.first_party", "product_development.analytics"}) {
    FilterOptions o;
    o.purpose = purpose;
    auto from_ledger = Filter(manifest, o);
    ASSERT_TRUE(from_ledger);
    std::string ledger_out = Read(dir_ + "/out.jsonl");
    o.in_path = dir_ + "/in.jsonl";
    o.out_path = dir_ + "/out.jsonl";
    auto from_snapshot = RunFilter(*(*engine)->snapshot(), kNow, o);
    ASSERT_TRUE(from_snapshot);
    EXPECT_EQ(Read(dir_ + "/out.jsonl"), ledger_out) << purpose;
    EXPECT_EQ(from_snapshot->excluded_by_reason, from_ledger->excluded_by_reason);
    EXPECT_EQ(from_snapshot->position, from_ledger->position);
  }
  // A changed byte is detected.
  {
    std::string bytes = Read(snap);
    bytes[bytes.size() / 2] ^= 1;
    std::ofstream(snap, std::ios::binary | std::ios::trunc) << bytes;
  }
  SnapshotInfo ignored;
  auto tampered = LoadSnapshot(snap, &ignored);
  ASSERT_FALSE(tampered);
  EXPECT_EQ(tampered.error().code, ErrorCode::kDataLoss);
}

// The hash covers the header too (a stale snapshot claiming a later position is refused), a
// snapshot names its ledger, and only its own ledger records a dataset from it, never beyond
// the head.
TEST_F(FilterTest, ASnapshotIsBoundToItsLedgerAndPosition) {
  ConsentEvent w;
  w.party = "u1";
  w.action = Action::kWithdraw;
  w.categories = {"service_generated"};
  w.purposes = {"ai_training.first_party"};
  ASSERT_TRUE(ledger_->RecordConsent(w));
  const std::string snap = dir_ + "/state.snap";
  auto info = WriteSnapshot(*ledger_, 0, snap);
  ASSERT_TRUE(info) << info.error().message;
  const std::string bytes = Read(snap);
  const std::string position = "\"position\":" + std::to_string(info->position) + ",";
  ASSERT_NE(bytes.find(position), std::string::npos) << bytes.substr(0, 200);
  std::string forged = bytes;
  forged.replace(forged.find(position), position.size(), "\"position\":999999,");
  std::ofstream(snap, std::ios::binary | std::ios::trunc) << forged;
  SnapshotInfo loaded;
  auto tampered = LoadSnapshot(snap, &loaded);
  ASSERT_FALSE(tampered);
  EXPECT_EQ(tampered.error().code, ErrorCode::kDataLoss);
  // A format-1 file (header outside the hash) is refused with what to do.
  std::string v1 = bytes;
  v1.replace(0, 18, "ASSENT-SNAPSHOT 1\n");
  std::ofstream(snap, std::ios::binary | std::ios::trunc) << v1;
  auto old = LoadSnapshot(snap, &loaded);
  ASSERT_FALSE(old);
  EXPECT_NE(old.error().message.find("assent snapshot"), std::string::npos);
  // Its own ledger accepts it (and says how far behind it is); another ledger does not.
  std::ofstream(snap, std::ios::binary | std::ios::trunc) << bytes;
  ASSERT_TRUE(LoadSnapshot(snap, &loaded));
  uint64_t behind = 99;
  EXPECT_TRUE(CheckSnapshotFor(*ledger_, loaded, &behind));
  EXPECT_EQ(behind, 0u);
  ASSERT_TRUE(ledger_->RecordConsent(w));
  EXPECT_TRUE(CheckSnapshotFor(*ledger_, loaded, &behind));
  EXPECT_EQ(behind, 1u);
  LedgerOptions lo;
  lo.in_memory = true;
  lo.clock = [] { return kNow; };
  auto other = std::move(*Ledger::Open(lo));
  ASSERT_TRUE(other->PublishTerms(
      Read(std::string(ASSENT_SOURCE_DIR) + "/examples/terms/example-meetings-2023-08-07.yaml"),
      "v2", {.backfill = true}));
  auto foreign = CheckSnapshotFor(*other, loaded, &behind);
  ASSERT_FALSE(foreign);
  EXPECT_EQ(foreign.error().code, ErrorCode::kFailedPrecondition);
  // An erased party stays erased for a stateless worker deciding from a snapshot.
  ASSERT_TRUE(ledger_->EraseParty(PartyKind::kSubject, "u1"));
  auto after = WriteSnapshot(*ledger_, 0, snap);
  ASSERT_TRUE(after) << after.error().message;
  auto worker = LoadSnapshot(snap, &loaded, [] { return kNow; });
  ASSERT_TRUE(worker) << worker.error().message;
  std::string_view who[] = {"u1"};
  DecisionRequest q;
  q.category = "service_generated.telemetry";
  q.purpose = "ai_training.first_party";
  q.subjects = who;
  auto d0 = (*worker)->snapshot()->Decide(q, kNow);
  ASSERT_TRUE(d0);
  EXPECT_EQ(d0->reason, Reason::kErased);
  // A dataset decided beyond the head is refused whatever its source.
  DatasetRegistration d;
  d.name = "future";
  d.purpose = "ai_training.first_party";
  d.ledger_position = ledger_->position() + 1000;
  auto pos = ledger_->RegisterDataset(d);
  ASSERT_FALSE(pos);
  EXPECT_EQ(pos.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(pos.error().message.find("ledger_position"), std::string::npos);
  // Nor without a position, or for a purpose no terms define.
  d.ledger_position = 0;
  pos = ledger_->RegisterDataset(d);
  ASSERT_FALSE(pos);
  EXPECT_NE(pos.error().message.find("ledger_position"), std::string::npos);
  d.ledger_position = ledger_->position();
  d.purpose = "ai_trainin";
  pos = ledger_->RegisterDataset(d);
  ASSERT_FALSE(pos);
  EXPECT_EQ(pos.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(pos.error().message.find("purpose"), std::string::npos);
}

}  // namespace
}  // namespace assent::filter_test
