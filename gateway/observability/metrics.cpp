#include "observability/metrics.h"

#include <charconv>

namespace mcpgate::observability {
namespace {

std::string escape_label(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out.append("\\n");
      continue;
    }
    out.push_back(c);
  }
  return out;
}

// The shortest text that reads back as `value` ("0.1", not "0.10000000000000001"),
// so bucket labels match what dashboards select on.
std::string format_number(double value) {
  char text[64];
  const auto result = std::to_chars(text, text + sizeof text, value);
  return std::string(text, result.ptr);
}

}  // namespace

std::string_view http_method_label(std::string_view method) {
  for (std::string_view known : {"GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS"})
    if (method == known) return known;
  return "OTHER";
}

Metrics::Metrics(unsigned shards) {
  for (unsigned i = 0; i < shards; ++i) shards_.push_back(std::make_unique<Shard>());
}

void Metrics::record_request(unsigned shard_index, const RequestSample& sample) {
  Shard& shard = *shards_.at(shard_index);
  std::lock_guard lock(shard.mutex);
  ++shard.requests[{std::string(sample.route), std::string(sample.http_method), std::string(sample.rpc_method),
                    sample.status}];
  auto& bytes = shard.bytes[std::string(sample.route)];
  bytes.first += sample.bytes_in;
  bytes.second += sample.bytes_out;
  if (sample.upstream_seconds >= 0) {
    shard.upstream_latency[std::string(sample.route)].observe(sample.upstream_seconds);
  }
}

void Metrics::append_histogram(std::string& out, std::string_view name, const std::string& label, const Histogram& histogram) {
  for (std::size_t i = 0; i < kLatencyBuckets.size(); ++i)
    out.append(name).append("_bucket{").append(label).append(",le=\"").append(format_number(kLatencyBuckets[i]))
        .append("\"} ").append(std::to_string(histogram.buckets[i])).append("\n");
  out.append(name).append("_bucket{").append(label).append(",le=\"+Inf\"} ").append(std::to_string(histogram.count)).append("\n");
  out.append(name).append("_sum{").append(label).append("} ").append(format_number(histogram.sum)).append("\n");
  out.append(name).append("_count{").append(label).append("} ").append(std::to_string(histogram.count)).append("\n");
}

void Metrics::count(std::map<std::tuple<std::string, std::string, std::string>, uint64_t, std::less<>>& counters,
                    std::string_view a, std::string_view b, std::string_view c) {
  auto found = counters.find(std::make_tuple(a, b, c));
  if (found == counters.end()) found = counters.emplace(std::make_tuple(std::string(a), std::string(b), std::string(c)), 0).first;
  ++found->second;
}

void Metrics::record_rate_limit(unsigned shard_index, std::string_view route, std::string_view limit,
                                std::string_view outcome) {
  Shard& shard = *shards_.at(shard_index);
  std::lock_guard lock(shard.mutex);
  count(shard.rate_limits, route, limit, outcome);
}

void Metrics::record_plugin_decision(unsigned shard_index, std::string_view plugin, std::string_view hook,
                                     std::string_view result) {
  Shard& shard = *shards_.at(shard_index);
  std::lock_guard lock(shard.mutex);
  count(shard.plugin_decisions, plugin, hook, result);
}

void Metrics::record_upstream_unreachable(unsigned shard_index, std::string_view route, std::string_view endpoint,
                                          std::string_view result) {
  Shard& shard = *shards_.at(shard_index);
  std::lock_guard lock(shard.mutex);
  count(shard.unreachable, route, endpoint, result);
}

void Metrics::record_jwt_verification(unsigned shard_index, std::string_view route, std::string_view server,
                                      std::string_view result) {
  Shard& shard = *shards_.at(shard_index);
  std::lock_guard lock(shard.mutex);
  count(shard.jwt_verifications, route, server, result);
}

void Metrics::render_policy_metrics(std::string& out) const {
  std::map<std::tuple<std::string, std::string, std::string>, uint64_t> rate_limits;
  std::map<std::tuple<std::string, std::string, std::string>, uint64_t> plugin_decisions;
  std::map<std::tuple<std::string, std::string, std::string>, uint64_t> unreachable;
  std::map<std::tuple<std::string, std::string, std::string>, uint64_t> jwt_verifications;
  for (const auto& shard : shards_) {
    std::lock_guard lock(shard->mutex);
    for (const auto& [key, value] : shard->rate_limits) rate_limits[key] += value;
    for (const auto& [key, value] : shard->plugin_decisions) plugin_decisions[key] += value;
    for (const auto& [key, value] : shard->unreachable) unreachable[key] += value;
    for (const auto& [key, value] : shard->jwt_verifications) jwt_verifications[key] += value;
  }
  auto family = [&](std::string_view name, std::string_view help, const auto& counters,
                    std::array<std::string_view, 3> labels) {
    out.append("# HELP ").append(name).append(" ").append(help).append("\n");
    out.append("# TYPE ").append(name).append(" counter\n");
    for (const auto& [key, value] : counters) {
      out.append(name).append("{").append(labels[0]).append("=\"").append(escape_label(std::get<0>(key)));
      out.append("\",").append(labels[1]).append("=\"").append(escape_label(std::get<1>(key)));
      out.append("\",").append(labels[2]).append("=\"").append(escape_label(std::get<2>(key)));
      out.append("\"} ").append(std::to_string(value)).append("\n");
    }
  };
  family("mcpgate_rate_limit_total", "Rate limit decisions, by route, limit and outcome (allowed, limited, unavailable).",
         rate_limits, {"route", "limit", "outcome"});
  family("mcpgate_plugin_decisions_total", "Plugin hook answers, by plugin, hook and result (allow, deny, error).",
         plugin_decisions, {"plugin", "hook", "result"});
  family("mcpgate_upstream_unreachable_total",
         "Upstream endpoints that refused a connection, by route, endpoint and result (retried on another endpoint, failed).",
         unreachable, {"route", "endpoint", "result"});
  family("mcpgate_jwt_verifications_total",
         "JWT checks run (not answered from the token cache), by route, authorization server and result.",
         jwt_verifications, {"route", "server", "result"});
}

void Metrics::record_credential_event(std::string_view kind, std::string_view credential, std::string_view outcome) {
  std::lock_guard lock(credential_mutex_);
  count(credential_events_, kind, credential, outcome);
}

void Metrics::record_store_latency(std::string_view operation, double seconds) {
  std::lock_guard lock(credential_mutex_);
  auto found = store_latency_.find(operation);
  if (found == store_latency_.end()) found = store_latency_.emplace(std::string(operation), Histogram{}).first;
  found->second.observe(seconds);
}

std::string Metrics::render_prometheus() const {
  std::map<std::tuple<std::string, std::string, std::string, int>, uint64_t> requests;
  std::map<std::string, Histogram> latency;
  std::map<std::string, std::pair<uint64_t, uint64_t>> bytes;
  for (const auto& shard : shards_) {
    std::lock_guard lock(shard->mutex);
    for (const auto& [key, count] : shard->requests) requests[key] += count;
    for (const auto& [route, histogram] : shard->upstream_latency) {
      Histogram& total = latency[route];
      for (std::size_t i = 0; i < histogram.buckets.size(); ++i) total.buckets[i] += histogram.buckets[i];
      total.count += histogram.count;
      total.sum += histogram.sum;
    }
    for (const auto& [route, pair] : shard->bytes) {
      bytes[route].first += pair.first;
      bytes[route].second += pair.second;
    }
  }
  std::string out;
  out.append("# HELP mcpgate_requests_total Requests answered, by route, HTTP method, status and JSON-RPC method.\n");
  out.append("# TYPE mcpgate_requests_total counter\n");
  for (const auto& [key, count] : requests) {
    const auto& [route, method, rpc_method, status] = key;
    out.append("mcpgate_requests_total{route=\"").append(escape_label(route)).append("\",method=\"").append(method);
    out.append("\",status=\"").append(std::to_string(status)).append("\",rpc_method=\"").append(escape_label(rpc_method));
    out.append("\"} ").append(std::to_string(count)).append("\n");
  }
  out.append("# HELP mcpgate_upstream_latency_seconds Time from sending a request upstream to its response head.\n");
  out.append("# TYPE mcpgate_upstream_latency_seconds histogram\n");
  for (const auto& [route, histogram] : latency) {
    const std::string label = "route=\"" + escape_label(route) + "\"";
    append_histogram(out, "mcpgate_upstream_latency_seconds", label, histogram);
  }
  out.append("# HELP mcpgate_request_bytes_total Request body bytes received from clients.\n");
  out.append("# TYPE mcpgate_request_bytes_total counter\n");
  for (const auto& [route, pair] : bytes)
    out.append("mcpgate_request_bytes_total{route=\"").append(escape_label(route)).append("\"} ").append(std::to_string(pair.first)).append("\n");
  out.append("# HELP mcpgate_response_bytes_total Response body bytes sent to clients.\n");
  out.append("# TYPE mcpgate_response_bytes_total counter\n");
  for (const auto& [route, pair] : bytes)
    out.append("mcpgate_response_bytes_total{route=\"").append(escape_label(route)).append("\"} ").append(std::to_string(pair.second)).append("\n");
  render_credential_metrics(out);
  render_policy_metrics(out);
  out.append("# HELP mcpgate_active_connections Client connections open now.\n");
  out.append("# TYPE mcpgate_active_connections gauge\n");
  out.append("mcpgate_active_connections ").append(std::to_string(active_connections.load())).append("\n");
  out.append("# HELP mcpgate_active_streams Event streams being relayed now.\n");
  out.append("# TYPE mcpgate_active_streams gauge\n");
  out.append("mcpgate_active_streams ").append(std::to_string(active_streams.load())).append("\n");
  out.append("# HELP mcpgate_config_reloads_total Config reloads, by result.\n");
  out.append("# TYPE mcpgate_config_reloads_total counter\n");
  out.append("mcpgate_config_reloads_total{result=\"success\"} ").append(std::to_string(reloads_succeeded.load())).append("\n");
  out.append("mcpgate_config_reloads_total{result=\"failure\"} ").append(std::to_string(reloads_failed.load())).append("\n");
  return out;
}

void Metrics::render_credential_metrics(std::string& out) const {
  static constexpr std::array<std::array<std::string_view, 4>, 3> kFamilies{{
      {"refresh", "mcpgate_credential_refreshes_total", "Upstream credential refreshes and grants, by credential and outcome.", "outcome"},
      {"cache", "mcpgate_credential_cache_total", "Upstream credential lookups answered from the loop's cache (hit) or not (miss).", "result"},
      {"connect", "mcpgate_connect_flows_total", "Delegated-token connect flow steps, by credential and outcome.", "outcome"},
  }};
  std::lock_guard lock(credential_mutex_);
  for (const auto& [kind, name, help, label] : kFamilies) {
    out.append("# HELP ").append(name).append(" ").append(help).append("\n");
    out.append("# TYPE ").append(name).append(" counter\n");
    for (const auto& [key, count] : credential_events_) {
      if (std::get<0>(key) != kind) continue;
      out.append(name).append("{credential=\"").append(escape_label(std::get<1>(key))).append("\",").append(label);
      out.append("=\"").append(escape_label(std::get<2>(key))).append("\"} ").append(std::to_string(count)).append("\n");
    }
  }
  out.append("# HELP mcpgate_token_store_seconds Token store operation latency, by operation.\n");
  out.append("# TYPE mcpgate_token_store_seconds histogram\n");
  for (const auto& [operation, histogram] : store_latency_) {
    const std::string label = "operation=\"" + escape_label(operation) + "\"";
    append_histogram(out, "mcpgate_token_store_seconds", label, histogram);
  }
}

}  // namespace mcpgate::observability
