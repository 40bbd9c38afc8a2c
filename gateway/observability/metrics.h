// Prometheus metrics. Counters are sharded per event loop: each loop writes only
// its own shard (its mutex is uncontended but for scrapes), the admin thread sums.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace mcpgate::observability {

struct RequestSample {
  std::string_view route;       // "" when no route matched
  std::string_view http_method;
  std::string_view rpc_method;  // already bounded (mcp::metrics_method_label)
  int status = 0;
  double upstream_seconds = -1;  // time to the upstream's response head; < 0 when none
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
};

class Metrics {
 public:
  static constexpr std::array<double, 12> kLatencyBuckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                            0.5,   1,    2.5,   5,    10,  30};
  explicit Metrics(unsigned shards);

  void record_request(unsigned shard, const RequestSample& sample);
  // Upstream credential events, by credential: `kind` is one of refresh (outcome ok, failed,
  // rejected), cache (hit, miss) or connect (started, linked, refused, failed).
  void record_credential_event(std::string_view kind, std::string_view credential, std::string_view outcome);
  // Time one token store operation (get, set, delete, lock) took, success or not.
  void record_store_latency(std::string_view operation, double seconds);
  // One rate-limit decision on a worker: outcome allowed, limited, or unavailable (the shared
  // store did not answer; the request went through).
  void record_rate_limit(unsigned shard, std::string_view route, std::string_view limit, std::string_view outcome);
  // One plugin hook answer: hook verify_token / authorize, result allow, deny, error.
  void record_plugin_decision(unsigned shard, std::string_view plugin, std::string_view hook, std::string_view result);
  // One JWT check that ran (answers from the token cache are not counted): result is the
  // auth status name (ok, signature_invalid, expired...).
  void record_jwt_verification(unsigned shard, std::string_view route, std::string_view server, std::string_view result);
  // An upstream endpoint refused the connection (or did not resolve, or failed TLS): result
  // retried (another endpoint of the route took the request) or failed (the client got an error).
  void record_upstream_unreachable(unsigned shard, std::string_view route, std::string_view endpoint, std::string_view result);
  std::string render_prometheus() const;

  std::atomic<int64_t> active_connections{0};
  std::atomic<int64_t> active_streams{0};
  std::atomic<uint64_t> reloads_succeeded{0};
  std::atomic<uint64_t> reloads_failed{0};

 private:
  struct Histogram {
    std::array<uint64_t, kLatencyBuckets.size()> buckets{};
    uint64_t count = 0;
    double sum = 0;
    void observe(double seconds) {
      for (std::size_t i = 0; i < kLatencyBuckets.size(); ++i)
        if (seconds <= kLatencyBuckets[i]) ++buckets[i];
      ++count;
      sum += seconds;
    }
  };
  // Prometheus text of one labelled histogram (`label`: `key="value"`).
  static void append_histogram(std::string& out, std::string_view name, const std::string& label, const Histogram& histogram);
  struct Shard {
    mutable std::mutex mutex;
    std::map<std::tuple<std::string, std::string, std::string, int>, uint64_t> requests;
    std::map<std::string, Histogram> upstream_latency;
    std::map<std::string, std::pair<uint64_t, uint64_t>> bytes;  // in, out
    std::map<std::tuple<std::string, std::string, std::string>, uint64_t, std::less<>> rate_limits;  // route, limit, outcome
    std::map<std::tuple<std::string, std::string, std::string>, uint64_t, std::less<>> plugin_decisions;  // plugin, hook, result
    std::map<std::tuple<std::string, std::string, std::string>, uint64_t, std::less<>> unreachable;  // route, endpoint, result
    std::map<std::tuple<std::string, std::string, std::string>, uint64_t, std::less<>> jwt_verifications;  // route, server, result
  };
  // Adds one to the counter of `key` in a shard map, allocating only for a new label set.
  static void count(std::map<std::tuple<std::string, std::string, std::string>, uint64_t, std::less<>>& counters,
                    std::string_view a, std::string_view b, std::string_view c);
  void render_policy_metrics(std::string& out) const;
  void render_credential_metrics(std::string& out) const;

  std::vector<std::unique_ptr<Shard>> shards_;
  // Credential events are rare next to requests: one lock, not shards.
  mutable std::mutex credential_mutex_;
  // Transparent comparators: a known label set is found from string_views, without allocating.
  std::map<std::tuple<std::string, std::string, std::string>, uint64_t, std::less<>> credential_events_;
  std::map<std::string, Histogram, std::less<>> store_latency_;
};

// Bounded HTTP method label.
std::string_view http_method_label(std::string_view method);

}  // namespace mcpgate::observability
