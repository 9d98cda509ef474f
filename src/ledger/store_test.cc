// One typed suite for every ledger store: SQLite, memory and PostgreSQL (a real server: the
// `pg` CTest fixture starts a throwaway cluster; each test gets a fresh database).
#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include <sqlite3.h>

#include <fstream>

#include <libpq-fe.h>

#include <thread>

#include "ledger/parties.h"
#include "ledger/store.h"
#include "../test/pg/pg_test.h"

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
  static constexpr bool kChecksUniqueParties = false;  // one writer: the ledger's index does
};

struct MemoryFactory {
  std::unique_ptr<LedgerStore> kept;
  std::unique_ptr<LedgerStore> Open() { return NewMemoryStore(); }
  static constexpr bool kDurable = false;
  static constexpr bool kChecksUniqueParties = true;
};

struct PostgresFactory {
  std::string url;
  PostgresFactory() {
    std::string error;
    url = testing_pg::FreshDatabase(&error);
    if (url.empty()) ADD_FAILURE() << error;
  }
  std::unique_ptr<LedgerStore> Open() {
    auto s = OpenPostgresStore(url, false);
    if (!s) {
      ADD_FAILURE() << s.error().message;
      return NewMemoryStore();  // lets the test fail on its assertions instead of crashing
    }
    return std::move(*s);
  }
  static constexpr bool kDurable = true;
  static constexpr bool kChecksUniqueParties = true;  // several nodes write it
};

template <typename F>
class StoreTest : public testing::Test {
 protected:
  F factory;
};

using Factories = testing::Types<SqliteFactory, MemoryFactory, PostgresFactory>;
TYPED_TEST_SUITE(StoreTest, Factories);

std::vector<StoredEntry> ScanAll(const LedgerStore& s, uint64_t after = 0) {
  std::vector<StoredEntry> out;
  auto st = s.Scan(after, [&](const EntryView& v) -> Result<ScanControl> {
    StoredEntry e;
    e.position = v.position;
    e.kind = v.kind;
    e.body = std::string(v.body);
    std::copy(v.hash.begin(), v.hash.end(), e.hash.begin());
    out.push_back(std::move(e));
    return ScanControl::kContinue;
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
  auto st = store->Scan(0, [&](const EntryView& v) -> Result<ScanControl> {
    ++seen;
    if (v.position == 2) return DataLossError("stop");
    return ScanControl::kContinue;
  });
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::kDataLoss);
  EXPECT_EQ(seen, 2);
  // kStop ends the scan without an error, there and in a range.
  seen = 0;
  st = store->Scan(0, [&](const EntryView& v) -> Result<ScanControl> {
    ++seen;
    return v.position == 2 ? ScanControl::kStop : ScanControl::kContinue;
  });
  EXPECT_TRUE(st);
  EXPECT_EQ(seen, 2);
  seen = 0;
  st = store->ScanRange(0, 3, 10, [&](const EntryView&) -> Result<ScanControl> {
    ++seen;
    return ScanControl::kStop;
  });
  EXPECT_TRUE(st);
  EXPECT_EQ(seen, 1);
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

PartyChange NewParty(PartyKind kind, const std::string& id) {
  PartyChange c;
  c.row.kind = kind;
  c.row.id = id;
  c.row.secret = *NewPartySecret();
  c.row.pseudonym = MakePseudonym(c.row.secret, kind, id);
  return c;
}

TYPED_TEST(StoreTest, PartiesAreWrittenWithTheirEntryAllOrNothingAndErased) {
  auto store = this->factory.Open();
  PartyChange alice = NewParty(PartyKind::kSubject, "alice"), acme = NewParty(PartyKind::kAccount, "acme");
  std::vector<PartyChange> both = {alice, acme};
  ASSERT_TRUE(store->Append(std::vector<StoredEntry>{Entry(1)}, both));
  auto a = store->FindParty(PartyKind::kSubject, "alice");
  ASSERT_TRUE(a && *a);
  EXPECT_EQ((*a)->pseudonym, alice.row.pseudonym);
  EXPECT_EQ((*a)->secret, alice.row.secret);
  auto by_pseudonym = store->FindPseudonym(acme.row.pseudonym);
  ASSERT_TRUE(by_pseudonym && *by_pseudonym);
  EXPECT_EQ((*by_pseudonym)->id, "acme");
  EXPECT_EQ((*by_pseudonym)->kind, PartyKind::kAccount);
  EXPECT_FALSE(*store->FindParty(PartyKind::kAccount, "alice")) << "kinds are apart";
  if constexpr (TypeParam::kChecksUniqueParties) {
    // A taken id fails the whole append: its entry is not written either.
    std::vector<PartyChange> again = {NewParty(PartyKind::kSubject, "bob"),
                                      NewParty(PartyKind::kSubject, "alice")};
    auto st = store->Append(std::vector<StoredEntry>{Entry(2)}, again);
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, ErrorCode::kAlreadyExists) << st.error().message;
    EXPECT_EQ(*store->LastPosition(), 1u);
    EXPECT_FALSE(*store->FindParty(PartyKind::kSubject, "bob"));
  }
  // Erasure: the row goes, with the entry that records it.
  PartyChange erase;
  erase.erase = true;
  erase.row.kind = PartyKind::kSubject;
  erase.row.id = "alice";
  ASSERT_TRUE(store->Append(std::vector<StoredEntry>{Entry(2)}, std::vector<PartyChange>{erase}));
  EXPECT_FALSE(*store->FindParty(PartyKind::kSubject, "alice"));
  EXPECT_FALSE(*store->FindPseudonym(alice.row.pseudonym));
  int rows = 0;
  ASSERT_TRUE(store->ScanParties([&](const PartyRow& r) -> Status {
    ++rows;
    EXPECT_EQ(r.id, "acme");
    return OkStatus();
  }));
  EXPECT_EQ(rows, 1);
}

TYPED_TEST(StoreTest, AnAbortedAppendWritesNothingAndReleasesTheLock) {
  auto store = this->factory.Open();
  auto head = store->BeginAppend();
  ASSERT_TRUE(head);
  EXPECT_EQ(*head, 0u);
  store->AbortAppend();
  EXPECT_EQ(*store->LastPosition(), 0u);
  head = store->BeginAppend();  // would block forever if the abort kept the lock
  ASSERT_TRUE(head);
  ASSERT_TRUE(store->CommitAppend(std::vector<StoredEntry>{Entry(1)}, {}));
  EXPECT_EQ(*store->LastPosition(), 1u);
}

TEST(PostgresStoreTest, TwoWritersOnOneDatabaseStayDense) {
  std::string error;
  const std::string url = testing_pg::FreshDatabase(&error);
  ASSERT_FALSE(url.empty()) << error;
  // Opened together: the migration lock lets one create the schema, the other find it.
  std::unique_ptr<LedgerStore> a, b;
  std::thread ta([&] { a = std::move(*OpenPostgresStore(url, false)); });
  std::thread tb([&] { b = std::move(*OpenPostgresStore(url, false)); });
  ta.join();
  tb.join();
  ASSERT_TRUE(a && b);
  EXPECT_TRUE(a->Shared());
  auto write = [](LedgerStore* s, int n) {
    for (int i = 0; i < n; ++i) {
      auto head = s->BeginAppend();
      ASSERT_TRUE(head) << head.error().message;
      ASSERT_TRUE(s->CommitAppend(std::vector<StoredEntry>{Entry(*head + 1), Entry(*head + 2)}, {}));
    }
  };
  std::thread wa(write, a.get(), 40), wb(write, b.get(), 40);
  wa.join();
  wb.join();
  auto all = ScanAll(*b);
  ASSERT_EQ(all.size(), 160u);
  for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i].position, i + 1);
  // A stale proposal (another writer appended) is refused, not gapped.
  auto st = a->Append(std::vector<StoredEntry>{Entry(100)});
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::kFailedPrecondition);
  // Entries are append-only in the database too.
  PGconn* c = PQconnectdb(url.c_str());
  for (const char* sql : {"UPDATE entries SET body = 'x' WHERE position = 1",
                          "DELETE FROM entries WHERE position = 1", "TRUNCATE entries"}) {
    PGresult* r = PQexec(c, sql);
    EXPECT_EQ(PQresultStatus(r), PGRES_FATAL_ERROR) << sql;
    PQclear(r);
  }
  PQfinish(c);
  EXPECT_EQ(*a->LastPosition(), 160u);
}

TEST(PostgresStoreTest, AConnectionLostDuringCommitIsResolvedByItsIdempotencyKey) {
  std::string error;
  const std::string url = testing_pg::FreshDatabase(&error);
  ASSERT_FALSE(url.empty()) << error;
  auto store = OpenPostgresStore(url, false);
  ASSERT_TRUE(store) << store.error().message;
  ASSERT_TRUE((*store)->Append(std::vector<StoredEntry>{Entry(1)}));
  // Lost after COMMIT was sent. The server usually committed (it had the whole pipeline); the
  // store reconnects, finds the append's key and says so. If the cut reached the server first
  // (a reset can discard what it had not read), nothing committed and the store says that.
  // Either way its answer must match the database — never a receipt for a missing event, never
  // a stored event reported as failed.
  int committed = 0;
  for (int round = 0; round < 5; ++round) {
    const uint64_t before = *(*store)->LastPosition();
    SetPostgresFaultForTest(1);
    auto st = (*store)->Append(std::vector<StoredEntry>{Entry(before + 1), Entry(before + 2)});
    const uint64_t after = *(*store)->LastPosition();
    if (st) {
      ++committed;
      EXPECT_EQ(after, before + 2);
    } else {
      EXPECT_EQ(st.error().code, ErrorCode::kUnavailable) << st.error().message;
      EXPECT_EQ(after, before) << st.error().message;
    }
  }
  EXPECT_GT(committed, 0) << "the interrupted commit that committed was never recognised";
  // Lost before the rows were sent: nothing committed, and the caller is told so.
  const uint64_t head = *(*store)->LastPosition();
  SetPostgresFaultForTest(2);
  auto st = (*store)->Append(std::vector<StoredEntry>{Entry(head + 1)});
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::kUnavailable) << st.error().message;
  EXPECT_EQ(*(*store)->LastPosition(), head);
  // The store reconnects by itself for the next append.
  auto again = (*store)->Append(std::vector<StoredEntry>{Entry(head + 1)});
  EXPECT_TRUE(again) << again.error().message;
  auto all = ScanAll(**store);
  ASSERT_EQ(all.size(), head + 1);
  for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i].position, i + 1);
}

TEST(PostgresStoreTest, MigratesAnOlderSchemaAndRefusesForeignOrNewerOnes) {
  std::string error;
  const std::string url = testing_pg::FreshDatabase(&error);
  ASSERT_FALSE(url.empty()) << error;
  auto exec = [&](const char* sql) {
    PGconn* c = PQconnectdb(url.c_str());
    PGresult* r = PQexec(c, sql);
    EXPECT_EQ(PQresultStatus(r), PGRES_COMMAND_OK) << PQresultErrorMessage(r);
    PQclear(r);
    PQfinish(c);
  };
  // Schema version 1 (no parties table yet), with an entry.
  exec("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
       "CREATE TABLE entries (position BIGINT PRIMARY KEY CHECK (position > 0), kind TEXT NOT "
       "NULL, body BYTEA NOT NULL, hash BYTEA NOT NULL CHECK (length(hash) = 32));"
       "INSERT INTO meta VALUES ('format','assent-ledger'),('schema_version','1');");
  {
    StoredEntry e = Entry(1);
    PGconn* c = PQconnectdb(url.c_str());
    const char* values[] = {e.body.data(), reinterpret_cast<const char*>(e.hash.data())};
    int lengths[] = {static_cast<int>(e.body.size()), 32};
    int formats[] = {1, 1};
    PGresult* r = PQexecParams(c, "INSERT INTO entries VALUES (1, 'consent', $1, $2)", 2, nullptr,
                               values, lengths, formats, 0);
    EXPECT_EQ(PQresultStatus(r), PGRES_COMMAND_OK) << PQresultErrorMessage(r);
    PQclear(r);
    PQfinish(c);
  }
  auto store = OpenPostgresStore(url, false);
  ASSERT_TRUE(store) << store.error().message;
  EXPECT_EQ(ScanAll(**store).size(), 1u);
  EXPECT_TRUE((*store)->Append(std::vector<StoredEntry>{Entry(2)},
                               std::vector<PartyChange>{NewParty(PartyKind::kSubject, "u2")}));
  store->reset();
  exec("UPDATE meta SET value = '99' WHERE key = 'schema_version'");
  auto newer = OpenPostgresStore(url, false);
  ASSERT_FALSE(newer);
  EXPECT_EQ(newer.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_NE(newer.error().message.find("schema version 99"), std::string::npos);

  const std::string other = testing_pg::FreshDatabase(&error);
  {
    PGconn* c = PQconnectdb(other.c_str());
    PQclear(PQexec(c, "CREATE TABLE invoices (x INT)"));
    PQfinish(c);
  }
  auto foreign = OpenPostgresStore(other, false);
  ASSERT_FALSE(foreign);
  EXPECT_NE(foreign.error().message.find("not an Assent ledger"), std::string::npos);
}

TEST(PostgresStoreTest, AnUnreachableServerIsUnavailableAndNamesNoPassword) {
  auto s = OpenPostgresStore("postgresql://assent:secret@127.0.0.1:1/assent?connect_timeout=2", false);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(s.error().message.find("secret"), std::string::npos) << s.error().message;
  EXPECT_NE(s.error().message.find("cannot reach"), std::string::npos) << s.error().message;
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
