// Responses the gateway writes itself: status texts, error bodies (JSON, or a
// JSON-RPC error object when the client spoke JSON-RPC).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace mcpgate::http {

struct GatewayError {
  int status = 500;
  std::string reason;   // stable machine-readable code, e.g. "upstream_timeout"
  std::string message;  // short human-readable text
};

// Reason phrase for a status line ("Not Found"); "Unknown" for unlisted codes.
std::string_view status_text(int status);

// JSON-RPC error code used for a gateway error reason (-32700, -32020, -32000, ...).
int jsonrpc_code_for(std::string_view reason);

// Body for `error`. With `jsonrpc_id` (the request's id as JSON text, "null" when
// unknown) it is a JSON-RPC 2.0 error response; otherwise {"error","message"}. A JSON array
// of ids (a batch: ids themselves are never arrays) gets an array of responses, one per id.
std::string error_body(const GatewayError& error, const std::optional<std::string>& jsonrpc_id);

}  // namespace mcpgate::http
