// Prometheus metrics: counters and latency histograms, lock-free on the request path.
#ifndef ASSENT_SERVER_METRICS_H_
#define ASSENT_SERVER_METRICS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

#include "assent/decision.h"

namespace assent::server {

class Metrics {
 public:
  static constexpr size_t kMaxRoutes = 64;
  static constexpr std::array<double, 12> kBuckets = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                      0.01,   0.025,   0.05,   0.1,   0.5,    2.0};
  // `route` indexes Api::Routes(); kMaxRoutes - 1 collects unmatched requests.
  void Request(size_t route, int status, double seconds);
  void Decision(Reason reason) { decisions_[static_cast<size_t>(reason)].fetch_add(1); }
  void Append(double seconds);
  // The text exposition format, with the ledger position given.
  std::string Render(uint64_t position) const;

 private:
  struct Histogram {
    std::array<std::atomic<uint64_t>, kBuckets.size() + 1> buckets{};
    std::atomic<uint64_t> count{0};
    std::atomic<uint64_t> sum_micros{0};
    void Observe(double seconds);
  };
  std::array<Histogram, kMaxRoutes> latency_;
  std::array<std::array<std::atomic<uint64_t>, 6>, kMaxRoutes> by_class_{};  // 1xx..5xx
  // One counter per reason (the last reason is kErased).
  std::array<std::atomic<uint64_t>, static_cast<size_t>(Reason::kErased) + 1> decisions_{};
  Histogram appends_;
};

}  // namespace assent::server

#endif  // ASSENT_SERVER_METRICS_H_
