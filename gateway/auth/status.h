// The result of authenticating a request: one precise code per way it can fail
// (Envoy's jwt_authn Status is the model), mapped to HTTP and WWW-Authenticate
// in one place by the HTTP layer.
#pragma once

#include <string_view>

namespace mcpgate::auth {

enum class AuthStatus {
  Ok,
  // The request carries no bearer token.
  TokenMissing,
  // Not three base64url segments, not JSON, duplicate JSON keys, or longer than 16 KiB.
  TokenMalformed,
  // The JOSE header is JSON but unusable: no string "alg", a non-string "kid", "crit", nested JWT.
  HeaderInvalid,
  // "none", or an alg outside the route's allowlist or outside what the gateway can verify.
  AlgorithmNotAllowed,
  // "typ" present and not JWT / at+jwt (an ID token, a logout token...).
  TypeNotAllowed,
  // No key for the token's kid (the caller may refetch the JWKS), or no unambiguous key without one.
  KeyNotFound,
  // The key found does not fit the alg: key type, curve, or the JWK's own "alg".
  KeyAlgorithmMismatch,
  SignatureInvalid,
  Expired,
  NotYetValid,
  IssuedInFuture,
  IssuerMismatch,
  AudienceMismatch,
  // A required claim is absent (exp, iss, aud, sub).
  MissingClaim,
  // A claim has the wrong JSON type or an unusable value (exp as a string, sub empty...).
  ClaimInvalid,
  // Later, asynchronous stages.
  KeysUnavailable,   // no JWKS could be obtained and none is cached
  IdpUnavailable,    // the userinfo or introspection endpoint failed
  TokenInactive,     // introspection said active=false
  TokenRejected,     // an auth plugin refused the token
  InsufficientScope, // authenticated, but the route needs scopes the token lacks
  // Something failed that should not (allocation, a library error after validation):
  // deny, and let the HTTP layer answer 500 rather than blame the client.
  InternalError,
};

// A stable snake_case code for logs and metrics labels ("token_malformed").
std::string_view auth_status_name(AuthStatus status);

// True when the failure is a property of the token itself, so the same token fails the
// same way on every try: the answer may be cached. False for Ok and for failures of the
// gateway or the IdP, and for times that pass (not yet valid, issued in the future).
bool is_token_fault(AuthStatus status);

// Short human text for an OAuth error_description; never includes token contents.
std::string_view auth_status_description(AuthStatus status);

}  // namespace mcpgate::auth
