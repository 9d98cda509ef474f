// The training-data gate's benchmark inputs and its parse-speed reference (bench/gate/run.sh):
//   gate_bench generate DIR ITEMS SUBJECTS — DIR/data (a ledger with the example terms and
//       objections from ~10% of subjects and ~5% of accounts), DIR/manifest.jsonl (ITEMS
//       lines of ~145 bytes: subjects Zipf-distributed over SUBJECTS, 0-4 an item, an account
//       on most), and the same consent state as CSV for DuckDB (objected subjects and accounts,
//       the categories the purpose allows).
//   gate_bench simdjson FILE — simdjson's iterate_many over FILE on one core, reading id,
//       category, account and subjects of every document: bytes per second.
//   gate_bench reader FILE — the gate's own reader (ReadBlock) over FILE on one core, deciding
//       nothing: bytes per second, to set beside simdjson's.
// Output: one JSON object per mode on stdout.
#include <simdjson.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <vector>

#include "assent/ledger.h"
#include "filter/manifest.h"

namespace {

// Each timing is the best of this many rounds, as for every side of bench/gate/run.sh.
constexpr int kRounds = 5;

std::string ReadExample() {
  std::ifstream in(std::string(ASSENT_SOURCE_DIR) +
                   "/examples/terms/example-meetings-2023-08-11.yaml");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Zipf(s = 1) over [0, n): inverse CDF on precomputed cumulative weights.
class Zipf {
 public:
  explicit Zipf(size_t n) : cdf_(n) {
    double sum = 0;
    for (size_t i = 0; i < n; ++i) cdf_[i] = (sum += 1.0 / static_cast<double>(i + 1));
    for (auto& c : cdf_) c /= sum;
  }
  size_t operator()(std::mt19937_64& rng) {
    const double u = std::uniform_real_distribution<double>(0, 1)(rng);
    return static_cast<size_t>(std::lower_bound(cdf_.begin(), cdf_.end(), u) - cdf_.begin());
  }

 private:
  std::vector<double> cdf_;
};

int Generate(const std::string& dir, size_t items, size_t subjects) {
  namespace fs = std::filesystem;
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::mt19937_64 rng(20231130);
  constexpr size_t kAccounts = 2000;
  std::set<size_t> objected_subjects, objected_accounts;
  for (size_t s = 0; s < subjects; ++s) {
    if (rng() % 10 == 0) objected_subjects.insert(s);
  }
  for (size_t a = 0; a < kAccounts; ++a) {
    if (rng() % 20 == 0) objected_accounts.insert(a);
  }
  {
    assent::LedgerOptions o;
    o.data_dir = dir + "/data";
    auto ledger = assent::Ledger::Open(o);
    if (!ledger) {
      std::fprintf(stderr, "%s\n", ledger.error().message.c_str());
      return 1;
    }
    if (!(*ledger)->PublishTerms(ReadExample(), "example", {.backfill = true})) return 1;
    std::vector<assent::ConsentEvent> events;
    auto objection = [&](assent::PartyKind kind, const std::string& id) {
      assent::ConsentEvent e;
      e.party_kind = kind;
      e.party = id;
      e.action = assent::Action::kWithdraw;
      e.rule = "service-generated-for-ai-training";
      events.push_back(std::move(e));
    };
    for (size_t s : objected_subjects) objection(assent::PartyKind::kSubject, "u" + std::to_string(s));
    for (size_t a : objected_accounts) objection(assent::PartyKind::kAccount, "acct" + std::to_string(a));
    if (auto r = (*ledger)->RecordConsents(std::move(events)); !r) {
      std::fprintf(stderr, "%s\n", r.error().message.c_str());
      return 1;
    }
  }
  std::ofstream(dir + "/objected_subjects.csv") << [&] {
    std::string s = "id\n";
    for (size_t x : objected_subjects) s += "u" + std::to_string(x) + "\n";
    return s;
  }();
  std::ofstream(dir + "/objected_accounts.csv") << [&] {
    std::string s = "id\n";
    for (size_t x : objected_accounts) s += "acct" + std::to_string(x) + "\n";
    return s;
  }();
  std::ofstream(dir + "/allowed_categories.csv")
      << "name\nservice_generated.telemetry\nservice_generated.diagnostics\n"
         "service_generated.product_usage\n";
  const char* categories[] = {"service_generated.telemetry", "service_generated.diagnostics",
                              "service_generated.product_usage", "content.chat",
                              "service_generated.telemetry", "service_generated.product_usage"};
  Zipf zipf(subjects);
  std::ofstream m(dir + "/manifest.jsonl", std::ios::binary);
  std::string line;
  uint64_t bytes = 0;
  for (size_t i = 0; i < items; ++i) {
    line = "{\"id\":\"item-" + std::to_string(i) + "\",\"category\":\"" + categories[rng() % 6] + "\"";
    if (rng() % 10 != 0) line += ",\"account\":\"acct" + std::to_string(rng() % kAccounts) + "\"";
    line += ",\"subjects\":[";
    const size_t n = rng() % 5;
    for (size_t k = 0; k < n; ++k) line += (k ? ",\"u" : "\"u") + std::to_string(zipf(rng)) + "\"";
    line += "],\"uri\":\"s3://corpus/shard-" + std::to_string(rng() % 512) + "/" +
            std::to_string(rng() % 100000000) + ".json\"}\n";
    bytes += line.size();
    m << line;
  }
  std::printf("{\"mode\":\"generate\",\"items\":%zu,\"subjects\":%zu,\"bytes\":%llu,"
              "\"objected_subjects\":%zu,\"objected_accounts\":%zu}\n",
              items, subjects, static_cast<unsigned long long>(bytes), objected_subjects.size(),
              objected_accounts.size());
  return 0;
}

// simdjson's own speed over the manifest: the reference the gate's parse speed is held to.
int Simdjson(const std::string& file) {
  simdjson::padded_string json;
  if (simdjson::padded_string::load(file).get(json)) {
    std::fprintf(stderr, "cannot read %s\n", file.c_str());
    return 1;
  }
  double best = 1e30;
  uint64_t docs = 0, sink = 0;
  for (int round = 0; round < kRounds; ++round) {
    const auto start = std::chrono::steady_clock::now();
    simdjson::ondemand::parser parser;
    simdjson::ondemand::document_stream stream;
    if (parser.iterate_many(json, 1 << 20).get(stream)) return 1;
    docs = 0;
    for (auto doc : stream) {
      simdjson::ondemand::object obj;
      if (doc.get_object().get(obj)) continue;
      for (auto field : obj) {
        std::string_view key;
        if (field.unescaped_key().get(key)) break;
        if (key == "id" || key == "category" || key == "account") {
          std::string_view v;
          if (!field.value().get_string().get(v)) sink += v.size();
        } else if (key == "subjects") {
          simdjson::ondemand::array a;
          if (field.value().get_array().get(a)) continue;
          for (auto s : a) {
            std::string_view v;
            if (!s.get_string().get(v)) sink += v.size();
          }
        }
      }
      ++docs;
    }
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::printf("{\"mode\":\"simdjson\",\"documents\":%llu,\"bytes\":%zu,\"seconds\":%.3f,"
              "\"bytes_per_second\":%.0f,\"sink\":%llu}\n",
              static_cast<unsigned long long>(docs), json.size(), best, json.size() / best,
              static_cast<unsigned long long>(sink));
  return 0;
}

// The gate's own manifest reader (internal::ReadBlock: line split, UTF-8 check, FastLine or
// simdjson per line) over the same file on one core, deciding nothing: how much of the gate's
// time is reading, against simdjson's figure above.
int Reader(const std::string& file) {
  simdjson::padded_string json;
  if (simdjson::padded_string::load(file).get(json)) {
    std::fprintf(stderr, "cannot read %s\n", file.c_str());
    return 1;
  }
  struct Count final : assent::internal::ItemSink {
    uint64_t items = 0, sink = 0;
    void Item(uint32_t, const assent::internal::ItemView& it,
              std::span<const std::string_view> subjects) override {
      ++items;
      sink += it.id.size() + it.category.size() + it.account.size() + subjects.size();
    }
    void Restart() override { items = sink = 0; }
  };
  assent::FilterOptions o;
  simdjson::dom::parser parser;
  assent::internal::BlockItems items;
  double best = 1e30;
  Count count;
  uint64_t total = 0;
  for (int round = 0; round < kRounds; ++round) {
    const auto start = std::chrono::steady_clock::now();
    total = 0;
    constexpr size_t kBlock = 4 << 20;
    for (size_t at = 0; at < json.size();) {
      size_t end = std::min(json.size(), at + kBlock);
      if (end < json.size()) {
        const void* nl = ::memrchr(json.data() + at, '\n', end - at);
        end = nl ? static_cast<const char*>(nl) - json.data() + 1 : json.size();
      }
      const uint64_t before = count.items;
      assent::internal::ReadBlock(parser, o, json.data() + at, end - at, &items, &count);
      total += count.items - before;
      at = end;
    }
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::printf("{\"mode\":\"reader\",\"documents\":%llu,\"bytes\":%zu,\"seconds\":%.3f,"
              "\"bytes_per_second\":%.0f,\"sink\":%llu}\n",
              static_cast<unsigned long long>(total), json.size(), best, json.size() / best,
              static_cast<unsigned long long>(count.sink));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "generate" && argc == 5) {
    return Generate(argv[2], std::stoull(argv[3]), std::stoull(argv[4]));
  }
  if (mode == "simdjson" && argc == 3) return Simdjson(argv[2]);
  if (mode == "reader" && argc == 3) return Reader(argv[2]);
  std::fprintf(stderr, "usage: gate_bench generate DIR ITEMS SUBJECTS | simdjson FILE | reader FILE\n");
  return 2;
}
