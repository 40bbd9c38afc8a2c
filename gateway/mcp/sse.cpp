#include "mcp/sse.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "http/message.h"

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

namespace {

std::string lowercase(std::string_view text) {
  std::string out(text);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// For "scheme://authority/rest": the rest if scheme, host and port (default by
// scheme) name the upstream; nullopt otherwise.
std::optional<std::string> same_origin_rest(std::string_view url, std::size_t scheme_end,
                                            const config::UpstreamUrl& upstream) {
  const std::string scheme = lowercase(url.substr(0, scheme_end));
  std::string_view rest = url.substr(scheme_end + 3);
  const std::size_t authority_end = std::min(rest.find_first_of("/?#"), rest.size());
  std::string_view authority = rest.substr(0, authority_end);
  rest.remove_prefix(authority_end);
  std::string_view host = authority;
  std::string_view port_text;
  const std::size_t bracket = authority.rfind(']');
  const std::size_t colon = authority.rfind(':');
  if (colon != std::string_view::npos && (bracket == std::string_view::npos || colon > bracket)) {
    host = authority.substr(0, colon);
    port_text = authority.substr(colon + 1);
  }
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (authority.find('@') != std::string_view::npos || rest.empty() || rest.front() != '/') return std::nullopt;
  if (port_text.size() > 5 || port_text.find_first_not_of("0123456789") != std::string_view::npos)
    return std::nullopt;
  const long default_port = scheme == "https" ? 443 : 80;
  const long port = port_text.empty() ? default_port : std::strtol(std::string(port_text).c_str(), nullptr, 10);
  if (scheme != upstream.scheme || lowercase(host) != lowercase(upstream.host) || port != upstream.port)
    return std::nullopt;
  return std::string(rest);
}

}  // namespace

std::optional<std::string> gateway_endpoint_for(std::string_view endpoint, const config::UpstreamUrl& upstream,
                                                std::string_view route_path) {
  // URL parsers delete tabs and newlines before reading a URL, so "/\t/host" would pass every
  // check below and still name another host: control characters are refused outright.
  for (unsigned char c : endpoint)
    if (c < 0x20 || c == 0x7f) return std::nullopt;
  std::string path;
  const std::size_t scheme_end = endpoint.find("://");
  const bool absolute = scheme_end != std::string_view::npos && scheme_end > 0 &&
                        endpoint.substr(0, scheme_end).find_first_of("/?#") == std::string_view::npos;
  if (absolute) {
    auto rest = same_origin_rest(endpoint, scheme_end, upstream);
    if (!rest) return std::nullopt;
    path = std::move(*rest);
  } else if (endpoint.rfind("//", 0) == 0) {
    return std::nullopt;  // scheme-relative: another host
  } else {
    path = endpoint;
  }
  if (path.empty() || path.front() == '?' || path.front() == '#') {
    path.insert(0, upstream.path);  // query-only reference: same path (RFC 3986 §5.2.2)
  } else if (path.front() != '/') {
    // Relative to the directory of the upstream SSE URL.
    const std::size_t slash = upstream.path.rfind('/');
    path.insert(0, upstream.path.substr(0, slash + 1));
  }
  std::string gateway(route_path == "/" ? "" : route_path);
  gateway.append(path);
  // What the client will resolve must stay a path under this route on this host: no "//host" or
  // "/\\host" (another host to a browser's URL parser), no dot segments (another route).
  const std::string_view gateway_path = std::string_view(gateway).substr(0, gateway.find_first_of("?#"));
  if (gateway_path.rfind("//", 0) == 0 || gateway_path.find('\\') != std::string_view::npos ||
      http::has_dot_segment(gateway_path))
    return std::nullopt;
  return gateway;
}

}  // namespace mcpgate::mcp
