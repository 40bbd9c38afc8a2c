// The link that binds a browser connect flow to the MCP caller who asked for it. The gateway
// hands it only to an authenticated caller, inside the answer to that caller's own request;
// it names the caller (issuer, subject) and the credential, expires in connect_link_ttl_s,
// carries a random id that the store lets be used once, and is signed (HMAC-SHA256 under a
// key derived from the store key), so nobody can make one for another identity.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "credentials/token_sealer.h"

namespace mcpgate::credentials {

struct ConnectGrant {
  std::string credential;
  std::string issuer;
  std::string subject;
  std::string id;          // random; claimed once in the store when the link is opened
  int64_t expires_at = 0;  // unix seconds
};

// A fresh grant for a caller, valid `ttl_s` from `now`.
ConnectGrant new_connect_grant(std::string credential, std::string issuer, std::string subject, int64_t now, int64_t ttl_s);
// "<base64url(JSON)>.<base64url(signature)>": the `link` query parameter.
std::string sign_connect_grant(const TokenSealer& sealer, const ConnectGrant& grant);
// The grant, when the signature holds and it has not expired; nullopt otherwise.
std::optional<ConnectGrant> open_connect_grant(const TokenSealer& sealer, std::string_view link, int64_t now);
// {public_url}/oauth/connect/{credential}?link=...
std::string connect_url(const std::string& public_url, const ConnectGrant& grant, const std::string& signed_link);

// Random bytes as base64url (state, PKCE verifier, link ids).
std::string random_token(std::size_t bytes = 32);

}  // namespace mcpgate::credentials
