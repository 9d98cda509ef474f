// What the filter's tests share: an in-memory ledger with the example terms, a scratch
// directory, and a reference implementation of the decision to compare against.
#ifndef ASSENT_FILTER_FILTER_TEST_UTIL_H_
#define ASSENT_FILTER_FILTER_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>

#include "assent/ledger.h"
#include "common/sha256.h"
#include "filter/filter.h"

namespace assent::filter_test {

namespace fs = std::filesystem;

inline const Timestamp kNow = *ParseTime("2024-01-01T00:00:00Z");

inline std::string Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Event {
  std::string party;
  bool account;
  bool grant;
  std::string category, purpose;
};

// A straightforward reading of DESIGN.md for the test's terms: walk every rule, every event;
// no tables, no indexes. Returns "allow" or the deny reason, or "unknown-category".
inline std::string Reference(const Terms& t, const std::vector<Event>& events, const std::string& c,
                      const std::string& p, const std::string& account,
                      const std::vector<std::string>& subjects) {
  if (t.FindCategory(c) < 0) return "unknown-category";
  auto covers = [](const std::string& pattern, const std::string& name) {
    return name == pattern || name.rfind(pattern + ".", 0) == 0;
  };
  auto depth = [](const std::string& s) { return std::count(s.begin(), s.end(), '.'); };
  const Rule* best = nullptr;
  long best_c = -1, best_p = -1;
  for (const Rule& r : t.rules()) {
    long mc = -1, mp = -1;
    for (int32_t i : r.categories) {
      if (covers(t.categories()[i].name, c)) mc = std::max(mc, depth(t.categories()[i].name));
    }
    for (int32_t i : r.purposes) {
      if (covers(t.purposes()[i].name, p)) mp = std::max(mp, depth(t.purposes()[i].name));
    }
    if (mc < 0 || mp < 0) continue;
    if (r.basis == Basis::kProhibited) return "prohibited";
    if (mc >= best_c && mp >= best_p) best = &r, best_c = mc, best_p = mp;
  }
  if (!best) return "unlisted";
  if (best->basis == Basis::kNecessary) return "allow";
  const bool consent = best->basis == Basis::kConsent;
  std::vector<std::pair<std::string, bool>> parties;
  if (best->consent_from != ConsentFrom::kSubjects) {
    if (account.empty()) return "no-subject";
    parties.emplace_back(account, true);
  }
  if (best->consent_from != ConsentFrom::kAccount) {
    if (subjects.empty()) return "no-subject";
    for (const auto& s : subjects) parties.emplace_back(s, false);
  }
  for (const auto& [who, is_account] : parties) {
    const Event* last = nullptr;
    for (const auto& e : events) {
      if (e.party == who && e.account == is_account && covers(e.category, c) &&
          covers(e.purpose, p)) {
        last = &e;
      }
    }
    if (consent && !last) return "no-consent";
    if (last && !last->grant) return consent ? "withdrawn" : "objected";
  }
  return "allow";
}

class FilterTest : public testing::Test {
 protected:
  void SetUp() override {
    std::mt19937_64 rng(std::random_device{}());
    dir_ = (fs::temp_directory_path() / ("assent-filter-" + std::to_string(rng()))).string();
    fs::create_directories(dir_);
    LedgerOptions lo;
    lo.in_memory = true;
    lo.clock = [] { return kNow; };
    ledger_ = std::move(*Ledger::Open(lo));
    ASSERT_TRUE(ledger_->PublishTerms(
        Read(std::string(ASSENT_SOURCE_DIR) + "/examples/terms/example-meetings-2023-08-11.yaml"),
        "v3", {.backfill = true}));
  }
  void TearDown() override { fs::remove_all(dir_); }

  Result<FilterReport> Filter(const std::string& manifest, FilterOptions o = {}) {
    std::ofstream(dir_ + "/in.jsonl", std::ios::binary) << manifest;
    o.in_path = dir_ + "/in.jsonl";
    o.out_path = dir_ + "/out.jsonl";
    if (o.purpose.empty()) o.purpose = "product_development.quality_review";
    return RunFilter(*ledger_->engine().snapshot(), kNow, o);
  }

  std::string dir_;
  std::unique_ptr<Ledger> ledger_;
};


}  // namespace assent::filter_test

#endif  // ASSENT_FILTER_FILTER_TEST_UTIL_H_
