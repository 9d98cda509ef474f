// The HTTP API in process: every route through Api::Handle on a memory ledger — its status,
// problem type and body shape — without sockets (the listener has its own tests in
// test/integration/server_test.cc).
#include "server/api.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include "audit/audit.h"

namespace assent::server {
namespace {

const Timestamp kNow = *ParseTime("2024-01-01T00:00:00Z");

std::string ReadExample(const std::string& name) {
  std::ifstream in(std::string(ASSENT_SOURCE_DIR) + "/examples/terms/" + name);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class ApiTest : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("assent-api-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    LedgerOptions o;
    o.in_memory = true;
    o.clock = [] { return kNow; };
    ledger_ = std::move(*Ledger::Open(o));
    for (const char* f : {"example-meetings-2023-08-07.yaml", "example-meetings-2023-08-11.yaml"}) {
      ASSERT_TRUE(ledger_->PublishTerms(ReadExample(f), f, {.backfill = true}));
    }
    for (Role role : {Role::kOperator, Role::kService, Role::kAuditor, Role::kPortal}) {
      keys_[role] = *ledger_->CreateKey(role, std::string(RoleName(role)));
    }
    auto key = audit::LoadSigningKeyFile((dir_ / "audit.key").string(), true);
    ASSERT_TRUE(key) << key.error().message;
    auditor_ = std::move(*audit::Auditor::Attach(*ledger_, *key));
    api_ = std::make_unique<Api>(ledger_.get(), nullptr, auditor_.get());
    api_->set_audit_check(Api::AuditCheck::kPassed);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  HandlerResult Call(const std::string& method, const std::string& target,
                     const std::string& body = "", std::optional<Role> role = std::nullopt,
                     std::vector<std::pair<std::string, std::string>> headers = {}) {
    HttpRequest req;
    req.method = method;
    req.target = target;
    req.body = body;
    req.headers = std::move(headers);
    if (role) req.headers.emplace_back("Authorization", "Bearer " + keys_[*role]);
    if (auto denied = api_->Admit(req)) return HandlerResult{*denied, 0, {}, nullptr};
    return api_->Handle(req, false);
  }
  HttpResponse As(Role role, const std::string& method, const std::string& target,
                  const std::string& body = "") {
    return Call(method, target, body, role).response;
  }
  static std::string TypeOf(const HttpResponse& r) {
    std::smatch m;
    if (!std::regex_search(r.body, m, std::regex("problems/([a-z-]+)"))) return "";
    return m[1].str();
  }
  // A session for the party: its cookie and CSRF headers.
  std::vector<std::pair<std::string, std::string>> SignIn(PartyKind kind, const std::string& id) {
    std::string token = api_->sessions().MintLink(kind, id, kNow, "key:portal");
    HttpResponse r = Call("GET", "/session/" + token).response;
    EXPECT_EQ(r.status, 303) << r.body;
    std::string cookie;
    for (const auto& [k, v] : r.headers) {
      if (k == "Set-Cookie") cookie = v.substr(0, v.find(';'));
    }
    HttpResponse info = Call("GET", "/v1/session", "", std::nullopt, {{"Cookie", cookie}}).response;
    std::smatch m;
    EXPECT_TRUE(std::regex_search(info.body, m, std::regex("\"csrf_token\":\"([0-9a-f]+)\"")));
    return {{"Cookie", cookie}, {"X-CSRF-Token", m[1].str()}};
  }

  std::filesystem::path dir_;
  std::unique_ptr<Ledger> ledger_;
  std::unique_ptr<audit::Auditor> auditor_;
  std::unique_ptr<Api> api_;
  std::map<Role, std::string> keys_;
};

const std::string kDecision =
    R"({"category":"content.chat","purpose":"ai_training.first_party","subjects":["u1"]})";

// Every route with an allowed caller: the status and a piece of the body it must hold.
TEST_F(ApiTest, EveryRouteAnswersWithItsStatusAndShape) {
  const std::string withdraw =
      R"({"rule":"service-generated-for-ai-training","action":"withdraw"})";
  ASSERT_EQ(As(Role::kService, "POST", "/v1/subjects/gone/consents", withdraw).status, 201);
  ASSERT_EQ(As(Role::kService, "POST", "/v1/accounts/gone-acct/consents",
               R"({"rule":"meeting-quality-review","action":"withdraw"})").status, 201);
  struct Case {
    Role role;
    std::string method, target, body;
    int status;
    std::string shape;  // a regex the body must match
  };
  const std::vector<Case> cases = {
      {Role::kService, "GET", "/healthz", "", 200, R"("status":"ok")"},
      {Role::kService, "GET", "/readyz", "", 200, R"("status":"ready")"},
      {Role::kService, "GET", "/metrics", "", 200, "assent_"},
      {Role::kService, "GET", "/openapi.json", "", 200, R"("openapi":"3\.1\.0")"},
      {Role::kService, "POST", "/v1/decisions", kDecision, 200,
       R"re(^\{"decision":"(allow|deny)","reason":")re"},
      {Role::kService, "POST", "/v1/decisions:batch", "{\"items\":[" + kDecision + "]}", 200,
       R"(^\{"decisions":\[\{)"},
      {Role::kService, "GET", "/v1/terms", "", 200, R"("version":"2023-08-11")"},
      {Role::kService, "GET", "/v1/terms/2023-08-07", "", 200, R"("version":"2023-08-07")"},
      {Role::kService, "GET", "/v1/terms/2023-08-07/diff/2023-08-11", "", 200, R"("pairs":)"},
      {Role::kService, "GET", "/v1/subjects/u1/consents", "", 200, R"("rules":\[)"},
      {Role::kService, "POST", "/v1/subjects/u1/consents", withdraw, 201, R"("position":\d+)"},
      {Role::kService, "GET", "/v1/subjects/u1/history", "", 200, R"("events":\[\{)"},
      {Role::kService, "GET", "/v1/subjects/u1/receipts/RECEIPT", "", 200,
       R"("subject":"u1".*"inclusion_proof":\[)"},
      {Role::kOperator, "DELETE", "/v1/subjects/gone", "", 200, R"("erased":true)"},
      {Role::kOperator, "DELETE", "/v1/accounts/gone-acct", "", 200, R"("erased":true)"},
      {Role::kService, "GET", "/v1/accounts/a1/consents", "", 200, R"("account":"a1")"},
      {Role::kService, "GET", "/v1/accounts/a1/history", "", 200, R"("events":\[)"},
      {Role::kService, "GET", "/v1/accounts/gone-acct/receipts/1", "", 404, "not-found"},
      {Role::kPortal, "POST", "/v1/sessions", R"({"subject":"u1"})", 201, R"("link":"/session/)"},
      {Role::kOperator, "GET", "/v1/ledger?since=0", "", 200, R"("kind":"terms")"},
      {Role::kAuditor, "GET", "/v1/changes?after=0&follow=false", "", 200,
       R"(^\{"position":1,.*"kind":"terms")"},
      {Role::kOperator, "GET", "/v1/stale?rule=service-generated-for-ai-training", "", 200,
       R"(^\{"rule":"service-generated-for-ai-training","terms":".*"total":\d+,"parties":\[)"},
      {Role::kService, "GET", "/v1/datasets", "", 200, R"("datasets":\[)"},
      {Role::kService, "POST", "/v1/models", R"({"name":"m1","datasets":["d1"]})", 201,
       R"("position":\d+)"},
      {Role::kService, "GET", "/v1/datasets/d1", "", 200, R"("name":"d1")"},
      {Role::kService, "GET", "/v1/impact?subject=u1", "", 200, R"("datasets":\[)"},
      {Role::kService, "GET", "/v1/subjects/u1/usage", "", 200, R"("datasets":\[)"},
      {Role::kOperator, "GET", "/v1/keys", "", 200, R"("name":"service")"},
      {Role::kOperator, "POST", "/v1/keys", R"({"role":"service","name":"k2"})", 201,
       R"("key":"assent_[0-9a-f]{64}")"},
      {Role::kOperator, "POST", "/v1/keys/k2/revoke", "", 200, R"("revoked")"},
      {Role::kService, "GET", "/settings", "", 200, "<html"},
      {Role::kService, "GET", "/admin", "", 200, "<html"},
      {Role::kService, "GET", "/assets/settings.js", "", 200, "."},
      {Role::kService, "GET", "/v1/audit/key", "", 200, "."},
      {Role::kService, "GET", "/v1/audit/checkpoint", "", 200, "."},
      {Role::kService, "GET", "/v1/audit/proof/inclusion?position=1&size=2", "", 200,
       R"("leaf_hash":"[0-9a-f]{64}","proof":\[")"},
      {Role::kService, "GET", "/v1/audit/proof/consistency?from=1&to=2", "", 200,
       R"(^\{"from":1,"to":2,"proof":\[")"},
  };
  // A dataset for the lineage routes.
  HttpResponse d = As(Role::kService, "POST", "/v1/datasets",
                      R"({"name":"d1","purpose":"ai_training.first_party","ledger_position":1,"subjects":["u1"]})");
  ASSERT_EQ(d.status, 201) << d.body;
  std::set<std::string> covered = {"POST /v1/datasets", "GET /session/{token}",
                                   "GET /v1/session", "POST /v1/session/logout",
                                   "POST /v1/session/gpc", "POST /v1/terms",
                                   "POST /v1/accounts/{id}/consents"};
  // u1's withdrawal (recorded by the POST case) has a receipt at its position.
  for (auto c : cases) {
    if (const size_t at = c.target.find("RECEIPT"); at != std::string::npos) {
      HttpResponse h = As(Role::kService, "GET", "/v1/subjects/u1/history");
      std::smatch m;
      ASSERT_TRUE(std::regex_search(h.body, m, std::regex("\"position\":(\\d+),\"action\"")))
          << h.body;
      c.target.replace(at, 7, m[1].str());
    }
    HandlerResult r = Call(c.method, c.target, c.body, c.role);
    if (r.feed) {  // a change feed: what it streams up to the head
      r.response.status = 200;
      r.response.route = r.feed->route();
      while (r.feed->Next(ledger_->position(), 64 * 1024, &r.response.body)) {
      }
    }
    SCOPED_TRACE(c.method + " " + c.target + ": " + r.response.body);
    EXPECT_EQ(r.response.status, c.status);
    EXPECT_TRUE(std::regex_search(r.response.body, std::regex(c.shape)));
    covered.insert(r.response.route);
  }
  for (const auto& route : Api::Routes()) {
    EXPECT_TRUE(covered.count(route.method + " " + route.pattern))
        << route.method << " " << route.pattern << " has no case";
  }
}

TEST_F(ApiTest, RefusalsNameTheirProblemType) {
  struct Case {
    std::optional<Role> role;
    std::string method, target, body;
    int status;
    std::string type;
  };
  const std::vector<Case> cases = {
      {std::nullopt, "POST", "/v1/decisions", kDecision, 401, "unauthenticated"},
      {Role::kAuditor, "POST", "/v1/decisions", kDecision, 403, "forbidden"},
      {Role::kService, "GET", "/v1/nothing-here", "", 404, "not-found"},
      {Role::kService, "PUT", "/v1/decisions", kDecision, 405, "method-not-allowed"},
      {Role::kService, "GET", "/v1/subjects/%20/consents", "", 422, "invalid-argument"},
      {Role::kService, "POST", "/v1/decisions", "{not json", 400, "malformed-request"},
      {Role::kService, "POST", "/v1/decisions",
       R"({"category":"content.chat","purpose":"ai_training.first_party","subjcts":["u1"]})",
       400, "malformed-request"},
      {Role::kService, "POST", "/v1/subjects/u1/consents",
       R"({"rule":"service-generated-for-ai-training","action":"grant"})", 403,
       "grant-needs-the-person"},
      {Role::kService, "POST", "/v1/subjects/u1/consents",
       R"({"rule":"content-for-service","action":"withdraw"})", 422, "invalid-argument"},
      {Role::kOperator, "POST", "/v1/terms", "rules: [", 422, "terms-refused"},
      {std::nullopt, "GET", "/session/00ff", "", 404, "link-expired"},
      {Role::kService, "GET", "/v1/terms/1999-01-01", "", 404, "not-found"},
      // A dataset must say where it was decided, and for a purpose the terms define.
      {Role::kService, "POST", "/v1/datasets",
       R"({"name":"d9","purpose":"ai_training.first_party","subjects":["u1"]})", 422,
       "invalid-argument"},
      {Role::kService, "POST", "/v1/datasets",
       R"({"name":"d9","purpose":"ai_training.first_party","ledger_position":99999,"subjects":["u1"]})",
       422, "invalid-argument"},
      {Role::kService, "POST", "/v1/datasets",
       R"({"name":"d9","purpose":"ai_trainin","ledger_position":1,"subjects":["u1"]})", 422,
       "invalid-argument"},
  };
  for (const auto& c : cases) {
    HandlerResult r = Call(c.method, c.target, c.body, c.role);
    SCOPED_TRACE(c.method + " " + c.target + ": " + r.response.body);
    EXPECT_EQ(r.response.status, c.status);
    EXPECT_EQ(TypeOf(r.response), c.type);
    EXPECT_EQ(r.response.content_type, "application/problem+json");
  }
  // A dataset's misspelt purpose names the field and what was meant.
  HttpResponse purpose = As(Role::kService, "POST", "/v1/datasets",
                            R"({"name":"d9","purpose":"ai_training.first_prty","ledger_position":1,"subjects":["u1"]})");
  EXPECT_NE(purpose.body.find("purpose: 'ai_training.first_prty'"), std::string::npos) << purpose.body;
  EXPECT_NE(purpose.body.find("did you mean 'ai_training.first_party'"), std::string::npos) << purpose.body;
  // An unknown field says what was meant; a 401 asks for a bearer token.
  HttpResponse typo = As(Role::kService, "POST", "/v1/decisions",
                         R"({"category":"content.chat","purpose":"x","subjcts":["u1"]})");
  EXPECT_NE(typo.body.find("did you mean"), std::string::npos) << typo.body;
  HttpResponse anon = Call("GET", "/v1/terms").response;
  bool bearer = false;
  for (const auto& [k, v] : anon.headers) bearer |= k == "WWW-Authenticate" && v == "Bearer";
  EXPECT_TRUE(bearer);
}

// A question about a later position than this node has applied is a wait, not an answer; on
// the call after the wait it is 503 if the position is still not there.
TEST_F(ApiTest, AskingForALaterPositionWaitsThenAnswersUnavailable) {
  const uint64_t later = ledger_->position() + 5;
  const std::string q = R"({"category":"content.chat","purpose":"ai_training.first_party",)"
                        R"("subjects":["u1"],"min_position":)" + std::to_string(later) + "}";
  HandlerResult first = Call("POST", "/v1/decisions", q, Role::kService);
  EXPECT_EQ(first.wait_for_position, later);
  HttpRequest req;
  req.method = "POST";
  req.target = "/v1/decisions";
  req.body = q;
  req.headers = {{"Authorization", "Bearer " + keys_[Role::kService]}};
  HandlerResult again = api_->Handle(req, true);
  EXPECT_EQ(again.wait_for_position, 0u);
  EXPECT_EQ(again.response.status, 503);
  EXPECT_EQ(TypeOf(again.response), "unavailable");
}

// Sessions: only their own party, changes need the CSRF token, a link works once, a logout
// ends the session — and the audit gate refuses writes (a logout, a redeemed link) while
// decisions are still answered.
TEST_F(ApiTest, SessionsAndTheAuditGate) {
  auto person = SignIn(PartyKind::kSubject, "u1");
  const std::string grant = R"({"rule":"service-generated-for-ai-training","action":"grant"})";
  EXPECT_EQ(Call("GET", "/v1/subjects/u1/consents", "", std::nullopt, person).response.status, 200);
  HttpResponse other = Call("GET", "/v1/subjects/u2/consents", "", std::nullopt, person).response;
  EXPECT_EQ(TypeOf(other), "not-yours");
  HttpResponse account = Call("GET", "/v1/accounts/u1/consents", "", std::nullopt, person).response;
  EXPECT_EQ(account.status, 403);
  HttpResponse no_csrf =
      Call("POST", "/v1/subjects/u1/consents", grant, std::nullopt, {person[0]}).response;
  EXPECT_EQ(TypeOf(no_csrf), "csrf");
  HttpResponse granted = Call("POST", "/v1/subjects/u1/consents", grant, std::nullopt, person).response;
  EXPECT_EQ(granted.status, 201) << granted.body;
  EXPECT_NE(granted.body.find(R"("method":"settings")"), std::string::npos);
  EXPECT_NE(granted.body.find(R"("actor":"session minted by key:portal")"), std::string::npos);
  EXPECT_EQ(Call("POST", "/v1/session/gpc", "{}", std::nullopt, person).response.status, 200);
  api_->set_audit_check(Api::AuditCheck::kRunning);
  HttpResponse refused = Call("POST", "/v1/session/logout", "{}", std::nullopt, person).response;
  EXPECT_EQ(refused.status, 503);
  EXPECT_EQ(TypeOf(refused), "unavailable");
  EXPECT_EQ(Call("POST", "/v1/decisions", kDecision, Role::kService).response.status, 200);
  std::string link = "/session/" + api_->sessions().MintLink(PartyKind::kSubject, "u3", kNow);
  EXPECT_EQ(Call("GET", link).response.status, 503);
  api_->set_audit_check(Api::AuditCheck::kPassed);
  EXPECT_EQ(Call("GET", link).response.status, 303);
  EXPECT_EQ(TypeOf(Call("GET", link).response), "link-expired");
  // A browser following a used link gets a page saying what happened and what to do.
  HttpResponse page = Call("GET", link, "", std::nullopt, {{"Accept", "text/html,*/*"}}).response;
  EXPECT_EQ(page.status, 404);
  EXPECT_EQ(page.content_type, "text/html; charset=utf-8");
  EXPECT_NE(page.body.find("mail system may have checked the link"), std::string::npos);
  EXPECT_NE(page.body.find("ask for a new link"), std::string::npos);
  EXPECT_EQ(Call("POST", "/v1/session/logout", "{}", std::nullopt, person).response.status, 200);
  EXPECT_EQ(Call("GET", "/v1/session", "", std::nullopt, person).response.status, 401);
}

}  // namespace
}  // namespace assent::server
