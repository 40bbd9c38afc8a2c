#include "policy/rate_limit.h"

#include <algorithm>
#include <cmath>

namespace mcpgate::policy {
namespace {

// Every so many takes, buckets that are full again are dropped: a full bucket and an absent one
// are the same, so the map holds only callers seen within one refill period.
constexpr uint64_t kSweepEveryTakes = 4096;

bool counts(const config::RateLimitConfig& limit, const mcp::JsonRpcTarget& target) {
  if (target.method.empty()) return false;  // a response to the server, not a request
  if (!limit.tool.empty()) return target.method == "tools/call" && target.has_name && target.name == limit.tool;
  if (limit.per == config::RateLimitKey::Tool) return target.method == "tools/call" && target.has_name;
  return true;
}

bool route_names_tool(const config::RouteConfig& route, const std::string& tool) {
  return route.tools.contains(tool) || std::any_of(route.rate_limits.begin(), route.rate_limits.end(),
                                                   [&](const config::RateLimitConfig& limit) { return limit.tool == tool; });
}

std::string caller_key(const config::RouteConfig& route, const config::RateLimitConfig& limit,
                       const mcp::JsonRpcTarget& target, const auth::Identity* identity) {
  switch (limit.per) {
    case config::RateLimitKey::Route: return "*";
    case config::RateLimitKey::Subject: return identity ? identity->issuer + " " + identity->subject : "-";
    // A caller without a client (API keys often have none) is its own client: one such caller must
    // not use up the bucket of every other.
    case config::RateLimitKey::ClientId:
      if (identity && !identity->client_id.empty()) return "client " + identity->client_id;
      return identity ? "subject " + identity->issuer + " " + identity->subject : "-";
    // The client chooses the name: only tools the route names get buckets of their own, so made-up
    // names cannot grow the bucket set (they share one).
    case config::RateLimitKey::Tool:
      return route_names_tool(route, target.name) ? "tool " + target.name : "other tools";
  }
  return "-";
}

}  // namespace

std::vector<BucketTake> buckets_for(const config::RouteConfig& route, const std::vector<mcp::JsonRpcTarget>& targets,
                                    const auth::Identity* identity, std::vector<std::size_t>& limits) {
  std::vector<BucketTake> buckets;
  limits.clear();
  for (std::size_t index = 0; index < route.rate_limits.size(); ++index) {
    const auto& limit = route.rate_limits[index];
    for (const auto& target : targets) {
      if (!counts(limit, target)) continue;
      const std::string key = route.name + ":" + limit.name + ":" + caller_key(route, limit, target, identity);
      auto same = std::find_if(buckets.begin(), buckets.end(), [&](const BucketTake& b) { return b.key == key; });
      if (same != buckets.end()) {
        ++same->cost;  // a batch counts each of its messages
        continue;
      }
      buckets.push_back({key, limit.burst, limit.refill_interval_ms, 1});
      limits.push_back(index);
    }
  }
  return buckets;
}

double refilled(const BucketLevel* level, const BucketTake& bucket, int64_t now_ms) {
  if (level == nullptr) return bucket.capacity;
  const double elapsed = static_cast<double>(std::max<int64_t>(0, now_ms - level->updated_ms));
  return std::min<double>(bucket.capacity, level->tokens + elapsed / bucket.refill_interval_ms);
}

BucketVerdict LocalBuckets::take(const std::vector<BucketTake>& buckets, int64_t now_ms) {
  std::lock_guard lock(mutex_);
  std::vector<double> left(buckets.size());
  BucketVerdict verdict;
  for (std::size_t i = 0; i < buckets.size(); ++i) {
    const auto found = levels_.find(buckets[i].key);
    left[i] = refilled(found == levels_.end() ? nullptr : &found->second, buckets[i], now_ms) - buckets[i].cost;
    if (left[i] >= 0) continue;
    if (verdict.allowed) verdict.limited = i;
    verdict.allowed = false;
    verdict.retry_after_ms =
        std::max(verdict.retry_after_ms, static_cast<int64_t>(std::ceil(-left[i] * buckets[i].refill_interval_ms)));
  }
  if (!verdict.allowed) return verdict;
  for (std::size_t i = 0; i < buckets.size(); ++i)
    levels_[buckets[i].key] = {left[i], now_ms, buckets[i].capacity * buckets[i].refill_interval_ms};
  if (++takes_ % kSweepEveryTakes == 0) sweep_locked(now_ms);
  return verdict;
}

std::size_t LocalBuckets::size() {
  std::lock_guard lock(mutex_);
  return levels_.size();
}

void LocalBuckets::sweep_locked(int64_t now_ms) {
  for (auto it = levels_.begin(); it != levels_.end();)
    it = static_cast<double>(now_ms - it->second.updated_ms) >= it->second.refill_all_ms ? levels_.erase(it) : std::next(it);
}

}  // namespace mcpgate::policy
