// The SSE code on the streaming path: SseSplitter fed as upstream reads arrive, parse_sse_event,
// serialize_sse_event, and the legacy endpoint rewrite gateway_endpoint_for.
//
// Input: [reads/upstream] [cut 1] [cut 2] <the upstream's event stream>
//   byte 0: bits 0-1 number of reads - 1 (3 counts as 1), bit 2 which upstream URL, bit 3 which
//   route path ("/legacy" or "/")
//
// Checked: the events split out, followed by the rest, are the stream, whatever the cuts, and
// each ends at its first blank line; an event written by serialize_sse_event parses back to
// the same event and is one whole event; a rewritten endpoint, on every route, is a path under
// the route as a client resolves it: no "//host", no backslash, no dot segment.
#include <algorithm>
#include <cctype>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "fuzz_support.h"
#include "mcp/sse.h"

namespace {

using mcpgate::config::UpstreamUrl;
using mcpgate::fuzz::printable;
using mcpgate::mcp::SseEvent;

const std::string_view kRoutes[2] = {"/legacy", "/"};

const UpstreamUrl& upstream(unsigned which) {
  static const UpstreamUrl urls[2] = {mcpgate::config::parse_upstream_url("http://127.0.0.1:3002/sse"),
                                      mcpgate::config::parse_upstream_url("https://[::1]:8443/v1/mcp/events")};
  return urls[which & 1];
}

bool same_event(const SseEvent& a, const SseEvent& b) {
  return a.type == b.type && a.data == b.data && a.id == b.id && a.has_id == b.has_id;
}

std::string describe(const SseEvent& event) {
  return "type=" + printable(event.type) + " id=" + (event.has_id ? printable(event.id) : "-") +
         " data=" + printable(event.data);
}

// Where a blank line first ends in `raw`, or npos: the reference for the splitter.
std::size_t first_event_end(std::string_view raw) {
  std::size_t line_start = 0;
  for (std::size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] != '\r' && raw[i] != '\n') continue;
    std::size_t end = i + 1;
    if (raw[i] == '\r' && end < raw.size() && raw[end] == '\n') ++end;
    if (i == line_start) return end;
    line_start = end;
    i = end - 1;
  }
  return std::string_view::npos;
}

std::vector<std::string> split(const std::vector<std::string_view>& reads, std::string& rest) {
  mcpgate::mcp::SseSplitter splitter;
  std::vector<std::string> events;
  for (std::string_view read : reads) {
    splitter.feed(read);
    while (auto event = splitter.next_event()) {
      FUZZ_CHECK(!event->empty(), "an empty event");
      events.push_back(std::move(*event));
    }
  }
  rest = splitter.take_rest();
  FUZZ_CHECK(splitter.buffered() == 0, "take_rest() left bytes");
  return events;
}

void check_round_trip(const SseEvent& event) {
  const std::string written = mcpgate::mcp::serialize_sse_event(event);
  const SseEvent reread = mcpgate::mcp::parse_sse_event(written);
  FUZZ_CHECK(same_event(event, reread), describe(event) + "  ->  " + describe(reread));
  // What the gateway writes is exactly one whole event.
  mcpgate::mcp::SseSplitter splitter;
  splitter.feed(written);
  const auto whole = splitter.next_event();
  FUZZ_CHECK(whole && *whole == written && splitter.buffered() == 0, printable(written));
}

// "." (twice: "..") as a WHATWG parser reads a segment of an http(s) path: also written %2e, any case.
bool is_dot(std::string_view segment, bool twice) {
  std::string lowered;
  for (char c : segment) lowered.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  if (!twice) return lowered == "." || lowered == "%2e";
  return lowered == ".." || lowered == ".%2e" || lowered == "%2e." || lowered == "%2e%2e";
}

bool has_dot_segment(std::string_view path) {
  for (std::size_t at = 0; at < path.size();) {
    const std::size_t end = std::min(path.find('/', at), path.size());
    const std::string_view segment = path.substr(at, end - at);
    if (is_dot(segment, false) || is_dot(segment, true)) return true;
    at = end + 1;
  }
  return false;
}

// A path with its dot segments removed as a WHATWG parser removes them in an http(s) URL
// ("." / ".." also written %2e, any case), RFC 3986 5.2.4.
std::string without_dot_segments(std::string_view path) {
  std::vector<std::string_view> kept;
  std::size_t at = 1;  // past the leading '/'
  bool trailing_slash = false;
  while (at <= path.size()) {
    const std::size_t end = std::min(path.find('/', at), path.size());
    const std::string_view segment = path.substr(at, end - at);
    trailing_slash = false;
    if (is_dot(segment, true)) {
      if (!kept.empty()) kept.pop_back();
      trailing_slash = true;
    } else if (is_dot(segment, false)) {
      trailing_slash = true;
    } else {
      kept.push_back(segment);
    }
    at = end + 1;
  }
  std::string out;
  for (std::string_view segment : kept) out.append("/").append(segment);
  if (out.empty() || trailing_slash) out.push_back('/');
  return out;
}

void check_endpoint(std::string_view endpoint, const UpstreamUrl& url, std::string_view route) {
  const auto mapped = mcpgate::mcp::gateway_endpoint_for(endpoint, url, route);
  if (!mapped) return;
  const std::string what = printable(endpoint) + " on route " + std::string(route) + "  ->  " + printable(*mapped);
  FUZZ_CHECK(!mapped->empty() && mapped->front() == '/', what);
  FUZZ_CHECK(route == "/" || mapped->compare(0, route.size(), route) == 0, what);
  if (route != "/") FUZZ_CHECK(mapped->size() == route.size() || (*mapped)[route.size()] == '/', what);
  // A path under the route, never a scheme-relative "//host" reference as a client resolves it:
  // WHATWG URL parsing drops tabs and newlines and reads '\' as '/' in http(s) URLs.
  std::string resolved;
  for (char c : *mapped)
    if (c != '\t' && c != '\n' && c != '\r') resolved.push_back(c == '\\' ? '/' : c);
  // The path the client resolves (query and fragment aside): never a scheme-relative "//host"
  // (tests/fuzz/regressions/sse/endpoint-*-on-root-route), no backslash and no dot segment
  // ("/legacy/../other/message" is another route: endpoint-dot-segments-leave-the-route), and,
  // dot segments removed as the client removes them, still under the route. On every route.
  const std::string_view raw_path = std::string_view(*mapped).substr(0, mapped->find_first_of("?#"));
  const std::string path = resolved.substr(0, resolved.find_first_of("?#"));
  FUZZ_CHECK(path.compare(0, 2, "//") != 0, what);
  FUZZ_CHECK(raw_path.find('\\') == std::string_view::npos, what);
  FUZZ_CHECK(!has_dot_segment(path), what);
  const std::string normalized = without_dot_segments(path);
  FUZZ_CHECK(route == "/" || normalized == route || normalized.compare(0, route.size() + 1, std::string(route) + "/") == 0,
             what + "  =  " + normalized);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  mcpgate::fuzz::Input input(data, size);
  const uint8_t control = input.byte();
  const uint8_t cut1 = input.byte();
  const uint8_t cut2 = input.byte();
  const std::string_view stream = input.rest();
  const unsigned reads = (control & 3) == 3 ? 1 : (control & 3) + 1;
  const UpstreamUrl& url = upstream(control >> 2);
  const std::string_view route = kRoutes[(control >> 3) & 1];

  std::string rest;
  const auto events = split(mcpgate::fuzz::split_chunks(stream, reads, cut1, cut2), rest);
  std::string joined;
  for (const auto& event : events) {
    FUZZ_CHECK(first_event_end(event) == event.size(), printable(event));
    joined += event;
  }
  FUZZ_CHECK(joined + rest == stream, printable(stream));
  FUZZ_CHECK(first_event_end(rest) == std::string_view::npos ||
                 (!rest.empty() && rest.back() == '\r' && first_event_end(rest) == rest.size()),
             printable(rest));
  if (reads > 1) {
    std::string whole_rest;
    const auto whole = split({stream}, whole_rest);
    FUZZ_CHECK(whole == events && whole_rest == rest, printable(stream));
  }

  for (const auto& raw : events) {
    const SseEvent event = mcpgate::mcp::parse_sse_event(raw);
    check_round_trip(event);
    if (event.type == "endpoint") check_endpoint(event.data, url, route);
  }
  check_round_trip(mcpgate::mcp::parse_sse_event(rest));
  // The endpoint rewrite on its own, without the event framing in the way.
  check_endpoint(stream, url, route);
  return 0;
}
