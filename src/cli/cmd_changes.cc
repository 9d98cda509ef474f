// `assent changes --after N [--follow] [--server URL]`: the change feed on the command line —
// every ledger entry after position N as one JSON line (the export's), from the local ledger
// or from a server's GET /v1/changes; with --follow it stays, printing entries as they commit,
// and reconnects (from the last position printed) when a server drops it. Nothing is printed
// twice and nothing is skipped: the next line always has the position after the last one.
#include <curl/curl.h>
#include <dlfcn.h>
#include <fmt/core.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <thread>
#include <type_traits>

#include "cli/commands.h"

namespace assent::cli {
namespace {

// libcurl, loaded the first time a server's feed is read — its only use here — so that no
// other command loads it and the two dozen libraries it brings (TLS, Kerberos, LDAP, IDN…):
// about 5 ms of every start of the program.
struct CurlApi {
  decltype(&curl_easy_init) easy_init = nullptr;
  decltype(&curl_easy_setopt) easy_setopt = nullptr;
  decltype(&curl_easy_perform) easy_perform = nullptr;
  decltype(&curl_easy_getinfo) easy_getinfo = nullptr;
  decltype(&curl_easy_cleanup) easy_cleanup = nullptr;
  decltype(&curl_easy_strerror) easy_strerror = nullptr;
  decltype(&curl_slist_append) slist_append = nullptr;
  decltype(&curl_slist_free_all) slist_free_all = nullptr;
  std::string error;  // why it could not be loaded; empty when it was
};

const CurlApi& Curl() {
  static const CurlApi api = [] {
    CurlApi a;
    void* lib = ::dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      const char* why = ::dlerror();
      a.error = std::string("cannot load libcurl (libcurl.so.4; the install script installs it): ") +
                (why ? why : "unknown error");
      return a;
    }
    auto get = [&](auto& f, const char* name) {
      f = reinterpret_cast<std::remove_reference_t<decltype(f)>>(::dlsym(lib, name));
      if (!f && a.error.empty()) a.error = std::string("libcurl lacks ") + name;
    };
    get(a.easy_init, "curl_easy_init");
    get(a.easy_setopt, "curl_easy_setopt");
    get(a.easy_perform, "curl_easy_perform");
    get(a.easy_getinfo, "curl_easy_getinfo");
    get(a.easy_cleanup, "curl_easy_cleanup");
    get(a.easy_strerror, "curl_easy_strerror");
    get(a.slist_append, "curl_slist_append");
    get(a.slist_free_all, "curl_slist_free_all");
    return a;
  }();
  return api;
}


struct ChangesCommand {
  std::string data = "./assent-data";
  uint64_t after = 0;
  bool follow = false;
  std::string server;    // a base URL: http://host:port
  std::string key_file;  // else ASSENT_KEY
  double poll = 0.1;     // seconds between looks at a local ledger
};

// The position a line names ({"position":N,...}), or 0.
uint64_t PositionOf(std::string_view line) {
  constexpr std::string_view kField = "{\"position\":";
  if (!line.starts_with(kField)) return 0;
  uint64_t p = 0;
  std::from_chars(line.data() + kField.size(), line.data() + line.size(), p);
  return p;
}

// Writes whole lines to standard output, flushed as they come (a consumer reads each at once);
// remembers the last position and a problem line that ends a server's feed.
class LinePrinter {
 public:
  explicit LinePrinter(uint64_t after) : last_(after) {}

  void Feed(std::string_view bytes) {
    partial_.append(bytes);
    size_t start = 0;
    for (size_t nl; (nl = partial_.find('\n', start)) != std::string::npos; start = nl + 1) {
      Line(std::string_view(partial_).substr(start, nl - start));
    }
    partial_.erase(0, start);
    std::fflush(stdout);
  }
  uint64_t last() const { return last_; }
  // The feed's own last line when it ended with a problem (slow consumer, unreadable ledger).
  const std::string& problem() const { return problem_; }
  // What came that was not an entry: the problem line, or an unterminated answer.
  std::string_view rest() const { return problem_.empty() ? partial_ : problem_; }
  void ResetConnection() {
    partial_.clear();
    problem_.clear();
  }

 private:
  void Line(std::string_view line) {
    if (line.empty()) return;  // a keep-alive
    const uint64_t p = PositionOf(line);
    if (p == 0) {
      problem_.assign(line);
      return;
    }
    if (p <= last_) return;  // never twice (a reconnect starts after the last printed)
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fputc('\n', stdout);
    last_ = p;
  }

  uint64_t last_;
  std::string partial_;
  std::string problem_;
};

size_t OnBytes(char* p, size_t size, size_t n, void* printer) {
  static_cast<LinePrinter*>(printer)->Feed(std::string_view(p, size * n));
  return size * n;
}

// The local ledger: pages to its head, and with --follow, each new entry as it commits.
int FromLedger(const ChangesCommand& o) {
  auto ledger = OpenLedger(o.data, true);
  if (!ledger) return Fail(ledger.error());
  LinePrinter printer(o.after);
  const auto pause = std::chrono::milliseconds(static_cast<int64_t>(o.poll * 1000));
  for (;;) {
    std::string page;
    uint64_t last = printer.last();
    if (auto st = (*ledger)->ExportPage(printer.last(), UINT64_MAX, 1u << 20, true, &page, &last);
        !st) {
      return Fail(st.error());
    }
    printer.Feed(page);
    if (last != printer.last()) continue;  // more may follow at once
    if (!o.follow) return 0;
    std::this_thread::sleep_for(pause);
  }
}

// A server's feed; reconnects from the last position printed when it ends early (with
// --follow, also when the connection fails, waiting longer each time up to 5 s).
int FromServer(const ChangesCommand& o) {
  std::string key;
  if (!o.key_file.empty()) {
    if (!ReadFile(o.key_file, &key)) return Fail("--key-file: cannot read '" + o.key_file + "'");
    while (!key.empty() && (key.back() == '\n' || key.back() == '\r' || key.back() == ' ')) {
      key.pop_back();
    }
  } else if (const char* env = std::getenv("ASSENT_KEY")) {
    key = env;
  }
  if (key.empty()) {
    return Fail("a server's feed needs an API key: set ASSENT_KEY or give --key-file FILE "
                "(operator and service keys see party ids, auditor keys pseudonyms)");
  }
  if (!o.server.starts_with("http://") && !o.server.starts_with("https://")) {
    return Fail("--server must be a URL such as http://127.0.0.1:8080");
  }
  std::string base = o.server;
  while (base.ends_with('/')) base.pop_back();
  const CurlApi& curl = Curl();
  if (!curl.error.empty()) return Fail(curl.error);
  LinePrinter printer(o.after);
  auto backoff = std::chrono::milliseconds(100);
  for (;;) {
    printer.ResetConnection();
    const std::string url = fmt::format("{}/v1/changes?after={}&follow={}", base, printer.last(),
                                        o.follow ? "true" : "false");
    CURL* c = curl.easy_init();
    if (!c) return Fail("cannot start an HTTP client");
    curl_slist* h = curl.slist_append(nullptr, ("Authorization: Bearer " + key).c_str());
    curl.easy_setopt(c, CURLOPT_URL, url.c_str());
    curl.easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl.easy_setopt(c, CURLOPT_WRITEFUNCTION, OnBytes);
    curl.easy_setopt(c, CURLOPT_WRITEDATA, &printer);
    curl.easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    // A feed sends a keep-alive line every 15 s: a minute of silence is a dead connection.
    curl.easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl.easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
    curl.easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    const uint64_t before = printer.last();
    const CURLcode rc = curl.easy_perform(c);
    long status = 0;
    curl.easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl.slist_free_all(h);
    curl.easy_cleanup(c);
    if (rc == CURLE_OK && status != 200) {
      return Fail(fmt::format("{} answered {}: {}", url, status, printer.rest()));
    }
    if (rc == CURLE_OK && printer.problem().empty() && !o.follow) return 0;  // at the head
    // Ended early: a problem line (slow consumer, the node stopping) or a broken connection.
    const std::string why = rc != CURLE_OK ? curl.easy_strerror(rc)
                            : printer.problem().empty() ? "the server closed the feed"
                                                        : printer.problem();
    if (rc != CURLE_OK && !o.follow) {
      return Fail(fmt::format("{}: {} (printed up to position {}; resume with --after {})", url,
                              why, printer.last(), printer.last()));
    }
    if (printer.last() > before) backoff = std::chrono::milliseconds(100);
    std::cerr << fmt::format("assent: the feed ended ({}); resuming after position {}\n", why,
                             printer.last());
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
  }
}

}  // namespace

void RegisterChangesCommand(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<ChangesCommand>();
  auto* cmd = app.add_subcommand(
      "changes", "Print ledger entries after a position as JSON lines; --follow waits for more");
  AddDataOption(cmd, &o->data);
  cmd->add_option("--after", o->after, "The last position already processed (0: from the start)")
      ->capture_default_str();
  cmd->add_flag("--follow", o->follow, "Stay, printing each new entry as it commits");
  cmd->add_option("--server", o->server,
                  "Read a server's feed (GET /v1/changes) instead of the local ledger; the key "
                  "from ASSENT_KEY or --key-file");
  cmd->add_option("--key-file", o->key_file, "With --server: a file holding the API key");
  cmd->add_option("--poll", o->poll, "Seconds between looks at a local ledger with --follow")
      ->capture_default_str()
      ->check(CLI::Range(0.01, 60.0));
  cmd->callback([o, exit_code] {
    *exit_code = o->server.empty() ? FromLedger(*o) : FromServer(*o);
  });
}

}  // namespace assent::cli
