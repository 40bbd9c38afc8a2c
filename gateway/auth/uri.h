// The canonical form of a resource URI, so that a token's "aud" can be compared
// with a route's resource (RFC 8707; the MCP authorization spec's "canonical URI").
#pragma once

#include <string>
#include <string_view>

namespace mcpgate::auth {

// `uri` with scheme and host lowercased, the default port (:443 for https, :80
// for http) and the fragment dropped, and one trailing '/' removed from the path
// ("https://a.example/" -> "https://a.example"). Userinfo, path case, the query
// and percent-encoding are kept as they are. A string without "scheme://" is
// returned unchanged (an "aud" may be a plain client id).
std::string canonical_resource_uri(std::string_view uri);

}  // namespace mcpgate::auth
