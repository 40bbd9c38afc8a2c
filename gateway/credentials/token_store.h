// Per-user downstream tokens of delegated credentials, and the short-lived records of the
// connect flow, over a StoreBackend. Everything written is sealed (AES-256-GCM, the store
// key as associated data) before it reaches the backend; nothing read is trusted unopened.
// One TokenStore per event loop; its callbacks run on that loop.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "credentials/store_backend.h"
#include "credentials/token_sealer.h"
#include "observability/metrics.h"

namespace mcpgate::credentials {

// Whose tokens: the caller as the gateway's own authorization server knows them, and which
// credential (one user may link several downstream accounts).
struct UserKey {
  std::string credential;
  std::string issuer;
  std::string subject;
};

struct UserTokens {
  std::string access_token;
  std::string refresh_token;  // empty: the token cannot be renewed, only relinked
  std::string scope;
  int64_t expires_at = 0;     // unix seconds; 0: unknown (used until the upstream refuses it)
  int64_t updated_at = 0;     // unix seconds of the last write
};

// Tokens as JSON and back (nullopt: not the shape written by to_json).
std::string tokens_to_json(const UserTokens& tokens);
std::optional<UserTokens> tokens_from_json(const std::string& json);

// A token endpoint's success answer (RFC 6749 §5.1) as tokens; `previous` supplies the
// refresh token when the answer brings none (no rotation). nullopt without access_token.
std::optional<UserTokens> tokens_from_token_response(const std::string& body, const UserTokens* previous, int64_t now);

class TokenStore {
 public:
  using TokensCallback = std::function<void(StoreStatus, UserTokens)>;
  using StatusCallback = StoreBackend::StatusCallback;
  using ValueCallback = StoreBackend::ValueCallback;

  // How long stored tokens live in the backend without being rewritten (each refresh rewrites).
  static constexpr int64_t kUserTokensTtlS = 30 * 24 * 3600;

  TokenStore(StoreBackendPtr backend, std::shared_ptr<const TokenSealer> sealer, std::string prefix,
             observability::Metrics* metrics);

  // NotFound also when an entry does not open (its key was dropped, or it was tampered with).
  void load(const UserKey& user, TokensCallback done);
  void save(const UserKey& user, const UserTokens& tokens, StatusCallback done);
  void erase(const UserKey& user, StatusCallback done);
  // The refresh lock of `user`'s tokens: one refresher at a time across loops and replicas.
  // `owner` is a random value that only its holder can release with unlock().
  void lock(const UserKey& user, const std::string& owner, int64_t ttl_ms, StatusCallback done);
  void unlock(const UserKey& user, const std::string& owner);

  // Sealed single-use records (connect flow state, used link ids), by name.
  void put_record(const std::string& name, const std::string& value, int64_t ttl_ms, StatusCallback done);
  void take_record(const std::string& name, ValueCallback done);
  // Ok the first time a name is claimed, Conflict after (until ttl_ms passes).
  void claim_once(const std::string& name, int64_t ttl_ms, StatusCallback done);

  // Rate-limit buckets shared between replicas, under "<prefix>ratelimit:<key>" (values are
  // counters, not secrets: not sealed). Only when shares_buckets().
  bool shares_buckets() const { return backend_->shares_buckets(); }
  void take_tokens(std::vector<BucketTake> buckets, StoreBackend::BucketCallback done);

  const TokenSealer& sealer() const { return *sealer_; }

 private:
  std::string user_key(const UserKey& user, std::string_view kind) const;
  template <typename Callback>
  Callback timed(std::string_view operation, Callback done);

  StoreBackendPtr backend_;
  std::shared_ptr<const TokenSealer> sealer_;
  std::string prefix_;
  observability::Metrics* metrics_;  // outlives every loop; may be null in tests
};

}  // namespace mcpgate::credentials
