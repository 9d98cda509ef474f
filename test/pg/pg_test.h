// For tests that need PostgreSQL: the throwaway cluster CTest starts (test/pg/cluster.sh, the
// `pg` fixture) and a fresh database in it per test.
#ifndef ASSENT_TEST_PG_PG_TEST_H_
#define ASSENT_TEST_PG_PG_TEST_H_

#include <libpq-fe.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <string>

namespace assent::testing_pg {

// The cluster's URL, or "" when the tests run outside CTest's `pg` fixture.
inline std::string ClusterUrl() {
  const char* dir = std::getenv("ASSENT_TEST_PG_DIR");
  if (!dir) return "";
  std::ifstream in(std::string(dir) + "/url");
  std::string url;
  std::getline(in, url);
  return url;
}

// A new, empty database in the cluster; its URL ("" with `*error` set when that fails).
inline std::string FreshDatabase(std::string* error) {
  static std::atomic<int> counter{0};
  const std::string url = ClusterUrl();
  if (url.empty()) {
    *error = "no PostgreSQL cluster: run through ctest (the pg fixture starts one), or set "
             "ASSENT_TEST_PG_DIR to a directory made by test/pg/cluster.sh start DIR";
    return "";
  }
  const std::string name =
      "assent_t" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
  PGconn* c = PQconnectdb(url.c_str());
  if (PQstatus(c) != CONNECTION_OK) {
    *error = std::string("cannot connect to ") + url + ": " + PQerrorMessage(c);
    PQfinish(c);
    return "";
  }
  bool ok = true;
  for (const std::string& sql : {"DROP DATABASE IF EXISTS " + name, "CREATE DATABASE " + name}) {
    PGresult* r = PQexec(c, sql.c_str());
    if (ok && PQresultStatus(r) != PGRES_COMMAND_OK) {
      ok = false;
      *error = PQresultErrorMessage(r);
    }
    PQclear(r);
  }
  PQfinish(c);
  if (!ok) return "";
  return url.substr(0, url.rfind('/') + 1) + name;
}

}  // namespace assent::testing_pg

#endif  // ASSENT_TEST_PG_PG_TEST_H_
