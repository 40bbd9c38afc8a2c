// Calls to an authorization server's token endpoint (RFC 6749 §3.2): every grant the gateway
// makes — client_credentials, RFC 8693 token exchange, refresh_token, authorization_code —
// goes through here, so client authentication and error reading live in one place.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "upstream/http_fetch.h"

namespace mcpgate::credentials {

// The token requests for that credential's grants, as form bodies without client authentication.
std::string client_credentials_body(const config::CredentialConfig& credential);
// RFC 8693 §2.1: the caller's validated access token as subject_token.
std::string token_exchange_body(const config::CredentialConfig& credential, const std::string& subject_token);
std::string refresh_body(const config::CredentialConfig& credential, const std::string& refresh_token);

// POSTs `form_body` to `endpoint` with the gateway's client authentication at `server`
// (client_secret_basic, or client_secret_post per the credential). `done` runs on the fetcher's loop.
void post_token_request(upstream::Fetcher& fetcher, const std::string& endpoint, const config::CredentialConfig& credential,
                        const config::AuthorizationServerConfig& server, std::string form_body, upstream::FetchCallback done);

// The "error" code of a token endpoint's error answer (RFC 6749 §5.2), "" when there is none.
std::string token_error_code(const upstream::FetchResult& result);

// Whether a token obtained at `obtained_at` and expiring at `expires_at` should be renewed
// now: within `refresh_before_s` of expiry, but at most half its lifetime early, so
// short-lived tokens are still used. expires_at 0 (unknown): never proactively.
bool renewal_due(int64_t obtained_at, int64_t expires_at, int64_t refresh_before_s, int64_t now);

// When a token issued at `now` with `expires_in` seconds (a token endpoint's or an operator's
// number, untrusted) expires: its lifetime is capped at ten years, so no sum overflows.
int64_t expiry_after(int64_t now, int64_t expires_in);

}  // namespace mcpgate::credentials
