// Prometheus text exposition of the server's counters.
#include "server/metrics.h"

#include <fmt/core.h>

#include "server/api.h"

namespace assent::server {

void Metrics::Histogram::Observe(double seconds) {
  size_t i = 0;
  while (i < kBuckets.size() && seconds > kBuckets[i]) ++i;
  buckets[i].fetch_add(1, std::memory_order_relaxed);
  count.fetch_add(1, std::memory_order_relaxed);
  sum_micros.fetch_add(static_cast<uint64_t>(seconds * 1e6), std::memory_order_relaxed);
}

void Metrics::Request(size_t route, int status, double seconds) {
  if (route >= kMaxRoutes) route = kMaxRoutes - 1;
  latency_[route].Observe(seconds);
  size_t cls = static_cast<size_t>(status / 100);
  if (cls < 6) by_class_[route][cls].fetch_add(1, std::memory_order_relaxed);
}

void Metrics::Append(double seconds) { appends_.Observe(seconds); }

std::string Metrics::Render(uint64_t position) const {
  std::string out;
  const auto& routes = Api::Routes();
  auto route_name = [&](size_t i) {
    return i < routes.size() ? routes[i].method + " " + routes[i].pattern : std::string("other");
  };
  out += "# HELP assent_http_requests_total HTTP requests by route and status class.\n";
  out += "# TYPE assent_http_requests_total counter\n";
  for (size_t r = 0; r < kMaxRoutes; ++r) {
    if (r >= routes.size() && r != kMaxRoutes - 1) continue;
    for (size_t c = 1; c < 6; ++c) {
      uint64_t v = by_class_[r][c].load(std::memory_order_relaxed);
      if (!v) continue;
      out += fmt::format("assent_http_requests_total{{route=\"{}\",code=\"{}xx\"}} {}\n",
                         route_name(r), c, v);
    }
  }
  auto histogram = [&](const std::string& name, const std::string& labels, const Histogram& h) {
    uint64_t cumulative = 0;
    for (size_t i = 0; i < kBuckets.size(); ++i) {
      cumulative += h.buckets[i].load(std::memory_order_relaxed);
      out += fmt::format("{}_bucket{{{}le=\"{}\"}} {}\n", name, labels, kBuckets[i], cumulative);
    }
    cumulative += h.buckets[kBuckets.size()].load(std::memory_order_relaxed);
    out += fmt::format("{}_bucket{{{}le=\"+Inf\"}} {}\n", name, labels, cumulative);
    out += fmt::format("{}_sum{{{}}} {:.6f}\n", name, labels.empty() ? "" : labels.substr(0, labels.size() - 1),
                       h.sum_micros.load(std::memory_order_relaxed) / 1e6);
    out += fmt::format("{}_count{{{}}} {}\n", name, labels.empty() ? "" : labels.substr(0, labels.size() - 1),
                       h.count.load(std::memory_order_relaxed));
  };
  out += "# HELP assent_http_request_duration_seconds Request latency by route.\n";
  out += "# TYPE assent_http_request_duration_seconds histogram\n";
  for (size_t r = 0; r < routes.size(); ++r) {
    if (!latency_[r].count.load(std::memory_order_relaxed)) continue;
    histogram("assent_http_request_duration_seconds", "route=\"" + route_name(r) + "\",",
              latency_[r]);
  }
  out += "# HELP assent_decisions_total Decisions answered, by reason.\n";
  out += "# TYPE assent_decisions_total counter\n";
  for (size_t i = 0; i < decisions_.size(); ++i) {
    out += fmt::format("assent_decisions_total{{reason=\"{}\"}} {}\n",
                       ReasonName(static_cast<Reason>(i)),
                       decisions_[i].load(std::memory_order_relaxed));
  }
  out += "# HELP assent_ledger_position The ledger position this node has applied.\n";
  out += "# TYPE assent_ledger_position gauge\n";
  out += fmt::format("assent_ledger_position {}\n", position);
  out += "# HELP assent_ledger_append_seconds Durable appends (transaction and fsync) by the API.\n";
  out += "# TYPE assent_ledger_append_seconds histogram\n";
  histogram("assent_ledger_append_seconds", "", appends_);
  return out;
}

}  // namespace assent::server
