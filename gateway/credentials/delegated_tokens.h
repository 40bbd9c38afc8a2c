// The user's own downstream tokens for `delegated` credentials, on one event loop: read from
// the token store on each use, renewed with the refresh_token grant when they near expiry or
// after the upstream refused them. One renewal at a time per user and credential: on this
// loop by joining the attempt in flight, across loops and replicas by the store's refresh
// lock (a loser waits for the winner's write and uses it, so a rotated refresh token is
// spent once and stored once).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "auth/authorization_server.h"
#include "config/config.h"
#include "credentials/token_store.h"
#include "observability/metrics.h"

struct event;

namespace mcpgate::credentials {

// What a request gets: filled in when the attempt ends (state leaves Pending).
struct DelegatedOutcome {
  enum class State { Pending, Ready, NotLinked, Unavailable } state = State::Pending;
  std::string header_value;     // Ready: "Bearer ..."
  bool refresh_refused = false;  // NotLinked because the downstream server refused the refresh
  int retry_after_s = 1;        // Unavailable
};

class DelegatedTokens {
 public:
  DelegatedTokens(TokenStore& store, observability::Metrics* metrics) : store_(store), metrics_(metrics) {}
  ~DelegatedTokens();

  // Starts finding `user`'s token for `credential`; `wait` resumes the request when the outcome
  // is known (never before get() returns). `server`'s metadata is fetched only to renew. `refused_token`: the access token the upstream just
  // answered 401 to ("" on a first try); it is renewed unless the store already holds another.
  std::shared_ptr<DelegatedOutcome> get(const config::CredentialConfig& credential, auth::AuthorizationServer& server,
                                        const auth::FetchContext& context, const UserKey& user,
                                        const std::string& refused_token, const auth::WaitHandle& wait);

  // How long the refresh lock is held at most (a crashed holder frees it by expiry), and how
  // often a request waiting for another's renewal reads the store again.
  static constexpr int64_t kLockTtlMs = 10000;
  static constexpr int64_t kLockPollMs = 100;

 private:
  struct Attempt;
  using AttemptPtr = std::shared_ptr<Attempt>;

  void load(const AttemptPtr& attempt);
  void on_loaded(const AttemptPtr& attempt, StoreStatus status, UserTokens tokens);
  void acquire_lock(const AttemptPtr& attempt);
  void on_locked(const AttemptPtr& attempt, StoreStatus status);
  void redeem_refresh(const AttemptPtr& attempt, UserTokens current);
  void on_refresh_answer(const AttemptPtr& attempt, upstream::FetchResult& result);
  void poll_later(const AttemptPtr& attempt);
  static void on_poll_timer(int, short, void* attempt) noexcept;
  void finish(const AttemptPtr& attempt, DelegatedOutcome::State state, const std::string& access_token = {});

  TokenStore& store_;
  observability::Metrics* metrics_;
  std::map<std::string, AttemptPtr> attempts_;  // in flight, by user key and refusal; loop-local
};

}  // namespace mcpgate::credentials
