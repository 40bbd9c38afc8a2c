// What the gateway knows about one authorization server: its metadata (RFC 8414 /
// OIDC discovery, with overrides) and its signing keys (JWKS). Shared by every
// worker; each fetch runs on the loop of the worker that needed it, one at a
// time, and waiting requests are resumed on their own loops.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "auth/jwks.h"
#include "auth/status.h"
#include "config/config.h"
#include "core/event_loop.h"
#include "upstream/http_fetch.h"

namespace mcpgate::auth {

// A request parked until metadata or keys arrive. The owner keeps the shared_ptr;
// the server holds only a weak one, so a parked request can die at any time.
class Waiter {
 public:
  explicit Waiter(std::function<void()> resume) : resume_(std::move(resume)) {}
  void resume() { resume_(); }

 private:
  std::function<void()> resume_;
};

struct WaitHandle {
  core::EventLoop* loop = nullptr;
  std::weak_ptr<Waiter> waiter;
};

// Wakes every live waiter on its own loop (posted: never inside the caller's callback); empties `waiters`.
void resume_waiters(std::vector<WaitHandle>& waiters);

// The worker-side services a fetch needs: where to run it.
struct FetchContext {
  core::EventLoop* loop = nullptr;
  upstream::Fetcher* fetcher = nullptr;
};

class AuthorizationServer : public std::enable_shared_from_this<AuthorizationServer> {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::seconds kUnknownKidRefetchInterval{10};
  static constexpr std::chrono::seconds kMaxBackoff{60};
  static constexpr uint32_t kFetchTimeoutMs = 5000;

  explicit AuthorizationServer(config::AuthorizationServerConfig config);

  const config::AuthorizationServerConfig& config() const { return config_; }
  // The metadata document (overrides applied) as compact JSON; null until known.
  std::shared_ptr<const std::string> metadata() const;
  std::shared_ptr<const JwkSet> keys() const;
  bool metadata_ready() const { return metadata() != nullptr; }
  // Seconds until the next fetch may be tried after failures (0: now).
  int retry_after_s() const;
  // True when the last attempt failed and nothing usable is cached.
  bool failed() const;
  // What a token whose kid the cached keys lack gets, once its refetch was tried or refused:
  // KeyNotFound while the keys are current; KeysUnavailable (503, not 401) while the last fetch
  // failed, as the server may have rotated its keys meanwhile and the token may be good.
  AuthStatus unknown_kid_status() const;

  enum class Availability {
    Ready,        // what was asked for is cached now
    Waiting,      // a fetch runs; `wait` (if given) is resumed when it ends, whatever its outcome
    Unavailable,  // failed recently and backing off: answer 503 with retry_after_s()
  };
  Availability ensure_keys(const FetchContext& context, const WaitHandle* wait);
  Availability ensure_metadata(const FetchContext& context, const WaitHandle* wait);
  // A token named a kid the cached keys lack: refetch the JWKS, at most once per
  // kUnknownKidRefetchInterval. Unavailable when not allowed now (answer with what is cached).
  Availability refetch_keys_for_unknown_kid(const FetchContext& context, const WaitHandle& wait);
  // Fetches in the background when the cached keys are past their max-age.
  void refresh_if_stale(const FetchContext& context);

  // The well-known URL the metadata is fetched from.
  std::string metadata_url() const;

 private:
  enum class Want { Metadata, Keys };
  // Called with mutex_ held; returns with it released.
  Availability start_or_join(std::unique_lock<std::mutex>& lock, Want want, const FetchContext& context,
                             const WaitHandle* wait);
  void fetch_metadata(const FetchContext& context);
  void fetch_keys(const FetchContext& context, const std::string& jwks_uri);
  void on_metadata(const FetchContext& context, upstream::FetchResult& result);
  void on_keys(upstream::FetchResult& result);
  void finish_attempt(bool succeeded, const std::string& error);

  const config::AuthorizationServerConfig config_;
  mutable std::mutex mutex_;  // guards what follows; never held while calling out
  std::shared_ptr<const std::string> metadata_;
  std::shared_ptr<const JwkSet> keys_;
  Clock::time_point keys_expire_at_{};
  Clock::time_point last_keys_fetch_{};
  Clock::time_point next_attempt_at_{};
  std::chrono::seconds backoff_{0};
  bool in_flight_ = false;
  bool want_keys_ = false;
  bool last_failed_ = false;
  std::vector<WaitHandle> waiters_;
};

// The authorization servers of one config, by name. Reloads keep the state of
// servers whose configuration did not change.
class AuthRegistry {
 public:
  AuthRegistry(const config::Config& config, const AuthRegistry* previous);
  std::shared_ptr<AuthorizationServer> find(const std::string& name) const;
  const std::map<std::string, std::shared_ptr<AuthorizationServer>>& servers() const { return servers_; }

 private:
  std::map<std::string, std::shared_ptr<AuthorizationServer>> servers_;
};

// A string member of a metadata document (compact JSON); "" when absent.
std::string metadata_string(const std::string& metadata_json, const char* key);
// Issuer metadata URL per RFC 8414 §3.1 (oauth) or OIDC Discovery §4 (oidc).
std::string derive_metadata_url(const std::string& issuer, config::AuthServerType type);
// The "max-age" of a Cache-Control value, clamped to [60 s, 24 h]; 300 s when absent.
std::chrono::seconds keys_max_age(const http::HeaderList& headers);

}  // namespace mcpgate::auth
