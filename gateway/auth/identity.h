// Who a verified access token speaks for: what the later stages (policy,
// credential choice, identity headers, audit) read instead of the raw token.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mcpgate::auth {

struct Identity {
  std::string subject;  // "sub"
  std::string issuer;   // "iss"
  std::string client_id;  // "client_id" (RFC 9068), else "azp"; "" when neither
  std::vector<std::string> scopes;
  std::vector<std::string> audiences;  // "aud" as sent (not canonicalised)
  int64_t expires_at = 0;  // "exp", unix seconds
  std::string claims_json;  // a JSON object: a JWT's payload as signed, or a lookup's claims (compact)
};

// The scope tokens of an RFC 6749 space-separated scope string, in order,
// empties and duplicates dropped.
inline std::vector<std::string> split_scopes(std::string_view text) {
  std::vector<std::string> scopes;
  while (!text.empty()) {
    const size_t end = std::min(text.find(' '), text.size());
    const std::string_view token = text.substr(0, end);
    if (!token.empty() && std::find(scopes.begin(), scopes.end(), token) == scopes.end()) scopes.emplace_back(token);
    text.remove_prefix(std::min(end + 1, text.size()));
  }
  return scopes;
}

// RFC 6749 scope-token: printable ASCII except space, '"' and '\'. Scopes are written into
// quoted strings of WWW-Authenticate, so anything else could break or forge the header.
inline bool is_scope_token(std::string_view scope) {
  return !scope.empty() && std::all_of(scope.begin(), scope.end(), [](unsigned char c) {
    return c > 0x20 && c < 0x7f && c != '"' && c != '\\';
  });
}

// True when every scope in `required` was granted (an empty `required` is satisfied).
inline bool has_all_scopes(const Identity& identity, const std::vector<std::string>& required) {
  return std::all_of(required.begin(), required.end(), [&](const std::string& scope) {
    return std::find(identity.scopes.begin(), identity.scopes.end(), scope) != identity.scopes.end();
  });
}

}  // namespace mcpgate::auth
