#include "audit/audit.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "audit/merkle.h"
#include "common/strings.h"
#include "ledger/lineage.h"

namespace assent::audit {
namespace {

namespace fs = std::filesystem;

class AuditTest : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() / ("assent-audit-" + std::to_string(::getpid()) + "-" +
                                         testing::UnitTest::GetInstance()->current_test_info()->name()))
               .string();
    fs::remove_all(dir_);
    key_ = *LoadSigningKey(dir_ + "-key", true);  // a key outside the data directory
    LedgerOptions o;
    o.data_dir = dir_;
    auto l = *Ledger::Open(o);
    std::ifstream in(std::string(ASSENT_SOURCE_DIR) +
                     "/examples/terms/example-meetings-2023-08-11.yaml");
    std::stringstream ss;
    ss << in.rdbuf();
    ASSERT_TRUE(l->PublishTerms(ss.str(), "v3", {.backfill = true}));
    for (int i = 0; i < 6; ++i) {
      ConsentEvent e;
      e.party = "u" + std::to_string(i);
      e.action = Action::kWithdraw;
      e.rule = "service-generated-for-marketing";
      ASSERT_TRUE(l->RecordConsent(e));
      if (i == 2) {
        ASSERT_TRUE(MakeCheckpoint(*l, key_));  // covers 1..4
      }
    }
    ASSERT_TRUE(MakeCheckpoint(*l, key_));  // covers 1..8, itself at 9
  }
  void TearDown() override {
    fs::remove_all(dir_);
    fs::remove_all(dir_ + "-key");
  }

  AuditReport Verify() {
    auto vk = *ParseVerifierKey(VerifierKeyText(key_));
    auto r = VerifyLedger(dir_, vk);
    EXPECT_TRUE(r) << r.error().message;
    return *r;
  }

  void Sql(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir_ + "/ledger.db").c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    std::string all =
        "DROP TRIGGER IF EXISTS entries_no_update; DROP TRIGGER IF EXISTS entries_no_delete; " + sql;
    EXPECT_EQ(sqlite3_exec(db, all.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
    sqlite3_free(err);
    sqlite3_close(db);
  }

  static std::string Joined(const AuditReport& r) {
    std::string s;
    for (const auto& p : r.problems) s += p + "\n";
    return s;
  }

  std::unique_ptr<Ledger> OpenLedger() {
    LedgerOptions o;
    o.data_dir = dir_;
    return *Ledger::Open(o);
  }
  static ConsentEvent Withdrawal(std::string party) {
    ConsentEvent e;
    e.party = std::move(party);
    e.action = Action::kWithdraw;
    e.rule = "service-generated-for-marketing";
    return e;
  }

  std::string dir_;
  SigningKey key_;
};

TEST_F(AuditTest, AnUntouchedLogVerifies) {
  AuditReport r = Verify();
  EXPECT_TRUE(r.ok()) << Joined(r);
  EXPECT_EQ(r.checkpoints, 2u);
  EXPECT_EQ(r.entries, 9u);
  EXPECT_EQ(r.uncovered, 1u) << "the last checkpoint entry itself is not yet signed";
}

TEST_F(AuditTest, AChangedByteIsFoundAtItsPosition) {
  Sql("UPDATE entries SET body = replace(body, 'withdraw', 'grant') WHERE position = 3");
  AuditReport r = Verify();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(Joined(r).find("entry at position 3 does not match its stored hash"),
            std::string::npos) << Joined(r);
}

TEST_F(AuditTest, AChangeWithARecomputedHashIsCaughtByTheCheckpoint) {
  // Rewrite entry 3 and its hash column consistently: only the signed tree can tell.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ + "/ledger.db").c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "SELECT body FROM entries WHERE position = 3", -1, &st, nullptr);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  std::string body(static_cast<const char*>(sqlite3_column_blob(st, 0)), sqlite3_column_bytes(st, 0));
  sqlite3_finalize(st);
  sqlite3_close(db);
  body.replace(body.find("withdraw"), 8, "grant");
  Sha256Digest h = Sha256(body);
  std::string hex = ToHex(h);
  std::string escaped;
  for (char c : body) escaped += c == '\'' ? std::string("''") : std::string(1, c);
  Sql("UPDATE entries SET body = CAST('" + escaped + "' AS BLOB), hash = X'" + hex +
      "' WHERE position = 3");
  AuditReport r = Verify();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(Joined(r).find("checkpoint at position 5 signed a different tree of 4 entries: an "
                           "entry between positions 1 and 4"),
            std::string::npos)
      << Joined(r);
}

TEST_F(AuditTest, ARemovedRowIsReported) {
  Sql("DELETE FROM entries WHERE position = 7");
  AuditReport r = Verify();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(Joined(r).find("entries 7 to 7 are missing"), std::string::npos) << Joined(r);
}

TEST_F(AuditTest, SwappedRowsAreReported) {
  Sql("UPDATE entries SET position = -1 WHERE position = 6;"
      "UPDATE entries SET position = 6 WHERE position = 7;"
      "UPDATE entries SET position = 7 WHERE position = -1;");
  AuditReport r = Verify();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(Joined(r).find("entry at position 6 says it belongs at another position"),
            std::string::npos) << Joined(r);
}

TEST_F(AuditTest, AForeignKeyOrAForgedSignatureFails) {
  SigningKey other = *LoadSigningKey(dir_ + "-other", true);
  auto r = VerifyLedger(dir_, *ParseVerifierKey(VerifierKeyText(other)));
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->ok());
  EXPECT_NE(Joined(*r).find("no valid signature"), std::string::npos) << Joined(*r);
  fs::remove_all(dir_ + "-other");
  EXPECT_FALSE(ParseVerifierKey("name+00000000+AAAA"));
  EXPECT_FALSE(ParseVerifierKey("not a key"));
}

}  // namespace
}  // namespace assent::audit

namespace assent::audit {
namespace {

TEST_F(AuditTest, AReceiptVerifiesOfflineAndATamperedOneDoesNot) {
  auto l = OpenLedger();
  ConsentEvent e = Withdrawal("dora");
  auto receipt = l->RecordConsent(e);
  ASSERT_TRUE(receipt);
  // More entries after it: the proof is against a checkpoint of the whole log.
  e.party = "eve";
  ASSERT_TRUE(l->RecordConsent(e));
  auto json = ProvableReceiptJson(*l, key_, *receipt);
  ASSERT_TRUE(json) << json.error().message;
  auto vk = *ParseVerifierKey(VerifierKeyText(key_));
  EXPECT_TRUE(VerifyReceipt(*json, vk));

  // Rewrite the event consistently in the receipt: the leaf no longer leads to the root.
  std::string forged = *json;
  for (size_t at; (at = forged.find("withdraw")) != std::string::npos;) {
    forged.replace(at, 8, "grant");
  }
  auto f = VerifyReceipt(forged, vk);
  ASSERT_FALSE(f);
  EXPECT_EQ(f.error().code, ErrorCode::kPermissionDenied);
  // Even with the entry's hash and leaf hash recomputed, the leaf leads nowhere.
  auto doc = nlohmann::json::parse(forged);
  const std::string entry = doc["entry"];
  doc["hash"] = ToHex(Sha256(entry));
  doc["leaf_hash"] = ToHex(LeafHash(entry));
  auto g = VerifyReceipt(doc.dump(), vk);
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error().code, ErrorCode::kPermissionDenied);
  EXPECT_NE(g.error().message.find("inclusion proof"), std::string::npos) << g.error().message;

  SigningKey other = *LoadSigningKey(dir_ + "-other2", true);
  auto w = VerifyReceipt(*json, *ParseVerifierKey(VerifierKeyText(other)));
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().code, ErrorCode::kPermissionDenied);
  fs::remove_all(dir_ + "-other2");
  EXPECT_EQ(VerifyReceipt("{}", vk).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(VerifyReceipt(receipt->ToJson(), vk).error().code, ErrorCode::kInvalidArgument);
}

// A receipt states nothing that is not checked: each field edited alone (the entry bytes left
// as signed) is refused, and so is a field no receipt has or a field given twice.
TEST_F(AuditTest, EveryFieldOfAReceiptIsCheckedAgainstTheSignedEntry) {
  auto l = OpenLedger();
  ConsentEvent e = Withdrawal("dora");
  e.actor = "key:billing";
  auto receipt = l->RecordConsent(e);
  ASSERT_TRUE(receipt) << receipt.error().message;
  auto json = ProvableReceiptJson(*l, key_, *receipt);
  ASSERT_TRUE(json) << json.error().message;
  auto vk = *ParseVerifierKey(VerifierKeyText(key_));
  ASSERT_TRUE(VerifyReceipt(*json, vk)) << *json;
  const auto original = nlohmann::json::parse(*json);
  ASSERT_TRUE(original.contains("actor")) << *json;
  ASSERT_TRUE(original.contains("rule")) << *json;
  const std::vector<std::pair<std::string, nlohmann::json>> edits = {
      {"position", 2},
      {"action", "grant"},
      {"categories", {"content"}},
      {"categories", nlohmann::json::array()},
      {"purposes", {"marketing", "service"}},
      {"rule", "content-ai-training"},
      {"at", "2020-01-01T00:00:00Z"},
      {"terms", "other-terms@2023-08-11"},
      {"terms", "example-meetings@2023-08-07"},
      {"method", "settings"},
      {"actor", "session minted by key:portal"},
      {"hash", std::string(64, '0')},
      {"leaf_hash", std::string(64, '0')},
      {"subject", "mallory"},
  };
  for (const auto& [field, value] : edits) {
    auto doc = original;
    doc[field] = value;
    auto r = VerifyReceipt(doc.dump(), vk);
    ASSERT_FALSE(r) << field << " = " << value.dump();
    EXPECT_EQ(r.error().code, ErrorCode::kPermissionDenied) << field << ": " << r.error().message;
  }
  for (const char* field : {"rule", "actor"}) {  // a stated field removed
    auto doc = original;
    doc.erase(field);
    auto r = VerifyReceipt(doc.dump(), vk);
    ASSERT_FALSE(r) << field;
    EXPECT_EQ(r.error().code, ErrorCode::kPermissionDenied) << field;
  }
  auto extra = original;
  extra["valid_until"] = "9999-12-31T00:00:00Z";
  EXPECT_EQ(VerifyReceipt(extra.dump(), vk).error().code, ErrorCode::kInvalidArgument);
  std::string twice = *json;
  twice.insert(1, "\"action\":\"grant\",");
  EXPECT_EQ(VerifyReceipt(twice, vk).error().code, ErrorCode::kInvalidArgument);
}

// Every text and blob value of every table, for looking for an id anywhere in the database.
std::string EveryValue(const std::string& db_path) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  std::vector<std::string> tables;
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "SELECT name FROM sqlite_master WHERE type = 'table'", -1, &st, nullptr);
  while (sqlite3_step(st) == SQLITE_ROW) {
    tables.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)));
  }
  sqlite3_finalize(st);
  std::string all;
  for (const auto& t : tables) {
    sqlite3_prepare_v2(db, ("SELECT * FROM \"" + t + "\"").c_str(), -1, &st, nullptr);
    while (sqlite3_step(st) == SQLITE_ROW) {
      for (int c = 0; c < sqlite3_column_count(st); ++c) {
        auto p = static_cast<const char*>(sqlite3_column_blob(st, c));
        if (p) all.append(p, sqlite3_column_bytes(st, c));
        all += '\n';
      }
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  EXPECT_GE(tables.size(), 3u) << "meta, entries, parties";
  return all;
}

std::string FileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST_F(AuditTest, AfterSubjectEraseNoTableHoldsThePlainIdAndAuditVerifyPasses) {
  const std::string id = "erase-me@example.com";
  std::string receipt_json, pseudonym;
  auto vk = *ParseVerifierKey(VerifierKeyText(key_));
  {
    auto l = OpenLedger();
    ConsentEvent e = Withdrawal(id);
    e.rule = "service-generated-for-ai-training";
    auto receipt = l->RecordConsent(e);
    ASSERT_TRUE(receipt);
    pseudonym = receipt->pseudonym;
    ASSERT_EQ(receipt->party, id);
    ASSERT_TRUE(l->RecordConsent(Withdrawal(id)));
    DatasetRegistration d;
    d.name = "before-erasure";
    d.purpose = "ai_training.first_party";
    d.ledger_position = l->position();
    d.subjects = {id, "u1"};
    d.shards = {{"f.00-of-1", 2, {id, "u1"}}};
    ASSERT_TRUE(l->RegisterDataset(d));
    ASSERT_TRUE(MakeCheckpoint(*l, key_));
    auto json = ProvableReceiptJson(*l, key_, *receipt);
    ASSERT_TRUE(json);
    receipt_json = *json;
    // The entries name the party only by its pseudonym, already before any erasure.
    EXPECT_EQ(EveryValue(dir_ + "/ledger.db").find(id + "\""), std::string::npos);

    auto snap = l->engine().snapshot();
    std::string_view who[] = {id};
    DecisionRequest q;
    q.category = "service_generated.telemetry";
    q.purpose = "ai_training.first_party";
    q.subjects = who;
    ASSERT_FALSE(snap->Decide(q, l->engine().Now())->allow) << "objected before the erasure";

    auto position = l->EraseParty(PartyKind::kSubject, id);
    ASSERT_TRUE(position) << position.error().message;
    EXPECT_FALSE(l->PseudonymOf(PartyKind::kSubject, id));
    EXPECT_EQ(l->EraseParty(PartyKind::kSubject, id).error().code, ErrorCode::kNotFound);
    // Decisions as for a subject with no events where nobody's choice matters (necessary,
    // prohibited, unlisted); wherever a choice would, the erased party denies with `erased`
    // (it never passes as someone who never objected).
    snap = l->engine().snapshot();
    EXPECT_TRUE(snap->EventsOf(PartyKind::kSubject, id).empty());
    std::string_view nobody[] = {"never-seen"};
    for (const char* cat : {"service_generated.telemetry", "service_generated.product_usage",
                            "content.audio", "content.chat"}) {
      for (const char* pur : {"ai_training.first_party", "marketing",
                              "product_development.quality_review", "service.delivery"}) {
        DecisionRequest a, b;
        a.category = b.category = cat;
        a.purpose = b.purpose = pur;
        a.subjects = who;
        b.subjects = nobody;
        const Timestamp now = l->engine().Now();
        auto da = snap->Decide(a, now), db = snap->Decide(b, now);
        ASSERT_TRUE(da && db);
        const bool asks = (db->basis == Basis::kConsent || db->basis == Basis::kObjectable) &&
                          db->reason != Reason::kNoSubject;  // no-subject is decided first
        if (asks) {
          EXPECT_FALSE(da->allow) << cat << " x " << pur;
          EXPECT_EQ(da->reason, Reason::kErased) << cat << " x " << pur;
        } else {
          EXPECT_EQ(da->allow, db->allow) << cat << " x " << pur;
          EXPECT_EQ(da->reason, db->reason) << cat << " x " << pur;
        }
      }
    }
  }
  // No table holds the plain id, and neither do the database's files (deleted rows are
  // zeroed and the WAL checkpointed), and the audit log still verifies.
  EXPECT_EQ(EveryValue(dir_ + "/ledger.db").find(id), std::string::npos);
  for (const char* f : {"/ledger.db", "/ledger.db-wal"}) {
    EXPECT_EQ(FileBytes(dir_ + f).find(id), std::string::npos) << f;
  }
  AuditReport r = Verify();
  EXPECT_TRUE(r.ok()) << Joined(r);
  // The receipt given before the erasure still proves its event was recorded.
  EXPECT_TRUE(VerifyReceipt(receipt_json, vk));

  // After a restart the erased events stay unlinked; the same id later starts afresh.
  auto l = OpenLedger();
  EXPECT_EQ(l->erased_events_skipped(), 2u);
  {  // the suppression list survives the restart (its key is outside the tree, kept)
    std::string_view who[] = {id};
    DecisionRequest q;
    q.category = "service_generated.product_usage";
    q.purpose = "marketing";
    q.subjects = who;
    auto d = l->engine().snapshot()->Decide(q, l->engine().Now());
    ASSERT_TRUE(d);
    EXPECT_EQ(d->reason, Reason::kErased);
  }
  EXPECT_FALSE(l->PseudonymOf(PartyKind::kSubject, id));
  EXPECT_TRUE(l->engine().snapshot()->EventsOf(PartyKind::kSubject, id).empty());
  auto again = l->RecordConsent(Withdrawal(id));
  ASSERT_TRUE(again);
  EXPECT_NE(again->pseudonym, pseudonym) << "a new secret, a new pseudonym";
  EXPECT_EQ(l->engine().snapshot()->EventsOf(PartyKind::kSubject, id).size(), 1u);
  // The dataset recorded before the erasure no longer contains anyone by that id.
  l->WithLineage([&](const Lineage& lin) {
    ASSERT_EQ(lin.datasets.size(), 1u);
    EXPECT_EQ(lin.datasets[0].subjects.cardinality(), 2u);
    EXPECT_FALSE(lin.subjects.Find(again->pseudonym));
  });
}

TEST_F(AuditTest, APartyRowThatNoLongerMatchesItsPseudonymIsReported) {
  EXPECT_TRUE(Verify().ok());
  EXPECT_EQ(Verify().parties, 6u);
  // Pointing u1's pseudonym (and so its entries) at someone else.
  Sql("UPDATE parties SET id = 'mallory' WHERE id = 'u1'");
  AuditReport r = Verify();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(Joined(r).find("parties table"), std::string::npos) << Joined(r);
}

TEST_F(AuditTest, AReceiptForAnotherPartyOrWithAnotherKeyDoesNotVerify) {
  auto l = OpenLedger();
  auto receipt = l->RecordConsent(Withdrawal("frank"));
  ASSERT_TRUE(receipt);
  auto json = ProvableReceiptJson(*l, key_, *receipt);
  ASSERT_TRUE(json);
  auto vk = *ParseVerifierKey(VerifierKeyText(key_));
  ASSERT_TRUE(VerifyReceipt(*json, vk));
  // Claiming the event for someone else: their id does not give the entry's pseudonym.
  std::string other = *json;
  other.replace(other.find("\"frank\""), 7, "\"grace\"");
  auto a = VerifyReceipt(other, vk);
  ASSERT_FALSE(a);
  EXPECT_NE(a.error().message.find("another party"), std::string::npos) << a.error().message;
  // Or with another pseudonym key.
  std::string key = *json;
  const size_t at = key.find("\"pseudonym_key\":\"") + 17;
  key[at] = key[at] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(VerifyReceipt(key, vk));
}

TEST_F(AuditTest, AReceiptStillVerifiesAfterAMillionFurtherAppends) {
  auto l = OpenLedger();
  ConsentEvent e = Withdrawal("dora");
  auto receipt = l->RecordConsent(e);
  ASSERT_TRUE(receipt);
  auto json = ProvableReceiptJson(*l, key_, *receipt);
  ASSERT_TRUE(json) << json.error().message;
  auto vk = *ParseVerifierKey(VerifierKeyText(key_));

  // The log as the auditor's tree holds it, then a million more entries.
  MerkleTree tree;
  ASSERT_TRUE(l->ScanEntries(
      0, [&](uint64_t, std::string_view, std::string_view body, std::string_view) {
        tree.Append(body);
        return OkStatus();
      }));
  const uint64_t first = tree.size();
  for (int i = 0; i < 1'000'000; ++i) {
    tree.Append("{\"position\":" + std::to_string(first + 1 + i) + "}");
  }
  auto Later = [&](const MerkleTree& t) { return SignCheckpoint(key_, t.size(), *t.Root(t.size())); };
  auto Consistency = [&](const MerkleTree& t) {
    std::string proof = "{\"from\":" + std::to_string(first) + ",\"to\":" +
                        std::to_string(t.size()) + ",\"proof\":[";
    auto hashes = *t.ConsistencyProof(first, t.size());
    for (size_t i = 0; i < hashes.size(); ++i) {
      proof += (i ? ",\"" : "\"") +
               Base64Encode(std::string_view(reinterpret_cast<const char*>(hashes[i].data()), 32)) +
               "\"";
    }
    return proof + "]}";
  };
  auto ok = VerifyReceiptInLaterCheckpoint(*json, Later(tree), Consistency(tree), vk);
  EXPECT_TRUE(ok) << ok.error().message;

  // A later log that rewrote the receipt's event: no consistency proof can join them.
  MerkleTree rewritten;
  rewritten.Append("{\"position\":1,\"forged\":true}");
  for (uint64_t i = 1; i < tree.size(); ++i) rewritten.AppendLeafHash(tree.leaf(i));
  auto bad = VerifyReceiptInLaterCheckpoint(*json, Later(rewritten), Consistency(tree), vk);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kPermissionDenied);
  EXPECT_NE(bad.error().message.find("rewritten"), std::string::npos) << bad.error().message;
  // A proof for other sizes, and a malformed one.
  EXPECT_FALSE(VerifyReceiptInLaterCheckpoint(*json, Later(tree), "{\"from\":1,\"to\":2,\"proof\":[]}", vk));
  EXPECT_EQ(VerifyReceiptInLaterCheckpoint(*json, Later(tree), "[]", vk).error().code,
            ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace assent::audit
