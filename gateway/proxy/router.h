// Route selection and the upstream URL a request maps to.
#pragma once

#include <string>
#include <string_view>

#include "config/config.h"

namespace mcpgate::proxy {

struct RouteMatch {
  const config::RouteConfig* route = nullptr;
  std::string rest;  // the request path after the route prefix ("" or "/...")
};

// Longest path prefix on a segment boundary ("/a" matches "/a" and "/a/b", not "/ab").
RouteMatch match_route(const config::Config& config, std::string_view path);


// The URL on `endpoint` (one of the route's upstreams) for `match`. Streamable HTTP: the
// endpoint's path + rest. Legacy SSE: the route path itself is the SSE stream; `rest` is a
// path on the upstream origin.
std::string upstream_url_for(const RouteMatch& match, const config::UpstreamUrl& endpoint, std::string_view query);

}  // namespace mcpgate::proxy
