#include "upstream/endpoint_pool.h"

#include <algorithm>
#include <chrono>
#include <limits>

namespace mcpgate::upstream {
namespace {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

EndpointLease::EndpointLease(EndpointState* state, std::size_t index) : state_(state), index_(index) {
  state_->outstanding.fetch_add(1, std::memory_order_relaxed);
}

EndpointLease::EndpointLease(EndpointLease&& other) noexcept : state_(other.state_), index_(other.index_) {
  other.state_ = nullptr;
}

EndpointLease& EndpointLease::operator=(EndpointLease&& other) noexcept {
  if (this != &other) {
    release();
    state_ = other.state_;
    index_ = other.index_;
    other.state_ = nullptr;
  }
  return *this;
}

void EndpointLease::mark_unreachable(uint32_t skip_ms) {
  if (state_ != nullptr) state_->skip_until_ms.store(now_ms() + skip_ms, std::memory_order_relaxed);
}

void EndpointLease::release() {
  if (state_ != nullptr) state_->outstanding.fetch_sub(1, std::memory_order_relaxed);
  state_ = nullptr;
}

EndpointPool::RouteState& EndpointPool::state_for(const config::RouteConfig& route) {
  // A reload that changes the endpoint list starts the route afresh.
  std::string key = route.name;
  for (const auto& endpoint : route.upstreams) key.append("\n").append(endpoint.origin()).append(endpoint.path);
  std::lock_guard lock(mutex_);
  auto& state = routes_[key];
  if (!state) {
    state = std::make_unique<RouteState>();
    for (std::size_t i = 0; i < route.upstreams.size(); ++i) state->endpoints.push_back(std::make_unique<EndpointState>());
  }
  return *state;
}

EndpointLease EndpointPool::choose(const config::RouteConfig& route, const std::vector<std::size_t>& tried) {
  RouteState& state = state_for(route);
  const std::size_t count = state.endpoints.size();
  const int64_t now = now_ms();
  std::vector<std::size_t> candidates;
  std::vector<std::size_t> resting;  // untried but recently unreachable: used only when nothing else is left
  for (std::size_t i = 0; i < count; ++i) {
    if (std::find(tried.begin(), tried.end(), i) != tried.end()) continue;
    (state.endpoints[i]->skip_until_ms.load(std::memory_order_relaxed) > now ? resting : candidates).push_back(i);
  }
  if (candidates.empty()) candidates = std::move(resting);
  if (candidates.empty()) return {};
  const uint64_t turn = state.next.fetch_add(1, std::memory_order_relaxed);
  std::size_t chosen = candidates[turn % candidates.size()];
  if (route.balancing == config::Balancing::LeastOutstanding) {
    // Ties go round robin: start the scan at this turn's candidate.
    int64_t least = std::numeric_limits<int64_t>::max();
    for (std::size_t k = 0; k < candidates.size(); ++k) {
      const std::size_t i = candidates[(turn + k) % candidates.size()];
      const int64_t load = state.endpoints[i]->outstanding.load(std::memory_order_relaxed);
      if (load < least) {
        least = load;
        chosen = i;
      }
    }
  }
  return EndpointLease(state.endpoints[chosen].get(), chosen);
}

EndpointLease EndpointPool::hold(const config::RouteConfig& route, std::size_t index) {
  return EndpointLease(state_for(route).endpoints.at(index).get(), index);
}

}  // namespace mcpgate::upstream
