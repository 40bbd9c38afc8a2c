// Tests for the headers that cross the gateway: hop-by-hop removal, credentials and
// client-sent identity/forwarding headers dropped, forwarding headers set, the MCP
// headers kept; and the response side (framing dropped, SSE anti-buffering).
#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

#include "http/message.h"
#include "proxy/header_rules.h"

using mcpgate::http::HeaderList;
using namespace mcpgate::proxy;

namespace {

HeaderList headers(std::initializer_list<std::pair<const char*, const char*>> fields) {
  HeaderList list;
  for (const auto& [name, value] : fields) list.add(name, value);
  return list;
}

ForwardingFacts facts(bool tls = false) { return ForwardingFacts{"203.0.113.9", tls, "127.0.0.1:9001"}; }

bool has(const HeaderList& list, std::string_view name) { return list.count(name) > 0; }

}  // namespace

TEST_CASE("header rules: the standard hop-by-hop fields") {
  const HeaderList none;
  for (const char* name : {"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
                           "Proxy-Authorization", "TE", "Trailer", "Transfer-Encoding", "Upgrade", "connection",
                           "TRANSFER-ENCODING", "te"}) {
    CAPTURE(name);
    CHECK(is_hop_by_hop(name, none));
  }
  for (const char* name : {"Content-Type", "Mcp-Session-Id", "Authorization", "Tee", "Trailers", "X-Upgrade"}) {
    CAPTURE(name);
    CHECK_FALSE(is_hop_by_hop(name, none));
  }
}

TEST_CASE("header rules: fields named by Connection are hop-by-hop") {
  const auto message = headers({{"Connection", "keep-alive, X-Private ,x-other"}, {"Connection", "X-Third"}});
  CHECK(is_hop_by_hop("X-Private", message));
  CHECK(is_hop_by_hop("x-private", message));
  CHECK(is_hop_by_hop("X-Other", message));
  CHECK(is_hop_by_hop("X-Third", message));  // from the second Connection field
  CHECK_FALSE(is_hop_by_hop("X-Priv", message));
  CHECK_FALSE(is_hop_by_hop("X-Private-Not", message));
  CHECK_FALSE(is_hop_by_hop("", headers({{"Connection", "close"}})));
}

TEST_CASE("header rules: request hop-by-hop fields and those Connection names are dropped") {
  const auto client = headers({{"Host", "gw.example"},
                               {"Connection", "keep-alive, X-Secret-Hop"},
                               {"Keep-Alive", "timeout=5"},
                               {"TE", "trailers"},
                               {"Upgrade", "websocket"},
                               {"Transfer-Encoding", "chunked"},
                               {"Proxy-Authorization", "Basic Zm9vOmJhcg=="},
                               {"X-Secret-Hop", "1"},
                               {"X-Kept", "2"}});
  const auto out = upstream_request_headers(client, facts());
  for (const char* name :
       {"Connection", "Keep-Alive", "TE", "Upgrade", "Transfer-Encoding", "Proxy-Authorization", "X-Secret-Hop"}) {
    CAPTURE(name);
    CHECK_FALSE(has(out, name));
  }
  CHECK(out.get("X-Kept") == "2");
}

TEST_CASE("header rules: credentials, framing and Forwarded never reach the upstream") {
  const auto client = headers({{"Host", "gw.example"},
                               {"Authorization", "Bearer client-token"},
                               {"authorization", "Bearer second"},
                               {"Cookie", "session=abc"},
                               {"Content-Length", "12"},
                               {"Expect", "100-continue"},
                               {"Forwarded", "for=1.2.3.4;proto=https"},
                               {"Content-Type", "application/json"}});
  const auto out = upstream_request_headers(client, facts());
  for (const char* name : {"Authorization", "Cookie", "Content-Length", "Expect", "Forwarded"}) {
    CAPTURE(name);
    CHECK_FALSE(has(out, name));
  }
  CHECK(out.get("Content-Type") == "application/json");
}

TEST_CASE("header rules: client-sent identity and forwarding headers are dropped") {
  const auto client = headers({{"Host", "gw.example"},
                               {"X-Forwarded-Host", "evil.example"},
                               {"X-Forwarded-Proto", "https"},
                               {"x-forwarded-port", "1"},
                               {"X-MCP-User", "admin"},
                               {"x-mcp-scopes", "everything"},
                               {"X-Mcp-Subject", "root"}});
  const auto out = upstream_request_headers(client, facts(false));
  CHECK(out.count("X-Forwarded-Host") == 1);
  CHECK(out.get("X-Forwarded-Host") == "gw.example");
  CHECK(out.count("X-Forwarded-Proto") == 1);
  CHECK(out.get("X-Forwarded-Proto") == "http");
  CHECK_FALSE(has(out, "X-Forwarded-Port"));
  CHECK_FALSE(has(out, "X-MCP-User"));
  CHECK_FALSE(has(out, "X-MCP-Scopes"));
  CHECK_FALSE(has(out, "X-MCP-Subject"));
}

TEST_CASE("header rules: X-Forwarded-For appends the peer to the client's chain") {
  SUBCASE("no chain") {
    const auto out = upstream_request_headers(headers({{"Host", "gw"}}), facts());
    CHECK(out.count("X-Forwarded-For") == 1);
    CHECK(out.get("X-Forwarded-For") == "203.0.113.9");
  }
  SUBCASE("an existing chain") {
    const auto out =
        upstream_request_headers(headers({{"Host", "gw"}, {"X-Forwarded-For", "198.51.100.1, 10.0.0.1"}}), facts());
    CHECK(out.count("X-Forwarded-For") == 1);
    CHECK(out.get("X-Forwarded-For") == "198.51.100.1, 10.0.0.1, 203.0.113.9");
  }
  SUBCASE("the peer address always comes last") {
    const auto out = upstream_request_headers(headers({{"x-forwarded-for", "203.0.113.9"}}), facts());
    const std::string chain(*out.get("X-Forwarded-For"));
    CHECK(chain.substr(chain.size() - std::string_view(", 203.0.113.9").size()) == ", 203.0.113.9");
  }
}

TEST_CASE("header rules: Host is the upstream's, the client's Host becomes X-Forwarded-Host") {
  const auto out = upstream_request_headers(headers({{"host", "gw.example:8443"}}), facts(true));
  CHECK(out.count("Host") == 1);
  CHECK(out.get("Host") == "127.0.0.1:9001");
  CHECK(out.get("X-Forwarded-Host") == "gw.example:8443");
  CHECK(out.get("X-Forwarded-Proto") == "https");
}

TEST_CASE("header rules: without a client Host there is no X-Forwarded-Host") {
  const auto out = upstream_request_headers(HeaderList{}, facts());
  CHECK(out.get("Host") == "127.0.0.1:9001");
  CHECK_FALSE(has(out, "X-Forwarded-Host"));
}

TEST_CASE("header rules: MCP protocol headers reach the upstream unchanged, in order") {
  const auto client = headers({{"Host", "gw"},
                               {"Mcp-Session-Id", "sess-123"},
                               {"MCP-Protocol-Version", "2025-06-18"},
                               {"Mcp-Method", "tools/call"},
                               {"Mcp-Name", "search"},
                               {"Mcp-Param-Foo", "bar"},
                               {"Last-Event-ID", "42"},
                               {"Accept", "application/json, text/event-stream"},
                               {"Content-Type", "application/json"},
                               {"User-Agent", "sdk/1.0"}});
  const auto out = upstream_request_headers(client, facts());
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"Mcp-Session-Id", "sess-123"},
      {"MCP-Protocol-Version", "2025-06-18"},
      {"Mcp-Method", "tools/call"},
      {"Mcp-Name", "search"},
      {"Mcp-Param-Foo", "bar"},
      {"Last-Event-ID", "42"},
      {"Accept", "application/json, text/event-stream"},
      {"Content-Type", "application/json"},
      {"User-Agent", "sdk/1.0"}};
  REQUIRE(out.fields().size() >= expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    CAPTURE(i);
    CHECK(out.fields()[i].name == expected[i].first);
    CHECK(out.fields()[i].value == expected[i].second);
  }
}

TEST_CASE("header rules: the Connection header cannot strip MCP or forwarding headers the gateway sets") {
  const auto client = headers({{"Host", "gw"}, {"Connection", "Host, X-Forwarded-For, X-Forwarded-Proto"}});
  const auto out = upstream_request_headers(client, facts());
  CHECK(out.get("Host") == "127.0.0.1:9001");
  CHECK(out.get("X-Forwarded-For") == "203.0.113.9");
  CHECK(out.get("X-Forwarded-Proto") == "http");
}

TEST_CASE("header rules: response hop-by-hop fields and Content-Length are dropped") {
  const auto upstream = headers({{"Content-Type", "application/json"},
                                 {"Content-Length", "42"},
                                 {"Transfer-Encoding", "chunked"},
                                 {"Connection", "close, X-Upstream-Hop"},
                                 {"Keep-Alive", "timeout=5"},
                                 {"X-Upstream-Hop", "1"},
                                 {"Proxy-Authenticate", "Basic"},
                                 {"Mcp-Session-Id", "sess-9"},
                                 {"WWW-Authenticate", "Bearer resource_metadata=\"x\""}});
  const auto out = client_response_headers(upstream);
  for (const char* name :
       {"Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "X-Upstream-Hop", "Proxy-Authenticate"}) {
    CAPTURE(name);
    CHECK_FALSE(has(out, name));
  }
  CHECK(out.get("Content-Type") == "application/json");
  CHECK(out.get("Mcp-Session-Id") == "sess-9");
  CHECK(out.get("WWW-Authenticate") == "Bearer resource_metadata=\"x\"");
  // Not an event stream: no SSE headers are added.
  CHECK_FALSE(has(out, "X-Accel-Buffering"));
  CHECK_FALSE(has(out, "Cache-Control"));
}

TEST_CASE("header rules: an SSE response gets X-Accel-Buffering: no and Cache-Control when absent") {
  const auto out =
      client_response_headers(headers({{"Content-Type", "text/event-stream; charset=utf-8"}, {"Mcp-Session-Id", "s"}}));
  CHECK(out.get("X-Accel-Buffering") == "no");
  CHECK(out.count("X-Accel-Buffering") == 1);
  CHECK(out.get("Cache-Control") == "no-cache");
  CHECK(out.get("Mcp-Session-Id") == "s");
}

TEST_CASE("header rules: an SSE response keeps the upstream's Cache-Control and replaces X-Accel-Buffering") {
  const auto out = client_response_headers(headers({{"content-type", "Text/Event-Stream"},
                                                    {"Cache-Control", "no-store"},
                                                    {"X-Accel-Buffering", "yes"}}));
  CHECK(out.count("Cache-Control") == 1);
  CHECK(out.get("Cache-Control") == "no-store");
  CHECK(out.count("X-Accel-Buffering") == 1);
  CHECK(out.get("X-Accel-Buffering") == "no");
}

TEST_CASE("header rules: is_event_stream") {
  CHECK(is_event_stream(headers({{"Content-Type", "text/event-stream"}})));
  CHECK(is_event_stream(headers({{"content-type", "TEXT/EVENT-STREAM;charset=utf-8"}})));
  CHECK_FALSE(is_event_stream(headers({{"Content-Type", "application/json"}})));
  CHECK_FALSE(is_event_stream(headers({{"Content-Type", "text/event"}})));
  CHECK_FALSE(is_event_stream(HeaderList{}));
}

TEST_CASE("trace context: a valid traceparent is kept, anything else is replaced by a new one") {
  using mcpgate::proxy::trace_context;
  const std::string valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  const auto kept = trace_context(valid);
  CHECK(kept.traceparent == valid);
  CHECK(kept.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736");
  // A later version may carry more fields; kept as sent.
  CHECK(trace_context(std::string("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra")).trace_id ==
        "4bf92f3577b34da6a3ce929d0e0e4736");
  for (const char* bad : {"", "00-zzz", "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                          "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                          "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                          "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                          "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"}) {
    CAPTURE(bad);
    const auto made = trace_context(std::string_view(bad));
    CHECK(made.traceparent != bad);
    CHECK(made.trace_id.size() == 32);
    CHECK(made.traceparent == "00-" + made.trace_id + made.traceparent.substr(35));
    CHECK(trace_context(made.traceparent).traceparent == made.traceparent);  // what is made is valid
  }
  CHECK(trace_context(std::nullopt).trace_id != trace_context(std::nullopt).trace_id);
}

TEST_CASE("trace context: the header wins over params._meta.traceparent, which wins over a new one") {
  using mcpgate::proxy::trace_context;
  const std::string header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  const std::string meta = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  CHECK(trace_context(header, meta).traceparent == header);
  CHECK(trace_context(header, meta).source == mcpgate::proxy::TraceContext::Source::Header);
  CHECK(trace_context(std::nullopt, meta).source == mcpgate::proxy::TraceContext::Source::Meta);
  CHECK(trace_context(std::nullopt, meta).traceparent == meta);
  CHECK(trace_context(std::string("garbage"), meta).trace_id == "0af7651916cd43dd8448eb211c80319c");
  const auto made = trace_context(std::nullopt, std::string("00-zz"));
  CHECK(made.trace_id != "0af7651916cd43dd8448eb211c80319c");
  CHECK(made.traceparent.size() == 55);
  CHECK(made.source == mcpgate::proxy::TraceContext::Source::Made);
}

// Regression: only the first Mcp-Method / Mcp-Name field was compared with the body and both
// were forwarded, and a batch skipped the comparison; either way the upstream could be handed a
// header that names another method or tool than the body the policy was checked on.
TEST_CASE("mcp headers: every field and every message of a batch must agree with the body") {
  const auto call = mcpgate::mcp::inspect_jsonrpc(R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}})");
  CHECK_FALSE(mcp_header_mismatch(headers({{"Mcp-Method", "tools/call"}, {"Mcp-Name", "echo"}}), call));
  CHECK_FALSE(mcp_header_mismatch(headers({{"Mcp-Method", "tools/call"}, {"Mcp-Name", "=?base64?ZWNobw==?="}}), call));
  CHECK(mcp_header_mismatch(headers({{"Mcp-Method", "tools/call"}, {"Mcp-Name", "echo"}, {"Mcp-Name", "delete"}}), call));
  CHECK(mcp_header_mismatch(headers({{"Mcp-Method", "tools/call"}, {"mcp-method", "tools/list"}, {"Mcp-Name", "echo"}}), call));
  CHECK(mcp_header_mismatch(headers({{"MCP-Protocol-Version", "2025-11-25"}, {"MCP-Protocol-Version", "2026-07-28"}}), call));
  CHECK(mcp_header_mismatch(headers({{"Mcp-Method", "tools/call"}, {"Mcp-Name", "=?base64?!!!!?="}}), call));

  const auto batch = mcpgate::mcp::inspect_jsonrpc(
      R"([{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"rm"}}])");
  CHECK_FALSE(mcp_header_mismatch(headers({}), batch));
  CHECK(mcp_header_mismatch(headers({{"Mcp-Method", "tools/list"}}), batch));
  CHECK(mcp_header_mismatch(headers({{"Mcp-Method", "tools/call"}, {"Mcp-Name", "rm"}}), batch));
  const auto lists = mcpgate::mcp::inspect_jsonrpc(
      R"([{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":2,"method":"tools/list"}])");
  CHECK_FALSE(mcp_header_mismatch(headers({{"Mcp-Method", "tools/list"}}), lists));
  // A batch is never a 2026-07-28 request: the headers are not required on it.
  CHECK_FALSE(mcp_header_mismatch(headers({{"MCP-Protocol-Version", "2026-07-28"}}), lists));
}

TEST_CASE("mcp headers: a 2026-07-28 request must carry them; older ones and notifications need not") {
  const auto call = mcpgate::mcp::inspect_jsonrpc(R"({"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"echo"}})");
  const auto modern = [](std::initializer_list<std::pair<const char*, const char*>> more) {
    HeaderList list = headers(more);
    list.add("MCP-Protocol-Version", "2026-07-28");
    return list;
  };
  CHECK(mcp_header_mismatch(modern({}), call) == "the Mcp-Method header is missing");
  CHECK(mcp_header_mismatch(modern({{"Mcp-Method", "tools/call"}}), call) == "the Mcp-Name header is missing");
  CHECK_FALSE(mcp_header_mismatch(modern({{"Mcp-Method", "tools/call"}, {"Mcp-Name", "echo"}}), call));
  CHECK_FALSE(mcp_header_mismatch(headers({{"MCP-Protocol-Version", "2025-11-25"}}), call));
  const auto note = mcpgate::mcp::inspect_jsonrpc(R"({"jsonrpc":"2.0","method":"notifications/cancelled"})");
  CHECK_FALSE(mcp_header_mismatch(modern({}), note));
  CHECK(mcp_header_mismatch(modern({{"Mcp-Method", "notifications/progress"}}), note));
}
