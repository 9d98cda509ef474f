#include "audit/audit.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "audit/merkle.h"
#include "common/strings.h"

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
    ASSERT_TRUE(l->PublishTerms(ss.str(), "v3"));
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
  EXPECT_NE(f.error().message.find("inclusion proof"), std::string::npos) << f.error().message;

  SigningKey other = *LoadSigningKey(dir_ + "-other2", true);
  auto w = VerifyReceipt(*json, *ParseVerifierKey(VerifierKeyText(other)));
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().code, ErrorCode::kPermissionDenied);
  fs::remove_all(dir_ + "-other2");
  EXPECT_EQ(VerifyReceipt("{}", vk).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(VerifyReceipt(receipt->ToJson(), vk).error().code, ErrorCode::kInvalidArgument);
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
