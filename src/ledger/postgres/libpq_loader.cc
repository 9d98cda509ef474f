// libpq, loaded the first time a PostgreSQL ledger is used rather than at every start of the
// program: the functions the store calls are defined here and forward to the library once
// dlopen has found it. A program that never opens a postgres:// ledger — every `assent check`,
// `assent filter` on the embedded ledger — no longer loads it and the libraries it brings
// (Kerberos, LDAP, SASL, TLS…), about 4 ms of each start. Where libpq cannot be loaded, a
// connection fails with a message saying so; nothing else is reached without a connection.
#include <dlfcn.h>
#include <libpq-fe.h>

#include <string>

namespace {

void* Library() {
  static void* const lib = ::dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL);
  return lib;
}

template <class F>
F Find(const char* name) {
  void* lib = Library();
  return lib ? reinterpret_cast<F>(::dlsym(lib, name)) : nullptr;
}

const char* Missing() {
  static const std::string why = [] {
    Library();
    const char* e = ::dlerror();
    return std::string("cannot load libpq (libpq.so.5; the install script installs it)") +
           (e ? std::string(": ") + e : std::string()) + "\n";
  }();
  return why.c_str();
}

}  // namespace

// Each: the library's function, found once; `otherwise` when it could not be.
#define ASSENT_PQ_FORWARD(ret, name, params, args, otherwise)       \
  extern "C" ret name params {                                       \
    static const auto f = Find<decltype(&name)>(#name);              \
    if (!f) return otherwise;                                        \
    return f args;                                                   \
  }

ASSENT_PQ_FORWARD(PGconn*, PQconnectdb, (const char* conninfo), (conninfo), nullptr)
ASSENT_PQ_FORWARD(ConnStatusType, PQstatus, (const PGconn* conn), (conn), CONNECTION_BAD)
ASSENT_PQ_FORWARD(char*, PQerrorMessage, (const PGconn* conn), (conn), const_cast<char*>(Missing()))
ASSENT_PQ_FORWARD(PQconninfoOption*, PQconninfoParse, (const char* conninfo, char** errmsg),
                  (conninfo, errmsg), nullptr)
ASSENT_PQ_FORWARD(int, PQconsumeInput, (PGconn* conn), (conn), 0)
ASSENT_PQ_FORWARD(int, PQenterPipelineMode, (PGconn* conn), (conn), 0)
ASSENT_PQ_FORWARD(int, PQexitPipelineMode, (PGconn* conn), (conn), 0)
ASSENT_PQ_FORWARD(int, PQpipelineSync, (PGconn* conn), (conn), 0)
ASSENT_PQ_FORWARD(PGresult*, PQexec, (PGconn* conn, const char* query), (conn, query), nullptr)
ASSENT_PQ_FORWARD(PGresult*, PQexecParams,
                  (PGconn* conn, const char* command, int nParams, const Oid* paramTypes,
                   const char* const* paramValues, const int* paramLengths, const int* paramFormats,
                   int resultFormat),
                  (conn, command, nParams, paramTypes, paramValues, paramLengths, paramFormats,
                   resultFormat),
                  nullptr)
ASSENT_PQ_FORWARD(int, PQsendQueryParams,
                  (PGconn* conn, const char* command, int nParams, const Oid* paramTypes,
                   const char* const* paramValues, const int* paramLengths, const int* paramFormats,
                   int resultFormat),
                  (conn, command, nParams, paramTypes, paramValues, paramLengths, paramFormats,
                   resultFormat),
                  0)
ASSENT_PQ_FORWARD(PGresult*, PQgetResult, (PGconn* conn), (conn), nullptr)
ASSENT_PQ_FORWARD(ExecStatusType, PQresultStatus, (const PGresult* res), (res), PGRES_FATAL_ERROR)
ASSENT_PQ_FORWARD(char*, PQresultErrorMessage, (const PGresult* res), (res),
                  const_cast<char*>(Missing()))
ASSENT_PQ_FORWARD(char*, PQresultErrorField, (const PGresult* res, int fieldcode), (res, fieldcode),
                  nullptr)
ASSENT_PQ_FORWARD(int, PQntuples, (const PGresult* res), (res), 0)
ASSENT_PQ_FORWARD(char*, PQgetvalue, (const PGresult* res, int tup_num, int field_num),
                  (res, tup_num, field_num), nullptr)
ASSENT_PQ_FORWARD(int, PQgetlength, (const PGresult* res, int tup_num, int field_num),
                  (res, tup_num, field_num), 0)
ASSENT_PQ_FORWARD(PGnotify*, PQnotifies, (PGconn* conn), (conn), nullptr)
ASSENT_PQ_FORWARD(int, PQsocket, (const PGconn* conn), (conn), -1)
ASSENT_PQ_FORWARD(PQnoticeProcessor, PQsetNoticeProcessor,
                  (PGconn* conn, PQnoticeProcessor proc, void* arg), (conn, proc, arg), nullptr)

// The functions that return nothing.
#define ASSENT_PQ_FORWARD_VOID(name, params, args)                   \
  extern "C" void name params {                                      \
    static const auto f = Find<decltype(&name)>(#name);              \
    if (f) f args;                                                   \
  }

ASSENT_PQ_FORWARD_VOID(PQclear, (PGresult* res), (res))
ASSENT_PQ_FORWARD_VOID(PQfinish, (PGconn* conn), (conn))
ASSENT_PQ_FORWARD_VOID(PQconninfoFree, (PQconninfoOption* connOptions), (connOptions))
ASSENT_PQ_FORWARD_VOID(PQfreemem, (void* ptr), (ptr))
