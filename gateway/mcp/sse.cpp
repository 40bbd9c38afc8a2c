#include "mcp/sse.h"

#include <algorithm>

namespace mcpgate::mcp {
namespace {

// End of the first blank line: the index just past it, or npos.
std::size_t find_event_end(const std::string& buffer) {
  std::size_t line_start = 0;
  for (std::size_t i = 0; i < buffer.size(); ++i) {
    const char c = buffer[i];
    if (c != '\n' && c != '\r') continue;
    std::size_t next = i + 1;
    if (c == '\r') {
      if (next == buffer.size()) return std::string::npos;  // a CR LF pair may be split
      if (buffer[next] == '\n') ++next;
    }
    if (i == line_start) return next;  // empty line: the event ends here
    line_start = next;
    i = next - 1;
  }
  return std::string::npos;
}

}  // namespace

std::optional<std::string> SseSplitter::next_event() {
  const std::size_t end = find_event_end(buffer_);
  if (end == std::string::npos) return std::nullopt;
  std::string event = buffer_.substr(0, end);
  buffer_.erase(0, end);
  return event;
}

std::string SseSplitter::take_rest() {
  std::string rest;
  rest.swap(buffer_);
  return rest;
}

SseEvent parse_sse_event(std::string_view raw) {
  SseEvent event;
  bool first_data = true;
  while (!raw.empty()) {
    std::size_t end = raw.find_first_of("\r\n");
    std::string_view line = raw.substr(0, end);
    if (end == std::string_view::npos) {
      raw = {};
    } else {
      raw.remove_prefix(end + ((raw[end] == '\r' && end + 1 < raw.size() && raw[end + 1] == '\n') ? 2 : 1));
    }
    if (line.empty() || line.front() == ':') continue;
    const std::size_t colon = line.find(':');
    std::string_view field = line.substr(0, colon);
    std::string_view value = colon == std::string_view::npos ? std::string_view() : line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    if (field == "event") {
      event.type = value;
    } else if (field == "data") {
      if (!first_data) event.data.push_back('\n');
      event.data.append(value);
      first_data = false;
    } else if (field == "id") {
      event.id = value;
      event.has_id = true;
    }
  }
  return event;
}

std::string serialize_sse_event(const SseEvent& event) {
  std::string out;
  if (event.type != "message") out.append("event: ").append(event.type).append("\n");
  if (event.has_id) out.append("id: ").append(event.id).append("\n");
  std::string_view data = event.data;
  for (;;) {
    const std::size_t newline = data.find('\n');
    out.append("data: ").append(data.substr(0, newline)).append("\n");
    if (newline == std::string_view::npos) break;
    data.remove_prefix(newline + 1);
  }
  out.append("\n");
  return out;
}

std::optional<std::string> gateway_endpoint_for(std::string_view endpoint, const config::UpstreamUrl& upstream,
                                                std::string_view route_path) {
  std::string path;
  if (endpoint.rfind("http://", 0) == 0 || endpoint.rfind("https://", 0) == 0) {
    const std::string origin = upstream.origin();
    if (endpoint.substr(0, origin.size()) != origin) return std::nullopt;
    path = endpoint.substr(origin.size());
    if (path.empty() || path.front() != '/') return std::nullopt;
  } else if (endpoint.rfind("//", 0) == 0) {
    return std::nullopt;  // scheme-relative: another host
  } else if (!endpoint.empty() && endpoint.front() == '/') {
    path = endpoint;
  } else {
    // Relative to the directory of the upstream SSE URL.
    const std::size_t slash = upstream.path.rfind('/');
    path = upstream.path.substr(0, slash + 1);
    path.append(endpoint);
  }
  std::string gateway(route_path == "/" ? "" : route_path);
  gateway.append(path);
  return gateway;
}

}  // namespace mcpgate::mcp
