// How the gateway asks a caller to open a link (to connect a downstream account), in the
// form the caller's protocol era understands. Pure: builds JSON-RPC text.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace mcpgate::mcp {

// Whether a JSON-RPC request body declares URL-mode elicitation support: 2026-07-28 in
// params._meta["io.modelcontextprotocol/clientCapabilities"], an initialize in
// params.capabilities. `elicitation: {}` means form mode only.
bool declares_url_elicitation(std::string_view body, bool in_meta);

enum class LinkAnswer {
  InputRequired,       // 2026-07-28: an InputRequiredResult with a URL-mode elicitation request
  UrlElicitationError, // 2025-11-25: JSON-RPC error -32042 (URL elicitation required)
  PlainError,          // anyone else: a JSON-RPC error whose message carries the link
};

// The JSON-RPC response (HTTP 200) for request `id_json` asking the caller to open `url`.
// `key` names the input request / elicitation (unique per credential and user).
std::string link_required_response(LinkAnswer form, const std::string& id_json, const std::string& key,
                                   const std::string& url, const std::string& message);

inline constexpr int kUrlElicitationRequiredCode = -32042;
// The code of the plain error: a server error in JSON-RPC's implementation-defined range.
inline constexpr int kCredentialNotLinkedCode = -32043;

}  // namespace mcpgate::mcp
