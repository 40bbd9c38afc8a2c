#include "auth/authorization_server.h"

#include <jansson.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "observability/log.h"

namespace mcpgate::auth {
namespace {

using JsonPtr = std::unique_ptr<json_t, decltype(&json_decref)>;

std::string dump(json_t* value) {
  std::unique_ptr<char, decltype(&free)> text(json_dumps(value, JSON_COMPACT), &free);
  return text ? std::string(text.get()) : std::string();
}

JsonPtr load_object(std::string_view text) {
  JsonPtr value(json_loadb(text.data(), text.size(), JSON_REJECT_DUPLICATES, nullptr), &json_decref);
  if (value && !json_is_object(value.get())) value.reset();
  return value;
}

// Fetched (or manual) metadata with the configured overrides merged over it.
std::string apply_overrides(json_t* metadata, const std::string& overrides_json) {
  if (!overrides_json.empty()) {
    JsonPtr overrides = load_object(overrides_json);
    if (overrides) json_object_update(metadata, overrides.get());
  }
  return dump(metadata);
}


}  // namespace

void resume_waiters(std::vector<WaitHandle>& waiters) {
  for (auto& handle : waiters) {
    if (handle.loop == nullptr) continue;
    handle.loop->post([weak = handle.waiter] {
      if (auto waiter = weak.lock()) waiter->resume();
    });
  }
  waiters.clear();
}

std::string metadata_string(const std::string& metadata_json, const char* key) {
  JsonPtr object = load_object(metadata_json);
  const char* value = object ? json_string_value(json_object_get(object.get(), key)) : nullptr;
  return value ? value : "";
}

std::string derive_metadata_url(const std::string& issuer, config::AuthServerType type) {
  std::string base = issuer;
  while (!base.empty() && base.back() == '/') base.pop_back();
  if (type == config::AuthServerType::Oidc) return base + "/.well-known/openid-configuration";
  // RFC 8414 §3.1: the well-known segment goes between the host and the issuer's path.
  const std::size_t scheme_end = base.find("://");
  const std::size_t path_start = scheme_end == std::string::npos ? std::string::npos : base.find('/', scheme_end + 3);
  if (path_start == std::string::npos) return base + "/.well-known/oauth-authorization-server";
  return base.substr(0, path_start) + "/.well-known/oauth-authorization-server" + base.substr(path_start);
}

std::chrono::seconds keys_max_age(const http::HeaderList& headers) {
  long seconds = 300;
  if (auto cache_control = headers.get("Cache-Control")) {
    const std::string text = std::string(*cache_control);
    const std::size_t at = text.find("max-age=");
    if (at != std::string::npos) seconds = std::strtol(text.c_str() + at + 8, nullptr, 10);
  }
  return std::chrono::seconds(std::clamp(seconds, 60L, 86400L));
}

AuthorizationServer::AuthorizationServer(config::AuthorizationServerConfig config) : config_(std::move(config)) {
  if (!config_.metadata_json.empty()) {
    JsonPtr manual = load_object(config_.metadata_json);
    if (manual) metadata_ = std::make_shared<const std::string>(apply_overrides(manual.get(), config_.metadata_overrides_json));
  }
}

std::string AuthorizationServer::metadata_url() const {
  return config_.metadata_url.empty() ? derive_metadata_url(config_.issuer, config_.type) : config_.metadata_url;
}

std::shared_ptr<const std::string> AuthorizationServer::metadata() const {
  std::lock_guard lock(mutex_);
  return metadata_;
}

std::shared_ptr<const JwkSet> AuthorizationServer::keys() const {
  std::lock_guard lock(mutex_);
  return keys_;
}

int AuthorizationServer::retry_after_s() const {
  std::lock_guard lock(mutex_);
  const auto remaining = std::chrono::duration_cast<std::chrono::seconds>(next_attempt_at_ - Clock::now()).count();
  return static_cast<int>(std::max<long>(1, remaining + 1));
}

bool AuthorizationServer::failed() const {
  std::lock_guard lock(mutex_);
  return last_failed_;
}

AuthStatus AuthorizationServer::unknown_kid_status() const {
  return failed() ? AuthStatus::KeysUnavailable : AuthStatus::KeyNotFound;
}

AuthorizationServer::Availability AuthorizationServer::ensure_metadata(const FetchContext& context,
                                                                       const WaitHandle* wait) {
  std::unique_lock lock(mutex_);
  if (metadata_) return Availability::Ready;
  return start_or_join(lock, Want::Metadata, context, wait);
}

AuthorizationServer::Availability AuthorizationServer::ensure_keys(const FetchContext& context,
                                                                   const WaitHandle* wait) {
  std::unique_lock lock(mutex_);
  if (keys_) return Availability::Ready;
  return start_or_join(lock, Want::Keys, context, wait);
}

AuthorizationServer::Availability AuthorizationServer::refetch_keys_for_unknown_kid(const FetchContext& context,
                                                                                    const WaitHandle& wait) {
  std::unique_lock lock(mutex_);
  // Forged kids must not turn the gateway into a flood against the IdP.
  if (!in_flight_ && Clock::now() - last_keys_fetch_ < kUnknownKidRefetchInterval) return Availability::Unavailable;
  return start_or_join(lock, Want::Keys, context, &wait);
}

void AuthorizationServer::refresh_if_stale(const FetchContext& context) {
  std::unique_lock lock(mutex_);
  const bool stale = keys_ && Clock::now() >= keys_expire_at_;
  const bool eager_and_missing = config_.discovery == config::Discovery::Eager && !keys_;
  if (!stale && !eager_and_missing) return;
  start_or_join(lock, Want::Keys, context, nullptr);
}

AuthorizationServer::Availability AuthorizationServer::start_or_join(std::unique_lock<std::mutex>& lock, Want want,
                                                                     const FetchContext& context,
                                                                     const WaitHandle* wait) {
  if (!in_flight_ && Clock::now() < next_attempt_at_) return Availability::Unavailable;
  if (wait != nullptr) waiters_.push_back(*wait);
  want_keys_ = want_keys_ || want == Want::Keys;
  if (in_flight_) return Availability::Waiting;
  in_flight_ = true;
  const auto metadata = metadata_;
  lock.unlock();
  if (!metadata) {
    fetch_metadata(context);
  } else {
    const std::string jwks_uri = metadata_string(*metadata, "jwks_uri");
    if (jwks_uri.empty()) {
      finish_attempt(false, "the metadata has no jwks_uri");
    } else {
      fetch_keys(context, jwks_uri);
    }
  }
  return Availability::Waiting;
}

void AuthorizationServer::fetch_metadata(const FetchContext& context) {
  http::HeaderList headers;
  headers.add("Accept", "application/json");
  context.fetcher->fetch("GET", metadata_url(), std::move(headers), {}, kFetchTimeoutMs,
                         [self = shared_from_this(), context](upstream::FetchResult& result) { self->on_metadata(context, result); });
}

void AuthorizationServer::fetch_keys(const FetchContext& context, const std::string& jwks_uri) {
  http::HeaderList headers;
  headers.add("Accept", "application/jwk-set+json, application/json");
  context.fetcher->fetch("GET", jwks_uri, std::move(headers), {}, kFetchTimeoutMs,
                         [self = shared_from_this()](upstream::FetchResult& result) { self->on_keys(result); });
}

// Runs on the fetching loop, outside curl callbacks; the callback keeps this server alive
// across a reload that drops it.
void AuthorizationServer::on_metadata(const FetchContext& context, upstream::FetchResult& result) {
  if (!result.ok()) {
    finish_attempt(false, "metadata fetch failed: " + (result.detail.empty() ? "HTTP " + std::to_string(result.status) : result.detail));
    return;
  }
  JsonPtr document = load_object(result.body);
  if (!document) {
    finish_attempt(false, "metadata is not a JSON object");
    return;
  }
  // RFC 8414 §3.3 / OIDC Discovery §4.3: the document must be about this issuer.
  const char* issuer = json_string_value(json_object_get(document.get(), "issuer"));
  if (issuer == nullptr || config_.issuer != issuer) {
    finish_attempt(false, "metadata issuer does not match the configured issuer");
    return;
  }
  auto metadata = std::make_shared<const std::string>(apply_overrides(document.get(), config_.metadata_overrides_json));
  bool want_keys;
  {
    std::lock_guard lock(mutex_);
    metadata_ = metadata;
    want_keys = want_keys_;
  }
  if (!want_keys) {
    finish_attempt(true, "");
    return;
  }
  const std::string jwks_uri = metadata_string(*metadata, "jwks_uri");
  if (jwks_uri.empty()) {
    finish_attempt(false, "the metadata has no jwks_uri");
    return;
  }
  fetch_keys(context, jwks_uri);
}

void AuthorizationServer::on_keys(upstream::FetchResult& result) {
  if (!result.ok()) {
    finish_attempt(false, "JWKS fetch failed: " + (result.detail.empty() ? "HTTP " + std::to_string(result.status) : result.detail));
    return;
  }
  std::string error;
  auto parsed = JwkSet::parse(result.body, &error);
  if (!parsed) {
    finish_attempt(false, "JWKS rejected: " + error);
    return;
  }
  {
    std::lock_guard lock(mutex_);
    keys_ = std::make_shared<const JwkSet>(std::move(*parsed));
    last_keys_fetch_ = Clock::now();
    keys_expire_at_ = last_keys_fetch_ + keys_max_age(result.headers);
  }
  finish_attempt(true, "");
}

void AuthorizationServer::finish_attempt(bool succeeded, const std::string& error) {
  std::vector<WaitHandle> waiters;
  {
    std::lock_guard lock(mutex_);
    in_flight_ = false;
    want_keys_ = false;
    last_failed_ = !succeeded;
    if (succeeded) {
      backoff_ = std::chrono::seconds(0);
      next_attempt_at_ = Clock::time_point{};
    } else {
      backoff_ = std::clamp(backoff_ * 2, std::chrono::seconds(1), kMaxBackoff);
      next_attempt_at_ = Clock::now() + backoff_;
    }
    waiters.swap(waiters_);
  }
  if (!succeeded)
    observability::LogEvent(spdlog::level::warn, "authorization server unavailable")
        .field("server", config_.name)
        .field("error", error)
        .emit();
  resume_waiters(waiters);
}

AuthRegistry::AuthRegistry(const config::Config& config, const AuthRegistry* previous) {
  for (const auto& [name, server_config] : config.authorization_servers) {
    std::shared_ptr<AuthorizationServer> reused;
    if (previous != nullptr) {
      auto old = previous->find(name);
      const auto& c = old ? old->config() : server_config;
      if (old && c.issuer == server_config.issuer && c.type == server_config.type &&
          c.metadata_url == server_config.metadata_url && c.metadata_json == server_config.metadata_json &&
          c.metadata_overrides_json == server_config.metadata_overrides_json && c.discovery == server_config.discovery)
        reused = old;
    }
    servers_[name] = reused ? reused : std::make_shared<AuthorizationServer>(server_config);
  }
}

std::shared_ptr<AuthorizationServer> AuthRegistry::find(const std::string& name) const {
  auto found = servers_.find(name);
  return found == servers_.end() ? nullptr : found->second;
}

}  // namespace mcpgate::auth
