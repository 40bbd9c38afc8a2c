#include "proxy/router.h"

#include <cctype>

namespace mcpgate::proxy {

RouteMatch match_route(const config::Config& config, std::string_view path) {
  RouteMatch best;
  std::size_t best_length = 0;
  for (const auto& route : config.routes) {
    const std::string& prefix = route.path;
    const bool matches = prefix == "/" ? !path.empty() && path.front() == '/'
                                       : path.substr(0, prefix.size()) == prefix &&
                                             (path.size() == prefix.size() || path[prefix.size()] == '/');
    if (!matches || (best.route != nullptr && prefix.size() <= best_length)) continue;
    best.route = &route;
    best_length = prefix.size();
    best.rest = prefix == "/" ? std::string(path) : std::string(path.substr(prefix.size()));
  }
  if (best.route != nullptr && best.route->path == "/" && best.rest == "/") best.rest.clear();
  return best;
}

std::string upstream_url_for(const RouteMatch& match, const config::UpstreamUrl& upstream, std::string_view query) {
  std::string url = upstream.origin();
  if (match.route->transport == config::Transport::Sse && !match.rest.empty()) {
    url.append(match.rest);
  } else {
    std::string_view base = upstream.path;
    if (!match.rest.empty() && !base.empty() && base.back() == '/') base.remove_suffix(1);
    url.append(base).append(match.rest);
  }
  if (!query.empty()) url.append("?").append(query);
  return url;
}

}  // namespace mcpgate::proxy
