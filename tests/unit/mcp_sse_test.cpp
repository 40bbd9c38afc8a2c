// Tests for Server-Sent Events: cutting a byte stream into events whatever the line
// endings and however the bytes arrive, parsing and serializing one event, and
// mapping the legacy transport's `endpoint` event back onto the gateway.
#include <doctest/doctest.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "mcp/sse.h"

using namespace mcpgate;
using mcp::gateway_endpoint_for;
using mcp::parse_sse_event;
using mcp::serialize_sse_event;
using mcp::SseEvent;
using mcp::SseSplitter;

namespace {

// Every whole event `splitter` holds now.
std::vector<std::string> drain(SseSplitter& splitter) {
  std::vector<std::string> events;
  while (auto event = splitter.next_event()) events.push_back(*event);
  return events;
}

// Feeds `stream` cut at `split` and returns every event seen along the way.
std::vector<std::string> split_feed(std::string_view stream, std::size_t split) {
  SseSplitter splitter;
  splitter.feed(stream.substr(0, split));
  auto events = drain(splitter);
  splitter.feed(stream.substr(split));
  for (auto& event : drain(splitter)) events.push_back(std::move(event));
  return events;
}

std::optional<std::string> endpoint(std::string_view data, const std::string& upstream, std::string_view route) {
  return gateway_endpoint_for(data, config::parse_upstream_url(upstream), route);
}

}  // namespace

TEST_CASE("sse splitter: LF, CRLF and CR endings") {
  for (const char* eol : {"\n", "\r\n", "\r"}) {
    CAPTURE(std::string_view(eol) == "\n" ? "LF" : std::string_view(eol) == "\r\n" ? "CRLF" : "CR");
    const std::string e = eol;
    const std::string first = "event: endpoint" + e + "data: /message?sessionId=1" + e + e;
    const std::string second = "data: {\"jsonrpc\":\"2.0\"}" + e + e;
    SseSplitter splitter;
    splitter.feed(first + second + "data: partial");
    const auto events = drain(splitter);
    REQUIRE(events.size() == 2);
    CHECK(events[0] == first);
    CHECK(events[1] == second);
    CHECK(splitter.buffered() == std::string_view("data: partial").size());
    CHECK(splitter.take_rest() == "data: partial");
    CHECK(splitter.buffered() == 0);
    CHECK_FALSE(splitter.next_event());
  }
}

TEST_CASE("sse splitter: nothing whole yet") {
  SseSplitter splitter;
  CHECK_FALSE(splitter.next_event());
  splitter.feed("data: a\n");
  CHECK_FALSE(splitter.next_event());
  splitter.feed("data: b\r\n");
  CHECK_FALSE(splitter.next_event());
  splitter.feed("\n");
  const auto event = splitter.next_event();
  REQUIRE(event);
  CHECK(*event == "data: a\ndata: b\r\n\n");
}

TEST_CASE("sse splitter: a trailing CR is not taken as an event end until the next byte is seen") {
  SseSplitter splitter;
  splitter.feed("data: x\r\n\r");
  // The CR may be the first half of a CRLF pair: wait for the next byte.
  CHECK_FALSE(splitter.next_event());
  splitter.feed("\ndata: y\r\n\r\n");
  const auto events = drain(splitter);
  REQUIRE(events.size() == 2);
  CHECK(events[0] == "data: x\r\n\r\n");
  CHECK(events[1] == "data: y\r\n\r\n");
}

TEST_CASE("sse splitter: an event split across feeds at every byte position") {
  for (const char* eol : {"\n", "\r\n", "\r"}) {
    const std::string e = eol;
    const std::string first = ": keep-alive comment" + e + "event: message" + e + "id: 7" + e + "data: line one" + e +
                              "data: line two" + e + e;
    const std::string second = "data: {}" + e + e;
    // A partial third event follows: with CR endings a final CR stays ambiguous
    // (it may be half of a CRLF) until the next byte arrives.
    const std::string stream = first + second + "data: par";
    for (std::size_t split = 0; split <= stream.size(); ++split) {
      CAPTURE(split);
      CAPTURE(e.size());
      const auto events = split_feed(stream, split);
      REQUIRE(events.size() == 2);
      CHECK(events[0] == first);
      CHECK(events[1] == second);
    }
  }
}

TEST_CASE("sse splitter: fed one byte at a time") {
  const std::string stream = "event: endpoint\r\ndata: /m?s=1\r\n\r\n: ping\r\n\r\ndata: a\r\ndata: b\r\n\r\n";
  SseSplitter splitter;
  std::vector<std::string> events;
  for (char c : stream) {
    splitter.feed(std::string_view(&c, 1));
    for (auto& event : drain(splitter)) events.push_back(std::move(event));
  }
  REQUIRE(events.size() == 3);
  CHECK(events[0] == "event: endpoint\r\ndata: /m?s=1\r\n\r\n");
  CHECK(events[1] == ": ping\r\n\r\n");
  CHECK(events[2] == "data: a\r\ndata: b\r\n\r\n");
  CHECK(splitter.buffered() == 0);
}

TEST_CASE("sse splitter: stray blank lines pass through as their own pieces, no byte lost") {
  SseSplitter splitter;
  splitter.feed("\n\ndata: x\n\n");
  const auto events = drain(splitter);
  REQUIRE(events.size() == 3);
  CHECK(events[0] == "\n");
  CHECK(events[1] == "\n");
  CHECK(events[2] == "data: x\n\n");
}

TEST_CASE("sse parse: fields, comments, multi-line data and id") {
  const auto event = parse_sse_event(
      ": a comment\r\nevent: endpoint\r\nid: 12\r\ndata: first\r\ndata:second\r\ndata:  two spaces\r\nunknown: x\r\n\r\n");
  CHECK(event.type == "endpoint");
  CHECK(event.has_id);
  CHECK(event.id == "12");
  // One leading space is removed, the rest kept.
  CHECK(event.data == "first\nsecond\n two spaces");
}

TEST_CASE("sse parse: defaults and edge lines") {
  SUBCASE("no event field is a message, no id") {
    const auto event = parse_sse_event("data: x\n\n");
    CHECK(event.type == "message");
    CHECK_FALSE(event.has_id);
    CHECK(event.data == "x");
  }
  SUBCASE("a comment-only event") {
    const auto event = parse_sse_event(": ping\n\n");
    CHECK(event.type == "message");
    CHECK(event.data.empty());
  }
  SUBCASE("a field name alone has an empty value") {
    const auto event = parse_sse_event("data\ndata\n\n");
    CHECK(event.data == "\n");
  }
  SUBCASE("an empty id is still an id") {
    const auto event = parse_sse_event("id:\ndata: x\n\n");
    CHECK(event.has_id);
    CHECK(event.id.empty());
  }
  SUBCASE("CR-only line endings") {
    const auto event = parse_sse_event("event: endpoint\rdata: /m\r\r");
    CHECK(event.type == "endpoint");
    CHECK(event.data == "/m");
  }
  SUBCASE("a value may contain colons") {
    const auto event = parse_sse_event("data: http://127.0.0.1:9/x\n\n");
    CHECK(event.data == "http://127.0.0.1:9/x");
  }
  SUBCASE("no terminating blank line") {
    const auto event = parse_sse_event("event: e\ndata: d");
    CHECK(event.type == "e");
    CHECK(event.data == "d");
  }
}

TEST_CASE("sse serialize: message events omit the event field") {
  SseEvent event;
  event.data = "{}";
  CHECK(serialize_sse_event(event) == "data: {}\n\n");
}

TEST_CASE("sse serialize: every field and multi-line data") {
  SseEvent event;
  event.type = "endpoint";
  event.id = "5";
  event.has_id = true;
  event.data = "a\nb";
  CHECK(serialize_sse_event(event) == "event: endpoint\nid: 5\ndata: a\ndata: b\n\n");
}

TEST_CASE("sse: serialize then parse is the identity") {
  std::vector<SseEvent> cases;
  {
    SseEvent e;
    e.data = "plain";
    cases.push_back(e);
  }
  {
    SseEvent e;
    e.type = "endpoint";
    e.data = "/legacy/message?sessionId=abc";
    cases.push_back(e);
  }
  {
    SseEvent e;
    e.id = "evt-1";
    e.has_id = true;
    e.data = "line1\nline2\n\nline4";
    cases.push_back(e);
  }
  {
    SseEvent e;
    e.data = "";
    cases.push_back(e);
  }
  {
    SseEvent e;
    e.data = " leading space and: colon";
    cases.push_back(e);
  }
  for (const auto& original : cases) {
    const std::string text = serialize_sse_event(original);
    CAPTURE(text);
    // The serialized form is one whole event for the splitter.
    SseSplitter splitter;
    splitter.feed(text);
    const auto raw = splitter.next_event();
    REQUIRE(raw);
    CHECK(*raw == text);
    CHECK(splitter.buffered() == 0);
    const auto parsed = parse_sse_event(*raw);
    CHECK(parsed.type == original.type);
    CHECK(parsed.data == original.data);
    CHECK(parsed.has_id == original.has_id);
    CHECK(parsed.id == original.id);
  }
}

TEST_CASE("sse endpoint: an absolute path goes under the route") {
  CHECK(endpoint("/message?sessionId=x", "http://127.0.0.1:9005/sse", "/legacy") == "/legacy/message?sessionId=x");
  CHECK(endpoint("/base/message", "http://127.0.0.1:9005/base/sse", "/legacy") == "/legacy/base/message");
}

TEST_CASE("sse endpoint: a relative reference resolves against the upstream SSE URL's directory") {
  CHECK(endpoint("message?sessionId=x", "http://127.0.0.1:9005/base/sse", "/legacy") ==
        "/legacy/base/message?sessionId=x");
  CHECK(endpoint("message?sessionId=x", "http://127.0.0.1:9005/sse", "/legacy") == "/legacy/message?sessionId=x");
  CHECK(endpoint("message", "http://127.0.0.1:9005/base/", "/legacy") == "/legacy/base/message");
}

TEST_CASE("sse endpoint: an absolute URL on the same origin is accepted") {
  CHECK(endpoint("http://127.0.0.1:9005/message?sessionId=x", "http://127.0.0.1:9005/sse", "/legacy") ==
        "/legacy/message?sessionId=x");
  CHECK(endpoint("https://mcp.example.com:8443/b/m", "https://mcp.example.com:8443/b/sse", "/r") == "/r/b/m");
  CHECK(endpoint("http://[::1]:9005/m", "http://[::1]:9005/sse", "/r") == "/r/m");
}

TEST_CASE("sse endpoint: another origin cannot be proxied") {
  const std::string upstream = "http://127.0.0.1:9005/sse";
  for (const char* data : {"http://evil.example/message", "https://127.0.0.1:9005/message",
                           "http://127.0.0.1:9006/message", "http://127.0.0.1:90050/message",
                           "http://127.0.0.1:9005.evil.example/message", "http://127.0.0.1:9005@evil.example/m",
                           "http://127.0.0.1:9005", "//evil.example/message", "//127.0.0.1:9005/message"}) {
    CAPTURE(data);
    CHECK_FALSE(endpoint(data, upstream, "/legacy"));
  }
}

TEST_CASE("sse endpoint: the root route adds no prefix") {
  CHECK(endpoint("/message?sessionId=x", "http://127.0.0.1:9005/sse", "/") == "/message?sessionId=x");
  CHECK(endpoint("message?sessionId=x", "http://127.0.0.1:9005/base/sse", "/") == "/base/message?sessionId=x");
  CHECK(endpoint("http://127.0.0.1:9005/m", "http://127.0.0.1:9005/sse", "/") == "/m");
}

TEST_CASE("sse endpoint: default ports, scheme case and query-only references") {
  CHECK(endpoint("http://example.com/base/message?sessionId=1", "http://example.com/base/sse", "/legacy") ==
        "/legacy/base/message?sessionId=1");
  CHECK(endpoint("HTTP://Example.COM:80/base/m", "http://example.com/base/sse", "/legacy") == "/legacy/base/m");
  CHECK(endpoint("https://example.com/m", "https://example.com:443/sse", "/r") == "/r/m");
  CHECK(endpoint("?sessionId=1", "http://example.com/base/sse", "/legacy") == "/legacy/base/sse?sessionId=1");
  CHECK_FALSE(endpoint("http://example.com:443/m", "http://example.com/sse", "/r"));
}

TEST_CASE("sse endpoint: regression (fuzzing): nothing the client resolves to another host or route") {
  // On the root route, "//host" and "/\host" are another host to a browser's URL parser.
  for (const char* data : {"\\evil.example/x", "http://127.0.0.1:3002//evil.example/x", "/\\evil.example/x",
                           "/a\\b/message"}) {
    CAPTURE(data);
    CHECK_FALSE(endpoint(data, "http://127.0.0.1:3002/sse", "/"));
  }
  // Under a route prefix "//" stays a path; a backslash is refused anywhere (parsers disagree on it).
  CHECK(endpoint("http://127.0.0.1:3002//x/message", "http://127.0.0.1:3002/sse", "/legacy") == "/legacy//x/message");
  CHECK_FALSE(endpoint("/a\\b/message", "http://127.0.0.1:3002/sse", "/legacy"));
  // Dot segments (literal or encoded) would climb out of the route to another one of the gateway.
  for (const char* data : {"/../other/message", "../other/message", "/a/./m", "/%2e%2e/other", "/x/..;/y"}) {
    CAPTURE(data);
    CHECK_FALSE(endpoint(data, "http://127.0.0.1:3002/base/sse", "/legacy"));
  }
  CHECK(endpoint("/message?next=/../x", "http://127.0.0.1:3002/sse", "/legacy") == "/legacy/message?next=/../x");
  // URL parsers drop tabs and newlines first: "/\t/evil" is "//evil" to a client.
  for (const char* data : {"/\t/evil.example/x", "/\n/evil.example/x", "/.\t./other/message", "/m\r", "/m\x7f"}) {
    CAPTURE(data);
    CHECK_FALSE(endpoint(data, "http://127.0.0.1:3002/sse", "/"));
    CHECK_FALSE(endpoint(data, "http://127.0.0.1:3002/sse", "/legacy"));
  }
}
