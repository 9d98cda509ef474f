// The HTTP API end to end: the real `assent serve` binary on port 0 with a temporary data
// directory, driven by a real HTTP client (libcurl) and, for malformed HTTP, a raw socket.
#include <arpa/inet.h>
#include <curl/curl.h>
#include <sqlite3.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <random>
#include <regex>
#include <set>
#include <string>
#include <thread>

#include <fstream>
#include <sstream>

#include "assent/time.h"
#include "common/json_writer.h"
#include "common/sha256.h"
#include "server/api.h"

#include "server_harness.h"

namespace {

using namespace assent_test;
namespace fs = std::filesystem;

const std::string kDecision =
    R"({"category":"content.chat","purpose":"ai_training.first_party","subjects":["u1"]})";

// Example requests per route that succeed for an allowed role.

std::vector<Example> Examples() {
  return {
      {"GET", "/healthz", ""},
      {"GET", "/readyz", ""},
      {"GET", "/metrics", ""},
      {"GET", "/openapi.json", ""},
      {"POST", "/v1/decisions", kDecision},
      {"POST", "/v1/decisions:batch", "{\"items\":[" + kDecision + "," + kDecision + "]}"},
      {"GET", "/v1/terms", ""},
      {"POST", "/v1/terms", ""},  // body filled by the test (the example YAML)
      {"GET", "/v1/terms/2023-08-07", ""},
      {"GET", "/v1/terms/2023-08-07/diff/2023-08-11", ""},
      {"GET", "/v1/changes?after=0&follow=false", ""},
      {"GET", "/v1/stale?rule=meeting-quality-review", ""},
      {"GET", "/v1/subjects/u1/consents", ""},
      {"POST", "/v1/subjects/u1/consents",
       R"({"rule":"service-generated-for-ai-training","action":"withdraw"})"},
      {"GET", "/v1/subjects/u1/history", ""},
      {"GET", "/v1/subjects/u1/receipts/RECEIPTSUBJECT", ""},
      {"DELETE", "/v1/subjects/DOOMEDSUBJECT", ""},  // a subject with an event, made for it
      {"DELETE", "/v1/accounts/DOOMEDACCOUNT", ""},
      {"GET", "/v1/accounts/a1/consents", ""},
      {"POST", "/v1/accounts/a1/consents",
       R"({"rule":"meeting-quality-review","action":"withdraw"})"},
      {"GET", "/v1/accounts/a1/history", ""},
      {"GET", "/v1/accounts/a1/receipts/RECEIPTACCOUNT", ""},
      {"POST", "/v1/sessions", R"({"subject":"u1"})"},
      {"GET", "LINK", ""},  // a fresh one-time link
      {"GET", "/v1/session", ""},  // sessions only
      {"POST", "/v1/session/logout", "{}"},  // sessions only
      {"POST", "/v1/session/gpc", "{}"},  // sessions only
      {"GET", "/v1/ledger?since=0", ""},
      {"GET", "/v1/datasets", ""},
      {"POST", "/v1/datasets", "NEWDATASET"},
      {"GET", "/v1/datasets/DATASET", ""},
      {"POST", "/v1/models", "NEWMODEL"},
      {"GET", "/v1/impact?subject=u1", ""},
      {"GET", "/v1/subjects/u1/usage", ""},
      {"GET", "/v1/keys", ""},
      {"POST", "/v1/keys", "NEWKEY"},  // a fresh name each call
      {"POST", "/v1/keys/KEYNAME/revoke", ""},  // a key created for the purpose
      {"GET", "/settings", ""},
      {"GET", "/admin", ""},
      {"GET", "/assets/settings.js", ""},
      {"GET", "/v1/audit/key", ""},
      {"GET", "/v1/audit/checkpoint", ""},
      {"GET", "/v1/audit/proof/inclusion?position=1&size=2", ""},
      {"GET", "/v1/audit/proof/consistency?from=1&to=2", ""},
  };
}

std::string ExampleYaml() {
  std::ifstream in(std::string(ASSENT_SOURCE_DIR) +
                   "/examples/terms/example-meetings-2023-08-11.yaml");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(ServerTest, EveryRouteAnswersAndOpenApiListsExactlyTheRoutes) {
  Server s;
  const auto& routes = assent::server::Api::Routes();
  auto examples = Examples();
  ASSERT_EQ(examples.size(), routes.size()) << "every route needs an example";
  for (size_t i = 0; i < routes.size(); ++i) {
    auto ex = s.Prepare(examples[i]);
    ASSERT_EQ(ex.method, routes[i].method);
    std::string body = ex.path == "/v1/terms" && ex.method == "POST" ? ExampleYaml() : ex.body;
    std::string role = routes[i].roles & assent::server::kService  ? "service"
                       : routes[i].roles & assent::server::kPortal ? "portal"
                                                                   : "operator";
    Response r;
    if (ex.path == "LINK") {
      r = s.Call("GET", s.MintLink(), "", "");
      EXPECT_EQ(r.status, 303) << r.body;
      continue;
    }
    if (ex.path.starts_with("/v1/session/") || ex.path == "/v1/session") {
      auto [cookie, csrf] = s.SignIn(R"({"subject":"u1"})");
      r = s.Call(ex.method, ex.path, ex.body, "", {cookie, "X-CSRF-Token: " + csrf});
    } else {
      r = s.Call(ex.method, ex.path, body, role);
    }
    EXPECT_GE(r.status, 200) << ex.method << " " << ex.path;
    EXPECT_LT(r.status, 300) << ex.method << " " << ex.path << " " << r.body;
  }
  // The OpenAPI document served lists the same method+path pairs as the route table.
  Response doc = s.Call("GET", "/openapi.json", "", "");
  ASSERT_EQ(doc.status, 200);
  EXPECT_NE(doc.body.find("\"openapi\":\"3.1.0\""), std::string::npos);
  std::set<std::string> listed, table;
  for (const auto& r : routes) table.insert(r.method + " " + r.pattern);
  // Walk the paths object: each path key followed by its method keys.
  std::regex key_re("\"(/[^\"]*)\":\\{\"(get|post|delete)\"|\\}\\},\"(get|post|delete)\"");
  std::string current;
  for (auto it = std::sregex_iterator(doc.body.begin(), doc.body.end(), key_re);
       it != std::sregex_iterator(); ++it) {
    std::string method = (*it)[2].matched ? (*it)[2].str() : (*it)[3].str();
    if ((*it)[1].matched) current = (*it)[1];
    std::transform(method.begin(), method.end(), method.begin(), ::toupper);
    listed.insert(method + " " + current);
  }
  EXPECT_EQ(listed, table);
}

TEST(ServerTest, RoleMatrix) {
  Server s;
  const auto& routes = assent::server::Api::Routes();
  auto examples = Examples();
  for (size_t i = 0; i < routes.size(); ++i) {
    if (examples[i].path == "LINK") continue;  // public; covered by the session tests
    for (std::string role : {"", "service", "operator", "auditor", "portal", "forged"}) {
      auto ex = s.Prepare(examples[i]);
      std::string body = ex.path == "/v1/terms" && ex.method == "POST" ? ExampleYaml() : ex.body;
      Response r;
      if (role == "forged") {
        r = s.Call(ex.method, ex.path, body, "", {"Authorization: Bearer assent_00forged"});
      } else {
        r = s.Call(ex.method, ex.path, body, role);
      }
      unsigned bit = 0;
      if (role == "service") bit = assent::server::kService;
      if (role == "operator") bit = assent::server::kOperator;
      if (role == "auditor") bit = assent::server::kAuditor;
      if (role == "portal") bit = assent::server::kPortal;
      SCOPED_TRACE(ex.method + " " + ex.path + " as '" + role + "': " + r.body);
      if (routes[i].roles == assent::server::kPublic) {
        EXPECT_LT(r.status, 300);
      } else if (bit == 0) {
        EXPECT_EQ(r.status, 401);
      } else if (!(routes[i].roles & bit)) {
        EXPECT_EQ(r.status, 403);
      } else {
        EXPECT_LT(r.status, 300);
      }
    }
  }
}

TEST(ServerTest, SessionsActOnlyForTheirOwnParty) {
  Server s;
  auto [cookie, csrf] = s.SignIn(R"({"subject":"u1"})");
  ASSERT_FALSE(cookie.empty());
  ASSERT_FALSE(csrf.empty());
  const std::string grant =
      R"({"rule":"service-generated-for-ai-training","action":"grant"})";
  EXPECT_EQ(s.Call("GET", "/v1/subjects/u1/consents", "", "", {cookie}).status, 200);
  EXPECT_EQ(s.Call("GET", "/v1/subjects/u2/consents", "", "", {cookie}).status, 403);
  EXPECT_EQ(s.Call("GET", "/v1/accounts/a1/consents", "", "", {cookie}).status, 403);
  EXPECT_EQ(s.Call("POST", "/v1/decisions", kDecision, "", {cookie}).status, 403);
  // A change without the CSRF token is refused; with it, the person's own grant is recorded.
  EXPECT_EQ(s.Call("POST", "/v1/subjects/u1/consents", grant, "", {cookie}).status, 403);
  Response r = s.Call("POST", "/v1/subjects/u1/consents", grant, "",
                      {cookie, "X-CSRF-Token: " + csrf});
  EXPECT_EQ(r.status, 201) << r.body;
  EXPECT_NE(r.body.find("\"method\":\"settings\""), std::string::npos) << r.body;
  EXPECT_EQ(s.Call("POST", "/v1/subjects/u2/consents", grant, "",
                   {cookie, "X-CSRF-Token: " + csrf}).status, 403);
  // A link works once.
  std::string link = s.MintLink();
  EXPECT_EQ(s.Call("GET", link, "", "").status, 303);
  EXPECT_EQ(s.Call("GET", link, "", "").status, 404);
  // A forged cookie is nobody.
  EXPECT_EQ(s.Call("GET", "/v1/subjects/u1/consents", "", "",
                   {"Cookie: assent_session=00ff"}).status, 401);
  // Signing out ends the session: its cookie no longer works.
  EXPECT_EQ(s.Call("POST", "/v1/session/logout", "{}", "", {cookie}).status, 403);  // CSRF
  Response out = s.Call("POST", "/v1/session/logout", "{}", "", {cookie, "X-CSRF-Token: " + csrf});
  EXPECT_EQ(out.status, 200) << out.body;
  EXPECT_NE(out.headers.find("Max-Age=0"), std::string::npos) << out.headers;
  EXPECT_EQ(s.Call("GET", "/v1/subjects/u1/consents", "", "", {cookie}).status, 401);
}

TEST(ServerTest, TheAccountAdminsLockWinsOverAPersonsGrant) {
  Server s;
  auto [admin, admin_csrf] = s.SignIn(R"({"account":"a1"})");
  auto [person, person_csrf] = s.SignIn(R"({"subject":"u1"})");
  const std::string rule = R"({"rule":"meeting-quality-review","action":")";
  ASSERT_EQ(s.Call("POST", "/v1/subjects/u1/consents", rule + "grant\"}", "",
                   {person, "X-CSRF-Token: " + person_csrf}).status, 201);
  Response w = s.Call("POST", "/v1/accounts/a1/consents", rule + "withdraw\"}", "",
                      {admin, "X-CSRF-Token: " + admin_csrf});
  ASSERT_EQ(w.status, 201) << w.body;
  EXPECT_NE(w.body.find("\"method\":\"admin\""), std::string::npos);
  Response d = s.Call("POST", "/v1/decisions",
                      R"({"category":"content.audio","purpose":"product_development.quality_review","account":"a1","subjects":["u1"]})");
  EXPECT_NE(d.body.find("\"reason\":\"withdrawn\""), std::string::npos) << d.body;
  EXPECT_NE(d.body.find("{\"account\":\"a1\",\"state\":\"withdrawn\""), std::string::npos);
}

TEST(ServerTest, PagesCarryAStrictContentSecurityPolicy) {
  Server s;
  for (const char* path : {"/settings", "/admin", "/assets/app.css", "/assets/admin.js"}) {
    Response r = s.Call("GET", path, "", "");
    EXPECT_EQ(r.status, 200) << path;
    EXPECT_NE(r.headers.find("Content-Security-Policy: default-src 'none'; script-src 'self'"),
              std::string::npos) << path;
    EXPECT_NE(r.headers.find("X-Content-Type-Options: nosniff"), std::string::npos);
    EXPECT_EQ(r.body.find("http://"), std::string::npos) << path << " loads nothing external";
    EXPECT_EQ(r.body.find("https://"), std::string::npos) << path << " loads nothing external";
  }
  EXPECT_EQ(s.Call("GET", "/assets/settings.html", "", "").status, 404);
  EXPECT_EQ(s.Call("GET", "/assets/nope.js", "", "").status, 404);
}

TEST(ServerTest, GlobalPrivacyControlRecordsObjectionsNeverGrants) {
  Server s;
  auto [cookie, csrf] = s.SignIn(R"({"subject":"u9"})");
  // A GET reports the signal and writes nothing (a GET never changes the ledger).
  Response r = s.Call("GET", "/v1/session", "", "", {cookie, "Sec-GPC: 1"});
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("\"gpc\":{\"signal\":true}"), std::string::npos) << r.body;
  Response before = s.Call("GET", "/v1/subjects/u9/history", "", "service");
  EXPECT_EQ(before.body.find("\"method\":\"gpc\""), std::string::npos) << before.body;
  // Recording it is a POST with the session's CSRF token.
  EXPECT_EQ(s.Call("POST", "/v1/session/gpc", "{}", "", {cookie, "Sec-GPC: 1"}).status, 403);
  Response g = s.Call("POST", "/v1/session/gpc", "{}", "",
                      {cookie, "Sec-GPC: 1", "X-CSRF-Token: " + csrf});
  ASSERT_EQ(g.status, 200) << g.body;
  EXPECT_NE(g.body.find("\"honoured\":true"), std::string::npos) << g.body;
  EXPECT_NE(g.body.find("service-generated-for-marketing"), std::string::npos) << g.body;
  Response h = s.Call("GET", "/v1/subjects/u9/history", "", "service");
  EXPECT_NE(h.body.find("\"method\":\"gpc\""), std::string::npos) << h.body;
  EXPECT_EQ(h.body.find("\"action\":\"grant\""), std::string::npos) << h.body;
  Response d = s.Call("POST", "/v1/decisions",
                      R"({"category":"service_generated.product_usage","purpose":"marketing","subjects":["u9"]})");
  EXPECT_NE(d.body.find("\"reason\":\"objected\""), std::string::npos) << d.body;
  // Sending it again records nothing new.
  Response again = s.Call("POST", "/v1/session/gpc", "{}", "",
                          {cookie, "Sec-GPC: 1", "X-CSRF-Token: " + csrf});
  EXPECT_NE(again.body.find("\"recorded\":[]"), std::string::npos) << again.body;
}

TEST(ServerTest, ReceiptsOverHttpVerifyOfflineWithThePublishedKey) {
  Server s;
  Response w = s.Call("POST", "/v1/subjects/u5/consents",
                      R"({"rule":"service-generated-for-ai-training","action":"withdraw"})");
  ASSERT_EQ(w.status, 201) << w.body;
  EXPECT_NE(w.body.find("\"inclusion_proof\""), std::string::npos) << w.body;
  Response key = s.Call("GET", "/v1/audit/key", "", "");
  ASSERT_EQ(key.status, 200);
  std::string dir = fs::temp_directory_path() / ("assent-receipt-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir + "/receipt.json") << w.body;
  std::string k = key.body.substr(0, key.body.find('\n'));
  std::string cmd = std::string("'") + ASSENT_BINARY + "' audit verify-receipt " + dir +
                    "/receipt.json --key '" + k + "' > /dev/null 2>&1";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << "the receipt verifies offline";
  std::string forged = w.body;
  forged.replace(forged.find("\"u5\""), 4, "\"u6\"");
  std::ofstream(dir + "/forged.json") << forged;
  cmd = std::string("'") + ASSENT_BINARY + "' audit verify-receipt " + dir +
        "/forged.json --key '" + k + "' > /dev/null 2>&1";
  EXPECT_NE(std::system(cmd.c_str()), 0) << "a receipt for someone else does not";
  fs::remove_all(dir);
  // The proof routes answer, and refuse sizes past the log.
  Response c = s.Call("GET", "/v1/audit/checkpoint", "", "");
  EXPECT_NE(c.body.find("\n\n\xE2\x80\x94 assent-ledger-"), std::string::npos) << c.body;
  EXPECT_EQ(s.Call("GET", "/v1/audit/proof/inclusion?position=1&size=99999", "", "").status, 422);
  EXPECT_EQ(s.Call("GET", "/v1/audit/proof/consistency?from=a&to=2", "", "").status, 400);
}

// The single integer a query on DIR/ledger.db answers.
int CountRows(const std::string& dir, const std::string& sql) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2((dir + "/ledger.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    return -1;
  }
  sqlite3_stmt* st = nullptr;
  int n = -1;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW) {
    n = sqlite3_column_int(st, 0);
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return n;
}

TEST(ServerTest, TheLogIsAuditedAtStartUpAndReadyzSaysSo) {
  const std::string dir =
      fs::temp_directory_path() / ("assent-startup-audit-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  {
    Server s(dir);
    Response ready = s.Call("GET", "/readyz", "", "");
    EXPECT_EQ(ready.status, 200);
    EXPECT_NE(ready.body.find("\"audit\":\"passed\""), std::string::npos) << ready.body;
    ASSERT_EQ(s.Call("POST", "/v1/subjects/u1/consents",
                     R"({"rule":"service-generated-for-ai-training","action":"withdraw"})")
                  .status,
              201);
    EXPECT_EQ(s.Terminate(), 0);  // signs a checkpoint over everything on the way out
  }
  // Another signing key: the ledger's key is fixed by its first checkpoint, so the node refuses
  // to start, naming both keys, and signs nothing.
  fs::copy_file(dir + "/audit.key", dir + "/audit.key.real");
  ASSERT_TRUE(fs::remove(dir + "/audit.key"));
  const int checkpoints = CountRows(dir, "SELECT count(*) FROM entries WHERE kind = 'checkpoint'");
  for (const char* mode : {"", " --audit-in-background"}) {
    std::string cmd = std::string("cd '") + ASSENT_SOURCE_DIR + "' && '" + ASSENT_BINARY +
                      "' serve --data '" + dir + "' --listen 127.0.0.1:0 --quiet" + mode + " > '" +
                      dir + "/serve.out' 2>&1";
    int status = std::system(cmd.c_str());
    EXPECT_EQ(WIFEXITED(status) ? WEXITSTATUS(status) : -1, 1) << "the server refuses to serve";
    std::stringstream out;
    out << std::ifstream(dir + "/serve.out").rdbuf();
    EXPECT_NE(out.str().find("fixed by its first checkpoint"), std::string::npos) << out.str();
    EXPECT_NE(out.str().find("this node's key is"), std::string::npos) << out.str();
    EXPECT_EQ(CountRows(dir, "SELECT count(*) FROM entries WHERE kind = 'checkpoint'"), checkpoints);
    fs::remove(dir + "/LOCK");
  }
  // The right key, but an entry rewritten with a matching hash: replay accepts it, the audit
  // does not. In the background the node serves decisions, refuses every write (503) and
  // signs no checkpoint, even at shutdown.
  fs::rename(dir + "/audit.key.real", dir + "/audit.key");
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir + "/ledger.db").c_str(), &db), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT position, body FROM entries WHERE kind = 'consent' "
                                     "ORDER BY position LIMIT 1", -1, &st, nullptr), SQLITE_OK);
    ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
    const int64_t position = sqlite3_column_int64(st, 0);
    std::string body(reinterpret_cast<const char*>(sqlite3_column_blob(st, 1)),
                     static_cast<size_t>(sqlite3_column_bytes(st, 1)));
    sqlite3_finalize(st);
    const size_t at = body.find("\"withdraw\"");
    ASSERT_NE(at, std::string::npos) << body;
    body.replace(at, 10, "\"grant\"");
    const auto digest = assent::Sha256(body);
    ASSERT_EQ(sqlite3_exec(db, "DROP TRIGGER IF EXISTS entries_no_update", nullptr, nullptr, nullptr), SQLITE_OK);
    ASSERT_EQ(sqlite3_prepare_v2(db, "UPDATE entries SET body = ?, hash = ? WHERE position = ?", -1,
                                 &st, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    sqlite3_bind_blob(st, 1, body.data(), static_cast<int>(body.size()), SQLITE_TRANSIENT);
    sqlite3_bind_blob(st, 2, digest.data(), static_cast<int>(digest.size()), SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, position);
    ASSERT_EQ(sqlite3_step(st), SQLITE_DONE) << sqlite3_errmsg(db);
    sqlite3_finalize(st);
    sqlite3_close(db);
  }
  {
    Server s(dir, {"--audit-in-background"});
    Response ready;
    for (int i = 0; i < 200; ++i) {
      ready = s.Call("GET", "/readyz", "", "");
      if (ready.body.find("\"verifying\"") == std::string::npos) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_EQ(ready.status, 503) << ready.body;
    EXPECT_NE(ready.body.find("\"audit\":\"failed\""), std::string::npos) << ready.body;
    EXPECT_EQ(s.Call("GET", "/healthz", "", "").status, 200);
    Response w = s.Call("POST", "/v1/subjects/u2/consents",
                        R"({"rule":"service-generated-for-ai-training","action":"withdraw"})");
    EXPECT_EQ(w.status, 503) << w.body;
    EXPECT_NE(w.body.find("audit"), std::string::npos) << w.body;
    EXPECT_EQ(s.Call("POST", "/v1/decisions", kDecision).status, 200);
    EXPECT_EQ(s.Terminate(), 0);
  }
  EXPECT_EQ(CountRows(dir, "SELECT count(*) FROM entries WHERE kind = 'checkpoint'"), checkpoints);
  fs::remove_all(dir);
}

TEST(ServerTest, NobodyGrantsOnAnothersBehalf) {
  Server s;
  for (std::string role : {"service", "operator"}) {
    Response r = s.Call("POST", "/v1/subjects/u1/consents",
                        R"({"rule":"service-generated-for-ai-training","action":"grant"})", role);
    EXPECT_EQ(r.status, 403) << r.body;
    EXPECT_EQ(r.content_type, "application/problem+json");
  }
}

// The request's headers decide before its body is read: an unauthenticated upload is answered
// 401 at once (the server reads none of it), obs-fold is 400, an unimplemented transfer coding
// 501, HEAD gets a GET's headers without the body; invalid UTF-8 in a path is never echoed raw.
TEST(ServerTest, HostileRequestsAreAnsweredFromTheHeaders) {
  Server s;
  const uint64_t before = s.Position();
  std::string unauth = s.Raw("POST /v1/decisions:batch HTTP/1.1\r\nHost: x\r\n"
                             "Content-Type: application/x-ndjson\r\nContent-Length: 500000000\r\n\r\n"
                             "{}\n");
  EXPECT_TRUE(unauth.starts_with("HTTP/1.1 401")) << unauth;
  std::string forbidden = s.Raw("POST /v1/terms HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                                s.Key("auditor") + "\r\nContent-Length: 400000000\r\n\r\nterms");
  EXPECT_TRUE(forbidden.starts_with("HTTP/1.1 403")) << forbidden;
  std::string fold = s.Raw("GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n");
  EXPECT_TRUE(fold.starts_with("HTTP/1.1 400")) << fold;
  EXPECT_NE(fold.find("obs-fold"), std::string::npos) << fold;
  std::string te = s.Raw("POST /v1/decisions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                         s.Key("service") +
                         "\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n");
  EXPECT_TRUE(te.starts_with("HTTP/1.1 501")) << te;
  std::string head = s.Raw("HEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_TRUE(head.starts_with("HTTP/1.1 200")) << head;
  EXPECT_NE(head.find("Content-Length: 15"), std::string::npos) << head;
  EXPECT_TRUE(head.ends_with("\r\n\r\n")) << head;
  Response bad = s.Call("GET", "/v1/subjects/%FF%FE/consents");
  EXPECT_TRUE(bad.body.find('\xff') == std::string::npos) << bad.body;
  // A service key may not mint sign-in links (it could then act as anyone): portal only.
  EXPECT_EQ(s.Call("POST", "/v1/sessions", R"({"subject":"u1"})", "service").status, 403);
  EXPECT_EQ(s.Position(), before);
  // A session's events name the key that minted its link, in the history and the receipt.
  auto [cookie, csrf] = s.SignIn(R"({"subject":"u7"})");
  Response g = s.Call("POST", "/v1/subjects/u7/consents",
                      R"({"rule":"service-generated-for-ai-training","action":"grant"})", "",
                      {cookie, "X-CSRF-Token: " + csrf});
  ASSERT_EQ(g.status, 201) << g.body;
  EXPECT_NE(g.body.find("\"actor\":\"session minted by key:demo-portal"), std::string::npos)
      << g.body;
  Response h = s.Call("GET", "/v1/subjects/u7/history");
  EXPECT_NE(h.body.find("session minted by key:demo-portal"), std::string::npos) << h.body;
  // A client clock an hour fast is refused; the server's own time is used when none is given.
  Response fast = s.Call("POST", "/v1/subjects/u7/consents",
                         R"({"rule":"service-generated-for-ai-training","action":"withdraw","at":")" +
                             assent::FormatTime(assent::SystemClock()() + 3600 * assent::kMicrosPerSecond) +
                             "\"}");
  EXPECT_EQ(fast.status, 422) << fast.body;
  // A person's session cannot backdate a grant into the past either (it would rewrite what
  // was allowed then).
  Response backdated = s.Call("POST", "/v1/subjects/u7/consents",
                              R"({"rule":"service-generated-for-ai-training","action":"grant","at":"2023-08-08T00:00:00Z"})",
                              "", {cookie, "X-CSRF-Token: " + csrf});
  EXPECT_EQ(backdated.status, 422) << backdated.body;
  // Backfilling terms is for the command line only.
  EXPECT_EQ(s.Call("POST", "/v1/terms?backfill=true", "terms: x", "operator").status, 422);
}

// An NDJSON batch is answered as it arrives: the answer to the first line comes back while the
// client has not sent the rest, so neither side ever holds the whole batch.
TEST(ServerTest, AnNdjsonBatchIsAnsweredLineByLineAsItArrives) {
  Server s;
  int fd = s.Connect();
  ASSERT_GE(fd, 0);
  auto send_all = [&](const std::string& bytes) {
    ASSERT_EQ(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL), static_cast<ssize_t>(bytes.size()));
  };
  auto chunk = [](const std::string& data) {
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", data.size());
    return std::string(size) + data + "\r\n";
  };
  auto read_until = [&](const std::string& needle) {
    return Server::ReadUntil(fd, needle, std::chrono::seconds(10));
  };
  send_all("POST /v1/decisions:batch HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
           s.Key("service") +
           "\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n" +
           chunk(kDecision + "\n"));
  std::string first = read_until("\"decision\":");
  EXPECT_TRUE(first.starts_with("HTTP/1.1 200")) << first;
  EXPECT_NE(first.find("\"decision\":"), std::string::npos) << first;  // before the rest is sent
  send_all(chunk(kDecision + "\n" + kDecision + "\n") + "0\r\n\r\n");
  std::string rest = first + read_until("\r\n0\r\n\r\n");
  size_t answers = 0;
  for (size_t at = 0; (at = rest.find("\"decision\":", at)) != std::string::npos; ++at) ++answers;
  EXPECT_EQ(answers, 3u) << rest;
  ::close(fd);
}

// CPU seconds the process has used (user + system), from /proc.
double CpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream fields(stat.substr(stat.rfind(')') + 2));
  std::string f;
  double ticks = 0;
  for (int i = 3; i <= 15 && fields >> f; ++i) {
    if (i == 14 || i == 15) ticks += std::stod(f);  // utime, stime
  }
  return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// Out of descriptors, accept fails at once (EMFILE): the server backs off instead of spinning
// a core, and serves again once descriptors are free.
TEST(ServerTest, OutOfDescriptorsTheServerBacksOffAndRecovers) {
  Server s("", {"--max-connections", "100000", "--idle-timeout", "3"}, 96);
  std::vector<int> fds;
  for (int i = 0; i < 150; ++i) {
    int fd = s.Connect();
    if (fd >= 0) fds.push_back(fd);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const double before = CpuSeconds(s.pid());
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  const double used = CpuSeconds(s.pid()) - before;
  EXPECT_LT(used, 0.5) << "the server spun on accept";
  for (int fd : fds) ::close(fd);
  Response r;
  for (int i = 0; i < 50 && r.status != 200; ++i) {
    r = s.Call("GET", "/healthz", "", "");
    if (r.status != 200) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_EQ(r.status, 200);
}

// At --max-connections, idle keep-alive connections are closed to make room for a new client.
TEST(ServerTest, AtTheConnectionCapIdleConnectionsGiveWay) {
  Server s("", {"--max-connections", "4", "--idle-timeout", "60"});
  std::vector<int> idle;
  for (int i = 0; i < 4; ++i) idle.push_back(s.Connect());
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const auto start = std::chrono::steady_clock::now();
  Response r = s.Call("GET", "/healthz", "", "");
  EXPECT_EQ(r.status, 200);
  // Far sooner than the 60 s idle timeout would have freed a slot.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
  int closed = 0;
  for (int fd : idle) {
    char c;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 1000) > 0 && ::recv(fd, &c, 1, 0) == 0) ++closed;
    ::close(fd);
  }
  EXPECT_GE(closed, 1);
}

TEST(ServerTest, MalformedRequestsGetProblemsAndChangeNothing) {
  Server s;
  const uint64_t before = s.Position();
  std::string deep(5000, '[');
  struct Case {
    std::string method, path, body;
    long status;
    std::vector<std::string> headers = {};
  } cases[] = {
      {"POST", "/v1/decisions", "", 400},
      {"POST", "/v1/decisions", "{", 400},
      {"POST", "/v1/decisions", R"({"category":"content.chat",)", 400},
      {"POST", "/v1/decisions", "[]", 400},
      {"POST", "/v1/decisions", "null", 400},
      {"POST", "/v1/decisions", "\"text\"", 400},
      {"POST", "/v1/decisions", deep, 400},
      {"POST", "/v1/decisions", "{\"category\":\"content\xff\",\"purpose\":\"x\"}", 400},
      {"POST", "/v1/decisions", R"({"category":1,"purpose":"service"})", 400},
      {"POST", "/v1/decisions", R"({"category":"content","purpose":["service"]})", 400},
      {"POST", "/v1/decisions", R"({"category":"content","purpose":"service","subjects":"u1"})", 400},
      {"POST", "/v1/decisions", R"({"category":"content","purpose":"service","subjects":[1]})", 400},
      {"POST", "/v1/decisions", R"({"purpose":"service"})", 400},
      {"POST", "/v1/decisions", R"({"category":"content"})", 400},
      {"POST", "/v1/decisions", R"({"category":"content","purpose":"service","subject":["u1"]})", 400},
      {"POST", "/v1/decisions", R"({"category":"content","purpose":"service","min_position":-1})", 400},
      {"POST", "/v1/decisions",
       R"({"category":"content","purpose":"service","min_position":1e400})", 400},
      {"POST", "/v1/decisions",
       R"({"category":"content","purpose":"service","min_position":123456789012345678901234567890})", 400},
      {"POST", "/v1/decisions", R"({"category":"content","purpose":"service","at":"yesterday"})", 422},
      {"POST", "/v1/decisions", R"({"category":"content.nope","purpose":"service"})", 422},
      {"POST", "/v1/decisions", R"({"category":"content","purpose":"nope"})", 422},
      {"POST", "/v1/decisions",
       R"({"category":"content","purpose":"service","at":"1999-01-01T00:00:00Z"})", 409},
      {"POST", "/v1/decisions:batch", R"({"items":{}})", 400},
      {"POST", "/v1/decisions:batch", R"({"items":[1]})", 400},
      {"POST", "/v1/decisions:batch", R"({"items":[{"category":"x"}]})", 400},
      {"POST", "/v1/decisions:batch", R"({"itemz":[]})", 400},
      {"POST", "/v1/subjects/u1/consents", "{}", 400},
      {"POST", "/v1/subjects/u1/consents", R"({"action":"maybe","rule":"x"})", 400},
      {"POST", "/v1/subjects/u1/consents", R"({"action":"withdraw"})", 400},
      {"POST", "/v1/subjects/u1/consents", R"({"action":"withdraw","rule":"no-such-rule"})", 422},
      {"POST", "/v1/subjects/u1/consents",
       R"({"action":"withdraw","categories":["content.nope"],"purposes":["marketing"]})", 422},
      {"POST", "/v1/subjects/u1/consents",
       R"({"action":"withdraw","rule":"service-generated-for-marketing","method":"import"})", 400},
      {"POST", "/v1/subjects/u1/consents",
       R"({"action":"withdraw","rule":"service-generated-for-marketing","at":"2020-01-01T00:00:00Z"})", 422},
      {"POST", "/v1/terms", "terms: [", 422},
      {"POST", "/v1/terms", "", 422},
      {"GET", "/v1/terms/2099-01-01", "", 404},
      {"GET", "/v1/terms/2023-08-07/diff/nope", "", 404},
      {"GET", "/v1/ledger?since=abc", "", 400},
      {"GET", "/v1/nothing-here", "", 404},
      {"DELETE", "/v1/decisions", "", 405},
      {"PUT", "/v1/terms", "", 405},
      // Hostile input: a time past what the ledger stores, or in the future; a key given
      // twice; an empty or blank id.
      {"POST", "/v1/subjects/u9/consents",
       R"({"rule":"service-generated-for-marketing","action":"withdraw","at":"9999-12-31T23:59:59-14:00"})", 422},
      {"POST", "/v1/subjects/u9/consents",
       R"({"rule":"service-generated-for-marketing","action":"withdraw","at":"9999-12-31T00:00:00Z"})", 422},
      {"POST", "/v1/subjects/u9/consents",
       R"({"rule":"service-generated-for-marketing","action":"withdraw","action":"grant"})", 400},
      {"POST", "/v1/decisions",
       R"({"category":"content","purpose":"service","subjects":["u1"],"subjects":[]})", 400},
      {"POST", "/v1/decisions",
       R"({"category":"service_generated.telemetry","purpose":"ai_training.first_party","subjects":[""]})", 422},
      {"POST", "/v1/decisions",
       R"({"category":"service_generated.telemetry","purpose":"ai_training.first_party","subjects":[" "]})", 422},
      {"POST", "/v1/subjects/%20/consents",
       R"({"rule":"service-generated-for-marketing","action":"withdraw"})", 422},
      {"GET", "/v1/subjects/%20%09/history", "", 422},
      // The method follows from the caller: a key never records a person's or admin's click.
      {"POST", "/v1/subjects/u1/consents",
       R"({"rule":"service-generated-for-marketing","action":"withdraw","method":"admin"})", 400},
      {"POST", "/v1/subjects/u1/consents",
       R"({"rule":"service-generated-for-marketing","action":"withdraw","method":"settings"})", 400},
      // A rule that asks nobody's choice: nothing to record.
      {"POST", "/v1/subjects/u1/consents", R"({"rule":"content-for-service","action":"withdraw"})", 422},
      {"POST", "/v1/subjects/u1/consents", R"({"rule":"no-content-training","action":"withdraw"})", 422},
  };
  for (const auto& c : cases) {
    std::string role = c.path == "/v1/terms" || c.path.starts_with("/v1/ledger") ? "operator"
                                                                                 : "service";
    Response r = s.Call(c.method, c.path, c.body, role, c.headers);
    EXPECT_EQ(r.status, c.status) << c.method << " " << c.path << " " << c.body.substr(0, 80)
                                  << " -> " << r.body;
    EXPECT_EQ(r.content_type, "application/problem+json") << c.path << " " << c.body.substr(0, 40);
    EXPECT_NE(r.body.find("\"type\":\"https://assent.dev/problems/"), std::string::npos);
  }
  // Too many items for a JSON batch.
  std::string many = "{\"items\":[";
  for (int i = 0; i < 10001; ++i) many += (i ? "," : "") + kDecision;
  many += "]}";
  EXPECT_EQ(s.Call("POST", "/v1/decisions:batch", many).status, 413);
  // An NDJSON batch may exceed the 8 MiB JSON body limit: 120,000 decisions (9.8 MB). (Beast
  // checks Content-Length while it parses the header; the server must widen the limit first.)
  std::string lines;
  for (int i = 0; i < 120000; ++i) lines += kDecision + "\n";
  ASSERT_GT(lines.size(), 8u * 1024 * 1024);
  Response nd = s.Call("POST", "/v1/decisions:batch", lines, "service",
                       {"Content-Type: application/x-ndjson"});
  EXPECT_EQ(nd.status, 200);
  EXPECT_EQ(std::count(nd.body.begin(), nd.body.end(), '\n'), 120000);
  EXPECT_EQ(nd.content_type, "application/x-ndjson");
  // A line that is not a request gets a problem line naming it; the stream goes on.
  Response mixed = s.Call("POST", "/v1/decisions:batch", "not json\n" + kDecision + "\n{\"x\":1}\n",
                          "service", {"Content-Type: application/x-ndjson"});
  EXPECT_EQ(mixed.status, 200);
  EXPECT_EQ(std::count(mixed.body.begin(), mixed.body.end(), '\n'), 3) << mixed.body;
  EXPECT_NE(mixed.body.find("line 1 is not a JSON object"), std::string::npos) << mixed.body;
  EXPECT_NE(mixed.body.find("\"decision\":"), std::string::npos) << mixed.body;
  EXPECT_NE(mixed.body.find("line 3: unknown field"), std::string::npos) << mixed.body;
  // A 10 MB body is refused by the limit, before it is parsed.
  std::string huge(10 * 1024 * 1024, 'x');
  Response big = s.Call("POST", "/v1/decisions", huge);
  EXPECT_EQ(big.status, 413) << big.body;
  // Oversized headers.
  Response headers = s.Call("GET", "/healthz", "", "", {"X-Big: " + std::string(20000, 'h')});
  EXPECT_EQ(headers.status, 431);
  // Not HTTP at all.
  std::string garbage = s.Raw("HELLO THERE\r\n\r\n");
  EXPECT_NE(garbage.find("400"), std::string::npos) << garbage;
  // The server is still up, and nothing was written.
  EXPECT_EQ(s.Call("GET", "/healthz", "", "").status, 200);
  EXPECT_EQ(s.Position(), before);
}

TEST(ServerTest, IdleConnectionsAreClosed) {
  Server s;
  auto start = std::chrono::steady_clock::now();
  std::string out = s.Raw("");  // connect and say nothing
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_TRUE(out.empty());
  EXPECT_LT(secs, 2.9) << "the idle connection was not closed by the 2 s idle timeout";
}

TEST(ServerTest, ABodyArrivingInSlowPartsIsServedAndAStalledOneIsClosed) {
  Server s;
  // Five parts 1.2 s apart: 6 s in all, longer than the 2 s read timeout, but no wait between
  // parts is.
  std::string body = kDecision;
  std::string head = "POST /v1/decisions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                     s.Key("service") + "\r\nContent-Length: " + std::to_string(body.size()) +
                     "\r\nConnection: close\r\n\r\n";
  std::vector<std::string> pieces = {head};
  for (size_t at = 0; at < body.size(); at += body.size() / 5 + 1) {
    pieces.push_back(body.substr(at, body.size() / 5 + 1));
  }
  std::string out = s.Raw(pieces, std::chrono::milliseconds(1200));
  EXPECT_TRUE(out.starts_with("HTTP/1.1 200")) << out.substr(0, 300);
  // A body that stops coming: the connection is closed, nothing is decided.
  std::string stalled = head + body.substr(0, 10);
  auto start = std::chrono::steady_clock::now();
  out = s.Raw(std::vector<std::string>{stalled});
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_TRUE(out.empty()) << out.substr(0, 300);
  EXPECT_LT(secs, 2.9);
}

TEST(ServerTest, AnErasedSubjectIsNeverUsableAgainAndLeftOnlyAsAPseudonym) {
  Server s;
  const std::string q =
      R"({"category":"service_generated.telemetry","purpose":"ai_training.first_party","subjects":["zoe@example.com"]})";
  Response w = s.Call("POST", "/v1/subjects/zoe@example.com/consents",
                      R"({"rule":"service-generated-for-ai-training","action":"withdraw"})");
  ASSERT_EQ(w.status, 201) << w.body;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(w.body, m, std::regex("\"pseudonym\":\"(p[A-Za-z0-9_-]{22})\"")));
  const std::string pseudonym = m[1];
  Response before = s.Call("POST", "/v1/decisions", q);
  EXPECT_NE(before.body.find("\"decision\":\"deny\",\"reason\":\"objected\""), std::string::npos) << before.body;
  EXPECT_EQ(s.Call("DELETE", "/v1/subjects/zoe@example.com", "", "service").status, 403);
  Response e = s.Call("DELETE", "/v1/subjects/zoe@example.com", "", "operator");
  ASSERT_EQ(e.status, 200) << e.body;
  EXPECT_NE(e.body.find("\"erased\":true"), std::string::npos) << e.body;
  EXPECT_NE(e.body.find(pseudonym), std::string::npos) << e.body;
  EXPECT_NE(e.body.find("\"retrain\":{\"datasets\":[]"), std::string::npos) << e.body;
  // Not as for someone never seen (objectable would allow): the suppression list denies it.
  Response after = s.Call("POST", "/v1/decisions", q);
  EXPECT_NE(after.body.find("\"decision\":\"deny\",\"reason\":\"erased\""), std::string::npos)
      << after.body;
  EXPECT_NE(after.body.find("\"state\":\"none\",\"event\":null"), std::string::npos) << after.body;
  // A necessary use goes on.
  Response necessary = s.Call(
      "POST", "/v1/decisions",
      R"({"category":"service_generated.telemetry","purpose":"service.delivery","subjects":["zoe@example.com"]})");
  EXPECT_NE(necessary.body.find("\"reason\":\"necessary\""), std::string::npos) << necessary.body;
  Response h = s.Call("GET", "/v1/subjects/zoe@example.com/history", "", "operator");
  EXPECT_EQ(h.body.find(pseudonym), std::string::npos);
  EXPECT_EQ(h.body.find("withdraw"), std::string::npos) << h.body;
  EXPECT_EQ(s.Call("DELETE", "/v1/subjects/zoe@example.com", "", "operator").status, 404);
  // The ledger keeps the entry, under the pseudonym alone, marked erased.
  Response x = s.Call("GET", "/v1/ledger?since=0", "", "operator");
  ASSERT_EQ(x.status, 200);
  EXPECT_EQ(x.body.find("zoe@example.com"), std::string::npos);
  EXPECT_NE(x.body.find("\"subject\":\"" + pseudonym + "\""), std::string::npos);
  EXPECT_NE(x.body.find("\"erased\":true"), std::string::npos);
  EXPECT_NE(x.body.find("\"kind\":\"erasure\""), std::string::npos);
  EXPECT_NE(x.body.find("\"suppressed\":\""), std::string::npos);  // a keyed hash, never the id
}

TEST(ServerTest, ARetryWithTheSameIdempotencyKeyGetsTheFirstReceiptAndRecordsNothing) {
  Server s;
  const std::string body = R"({"rule":"service-generated-for-ai-training","action":"withdraw"})";
  const std::string key = "Idempotency-Key: 9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d";
  Response first = s.Call("POST", "/v1/subjects/ivy/consents", body, "service", {key});
  ASSERT_EQ(first.status, 201) << first.body;
  EXPECT_EQ(first.headers.find("Idempotent-Replayed"), std::string::npos);
  Response retry = s.Call("POST", "/v1/subjects/ivy/consents", body, "service", {key});
  ASSERT_EQ(retry.status, 201) << retry.body;
  EXPECT_NE(retry.headers.find("Idempotent-Replayed: true"), std::string::npos) << retry.headers;
  std::smatch a, b;
  ASSERT_TRUE(std::regex_search(first.body, a, std::regex("\"position\":(\\d+)")));
  ASSERT_TRUE(std::regex_search(retry.body, b, std::regex("\"position\":(\\d+)")));
  EXPECT_EQ(a[1], b[1]) << "the same event";
  Response h = s.Call("GET", "/v1/subjects/ivy/history", "", "operator");
  size_t events = 0;
  for (size_t at = 0; (at = h.body.find("\"withdraw\"", at)) != std::string::npos; ++at) ++events;
  EXPECT_EQ(events, 1u) << h.body;
  // The same key for another request is refused; another caller's key space is its own.
  Response other = s.Call("POST", "/v1/subjects/ivan/consents", body, "service", {key});
  EXPECT_EQ(other.status, 409) << other.body;
  // Also for the same party and action with another scope or method: never the first receipt
  // for a withdrawal that was not recorded.
  for (const std::string changed : {
           R"({"categories":["service_generated.telemetry"],"purposes":["marketing"],"action":"withdraw"})",
           R"({"rule":"service-generated-for-marketing","action":"withdraw"})",
           R"({"rule":"service-generated-for-ai-training","action":"withdraw","method":"gpc"})"}) {
    Response r = s.Call("POST", "/v1/subjects/ivy/consents", changed, "service", {key});
    EXPECT_EQ(r.status, 409) << changed << " " << r.body;
  }
  Response theirs = s.Call("POST", "/v1/subjects/ivy/consents", body, "operator", {key});
  EXPECT_EQ(theirs.status, 201) << theirs.body;
  EXPECT_EQ(theirs.headers.find("Idempotent-Replayed"), std::string::npos);
  // A malformed key changes nothing.
  Response bad = s.Call("POST", "/v1/subjects/ivy/consents", body, "service",
                        {"Idempotency-Key: " + std::string(300, 'x')});
  EXPECT_EQ(bad.status, 400) << bad.body;
  // A retry after the party was erased: 410, saying why (not 404, not a new event).
  ASSERT_EQ(s.Call("DELETE", "/v1/subjects/ivy", "", "operator").status, 200);
  Response gone = s.Call("POST", "/v1/subjects/ivy/consents", body, "service", {key});
  EXPECT_EQ(gone.status, 410) << gone.body;
  EXPECT_NE(gone.body.find("erased"), std::string::npos) << gone.body;
}

TEST(ServerTest, ConsistencyToken) {
  Server s;
  Response w = s.Call("POST", "/v1/subjects/u7/consents",
                      R"({"rule":"service-generated-for-ai-training","action":"withdraw"})");
  ASSERT_EQ(w.status, 201) << w.body;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(w.body, m, std::regex("\"position\":(\\d+)")));
  const uint64_t pos = std::stoull(m[1]);
  Response d = s.Call("POST", "/v1/decisions",
                      R"({"category":"service_generated.telemetry","purpose":"ai_training.first_party","subjects":["u7"],"min_position":)" +
                          std::to_string(pos) + "}");
  EXPECT_EQ(d.status, 200);
  EXPECT_NE(d.body.find("\"reason\":\"objected\""), std::string::npos) << d.body;
  auto start = std::chrono::steady_clock::now();
  Response ahead = s.Call("POST", "/v1/decisions",
                          R"({"category":"content.chat","purpose":"service.delivery","subjects":["u7"],"min_position":)" +
                              std::to_string(pos + 1000) + "}");
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(ahead.status, 503) << ahead.body;
  EXPECT_GE(secs, 1.9);
  EXPECT_LT(secs, 5.0);
}

// After a change of wording, the publication says per rule how many grants went stale, and
// GET /v1/stale lists the parties to ask again, a page at a time, over more than one page.
TEST(ServerTest, StaleGrantsAreCountedAtPublicationAndListedInPages) {
  const std::string dir =
      fs::temp_directory_path() / ("assent-stale-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  { Server first(dir); EXPECT_EQ(first.Terminate(), 0); }  // the demo's terms and keys
  // 250 people agreed to the quality review (ledger import: a CLI, not a key, records grants).
  const assent::Timestamp now = assent::SystemClock()();
  std::ofstream events(dir + "/grants.jsonl");
  for (int i = 0; i < 250; ++i) {
    events << R"({"subject":"p)" << 1000 + i
           << R"(","action":"grant","categories":["content.audio"],"purposes":["product_development.quality_review"],"at":")"
           << assent::FormatTime(now - 600'000'000 + i * 1000) << R"(","rule":"meeting-quality-review"})" << "\n";
  }
  events.close();
  const std::string import = std::string("'") + ASSENT_BINARY + "' ledger import --data '" + dir +
                             "' --rehash '" + dir + "/grants.jsonl' > /dev/null";
  ASSERT_EQ(std::system(import.c_str()), 0);
  Server s(dir);
  std::string yaml;
  {
    std::stringstream in;
    in << std::ifstream(std::string(ASSENT_SOURCE_DIR) + "/examples/terms/example-meetings-2023-08-11.yaml").rdbuf();
    yaml = in.str();
  }
  auto replace = [&](const std::string& from, const std::string& to) {
    const size_t at = yaml.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    yaml.replace(at, from.size(), to);
  };
  replace("version: \"2023-08-11\"", "version: \"2099-01-01\"");
  replace("effective: \"2023-08-11T00:00:00Z\"", "effective: \"" + assent::FormatTime(assent::SystemClock()() - 1'000'000) + "\"");
  replace("Recorded or streamed meeting audio.", "Recorded, streamed or uploaded meeting audio.");
  Response pub = s.Call("POST", "/v1/terms", yaml, "operator", {"Content-Type: application/yaml"});
  ASSERT_EQ(pub.status, 201) << pub.body;
  EXPECT_NE(pub.body.find(R"({"rule":"meeting-quality-review","grants":250,"parties":250})"),
            std::string::npos) << pub.body;
  std::set<std::string> seen;
  std::string cursor;
  int pages = 0;
  for (;; ++pages) {
    Response r = s.Call("GET", "/v1/stale?rule=meeting-quality-review&limit=100" +
                                   (cursor.empty() ? "" : "&cursor=" + cursor), "", "operator");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_NE(r.body.find("\"total\":250"), std::string::npos) << r.body;
    static const std::regex kSubject(R"re("subject":"(p\d+)")re");
    for (std::sregex_iterator it(r.body.begin(), r.body.end(), kSubject), end; it != end; ++it) {
      EXPECT_TRUE(seen.insert((*it)[1]).second) << "listed twice: " << (*it)[1];
    }
    std::smatch m;
    if (!std::regex_search(r.body, m, std::regex(R"re("next_cursor":"([0-9a-f]+)")re"))) break;
    cursor = m[1];
  }
  EXPECT_EQ(pages + 1, 3);
  EXPECT_EQ(seen.size(), 250u) << "nothing missed";
  // Refusals: a made-up cursor, a rule that asks nobody, a misspelt one, no rule, a service key.
  EXPECT_EQ(s.Call("GET", "/v1/stale?rule=meeting-quality-review&cursor=zz", "", "operator").status, 422);
  Response necessary = s.Call("GET", "/v1/stale?rule=content-for-service", "", "operator");
  EXPECT_EQ(necessary.status, 422);
  EXPECT_NE(necessary.body.find("asks nobody"), std::string::npos) << necessary.body;
  Response typo = s.Call("GET", "/v1/stale?rule=meeting-quality-reviwe", "", "operator");
  EXPECT_NE(typo.body.find("did you mean 'meeting-quality-review'"), std::string::npos) << typo.body;
  EXPECT_EQ(s.Call("GET", "/v1/stale", "", "operator").status, 400);
  EXPECT_EQ(s.Call("GET", "/v1/stale?rule=meeting-quality-review&limit=5000", "", "operator").status, 422);
  EXPECT_EQ(s.Call("GET", "/v1/stale?rule=meeting-quality-review", "", "service").status, 403);
  EXPECT_EQ(s.Terminate(), 0);
  fs::remove_all(dir);
}

TEST(ServerTest, GracefulShutdownFinishesRequestsInFlight) {
  Server s;
  Response in_flight;
  std::thread waiter([&] {
    in_flight = s.Call("POST", "/v1/decisions",
                       R"({"category":"content.chat","purpose":"service.delivery","subjects":["u1"],"min_position":99999})");
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(s.Terminate(), 0);
  waiter.join();
  EXPECT_EQ(in_flight.status, 503) << "the request in flight was answered, not dropped";
}

}  // namespace
