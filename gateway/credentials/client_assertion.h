// private_key_jwt client authentication (RFC 7523 §2.2, OpenID Connect Core §9): a short-lived
// JWT the gateway signs with its client's private key, sent as client_assertion.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "config/config.h"

namespace mcpgate::credentials {

inline constexpr const char* kJwtBearerAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
inline constexpr int64_t kClientAssertionLifetimeS = 60;

// The signed assertion for `server`'s client towards `token_endpoint` (its audience):
// iss = sub = client id, a random jti, iat now, exp a minute later. RS256 for RSA keys, ES256
// for P-256. nullopt when the key cannot sign (it was checked at load, so only on an
// OpenSSL failure).
std::optional<std::string> client_assertion(const config::AuthorizationServerConfig& server,
                                            const std::string& token_endpoint, int64_t now);

}  // namespace mcpgate::credentials
