#include <doctest/doctest.h>

#include "policy/rate_limit.h"

using namespace mcpgate;
using policy::BucketTake;
using policy::LocalBuckets;

namespace {

config::RouteConfig route_with(std::vector<config::RateLimitConfig> limits) {
  config::RouteConfig route;
  route.name = "notes";
  route.rate_limits = std::move(limits);
  return route;
}

mcp::JsonRpcTarget call(const std::string& tool) { return {"tools/call", tool, true}; }

}  // namespace

TEST_CASE("rate limits: a bucket gives `capacity` at once, then one per interval") {
  LocalBuckets buckets;
  const std::vector<BucketTake> take{{"k", 3, 1000, 1}};
  for (int i = 0; i < 3; ++i) CHECK(buckets.take(take, 0).allowed);
  const auto refused = buckets.take(take, 0);
  CHECK_FALSE(refused.allowed);
  CHECK(refused.retry_after_ms == 1000);
  CHECK_FALSE(buckets.take(take, 999).allowed);
  CHECK(buckets.take(take, 1000).allowed);  // one back after one interval
  CHECK_FALSE(buckets.take(take, 1000).allowed);
  // A long pause refills to capacity, never beyond.
  for (int i = 0; i < 3; ++i) CHECK(buckets.take(take, 100000).allowed);
  CHECK_FALSE(buckets.take(take, 100000).allowed);
}

TEST_CASE("rate limits: several buckets are taken from all or none") {
  LocalBuckets buckets;
  const BucketTake wide{"route", 5, 1000, 1};
  const BucketTake narrow{"alice", 1, 60000, 1};
  CHECK(buckets.take({wide, narrow}, 0).allowed);
  const auto refused = buckets.take({wide, narrow}, 0);
  CHECK_FALSE(refused.allowed);
  CHECK(refused.limited == 1);
  CHECK(refused.retry_after_ms == 60000);
  // The refused request took nothing from the wide bucket: four are left.
  for (int i = 0; i < 4; ++i) CHECK(buckets.take({wide}, 0).allowed);
  CHECK_FALSE(buckets.take({wide}, 0).allowed);
  // A cost above what is left waits for all of it.
  const auto batch = buckets.take({BucketTake{"b", 2, 500, 3}}, 0);
  CHECK_FALSE(batch.allowed);
  CHECK(batch.retry_after_ms == 500);
}

TEST_CASE("rate limits: which messages take from which bucket") {
  config::RateLimitConfig per_subject_tool{"subject:delete", config::RateLimitKey::Subject, "delete", 5, 1000};
  config::RateLimitConfig per_route{"route", config::RateLimitKey::Route, "", 10, 100};
  config::RateLimitConfig per_tool{"tool", config::RateLimitKey::Tool, "", 2, 100};
  config::RateLimitConfig per_client{"client_id", config::RateLimitKey::ClientId, "", 2, 100};
  const auto route = route_with({per_subject_tool, per_route, per_tool, per_client});
  auth::Identity alice;
  alice.issuer = "https://idp";
  alice.subject = "alice";
  std::vector<std::size_t> limits;

  auto buckets = policy::buckets_for(route, {call("delete")}, &alice, limits);
  REQUIRE(buckets.size() == 4);
  CHECK(buckets[0].key == "notes:subject:delete:https://idp alice");
  CHECK(buckets[1].key == "notes:route:*");
  CHECK(buckets[2].key == "notes:tool:tool delete");
  CHECK(buckets[3].key == "notes:client_id:subject https://idp alice");  // no client_id: counted as its own client
  CHECK(limits == std::vector<std::size_t>{0, 1, 2, 3});

  // Another tool: not the per-subject delete limit. A tool the route does not name shares one
  // per-tool bucket with every other such name (clients cannot grow the bucket set).
  buckets = policy::buckets_for(route, {call("create")}, &alice, limits);
  CHECK(limits == std::vector<std::size_t>{1, 2, 3});
  CHECK(buckets[1].key == "notes:tool:other tools");
  CHECK(policy::buckets_for(route, {call("made-up-1"), call("made-up-2")}, &alice, limits)[1].cost == 2);
  alice.client_id = "inspector";
  CHECK(policy::buckets_for(route, {call("create")}, &alice, limits)[2].key == "notes:client_id:client inspector");
  alice.client_id.clear();
  // tools/list counts on the route and client limits only.
  buckets = policy::buckets_for(route, {{"tools/list", "", false}}, &alice, limits);
  CHECK(limits == std::vector<std::size_t>{1, 3});
  // A batch of two deletes takes two tokens from each bucket; a response takes none.
  buckets = policy::buckets_for(route, {call("delete"), call("delete"), {"", "", false}}, &alice, limits);
  REQUIRE(buckets.size() == 4);
  CHECK(buckets[0].cost == 2);
  CHECK(buckets[1].cost == 2);
  // GET streams and DELETE carry no message: nothing is counted.
  CHECK(policy::buckets_for(route, {}, &alice, limits).empty());
}
