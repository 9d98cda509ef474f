// The PostgreSQL store: one database shared by several `assent serve` nodes (DESIGN.md
// "Consent ledger", docs/deploy.md). Same tables as SQLite. What makes it safe to share:
// - Appends take a transaction-scoped advisory lock, read the head and write the entries
//   with the positions that follow it, in one transaction: positions stay dense and in commit
//   order across nodes (no sequence, so a rollback leaves no gap).
// - Every append carries a random idempotency key (on its first entry). When the connection
//   drops during COMMIT the outcome is unknown; the store reconnects and looks the key up, so
//   it answers "committed" or "not committed", never a guess — a retry never doubles an event.
// - The committing transaction sends NOTIFY assent_ledger; followers LISTEN on a connection of
//   their own and catch up by position (the notification is only a wake-up).
// - Schema migrations run at start under a session advisory lock, so nodes starting together
//   cannot race.
// Connections: one for appends, one for reads (scans run in one REPEATABLE READ transaction,
// through a cursor), one for LISTEN. Each reconnects when it finds itself broken.
#include <libpq-fe.h>
#include <openssl/rand.h>
#include <poll.h>
#include <sys/socket.h>

#include <atomic>

#include <cstring>
#include <map>
#include <mutex>
#include <regex>
#include <vector>

#include "ledger/postgres/pg_connection.h"
#include "ledger/store.h"

namespace assent::internal {

namespace pg {
// Test hook (SetPostgresFaultForTest): 1 cuts the next append's connection just after its
// COMMIT is sent, 2 just before the append's rows are sent.
std::atomic<int> g_fault{0};
}  // namespace pg

namespace {

using pg::BigEndian32;
using pg::BigEndian64;
using pg::Connection;
using pg::MultiInsert;
using pg::PgResult;
using pg::Redacted;
using pg::TextArray;
using pg::g_fault;

constexpr int kSchemaVersion = 4;
constexpr long long kMigrationLock = 0x617373656e74;   // "assent"
constexpr long long kAppendLock = 0x617373656e7401;
constexpr int kFetchRows = 8192;

// Versioned migrations, applied in order; meta.schema_version is the last one applied.
struct Migration {
  int version;
  const char* sql;
};
const Migration kMigrations[] = {
    {1, R"sql(
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE entries (
  position BIGINT PRIMARY KEY CHECK (position > 0),
  kind     TEXT NOT NULL,
  body     BYTEA NOT NULL,
  hash     BYTEA NOT NULL CHECK (length(hash) = 32)
);
CREATE FUNCTION assent_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'assent ledger entries are append-only'; END $$;
CREATE TRIGGER entries_no_change BEFORE UPDATE OR DELETE ON entries
  FOR EACH ROW EXECUTE FUNCTION assent_append_only();
CREATE TRIGGER entries_no_truncate BEFORE TRUNCATE ON entries
  FOR EACH STATEMENT EXECUTE FUNCTION assent_append_only();
INSERT INTO meta (key, value) VALUES ('format', 'assent-ledger'), ('schema_version', '1');
)sql"},
    {2, R"sql(
-- Pseudonymised parties (outside the tree) and idempotency keys of appends.
CREATE TABLE parties (
  kind      TEXT NOT NULL,
  id        TEXT NOT NULL,
  pseudonym TEXT NOT NULL UNIQUE,
  secret    BYTEA NOT NULL CHECK (length(secret) = 32),
  PRIMARY KEY (kind, id)
);
ALTER TABLE entries ADD COLUMN idempotency_key BYTEA UNIQUE;
UPDATE meta SET value = '2' WHERE key = 'schema_version';
)sql"},
    {3, R"sql(
-- Callers' idempotency keys (SHA-256 of caller and key) and the entry each was given to.
CREATE TABLE idempotency_keys (key BYTEA PRIMARY KEY, position BIGINT NOT NULL);
UPDATE meta SET value = '3' WHERE key = 'schema_version';
)sql"},
    {4, R"sql(
-- Consent entries state the notice they answered ("notice"): nodes of an older release would
-- refuse them one by one, so the version says it first. Nothing stored changes.
UPDATE meta SET value = '4' WHERE key = 'schema_version';
)sql"},
};

class PostgresStore : public LedgerStore {
 public:
  PostgresStore(std::string url, bool read_only)
      : url_(std::move(url)), read_only_(read_only), writer_(url_), reader_(url_),
        listener_(url_) {}

  Status Init() {
    ASSENT_RETURN_IF_ERROR(writer_.Ensure());
    // Migrations under a session lock: the first node to start applies them, the others wait
    // and then find them applied.
    ASSENT_RETURN_IF_ERROR(
        writer_.Exec("SELECT pg_advisory_lock(" + std::to_string(kMigrationLock) + ")",
                     "waiting for the migration lock"));
    Status st = Migrate();
    (void)writer_.Exec("SELECT pg_advisory_unlock(" + std::to_string(kMigrationLock) + ")",
                       "releasing the migration lock");
    return st;
  }

  Result<uint64_t> BeginAppend() override {
    if (read_only_) return FailedPreconditionError("the ledger was opened read-only");
    append_mu_.lock();
    auto begin = [&]() -> Result<uint64_t> {
      ASSENT_ASSIGN_OR_RETURN(
          auto r, writer_.Exec("BEGIN; SELECT pg_advisory_xact_lock(" +
                                   std::to_string(kAppendLock) +
                                   "); SELECT COALESCE(MAX(position), 0) FROM entries",
                               "starting an append"));
      return static_cast<uint64_t>(std::stoull(PQgetvalue(r.get(), 0, 0)));
    };
    auto head = begin();
    // After a database restart the writer's connection is stale and the first use finds out.
    // Nothing was written yet (the append had not begun), so reconnect and try once more.
    if (!head && head.error().code == ErrorCode::kUnavailable) {
      writer_.Drop();
      head = begin();
    }
    if (!head) {
      if (!writer_.broken()) (void)writer_.Exec("ROLLBACK", "rollback");
      append_mu_.unlock();
      return head;
    }
    head_ = *head;
    return head_;
  }

  void AbortAppend() override {
    (void)writer_.Exec("ROLLBACK", "rollback");
    append_mu_.unlock();
  }

  Status CommitAppend(std::span<const StoredEntry> entries,
                      std::span<const PartyChange> parties) override {
    std::unique_lock lock(append_mu_, std::adopt_lock);
    auto fail = [&](Error e) -> Status {
      if (!writer_.broken()) (void)writer_.Exec("ROLLBACK", "rollback");
      return std::unexpected(std::move(e));
    };
    if (auto st = CheckFollows(entries, head_); !st) return fail(st.error());
    std::string idempotency(16, '\0');
    RAND_bytes(reinterpret_cast<unsigned char*>(idempotency.data()), 16);
    // Every row of the append in as few statements as fit (one, for a usual group commit):
    // the append lock is held meanwhile, by every node's commit in turn, so round trips count.
    for (const auto& c : parties) {
      if (!c.erase) continue;
      auto r = writer_.Params("DELETE FROM parties WHERE kind = $1 AND id = $2",
                              {std::string(PartyKindName(c.row.kind)), c.row.id}, {0, 0}, false,
                              "erasing a party");
      if (!r) return fail(r.error());
    }
    MultiInsert insert;
    for (size_t i = 0; i < entries.size(); ++i) {
      const StoredEntry& e = entries[i];
      insert.Row("entries (position, kind, body, hash, idempotency_key)",
                 {{std::to_string(e.position), 0, "::bigint"},
                  {std::string(EntryKindName(e.kind)), 0, ""},
                  {e.body, 1, ""},
                  {std::string(reinterpret_cast<const char*>(e.hash.data()), e.hash.size()), 1, ""},
                  i == 0 ? MultiInsert::Param{idempotency, 1, ""} : MultiInsert::Null()});
      if (!e.idempotency_key.empty()) {
        insert.Row("idempotency_keys (key, position)",
                   {{e.idempotency_key, 1, ""}, {std::to_string(e.position), 0, "::bigint"}});
      }
    }
    for (const auto& c : parties) {
      if (c.erase) continue;
      insert.Row("parties (kind, id, pseudonym, secret)",
                 {{std::string(PartyKindName(c.row.kind)), 0, ""},
                  {c.row.id, 0, ""},
                  {c.row.pseudonym, 0, ""},
                  {std::string(reinterpret_cast<const char*>(c.row.secret.data()), 32), 1, ""}});
    }
    // The rows, NOTIFY and COMMIT in one round trip (pipelined): a failing INSERT leaves the
    // rest unrun, and the transaction is rolled back below.
    if (g_fault.load() == 2 && g_fault.exchange(0) == 2) ::shutdown(PQsocket(writer_.get()), SHUT_RDWR);
    std::vector<Connection::Step> steps = insert.Statements();
    steps.push_back({"NOTIFY assent_ledger", {}, {}});
    steps.push_back({"COMMIT", {}, {}});
    Status sent = writer_.Pipeline(steps, "committing to the ledger");
    if (sent) return OkStatus();
    auto r = Result<PgResult>(std::unexpected(sent.error()));
    if (entries.empty() || !writer_.broken()) return fail(r.error());
    // The connection broke during COMMIT: did it commit? Ask on a new connection — once the
    // append lock is ours: the old session held it until its transaction ended, so by then the
    // answer is final (a server still working through the COMMIT cannot commit after we look).
    auto found = [&]() -> Result<PgResult> {
      ASSENT_RETURN_IF_ERROR(writer_.Exec(
          "BEGIN; SELECT pg_advisory_xact_lock(" + std::to_string(kAppendLock) + ")",
          "checking an interrupted commit"));
      auto r = writer_.Params("SELECT position FROM entries WHERE idempotency_key = $1",
                              {idempotency}, {1}, false, "checking an interrupted commit");
      if (!writer_.broken()) (void)writer_.Exec("ROLLBACK", "ending the check");
      return r;
    }();
    if (!found) {
      return MakeError(ErrorCode::kUnavailable,
                       "the connection to the PostgreSQL ledger broke while committing and it "
                       "cannot be reached to learn whether the append committed: " +
                           found.error().message);
    }
    if (PQntuples(found->get()) == 1) return OkStatus();  // it did
    return MakeError(ErrorCode::kUnavailable,
                     "not recorded: the connection to the PostgreSQL ledger broke while "
                     "committing (" + r.error().message + ")");
  }

  Status Scan(uint64_t after, const EntryVisitor& fn) const override {
    std::lock_guard lock(read_mu_);
    ASSENT_RETURN_IF_ERROR(reader_.Exec(
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "starting a scan"));
    struct Ender {
      Connection& c;
      ~Ender() {
        if (!c.broken()) (void)c.Exec("ROLLBACK", "ending a scan");
      }
    } ender{reader_};
    ASSENT_RETURN_IF_ERROR(reader_.Exec(
        "DECLARE assent_scan NO SCROLL CURSOR FOR SELECT position, kind, body, hash FROM "
        "entries WHERE position > " + std::to_string(after) + " ORDER BY position",
        "reading the ledger"));
    const std::string fetch = "FETCH " + std::to_string(kFetchRows) + " FROM assent_scan";
    for (;;) {
      ASSENT_ASSIGN_OR_RETURN(auto r, reader_.Params(fetch, {}, {}, true, "reading the ledger"));
      ASSENT_ASSIGN_OR_RETURN(auto next, EmitRows(r.get(), fn));
      if (next == ScanControl::kStop || PQntuples(r.get()) < kFetchRows) break;
    }
    return OkStatus();
  }

  Status ScanParties(const std::function<Status(const PartyRow&)>& fn) const override {
    return QueryParties("SELECT kind, id, pseudonym, secret FROM parties", {}, fn);
  }

  Result<std::optional<uint64_t>> FindIdempotencyKey(std::string_view key) const override {
    std::lock_guard lock(read_mu_);
    ASSENT_ASSIGN_OR_RETURN(auto r, reader_.Params("SELECT position FROM idempotency_keys WHERE key = $1",
                                                   {std::string(key)}, {1}, false,
                                                   "reading an idempotency key"));
    if (PQntuples(r.get()) == 0) return std::optional<uint64_t>();
    return std::optional<uint64_t>(std::stoull(PQgetvalue(r.get(), 0, 0)));
  }

  Result<std::vector<PartyRow>> FindParties(PartyKind kind,
                                            std::span<const std::string> ids) const override {
    std::vector<PartyRow> rows;
    if (ids.empty()) return rows;
    ASSENT_RETURN_IF_ERROR(QueryParties(
        "SELECT kind, id, pseudonym, secret FROM parties WHERE kind = $1 AND id = ANY($2::text[])",
        {std::string(PartyKindName(kind)), TextArray(ids)}, [&](const PartyRow& r) -> Status {
          rows.push_back(r);
          return OkStatus();
        }));
    return rows;
  }

  Result<std::vector<PartyRow>> FindPseudonyms(
      std::span<const std::string> pseudonyms) const override {
    std::vector<PartyRow> rows;
    if (pseudonyms.empty()) return rows;
    ASSENT_RETURN_IF_ERROR(QueryParties(
        "SELECT kind, id, pseudonym, secret FROM parties WHERE pseudonym = ANY($1::text[])",
        {TextArray(pseudonyms)}, [&](const PartyRow& r) -> Status {
          rows.push_back(r);
          return OkStatus();
        }));
    return rows;
  }

  Status ScanRange(uint64_t after, uint64_t up_to, size_t limit, const EntryVisitor& fn,
                   std::vector<PartyRow>* named) const override {
    std::lock_guard lock(read_mu_);
    // The entries, and the parties their consent entries name (the pseudonym read out of the
    // canonical JSON by the database, looked up by its index), in one round trip: rows tagged
    // 0 are entries in order, rows tagged 1 parties.
    ASSENT_ASSIGN_OR_RETURN(
        auto r,
        reader_.Params(
            "WITH e AS (SELECT position, kind, body, hash FROM entries WHERE position > "
            "$1::bigint AND position <= $2::bigint ORDER BY position LIMIT " +
                std::to_string(limit) +
                ") "
                "SELECT 0 AS t, position, kind, body, hash, NULL::text, NULL::text, NULL::text, "
                "NULL::bytea FROM e "
                "UNION ALL SELECT 1, NULL::bigint, NULL::text, NULL::bytea, NULL::bytea, p.kind, "
                "p.id, p.pseudonym, p.secret FROM parties p WHERE p.pseudonym = ANY(ARRAY("
                "SELECT COALESCE(convert_from(body, 'UTF8')::jsonb ->> 'subject', "
                "convert_from(body, 'UTF8')::jsonb ->> 'account') FROM e WHERE kind = 'consent')) "
                "ORDER BY 1, 2",
            {std::to_string(after), std::to_string(std::min<uint64_t>(up_to, INT64_MAX))},
            {0, 0}, true, "reading the ledger"));
    int entries = 0;
    for (int i = 0; i < PQntuples(r.get()); ++i) {
      const bool party = BigEndian32(PQgetvalue(r.get(), i, 0)) == 1;
      if (!party) {
        ++entries;
        continue;
      }
      if (!named) continue;
      std::string kind(PQgetvalue(r.get(), i, 5), PQgetlength(r.get(), i, 5));
      auto parsed = ParsePartyKind(kind);
      if (!parsed || PQgetlength(r.get(), i, 8) != 32) continue;  // the caller looks it up
      PartyRow row;
      row.kind = *parsed;
      row.id.assign(PQgetvalue(r.get(), i, 6), PQgetlength(r.get(), i, 6));
      row.pseudonym.assign(PQgetvalue(r.get(), i, 7), PQgetlength(r.get(), i, 7));
      std::memcpy(row.secret.data(), PQgetvalue(r.get(), i, 8), 32);
      named->push_back(std::move(row));
    }
    ASSENT_RETURN_IF_ERROR(EmitRows(r.get(), fn, 1, entries));
    return OkStatus();
  }

  Result<uint64_t> PartyCount() const override {
    std::lock_guard lock(read_mu_);
    ASSENT_ASSIGN_OR_RETURN(auto r, reader_.Exec("SELECT count(*) FROM parties", "counting parties"));
    return static_cast<uint64_t>(std::stoull(PQgetvalue(r.get(), 0, 0)));
  }

  Result<std::optional<PartyRow>> FindParty(PartyKind kind, std::string_view id) const override {
    return FindOne("SELECT kind, id, pseudonym, secret FROM parties WHERE kind = $1 AND id = $2",
                   {std::string(PartyKindName(kind)), std::string(id)});
  }

  Result<std::optional<PartyRow>> FindPseudonym(std::string_view pseudonym) const override {
    return FindOne("SELECT kind, id, pseudonym, secret FROM parties WHERE pseudonym = $1",
                   {std::string(pseudonym)});
  }

  Result<uint64_t> LastPosition() const override {
    std::lock_guard lock(read_mu_);
    ASSENT_ASSIGN_OR_RETURN(auto r, reader_.Exec("SELECT COALESCE(MAX(position), 0) FROM entries",
                                                 "reading the ledger head"));
    return static_cast<uint64_t>(std::stoull(PQgetvalue(r.get(), 0, 0)));
  }

  bool Shared() const override { return true; }

  Status WaitForAppends(std::chrono::milliseconds timeout) override {
    std::lock_guard lock(listen_mu_);
    if (listener_.broken() || !listening_) {
      listening_ = false;
      ASSENT_RETURN_IF_ERROR(listener_.Exec("LISTEN assent_ledger", "listening for appends"));
      listening_ = true;
      return OkStatus();  // (re)connected: the caller catches up by position anyway
    }
    PGconn* c = listener_.get();
    pollfd p{PQsocket(c), POLLIN, 0};
    int n = ::poll(&p, 1, static_cast<int>(timeout.count()));
    if (n < 0) return OkStatus();  // interrupted: a spurious wake-up is harmless
    if (n > 0 && !PQconsumeInput(c)) {
      listening_ = false;
      return MakeError(ErrorCode::kUnavailable, "lost the connection to the PostgreSQL ledger");
    }
    while (PGnotify* note = PQnotifies(c)) PQfreemem(note);
    if (PQstatus(c) != CONNECTION_OK) {
      listening_ = false;
      return MakeError(ErrorCode::kUnavailable, "lost the connection to the PostgreSQL ledger");
    }
    return OkStatus();
  }

  std::string Describe() const override { return Redacted(url_); }

 private:
  Status Migrate() {
    ASSENT_ASSIGN_OR_RETURN(
        auto t, writer_.Exec("SELECT to_regclass('meta') IS NOT NULL, "
                             "(SELECT count(*) FROM pg_tables WHERE schemaname = current_schema())",
                             "reading the schema"));
    const bool has_meta = std::string(PQgetvalue(t.get(), 0, 0)) == "t";
    const long tables = std::stol(PQgetvalue(t.get(), 0, 1));
    int version = 0;
    if (has_meta) {
      auto m = writer_.Exec("SELECT key, value FROM meta", "reading meta");
      if (!m) return Foreign("its meta table cannot be read");
      std::string format;
      for (int i = 0; i < PQntuples(m->get()); ++i) {
        std::string k = PQgetvalue(m->get(), i, 0), v = PQgetvalue(m->get(), i, 1);
        if (k == "format") format = v;
        if (k == "schema_version") version = std::atoi(v.c_str());
      }
      if (format != "assent-ledger") return Foreign("its format is not assent-ledger");
      if (version > kSchemaVersion) {
        return FailedPreconditionError(
            Redacted(url_) + " has ledger schema version " + std::to_string(version) +
            "; this assent knows versions up to " + std::to_string(kSchemaVersion) +
            ": upgrade every node to the release that wrote it");
      }
    } else if (tables > 0) {
      return Foreign("it holds other tables");
    }
    if (version == kSchemaVersion) return OkStatus();
    if (read_only_) {
      return FailedPreconditionError(version == 0 ? "no ledger in " + Redacted(url_) + " yet"
                                                  : Redacted(url_) + " needs schema migrations: "
                                                                     "start a writing node first");
    }
    for (const auto& m : kMigrations) {
      if (m.version <= version) continue;
      auto r = writer_.Exec(std::string("BEGIN;") + m.sql + "COMMIT;",
                            "applying schema migration " + std::to_string(m.version));
      if (!r) {
        (void)writer_.Exec("ROLLBACK", "rollback");
        return std::unexpected(r.error());
      }
    }
    return OkStatus();
  }

  // Rows (position, kind, body, hash) of a binary result, as entry views.
  // From column `first` on, of rows 0..count (all when -1).
  // The rows as entries, to `fn`; kStop when it stopped.
  static Result<ScanControl> EmitRows(PGresult* r, const EntryVisitor& fn, int first = 0,
                                      int count = -1) {
    const int rows = count < 0 ? PQntuples(r) : count;
    for (int i = 0; i < rows; ++i) {
      EntryView v;
      v.position = BigEndian64(PQgetvalue(r, i, first));
      std::string_view kind(PQgetvalue(r, i, first + 1), PQgetlength(r, i, first + 1));
      auto k = ParseEntryKind(kind);
      if (!k) {
        return DataLossError("ledger entry at position " + std::to_string(v.position) + ": " +
                             k.error().message);
      }
      v.kind = *k;
      v.body = std::string_view(PQgetvalue(r, i, first + 2), PQgetlength(r, i, first + 2));
      v.hash = std::span<const uint8_t>(
          reinterpret_cast<const uint8_t*>(PQgetvalue(r, i, first + 3)),
          PQgetlength(r, i, first + 3));
      ASSENT_ASSIGN_OR_RETURN(auto next, fn(v));
      if (next == ScanControl::kStop) return next;
    }
    return ScanControl::kContinue;
  }

  Status Foreign(const std::string& why) const {
    return FailedPreconditionError(Redacted(url_) + " is not an Assent ledger (" + why +
                                   "); refusing to use it. Point --database at an empty "
                                   "database or an Assent one.");
  }

  Status QueryParties(const std::string& sql, const std::vector<std::string>& params,
                      const std::function<Status(const PartyRow&)>& fn) const {
    std::lock_guard lock(read_mu_);
    std::vector<int> formats(params.size(), 0);
    ASSENT_ASSIGN_OR_RETURN(auto r, reader_.Params(sql, params, formats, true, "reading parties"));
    PartyRow row;
    for (int i = 0; i < PQntuples(r.get()); ++i) {
      std::string kind(PQgetvalue(r.get(), i, 0), PQgetlength(r.get(), i, 0));
      auto parsed = ParsePartyKind(kind);
      if (!parsed || PQgetlength(r.get(), i, 3) != 32) {
        return DataLossError("a row of the parties table is damaged (kind '" + kind + "')");
      }
      row.kind = *parsed;
      row.id.assign(PQgetvalue(r.get(), i, 1), PQgetlength(r.get(), i, 1));
      row.pseudonym.assign(PQgetvalue(r.get(), i, 2), PQgetlength(r.get(), i, 2));
      std::memcpy(row.secret.data(), PQgetvalue(r.get(), i, 3), 32);
      ASSENT_RETURN_IF_ERROR(fn(row));
    }
    return OkStatus();
  }

  Result<std::optional<PartyRow>> FindOne(const std::string& sql,
                                          const std::vector<std::string>& params) const {
    std::optional<PartyRow> found;
    ASSENT_RETURN_IF_ERROR(QueryParties(sql, params, [&](const PartyRow& r) -> Status {
      found = r;
      return OkStatus();
    }));
    return found;
  }

  std::string url_;
  bool read_only_;
  std::mutex append_mu_;  // held from BeginAppend to CommitAppend/AbortAppend
  uint64_t head_ = 0;
  Connection writer_;
  mutable std::mutex read_mu_;
  mutable Connection reader_;
  std::mutex listen_mu_;
  Connection listener_;
  bool listening_ = false;
};

}  // namespace

void SetPostgresFaultForTest(int fault) { g_fault = fault; }

Result<std::unique_ptr<LedgerStore>> OpenPostgresStore(const std::string& url, bool read_only) {
  auto store = std::make_unique<PostgresStore>(url, read_only);
  ASSENT_RETURN_IF_ERROR(store->Init());
  return std::unique_ptr<LedgerStore>(std::move(store));
}

}  // namespace assent::internal
