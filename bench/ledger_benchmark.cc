// Ledger benchmarks (`make bench`, via bench/run.sh):
//   ledger_bench appends   — 64 concurrent writers on a real SQLite ledger, with group commit
//                            and with one transaction (one fsync) per event, side by side.
//   ledger_bench generate DIR N SUBJECTS — writes a ledger of N consent events.
//   ledger_bench replay DIR — opens (replays and verifies) it; prints seconds and resident memory.
//   ledger_bench audit [SECONDS] — durable appends with and without the live Merkle tree (the
//                            server's Auditor), alternated; and inclusion proofs at 10M leaves.
//   ledger_bench pg-appends URL [SECONDS [WRITERS]] — three nodes (three Ledgers, each with its own
//                            connections, group committer and follower) on one PostgreSQL
//                            database, 64 writers spread over them: durable events per second.
//   ledger_bench pg-propagation URL [N] — two nodes: a withdrawal acknowledged by node A, then
//                            node B asked until it denies; latency percentiles.
//   ledger_bench sessions DIR — sign-in links: mint, redeem (a durable token entry) and session
//                            checks with 0 and with 20,000 links outstanding and redeemed.
// Output: one JSON object per mode on stdout.
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "assent/ledger.h"
#include "audit/audit.h"
#include "audit/merkle.h"
#include "server/api.h"

namespace {

using Clock = std::chrono::steady_clock;

std::string ReadExample() {
  std::ifstream in(std::string(ASSENT_SOURCE_DIR) +
                   "/examples/terms/example-meetings-2023-08-07.yaml");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

long ResidentKiB() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

double Appends(bool group, int writers, double seconds, bool audited = false) {
  std::string dir = (std::filesystem::temp_directory_path() /
                     ("assent-bench-" + std::to_string(::getpid()) + (group ? "-g" : "-s")))
                        .string();
  std::filesystem::remove_all(dir);
  assent::LedgerOptions o;
  o.data_dir = dir;
  o.group_commit = group;
  auto ledger = assent::Ledger::Open(o);
  if (!ledger || !(*ledger)->PublishTerms(ReadExample(), "v2", {.backfill = true})) std::abort();
  std::unique_ptr<assent::audit::Auditor> auditor;
  if (audited) {
    auto key = assent::audit::LoadSigningKey(dir, true);
    auto a = key ? assent::audit::Auditor::Attach(**ledger, *key) : std::unexpected(key.error());
    if (!a) std::abort();
    auditor = std::move(*a);
  }
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> done{0};
  std::vector<std::thread> threads;
  auto start = Clock::now();
  for (int t = 0; t < writers; ++t) {
    threads.emplace_back([&, t] {
      for (uint64_t i = 0; !stop.load(std::memory_order_relaxed); ++i) {
        assent::ConsentEvent e;
        e.party = "w" + std::to_string(t) + "-" + std::to_string(i);
        e.action = assent::Action::kGrant;
        e.categories = {"content.chat"};
        e.purposes = {"ai_training.first_party"};
        e.method = assent::Method::kSettings;
        if (!(*ledger)->RecordConsent(e)) std::abort();
        done.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& th : threads) th.join();
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
  if (auditor && auditor->size() != (*ledger)->position()) std::abort();  // the tree kept up
  auditor.reset();
  ledger->reset();
  std::filesystem::remove_all(dir);
  return static_cast<double>(done.load()) / secs;
}

int Generate(const std::string& dir, uint64_t events, uint64_t subjects) {
  std::filesystem::remove_all(dir);
  assent::LedgerOptions o;
  o.data_dir = dir;
  auto ledger = assent::Ledger::Open(o);
  if (!ledger) {
    std::fprintf(stderr, "%s\n", ledger.error().message.c_str());
    return 1;
  }
  if (!(*ledger)->PublishTerms(ReadExample(), "v2", {.backfill = true})) return 1;
  std::mt19937_64 rng(20230807);
  const std::vector<std::vector<std::string>> scopes = {
      {"content.chat"}, {"content.audio"}, {"content.video"}, {"content"}};
  assent::Timestamp at = *assent::ParseTime("2023-08-08T00:00:00Z");
  auto start = Clock::now();
  std::vector<assent::ConsentEvent> batch;
  for (uint64_t i = 0; i < events; ++i) {
    assent::ConsentEvent e;
    // Every subject first, then random ones: all SUBJECTS appear.
    uint64_t s = i < subjects ? i : rng() % subjects;
    e.party = "user-" + std::to_string(s);
    e.action = rng() % 3 == 0 ? assent::Action::kWithdraw : assent::Action::kGrant;
    e.categories = scopes[rng() % 4];
    e.purposes = {"ai_training.first_party"};
    e.at = at += 1000;
    e.method = assent::Method::kSettings;
    batch.push_back(std::move(e));
    if (batch.size() == 200'000 || i + 1 == events) {
      auto r = (*ledger)->RecordConsents(std::move(batch));
      if (!r) {
        std::fprintf(stderr, "%s\n", r.error().message.c_str());
        return 1;
      }
      batch.clear();
    }
  }
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("{\"mode\":\"generate\",\"events\":%llu,\"subjects\":%llu,\"seconds\":%.1f}\n",
              static_cast<unsigned long long>(events), static_cast<unsigned long long>(subjects),
              secs);
  return 0;
}

int Replay(const std::string& dir) {
  auto start = Clock::now();
  assent::LedgerOptions o;
  o.data_dir = dir;
  o.read_only = true;
  auto ledger = assent::Ledger::Open(o);
  if (!ledger) {
    std::fprintf(stderr, "%s\n", ledger.error().message.c_str());
    return 1;
  }
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
  auto snap = (*ledger)->engine().snapshot();
  std::printf(
      "{\"mode\":\"replay\",\"events\":%llu,\"subjects\":%llu,\"seconds\":%.2f,"
      "\"events_per_second\":%.0f,\"resident_mib\":%.0f}\n",
      static_cast<unsigned long long>(snap->consent_events()),
      static_cast<unsigned long long>(snap->parties()), secs,
      static_cast<double>(snap->consent_events()) / secs, ResidentKiB() / 1024.0);
  return 0;
}

// A node on a shared PostgreSQL ledger (its own data directory holds only its lock).
std::unique_ptr<assent::Ledger> PgNode(const std::string& url, const std::string& name) {
  assent::LedgerOptions o;
  o.data_dir = (std::filesystem::temp_directory_path() /
                ("assent-pgbench-" + std::to_string(::getpid()) + "-" + name))
                   .string();
  o.database = url;
  auto l = assent::Ledger::Open(o);
  if (!l) {
    std::fprintf(stderr, "%s\n", l.error().message.c_str());
    std::exit(1);
  }
  return std::move(*l);
}

int PgAppends(const std::string& url, double seconds, int writers) {
  std::vector<std::unique_ptr<assent::Ledger>> nodes;
  for (int i = 0; i < 3; ++i) nodes.push_back(PgNode(url, "n" + std::to_string(i)));
  if (!nodes[0]->PublishTerms(ReadExample(), "v2", {.backfill = true})) std::abort();
  for (auto& n : nodes) {  // everyone has the terms before writing
    while (n->position() < nodes[0]->position()) (void)n->CatchUp();
  }
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> done{0}, failed{0};
  std::vector<std::thread> threads;
  auto start = Clock::now();
  for (int t = 0; t < writers; ++t) {
    threads.emplace_back([&, t] {
      assent::Ledger& node = *nodes[t % 3];
      for (uint64_t i = 0; !stop.load(std::memory_order_relaxed); ++i) {
        assent::ConsentEvent e;
        e.party = "w" + std::to_string(t) + "-" + std::to_string(i % 1000);
        e.action = i % 2 ? assent::Action::kGrant : assent::Action::kWithdraw;
        e.categories = {"content.chat"};
        e.purposes = {"ai_training.first_party"};
        e.method = assent::Method::kSettings;
        if (node.RecordConsent(e)) {
          done.fetch_add(1, std::memory_order_relaxed);
        } else {
          failed.fetch_add(1, std::memory_order_relaxed);
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& th : threads) th.join();
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  // Every node ends at the same position.
  uint64_t head = 0;
  for (auto& n : nodes) head = std::max(head, n->position());
  for (auto& n : nodes) {
    while (n->position() < head) (void)n->CatchUp();
  }
  std::printf(
      "{\"mode\":\"pg-appends\",\"nodes\":3,\"writers\":%d,\"events_per_second\":%.0f,"
      "\"failed\":%llu,\"positions\":%llu}\n",
      writers, static_cast<double>(done.load()) / secs,
      static_cast<unsigned long long>(failed.load()), static_cast<unsigned long long>(head));
  return 0;
}

int PgPropagation(const std::string& url, int n) {
  auto a = PgNode(url, "a"), b = PgNode(url, "b");
  if (!a->PublishTerms(ReadExample(), "v2", {.backfill = true})) std::abort();
  std::vector<double> ms;
  for (int i = 0; i < n; ++i) {
    assent::ConsentEvent e;
    e.party = "prop-" + std::to_string(::getpid()) + "-" + std::to_string(i);
    std::string_view who[] = {e.party};
    assent::DecisionRequest q;
    q.category = "content.chat";
    q.purpose = "ai_training.first_party";
    q.subjects = who;
    // B first learns of a grant, so that "denying" below is the withdrawal's doing.
    e.action = assent::Action::kGrant;
    e.categories = {"content.chat"};
    e.purposes = {"ai_training.first_party"};
    auto g = a->RecordConsent(e);
    if (!g) std::abort();
    while (b->position() < g->position) std::this_thread::yield();
    e.action = assent::Action::kWithdraw;
    auto w = a->RecordConsent(e);
    if (!w) std::abort();
    const auto acked = Clock::now();
    for (;;) {
      auto d = b->engine().snapshot()->Decide(q, b->engine().Now());
      if (d && !d->allow) break;
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - acked).count());
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  std::sort(ms.begin(), ms.end());
  auto pct = [&](double p) { return ms[std::min(ms.size() - 1, static_cast<size_t>(p * ms.size()))]; };
  std::printf(
      "{\"mode\":\"pg-propagation\",\"withdrawals\":%d,\"p50_ms\":%.2f,\"p99_ms\":%.2f,"
      "\"max_ms\":%.2f}\n",
      n, pct(0.50), pct(0.99), ms.back());
  return 0;
}

}  // namespace

// Durable appends with and without the tree, alternated three times (best of each), and the
// time to produce an inclusion proof in a tree of 10M leaves.
int Audit(double seconds) {
  double plain = 0, audited = 0;
  for (int round = 0; round < 3; ++round) {
    plain = std::max(plain, Appends(true, 64, seconds));
    audited = std::max(audited, Appends(true, 64, seconds, true));
  }
  assent::audit::MerkleTree tree;
  std::mt19937_64 rng(9162);
  const uint64_t leaves = 10'000'000;
  auto build_start = Clock::now();
  for (uint64_t i = 0; i < leaves; ++i) {
    assent::audit::Hash h;
    for (size_t b = 0; b < h.size(); b += 8) {
      uint64_t r = rng();
      std::memcpy(h.data() + b, &r, 8);
    }
    tree.AppendLeafHash(h);
  }
  double build = std::chrono::duration<double>(Clock::now() - build_start).count();
  const int proofs = 20000;
  size_t sink = 0;
  auto start = Clock::now();
  for (int i = 0; i < proofs; ++i) {
    auto p = tree.InclusionProof(rng() % leaves, leaves);
    if (!p) std::abort();
    sink += p->size();
  }
  double per_proof_us =
      std::chrono::duration<double, std::micro>(Clock::now() - start).count() / proofs;
  std::printf(
      "{\"mode\":\"audit\",\"writers\":64,\"events_per_second\":%.0f,"
      "\"with_merkle_events_per_second\":%.0f,\"merkle_cost_percent\":%.1f,"
      "\"leaves\":%llu,\"tree_build_seconds\":%.1f,\"inclusion_proof_us\":%.2f,"
      "\"proof_hashes\":%.1f,\"resident_mib\":%.0f}\n",
      plain, audited, 100.0 * (plain - audited) / plain, static_cast<unsigned long long>(leaves),
      build, per_proof_us, static_cast<double>(sink) / proofs, ResidentKiB() / 1024.0);
  return 0;
}

// Per-operation microseconds of minting, redeeming and checking, measured on a fresh ledger
// and again once 20,000 links were minted and redeemed (what used to slow every mint down).
int SessionsBench(const std::string& dir) {
  std::filesystem::remove_all(dir);
  assent::LedgerOptions o;
  o.data_dir = dir;
  auto ledger = assent::Ledger::Open(o);
  if (!ledger) {
    std::fprintf(stderr, "%s\n", ledger.error().message.c_str());
    return 1;
  }
  assent::server::Sessions sessions(ledger->get());
  const auto now = [&] { return (*ledger)->engine().Now(); };
  struct Times { double mint_us, redeem_us, check_us; };
  auto measure = [&](int n) {
    std::vector<std::string> links, sids;
    auto t0 = Clock::now();
    for (int i = 0; i < n; ++i) {
      links.push_back(sessions.MintLink(assent::PartyKind::kSubject, "p" + std::to_string(i), now()));
    }
    auto t1 = Clock::now();
    for (const auto& l : links) {
      auto sid = sessions.Redeem(l, now());
      if (!sid) std::abort();
      sids.push_back(*sid);
    }
    auto t2 = Clock::now();
    for (const auto& sid : sids) {
      if (!sessions.Find(sid, now())) std::abort();
    }
    auto t3 = Clock::now();
    auto us = [n](auto a, auto b) { return std::chrono::duration<double, std::micro>(b - a).count() / n; };
    return Times{us(t0, t1), us(t1, t2), us(t2, t3)};
  };
  Times fresh = measure(200);
  measure(20000);  // 20,000 outstanding links minted and redeemed
  Times loaded = measure(200);
  std::printf(
      "{\"mode\":\"sessions\",\"remembered\":%zu,\"mint_us\":[%.2f,%.2f],"
      "\"redeem_us\":[%.1f,%.1f],\"check_us\":[%.2f,%.2f],\"mint_ratio_20k_vs_fresh\":%.2f,"
      "\"redeem_ratio_20k_vs_fresh\":%.2f}\n",
      (*ledger)->tokens_remembered(), fresh.mint_us, loaded.mint_us, fresh.redeem_us,
      loaded.redeem_us, fresh.check_us, loaded.check_us, loaded.mint_us / fresh.mint_us,
      loaded.redeem_us / fresh.redeem_us);
  ledger->reset();
  std::filesystem::remove_all(dir);
  return 0;
}

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "appends";
  if (mode == "appends") {
    const int writers = 64;
    const double seconds = argc > 2 ? std::atof(argv[2]) : 5;
    double grouped = Appends(true, writers, seconds);
    double single = Appends(false, writers, seconds);
    std::printf(
        "{\"mode\":\"appends\",\"writers\":%d,\"group_commit_events_per_second\":%.0f,"
        "\"fsync_per_event_events_per_second\":%.0f,\"ratio\":%.1f}\n",
        writers, grouped, single, grouped / single);
    return 0;
  }
  if (mode == "generate" && argc == 5) {
    return Generate(argv[2], std::stoull(argv[3]), std::stoull(argv[4]));
  }
  if (mode == "replay" && argc == 3) return Replay(argv[2]);
  if (mode == "audit") return Audit(argc > 2 ? std::atof(argv[2]) : 3);
  if (mode == "pg-appends" && argc >= 3) {
    return PgAppends(argv[2], argc > 3 ? std::atof(argv[3]) : 10, argc > 4 ? std::atoi(argv[4]) : 64);
  }
  if (mode == "pg-propagation" && argc >= 3) return PgPropagation(argv[2], argc > 3 ? std::atoi(argv[3]) : 500);
  if (mode == "sessions" && argc == 3) return SessionsBench(argv[2]);
  std::fprintf(stderr, "usage: ledger_bench appends [SECONDS] | generate DIR N SUBJECTS | "
                       "replay DIR | audit [SECONDS] | pg-appends URL [SECONDS] | "
                       "pg-propagation URL [N] | sessions DIR\n");
  return 2;
}
