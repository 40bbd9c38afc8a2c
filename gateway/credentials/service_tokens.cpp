#include "credentials/service_tokens.h"

#include <jansson.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <ctime>

#include "auth/token_lookup.h"
#include "observability/log.h"

namespace mcpgate::credentials {
namespace {

constexpr int64_t kFailedGrantBackoffS = 2;

int64_t now_s() { return static_cast<int64_t>(std::time(nullptr)); }

}  // namespace

std::string client_credentials_body(const config::CredentialConfig& credential,
                                    const config::AuthorizationServerConfig& server) {
  std::string body = "grant_type=client_credentials";
  if (!credential.scopes.empty()) {
    std::string scope;
    for (const auto& s : credential.scopes) scope.append(scope.empty() ? "" : " ").append(s);
    body += "&scope=" + auth::form_urlencode(scope);
  }
  if (!credential.resource.empty()) body += "&resource=" + auth::form_urlencode(credential.resource);
  if (!credential.audience.empty()) body += "&audience=" + auth::form_urlencode(credential.audience);
  if (credential.auth_method == config::ClientAuthMethod::ClientSecretPost)
    body += "&client_id=" + auth::form_urlencode(server.client_id) + "&client_secret=" + auth::form_urlencode(server.client_secret);
  return body;
}

ServiceTokens::State ServiceTokens::get(const config::CredentialConfig& credential, auth::AuthorizationServer& server,
                                        const auth::FetchContext& context, const auth::WaitHandle& wait,
                                        std::string* header_value, int* retry_after_s) {
  auto& slot = entries_[credential.name];
  if (!slot) slot = std::make_shared<Entry>();
  Entry& entry = *slot;
  const int64_t now = now_s();
  // Replaced this long before expiry; at most half its lifetime, so short-lived tokens are still used.
  const int64_t margin = std::min<int64_t>(credential.refresh_before_expiry_s, (entry.expires_at - entry.obtained_at) / 2);
  if (!entry.access_token.empty() && entry.expires_at - margin > now) {
    *header_value = "Bearer " + entry.access_token;
    return State::Ready;
  }
  if (!entry.in_flight && now < entry.failed_until) {
    *retry_after_s = static_cast<int>(entry.failed_until - now);
    return State::Unavailable;
  }
  switch (server.ensure_metadata(context, &wait)) {
    case auth::AuthorizationServer::Availability::Waiting:
      return State::Waiting;
    case auth::AuthorizationServer::Availability::Unavailable:
      *retry_after_s = server.retry_after_s();
      return State::Unavailable;
    case auth::AuthorizationServer::Availability::Ready:
      break;
  }
  const std::string token_endpoint = auth::metadata_string(*server.metadata(), "token_endpoint");
  if (token_endpoint.empty()) {
    *retry_after_s = 1;
    return State::Unavailable;
  }
  entry.waiters.push_back(wait);
  if (!entry.in_flight) {
    entry.in_flight = true;
    request_token(credential, token_endpoint, server, context);
  }
  return State::Waiting;
}

void ServiceTokens::request_token(const config::CredentialConfig& credential, const std::string& token_endpoint,
                                  const auth::AuthorizationServer& server, const auth::FetchContext& context) {
  http::HeaderList headers;
  headers.add("Accept", "application/json");
  headers.add("Content-Type", "application/x-www-form-urlencoded");
  const auto& server_config = server.config();
  if (credential.auth_method == config::ClientAuthMethod::ClientSecretBasic)
    headers.add("Authorization", auth::client_secret_basic(server_config.client_id, server_config.client_secret));
  // Owner of the callback: the loop's Fetcher; the entry is shared so it outlives a reload.
  std::weak_ptr<Entry> weak_entry = entries_[credential.name];
  const std::string name = credential.name;
  context.fetcher->fetch("POST", token_endpoint, std::move(headers), client_credentials_body(credential, server_config),
                         auth::AuthorizationServer::kFetchTimeoutMs, [weak_entry, name](upstream::FetchResult& result) {
                           auto entry = weak_entry.lock();
                           if (!entry) return;
                           entry->in_flight = false;
                           std::unique_ptr<json_t, decltype(&json_decref)> body(
                               result.ok() ? json_loadb(result.body.data(), result.body.size(), 0, nullptr) : nullptr,
                               &json_decref);
                           const char* token = body ? json_string_value(json_object_get(body.get(), "access_token")) : nullptr;
                           if (token == nullptr || *token == '\0') {
                             entry->failed_until = now_s() + kFailedGrantBackoffS;
                             observability::LogEvent(spdlog::level::warn, "client_credentials grant failed")
                                 .field("credential", name)
                                 .field("status", static_cast<int64_t>(result.status))
                                 .field("error", result.detail)
                                 .emit();
                           } else {
                             json_t* expires_in = json_object_get(body.get(), "expires_in");
                             entry->access_token = token;
                             entry->obtained_at = now_s();
                             entry->expires_at =
                                 entry->obtained_at + (json_is_integer(expires_in) ? json_integer_value(expires_in) : 300);
                           }
                           auth::resume_waiters(entry->waiters);
                         });
}

void ServiceTokens::clear() {
  for (auto& [name, entry] : entries_) auth::resume_waiters(entry->waiters);
  entries_.clear();
}

void ServiceTokens::invalidate(const std::string& credential_name) {
  auto found = entries_.find(credential_name);
  if (found != entries_.end()) found->second->access_token.clear();
}

}  // namespace mcpgate::credentials
