// Verification of a JWT access token (RFC 7519, RFC 9068) against one issuer's
// keys and rules: pure and synchronous, no I/O. The async authenticator fetches
// keys, calls this, and refetches once on KeyNotFound.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/identity.h"
#include "auth/jwks.h"
#include "auth/status.h"

namespace mcpgate::auth {

// Longer tokens are rejected before anything is decoded.
inline constexpr size_t kMaxJwtBytes = 16 * 1024;

struct JwtRules {
  std::string issuer;  // "iss" must equal this exactly; empty matches nothing
  // "aud" must contain one of these, both sides compared as canonical_resource_uri;
  // empty matches nothing (the config loader rejects it, see jwt_rules_error).
  std::vector<std::string> audiences;
  // Allowlist for the header's "alg"; only what is_supported_jws_algorithm accepts
  // can ever pass, whatever is listed here.
  std::vector<std::string> algorithms = {"RS256", "ES256", "PS256"};
  int64_t leeway_s = 60;  // clock skew allowed on exp, nbf and iat; negative counts as 0
};

// Why `rules` cannot protect a route (empty issuer or audiences, an algorithm
// that is "none", HS* or unsupported, negative leeway), or nullopt when they can.
// For the config loader, so that a bad allowlist fails at start-up.
std::optional<std::string> jwt_rules_error(const JwtRules& rules);

struct JwtResult {
  AuthStatus status = AuthStatus::InternalError;
  Identity identity;  // filled only when status is Ok
  std::string kid;    // the header's kid once the header was read, else "": for refetch decisions
};

// Verifies `token` (compact JWS) at time `now_s` (unix seconds), in this order:
// size and shape, header (alg allowlisted, typ JWT/at+jwt), payload JSON, key
// lookup, key type against alg, signature (cjose), then exp, nbf, iat, iss, aud,
// sub. Anything unexpected denies: the result is Ok only when every check passed.
JwtResult verify_jwt(std::string_view token, const JwkSet& keys, const JwtRules& rules, int64_t now_s);

struct JwtHeader {
  std::string alg, kid, typ;  // "" when absent
};

// The header of a well-formed token, NOT verified: for the async layer to decide
// which keys to wait for. nullopt when the token's shape or header is invalid
// (verify_jwt then says why).
std::optional<JwtHeader> peek_jwt_header(std::string_view token);

}  // namespace mcpgate::auth
