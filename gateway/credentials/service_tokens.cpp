#include "credentials/service_tokens.h"

#include <jansson.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <ctime>

#include "credentials/token_endpoint.h"
#include "observability/log.h"

namespace mcpgate::credentials {
namespace {

constexpr int64_t kFailedGrantBackoffS = 2;
constexpr int64_t kDefaultLifetimeS = 300;  // when the answer has no expires_in

int64_t now_s() { return static_cast<int64_t>(std::time(nullptr)); }

std::string entry_key(const config::CredentialConfig& credential, const ServiceTokens::Subject& subject) {
  return subject.key.empty() ? credential.name : credential.name + '\0' + subject.key;
}

}  // namespace

ServiceTokens::State ServiceTokens::get(const config::CredentialConfig& credential, const Subject& subject,
                                        auth::AuthorizationServer& server, const auth::FetchContext& context,
                                        const auth::WaitHandle& wait, std::string* header_value, int* retry_after_s) {
  const int64_t now = now_s();
  if (++gets_ % kSweepEvery == 0) sweep(now);
  const std::string key = entry_key(credential, subject);
  auto& slot = entries_[key];
  if (!slot) slot = std::make_shared<Entry>();
  Entry& entry = *slot;
  if (!entry.access_token.empty() &&
      !renewal_due(entry.obtained_at, entry.expires_at, credential.refresh_before_expiry_s, now)) {
    if (metrics_ != nullptr) metrics_->record_credential_event("cache", credential.name, "hit");
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
    if (metrics_ != nullptr) metrics_->record_credential_event("cache", credential.name, "miss");
    entry.in_flight = true;
    request_token(credential, subject, key, token_endpoint, server, context);
  }
  return State::Waiting;
}

void ServiceTokens::request_token(const config::CredentialConfig& credential, const Subject& subject,
                                  const std::string& key, const std::string& token_endpoint,
                                  const auth::AuthorizationServer& server, const auth::FetchContext& context) {
  const bool exchange = credential.type == config::CredentialType::TokenExchange;
  std::string body = exchange ? token_exchange_body(credential, subject.token) : client_credentials_body(credential);
  // Owner of the callback: the loop's Fetcher; the entry is shared so it outlives a reload.
  std::weak_ptr<Entry> weak_entry = entries_[key];
  const std::string name = credential.name;
  observability::Metrics* metrics = metrics_;
  post_token_request(*context.fetcher, token_endpoint, credential, server.config(), std::move(body),
                     [weak_entry, name, exchange, metrics](upstream::FetchResult& result) {
                       auto entry = weak_entry.lock();
                       if (!entry) return;
                       entry->in_flight = false;
                       std::unique_ptr<json_t, decltype(&json_decref)> answer(
                           result.ok() ? json_loadb(result.body.data(), result.body.size(), 0, nullptr) : nullptr,
                           &json_decref);
                       const char* token = answer ? json_string_value(json_object_get(answer.get(), "access_token")) : nullptr;
                       const bool got = token != nullptr && *token != '\0';
                       if (metrics != nullptr) metrics->record_credential_event("refresh", name, got ? "ok" : "failed");
                       if (!got) {
                         entry->failed_until = now_s() + kFailedGrantBackoffS;
                         observability::LogEvent(spdlog::level::warn, exchange ? "token exchange failed" : "client_credentials grant failed")
                             .field("credential", name)
                             .field("status", static_cast<int64_t>(result.status))
                             .field("error", result.detail.empty() ? token_error_code(result) : result.detail)
                             .emit();
                       } else {
                         json_t* expires_in = json_object_get(answer.get(), "expires_in");
                         entry->access_token = token;
                         entry->obtained_at = now_s();
                         entry->expires_at = expiry_after(
                             entry->obtained_at, json_is_integer(expires_in) ? json_integer_value(expires_in) : kDefaultLifetimeS);
                       }
                       auth::resume_waiters(entry->waiters);
                     });
}

void ServiceTokens::sweep(int64_t now) {
  for (auto it = entries_.begin(); it != entries_.end();) {
    const Entry& entry = *it->second;
    const bool idle = !entry.in_flight && entry.waiters.empty() && entry.expires_at <= now && entry.failed_until <= now;
    it = idle ? entries_.erase(it) : std::next(it);
  }
}

void ServiceTokens::clear() {
  for (auto& [name, entry] : entries_) auth::resume_waiters(entry->waiters);
  entries_.clear();
}

void ServiceTokens::invalidate(const config::CredentialConfig& credential, const Subject& subject) {
  auto found = entries_.find(entry_key(credential, subject));
  if (found != entries_.end()) found->second->access_token.clear();
}

}  // namespace mcpgate::credentials
