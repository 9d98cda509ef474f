// The change feed end to end: GET /v1/changes on the real `assent serve` read over a raw
// socket (a stream a client reads as it comes), and `assent changes` against it and against
// the local ledger — every entry once, in order, resumed after a disconnect with nothing
// missed or repeated; a subscriber that stops reading cut off with the position to resume from.
#include <sys/socket.h>

#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>

#include "server_harness.h"

namespace {

using namespace assent_test;
using namespace std::chrono_literals;

// A feed read over its own connection: the HTTP head, then the chunked body decoded as it
// arrives.
class Feed {
 public:
  // `rcvbuf`: the socket's receive buffer (small: a subscriber that barely reads).
  Feed(const Server& s, const std::string& query, const std::string& role, int rcvbuf = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (rcvbuf > 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(s.port()));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    const std::string request = "GET /v1/changes" + query + " HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " +
                                s.Key(role) + "\r\n\r\n";
    EXPECT_EQ(::send(fd_, request.data(), request.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(request.size()));
  }
  ~Feed() { Close(); }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // Reads until the body holds a line with `"position":P,` (P = until), the feed ends, or
  // `bound` passes. Returns whether the feed ended (the last chunk, or the peer closed).
  bool ReadUntil(uint64_t until, std::chrono::milliseconds bound = 10s) {
    const std::string needle = "{\"position\":" + std::to_string(until) + ",";
    const auto deadline = std::chrono::steady_clock::now() + bound;
    while (!ended_ && (until == 0 || body_.find(needle) == std::string::npos) &&
           std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      char buf[16384];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        ended_ = true;
        break;
      }
      raw_.append(buf, static_cast<size_t>(n));
      Decode();
    }
    return ended_;
  }

  // The positions of the entry lines so far, in order.
  std::vector<uint64_t> Positions() const {
    std::vector<uint64_t> out;
    for (const auto& line : Lines()) {
      if (line.starts_with("{\"position\":")) out.push_back(std::stoull(line.substr(12)));
    }
    return out;
  }
  std::vector<std::string> Lines() const {
    std::vector<std::string> out;
    std::istringstream in(body_);
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) out.push_back(line);
    }
    return out;
  }
  const std::string& head() const { return head_; }
  const std::string& body() const { return body_; }

 private:
  void Decode() {
    if (head_.empty()) {
      const size_t end = raw_.find("\r\n\r\n");
      if (end == std::string::npos) return;
      head_ = raw_.substr(0, end + 4);
      raw_.erase(0, end + 4);
    }
    for (;;) {
      const size_t eol = raw_.find("\r\n");
      if (eol == std::string::npos) return;
      const size_t size = std::stoul(raw_.substr(0, eol), nullptr, 16);
      if (size == 0) {
        ended_ = true;
        return;
      }
      if (raw_.size() < eol + 2 + size + 2) return;
      body_.append(raw_, eol + 2, size);
      raw_.erase(0, eol + 2 + size + 2);
    }
  }

  int fd_ = -1;
  bool ended_ = false;
  std::string raw_, head_, body_;
};

uint64_t PositionIn(const std::string& body) {
  std::smatch m;
  if (!std::regex_search(body, m, std::regex("\"position\":(\\d+)"))) return 0;
  return std::stoull(m[1]);
}

const std::string kWithdraw =
    R"({"rule":"service-generated-for-ai-training","action":"withdraw"})";

// Positions 1..n, each once.
void ExpectEveryPositionOnce(const std::vector<uint64_t>& seen, uint64_t n) {
  std::vector<uint64_t> want(n);
  for (uint64_t i = 0; i < n; ++i) want[i] = i + 1;
  EXPECT_EQ(seen, want) << "every entry once, in order";
}

TEST(FeedTest, StreamsEveryEntryThenNewOnesAsTheyCommitAndResumesWithNothingMissedOrRepeated) {
  Server s;
  const uint64_t head = s.Position();
  ASSERT_GT(head, 0u);
  Feed feed(s, "?after=0", "service");
  ASSERT_FALSE(feed.ReadUntil(head));
  EXPECT_NE(feed.head().find("200 OK"), std::string::npos) << feed.head();
  EXPECT_NE(feed.head().find("application/x-ndjson"), std::string::npos) << feed.head();
  // A withdrawal committed now arrives on the open feed, naming the subject (a service key).
  Response w = s.Call("POST", "/v1/subjects/u1/consents", kWithdraw);
  ASSERT_EQ(w.status, 201) << w.body;
  const uint64_t p = PositionIn(w.body);
  ASSERT_FALSE(feed.ReadUntil(p, 5s)) << "the feed ended early: " << feed.body();
  const std::string last = feed.Lines().back();
  EXPECT_NE(last.find("\"subject\":\"u1\""), std::string::npos) << last;
  EXPECT_NE(last.find("\"kind\":\"consent\""), std::string::npos) << last;
  EXPECT_NE(last.find("\"hash\":\""), std::string::npos) << last;
  // The subscriber goes; entries commit meanwhile; it resumes from the last position it saw.
  std::vector<uint64_t> seen = feed.Positions();
  feed.Close();
  uint64_t end = p;
  for (int i = 0; i < 5; ++i) {
    Response r = s.Call("POST", "/v1/subjects/r" + std::to_string(i) + "/consents", kWithdraw);
    ASSERT_EQ(r.status, 201) << r.body;
    end = PositionIn(r.body);
  }
  Feed resumed(s, "?after=" + std::to_string(seen.back()), "service");
  ASSERT_FALSE(resumed.ReadUntil(end));
  for (uint64_t q : resumed.Positions()) seen.push_back(q);
  ExpectEveryPositionOnce(seen, end);
}

TEST(FeedTest, AuditorsSeePseudonymsAndFollowFalseEndsAtTheHead) {
  Server s;
  ASSERT_EQ(s.Call("POST", "/v1/subjects/alice/consents", kWithdraw).status, 201);
  const uint64_t head = s.Position();
  Response service = s.Call("GET", "/v1/changes?after=0&follow=false", "", "service");
  ASSERT_EQ(service.status, 200) << service.body;
  EXPECT_NE(service.body.find("\"subject\":\"alice\""), std::string::npos);
  Response auditor = s.Call("GET", "/v1/changes?after=0&follow=false", "", "auditor");
  ASSERT_EQ(auditor.status, 200) << auditor.body;
  EXPECT_EQ(auditor.body.find("alice"), std::string::npos) << "an auditor sees no party id";
  EXPECT_TRUE(std::regex_search(auditor.body, std::regex(R"("subject":"[A-Za-z0-9_-]{20,}")")))
      << auditor.body;
  // Both end at the head: every entry, once.
  Feed f(s, "?after=0&follow=false", "auditor");
  EXPECT_TRUE(f.ReadUntil(0, 5s)) << "follow=false ends the stream";
  ExpectEveryPositionOnce(f.Positions(), head);
  // After the head: nothing, and the stream ends.
  Response none = s.Call("GET", "/v1/changes?after=" + std::to_string(head) + "&follow=false");
  EXPECT_EQ(none.status, 200);
  EXPECT_EQ(none.body.find("position"), std::string::npos) << none.body;
  // Refusals: a malformed position or flag, no key, a portal key.
  for (std::string q : {"?after=-1", "?after=x", "?after=", "?after=99999999999999999999999",
                        "?follow=maybe"}) {
    Response r = s.Call("GET", "/v1/changes" + q);
    EXPECT_EQ(r.status, 400) << q << ": " << r.body;
    EXPECT_NE(r.body.find("malformed-request"), std::string::npos) << r.body;
  }
  EXPECT_EQ(s.Call("GET", "/v1/changes?follow=false", "", "").status, 401);
  EXPECT_EQ(s.Call("GET", "/v1/changes?follow=false", "", "portal").status, 403);
}

// A subscriber that stops reading: the feed stops producing once its unread bytes pass the
// limit (nothing buffered beyond it), and after --feed-stall it gets a last line naming the
// position to resume from; resuming there misses and repeats nothing.
TEST(FeedTest, ASubscriberThatStopsReadingIsCutOffWithThePositionToResumeFrom) {
  Server s("", {"--feed-buffer", "4096", "--feed-stall", "0.5"});
  for (int i = 0; i < 600; ++i) {
    ASSERT_EQ(s.Call("POST", "/v1/subjects/s" + std::to_string(i) + "/consents", kWithdraw).status,
              201);
  }
  const uint64_t head = s.Position();
  Feed slow(s, "?after=0", "service", /*rcvbuf=*/4096);
  std::this_thread::sleep_for(2s);  // reads nothing meanwhile
  EXPECT_TRUE(slow.ReadUntil(0, 10s)) << "the server ends a stalled feed";
  const auto lines = slow.Lines();
  ASSERT_FALSE(lines.empty());
  const std::string& last = lines.back();
  EXPECT_NE(last.find("slow-consumer"), std::string::npos) << last;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(last, m, std::regex("\"resume_from\":(\\d+)"))) << last;
  const uint64_t resume = std::stoull(m[1]);
  std::vector<uint64_t> seen = slow.Positions();
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(resume, seen.back()) << "resume_from is the last entry delivered";
  EXPECT_LT(resume, head) << "the stalled subscriber was cut off before the head";
  // The server kept serving meanwhile, and the subscriber resumes where it was cut off.
  EXPECT_EQ(s.Call("GET", "/healthz").status, 200);
  Feed again(s, "?after=" + std::to_string(resume) + "&follow=false", "service");
  EXPECT_TRUE(again.ReadUntil(0, 10s));
  for (uint64_t q : again.Positions()) seen.push_back(q);
  ExpectEveryPositionOnce(seen, head);
}

// Feeds at the head share the entries they read; an erasure leaves no plain id behind in
// what they share: read again after it, the erased party's entries say "erased".
TEST(FeedTest, AfterAnErasureNoFeedNamesTheErasedParty) {
  Server s;
  Response w = s.Call("POST", "/v1/subjects/eve/consents", kWithdraw);
  ASSERT_EQ(w.status, 201) << w.body;
  const uint64_t p = PositionIn(w.body);
  {
    Feed at_head(s, "?after=" + std::to_string(p - 1), "service");
    ASSERT_FALSE(at_head.ReadUntil(p));
    EXPECT_NE(at_head.body().find("\"subject\":\"eve\""), std::string::npos) << at_head.body();
    Feed second(s, "?after=" + std::to_string(p - 1), "operator");
    ASSERT_FALSE(second.ReadUntil(p));
    EXPECT_NE(second.body().find("\"subject\":\"eve\""), std::string::npos);
  }
  ASSERT_EQ(s.Call("DELETE", "/v1/subjects/eve", "", "operator").status, 200);
  for (const char* role : {"service", "operator"}) {
    Response again = s.Call("GET", "/v1/changes?after=" + std::to_string(p - 1) + "&follow=false", "", role);
    ASSERT_EQ(again.status, 200);
    EXPECT_EQ(again.body.find("eve"), std::string::npos) << again.body;
    EXPECT_NE(again.body.find("\"erased\":true"), std::string::npos) << again.body;
  }
}

// SIGTERM with feeds open: each ends (its last chunk) and the server exits promptly.
TEST(FeedTest, ShutdownEndsOpenFeeds) {
  Server s;
  const uint64_t head = s.Position();
  Feed a(s, "?after=0", "service"), b(s, "?after=" + std::to_string(head), "auditor");
  ASSERT_FALSE(a.ReadUntil(head));
  std::this_thread::sleep_for(200ms);  // b waits for entries
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(s.Terminate(), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_TRUE(a.ReadUntil(0, 2s));
  EXPECT_TRUE(b.ReadUntil(0, 2s));
}

// Runs `assent ARGS` for at most `seconds` (timeout(1)); its standard output.
std::string AssentFor(const std::string& args, int seconds, int* code = nullptr) {
  const std::string cmd = "timeout " + std::to_string(seconds) + " '" ASSENT_BINARY "' " + args +
                          " 2>/dev/null";
  FILE* p = ::popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  const int status = ::pclose(p);
  if (code) *code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

std::vector<uint64_t> PositionsOf(const std::string& out) {
  std::vector<uint64_t> positions;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    EXPECT_TRUE(line.starts_with("{\"position\":")) << "not an entry: " << line;
    if (line.starts_with("{\"position\":")) positions.push_back(std::stoull(line.substr(12)));
  }
  return positions;
}

// `assent changes --server`: to the head, then following (new entries as they commit).
TEST(FeedTest, TheChangesCommandReadsAServersFeedAndFollowsIt) {
  Server s;
  const std::string key_file = fs::temp_directory_path() / ("assent-feed-key-" + std::to_string(::getpid()));
  std::ofstream(key_file) << s.Key("service") << "\n";
  const std::string server = "--server " + s.Url("") + " --key-file " + key_file;
  int code = -1;
  const uint64_t head = s.Position();
  std::string out = AssentFor("changes " + server + " --after 0", 20, &code);
  EXPECT_EQ(code, 0) << out;
  ExpectEveryPositionOnce(PositionsOf(out), head);
  // --follow: an entry committed while it runs is printed; timeout(1) ends it.
  std::thread writer([&] {
    std::this_thread::sleep_for(1s);
    s.Call("POST", "/v1/subjects/late/consents", kWithdraw);
  });
  out = AssentFor("changes " + server + " --after " + std::to_string(head) + " --follow", 4, &code);
  writer.join();
  EXPECT_EQ(code, 124) << "it follows until stopped";
  ASSERT_EQ(PositionsOf(out), std::vector<uint64_t>{head + 1}) << out;
  EXPECT_NE(out.find("\"subject\":\"late\""), std::string::npos) << out;
  // Without a key, or with a bad URL: an error that says what to do, and nothing printed.
  out = AssentFor("changes --server " + s.Url(""), 10, &code);
  EXPECT_EQ(code, 2);
  EXPECT_TRUE(out.empty()) << out;
  EXPECT_EQ(AssentFor("changes --server localhost:1 --key-file " + key_file, 10, &code), "");
  EXPECT_EQ(code, 2);
  fs::remove(key_file);
}

// `assent changes --data DIR`: the local ledger, and --follow while another process appends.
TEST(FeedTest, TheChangesCommandReadsAndFollowsTheLocalLedger) {
  const std::string dir = fs::temp_directory_path() / ("assent-feed-local-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  { Server first(dir); EXPECT_EQ(first.Terminate(), 0); }  // the demo's terms and keys
  int code = -1;
  std::string out = AssentFor("changes --data '" + dir + "' --after 2", 20, &code);
  EXPECT_EQ(code, 0) << out;
  const auto positions = PositionsOf(out);
  ASSERT_FALSE(positions.empty());
  EXPECT_EQ(positions.front(), 3u);
  const uint64_t head = positions.back();
  std::thread writer([&] {
    std::this_thread::sleep_for(1s);
    const std::string cmd = std::string("'") + ASSENT_BINARY + "' consent withdraw --data '" +
                            dir + "' --subject bob --rule service-generated-for-ai-training > /dev/null 2>&1";
    EXPECT_EQ(std::system(cmd.c_str()), 0);
  });
  out = AssentFor("changes --data '" + dir + "' --after " + std::to_string(head) + " --follow", 4,
                  &code);
  writer.join();
  EXPECT_EQ(code, 124);
  ASSERT_EQ(PositionsOf(out), std::vector<uint64_t>{head + 1}) << out;
  EXPECT_NE(out.find("\"subject\":\"bob\""), std::string::npos)
      << "a party the reader had not seen when it opened is named: " << out;
  fs::remove_all(dir);
}

}  // namespace
