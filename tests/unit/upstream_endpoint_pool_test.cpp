#include <doctest/doctest.h>

#include <map>
#include <thread>

#include "upstream/endpoint_pool.h"

using namespace mcpgate;

namespace {

config::RouteConfig route_with(std::size_t endpoints, config::Balancing balancing = config::Balancing::RoundRobin) {
  config::RouteConfig route;
  route.name = "r";
  for (std::size_t i = 0; i < endpoints; ++i)
    route.upstreams.push_back(config::parse_upstream_url("http://127.0.0.1:" + std::to_string(3001 + i) + "/mcp"));
  route.balancing = balancing;
  return route;
}

}  // namespace

TEST_CASE("endpoint pool: round robin takes each endpoint in turn") {
  upstream::EndpointPool pool;
  const auto route = route_with(3);
  std::map<std::size_t, int> taken;
  for (int i = 0; i < 30; ++i) ++taken[pool.choose(route, {}).index()];
  CHECK(taken == std::map<std::size_t, int>{{0, 10}, {1, 10}, {2, 10}});
}

TEST_CASE("endpoint pool: least outstanding picks the endpoint with the fewest requests in flight") {
  upstream::EndpointPool pool;
  const auto route = route_with(3, config::Balancing::LeastOutstanding);
  auto busy_a = pool.hold(route, 0);
  auto busy_b = pool.hold(route, 0);
  auto busy_c = pool.hold(route, 2);
  CHECK(pool.choose(route, {}).index() == 1);
  auto on_one = pool.choose(route, {});
  CHECK(on_one.index() == 1);
  // 0 has 2, 1 has 1, 2 has 1: the next goes to 1 or 2, never 0.
  for (int i = 0; i < 10; ++i) CHECK(pool.choose(route, {}).index() != 0);
  busy_a.release();
  busy_b.release();
  CHECK(pool.choose(route, {}).index() == 0);
}

TEST_CASE("endpoint pool: an unreachable endpoint is left out while others are up, and tried ones never again") {
  upstream::EndpointPool pool;
  const auto route = route_with(3);
  pool.choose(route, {}).index();
  auto lease = pool.hold(route, 1);
  lease.mark_unreachable(60000);
  for (int i = 0; i < 12; ++i) CHECK(pool.choose(route, {}).index() != 1);
  CHECK(pool.choose(route, {0, 2}).index() == 1);  // nothing else left: the resting one is tried
  CHECK_FALSE(pool.choose(route, {0, 1, 2}).held());
  auto short_rest = pool.hold(route, 2);
  short_rest.mark_unreachable(0);
  CHECK(pool.choose(route, {0}).index() == 2);  // its rest is over
}

TEST_CASE("endpoint pool: a reload that changes the endpoint list starts afresh; leases count across threads") {
  upstream::EndpointPool pool;
  auto route = route_with(2, config::Balancing::LeastOutstanding);
  {
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
      threads.emplace_back([&] {
        for (int i = 0; i < 1000; ++i) pool.choose(route, {});
      });
    for (auto& thread : threads) thread.join();
  }
  auto held = pool.hold(route, 0);
  CHECK(pool.choose(route, {}).index() == 1);  // every lease above was released
  route.upstreams.push_back(config::parse_upstream_url("http://127.0.0.1:3009/mcp"));
  auto in_new_list = pool.choose(route, {});
  CHECK(in_new_list.held());
}
