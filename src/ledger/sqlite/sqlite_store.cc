// The embedded default store: one SQLite database file, DIR/ledger.db, in WAL mode with
// synchronous=FULL, so a committed transaction is on stable storage. One transaction per
// Append (the ledger groups many events into one). Schema: docs/formats/ledger.md.
#include <sqlite3.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <mutex>

#include "ledger/store.h"

namespace assent::internal {
namespace {

// 3: consent entries state the notice they answered ("notice"); a 2 is migrated on the first
// writable open (its entries stay as they are: they state no notice).
constexpr int kSchemaVersion = 3;

const char* kSchema = R"sql(
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE entries (
  position INTEGER PRIMARY KEY,
  kind     TEXT NOT NULL,
  body     BLOB NOT NULL,
  hash     BLOB NOT NULL CHECK (length(hash) = 32)
);
CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries
  BEGIN SELECT RAISE(ABORT, 'assent ledger entries are append-only'); END;
CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries
  BEGIN SELECT RAISE(ABORT, 'assent ledger entries are append-only'); END;
-- Outside the tree: each party's pseudonym secret. Erasure deletes the row. Rows are only
-- appended (in creation order, so a commit writes a page or two, not one random index page
-- per new party); the single writer's in-memory index keeps ids and pseudonyms unique, and
-- reads them all at start. No index: the rare look-ups (erasure) scan.
CREATE TABLE parties (
  kind      TEXT NOT NULL,
  id        TEXT NOT NULL,
  pseudonym TEXT NOT NULL,
  secret    BLOB NOT NULL CHECK (length(secret) = 32)
);
INSERT INTO meta (key, value) VALUES ('format', 'assent-ledger'), ('schema_version', '3');
)sql";

// Callers' idempotency keys (SHA-256 of caller and key) and the entry each was given to.
// Part of schema 2; created when missing in ledgers made before it was added.
const char* kIdempotencyTable = R"sql(
CREATE TABLE IF NOT EXISTS idempotency_keys (
  key      BLOB PRIMARY KEY,
  position INTEGER NOT NULL
) WITHOUT ROWID;
)sql";

// An error for a failed SQLite call, by what the caller should do.
Error SqliteError(sqlite3* db, int rc, const std::string& what) {
  std::string msg = what + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  switch (rc & 0xff) {
    case SQLITE_FULL:
      return Error{ErrorCode::kUnavailable, msg + " (the disk is full; free space and retry)"};
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Error{ErrorCode::kUnavailable, msg + " (the database is busy; retry)"};
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
      return Error{ErrorCode::kUnavailable, msg};
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
      return Error{ErrorCode::kDataLoss, msg};
    default:
      return Error{ErrorCode::kInternal, msg};
  }
}

class Statement {
 public:
  Statement(sqlite3* db, const char* sql) {
    rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  int rc() const { return rc_; }
  sqlite3_stmt* get() { return stmt_; }

 private:
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;
};

Status Exec(sqlite3* db, const char* sql, const std::string& what) {
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
  sqlite3_free(err);
  if (rc != SQLITE_OK) return std::unexpected(SqliteError(db, rc, what));
  return OkStatus();
}

Result<sqlite3*> OpenDb(const std::string& path, bool read_only) {
  sqlite3* db = nullptr;
  int flags = read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  int rc = sqlite3_open_v2(path.c_str(), &db, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    Error e = SqliteError(db, rc, "cannot open " + path);
    sqlite3_close(db);
    return std::unexpected(e);
  }
  sqlite3_busy_timeout(db, 10000);
  return db;
}

class SqliteStore : public LedgerStore {
 public:
  SqliteStore(std::string path, sqlite3* db, bool read_only)
      : path_(std::move(path)), db_(db), read_only_(read_only) {}
  ~SqliteStore() override { sqlite3_close(db_); }

  Status Init() {
    // Refuse anything that is not an Assent ledger before touching it.
    bool empty = false;
    {
      Statement tables(db_, "SELECT count(*) FROM sqlite_master");
      if (tables.rc() != SQLITE_OK) {
        return std::unexpected(
            SqliteError(db_, tables.rc(), path_ + " is not a readable database"));
      }
      int rc = sqlite3_step(tables.get());
      if (rc != SQLITE_ROW) {
        return std::unexpected(SqliteError(db_, rc, path_ + " is not a readable database"));
      }
      empty = sqlite3_column_int64(tables.get(), 0) == 0;
    }
    if (empty) {
      if (read_only_) return NotFoundError("no ledger in " + path_ + " yet");
      ASSENT_RETURN_IF_ERROR(Exec(db_, "PRAGMA journal_mode=WAL", "enabling WAL"));
      ASSENT_RETURN_IF_ERROR(Exec(db_, "BEGIN IMMEDIATE", "creating the ledger"));
      if (auto st = Exec(db_, (std::string(kSchema) + kIdempotencyTable).c_str(),
                         "creating the ledger schema");
          !st) {
        Exec(db_, "ROLLBACK", "rollback");
        return st;
      }
      ASSENT_RETURN_IF_ERROR(Exec(db_, "COMMIT", "creating the ledger"));
    }
    std::string format, version;
    {
      Statement meta(db_, "SELECT value FROM meta WHERE key = ?1");
      if (meta.rc() != SQLITE_OK) return Foreign("it has no Assent meta table");
      auto value = [&](const char* key) -> std::string {
        sqlite3_reset(meta.get());
        sqlite3_bind_text(meta.get(), 1, key, -1, SQLITE_STATIC);
        if (sqlite3_step(meta.get()) != SQLITE_ROW) return "";
        auto text = reinterpret_cast<const char*>(sqlite3_column_text(meta.get(), 0));
        return text ? text : "";
      };
      format = value("format");
      version = value("schema_version");
    }
    if (format != "assent-ledger") return Foreign("its format is not assent-ledger");
    if (version == "1") {
      return FailedPreconditionError(
          path_ + " has ledger schema version 1 (a development version that named parties by "
                  "their plain ids in the tree); this assent reads version 2, with pseudonymised "
                  "parties: export it with the assent that wrote it and `assent ledger import` "
                  "the export into a new data directory");
    }
    if (version == "2" && !read_only_) {
      // Schema 3 adds a field to new consent entries: an older assent would refuse them one by
      // one, so the version says it first. Nothing stored changes.
      ASSENT_RETURN_IF_ERROR(Exec(db_, "BEGIN IMMEDIATE", "migrating the ledger to schema 3"));
      if (auto st = Exec(db_, "UPDATE meta SET value = '3' WHERE key = 'schema_version'",
                         "migrating the ledger to schema 3");
          !st) {
        Exec(db_, "ROLLBACK", "rollback");
        return st;
      }
      ASSENT_RETURN_IF_ERROR(Exec(db_, "COMMIT", "migrating the ledger to schema 3"));
      version = "3";
    }
    if (version != std::to_string(kSchemaVersion) && !(version == "2" && read_only_)) {
      return FailedPreconditionError(path_ + " has ledger schema version '" + version +
                                     "', this assent reads version " +
                                     std::to_string(kSchemaVersion) +
                                     ": use the assent release that wrote it");
    }
    if (!read_only_) {
      ASSENT_RETURN_IF_ERROR(Exec(db_, "PRAGMA journal_mode=WAL", "enabling WAL"));
      // FULL: the WAL is fsynced at every commit, so a returned Append survives power loss.
      ASSENT_RETURN_IF_ERROR(Exec(db_, "PRAGMA synchronous=FULL", "setting synchronous=FULL"));
      // An erased party's id and secret are overwritten with zeros, not left in free pages.
      ASSENT_RETURN_IF_ERROR(Exec(db_, "PRAGMA secure_delete=ON", "setting secure_delete"));
      ASSENT_RETURN_IF_ERROR(Exec(db_, kIdempotencyTable, "creating the idempotency table"));
    }
    return OkStatus();
  }

  Result<uint64_t> BeginAppend() override {
    if (read_only_) return FailedPreconditionError("the ledger was opened read-only");
    mu_.lock();
    if (auto st = Exec(db_, "BEGIN IMMEDIATE", "starting an append"); !st) {
      mu_.unlock();
      return std::unexpected(st.error());
    }
    auto last = LastPositionLocked();
    if (!last) {
      Exec(db_, "ROLLBACK", "rollback");
      mu_.unlock();
      return last;
    }
    head_ = *last;
    return head_;
  }

  void AbortAppend() override {
    Exec(db_, "ROLLBACK", "rollback");
    mu_.unlock();
  }

  Status CommitAppend(std::span<const StoredEntry> entries,
                      std::span<const PartyChange> parties) override {
    std::unique_lock lock(mu_, std::adopt_lock);
    auto fail = [&](Error e) -> Status {
      Exec(db_, "ROLLBACK", "rollback");
      return std::unexpected(std::move(e));
    };
    if (auto st = CheckFollows(entries, head_); !st) return fail(st.error());
    Statement insert(db_, "INSERT INTO entries (position, kind, body, hash) VALUES (?1,?2,?3,?4)");
    if (insert.rc() != SQLITE_OK) return fail(SqliteError(db_, insert.rc(), "preparing an append"));
    for (const auto& e : entries) {
      sqlite3_reset(insert.get());
      sqlite3_bind_int64(insert.get(), 1, static_cast<sqlite3_int64>(e.position));
      std::string_view kind = EntryKindName(e.kind);
      sqlite3_bind_text(insert.get(), 2, kind.data(), static_cast<int>(kind.size()), SQLITE_STATIC);
      sqlite3_bind_blob(insert.get(), 3, e.body.data(), static_cast<int>(e.body.size()),
                        SQLITE_STATIC);
      sqlite3_bind_blob(insert.get(), 4, e.hash.data(), 32, SQLITE_STATIC);
      int rc = sqlite3_step(insert.get());
      if (rc != SQLITE_DONE) return fail(SqliteError(db_, rc, "appending to the ledger"));
    }
    for (const auto& e : entries) {
      if (e.idempotency_key.empty()) continue;
      Statement key(db_, "INSERT INTO idempotency_keys (key, position) VALUES (?1, ?2)");
      sqlite3_bind_blob(key.get(), 1, e.idempotency_key.data(),
                        static_cast<int>(e.idempotency_key.size()), SQLITE_STATIC);
      sqlite3_bind_int64(key.get(), 2, static_cast<sqlite3_int64>(e.position));
      int rc = key.rc() == SQLITE_OK ? sqlite3_step(key.get()) : key.rc();
      if ((rc & 0xff) == SQLITE_CONSTRAINT) {
        return fail(Error{ErrorCode::kAlreadyExists, "the idempotency key is stored already"});
      }
      if (rc != SQLITE_DONE) return fail(SqliteError(db_, rc, "recording an idempotency key"));
    }
    if (!parties.empty()) {
      Statement add(db_, "INSERT INTO parties (kind, id, pseudonym, secret) VALUES (?1,?2,?3,?4)");
      Statement del(db_, "DELETE FROM parties WHERE kind = ?1 AND id = ?2");
      if (add.rc() != SQLITE_OK) return fail(SqliteError(db_, add.rc(), "preparing parties"));
      if (del.rc() != SQLITE_OK) return fail(SqliteError(db_, del.rc(), "preparing parties"));
      for (const auto& c : parties) {
        sqlite3_stmt* st = c.erase ? del.get() : add.get();
        sqlite3_reset(st);
        std::string_view kind = PartyKindName(c.row.kind);
        sqlite3_bind_text(st, 1, kind.data(), static_cast<int>(kind.size()), SQLITE_STATIC);
        sqlite3_bind_text(st, 2, c.row.id.data(), static_cast<int>(c.row.id.size()),
                          SQLITE_STATIC);
        if (!c.erase) {
          sqlite3_bind_text(st, 3, c.row.pseudonym.data(),
                            static_cast<int>(c.row.pseudonym.size()), SQLITE_STATIC);
          sqlite3_bind_blob(st, 4, c.row.secret.data(), 32, SQLITE_STATIC);
        }
        int rc = sqlite3_step(st);
        if ((rc & 0xff) == SQLITE_CONSTRAINT) {
          return fail(Error{ErrorCode::kAlreadyExists,
                            "party '" + c.row.id + "' or its pseudonym is stored already"});
        }
        if (rc != SQLITE_DONE) return fail(SqliteError(db_, rc, "recording a party"));
      }
    }
    int rc = sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) return fail(SqliteError(db_, rc, "committing to the ledger"));
    return OkStatus();
  }

  Status Scan(uint64_t after, const EntryVisitor& fn) const override {
    // Its own read connection: a scan sees one consistent snapshot and never blocks Append.
    ASSENT_ASSIGN_OR_RETURN(sqlite3* db, OpenDb(path_, true));
    struct Closer {
      sqlite3* db;
      ~Closer() { sqlite3_close(db); }
    } closer{db};
    Statement scan(db, "SELECT position, kind, body, hash FROM entries WHERE position > ?1 "
                       "ORDER BY position");
    if (scan.rc() != SQLITE_OK) return std::unexpected(SqliteError(db, scan.rc(), "reading"));
    sqlite3_bind_int64(scan.get(), 1, static_cast<sqlite3_int64>(after));
    for (;;) {
      int rc = sqlite3_step(scan.get());
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return std::unexpected(SqliteError(db, rc, "reading the ledger"));
      EntryView v;
      v.position = static_cast<uint64_t>(sqlite3_column_int64(scan.get(), 0));
      auto kind_text = reinterpret_cast<const char*>(sqlite3_column_text(scan.get(), 1));
      auto kind = ParseEntryKind(kind_text ? kind_text : "");
      if (!kind) {
        return DataLossError("ledger entry at position " + std::to_string(v.position) + ": " +
                             kind.error().message);
      }
      v.kind = *kind;
      auto body = static_cast<const char*>(sqlite3_column_blob(scan.get(), 2));
      v.body = std::string_view(body ? body : "", sqlite3_column_bytes(scan.get(), 2));
      auto hash = static_cast<const uint8_t*>(sqlite3_column_blob(scan.get(), 3));
      v.hash = std::span<const uint8_t>(hash, hash ? sqlite3_column_bytes(scan.get(), 3) : 0);
      ASSENT_ASSIGN_OR_RETURN(auto next, fn(v));
      if (next == ScanControl::kStop) break;
    }
    return OkStatus();
  }

  bool ScansConcurrently() const override { return true; }  // a read connection per scan

  Status ScanParties(const std::function<Status(const PartyRow&)>& fn) const override {
    return QueryParties("SELECT kind, id, pseudonym, secret FROM parties", {}, {}, fn);
  }

  // Runs a query over parties on its own read connection, binding up to two texts.
  Status QueryParties(const char* sql, std::string_view a, std::string_view b,
                      const std::function<Status(const PartyRow&)>& fn) const {
    ASSENT_ASSIGN_OR_RETURN(sqlite3* db, OpenDb(path_, true));
    struct Closer {
      sqlite3* db;
      ~Closer() { sqlite3_close(db); }
    } closer{db};
    Statement scan(db, sql);
    if (scan.rc() != SQLITE_OK) return std::unexpected(SqliteError(db, scan.rc(), "reading"));
    if (a.data()) sqlite3_bind_text(scan.get(), 1, a.data(), static_cast<int>(a.size()), SQLITE_STATIC);
    if (b.data()) sqlite3_bind_text(scan.get(), 2, b.data(), static_cast<int>(b.size()), SQLITE_STATIC);
    PartyRow row;
    for (;;) {
      int rc = sqlite3_step(scan.get());
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return std::unexpected(SqliteError(db, rc, "reading the parties"));
      auto text = [&](int col) {
        auto p = reinterpret_cast<const char*>(sqlite3_column_text(scan.get(), col));
        return std::string_view(p ? p : "", p ? sqlite3_column_bytes(scan.get(), col) : 0);
      };
      std::string_view kind = text(0);
      auto parsed = ParsePartyKind(kind);
      auto secret = static_cast<const uint8_t*>(sqlite3_column_blob(scan.get(), 3));
      if (!parsed || !secret || sqlite3_column_bytes(scan.get(), 3) != 32) {
        return DataLossError("a row of the parties table is damaged (kind '" +
                             std::string(kind) + "')");
      }
      row.kind = *parsed;
      row.id.assign(text(1));
      row.pseudonym.assign(text(2));
      std::memcpy(row.secret.data(), secret, 32);
      ASSENT_RETURN_IF_ERROR(fn(row));
    }
    return OkStatus();
  }

  Result<std::optional<uint64_t>> FindIdempotencyKey(std::string_view key) const override {
    ASSENT_ASSIGN_OR_RETURN(sqlite3* db, OpenDb(path_, true));
    struct Closer {
      sqlite3* db;
      ~Closer() { sqlite3_close(db); }
    } closer{db};
    Statement find(db, "SELECT position FROM idempotency_keys WHERE key = ?1");
    if (find.rc() != SQLITE_OK) return std::unexpected(SqliteError(db, find.rc(), "reading"));
    sqlite3_bind_blob(find.get(), 1, key.data(), static_cast<int>(key.size()), SQLITE_STATIC);
    int rc = sqlite3_step(find.get());
    if (rc == SQLITE_DONE) return std::optional<uint64_t>();
    if (rc != SQLITE_ROW) return std::unexpected(SqliteError(db, rc, "reading a key"));
    return std::optional<uint64_t>(static_cast<uint64_t>(sqlite3_column_int64(find.get(), 0)));
  }

  Result<uint64_t> PartyCount() const override {
    ASSENT_ASSIGN_OR_RETURN(sqlite3* db, OpenDb(path_, true));
    struct Closer {
      sqlite3* db;
      ~Closer() { sqlite3_close(db); }
    } closer{db};
    Statement count(db, "SELECT count(*) FROM parties");
    if (count.rc() != SQLITE_OK) return std::unexpected(SqliteError(db, count.rc(), "counting"));
    int rc = sqlite3_step(count.get());
    if (rc != SQLITE_ROW) return std::unexpected(SqliteError(db, rc, "counting parties"));
    return static_cast<uint64_t>(sqlite3_column_int64(count.get(), 0));
  }

  Result<std::optional<PartyRow>> FindParty(PartyKind kind, std::string_view id) const override {
    std::string_view k = PartyKindName(kind);
    return FindOne("SELECT kind, id, pseudonym, secret FROM parties WHERE kind = ?1 AND id = ?2",
                   k, id);
  }

  Result<std::optional<PartyRow>> FindPseudonym(std::string_view pseudonym) const override {
    return FindOne("SELECT kind, id, pseudonym, secret FROM parties WHERE pseudonym = ?1",
                   pseudonym, {});
  }

  Status Purge() override {
    std::lock_guard lock(mu_);
    // Old page images (holding the erased row) live in the WAL until it is checkpointed.
    return Exec(db_, "PRAGMA wal_checkpoint(TRUNCATE)", "checkpointing the WAL");
  }

  Result<std::optional<PartyRow>> FindOne(const char* sql, std::string_view a,
                                          std::string_view b) const {
    std::optional<PartyRow> found;
    ASSENT_RETURN_IF_ERROR(QueryParties(sql, a, b, [&](const PartyRow& r) -> Status {
      found = r;
      return OkStatus();
    }));
    return found;
  }

  Result<uint64_t> LastPosition() const override {
    std::lock_guard lock(mu_);
    return LastPositionLocked();
  }

  std::string Describe() const override { return "sqlite:" + path_; }

  sqlite3* db() { return db_; }

 private:
  Status Foreign(const std::string& why) const {
    return FailedPreconditionError(path_ + " is not an Assent ledger (" + why +
                                   "); refusing to use it. Point --data at an empty directory "
                                   "or an Assent data directory.");
  }

  Result<uint64_t> LastPositionLocked() const {
    Statement max(db_, "SELECT COALESCE(MAX(position), 0) FROM entries");
    if (max.rc() != SQLITE_OK) return std::unexpected(SqliteError(db_, max.rc(), "reading"));
    int rc = sqlite3_step(max.get());
    if (rc != SQLITE_ROW) return std::unexpected(SqliteError(db_, rc, "reading"));
    return static_cast<uint64_t>(sqlite3_column_int64(max.get(), 0));
  }

  std::string path_;
  sqlite3* db_;
  bool read_only_;
  uint64_t head_ = 0;  // the head when the current append began
  mutable std::mutex mu_;  // held from BeginAppend to CommitAppend/AbortAppend
};

}  // namespace

Result<std::unique_ptr<LedgerStore>> OpenSqliteStore(const std::string& dir, bool read_only) {
  std::error_code ec;
  if (read_only) {
    if (!std::filesystem::exists(dir + "/ledger.db", ec)) {
      return NotFoundError("no ledger in '" + dir +
                           "': publish terms first (assent terms publish --data " + dir + ")");
    }
  } else {
    std::filesystem::create_directories(dir, ec);
    if (ec) {
      return MakeError(ErrorCode::kUnavailable,
                       "cannot create data directory '" + dir + "': " + ec.message());
    }
  }
  const std::string path = dir + "/ledger.db";
  ASSENT_ASSIGN_OR_RETURN(sqlite3* db, OpenDb(path, read_only));
  auto store = std::make_unique<SqliteStore>(path, db, read_only);
  ASSENT_RETURN_IF_ERROR(store->Init());
  return std::unique_ptr<LedgerStore>(std::move(store));
}

// For fault-injection tests: caps the database size so the next append fails with
// SQLITE_FULL, as on a full disk.
Status LimitSqliteStoreSizeForTest(LedgerStore* store, int max_pages) {
  auto* s = dynamic_cast<SqliteStore*>(store);
  if (!s) return InvalidArgumentError("not a SQLite store");
  std::string sql = "PRAGMA max_page_count=" + std::to_string(max_pages);
  return Exec(s->db(), sql.c_str(), "limiting the database size");
}

}  // namespace assent::internal
