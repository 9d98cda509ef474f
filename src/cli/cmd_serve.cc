// `assent serve`: the HTTP API over the embedded ledger.
#include <fmt/core.h>

#include <charconv>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>
#include <iostream>

#include "cli/commands.h"
#include "cli/example_terms.h"
#include "audit/audit.h"
#include "server/api.h"
#include "server/listener.h"

namespace assent::cli {
namespace {

struct ServeOptions {
  std::string data = "./assent-data";
  std::string listen = "127.0.0.1:8080";
  int threads = 0;
  bool demo = false;
  std::vector<std::string> demo_terms;  // --terms: your own versions for the demo
  bool quiet = false;
  int idle_timeout = 60;
  int read_timeout = 30;
  uint64_t body_limit = 8 * 1024 * 1024;
  int max_connections = 0;
  int checkpoint_interval = 60;
  bool audit_in_background = false;
  uint64_t feed_buffer = 256 * 1024;
  double feed_stall = 30;
};

// `assent audit verify` over the data directory; the problems, or empty when the log verifies.
Result<std::vector<std::string>> AuditLog(const std::string& data, const audit::SigningKey& key) {
  ASSENT_ASSIGN_OR_RETURN(auto vk, audit::ParseVerifierKey(audit::VerifierKeyText(key)));
  ASSENT_ASSIGN_OR_RETURN(auto report, audit::VerifyLedger(data, vk, Globals().database));
  return report.problems;
}

// With --demo: the example terms (built in, or --terms FILE...) published and one key per
// role, printed once.
Status SeedDemo(Ledger& ledger, const std::vector<std::string>& files,
                std::vector<std::pair<std::string, std::string>>* keys) {
  std::vector<std::pair<std::string, std::string>> terms;  // name, YAML
  if (files.empty()) {
    // The two versions the demo retells (the first never defined its terms and does not lint).
    for (const auto& e : EmbeddedExampleTerms()) {
      if (e.file.find("2023-08-07") != std::string_view::npos ||
          e.file.find("2023-08-11") != std::string_view::npos) {
        terms.emplace_back("examples/terms/" + std::string(e.file), std::string(e.yaml));
      }
    }
  }
  for (const auto& f : files) {
    std::string yaml;
    if (!ReadFile(f, &yaml)) return NotFoundError("--terms: cannot read '" + f + "'");
    terms.emplace_back(f, std::move(yaml));
  }
  for (const auto& [name, yaml] : terms) {
    // The examples retell 2023: their effective times lie in the past, so the demo publishes
    // them as recorded history (--backfill), which a live deployment would not do.
    PublishOptions backfill;
    backfill.backfill = true;
    backfill.allow_loosening = !files.empty();  // your own versions, as you wrote them
    auto r = ledger.PublishTerms(yaml, name, backfill);
    if (!r) return std::unexpected(r.error());
  }
  for (Role role : {Role::kService, Role::kOperator, Role::kAuditor, Role::kPortal}) {
    std::string name = "demo-" + std::string(RoleName(role)) + "-" +
                       std::to_string(ledger.position());
    auto secret = ledger.CreateKey(role, name);
    if (!secret) return std::unexpected(secret.error());
    keys->emplace_back(std::string(RoleName(role)), *secret);
  }
  return OkStatus();
}

// --listen HOST:PORT and the limits, as the listener takes them.
Result<server::ServerOptions> ListenOptions(const ServeOptions& o) {
  server::ServerOptions so;
  const size_t colon = o.listen.rfind(':');
  if (colon == std::string::npos) {
    return InvalidArgumentError("--listen must be HOST:PORT, e.g. 127.0.0.1:8080");
  }
  so.address = o.listen.substr(0, colon);
  const std::string_view port = std::string_view(o.listen).substr(colon + 1);
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || ptr != port.data() + port.size() || port.empty() || value > 65535) {
    return InvalidArgumentError("--listen port must be 0-65535");
  }
  so.port = static_cast<uint16_t>(value);
  so.idle_timeout = std::chrono::seconds(std::max(1, o.idle_timeout));
  so.read_timeout = std::chrono::seconds(std::max(1, o.read_timeout));
  so.body_limit = o.body_limit;
  so.max_connections = o.max_connections;
  so.feed_unread_limit = o.feed_buffer;
  so.feed_stall = std::chrono::milliseconds(static_cast<int64_t>(o.feed_stall * 1000));
  so.threads = o.threads > 0 ? o.threads : std::max(1u, std::thread::hardware_concurrency());
  return so;
}

// The whole log is verified before serving (every leaf, the tree, every checkpoint's signature
// and their consistency): false, having said why, when it does not. With --audit-in-background
// it runs while serving (in `*thread`) and /readyz says "verifying" (503) until it passes.
bool StartAudit(const ServeOptions& o, const audit::SigningKey& key, server::Api& api,
                std::thread* thread) {
  if (o.audit_in_background) {
    api.set_audit_check(server::Api::AuditCheck::kRunning);
    *thread = std::thread([&api, data = o.data, key] {
      auto problems = AuditLog(data, key);
      if (!problems) {
        api.set_audit_check(server::Api::AuditCheck::kFailed, problems.error().message);
      } else if (!problems->empty()) {
        std::string detail = problems->front();
        if (problems->size() > 1) detail += fmt::format(" (and {} more)", problems->size() - 1);
        std::cerr << "assent: the audit log does NOT verify: " << detail << "\n";
        api.set_audit_check(server::Api::AuditCheck::kFailed, detail);
      } else {
        api.set_audit_check(server::Api::AuditCheck::kPassed);
      }
    });
    return true;
  }
  auto problems = AuditLog(o.data, key);
  if (!problems || !problems->empty()) {
    PrintError(!problems ? "audit verify: " + problems.error().message
                         : "the audit log does not verify; nothing was served. Problems:");
    if (problems) {
      for (const auto& p : *problems) std::cerr << "  " << p << "\n";
    }
    std::cerr << "  (run `assent audit verify --data " << o.data << "` for the report)\n";
    return false;
  }
  api.set_audit_check(server::Api::AuditCheck::kPassed);
  return true;
}

// The demo's people and account, each with a one-time sign-in link (valid 10 minutes), its
// keys, and what to try.
void PrintDemo(server::Api& api, Ledger& ledger, const std::string& base,
               const std::vector<std::pair<std::string, std::string>>& keys) {
  const Timestamp now = ledger.engine().Now();
  std::cout << "open a page (one-time links, valid 10 minutes):\n";
  for (const char* person : {"alice", "bob", "chen"}) {
    std::cout << fmt::format("  {:<22} {}/session/{}\n", std::string("person  ") + person, base,
                             api.sessions().MintLink(PartyKind::kSubject, person, now));
  }
  std::cout << fmt::format("  {:<22} {}/session/{}\n", "admin   acme (account)", base,
                           api.sessions().MintLink(PartyKind::kAccount, "acme", now));
  std::cout << "demo keys (shown once):\n";
  for (const auto& [role, secret] : keys) std::cout << fmt::format("  {:<9} {}\n", role, secret);
  std::cout << fmt::format(
      "try:\n  curl -s {0}/v1/decisions -H 'Authorization: Bearer {1}' \\\n"
      "    -d '{{\"category\":\"content.chat\",\"purpose\":\"ai_training.first_party\","
      "\"subjects\":[\"u1\"]}}'\n  curl -s {0}/v1/subjects/u1/consents -H 'Authorization: "
      "Bearer {1}'\n  {0}/openapi.json  {0}/metrics\n",
      base, keys.empty() ? "KEY" : keys.front().second);
}

// Serves until SIGTERM, with signed checkpoints on a timer (when the log grew; never by a node
// whose audit has not passed) and one at shutdown.
void ServeWithCheckpoints(server::HttpServer& http, server::Api& api, audit::Auditor& auditor,
                          Ledger& ledger, int interval) {
  std::mutex stop_mu;
  std::condition_variable stop_cv;
  bool stopping = false;
  std::thread checkpoints([&] {
    std::unique_lock lock(stop_mu);
    while (!stop_cv.wait_for(lock, std::chrono::seconds(interval), [&] { return stopping; })) {
      lock.unlock();
      if (api.audit_check().first == server::Api::AuditCheck::kPassed) {
        auto r = auditor.RecordCheckpointIfGrown(ledger);
        if (!r) std::cerr << "assent: checkpoint failed: " << r.error().message << "\n";
      }
      lock.lock();
    }
  });
  http.Run(true);
  {
    std::lock_guard lock(stop_mu);
    stopping = true;
  }
  stop_cv.notify_all();
  checkpoints.join();
}

int Serve(const ServeOptions& o) {
  auto so = ListenOptions(o);
  if (!so) return Fail(so.error());
  auto ledger = OpenLedger(o.data, false);
  if (!ledger) return Fail(ledger.error());
  std::vector<std::pair<std::string, std::string>> keys;
  if (o.demo) {
    if (auto st = SeedDemo(**ledger, o.demo_terms, &keys); !st) return Fail(st.error());
  }
  // The audit log: the signing key (created on first start, 0600) and the live tree.
  auto key = LoadAuditKey(o.data, true);
  if (!key) return Fail(key.error());
  auto auditor = audit::Auditor::Attach(**ledger, *key);
  if (!auditor) return Fail(auditor.error());
  // One signing key per ledger, fixed by its first checkpoint (signed now if there is none): a
  // node with another key stops here, before it signs or writes anything.
  if (auto st = (*auditor)->EnsureLedgerKey(**ledger); !st) {
    PrintError(st.error().message);
    return 1;
  }
  server::Api api(ledger->get(), o.quiet ? nullptr : &std::cerr, auditor->get());
  // Sign-in links and sessions are signed with a key every node of this ledger derives alike
  // (from the ledger's signing key), so any node accepts what another minted.
  api.sessions().SetKey(key->DeriveSecret("assent sign-in tokens v1"));
  std::thread audit_thread;
  if (!StartAudit(o, *key, api, &audit_thread)) return 1;
  struct Joiner {
    std::thread& t;
    ~Joiner() {
      if (t.joinable()) t.join();
    }
  } joiner{audit_thread};
  server::HttpServer http(*so, &api);
  auto port = http.Listen();
  if (!port) return Fail(port.error());
  http.CatchSignals();  // before the banner: whoever reads it may stop the server at once
  const std::string base = fmt::format("http://{}:{}", so->address, *port);
  std::cout << fmt::format("assent serving {} on {} (ledger position {}, {} threads)\n",
                           (*ledger)->store_description(), base, (*ledger)->position(),
                           so->threads);
  if (o.demo) PrintDemo(api, **ledger, base, keys);
  std::cout.flush();
  ServeWithCheckpoints(http, api, **auditor, **ledger, o.checkpoint_interval);
  if (audit_thread.joinable()) audit_thread.join();
  if (api.audit_check().first == server::Api::AuditCheck::kPassed) {
    (*auditor)->RecordCheckpointIfGrown(**ledger);
  }
  std::cout << "assent: stopped; every acknowledged write is on disk\n";
  return 0;
}

}  // namespace

void RegisterServeCommand(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<ServeOptions>();
  auto* cmd = app.add_subcommand("serve", "Serve the HTTP API (SIGTERM stops it gracefully)");
  AddDataOption(cmd, &o->data);
  cmd->add_option("--listen", o->listen, "Address and port (port 0: any free port)")
      ->capture_default_str();
  cmd->add_option("--threads", o->threads, "Event-loop threads (default: one per core)");
  cmd->add_flag("--demo", o->demo,
                "Publish the example terms (built in) and print one key per role and sign-in links");
  cmd->add_option("--terms", o->demo_terms,
                  "With --demo: publish these terms files instead of the built-in examples");
  cmd->add_flag("--quiet", o->quiet, "No access log");
  cmd->add_option("--idle-timeout", o->idle_timeout, "Seconds a keep-alive connection may idle")
      ->capture_default_str();
  cmd->add_option("--read-timeout", o->read_timeout, "Seconds to wait for the rest of a request header, or the next part of a body")
      ->capture_default_str();
  cmd->add_option("--max-connections", o->max_connections,
                  "Open connections at most (default: the descriptor limit less 64); idle "
                  "keep-alive connections are closed first near it")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--body-limit", o->body_limit, "Largest request body in bytes")
      ->capture_default_str();
  cmd->add_option("--checkpoint-interval", o->checkpoint_interval,
                  "Seconds between signed checkpoints (when the log grew)")
      ->capture_default_str()
      ->check(CLI::Range(1, 86400));
  cmd->add_option("--feed-buffer", o->feed_buffer,
                  "Bytes a change-feed subscriber may leave unread before the feed waits for it")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t{4096}, uint64_t{64} << 20));
  cmd->add_option("--feed-stall", o->feed_stall,
                  "Seconds a change-feed subscriber may read nothing (its buffer full) before it "
                  "is disconnected with the position to resume from")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 3600.0));
  cmd->add_flag("--audit-in-background", o->audit_in_background,
                 "Verify the audit log while serving (large ledgers); /readyz is 503 until it "
                 "passes");
  cmd->callback([o, exit_code] { *exit_code = Serve(*o); });
}

}  // namespace assent::cli
