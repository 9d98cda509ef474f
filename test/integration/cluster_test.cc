// Three `assent serve` nodes on one PostgreSQL database (a real server: each test starts a
// throwaway cluster with test/pg/cluster.sh): writes through any node, reads through any other, nodes killed and restarted, the
// database restarted — and at the end every acknowledged event stored exactly once, positions
// dense, and all nodes deciding identically at the same position.
#include <curl/curl.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <map>
#include <mutex>
#include <random>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "../run_assent.h"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

struct Response {
  long status = 0;  // 0: no answer (connection refused or reset)
  std::string body;
};

size_t Collect(char* p, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(p, size * n);
  return size * n;
}

Response Http(int port, const std::string& method, const std::string& path,
              const std::string& body, const std::string& key,
              const std::vector<std::string>& headers = {}, std::string* response_headers = nullptr) {
  CURL* c = curl_easy_init();
  Response r;
  curl_slist* h = nullptr;
  if (!key.empty()) h = curl_slist_append(h, ("Authorization: Bearer " + key).c_str());
  for (const auto& x : headers) h = curl_slist_append(h, x.c_str());
  if (response_headers) {
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, Collect);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, response_headers);
  }
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + path;
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
  if (!body.empty()) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, Collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
  if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
  return r;
}

// Runs the assent binary to completion; its output.
std::string Assent(const std::string& args, int* code = nullptr) {
  auto r = assent::testing_cli::RunAssent(args);
  if (code) *code = r.code;
  return r.out;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// One `assent serve --database URL` process (its stderr in DIR.log).
class Node {
 public:
  Node(std::string dir, std::string url, std::string key_file)
      : dir_(std::move(dir)), url_(std::move(url)), key_file_(std::move(key_file)) {}
  ~Node() { Kill(); }

  void Start() {
    std::vector<std::string> args = {ASSENT_BINARY, "serve", "--data", dir_, "--database", url_,
                                     "--audit-key", key_file_, "--listen", "127.0.0.1:0",
                                     "--quiet", "--threads", "2", "--checkpoint-interval", "1",
                                     "--audit-in-background"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int out[2];
    ASSERT_EQ(::pipe(out), 0);
    pid_ = ::fork();
    const std::string log = dir_ + ".log";
    if (pid_ == 0) {
      int err = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (err >= 0) ::dup2(err, 2);
      ::dup2(out[1], 1);
      ::close(out[0]);
      ::close(out[1]);
      ::execv(ASSENT_BINARY, argv.data());
      ::_exit(127);
    }
    ::close(out[1]);
    std::string text;
    std::smatch m;
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (!std::regex_search(text, m, std::regex("on http://127\\.0\\.0\\.1:(\\d+)")) &&
           std::chrono::steady_clock::now() < deadline) {
      pollfd p{out[0], POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char b[4096];
      ssize_t n = ::read(out[0], b, sizeof b);
      if (n <= 0) break;
      text.append(b, static_cast<size_t>(n));
    }
    ::close(out[0]);
    ASSERT_TRUE(std::regex_search(text, m, std::regex("on http://127\\.0\\.0\\.1:(\\d+)")))
        << text << "\nstderr:\n" << ReadAll(log);
    port_ = std::stoi(m[1]);
    // The audit runs in the background (--audit-in-background); until it passes the node
    // refuses writes. Tests start writing once it is ready.
    for (int i = 0; i < 200; ++i) {
      if (Http(port_, "GET", "/readyz", "", "").status == 200) break;
      std::this_thread::sleep_for(50ms);
    }
  }

  void Kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  int port() const { return port_.load(); }

 private:
  std::string dir_, url_, key_file_;
  pid_t pid_ = -1;
  std::atomic<int> port_{0};  // writer threads read it while the node restarts
};

class ClusterTest : public testing::Test {
 protected:
  // Each test gets a PostgreSQL cluster of its own: these tests stop and restart the server,
  // which must not disturb other tests running beside them.
  void SetUp() override {
    std::mt19937_64 rng(std::random_device{}());
    root_ = (fs::temp_directory_path() / ("assent-cluster-" + std::to_string(rng()))).string();
    fs::create_directories(root_);
    ::chmod(root_.c_str(), 0755);  // the server runs as another user when tests run as root
    pg_dir_ = root_ + "/pg";
    ASSERT_EQ(std::system((Script() + "start '" + pg_dir_ + "' --fast").c_str()), 0);
    std::ifstream in(pg_dir_ + "/url");
    std::getline(in, url_);
    ASSERT_FALSE(url_.empty());
    key_file_ = root_ + "/audit.key";
    const std::string g = " --database " + url_ + " --audit-key " + key_file_;
    int code = 0;
    Assent("audit key" + g, &code);
    ASSERT_EQ(code, 0);
    std::string out = Assent("terms publish --backfill --data " + root_ + "/admin" + g +
                                 " examples/terms/example-meetings-2023-08-11.yaml",
                             &code);
    ASSERT_EQ(code, 0) << out;
    for (const char* role : {"service", "operator", "portal"}) {
      out = Assent(std::string("keys create --role ") + role + " --data " + root_ + "/admin" + g,
                   &code);
      ASSERT_EQ(code, 0) << out;
      keys_[role] = out.substr(0, out.find('\n'));
    }
    for (int i = 0; i < 3; ++i) {
      nodes_.push_back(std::make_unique<Node>(root_ + "/node" + std::to_string(i), url_, key_file_));
      nodes_.back()->Start();
    }
  }
  void TearDown() override {
    nodes_.clear();
    (void)std::system((Script() + "stop '" + pg_dir_ + "'").c_str());
    fs::remove_all(root_);
  }
  static std::string Script() { return "'" ASSENT_SOURCE_DIR "/test/pg/cluster.sh' "; }
  int Cluster(const std::string& command) {
    return std::system((Script() + command + " '" + pg_dir_ + "'").c_str());
  }

  Response Withdraw(int node, const std::string& subject) {
    return Http(nodes_[node]->port(), "POST", "/v1/subjects/" + subject + "/consents",
                R"({"rule":"service-generated-for-ai-training","action":"withdraw"})",
                keys_["service"]);
  }
  Response Decide(int node, const std::string& subject, uint64_t min_position) {
    return Http(nodes_[node]->port(), "POST", "/v1/decisions",
                R"({"category":"service_generated.telemetry","purpose":"ai_training.first_party","subjects":[")" +
                    subject + R"("],"min_position":)" + std::to_string(min_position) + "}",
                keys_["service"]);
  }

  std::string url_, root_, key_file_, pg_dir_;
  std::map<std::string, std::string> keys_;
  std::vector<std::unique_ptr<Node>> nodes_;
};

uint64_t PositionOf(const std::string& body) {
  std::smatch m;
  if (!std::regex_search(body, m, std::regex("\"position\":(\\d+)"))) return 0;
  return std::stoull(m[1]);
}

TEST_F(ClusterTest, AWithdrawalThroughOneNodeIsSeenByTheOthers) {
  Response w = Withdraw(0, "ada");
  ASSERT_EQ(w.status, 201) << w.body;
  const uint64_t n = PositionOf(w.body);
  ASSERT_GT(n, 0u);
  for (int node : {1, 2}) {
    Response d = Decide(node, "ada", n);
    ASSERT_EQ(d.status, 200) << d.body;
    EXPECT_NE(d.body.find("\"reason\":\"objected\""), std::string::npos) << d.body;
    EXPECT_GE(PositionOf(d.body), n) << "the decision reports the position it reflects";
  }
  // A position no node has reached: 503 after the bound, not a stale answer.
  Response ahead = Decide(1, "ada", n + 1000);
  EXPECT_EQ(ahead.status, 503) << ahead.body;
  // A client that lost its connection retries through another node with the same key: it
  // gets the first receipt, and the event is recorded once.
  const std::string body = R"({"rule":"service-generated-for-ai-training","action":"withdraw"})";
  auto keyed = [&](int node) {
    CURL* c = curl_easy_init();
    Response r;
    curl_slist* h = curl_slist_append(nullptr, ("Authorization: Bearer " + keys_["service"]).c_str());
    h = curl_slist_append(h, "Idempotency-Key: retry-42");
    const std::string url =
        "http://127.0.0.1:" + std::to_string(nodes_[node]->port()) + "/v1/subjects/eli/consents";
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, Collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
    if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return r;
  };
  Response once = keyed(0), again = keyed(2);
  ASSERT_EQ(once.status, 201) << once.body;
  ASSERT_EQ(again.status, 201) << again.body;
  EXPECT_EQ(PositionOf(once.body), PositionOf(again.body));
  EXPECT_NE(again.body.find("\"replayed\":true"), std::string::npos) << again.body;
  // Keys created through the CLI authenticate on every node; history agrees.
  Response h = Http(nodes_[2]->port(), "GET", "/v1/subjects/ada/history", "", keys_["operator"]);
  ASSERT_EQ(h.status, 200);
  EXPECT_NE(h.body.find("\"withdraw\""), std::string::npos) << h.body;
}

// Any node's change feed delivers every node's entries, in position order, without gaps: a
// feed open on node 1 while withdrawals go through nodes 0 and 2 (two writers at once).
struct FeedReader {
  std::string body;
  std::atomic<uint64_t> stop_at{UINT64_MAX};
  // Whether the body already holds the entry at stop_at.
  bool Done() const {
    const uint64_t at = stop_at.load();
    return at != UINT64_MAX && body.find("{\"position\":" + std::to_string(at) + ",") != std::string::npos;
  }
};
size_t FeedBytes(char* p, size_t size, size_t n, void* reader) {
  auto* r = static_cast<FeedReader*>(reader);
  r->body.append(p, size * n);
  return r->Done() ? 0 : size * n;  // 0: enough read, abort the transfer
}
int FeedProgress(void* reader, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<FeedReader*>(reader)->Done() ? 1 : 0;
}

TEST_F(ClusterTest, AnyNodesFeedDeliversEveryNodesEntriesInOrderWithoutGaps) {
  Response first = Withdraw(0, "feed-start");
  ASSERT_EQ(first.status, 201) << first.body;
  const uint64_t after = PositionOf(first.body);
  FeedReader reader;
  std::thread feed([&] {
    CURL* c = curl_easy_init();
    curl_slist* h = curl_slist_append(nullptr, ("Authorization: Bearer " + keys_["service"]).c_str());
    const std::string url = "http://127.0.0.1:" + std::to_string(nodes_[1]->port()) +
                            "/v1/changes?after=" + std::to_string(after);
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, FeedBytes);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &reader);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, FeedProgress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &reader);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_perform(c);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
  });
  std::mutex mu;
  std::set<std::string> subjects;
  uint64_t last = after;
  std::vector<std::thread> writers;
  for (int node : {0, 2}) {
    writers.emplace_back([&, node] {
      for (int i = 0; i < 20; ++i) {
        const std::string subject = "feed-" + std::to_string(node) + "-" + std::to_string(i);
        Response w = Withdraw(node, subject);
        EXPECT_EQ(w.status, 201) << w.body;
        std::lock_guard lock(mu);
        subjects.insert(subject);
        last = std::max(last, PositionOf(w.body));
      }
    });
  }
  for (auto& t : writers) t.join();
  reader.stop_at = last;
  feed.join();
  ASSERT_TRUE(reader.Done()) << "node 1's feed did not reach position " << last << ":\n" << reader.body;
  std::vector<uint64_t> positions;
  static const std::regex kLine(R"re(\{"position":(\d+),)re");
  for (std::sregex_iterator it(reader.body.begin(), reader.body.end(), kLine), end; it != end; ++it) {
    positions.push_back(std::stoull((*it)[1]));
  }
  ASSERT_FALSE(positions.empty());
  for (size_t i = 0; i < positions.size(); ++i) {
    ASSERT_EQ(positions[i], after + 1 + i) << "in order, without gaps or repeats";
  }
  EXPECT_GE(positions.back(), last) << "(a node's checkpoint may follow the last withdrawal)";
  for (const auto& subject : subjects) {
    EXPECT_NE(reader.body.find("\"subject\":\"" + subject + "\""), std::string::npos) << subject;
  }
}

// One misconfigured node cannot lock the cluster out: the ledger's key is fixed by its first
// checkpoint (signed by the first node to start), so a node with another key refuses to start,
// naming both keys, and signs nothing; the others restart and the audit still verifies.
TEST_F(ClusterTest, ANodeWithAnotherKeyRefusesToStartAndSignsNothing) {
  const std::string other_key = root_ + "/other.key";
  int code = 0;
  Assent("audit key --database " + url_ + " --audit-key " + other_key, &code);
  ASSERT_EQ(code, 0);
  const std::string out =
      Assent("serve --data " + root_ + "/rogue --database " + url_ + " --audit-key " + other_key +
                 " --listen 127.0.0.1:0 --quiet --audit-in-background",
             &code);
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("fixed by its first checkpoint"), std::string::npos) << out;
  EXPECT_NE(out.find("this node's key is"), std::string::npos) << out;
  ASSERT_EQ(Withdraw(0, "kim").status, 201);
  nodes_[1]->Kill();
  nodes_[1]->Start();
  for (int i = 0; i < 200 && Http(nodes_[1]->port(), "GET", "/readyz", "", "").status != 200; ++i) {
    std::this_thread::sleep_for(50ms);  // the audit runs in the background; writes wait for it
  }
  EXPECT_EQ(Withdraw(1, "lee").status, 201);
  const std::string verify =
      Assent("audit verify --data " + root_ + "/admin --database " + url_ + " --audit-key " +
                 key_file_,
             &code);
  EXPECT_EQ(code, 0) << verify;
}

// An erasure through one node puts the party on every node's suppression list: the others
// deny it as erased (never "not objected"), also after they restart.
TEST_F(ClusterTest, AnErasureThroughOneNodeIsEnforcedByTheOthers) {
  Response w = Withdraw(0, "ola");
  ASSERT_EQ(w.status, 201) << w.body;
  Response e = Http(nodes_[0]->port(), "DELETE", "/v1/subjects/ola", "", keys_["operator"]);
  ASSERT_EQ(e.status, 200) << e.body;
  const uint64_t erased_at = PositionOf(e.body);
  ASSERT_GT(erased_at, 0u);
  for (int node : {1, 2}) {
    Response d = Decide(node, "ola", erased_at);
    EXPECT_NE(d.body.find("\"reason\":\"erased\""), std::string::npos) << node << ": " << d.body;
  }
  nodes_[2]->Kill();
  nodes_[2]->Start();
  Response d = Decide(2, "ola", erased_at);
  EXPECT_NE(d.body.find("\"reason\":\"erased\""), std::string::npos) << d.body;
}

// A node starts while others write: its audit tree is built up to the position it replayed
// and follows from there (it once scanned to the store's head and refused to start with "the
// observer has more than the ledger", about one start in 45 under 8 writers).
TEST_F(ClusterTest, NodesStartWhileOthersWrite) {
  std::atomic<bool> stop{false};
  std::atomic<int> written{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < 6; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; !stop; ++i) {
        if (Withdraw(t % 2 == 0 ? 0 : 2, "w" + std::to_string(t) + "-" + std::to_string(i)).status == 201) {
          ++written;
        }
      }
    });
  }
  for (int round = 0; round < 8; ++round) {
    nodes_[1]->Kill();
    nodes_[1]->Start();  // fails the test if the node does not come up
    ASSERT_GT(nodes_[1]->port(), 0) << "round " << round;
  }
  stop = true;
  for (auto& w : writers) w.join();
  EXPECT_GT(written.load(), 0);
}

// After a database restart, a node's first write succeeds: its stale writer connection is
// replaced and the append (not yet begun) tried once more, transparently.
TEST_F(ClusterTest, TheFirstWriteAfterADatabaseRestartSucceeds) {
  ASSERT_EQ(Withdraw(2, "pat").status, 201);  // node 2's writer connection is now open
  ASSERT_EQ(Cluster("down"), 0);
  ASSERT_EQ(Cluster("up"), 0);
  Response ready;
  for (int i = 0; i < 100; ++i) {
    ready = Http(nodes_[2]->port(), "GET", "/readyz", "", "");
    if (ready.body.find("\"status\":\"ready\"") != std::string::npos) break;
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_NE(ready.body.find("\"status\":\"ready\""), std::string::npos) << ready.body;
  Response w = Withdraw(2, "quinn");
  EXPECT_EQ(w.status, 201) << w.body;
}

// Behind a round-robin balancer: a link minted through node 0 is redeemed at node 1, and its
// session works at node 2 — tokens are signed with a key every node derives from the ledger's.
TEST_F(ClusterTest, SigningInWorksThroughAnyNode) {
  Response link = Http(nodes_[0]->port(), "POST", "/v1/sessions", R"({"subject":"rae"})",
                       keys_["portal"]);
  ASSERT_EQ(link.status, 201) << link.body;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(link.body, m, std::regex("\"link\":\"([^\"]+)\"")));
  const std::string path = m[1].str();
  std::string headers;
  Response redeemed = Http(nodes_[1]->port(), "GET", path, "", "", {}, &headers);
  ASSERT_EQ(redeemed.status, 303) << redeemed.body;
  ASSERT_TRUE(std::regex_search(headers, m, std::regex("Set-Cookie: (assent_session=[0-9a-f]+)")));
  const std::string cookie = "Cookie: " + m[1].str();
  Response info = Http(nodes_[2]->port(), "GET", "/v1/session", "", "", {cookie});
  ASSERT_EQ(info.status, 200) << info.body;
  ASSERT_TRUE(std::regex_search(info.body, m, std::regex("\"csrf_token\":\"([0-9a-f]+)\"")));
  const std::string csrf = "X-CSRF-Token: " + m[1].str();
  Response grant = Http(nodes_[0]->port(), "POST", "/v1/subjects/rae/consents",
                        R"({"rule":"service-generated-for-ai-training","action":"grant"})", "",
                        {cookie, csrf});
  EXPECT_EQ(grant.status, 201) << grant.body;
  // The same link a second time does not work again — at any node: its use is in the ledger.
  for (auto& node : nodes_) EXPECT_EQ(Http(node->port(), "GET", path, "", "").status, 404);
  // A token changed by one character is refused everywhere.
  std::string forged = cookie;
  forged[forged.size() - 70] = forged[forged.size() - 70] == 'a' ? 'b' : 'a';
  EXPECT_EQ(Http(nodes_[0]->port(), "GET", "/v1/session", "", "", {forged}).status, 401);
  // Signing out at one node ends the session on every node, at once (the next request).
  EXPECT_EQ(Http(nodes_[2]->port(), "POST", "/v1/session/logout", "{}", "", {cookie, csrf}).status,
            200);
  for (auto& node : nodes_) {
    EXPECT_EQ(Http(node->port(), "GET", "/v1/session", "", "", {cookie}).status, 401);
    EXPECT_EQ(Http(node->port(), "POST", "/v1/subjects/rae/consents",
                   R"({"rule":"service-generated-for-ai-training","action":"withdraw"})", "",
                   {cookie, csrf}).status,
              401);
  }
  // What was recorded: one redeemed link and one ended session, named by hash only.
  Response ledger = Http(nodes_[1]->port(), "GET", "/v1/ledger", "", keys_["operator"]);
  ASSERT_EQ(ledger.status, 200);
  EXPECT_NE(ledger.body.find(R"("kind":"token","recorded_at")"), std::string::npos);
  EXPECT_NE(ledger.body.find(R"("action":"redeem","token_sha256":")"), std::string::npos);
  EXPECT_NE(ledger.body.find(R"("action":"end","token_sha256":")"), std::string::npos);
}

// One link, followed at the same moment through all three nodes: exactly one signs in.
TEST_F(ClusterTest, ALinkFollowedAtOnceThroughEveryNodeSignsInOnce) {
  for (int round = 0; round < 5; ++round) {
    Response link = Http(nodes_[round % 3]->port(), "POST", "/v1/sessions",
                         R"({"subject":"sol"})", keys_["portal"]);
    ASSERT_EQ(link.status, 201) << link.body;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(link.body, m, std::regex("\"link\":\"([^\"]+)\"")));
    const std::string path = m[1].str();
    std::atomic<int> signed_in{0}, refused{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 6; ++i) {
      threads.emplace_back([&, i] {
        const int status = Http(nodes_[i % 3]->port(), "GET", path, "", "").status;
        if (status == 303) ++signed_in;
        if (status == 404) ++refused;
      });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(signed_in.load(), 1) << "round " << round;
    EXPECT_EQ(refused.load(), 5) << "round " << round;
  }
}

TEST_F(ClusterTest, WithoutTheDatabaseDecisionsAreServedWritesRefusedAndReadyzDegraded) {
  Response w = Withdraw(0, "cy");
  ASSERT_EQ(w.status, 201) << w.body;
  const uint64_t n = PositionOf(w.body);
  ASSERT_EQ(Decide(1, "cy", n).status, 200);
  ASSERT_EQ(Cluster("down"), 0);
  // Writes: 503 problem details, nothing acknowledged.
  Response refused = Withdraw(1, "dee");
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_NE(refused.body.find("\"status\":503"), std::string::npos) << refused.body;
  // Decisions: from the state applied, with its position.
  Response d = Decide(1, "cy", n);
  EXPECT_EQ(d.status, 200) << d.body;
  EXPECT_NE(d.body.find("\"reason\":\"objected\""), std::string::npos) << d.body;
  // (at n or later: a node may have applied another node's entry, a checkpoint, before the
  // database went away)
  EXPECT_GE(PositionOf(d.body), n);
  // Readiness: degraded, saying why (a node notices at its next poll).
  Response ready;
  for (int i = 0; i < 50; ++i) {
    ready = Http(nodes_[2]->port(), "GET", "/readyz", "", "");
    if (ready.body.find("degraded") != std::string::npos) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(ready.status, 200) << ready.body;
  EXPECT_NE(ready.body.find("\"status\":\"degraded\""), std::string::npos) << ready.body;
  EXPECT_NE(ready.body.find("\"ledger\":\"unreachable\""), std::string::npos) << ready.body;
  ASSERT_EQ(Cluster("up"), 0);
  // Back: the nodes reconnect by themselves; the refused write was never recorded.
  Response again;
  for (int i = 0; i < 50 && again.status != 201; ++i) {
    again = Withdraw(1, "dee");
    if (again.status != 201) std::this_thread::sleep_for(100ms);
  }
  ASSERT_EQ(again.status, 201) << again.body;
  for (int i = 0; i < 50; ++i) {
    ready = Http(nodes_[2]->port(), "GET", "/readyz", "", "");
    if (ready.body.find("\"status\":\"ready\"") != std::string::npos) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_NE(ready.body.find("\"status\":\"ready\""), std::string::npos) << ready.body;
  ASSERT_EQ(Decide(0, "dee", PositionOf(again.body)).status, 200);  // node 0 has it
  Response h = Http(nodes_[0]->port(), "GET", "/v1/subjects/dee/history", "", keys_["operator"]);
  ASSERT_EQ(h.status, 200) << h.body;
  size_t count = 0;
  for (size_t at = 0; (at = h.body.find("\"withdraw\"", at)) != std::string::npos; ++at) ++count;
  EXPECT_EQ(count, 1u) << h.body;
}

TEST_F(ClusterTest, UnderLoadWithANodeKilledAndTheDatabaseRestartedNothingIsLostOrDoubled) {
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::map<std::string, uint64_t> acknowledged;  // subject -> position of its receipt
  std::atomic<int> failures{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < 6; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; !stop; ++i) {
        const std::string subject = "w" + std::to_string(w) + "-" + std::to_string(i);
        Response r = Withdraw(w % 3, subject);
        if (r.status == 201) {
          std::lock_guard lock(mu);
          acknowledged[subject] = PositionOf(r.body);
        } else {
          ++failures;  // refused while the database or the node was down: not acknowledged
          std::this_thread::sleep_for(20ms);
        }
      }
    });
  }
  // Each phase lasts until the writers got a number of acknowledgements in it (bounded).
  auto acknowledged_at_least = [&](size_t more) {
    size_t target;
    {
      std::lock_guard lock(mu);
      target = acknowledged.size() + more;
    }
    for (int i = 0; i < 600; ++i) {
      {
        std::lock_guard lock(mu);
        if (acknowledged.size() >= target) return true;
      }
      std::this_thread::sleep_for(20ms);
    }
    return false;
  };
  EXPECT_TRUE(acknowledged_at_least(60));
  nodes_[2]->Kill();  // mid-load, mid-write
  EXPECT_TRUE(acknowledged_at_least(20));  // the other nodes carry on
  nodes_[2]->Start();                      // (waits until it is ready)
  EXPECT_TRUE(acknowledged_at_least(20));
  ASSERT_EQ(Cluster("restart"), 0);
  EXPECT_TRUE(acknowledged_at_least(40));  // nodes reconnect with backoff and carry on
  stop = true;
  for (auto& t : writers) t.join();
  ASSERT_GT(acknowledged.size(), 50u);
  size_t after_restart = 0;
  {
    std::lock_guard lock(mu);
    for (const auto& [s, p] : acknowledged) after_restart += p > 0;
  }
  EXPECT_EQ(after_restart, acknowledged.size());

  // The database: dense positions; every acknowledged event once, at its receipt's position.
  PGconn* c = PQconnectdb(url_.c_str());
  ASSERT_EQ(PQstatus(c), CONNECTION_OK);
  PGresult* r = PQexec(c, "SELECT position, kind, convert_from(body, 'UTF8') FROM entries ORDER BY position");
  ASSERT_EQ(PQresultStatus(r), PGRES_TUPLES_OK);
  const int rows = PQntuples(r);
  std::map<uint64_t, std::string> bodies;
  for (int i = 0; i < rows; ++i) {
    const uint64_t p = std::stoull(PQgetvalue(r, i, 0));
    EXPECT_EQ(p, static_cast<uint64_t>(i + 1)) << "positions are dense";
    bodies[p] = PQgetvalue(r, i, 2);
  }
  PQclear(r);
  std::map<std::string, int> seen;  // pseudonym -> entries
  for (const auto& [p, body] : bodies) {
    std::smatch m;
    if (std::regex_search(body, m, std::regex("\"subject\":\"(p[^\"]+)\""))) ++seen[m[1]];
  }
  r = PQexec(c, "SELECT id, pseudonym FROM parties WHERE kind = 'subject'");
  std::map<std::string, std::string> pseudonym_of;
  for (int i = 0; i < PQntuples(r); ++i) pseudonym_of[PQgetvalue(r, i, 0)] = PQgetvalue(r, i, 1);
  PQclear(r);
  PQfinish(c);
  for (const auto& [subject, position] : acknowledged) {
    ASSERT_TRUE(pseudonym_of.count(subject)) << subject;
    EXPECT_EQ(seen[pseudonym_of[subject]], 1) << subject << " recorded exactly once";
    ASSERT_TRUE(bodies.count(position)) << subject;
    EXPECT_NE(bodies[position].find(pseudonym_of[subject]), std::string::npos)
        << subject << "'s receipt names position " << position;
  }
  for (const auto& [p, n] : seen) EXPECT_EQ(n, 1) << p << " appears " << n << " times";

  // Every node, asked at the same position, gives the same decisions.
  const uint64_t head = static_cast<uint64_t>(rows);
  std::string items;
  int k = 0;
  for (const auto& [subject, position] : acknowledged) {
    if (k++ == 200) break;
    items += std::string(items.empty() ? "" : ",") +
             R"({"category":"service_generated.telemetry","purpose":"ai_training.first_party","subjects":[")" +
             subject + "\"]}";
  }
  items += R"(,{"category":"service_generated.telemetry","purpose":"ai_training.first_party","subjects":["never-seen"]})";
  std::vector<std::string> answers;
  for (int node = 0; node < 3; ++node) {
    Response d;
    for (int attempt = 0; attempt < 10 && d.status != 200; ++attempt) {
      d = Http(nodes_[node]->port(), "POST", "/v1/decisions:batch",
               "{\"items\":[" + items + "],\"min_position\":" + std::to_string(head) + "}",
               keys_["service"]);
    }
    ASSERT_EQ(d.status, 200) << d.body;
    // Strip what legitimately differs: the time asked about and the position reached.
    answers.push_back(std::regex_replace(
        d.body, std::regex("\"at\":\"[^\"]*\"|\"position\":\\d+"), ""));
  }
  // Compared decision by decision, so a difference names the subject.
  auto split = [](const std::string& body) {
    std::vector<std::string> out;
    for (size_t at = 0, next; at != std::string::npos; at = next) {
      next = body.find("{\"decision\"", at + 1);
      out.push_back(body.substr(at, next == std::string::npos ? std::string::npos : next - at));
    }
    return out;
  };
  const auto first = split(answers[0]);
  for (int node : {1, 2}) {
    const auto other = split(answers[node]);
    ASSERT_EQ(first.size(), other.size());
    for (size_t i = 0; i < first.size(); ++i) {
      ASSERT_EQ(first[i], other[i]) << "node 0 and node " << node << " differ";
    }
  }
  EXPECT_NE(answers[0].find("objected"), std::string::npos);
  std::cerr << acknowledged.size() << " acknowledged, " << failures << " refused while down, "
            << rows << " entries\n";
}

}  // namespace
