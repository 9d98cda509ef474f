// Crash test: a child appending from many threads is killed with SIGKILL at random moments,
// 50 times. After each kill the ledger must open (positions dense, every hash intact) and hold
// every event the child acknowledged, at the position it acknowledged.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "assent/ledger.h"

namespace assent {
namespace {

namespace fs = std::filesystem;

struct Child {
  pid_t pid = -1;
  int out = -1;
};

Child Spawn(const std::string& dir, int run) {
  int fds[2];
  EXPECT_EQ(::pipe(fds), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], 1);
    ::close(fds[0]);
    ::close(fds[1]);
    std::string r = std::to_string(run);
    ::execl(ASSENT_CRASH_CHILD, ASSENT_CRASH_CHILD, dir.c_str(), r.c_str(), nullptr);
    ::_exit(127);
  }
  ::close(fds[1]);
  return Child{pid, fds[0]};
}

// Reads what is available within `ms` milliseconds into `buf`; false at end of file.
bool ReadFor(int fd, int ms, std::string* buf) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) return true;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    char tmp[65536];
    ssize_t n = ::read(fd, tmp, sizeof tmp);
    if (n <= 0) return false;
    buf->append(tmp, static_cast<size_t>(n));
  }
}

TEST(CrashTest, AcknowledgedEventsSurviveSigkill) {
  const std::string dir =
      (fs::temp_directory_path() / ("assent-crash-" + std::to_string(::getpid()))).string();
  fs::remove_all(dir);
  {
    LedgerOptions o;
    o.data_dir = dir;
    auto l = Ledger::Open(o);
    ASSERT_TRUE(l) << l.error().message;
    std::ifstream in(std::string(ASSENT_SOURCE_DIR) +
                     "/examples/terms/example-meetings-2023-08-07.yaml");
    std::stringstream ss;
    ss << in.rdbuf();
    ASSERT_TRUE((*l)->PublishTerms(ss.str(), "v2", {.backfill = true}));
  }
  std::mt19937 rng(std::random_device{}());
  std::map<uint64_t, std::string> acknowledged;  // position -> subject
  for (int run = 0; run < 50; ++run) {
    SCOPED_TRACE("run " + std::to_string(run));
    Child c = Spawn(dir, run);
    std::string out;
    // Wait for "ready", then let it append for a random while and kill it.
    while (out.find("ready\n") == std::string::npos) {
      ASSERT_TRUE(ReadFor(c.out, 50, &out)) << "the child exited before it was ready";
    }
    ReadFor(c.out, 5 + static_cast<int>(rng() % 120), &out);
    ::kill(c.pid, SIGKILL);
    int status = 0;
    ::waitpid(c.pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the child died on its own: " << status;
    while (ReadFor(c.out, 20, &out)) {
    }
    ::close(c.out);
    std::istringstream lines(out);
    std::string line;
    while (std::getline(lines, line)) {
      if (line == "ready" || line.empty()) continue;
      if (lines.eof()) break;  // a line cut by the kill was never acknowledged
      auto sp = line.find(' ');
      ASSERT_NE(sp, std::string::npos) << line;
      acknowledged[std::stoull(line.substr(0, sp))] = line.substr(sp + 1);
    }
    // Reopen: positions dense, hashes intact (Open verifies both), every ack present.
    LedgerOptions o;
    o.data_dir = dir;
    o.read_only = true;
    auto l = Ledger::Open(o);
    ASSERT_TRUE(l) << l.error().message;
    auto snap = (*l)->engine().snapshot();
    if (!acknowledged.empty()) {
      ASSERT_GE(snap->position(), acknowledged.rbegin()->first);
    }
    for (auto it = acknowledged.begin(); it != acknowledged.end(); ++it) {
      auto events = snap->EventsOf(PartyKind::kSubject, it->second);
      ASSERT_EQ(events.size(), 1u) << it->second;
      ASSERT_EQ(events[0].position, it->first) << it->second;
    }
  }
  EXPECT_GT(acknowledged.size(), 100u) << "the children acknowledged too little to mean much";
  fs::remove_all(dir);
}

}  // namespace
}  // namespace assent
