// Token validation by asking the authorization server: OIDC userinfo or RFC 7662
// introspection. Pure request building and response reading; the exchange does I/O.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "auth/identity.h"
#include "auth/status.h"
#include "http/message.h"

namespace mcpgate::auth {

struct LookupResult {
  AuthStatus status = AuthStatus::InternalError;
  Identity identity;
};

// The HTTP answer of the IdP, as the lookup reads it.
struct LookupResponse {
  bool reached = false;  // a response came back at all
  int status = 0;
  std::string body;
};

// userinfo: 200 with a JSON object holding "sub" → Ok; 401/403 → the token is bad;
// anything else (5xx, unreachable, junk) → IdpUnavailable.
LookupResult read_userinfo_response(const LookupResponse& response, const std::string& issuer);

struct IntrospectionRules {
  std::string issuer;
  std::vector<std::string> audiences;  // canonical comparison; one must be in "aud"
  int64_t leeway_s = 60;
};

// RFC 7662 §2.2: active=false → TokenInactive; active=true needs sub, a matching aud,
// an unexpired exp, and iss (when present) equal to the issuer.
LookupResult read_introspection_response(const LookupResponse& response, const IntrospectionRules& rules,
                                         int64_t now_s);

// application/x-www-form-urlencoded encoding of one value (RFC 6749 appendix B).
std::string form_urlencode(std::string_view text);
// "token=...&token_type_hint=access_token", form-encoded.
std::string introspection_request_body(const std::string& token);
// RFC 6749 §2.3.1 client_secret_basic: Basic base64(urlencode(id):urlencode(secret)).
std::string client_secret_basic(const std::string& client_id, const std::string& client_secret);

}  // namespace mcpgate::auth
