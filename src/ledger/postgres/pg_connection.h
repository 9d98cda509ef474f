// The PostgreSQL store's plumbing (postgres_store.cc): one reconnecting libpq connection,
// pipelined statements, multi-row inserts, and the helpers that read and write libpq's
// formats. Used only by the PostgreSQL store.
#ifndef ASSENT_LEDGER_POSTGRES_PG_CONNECTION_H_
#define ASSENT_LEDGER_POSTGRES_PG_CONNECTION_H_

#include <libpq-fe.h>
#include <poll.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "assent/result.h"

namespace assent::internal::pg {

// Test hook (SetPostgresFaultForTest): 1 cuts the next append's connection just after its
// COMMIT is sent, 2 just before the append's rows are sent.
extern std::atomic<int> g_fault;

// What messages and Describe() say of a connection string: only its host, port and database
// name, read by libpq's own parser (PQconninfoParse) — so no quoting, escaping or URL form can
// leave part of a password (or a user name) in a log line or a health answer.
inline std::string Redacted(const std::string& url) {
  char* err = nullptr;
  PQconninfoOption* options = PQconninfoParse(url.c_str(), &err);
  if (err) PQfreemem(err);
  if (!options) return "postgresql://(unparsable connection string)";
  std::string host, port, dbname;
  for (PQconninfoOption* o = options; o->keyword; ++o) {
    if (!o->val) continue;
    const std::string_view k = o->keyword;
    if (k == "host" || (k == "hostaddr" && host.empty())) host = o->val;
    if (k == "port") port = o->val;
    if (k == "dbname") dbname = o->val;
  }
  PQconninfoFree(options);
  return "postgresql://" + (host.empty() ? std::string("localhost") : host) +
         (port.empty() ? "" : ":" + port) + "/" + dbname;
}

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, ResultDeleter>;

// One libpq connection that reconnects when it finds itself broken.
class Connection {
 public:
  explicit Connection(std::string url) : url_(std::move(url)) {}
  ~Connection() {
    if (conn_) PQfinish(conn_);
  }

  // Connected (reconnecting if needed), or kUnavailable.
  Status Ensure() {
    if (conn_ && PQstatus(conn_) == CONNECTION_OK) return OkStatus();
    if (conn_) PQfinish(conn_);
    conn_ = PQconnectdb(url_.c_str());
    if (PQstatus(conn_) != CONNECTION_OK) {
      std::string why = PQerrorMessage(conn_);
      while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
      PQfinish(conn_);
      conn_ = nullptr;
      return MakeError(ErrorCode::kUnavailable,
                       "cannot reach the PostgreSQL ledger at " + Redacted(url_) + ": " + why);
    }
    PQsetNoticeProcessor(conn_, [](void*, const char*) {}, nullptr);
    return OkStatus();
  }

  bool broken() const { return !conn_ || PQstatus(conn_) != CONNECTION_OK; }
  // Closes the connection; the next use reconnects.
  void Drop() {
    if (conn_) PQfinish(conn_);
    conn_ = nullptr;
  }
  PGconn* get() { return conn_; }

  // Runs SQL without parameters (several statements allowed); the last result.
  Result<PgResult> Exec(const std::string& sql, const std::string& what) {
    ASSENT_RETURN_IF_ERROR(Ensure());
    PgResult r(PQexec(conn_, sql.c_str()));
    return Check(std::move(r), what);
  }

  // Runs one statement with text or binary parameters; results in binary when `binary`.
  Result<PgResult> Params(const std::string& sql, const std::vector<std::string>& values,
                          const std::vector<int>& formats, bool binary, const std::string& what) {
    ASSENT_RETURN_IF_ERROR(Ensure());
    std::vector<const char*> ptrs;
    std::vector<int> lengths;
    for (const auto& v : values) {
      ptrs.push_back(v.data());
      lengths.push_back(static_cast<int>(v.size()));
    }
    PgResult r(PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr,
                            ptrs.data(), lengths.data(), formats.data(), binary ? 1 : 0));
    return Check(std::move(r), what);
  }

  struct Step {
    std::string sql;
    std::vector<std::string> values;
    std::vector<int> formats;
  };
  // Sends every step, then waits once (libpq pipeline mode: one round trip for all). Stops at
  // the first failing step (the later ones are not run) and returns its error.
  Status Pipeline(const std::vector<Step>& steps, const std::string& what) {
    ASSENT_RETURN_IF_ERROR(Ensure());
    if (PQenterPipelineMode(conn_) != 1) {
      return MakeError(ErrorCode::kInternal, what + ": cannot enter pipeline mode");
    }
    bool sent = true;
    for (const auto& st : steps) {
      std::vector<const char*> ptrs;
      std::vector<int> lengths;
      for (const auto& v : st.values) {
        ptrs.push_back(v.data());
        lengths.push_back(static_cast<int>(v.size()));
      }
      if (PQsendQueryParams(conn_, st.sql.c_str(), static_cast<int>(st.values.size()), nullptr,
                            ptrs.data(), lengths.data(), st.formats.data(), 0) != 1) {
        sent = false;
        break;
      }
    }
    Status result = OkStatus();
    const bool synced = sent && PQpipelineSync(conn_) == 1;
    if (synced && g_fault.exchange(0) == 1) {  // tests: the connection is lost, COMMIT sent
      Drop();
      return MakeError(ErrorCode::kUnavailable, what + ": the PostgreSQL ledger is unavailable "
                                                       "(connection lost)");
    }
    if (!synced) {
      result = MakeError(ErrorCode::kUnavailable, what + ": the PostgreSQL ledger is unavailable (" +
                                                      std::string(PQerrorMessage(conn_)) + ")");
      Drop();  // half-sent: nothing about this connection can be trusted; the next use reconnects
      return result;
    } else {
      for (size_t i = 0; i < steps.size(); ++i) {
        PgResult r(PQgetResult(conn_));
        if (!r) {  // the connection broke
          result = MakeError(ErrorCode::kUnavailable, what + ": the PostgreSQL ledger is "
                                                             "unavailable (connection lost)");
          break;
        }
        while (PGresult* extra = PQgetResult(conn_)) PQclear(extra);  // end of this query
        if (PQresultStatus(r.get()) == PGRES_PIPELINE_ABORTED) continue;
        if (auto checked = Check(std::move(r), what); !checked && result) {
          result = std::unexpected(checked.error());
        }
      }
      if (!broken()) {
        while (PGresult* sync = PQgetResult(conn_)) {
          const bool done = PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
          PQclear(sync);
          if (done) break;
        }
      }
    }
    if (!broken() && PQexitPipelineMode(conn_) != 1) Drop();  // results left unread
    if (broken() && result) {
      result = MakeError(ErrorCode::kUnavailable, what + ": the PostgreSQL ledger is unavailable "
                                                         "(connection lost)");
    }
    return result;
  }

 private:
  Result<PgResult> Check(PgResult r, const std::string& what) {
    ExecStatusType s = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
    if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) return r;
    std::string msg = r ? PQresultErrorMessage(r.get()) : PQerrorMessage(conn_);
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    const char* state = r ? PQresultErrorField(r.get(), PG_DIAG_SQLSTATE) : nullptr;
    std::string code = state ? state : "";
    if (broken() || code.rfind("08", 0) == 0 || code == "57P01" || code == "57P02" ||
        code == "57P03" || code.rfind("53", 0) == 0) {
      return MakeError(ErrorCode::kUnavailable, what + ": the PostgreSQL ledger is unavailable (" +
                                                    msg + ")");
    }
    if (code == "23505") return MakeError(ErrorCode::kAlreadyExists, what + ": " + msg);
    if (code == "40001" || code == "40P01") return MakeError(ErrorCode::kUnavailable, what + ": " + msg);
    return MakeError(ErrorCode::kInternal, what + ": " + msg);
  }

  std::string url_;
  PGconn* conn_ = nullptr;
};

// A text[] literal: every element double-quoted, with \ and " escaped.
inline std::string TextArray(std::span<const std::string> items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ',';
    out += '"';
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

inline uint32_t BigEndian32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

inline uint64_t BigEndian64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

// Rows for several tables, sent as few statements as fit: data-modifying CTEs chain the
// INSERTs of one batch into a single statement (one round trip), up to 30,000 parameters.
class MultiInsert {
 public:
  struct Param {
    std::string value;
    int format = 0;        // 0 text, 1 binary
    const char* cast = "";  // e.g. "::bigint"
    bool null = false;
  };
  static Param Null() { return Param{"", 0, "", true}; }

  void Row(const std::string& table, std::vector<Param> params) {
    size_t needed = 0;
    for (const auto& p : params) needed += !p.null;
    if (values_.size() + needed > kMaxParams) pending_.push_back(Take());
    auto& rows = tables_[table];
    std::string row = "(";
    for (size_t i = 0; i < params.size(); ++i) {
      if (i) row += ',';
      if (params[i].null) {
        row += "NULL";
        continue;
      }
      values_.push_back(std::move(params[i].value));
      formats_.push_back(params[i].format);
      row += "$" + std::to_string(values_.size()) + params[i].cast;
    }
    rows.push_back(row + ")");
  }

  // The statements, each one round trip's worth (usually one).
  std::vector<Connection::Step> Statements() {
    if (!tables_.empty()) pending_.push_back(Take());
    std::vector<Connection::Step> out;
    for (auto& st : pending_) out.push_back({st.sql, std::move(st.values), std::move(st.formats)});
    pending_.clear();
    return out;
  }

 private:
  static constexpr size_t kMaxParams = 30000;
  struct Statement {
    std::string sql;
    std::vector<std::string> values;
    std::vector<int> formats;
  };
  Statement Take() {
    Statement st;
    std::vector<std::string> parts;
    for (const auto& [table, rows] : tables_) {
      std::string part = "INSERT INTO " + table + " VALUES ";
      for (size_t i = 0; i < rows.size(); ++i) part += (i ? "," : "") + rows[i];
      parts.push_back(std::move(part));
    }
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      st.sql += (i ? ", w" : "WITH w") + std::to_string(i) + " AS (" + parts[i] + ") ";
    }
    st.sql += parts.back();
    st.values = std::move(values_);
    st.formats = std::move(formats_);
    tables_.clear();
    values_.clear();
    formats_.clear();
    return st;
  }
  std::map<std::string, std::vector<std::string>> tables_;
  std::vector<std::string> values_;
  std::vector<int> formats_;
  std::vector<Statement> pending_;
};

}  // namespace assent::internal::pg

#endif  // ASSENT_LEDGER_POSTGRES_PG_CONNECTION_H_
