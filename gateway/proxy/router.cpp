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

bool has_dot_segment(std::string_view path) {
  std::string decoded;
  decoded.reserve(path.size());
  for (std::size_t i = 0; i < path.size(); ++i) {
    if (path[i] == '%' && i + 2 < path.size() && std::tolower(static_cast<unsigned char>(path[i + 1])) == '2' &&
        std::tolower(static_cast<unsigned char>(path[i + 2])) == 'e') {
      decoded.push_back('.');
      i += 2;
    } else if (path[i] == '%' && i + 2 < path.size() && path[i + 1] == '2' &&
               std::tolower(static_cast<unsigned char>(path[i + 2])) == 'f') {
      decoded.push_back('/');
      i += 2;
    } else {
      decoded.push_back(path[i] == '\\' ? '/' : path[i]);
    }
  }
  std::size_t start = 0;
  while (start <= decoded.size()) {
    std::size_t end = decoded.find('/', start);
    if (end == std::string::npos) end = decoded.size();
    std::string_view segment(decoded.data() + start, end - start);
    segment = segment.substr(0, segment.find(';'));  // "..;x" is ".." to some servlet upstreams
    if (segment == "." || segment == "..") return true;
    start = end + 1;
  }
  return false;
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
