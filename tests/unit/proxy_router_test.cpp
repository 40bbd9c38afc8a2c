// Tests for route selection (longest prefix on a segment boundary), the dot-segment
// guard, and the upstream URL each transport maps a request to.
#include <doctest/doctest.h>

#include <string>
#include <string_view>

#include "config/config.h"
#include "http/message.h"
#include "proxy/router.h"

using namespace mcpgate;
using mcpgate::http::has_dot_segment;
using proxy::match_route;
using proxy::upstream_url_for;

namespace {

config::RouteConfig make_route(std::string name, std::string path, const std::string& upstream,
                               config::Transport transport = config::Transport::StreamableHttp) {
  config::RouteConfig route;
  route.name = std::move(name);
  route.path = std::move(path);
  route.upstreams = {config::parse_upstream_url(upstream)};
  route.transport = transport;
  return route;
}

// The URL a request maps to on the first route's first endpoint.
std::string url_on_first_endpoint(const config::Config& config, std::string_view path, std::string_view query) {
  return upstream_url_for(match_route(config, path), config.routes.at(0).upstreams.at(0), query);
}

config::Config make_config(std::vector<config::RouteConfig> routes) {
  config::Config config;
  config.routes = std::move(routes);
  return config;
}

// Name of the matched route, or "<none>".
std::string matched(const config::Config& config, std::string_view path) {
  const auto match = match_route(config, path);
  return match.route ? match.route->name : "<none>";
}

}  // namespace

TEST_CASE("router: longest prefix wins regardless of declaration order") {
  const auto config = make_config({make_route("short", "/a", "http://127.0.0.1:9001/mcp"),
                                   make_route("long", "/a/b", "http://127.0.0.1:9002/mcp"),
                                   make_route("other", "/c", "http://127.0.0.1:9003/mcp")});
  CHECK(matched(config, "/a") == "short");
  CHECK(matched(config, "/a/x") == "short");
  CHECK(matched(config, "/a/b") == "long");
  CHECK(matched(config, "/a/b/c") == "long");
  CHECK(matched(config, "/a/bc") == "short");
  CHECK(matched(config, "/c") == "other");

  const auto reversed = make_config({make_route("long", "/a/b", "http://127.0.0.1:9002/mcp"),
                                     make_route("short", "/a", "http://127.0.0.1:9001/mcp")});
  CHECK(matched(reversed, "/a/b/c") == "long");
  CHECK(matched(reversed, "/a/x") == "short");
}

TEST_CASE("router: a prefix matches only on a segment boundary") {
  const auto config = make_config({make_route("a", "/a", "http://127.0.0.1:9001/mcp")});
  CHECK(matched(config, "/a") == "a");
  CHECK(matched(config, "/a/") == "a");
  CHECK(matched(config, "/ab") == "<none>");
  CHECK(matched(config, "/a.b") == "<none>");
  CHECK(matched(config, "/A") == "<none>");  // paths are case-sensitive
  CHECK(matched(config, "") == "<none>");
  CHECK(matched(config, "/") == "<none>");
}

TEST_CASE("router: the rest of the path after the prefix") {
  const auto config = make_config({make_route("mcp", "/github", "http://127.0.0.1:9001/mcp")});
  CHECK(match_route(config, "/github").rest == "");
  CHECK(match_route(config, "/github/").rest == "/");
  CHECK(match_route(config, "/github/x/y").rest == "/x/y");
}

TEST_CASE("router: the root route catches everything else") {
  const auto config = make_config({make_route("root", "/", "http://127.0.0.1:9001/mcp"),
                                   make_route("a", "/a", "http://127.0.0.1:9002/mcp")});
  CHECK(matched(config, "/") == "root");
  CHECK(matched(config, "/anything") == "root");
  CHECK(matched(config, "/ab") == "root");
  CHECK(matched(config, "/a") == "a");
  CHECK(matched(config, "/a/b") == "a");
  CHECK(matched(config, "") == "<none>");
  CHECK(match_route(config, "/").rest == "");
  CHECK(match_route(config, "/x/y").rest == "/x/y");
}

TEST_CASE("router: no routes, no match") {
  const auto config = make_config({});
  const auto match = match_route(config, "/mcp");
  CHECK(match.route == nullptr);
  CHECK(match.rest.empty());
}

TEST_CASE("router: dot segments are found, literal or encoded") {
  for (const char* path : {"/..", "/.", "/a/..", "/a/../b", "/a/./b", "/a/%2e%2e/b", "/a/%2E%2e/b", "/a/%2e./b",
                            "/a/.%2E", "/a/%2e", "/a\\..\\b", "/a/..\\b", "/a\\.", "..", ".", "/a/..%2fb",
                            "/a/..%2Fb", "/a%2f..%2fb", "/a/%2e%2e"}) {
    CAPTURE(path);
    CHECK(has_dot_segment(path));
  }
}

// Regression: an encoded backslash hid a dot segment ("/a/..%5cb") that a literal one did not.
TEST_CASE("router: an encoded backslash separates segments like a literal one") {
  for (const char* path : {"/a/..%5cb", "/a/%5C..%5Cb", "/a/%2e%2e%5cb", "/a%5c.."}) {
    CAPTURE(path);
    CHECK(has_dot_segment(path));
  }
}

// Regression: routes matched the raw path only, so "/open/%61dmin" or "/open//admin" passed
// the open route and reached its upstream, which may read it as the protected /open/admin.
TEST_CASE("router: the lenient reading of a path names the route an upstream would see") {
  using mcpgate::http::lenient_path;
  CHECK(lenient_path("/open/%61dmin") == "/open/admin");
  CHECK(lenient_path("/open/%61%64%6D%69%6E") == "/open/admin");
  CHECK(lenient_path("/open//admin") == "/open/admin");
  CHECK(lenient_path("/open///admin/") == "/open/admin/");
  CHECK(lenient_path("/open/admin;jsessionid=1") == "/open/admin");
  CHECK(lenient_path("/open;x/admin") == "/open/admin");
  CHECK(lenient_path("/open\\admin") == "/open/admin");
  CHECK(lenient_path("/open%5Cadmin") == "/open/admin");
  CHECK(lenient_path("/open%2fadmin") == "/open/admin");
  CHECK(lenient_path("/%73ecure") == "/secure");
  // Not decoded: reserved and other characters, and a second level of encoding.
  CHECK(lenient_path("/open/a%20b%3F%25") == "/open/a%20b%3F%25");
  CHECK(lenient_path("/open/%2561dmin") == "/open/%2561dmin");
  CHECK(lenient_path("/open/%6") == "/open/%6");
  CHECK(lenient_path("/open/%zz") == "/open/%zz");

  const auto config = make_config({make_route("root", "/", "http://127.0.0.1:9001/"),
                                   make_route("open", "/open", "http://127.0.0.1:9001/open"),
                                   make_route("admin", "/open/admin", "http://127.0.0.1:9001/open/admin")});
  for (const char* path : {"/open/%61dmin", "/open//admin", "/open/admin;x", "/open%2Fadmin", "//open/admin", "/%6fpen/admin"}) {
    CAPTURE(path);
    CHECK(matched(config, lenient_path(path)) == "admin");
    CHECK(matched(config, path) != "admin");
  }
  for (const char* path : {"/open/x", "/open/x%2Fy", "/open//x", "/open/administrator", "/other"}) {
    CAPTURE(path);
    CHECK(matched(config, lenient_path(path)) == matched(config, path));
  }
}

TEST_CASE("router: ordinary paths, including dot files, have no dot segment") {
  for (const char* path : {"/", "", "/a", "/a/.hidden", "/a/..b", "/a/b..", "/a/...", "/a/b.c/d", "/a/%2e%2e%2e",
                           "/a/%2ehidden", "/a/%252e%252e/b", "/a/%2", "/a/%", "/a/%2e%2"}) {
    CAPTURE(path);
    CHECK_FALSE(has_dot_segment(path));
  }
}

TEST_CASE("router: streamable HTTP upstream URL is the upstream path plus the rest") {
  const auto config = make_config({make_route("s", "/github", "http://127.0.0.1:9001/mcp")});
  auto url = [&](std::string_view path, std::string_view query) {
    return url_on_first_endpoint(config, path, query);
  };
  CHECK(url("/github", "") == "http://127.0.0.1:9001/mcp");
  CHECK(url("/github/x", "") == "http://127.0.0.1:9001/mcp/x");
  CHECK(url("/github", "a=1&b=%20") == "http://127.0.0.1:9001/mcp?a=1&b=%20");
  CHECK(url("/github/x", "a=1") == "http://127.0.0.1:9001/mcp/x?a=1");
}

TEST_CASE("router: a trailing slash on the upstream base path is not doubled") {
  const auto config = make_config({make_route("s", "/r", "http://127.0.0.1:9001/mcp/")});
  CHECK(url_on_first_endpoint(config, "/r", "") == "http://127.0.0.1:9001/mcp/");
  CHECK(url_on_first_endpoint(config, "/r/x", "") == "http://127.0.0.1:9001/mcp/x");
}

TEST_CASE("router: an upstream at the origin root") {
  const auto config = make_config({make_route("s", "/r", "http://127.0.0.1:9001")});
  CHECK(url_on_first_endpoint(config, "/r", "") == "http://127.0.0.1:9001/");
  CHECK(url_on_first_endpoint(config, "/r/x", "q=1") == "http://127.0.0.1:9001/x?q=1");
}

TEST_CASE("router: root route to a streamable upstream") {
  const auto config = make_config({make_route("root", "/", "https://mcp.example.com/v1/mcp")});
  CHECK(url_on_first_endpoint(config, "/", "") == "https://mcp.example.com:443/v1/mcp");
  CHECK(url_on_first_endpoint(config, "/x", "") == "https://mcp.example.com:443/v1/mcp/x");
}

TEST_CASE("router: legacy SSE: the route path is the stream, the rest is a path on the origin") {
  const auto config =
      make_config({make_route("legacy", "/legacy", "http://127.0.0.1:9005/base/sse", config::Transport::Sse)});
  CHECK(url_on_first_endpoint(config, "/legacy", "") == "http://127.0.0.1:9005/base/sse");
  CHECK(url_on_first_endpoint(config, "/legacy/message", "sessionId=abc") ==
        "http://127.0.0.1:9005/message?sessionId=abc");
  CHECK(url_on_first_endpoint(config, "/legacy/base/message", "sessionId=abc") ==
        "http://127.0.0.1:9005/base/message?sessionId=abc");
  CHECK(url_on_first_endpoint(config, "/legacy", "x=1") == "http://127.0.0.1:9005/base/sse?x=1");
}

TEST_CASE("router: IPv6 upstream keeps its brackets") {
  const auto config = make_config({make_route("v6", "/v6", "http://[::1]:9001/mcp")});
  CHECK(url_on_first_endpoint(config, "/v6/x", "") == "http://[::1]:9001/mcp/x");
}
