#include "auth/uri.h"

#include <algorithm>
#include <cctype>

namespace mcpgate::auth {
namespace {

std::string lowercase(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

bool is_scheme(std::string_view scheme) {
  if (scheme.empty() || !std::isalpha(static_cast<unsigned char>(scheme[0]))) return false;
  return std::all_of(scheme.begin(), scheme.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '+' || c == '-' || c == '.';
  });
}

// "host[:port]" (host may be an IPv6 literal) with the host lowercased and a
// default or empty port dropped.
std::string canonical_host_port(std::string_view host_port, std::string_view scheme) {
  std::string_view host = host_port;
  std::string_view port;
  const size_t colon = host_port.rfind(':');
  const size_t bracket = host_port.rfind(']');
  if (colon != std::string_view::npos && (bracket == std::string_view::npos || colon > bracket)) {
    host = host_port.substr(0, colon);
    port = host_port.substr(colon + 1);
  }
  const bool default_port = (scheme == "https" && port == "443") || (scheme == "http" && port == "80");
  std::string out = lowercase(host);
  if (!port.empty() && !default_port) out.append(":").append(port);
  return out;
}

}  // namespace

std::string canonical_resource_uri(std::string_view uri) {
  const size_t scheme_end = uri.find("://");
  if (scheme_end == std::string_view::npos || !is_scheme(uri.substr(0, scheme_end))) return std::string(uri);
  const std::string scheme = lowercase(uri.substr(0, scheme_end));
  std::string_view rest = uri.substr(scheme_end + 3);
  rest = rest.substr(0, rest.find('#'));

  const size_t authority_end = std::min(rest.find_first_of("/?"), rest.size());
  std::string_view authority = rest.substr(0, authority_end);
  std::string_view path = rest.substr(authority_end);
  std::string_view query;
  if (const size_t q = path.find('?'); q != std::string_view::npos) {
    query = path.substr(q);
    path = path.substr(0, q);
  }
  if (!path.empty() && path.back() == '/') path.remove_suffix(1);

  // Userinfo keeps its case; only the host is case-insensitive (RFC 3986 6.2.2.1).
  std::string out = scheme + "://";
  if (const size_t at = authority.rfind('@'); at != std::string_view::npos) {
    out.append(authority.substr(0, at + 1));
    authority.remove_prefix(at + 1);
  }
  out.append(canonical_host_port(authority, scheme));
  out.append(path).append(query);
  return out;
}

}  // namespace mcpgate::auth
