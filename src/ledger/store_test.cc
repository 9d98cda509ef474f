// One typed suite for every ledger store: SQLite and memory (PostgreSQL joins in its issue).
#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include <sqlite3.h>

#include <fstream>

#include "ledger/store.h"

namespace assent::internal {
namespace {

namespace fs = std::filesystem;

std::string TempDir() {
  static std::mt19937_64 rng(std::random_device{}());
  fs::path p = fs::temp_directory_path() / ("assent-store-" + std::to_string(rng()));
  fs::create_directories(p);
  return p.string();
}

StoredEntry Entry(uint64_t position, std::string body = "") {
  ConsentEvent e;
  e.position = position;
  e.party = "u" + std::to_string(position);
  e.categories = {"content"};
  e.purposes = {"service"};
  e.at = static_cast<Timestamp>(position) * kMicrosPerSecond;
  e.terms_version = "1";
  StoredEntry s = MakeConsentEntry(position, e.at, e);
  if (!body.empty()) s.body = body;
  return s;
}

struct SqliteFactory {
  std::string dir = TempDir();
  ~SqliteFactory() { fs::remove_all(dir); }
  std::unique_ptr<LedgerStore> Open() { return *OpenSqliteStore(dir, false); }
  static constexpr bool kDurable = true;
};

struct MemoryFactory {
  std::unique_ptr<LedgerStore> kept;
  std::unique_ptr<LedgerStore> Open() { return NewMemoryStore(); }
  static constexpr bool kDurable = false;
};

template <typename F>
class StoreTest : public testing::Test {
 protected:
  F factory;
};

using Factories = testing::Types<SqliteFactory, MemoryFactory>;
TYPED_TEST_SUITE(StoreTest, Factories);

std::vector<StoredEntry> ScanAll(const LedgerStore& s, uint64_t after = 0) {
  std::vector<StoredEntry> out;
  auto st = s.Scan(after, [&](const EntryView& v) -> Status {
    StoredEntry e;
    e.position = v.position;
    e.kind = v.kind;
    e.body = std::string(v.body);
    std::copy(v.hash.begin(), v.hash.end(), e.hash.begin());
    out.push_back(std::move(e));
    return OkStatus();
  });
  EXPECT_TRUE(st) << st.error().message;
  return out;
}

TYPED_TEST(StoreTest, AppendsAndScansInOrder) {
  auto store = this->factory.Open();
  EXPECT_EQ(*store->LastPosition(), 0u);
  std::vector<StoredEntry> batch = {Entry(1), Entry(2), Entry(3)};
  ASSERT_TRUE(store->Append(batch));
  ASSERT_TRUE(store->Append(std::vector<StoredEntry>{Entry(4)}));
  EXPECT_EQ(*store->LastPosition(), 4u);
  auto all = ScanAll(*store);
  ASSERT_EQ(all.size(), 4u);
  for (uint64_t i = 0; i < 4; ++i) {
    EXPECT_EQ(all[i].position, i + 1);
    EXPECT_EQ(all[i].body, Entry(i + 1).body);
    EXPECT_EQ(all[i].hash, Sha256(all[i].body));
  }
  auto tail = ScanAll(*store, 2);
  ASSERT_EQ(tail.size(), 2u);
  EXPECT_EQ(tail[0].position, 3u);
}

TYPED_TEST(StoreTest, RefusesPositionsThatDoNotFollow) {
  auto store = this->factory.Open();
  ASSERT_TRUE(store->Append(std::vector<StoredEntry>{Entry(1)}));
  for (uint64_t bad : {1u, 3u}) {
    auto st = store->Append(std::vector<StoredEntry>{Entry(bad)});
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, ErrorCode::kFailedPrecondition);
  }
  // A batch with a gap inside is refused whole.
  auto st = store->Append(std::vector<StoredEntry>{Entry(2), Entry(4)});
  ASSERT_FALSE(st);
  EXPECT_EQ(*store->LastPosition(), 1u);
  EXPECT_EQ(ScanAll(*store).size(), 1u);
}

TYPED_TEST(StoreTest, ScanStopsAtTheCallersError) {
  auto store = this->factory.Open();
  ASSERT_TRUE(store->Append(std::vector<StoredEntry>{Entry(1), Entry(2), Entry(3)}));
  int seen = 0;
  auto st = store->Scan(0, [&](const EntryView& v) -> Status {
    ++seen;
    if (v.position == 2) return DataLossError("stop");
    return OkStatus();
  });
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::kDataLoss);
  EXPECT_EQ(seen, 2);
}

TYPED_TEST(StoreTest, SurvivesReopeningWhenDurable) {
  if (!TypeParam::kDurable) GTEST_SKIP() << "the memory store is not durable";
  {
    auto store = this->factory.Open();
    ASSERT_TRUE(store->Append(std::vector<StoredEntry>{Entry(1), Entry(2)}));
  }
  auto store = this->factory.Open();
  EXPECT_EQ(*store->LastPosition(), 2u);
  EXPECT_EQ(ScanAll(*store)[1].body, Entry(2).body);
}

TEST(SqliteStoreTest, RefusesAForeignDatabase) {
  std::string dir = TempDir();
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir + "/ledger.db").c_str(), &db), SQLITE_OK);
    sqlite3_exec(db, "CREATE TABLE other (x INTEGER)", nullptr, nullptr, nullptr);
    sqlite3_close(db);
  }
  auto s = OpenSqliteStore(dir, false);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_NE(s.error().message.find("not an Assent ledger"), std::string::npos);
  fs::remove_all(dir);
}

TEST(SqliteStoreTest, RefusesAFileThatIsNotADatabase) {
  std::string dir = TempDir();
  { std::ofstream(dir + "/ledger.db") << "this is not a database, just some text that is long"; }
  auto s = OpenSqliteStore(dir, false);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kDataLoss) << s.error().message;
  fs::remove_all(dir);
}

TEST(SqliteStoreTest, EntriesCannotBeUpdatedOrDeleted) {
  std::string dir = TempDir();
  {
    auto store = *OpenSqliteStore(dir, false);
    ASSERT_TRUE(store->Append(std::vector<StoredEntry>{Entry(1)}));
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir + "/ledger.db").c_str(), &db), SQLITE_OK);
  EXPECT_NE(sqlite3_exec(db, "UPDATE entries SET body = 'x'", nullptr, nullptr, nullptr), SQLITE_OK);
  EXPECT_NE(sqlite3_exec(db, "DELETE FROM entries", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  fs::remove_all(dir);
}

TEST(SqliteStoreTest, AFullDiskFailsTheAppendAndKeepsTheLedger) {
  std::string dir = TempDir();
  auto store = *OpenSqliteStore(dir, false);
  ASSERT_TRUE(store->Append(std::vector<StoredEntry>{Entry(1)}));
  ASSERT_TRUE(LimitSqliteStoreSizeForTest(store.get(), 8));
  std::vector<StoredEntry> big;
  for (uint64_t p = 2; p < 2000; ++p) big.push_back(Entry(p));
  auto st = store->Append(big);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(st.error().message.find("disk is full"), std::string::npos) << st.error().message;
  EXPECT_EQ(*store->LastPosition(), 1u);
  store.reset();
  auto reopened = *OpenSqliteStore(dir, false);
  EXPECT_EQ(ScanAll(*reopened).size(), 1u);
  fs::remove_all(dir);
}

TEST(SqliteStoreTest, ReadOnlyOpenOfAMissingLedgerIsNotFound) {
  auto s = OpenSqliteStore("/nonexistent-assent-dir", true);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kNotFound);
}

}  // namespace
}  // namespace assent::internal
