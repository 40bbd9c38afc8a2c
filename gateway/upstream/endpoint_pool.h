// Which endpoint of a multi-endpoint route takes a request: round robin or least outstanding
// over the endpoints not recently refusing connections (passive health). Shared by every
// worker of the process; counters are atomics, the route table a short-held mutex.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/config.h"

namespace mcpgate::upstream {

struct EndpointState {
  std::atomic<int64_t> outstanding{0};    // requests and streams in flight on it
  std::atomic<int64_t> skip_until_ms{0};  // steady-clock ms; later than now: left out
};

class EndpointPool;

// One request's hold on an endpoint: counts as outstanding until released or destroyed.
class EndpointLease {
 public:
  EndpointLease() = default;
  EndpointLease(EndpointState* state, std::size_t index);
  EndpointLease(EndpointLease&& other) noexcept;
  EndpointLease& operator=(EndpointLease&& other) noexcept;
  ~EndpointLease() { release(); }

  std::size_t index() const { return index_; }
  bool held() const { return state_ != nullptr; }
  // The endpoint refused the connection: leave it out for `skip_ms`.
  void mark_unreachable(uint32_t skip_ms);
  void release();

 private:
  EndpointState* state_ = nullptr;
  std::size_t index_ = 0;
};

class EndpointPool {
 public:
  // An endpoint for a request no session ties, skipping those in `tried` (indexes into
  // route.upstreams) and, while any other is left, those recently unreachable. Leaves the
  // lease empty when every endpoint was tried.
  EndpointLease choose(const config::RouteConfig& route, const std::vector<std::size_t>& tried);
  // The lease on a given endpoint (a session's).
  EndpointLease hold(const config::RouteConfig& route, std::size_t index);

 private:
  struct RouteState {
    std::atomic<uint64_t> next{0};  // round-robin cursor
    std::vector<std::unique_ptr<EndpointState>> endpoints;
  };
  RouteState& state_for(const config::RouteConfig& route);

  std::mutex mutex_;  // guards routes_ (lookups only; states are never removed, so pointers stay valid)
  std::unordered_map<std::string, std::unique_ptr<RouteState>> routes_;  // by route name and endpoint list
};

}  // namespace mcpgate::upstream
