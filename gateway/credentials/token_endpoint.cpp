#include "credentials/token_endpoint.h"

#include <jansson.h>

#include <algorithm>
#include <limits>
#include <ctime>
#include <memory>

#include "auth/authorization_server.h"
#include "auth/token_lookup.h"
#include "credentials/client_assertion.h"

namespace mcpgate::credentials {
namespace {

std::string joined_scopes(const std::vector<std::string>& scopes) {
  std::string scope;
  for (const auto& s : scopes) scope.append(scope.empty() ? "" : " ").append(s);
  return scope;
}

void append_param(std::string& body, std::string_view name, const std::string& value) {
  if (value.empty()) return;
  body.append("&").append(name).append("=").append(auth::form_urlencode(value));
}

}  // namespace

std::string client_credentials_body(const config::CredentialConfig& credential) {
  std::string body = "grant_type=client_credentials";
  append_param(body, "scope", joined_scopes(credential.scopes));
  append_param(body, "resource", credential.resource);
  append_param(body, "audience", credential.audience);
  return body;
}

std::string token_exchange_body(const config::CredentialConfig& credential, const std::string& subject_token) {
  std::string body = "grant_type=" + auth::form_urlencode("urn:ietf:params:oauth:grant-type:token-exchange");
  append_param(body, "subject_token", subject_token);
  append_param(body, "subject_token_type", "urn:ietf:params:oauth:token-type:access_token");
  append_param(body, "requested_token_type", "urn:ietf:params:oauth:token-type:access_token");
  append_param(body, "scope", joined_scopes(credential.scopes));
  append_param(body, "resource", credential.resource);
  append_param(body, "audience", credential.audience);
  return body;
}

std::string refresh_body(const config::CredentialConfig& credential, const std::string& refresh_token) {
  std::string body = "grant_type=refresh_token";
  append_param(body, "refresh_token", refresh_token);
  append_param(body, "resource", credential.resource);
  return body;
}

void post_token_request(upstream::Fetcher& fetcher, const std::string& endpoint, const config::CredentialConfig& credential,
                        const config::AuthorizationServerConfig& server, std::string form_body, upstream::FetchCallback done) {
  http::HeaderList headers;
  headers.add("Accept", "application/json");
  headers.add("Content-Type", "application/x-www-form-urlencoded");
  switch (credential.auth_method) {
    case config::ClientAuthMethod::ClientSecretBasic:
      headers.add("Authorization", auth::client_secret_basic(server.client_id, server.client_secret));
      break;
    case config::ClientAuthMethod::ClientSecretPost:
      append_param(form_body, "client_id", server.client_id);
      append_param(form_body, "client_secret", server.client_secret);
      break;
    case config::ClientAuthMethod::PrivateKeyJwt: {
      const auto assertion = client_assertion(server, endpoint, static_cast<int64_t>(std::time(nullptr)));
      append_param(form_body, "client_id", server.client_id);
      append_param(form_body, "client_assertion_type", kJwtBearerAssertionType);
      // Unsigned, the request fails at the server like any refused grant, and is logged there.
      append_param(form_body, "client_assertion", assertion.value_or(""));
      break;
    }
  }
  fetcher.fetch("POST", endpoint, std::move(headers), std::move(form_body), auth::AuthorizationServer::kFetchTimeoutMs,
                std::move(done));
}

std::string token_error_code(const upstream::FetchResult& result) {
  if (result.error != upstream::TransferError::None || result.status < 400 || result.status >= 500) return "";
  std::unique_ptr<json_t, decltype(&json_decref)> body(json_loadb(result.body.data(), result.body.size(), 0, nullptr),
                                                       &json_decref);
  const char* error = json_string_value(json_object_get(body.get(), "error"));
  return error != nullptr ? error : "";
}

bool renewal_due(int64_t obtained_at, int64_t expires_at, int64_t refresh_before_s, int64_t now) {
  if (expires_at == 0) return false;
  const int64_t margin = std::min<int64_t>(refresh_before_s, std::max<int64_t>(0, expires_at - obtained_at) / 2);
  return expires_at - margin <= now;
}

int64_t expiry_after(int64_t now, int64_t expires_in) {
  constexpr int64_t kMaxLifetimeS = int64_t{10} * 365 * 86400;
  const int64_t lifetime = std::clamp<int64_t>(expires_in, 0, kMaxLifetimeS);
  return now > std::numeric_limits<int64_t>::max() - lifetime ? std::numeric_limits<int64_t>::max() : now + lifetime;
}

}  // namespace mcpgate::credentials
