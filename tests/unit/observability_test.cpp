// Tests for the log helpers (secret masking, JSON escaping) and the Prometheus
// rendering of the sharded request metrics.
#include <doctest/doctest.h>

#include <jansson.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "observability/log.h"
#include "observability/metrics.h"

using namespace mcpgate::observability;

namespace {

bool contains(std::string_view text, std::string_view part) { return text.find(part) != std::string_view::npos; }

// The sample lines of `text` whose name and labels start with `prefix`, mapped to their value.
std::map<std::string, std::string> samples_with_prefix(const std::string& text, std::string_view prefix) {
  std::map<std::string, std::string> out;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#' || line.rfind(prefix, 0) != 0) continue;
    const auto space = line.rfind(' ');
    REQUIRE(space != std::string::npos);
    out[line.substr(0, space)] = line.substr(space + 1);
  }
  return out;
}

// Value of the sample whose name-and-labels text is exactly `series`; "" when absent.
std::string sample(const std::string& text, const std::string& series) {
  const auto all = samples_with_prefix(text, series);
  const auto it = all.find(series);
  return it == all.end() ? std::string() : it->second;
}

// Parses `escaped` as the inside of a JSON string literal.
std::string json_unescape(const std::string& escaped) {
  const std::string document = "\"" + escaped + "\"";
  json_error_t error;
  std::unique_ptr<json_t, decltype(&json_decref)> value(
      json_loadb(document.data(), document.size(), JSON_DECODE_ANY | JSON_ALLOW_NUL, &error), &json_decref);
  INFO("escaped: " << escaped << " error: " << error.text);
  REQUIRE(value);
  REQUIRE(json_is_string(value.get()));
  return std::string(json_string_value(value.get()), json_string_length(value.get()));
}

}  // namespace

// ---------------------------------------------------------------- mask_secrets

TEST_CASE("mask_secrets: bearer and basic credentials") {
  const std::string masked = mask_secrets("Authorization: Bearer abc.def");
  CHECK_FALSE(contains(masked, "abc.def"));
  CHECK_FALSE(contains(masked, "abc"));
  CHECK(contains(masked, "Authorization: Bearer "));
  CHECK(contains(masked, "***"));

  for (const char* text : {"authorization: bearer s3cr3t+/=~_-.x", "BEARER s3cr3t", "Proxy-Authorization: Basic s3cr3t",
                           "upstream said: (Bearer s3cr3t)", "Bearer s3cr3t"}) {
    CAPTURE(text);
    CHECK_FALSE(contains(mask_secrets(text), "s3cr3t"));
  }
  // The text after the credential is kept.
  CHECK(mask_secrets("token Bearer abc rejected by issuer") == "token Bearer *** rejected by issuer");
}

TEST_CASE("mask_secrets: a JWT anywhere") {
  const std::string jwt =
      "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJ1c2VyIiwiYXVkIjoibWNwIn0.c2lnbmF0dXJlLXBhcnQ_-";
  for (const std::string& text : {jwt, "token=" + jwt, "jwt " + jwt + " failed", "\"" + jwt + "\"", "x:" + jwt + ";",
                                  "header.payload:" + jwt}) {
    CAPTURE(text);
    const std::string masked = mask_secrets(text);
    CHECK_FALSE(contains(masked, "eyJhbGciOi"));
    CHECK_FALSE(contains(masked, "eyJzdWIi"));
    CHECK_FALSE(contains(masked, "c2lnbmF0dXJl"));
  }
  CHECK(mask_secrets("jwt " + jwt + " failed") == "jwt *** failed");
  // Two segments (an unsigned or truncated token) are masked too.
  CHECK_FALSE(contains(mask_secrets("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1In0"), "eyJzdWIi"));
}

TEST_CASE("mask_secrets: secret-named query and form values") {
  CHECK(mask_secrets("/cb?access_token=XYZ&x=1") == "/cb?access_token=***&x=1");
  CHECK(mask_secrets("GET /legacy/message?sessionId=abc") == "GET /legacy/message?sessionId=***");
  CHECK(mask_secrets("client_id=app&client_secret=s3cr3t") == "client_id=app&client_secret=***");
  CHECK(mask_secrets("code=AUTHCODE&state=xyz") == "code=***&state=xyz");
  CHECK(mask_secrets("refresh_token=r1, password=p2; api-key=k3 'x'") == "refresh_token=***, password=***; api-key=*** 'x'");
  CHECK(mask_secrets("PASSWORD=Hunter2") == "PASSWORD=***");
  CHECK(mask_secrets("token=") == "token=");
}

TEST_CASE("mask_secrets: ordinary text is unchanged") {
  for (const char* text : {"", "GET /mcp 200 12ms", "route 'github': upstream unavailable: Connection refused",
                           "user=alice&page=2", "a=b", "=leading equals", "x == y", "Bearer", "bearer", "eyJ", "eyJhbGciOiJIUzI1NiJ9", "{\"route\":\"r\",\"status\":200}",
                           "caf\xc3\xa9 \xe2\x9c\x93", "subscribers: 3"}) {
    CAPTURE(text);
    CHECK(mask_secrets(text) == text);
  }
}

TEST_CASE("mask_secrets: the scheme must start a word") {
  CHECK(mask_secrets("superbearer abc") == "superbearer abc");
}

// ---------------------------------------------------------------- json_escape

TEST_CASE("json_escape: the result is a valid JSON string body that decodes back") {
  using namespace std::string_literals;
  for (const std::string& text : {""s, "plain"s, "quote \" and backslash \\"s, "new\nline\rcr\ttab"s,
                                  "\x01\x02\x1f control"s, "nul \0 byte"s, "caf\xc3\xa9 \xe2\x9c\x93"s,
                                  "</script>"s, "\x7f del"s}) {
    CAPTURE(text);
    const std::string escaped = json_escape(text);
    for (unsigned char c : escaped) CHECK(c >= 0x20);
    CHECK(json_unescape(escaped) == text);
  }
}

TEST_CASE("json_escape: exact forms") {
  CHECK(json_escape("a\"b") == "a\\\"b");
  CHECK(json_escape("a\\b") == "a\\\\b");
  CHECK(json_escape("\n\r\t") == "\\n\\r\\t");
  CHECK(json_escape("\x01") == "\\u0001");
  CHECK(json_escape("\x1f") == "\\u001f");
}

// ---------------------------------------------------------------- metrics

TEST_CASE("metrics: http method label is bounded") {
  CHECK(http_method_label("GET") == "GET");
  CHECK(http_method_label("POST") == "POST");
  CHECK(http_method_label("OPTIONS") == "OPTIONS");
  CHECK(http_method_label("get") == "OTHER");
  CHECK(http_method_label("PROPFIND") == "OTHER");
  CHECK(http_method_label("") == "OTHER");
}

TEST_CASE("metrics: request counts from two shards are summed") {
  Metrics metrics(2);
  metrics.record_request(0, {"github", "POST", "tools/call", 200, 0.02, 100, 1000});
  metrics.record_request(1, {"github", "POST", "tools/call", 200, 0.2, 50, 500});
  metrics.record_request(1, {"github", "POST", "tools/call", 200, -1, 5, 0});  // no upstream response
  metrics.record_request(0, {"github", "GET", "", 404, -1, 0, 30});
  metrics.record_request(1, {"", "POST", "", 404, -1, 7, 40});
  const std::string text = metrics.render_prometheus();
  INFO(text);

  CHECK(sample(text, R"(mcpgate_requests_total{route="github",method="POST",status="200",rpc_method="tools/call"})") ==
        "3");
  CHECK(sample(text, R"(mcpgate_requests_total{route="github",method="GET",status="404",rpc_method=""})") == "1");
  CHECK(sample(text, R"(mcpgate_requests_total{route="",method="POST",status="404",rpc_method=""})") == "1");
  CHECK(samples_with_prefix(text, "mcpgate_requests_total{").size() == 3);

  CHECK(sample(text, R"(mcpgate_request_bytes_total{route="github"})") == "155");
  CHECK(sample(text, R"(mcpgate_response_bytes_total{route="github"})") == "1530");
  CHECK(sample(text, R"(mcpgate_request_bytes_total{route=""})") == "7");
  CHECK(sample(text, R"(mcpgate_response_bytes_total{route=""})") == "40");

  CHECK(sample(text, R"(mcpgate_upstream_latency_seconds_count{route="github"})") == "2");
  CHECK(std::strtod(sample(text, R"(mcpgate_upstream_latency_seconds_sum{route="github"})").c_str(), nullptr) ==
        doctest::Approx(0.22));
  // Routes that never reached an upstream have no histogram.
  CHECK(sample(text, R"(mcpgate_upstream_latency_seconds_count{route=""})").empty());
}

TEST_CASE("metrics: histogram buckets are cumulative and +Inf equals the count") {
  Metrics metrics(2);
  const std::vector<double> latencies = {0.001, 0.005, 0.03, 0.3, 0.3, 2, 45, 0.0};
  for (std::size_t i = 0; i < latencies.size(); ++i)
    metrics.record_request(static_cast<unsigned>(i % 2), {"r", "POST", "ping", 200, latencies[i], 0, 0});
  const std::string text = metrics.render_prometheus();
  INFO(text);

  const auto buckets = samples_with_prefix(text, R"(mcpgate_upstream_latency_seconds_bucket{route="r",le=")");
  CHECK(buckets.size() == Metrics::kLatencyBuckets.size() + 1);
  // Read each bucket by its numeric bound, whatever its textual form.
  std::map<double, unsigned long> by_bound;
  unsigned long infinity_count = 0;
  for (const auto& [series, value] : buckets) {
    const auto start = series.find("le=\"") + 4;
    const std::string bound = series.substr(start, series.find('"', start) - start);
    if (bound == "+Inf") {
      infinity_count = std::stoul(value);
      continue;
    }
    by_bound[std::strtod(bound.c_str(), nullptr)] = std::stoul(value);
  }
  REQUIRE(by_bound.size() == Metrics::kLatencyBuckets.size());
  unsigned long previous = 0;
  for (double bound : Metrics::kLatencyBuckets) {
    CAPTURE(bound);
    REQUIRE(by_bound.count(bound) == 1);
    const unsigned long count = by_bound[bound];
    unsigned long expected = 0;
    for (double latency : latencies) expected += latency <= bound ? 1 : 0;
    CHECK(count == expected);
    CHECK(count >= previous);
    previous = count;
  }
  CHECK(infinity_count == latencies.size());
  CHECK(sample(text, R"(mcpgate_upstream_latency_seconds_count{route="r"})") == std::to_string(latencies.size()));
  // Spot checks: 0.005 is inclusive, 45 s is only in +Inf.
  CHECK(by_bound[0.005] == 3);
  CHECK(by_bound[30] == latencies.size() - 1);
}

TEST_CASE("metrics: label values are escaped") {
  Metrics metrics(1);
  metrics.record_request(0, {"we\"ird\\route\nx", "GET", "tools/\"call", 200, 0.1, 1, 1});
  const std::string text = metrics.render_prometheus();
  INFO(text);
  CHECK(contains(text, R"(route="we\"ird\\route\nx")"));
  CHECK(contains(text, R"(rpc_method="tools/\"call")"));
  // No raw newline splits a sample line.
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    CAPTURE(line);
    CHECK((line.empty() || line[0] == '#' || line.rfind("mcpgate_", 0) == 0));
  }
}

TEST_CASE("metrics: gauges and reload counters") {
  Metrics metrics(1);
  metrics.active_connections = 3;
  metrics.active_streams = 2;
  metrics.reloads_succeeded = 4;
  metrics.reloads_failed = 1;
  const std::string text = metrics.render_prometheus();
  CHECK(sample(text, "mcpgate_active_connections") == "3");
  CHECK(sample(text, "mcpgate_active_streams") == "2");
  CHECK(sample(text, R"(mcpgate_config_reloads_total{result="success"})") == "4");
  CHECK(sample(text, R"(mcpgate_config_reloads_total{result="failure"})") == "1");
  CHECK(contains(text, "# TYPE mcpgate_requests_total counter\n"));
  CHECK(contains(text, "# TYPE mcpgate_upstream_latency_seconds histogram\n"));
  CHECK(contains(text, "# TYPE mcpgate_active_connections gauge\n"));
}

TEST_CASE("metrics: an unknown shard index is refused, not written out of bounds") {
  Metrics metrics(2);
  CHECK_THROWS_AS(metrics.record_request(2, {"r", "GET", "", 200, -1, 0, 0}), std::out_of_range);
}

TEST_CASE("mask_secrets: masking never swallows a quote or escape, and quoted values are masked") {
  CHECK(mask_secrets("/m?token=a\"b") == "/m?token=***\"b");
  CHECK(mask_secrets("client_secret=\"s3cr3t\" password='p' x=1") == "client_secret=\"***\" password='***' x=1");
  // A masked value inside an access-log field still makes valid JSON once escaped.
  const std::string escaped = json_escape(mask_secrets("/m?sessionId=x\"&token=a\\b"));
  CHECK(escaped.find("x\\\"") == std::string::npos);
  CHECK(json_unescape(escaped) == mask_secrets("/m?sessionId=x\"&token=a\\b"));
}

TEST_CASE("mask_secrets: a bearer credential after several spaces or a tab") {
  CHECK(mask_secrets("Authorization: Bearer  abc.def") == "Authorization: Bearer  ***");
  CHECK(mask_secrets("Authorization: Bearer\tabc") == "Authorization: Bearer\t***");
}

TEST_CASE("metrics: histogram bounds are written in their shortest form") {
  Metrics metrics(1);
  metrics.record_request(0, {"r", "POST", "ping", 200, 0.02, 0, 0});
  const std::string text = metrics.render_prometheus();
  for (const char* bound : {"le=\"0.005\"", "le=\"0.025\"", "le=\"0.05\"", "le=\"0.1\"", "le=\"2.5\"", "le=\"30\""}) {
    CAPTURE(bound);
    CHECK(text.find(bound) != std::string::npos);
  }
}

TEST_CASE("metrics: credential events and token store latency render as labelled families") {
  mcpgate::observability::Metrics metrics(2);
  metrics.record_credential_event("refresh", "user-api", "ok");
  metrics.record_credential_event("refresh", "user-api", "ok");
  metrics.record_credential_event("refresh", "user-api", "rejected");
  metrics.record_credential_event("cache", "svc", "hit");
  metrics.record_credential_event("connect", "user-api", "linked");
  metrics.record_store_latency("get", 0.002);
  metrics.record_store_latency("get", 0.2);
  const std::string text = metrics.render_prometheus();
  CHECK(text.find("# TYPE mcpgate_credential_refreshes_total counter\n") != std::string::npos);
  CHECK(text.find("mcpgate_credential_refreshes_total{credential=\"user-api\",outcome=\"ok\"} 2\n") != std::string::npos);
  CHECK(text.find("mcpgate_credential_refreshes_total{credential=\"user-api\",outcome=\"rejected\"} 1\n") != std::string::npos);
  CHECK(text.find("mcpgate_credential_cache_total{credential=\"svc\",result=\"hit\"} 1\n") != std::string::npos);
  CHECK(text.find("mcpgate_connect_flows_total{credential=\"user-api\",outcome=\"linked\"} 1\n") != std::string::npos);
  CHECK(text.find("mcpgate_token_store_seconds_bucket{operation=\"get\",le=\"0.005\"} 1\n") != std::string::npos);
  CHECK(text.find("mcpgate_token_store_seconds_bucket{operation=\"get\",le=\"+Inf\"} 2\n") != std::string::npos);
  CHECK(text.find("mcpgate_token_store_seconds_count{operation=\"get\"} 2\n") != std::string::npos);
  // A family is listed only under its own name.
  CHECK(text.find("mcpgate_credential_cache_total{credential=\"user-api\"") == std::string::npos);
}

TEST_CASE("metrics: rate-limit, plugin and JWT check counts from two shards are summed per label set") {
  mcpgate::observability::Metrics metrics(2);
  metrics.record_rate_limit(0, "notes", "subject:delete_note", "allowed");
  metrics.record_rate_limit(1, "notes", "subject:delete_note", "allowed");
  metrics.record_rate_limit(1, "notes", "subject:delete_note", "limited");
  metrics.record_plugin_decision(0, "guard", "authorize", "deny");
  metrics.record_plugin_decision(1, "keys", "verify_token", "allow");
  metrics.record_jwt_verification(0, "notes", "idp", "signature_invalid");
  metrics.record_jwt_verification(1, "notes", "idp", "signature_invalid");
  metrics.record_jwt_verification(1, "notes", "idp", "ok");
  const std::string text = metrics.render_prometheus();
  CHECK(text.find("# TYPE mcpgate_jwt_verifications_total counter\n") != std::string::npos);
  CHECK(text.find("mcpgate_jwt_verifications_total{route=\"notes\",server=\"idp\",result=\"signature_invalid\"} 2\n") !=
        std::string::npos);
  CHECK(text.find("mcpgate_jwt_verifications_total{route=\"notes\",server=\"idp\",result=\"ok\"} 1\n") !=
        std::string::npos);
  CHECK(text.find("# TYPE mcpgate_rate_limit_total counter\n") != std::string::npos);
  CHECK(text.find("mcpgate_rate_limit_total{route=\"notes\",limit=\"subject:delete_note\",outcome=\"allowed\"} 2\n") !=
        std::string::npos);
  CHECK(text.find("mcpgate_rate_limit_total{route=\"notes\",limit=\"subject:delete_note\",outcome=\"limited\"} 1\n") !=
        std::string::npos);
  CHECK(text.find("mcpgate_plugin_decisions_total{plugin=\"guard\",hook=\"authorize\",result=\"deny\"} 1\n") !=
        std::string::npos);
  CHECK(text.find("mcpgate_plugin_decisions_total{plugin=\"keys\",hook=\"verify_token\",result=\"allow\"} 1\n") !=
        std::string::npos);
}
