// Decision engine benchmarks: 1M subjects with about 3 consent events each (fixed seed),
// single-subject decisions, multi-subject decisions, past-time decisions, applying events,
// and the memory each stored event costs. `make bench` runs these; bench/RESULTS.md keeps the
// figures. Not a timed test: compare figures from one run side by side.
#include <benchmark/benchmark.h>
#include <malloc.h>

#include <fstream>
#include <random>
#include <sstream>

#include "assent/engine.h"

namespace assent {
namespace {

constexpr int kSubjects = 1'000'000;
constexpr int kQueries = 1 << 20;
const Timestamp kStart = *ParseTime("2023-08-08T00:00:00Z");

std::string ReadExample() {
  std::ifstream in(std::string(ASSENT_SOURCE_DIR) +
                   "/examples/terms/example-meetings-2023-08-07.yaml");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The shared world: built once, on first use.
struct World {
  std::unique_ptr<Engine> engine;
  std::vector<std::string> subjects;
  std::vector<uint32_t> queries;  // random subject indexes
  // The queried ids laid out in query order, as request bodies would hold them: a caller's
  // id is in its own (hot) buffer, not scattered over the benchmark's subject table.
  std::string query_bytes;
  std::vector<std::string_view> query_ids;
  uint64_t events = 0;
  double malloc_bytes_per_event = 0;
  double state_bytes_per_event = 0;
  double build_seconds = 0;

  World() {
    auto terms = CompileTerms(ReadExample(), "example");
    if (!terms) {
      std::fprintf(stderr, "%s\n", terms.error().message.c_str());
      std::abort();
    }
    subjects.reserve(kSubjects);
    for (int i = 0; i < kSubjects; ++i) subjects.push_back("user-" + std::to_string(i));
    std::mt19937_64 rng(20230807);
    // Three events per subject on average (1-5), spread over time in position order.
    const std::vector<std::vector<std::string>> scopes = {
        {"content.chat"}, {"content.audio"}, {"content.video"}, {"content"}};
    size_t before = mallinfo2().uordblks;
    engine = std::make_unique<Engine>(*TermsSet::Create({*terms}));
    auto t0 = std::chrono::steady_clock::now();
    std::vector<ConsentEvent> batch;
    uint64_t position = 0;
    Timestamp at = kStart;
    std::uniform_int_distribution<int> scope(0, 3), coin(0, 2);
    for (int round = 0; round < 5; ++round) {
      for (int i = 0; i < kSubjects; ++i) {
        // Subject i has count_i events; round r emits one if r < count_i (seeded per subject).
        uint64_t h = (static_cast<uint64_t>(i) + 17) * 0x9e3779b97f4a7c15ULL;
        int n = 1 + static_cast<int>((h >> 33) % 5);
        if (round >= n) continue;
        ConsentEvent e;
        e.position = ++position;
        e.party = subjects[i];
        e.action = coin(rng) == 0 ? Action::kWithdraw : Action::kGrant;
        e.categories = scopes[scope(rng)];
        e.purposes = {"ai_training.first_party"};
        e.at = at += 1000;
        e.method = Method::kSettings;
        batch.push_back(std::move(e));
        if (batch.size() == 100'000) {
          if (!engine->ApplyBatch(batch)) std::abort();
          batch.clear();
        }
      }
    }
    if (!batch.empty() && !engine->ApplyBatch(batch)) std::abort();
    batch.clear();
    batch.shrink_to_fit();
    build_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    events = position;
    malloc_trim(0);
    size_t after = mallinfo2().uordblks;
    malloc_bytes_per_event = static_cast<double>(after - before) / events;
    state_bytes_per_event = static_cast<double>(engine->MemoryUsage()) / events;
    std::uniform_int_distribution<uint32_t> pick(0, kSubjects - 1);
    queries.resize(kQueries);
    for (auto& q : queries) q = pick(rng);
    for (uint32_t q : queries) query_bytes += subjects[q];
    size_t offset = 0;
    for (uint32_t q : queries) {
      query_ids.emplace_back(query_bytes.data() + offset, subjects[q].size());
      offset += subjects[q].size();
    }
  }
};

World& GetWorld() {
  static World* w = new World();
  return *w;
}

void Report(benchmark::State& state) {
  World& w = GetWorld();
  auto avg = [](double v) { return benchmark::Counter(v, benchmark::Counter::kAvgThreads); };
  state.counters["subjects"] = avg(kSubjects);
  state.counters["events"] = avg(static_cast<double>(w.events));
  state.counters["bytes_per_event"] = avg(w.malloc_bytes_per_event);
  state.counters["state_bytes_per_event"] = avg(w.state_bytes_per_event);
}

void Decide(benchmark::State& state, std::string_view category, std::string_view purpose,
            int subjects_per_query, bool past) {
  World& w = GetWorld();
  auto snap = w.engine->snapshot();
  const Timestamp now = kStart + 1'000'000'000'000;
  const Timestamp mid = kStart + static_cast<Timestamp>(w.events / 2) * 1000;
  size_t i = state.thread_index() * 7919;
  uint64_t allowed = 0;
  std::string_view subjects[8];
  for (auto _ : state) {
    for (int k = 0; k < subjects_per_query; ++k) {
      subjects[k] = w.query_ids[(i + k) & (kQueries - 1)];
    }
    i += subjects_per_query;
    DecisionRequest q;
    q.category = category;
    q.purpose = purpose;
    q.subjects = std::span<const std::string_view>(subjects, subjects_per_query);
    if (past) q.at = mid;
    auto d = snap->Decide(q, now);
    allowed += d->allow;
    benchmark::DoNotOptimize(d);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["allowed_share"] = benchmark::Counter(
      static_cast<double>(allowed) / std::max<int64_t>(1, state.iterations()),
      benchmark::Counter::kAvgThreads);
  Report(state);
}

void BM_Decide_SingleSubjectConsent(benchmark::State& state) {
  Decide(state, "content.chat", "ai_training.first_party", 1, false);
}
BENCHMARK(BM_Decide_SingleSubjectConsent)->Threads(1)->Threads(2)->UseRealTime();

void BM_Decide_SingleSubjectPastTime(benchmark::State& state) {
  Decide(state, "content.audio", "ai_training.first_party", 1, true);
}
BENCHMARK(BM_Decide_SingleSubjectPastTime);

void BM_Decide_FiveSubjects(benchmark::State& state) {
  Decide(state, "content.video", "ai_training.first_party", 5, false);
}
BENCHMARK(BM_Decide_FiveSubjects);

void BM_Decide_Necessary(benchmark::State& state) {
  Decide(state, "content.chat", "service.delivery", 1, false);
}
BENCHMARK(BM_Decide_Necessary);

void BM_Decide_Prohibited(benchmark::State& state) {
  Decide(state, "content.chat", "ai_training.third_party", 1, false);
}
BENCHMARK(BM_Decide_Prohibited);

void BM_DecisionToJson(benchmark::State& state) {
  World& w = GetWorld();
  auto snap = w.engine->snapshot();
  std::string_view subjects[] = {w.subjects[42]};
  DecisionRequest q{"content.chat", "ai_training.first_party", std::nullopt, subjects, {}};
  auto d = snap->Decide(q, kStart);
  for (auto _ : state) benchmark::DoNotOptimize(DecisionToJson(*d));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecisionToJson);

// Applying one event to the 1M-subject state: a path copy plus a new record, then publishing.
void BM_Apply_SingleEvent(benchmark::State& state) {
  World& w = GetWorld();
  uint64_t position = w.engine->snapshot()->position();
  Timestamp at = kStart + static_cast<Timestamp>(position + 1) * 1000 + 1'000'000'000'000;
  size_t i = 0;
  for (auto _ : state) {
    ConsentEvent e;
    e.position = ++position;
    e.party = w.subjects[w.queries[i++ & (kQueries - 1)]];
    e.action = Action::kGrant;
    e.categories = {"content.chat"};
    e.purposes = {"ai_training.first_party"};
    e.at = at++;
    if (!w.engine->Apply(e)) state.SkipWithError("apply failed");
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Apply_SingleEvent);

// Folding the whole world from scratch (the start-up replay), as events per second.
void BM_Replay_World(benchmark::State& state) {
  for (auto _ : state) {
    World& w = GetWorld();
    state.SetIterationTime(w.build_seconds);
    state.counters["events_per_second"] = static_cast<double>(w.events) / w.build_seconds;
  }
  Report(state);
}
BENCHMARK(BM_Replay_World)->UseManualTime()->Iterations(1);

}  // namespace
}  // namespace assent

BENCHMARK_MAIN();

namespace assent {
namespace {

// The same single-subject decisions, asked in batches of 256 (as the filter and the batch API
// do): the look-ups of neighbouring requests overlap their cache misses.
void BM_DecideBatch_SingleSubjectConsent(benchmark::State& state) {
  World& w = GetWorld();
  auto snap = w.engine->snapshot();
  const Timestamp now = kStart + 1'000'000'000'000;
  constexpr size_t kBatch = 256;
  std::vector<DecisionRequest> batch(kBatch);
  std::vector<std::string_view> subjects(kBatch);
  std::vector<Result<Decision>> results;
  size_t i = 0;
  uint64_t allowed = 0;
  for (auto _ : state) {
    for (size_t k = 0; k < kBatch; ++k) {
      subjects[k] = w.query_ids[i++ & (kQueries - 1)];
      batch[k].category = "content.chat";
      batch[k].purpose = "ai_training.first_party";
      batch[k].subjects = std::span<const std::string_view>(&subjects[k], 1);
    }
    snap->DecideBatch(batch, now, &results);
    for (const auto& r : results) allowed += r->allow;
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
  state.counters["ns_per_decision"] = benchmark::Counter(
      static_cast<double>(state.iterations() * kBatch),
      benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["allowed_share"] = benchmark::Counter(
      static_cast<double>(allowed) / std::max<int64_t>(1, state.iterations() * kBatch),
      benchmark::Counter::kAvgThreads);
  Report(state);
}
BENCHMARK(BM_DecideBatch_SingleSubjectConsent)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace
}  // namespace assent

namespace assent {
namespace {
// Compute floor: the same decision for 1,024 hot subjects whose data stays in cache.
void BM_Decide_HotSubjects(benchmark::State& state) {
  World& w = GetWorld();
  auto snap = w.engine->snapshot();
  size_t i = 0;
  std::string_view subjects[1];
  for (auto _ : state) {
    subjects[0] = w.subjects[i++ & 1023];
    DecisionRequest q;
    q.category = "content.chat";
    q.purpose = "ai_training.first_party";
    q.subjects = subjects;
    auto d = snap->Decide(q, kStart + 1'000'000'000'000);
    benchmark::DoNotOptimize(d);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Decide_HotSubjects);
}  // namespace
}  // namespace assent
