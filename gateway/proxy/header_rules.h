// Which headers cross the gateway, in each direction (RFC 9110 hop-by-hop rules,
// forwarding headers, and the credentials the client must not leak upstream).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "auth/identity.h"
#include "http/message.h"
#include "mcp/jsonrpc.h"

namespace mcpgate::proxy {

struct ForwardingFacts {
  std::string client_address;  // the peer's IP
  bool client_tls = false;
  std::string upstream_host;   // "host:port" for the Host header
};

// True for a field that belongs to one connection only (including those the
// message's Connection header names).
bool is_hop_by_hop(std::string_view name, const http::HeaderList& message);

// Request headers for the upstream: hop-by-hop, Host, Authorization, Cookie,
// Content-Length and client-sent X-Forwarded-* dropped; X-Forwarded-* and Host set.
http::HeaderList upstream_request_headers(const http::HeaderList& client, const ForwardingFacts& facts);

// Response headers for the client: hop-by-hop and framing dropped (the gateway
// frames the body itself); SSE gets X-Accel-Buffering: no.
http::HeaderList client_response_headers(const http::HeaderList& upstream);

bool is_event_stream(const http::HeaderList& headers);

// W3C Trace Context for one request: the client's `traceparent` header, else its body's
// params._meta.traceparent (SEP-414), is kept when valid and its trace id is the request's;
// with neither valid a new, unsampled one is made.
struct TraceContext {
  enum class Source { Header, Meta, Made };
  std::string trace_id;     // 32 lowercase hex
  std::string traceparent;  // what goes upstream
  Source source = Source::Made;
};
TraceContext trace_context(std::optional<std::string_view> header, std::optional<std::string_view> meta = std::nullopt);

// 2026-07-28 (SEP-2243): why the Mcp-Method / Mcp-Name headers of a POSTed body disagree with
// it (with every message of a batch), or are missing on a modern request; nullopt when they
// agree. A second Mcp-Method, Mcp-Name or MCP-Protocol-Version field disagrees too: only one
// of them could be checked, and the upstream may read the other.
std::optional<std::string> mcp_header_mismatch(const http::HeaderList& headers, const mcp::JsonRpcInfo& rpc);

// forward_identity: X-MCP-Subject, X-MCP-Scopes (space-separated), X-MCP-Client-Id,
// with control characters removed (claims are signed, not necessarily clean).
void add_identity_headers(const auth::Identity& identity, http::HeaderList& headers);

}  // namespace mcpgate::proxy
