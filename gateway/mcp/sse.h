// Server-Sent Events: splitting a byte stream into events, parsing one event,
// and rewriting the legacy (2024-11-05) transport's `endpoint` event.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "config/config.h"

namespace mcpgate::mcp {

struct SseEvent {
  std::string type = "message";  // the "event:" field
  std::string data;              // "data:" lines joined with '\n'
  std::string id;
  bool has_id = false;
};

// Cuts a stream into whole events (each ending with a blank line, CRLF/LF/CR alike).
class SseSplitter {
 public:
  void feed(std::string_view bytes) { buffer_.append(bytes); }
  // The next whole raw event, including its terminating blank line.
  std::optional<std::string> next_event();
  // Whatever is buffered that is not yet a whole event.
  std::string take_rest();
  std::size_t buffered() const { return buffer_.size(); }

 private:
  std::string buffer_;
};

SseEvent parse_sse_event(std::string_view raw);
std::string serialize_sse_event(const SseEvent& event);

// Maps the upstream's endpoint URI (relative to the upstream SSE URL, or absolute
// on the same origin) to the gateway path `route_path` + upstream path (+ query).
// Nullopt when it names another origin, which the gateway cannot proxy.
std::optional<std::string> gateway_endpoint_for(std::string_view endpoint, const config::UpstreamUrl& upstream,
                                                std::string_view route_path);

}  // namespace mcpgate::mcp
