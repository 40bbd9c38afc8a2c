#include "credentials/token_store.h"

#include <jansson.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdlib>
#include <cstring>

#include "core/base64url.h"

#include "core/json.h"
#include "credentials/token_endpoint.h"

namespace mcpgate::credentials {
namespace {

using core::JsonPtr;

std::string string_member(const json_t* object, const char* key) {
  const char* value = json_string_value(json_object_get(object, key));
  return value != nullptr ? value : "";
}

}  // namespace

std::string tokens_to_json(const UserTokens& tokens) {
  JsonPtr object(json_pack("{s:s, s:s, s:s, s:I, s:I}", "access_token", tokens.access_token.c_str(), "refresh_token",
                           tokens.refresh_token.c_str(), "scope", tokens.scope.c_str(), "expires_at",
                           static_cast<json_int_t>(tokens.expires_at), "updated_at",
                           static_cast<json_int_t>(tokens.updated_at)),
                 &json_decref);
  return core::json_text(object.get());
}

std::optional<UserTokens> tokens_from_json(const std::string& json) {
  JsonPtr object(json_loadb(json.data(), json.size(), 0, nullptr), &json_decref);
  if (!json_is_object(object.get())) return std::nullopt;
  UserTokens tokens;
  tokens.access_token = string_member(object.get(), "access_token");
  tokens.refresh_token = string_member(object.get(), "refresh_token");
  tokens.scope = string_member(object.get(), "scope");
  tokens.expires_at = json_integer_value(json_object_get(object.get(), "expires_at"));
  tokens.updated_at = json_integer_value(json_object_get(object.get(), "updated_at"));
  if (tokens.access_token.empty()) return std::nullopt;
  return tokens;
}

std::optional<UserTokens> tokens_from_token_response(const std::string& body, const UserTokens* previous, int64_t now) {
  JsonPtr object(json_loadb(body.data(), body.size(), 0, nullptr), &json_decref);
  if (!json_is_object(object.get())) return std::nullopt;
  UserTokens tokens;
  tokens.access_token = string_member(object.get(), "access_token");
  if (tokens.access_token.empty()) return std::nullopt;
  tokens.refresh_token = string_member(object.get(), "refresh_token");
  if (tokens.refresh_token.empty() && previous != nullptr) tokens.refresh_token = previous->refresh_token;
  tokens.scope = string_member(object.get(), "scope");
  if (tokens.scope.empty() && previous != nullptr) tokens.scope = previous->scope;
  // RFC 6749 makes expires_in a number; some servers send it as a string of digits.
  const json_t* expires_in = json_object_get(object.get(), "expires_in");
  json_int_t lifetime = json_is_integer(expires_in) ? json_integer_value(expires_in) : 0;
  if (const char* text = json_string_value(expires_in); text != nullptr && *text != '\0' && std::strlen(text) < 12 &&
                                                         std::strspn(text, "0123456789") == std::strlen(text))
    lifetime = std::strtoll(text, nullptr, 10);
  if (lifetime > 0) tokens.expires_at = expiry_after(now, lifetime);
  tokens.updated_at = now;
  return tokens;
}

TokenStore::TokenStore(StoreBackendPtr backend, std::shared_ptr<const TokenSealer> sealer, std::string prefix,
                       observability::Metrics* metrics)
    : backend_(std::move(backend)), sealer_(std::move(sealer)), prefix_(std::move(prefix)), metrics_(metrics) {}

// Identifiers are base64url-encoded: no issuer or subject text can forge another user's key.
std::string TokenStore::user_key(const UserKey& user, std::string_view kind) const {
  return prefix_ + std::string(kind) + ":" + user.credential + ":" + core::base64url_encode(user.issuer) + ":" +
         core::base64url_encode(user.subject);
}

template <typename Callback>
Callback TokenStore::timed(std::string_view operation, Callback done) {
  const auto started = std::chrono::steady_clock::now();
  return [metrics = metrics_, operation = std::string(operation), started, done = std::move(done)](auto... args) {
    if (metrics != nullptr)
      metrics->record_store_latency(operation, std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    if (done) done(std::move(args)...);
  };
}

void TokenStore::load(const UserKey& user, TokensCallback done) {
  const std::string key = user_key(user, "tokens");
  // Owner of the callback: the backend. It holds the sealer by shared pointer, not this store.
  backend_->get(key, timed("get", ValueCallback([sealer = sealer_, key, done = std::move(done)](StoreStatus status, std::string value) {
                  if (status != StoreStatus::Ok) return done(status, {});
                  const auto plain = sealer->open(value, key);
                  const auto tokens = plain ? tokens_from_json(*plain) : std::nullopt;
                  if (!tokens) {
                    spdlog::warn("token store: an entry does not open with the configured keys; treated as absent");
                    return done(StoreStatus::NotFound, {});
                  }
                  done(StoreStatus::Ok, *tokens);
                })));
}

void TokenStore::save(const UserKey& user, const UserTokens& tokens, StatusCallback done) {
  const std::string key = user_key(user, "tokens");
  backend_->set(key, sealer_->seal(tokens_to_json(tokens), key), kUserTokensTtlS * 1000, timed("set", std::move(done)));
}

void TokenStore::erase(const UserKey& user, StatusCallback done) {
  backend_->remove(user_key(user, "tokens"), timed("delete", std::move(done)));
}

void TokenStore::lock(const UserKey& user, const std::string& owner, int64_t ttl_ms, StatusCallback done) {
  backend_->add(user_key(user, "lock"), owner, ttl_ms, timed("lock", std::move(done)));
}

void TokenStore::unlock(const UserKey& user, const std::string& owner) {
  backend_->remove_if(user_key(user, "lock"), owner, nullptr);
}

void TokenStore::put_record(const std::string& name, const std::string& value, int64_t ttl_ms, StatusCallback done) {
  const std::string key = prefix_ + "record:" + name;
  backend_->set(key, sealer_->seal(value, key), ttl_ms, timed("set", std::move(done)));
}

void TokenStore::take_record(const std::string& name, ValueCallback done) {
  const std::string key = prefix_ + "record:" + name;
  backend_->take(key, timed("get", ValueCallback([sealer = sealer_, key, done = std::move(done)](StoreStatus status, std::string value) {
                   if (status != StoreStatus::Ok) return done(status, {});
                   auto plain = sealer->open(value, key);
                   if (!plain) return done(StoreStatus::NotFound, {});
                   done(StoreStatus::Ok, std::move(*plain));
                 })));
}

void TokenStore::take_tokens(std::vector<BucketTake> buckets, StoreBackend::BucketCallback done) {
  for (auto& bucket : buckets) bucket.key = prefix_ + "ratelimit:" + bucket.key;
  backend_->take_tokens(buckets, timed("rate_limit", std::move(done)));
}

void TokenStore::claim_once(const std::string& name, int64_t ttl_ms, StatusCallback done) {
  backend_->add(prefix_ + "used:" + name, "1", ttl_ms, timed("claim", std::move(done)));
}

}  // namespace mcpgate::credentials
