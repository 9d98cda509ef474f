// The child of the crash test: appends consent events from many threads until it is killed,
// printing "POSITION SUBJECT" for each event only after RecordConsent returned (so only after
// the event is durable). The parent kills it with SIGKILL at a random moment.
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "assent/ledger.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: crash_child DATA_DIR RUN_ID\n");
    return 2;
  }
  assent::LedgerOptions options;
  options.data_dir = argv[1];
  auto ledger = assent::Ledger::Open(options);
  if (!ledger) {
    std::fprintf(stderr, "open: %s\n", ledger.error().message.c_str());
    return 1;
  }
  std::mutex out_mu;
  auto say = [&](const std::string& line) {
    std::lock_guard lock(out_mu);
    std::string l = line + "\n";
    if (::write(1, l.data(), l.size()) < 0) std::_Exit(3);
  };
  say("ready");
  const std::string run = argv[2];
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (uint64_t i = 0;; ++i) {
        assent::ConsentEvent e;
        e.party = "r" + run + "-t" + std::to_string(t) + "-" + std::to_string(i);
        e.action = i % 2 ? assent::Action::kWithdraw : assent::Action::kGrant;
        e.categories = {"content.chat"};
        e.purposes = {"ai_training.first_party"};
        auto r = (*ledger)->RecordConsent(e);
        if (!r) {
          std::fprintf(stderr, "append: %s\n", r.error().message.c_str());
          std::_Exit(1);
        }
        say(std::to_string(r->position) + " " + e.party);
      }
    });
  }
  for (auto& th : threads) th.join();
}
