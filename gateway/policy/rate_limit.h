// Built-in rate limits (routes[].rate_limits): which token buckets a request takes from, and the
// buckets of one process. Shared buckets live in the Redis store (TokenStore::take_tokens).
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "auth/identity.h"
#include "config/config.h"
#include "credentials/store_backend.h"
#include "mcp/jsonrpc.h"

namespace mcpgate::policy {

using credentials::BucketTake;
using credentials::BucketVerdict;

// The buckets the messages of one request take from, each once with the number of messages
// it counts; `limits` gets the route's limit index of each. Keys are "<route>:<limit>:<caller>",
// the caller part "*" (per route), "<issuer> <sub>" (per subject), "client <id>" or
// "subject <issuer> <sub>" (per client_id), "tool <name>" or "other tools" (per tool: only tools
// the route names in `tools` or a limit's `tool` get their own).
std::vector<BucketTake> buckets_for(const config::RouteConfig& route, const std::vector<mcp::JsonRpcTarget>& targets,
                                    const auth::Identity* identity, std::vector<std::size_t>& limits);

// A bucket's level: `tokens` as of `updated_ms`.
struct BucketLevel {
  double tokens = 0;
  int64_t updated_ms = 0;
  double refill_all_ms = 0;  // capacity × interval: after this long untouched it is full again
};

// Refills `level` to `now_ms` (a new bucket starts full) and says how many tokens it holds.
double refilled(const BucketLevel* level, const BucketTake& bucket, int64_t now_ms);

// The buckets of this process, shared by its loops. The mutex is held for one take, never
// across a callback.
class LocalBuckets {
 public:
  // Takes from every bucket or from none (all-or-nothing), at `now_ms` (steady milliseconds).
  BucketVerdict take(const std::vector<BucketTake>& buckets, int64_t now_ms);
  std::size_t size();

 private:
  void sweep_locked(int64_t now_ms);

  std::mutex mutex_;
  std::unordered_map<std::string, BucketLevel> levels_;
  uint64_t takes_ = 0;
};

}  // namespace mcpgate::policy
