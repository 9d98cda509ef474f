// The server tests' harness: the real `assent serve` binary on port 0 with a temporary data
// directory (class Server), driven by a real HTTP client (libcurl) and, for malformed HTTP and
// streams, a raw socket. Header-only; each test file includes it once.
#ifndef ASSENT_TEST_INTEGRATION_SERVER_HARNESS_H_
#define ASSENT_TEST_INTEGRATION_SERVER_HARNESS_H_

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <random>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "common/json_writer.h"

namespace assent_test {

namespace fs = std::filesystem;

struct Response {
  long status = 0;
  std::string body;
  std::string content_type;
  std::string headers;
};

// With ASSENT_API_RECORD=FILE, every answer is appended to FILE as one JSON line (method, path,
// request body, status, content type, body) for the contract test (test/api_contract_test.py), which checks
// each against /openapi.json.
inline void Record(const std::string& method, const std::string& path, const std::string& request,
            long status, const std::string& content_type, const std::string& body) {
  const char* file = std::getenv("ASSENT_API_RECORD");
  if (!file || !*file || status == 0) return;
  assent::JsonWriter w;
  w.BeginObject().Key("method").String(method).Key("path").String(path);
  w.Key("request").String(request.size() <= (1u << 20) ? request : std::string());
  w.Key("status").Int(status).Key("content_type").String(content_type);
  const bool whole = body.size() <= (1u << 20);
  w.Key("body").String(whole ? body : std::string()).Key("truncated").Bool(!whole).EndObject();
  std::string line = w.Take() + "\n";
  const int fd = ::open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return;
  ::flock(fd, LOCK_EX);  // test processes run side by side: one whole line each
  for (size_t at = 0; at < line.size();) {
    const ssize_t n = ::write(fd, line.data() + at, line.size() - at);
    if (n <= 0) break;
    at += static_cast<size_t>(n);
  }
  ::close(fd);
}

inline size_t Collect(char* p, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(p, size * n);
  return size * n;
}

// An example request for one route.
struct Example {
  std::string method, path, body;
};

class Server {
 public:
  // A server on a fresh directory (removed afterwards), or on `dir` (kept) with `extra` flags.
  // `nofile`: the server's descriptor limit (RLIMIT_NOFILE), when not 0.
  explicit Server(std::string dir = "", std::vector<std::string> extra = {}, int nofile = 0)
      : owns_dir_(dir.empty()) {
    std::mt19937_64 rng(std::random_device{}());
    dir_ = owns_dir_ ? (fs::temp_directory_path() / ("assent-server-" + std::to_string(rng())))
                           .string()
                     : dir;
    std::vector<std::string> args = {ASSENT_BINARY, "serve", "--data", dir_, "--listen",
                                     "127.0.0.1:0", "--demo", "--quiet", "--read-timeout", "2",
                                     "--threads", "2"};
    if (std::find(extra.begin(), extra.end(), "--idle-timeout") == extra.end()) {
      args.insert(args.end(), {"--idle-timeout", "2"});
    }
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int out[2];
    EXPECT_EQ(::pipe(out), 0);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      ::close(out[0]);
      ::close(out[1]);
      if (::chdir(ASSENT_SOURCE_DIR) != 0) ::_exit(126);
      if (nofile > 0) {
        rlimit rl{static_cast<rlim_t>(nofile), static_cast<rlim_t>(nofile)};
        if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) ::_exit(125);
        // Out of descriptors, UBSan's vptr check cannot read /proc/self/maps and misreports
        // Boost's error categories (see the file); everything else still halts.
        ::setenv("UBSAN_OPTIONS",
                 "print_stacktrace=1:halt_on_error=1:suppressions=" ASSENT_SOURCE_DIR
                 "/test/ubsan-fd-exhaustion.supp",
                 1);
      }
      ::execv(ASSENT_BINARY, argv.data());
      ::_exit(127);
    }
    ::close(out[1]);
    out_ = out[0];
    std::string text;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (text.find("try:") == std::string::npos && std::chrono::steady_clock::now() < deadline) {
      pollfd p{out_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char buf[4096];
      ssize_t n = ::read(out_, buf, sizeof buf);
      if (n <= 0) break;
      text.append(buf, static_cast<size_t>(n));
    }
    std::smatch m;
    if (std::regex_search(text, m, std::regex("on http://127\\.0\\.0\\.1:(\\d+)"))) {
      port_ = std::stoi(m[1]);
    }
    for (const char* role : {"service", "operator", "auditor", "portal"}) {
      if (std::regex_search(text, m, std::regex(std::string("  ") + role + " +(assent_[0-9a-f]+)"))) {
        keys_[role] = m[1];
      }
    }
    EXPECT_GT(port_, 0) << text;
  }
  ~Server() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    ::close(out_);
    if (owns_dir_) fs::remove_all(dir_);
  }

  // Sends SIGTERM and returns the exit status.
  int Terminate() {
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  std::string Url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

  Response Call(const std::string& method, const std::string& path, const std::string& body = "",
                const std::string& role = "service",
                const std::vector<std::string>& headers = {}) const {
    CURL* c = curl_easy_init();
    Response r;
    curl_slist* h = nullptr;
    if (!role.empty() && keys_.count(role)) {
      h = curl_slist_append(h, ("Authorization: Bearer " + keys_.at(role)).c_str());
    }
    for (const auto& x : headers) h = curl_slist_append(h, x.c_str());
    std::string url = Url(path);
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
    if (method == "POST" || !body.empty()) {
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, Collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, Collect);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r.headers);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    if (curl_easy_perform(c) == CURLE_OK) {
      curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
      char* ct = nullptr;
      curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
      if (ct) r.content_type = ct;
      Record(method, path, body, r.status, r.content_type, r.body);
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return r;
  }

  // Raw bytes over TCP; returns what the server answered before closing or 3 s passed.
  std::string Raw(const std::string& bytes) const { return Raw(std::vector<std::string>{bytes}); }
  // The pieces one after another, `gap` apart.
  // A TCP connection to the server, or -1.
  int Connect() const {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port_));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(fd);
      return -1;
    }
    return fd;
  }
  std::string Raw(const std::vector<std::string>& pieces,
                  std::chrono::milliseconds gap = std::chrono::milliseconds(0)) const {
    int fd = Connect();
    if (fd < 0) return "connect failed";
    for (size_t i = 0; i < pieces.size(); ++i) {
      if (i) std::this_thread::sleep_for(gap);
      for (size_t sent = 0; sent < pieces[i].size();) {
        ssize_t n = ::send(fd, pieces[i].data() + sent, pieces[i].size() - sent, MSG_NOSIGNAL);
        if (n <= 0) break;
        sent += static_cast<size_t>(n);
      }
    }
    std::string out = ReadUntil(fd, "", std::chrono::seconds(3));
    ::close(fd);
    return out;
  }

  // What arrives on `fd` until `needle` (never, when empty) is in it, the peer closes, or
  // `bound` passes.
  static std::string ReadUntil(int fd, const std::string& needle, std::chrono::seconds bound) {
    std::string out;
    auto deadline = std::chrono::steady_clock::now() + bound;
    while ((needle.empty() || out.find(needle) == std::string::npos) &&
           std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char buf[4096];
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }

  uint64_t Position() const {
    Response r = Call("GET", "/readyz", "", "");
    std::smatch m;
    if (std::regex_search(r.body, m, std::regex("\"position\":(\\d+)"))) return std::stoull(m[1]);
    return 0;
  }

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string Key(const std::string& role) const { return keys_.at(role); }

  // Signs in through a one-time link: returns {cookie header, csrf token}.
  std::pair<std::string, std::string> SignIn(const std::string& body) const {
    Response link = Call("POST", "/v1/sessions", body, "portal");
    std::smatch m;
    if (!std::regex_search(link.body, m, std::regex("\"link\":\"([^\"]+)\""))) return {};
    Response r = Call("GET", m[1], "", "");
    if (!std::regex_search(r.headers, m, std::regex("Set-Cookie: (assent_session=[0-9a-f]+)"))) {
      return {};
    }
    std::string cookie = "Cookie: " + m[1].str();
    Response info = Call("GET", "/v1/session", "", "", {cookie});
    if (!std::regex_search(info.body, m, std::regex("\"csrf_token\":\"([0-9a-f]+)\""))) {
      return {cookie, ""};
    }
    return {cookie, m[1]};
  }

  // Fills the placeholders of an example: fresh key names, a key to revoke, datasets.
  Example Prepare(Example ex) const {
    static int counter = 0;
    auto dataset = [&](const std::string& name) {
      return R"({"name":")" + name +
             R"(","purpose":"ai_training.first_party","ledger_position":1,"subjects":["u1","u2"],"accounts":["acme"],"items":2,"shards":[{"file":"f.00-of-1","items":2,"subjects":["u1","u2"]}]})";
    };
    if (ex.body == "NEWDATASET") ex.body = dataset("ds-" + std::to_string(++counter));
    if (ex.path.find("DATASET") != std::string::npos || ex.body == "NEWMODEL") {
      std::string name = "ds-" + std::to_string(++counter);
      Call("POST", "/v1/datasets", dataset(name), "operator");
      if (ex.body == "NEWMODEL") {
        ex.body = R"({"name":"model-)" + std::to_string(++counter) + R"(","datasets":[")" + name + "\"]}";
      } else {
        ex.path.replace(ex.path.find("DATASET"), 7, name);
      }
    }
    if (ex.body == "NEWKEY") {
      ex.body = R"({"role":"auditor","name":"made-)" + std::to_string(++counter) + "\"}";
    }
    for (std::string kind : {"SUBJECT", "ACCOUNT"}) {
      const std::string mark = "DOOMED" + kind;
      if (ex.path.find(mark) == std::string::npos) continue;
      const std::string id = "doomed-" + std::to_string(++counter);
      const bool subject = kind == "SUBJECT";
      Call("POST", std::string(subject ? "/v1/subjects/" : "/v1/accounts/") + id + "/consents",
           subject ? R"({"rule":"service-generated-for-ai-training","action":"withdraw"})"
                   : R"({"rule":"meeting-quality-review","action":"withdraw"})",
           "operator");
      ex.path.replace(ex.path.find(mark), mark.size(), id);
    }
    for (std::string kind : {"SUBJECT", "ACCOUNT"}) {  // a receipt of an event made for it
      const std::string mark = "RECEIPT" + kind;
      if (ex.path.find(mark) == std::string::npos) continue;
      const bool subject = kind == "SUBJECT";
      Response r = Call("POST", std::string(subject ? "/v1/subjects/u1" : "/v1/accounts/a1") +
                                    "/consents",
                        subject ? R"({"rule":"service-generated-for-ai-training","action":"withdraw"})"
                                : R"({"rule":"meeting-quality-review","action":"withdraw"})",
                        "operator");
      std::smatch m;
      std::regex_search(r.body, m, std::regex("\"position\":(\\d+)"));
      ex.path.replace(ex.path.find(mark), mark.size(), m[1].str());
    }
    if (ex.path.find("KEYNAME") != std::string::npos) {
      std::string name = "doomed-" + std::to_string(++counter);
      Call("POST", "/v1/keys", R"({"role":"auditor","name":")" + name + "\"}", "operator");
      ex.path.replace(ex.path.find("KEYNAME"), 7, name);
    }
    return ex;
  }

  std::string MintLink() const {
    Response link = Call("POST", "/v1/sessions", R"({"subject":"u1"})", "portal");
    std::smatch m;
    std::regex_search(link.body, m, std::regex("\"link\":\"([^\"]+)\""));
    return m[1];
  }

 private:
  std::string dir_;
  bool owns_dir_ = true;
  pid_t pid_ = -1;
  int out_ = -1;
  int port_ = 0;
  std::map<std::string, std::string> keys_;
};

}  // namespace assent_test

#endif  // ASSENT_TEST_INTEGRATION_SERVER_HARNESS_H_
