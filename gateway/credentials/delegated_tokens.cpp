#include "credentials/delegated_tokens.h"

#include <event2/event.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <ctime>

#include "credentials/token_endpoint.h"
#include "observability/log.h"

#include "credentials/connect_link.h"

namespace mcpgate::credentials {
namespace {

constexpr int kRenewalFailedRetryS = 2;

int64_t now_s() { return static_cast<int64_t>(std::time(nullptr)); }


}  // namespace

// One lookup-and-maybe-renew for one user and credential on this loop, joined by every
// request that needs the same. Owned by DelegatedTokens::attempts_ until it finishes; store,
// fetch and timer callbacks reach it through weak pointers (the timer through a raw one,
// valid because the attempt frees its timer before it dies).
struct DelegatedTokens::Attempt : std::enable_shared_from_this<Attempt> {
  DelegatedTokens* owner = nullptr;
  std::string map_key;
  config::CredentialConfig credential;            // copies: a reload may replace the config meanwhile
  config::AuthorizationServerConfig server;
  std::shared_ptr<auth::AuthorizationServer> server_state;  // its metadata, asked for only to renew
  std::shared_ptr<auth::Waiter> metadata_waiter;             // resumes the renewal when metadata arrives
  std::string token_endpoint;
  auth::FetchContext context;
  UserKey user;
  std::string refused_token;
  std::string seen_access_token;  // what the store held before the lock was asked for
  std::string lock_owner;
  bool locked = false;
  int polls = 0;
  event* timer = nullptr;
  std::shared_ptr<DelegatedOutcome> outcome = std::make_shared<DelegatedOutcome>();
  std::vector<auth::WaitHandle> waiters;

  ~Attempt() {
    if (timer != nullptr) event_free(timer);
  }
};

DelegatedTokens::~DelegatedTokens() {
  for (auto& [key, attempt] : attempts_)
    if (attempt->locked) store_.unlock(attempt->user, attempt->lock_owner);
  attempts_.clear();
}

std::shared_ptr<DelegatedOutcome> DelegatedTokens::get(const config::CredentialConfig& credential,
                                                      auth::AuthorizationServer& server,
                                                      const auth::FetchContext& context, const UserKey& user,
                                                      const std::string& refused_token, const auth::WaitHandle& wait) {
  std::string map_key = credential.name + '\0' + user.issuer + '\0' + user.subject + '\0' + refused_token;
  if (auto found = attempts_.find(map_key); found != attempts_.end()) {
    found->second->waiters.push_back(wait);
    return found->second->outcome;
  }
  auto attempt = std::make_shared<Attempt>();
  attempt->owner = this;
  attempt->map_key = map_key;
  attempt->credential = credential;
  attempt->server = server.config();
  attempt->server_state = server.shared_from_this();
  attempt->context = context;
  attempt->user = user;
  attempt->refused_token = refused_token;
  attempt->waiters.push_back(wait);
  attempts_.emplace(std::move(map_key), attempt);
  load(attempt);
  return attempt->outcome;
}

void DelegatedTokens::load(const AttemptPtr& attempt) {
  // Owner of the callback: the store's backend; the attempt is reached weakly.
  store_.load(attempt->user, [this, weak = std::weak_ptr<Attempt>(attempt)](StoreStatus status, UserTokens tokens) {
    if (auto attempt = weak.lock()) on_loaded(attempt, status, std::move(tokens));
  });
}

void DelegatedTokens::on_loaded(const AttemptPtr& attempt, StoreStatus status, UserTokens tokens) {
  if (status == StoreStatus::NotFound) return finish(attempt, DelegatedOutcome::State::NotLinked);
  if (status != StoreStatus::Ok) return finish(attempt, DelegatedOutcome::State::Unavailable);
  const int64_t now = now_s();
  const bool refused = tokens.access_token == attempt->refused_token;
  const bool expired = tokens.expires_at != 0 && tokens.expires_at <= now;
  const bool usable = !refused && !renewal_due(tokens.updated_at, tokens.expires_at,
                                               attempt->credential.refresh_before_expiry_s, now);
  if (attempt->locked) {
    // Renewed by another between our read and our lock: use theirs, do not spend the refresh token again.
    if (tokens.access_token != attempt->seen_access_token && !refused && !expired)
      return finish(attempt, DelegatedOutcome::State::Ready, tokens.access_token);
    return redeem_refresh(attempt, std::move(tokens));
  }
  if (usable) return finish(attempt, DelegatedOutcome::State::Ready, tokens.access_token);
  if (tokens.refresh_token.empty()) {
    // Nothing to renew with: use it while it lasts, then the user must link again.
    if (!refused && !expired) return finish(attempt, DelegatedOutcome::State::Ready, tokens.access_token);
    attempt->outcome->refresh_refused = true;
    store_.erase(attempt->user, nullptr);
    return finish(attempt, DelegatedOutcome::State::NotLinked);
  }
  attempt->seen_access_token = tokens.access_token;
  acquire_lock(attempt);
}

void DelegatedTokens::acquire_lock(const AttemptPtr& attempt) {
  attempt->lock_owner = random_token(16);
  store_.lock(attempt->user, attempt->lock_owner, kLockTtlMs,
              [this, weak = std::weak_ptr<Attempt>(attempt)](StoreStatus status) {
                if (auto attempt = weak.lock()) on_locked(attempt, status);
              });
}

void DelegatedTokens::on_locked(const AttemptPtr& attempt, StoreStatus status) {
  switch (status) {
    case StoreStatus::Ok:
      attempt->locked = true;
      return load(attempt);  // read again under the lock: the holder before us may have renewed
    case StoreStatus::Conflict:
      return poll_later(attempt);
    default:
      return finish(attempt, DelegatedOutcome::State::Unavailable);
  }
}

void DelegatedTokens::poll_later(const AttemptPtr& attempt) {
  // Past the lock's lifetime its holder is gone and the lock expired: we would have got it.
  if (++attempt->polls * kLockPollMs > 2 * kLockTtlMs) return finish(attempt, DelegatedOutcome::State::Unavailable);
  if (attempt->timer == nullptr) attempt->timer = evtimer_new(attempt->context.loop->base(), &on_poll_timer, attempt.get());
  const timeval delay{0, static_cast<suseconds_t>(kLockPollMs * 1000)};
  evtimer_add(attempt->timer, &delay);
}

// Owner: the attempt, which frees this timer before it dies.
void DelegatedTokens::on_poll_timer(int, short, void* raw) noexcept {
  auto* attempt = static_cast<Attempt*>(raw);
  try {
    attempt->owner->load(attempt->shared_from_this());
  } catch (const std::exception& e) {
    spdlog::error("delegated token renewal: {}", e.what());
  }
}

void DelegatedTokens::redeem_refresh(const AttemptPtr& attempt, UserTokens current) {
  // The server's metadata is needed only now: a stored token that is still good is used even
  // while the downstream server cannot be reached.
  if (attempt->token_endpoint.empty()) {
    if (!attempt->metadata_waiter) {
      // Owner: the attempt; the server reaches it through a weak pointer and posts the resume.
      attempt->metadata_waiter = std::make_shared<auth::Waiter>([this, weak = std::weak_ptr<Attempt>(attempt), current] {
        if (auto attempt = weak.lock()) redeem_refresh(attempt, current);
      });
    }
    const auth::WaitHandle wait{attempt->context.loop, attempt->metadata_waiter};
    switch (attempt->server_state->ensure_metadata(attempt->context, &wait)) {
      case auth::AuthorizationServer::Availability::Waiting:
        return;
      case auth::AuthorizationServer::Availability::Unavailable:
        attempt->outcome->retry_after_s = std::max(1, attempt->server_state->retry_after_s());
        return finish(attempt, DelegatedOutcome::State::Unavailable);
      case auth::AuthorizationServer::Availability::Ready:
        break;
    }
    const auto metadata = attempt->server_state->metadata();
    attempt->token_endpoint = metadata ? auth::metadata_string(*metadata, "token_endpoint") : "";
    if (attempt->token_endpoint.empty()) return finish(attempt, DelegatedOutcome::State::Unavailable);
  }
  attempt->seen_access_token = current.access_token;
  auto previous = std::make_shared<UserTokens>(std::move(current));
  // Owner of the callback: the loop's Fetcher, which never calls it after the worker is gone.
  post_token_request(*attempt->context.fetcher, attempt->token_endpoint, attempt->credential, attempt->server,
                     refresh_body(attempt->credential, previous->refresh_token),
                     [this, weak = std::weak_ptr<Attempt>(attempt), previous](upstream::FetchResult& result) {
                       auto attempt = weak.lock();
                       if (!attempt) return;
                       const int64_t now = now_s();
                       auto renewed = result.ok() ? tokens_from_token_response(result.body, previous.get(), now) : std::nullopt;
                       if (renewed) {
                         if (metrics_ != nullptr) metrics_->record_credential_event("refresh", attempt->credential.name, "ok");
                         // The lock is held until the write lands: a waiter must read the rotated token, not spend the old one.
                         store_.save(attempt->user, *renewed, [this, weak, access = renewed->access_token](StoreStatus status) {
                           auto attempt = weak.lock();
                           if (!attempt) return;
                           if (status != StoreStatus::Ok)
                             spdlog::error("credential '{}': a renewed token could not be stored; the user may have to link again",
                                           attempt->credential.name);
                           finish(attempt, DelegatedOutcome::State::Ready, access);
                         });
                         return;
                       }
                       on_refresh_answer(attempt, result);
                     });
}

void DelegatedTokens::on_refresh_answer(const AttemptPtr& attempt, upstream::FetchResult& result) {
  const std::string error = token_error_code(result);
  const bool rejected = error == "invalid_grant";
  if (metrics_ != nullptr) metrics_->record_credential_event("refresh", attempt->credential.name, rejected ? "rejected" : "failed");
  observability::LogEvent(spdlog::level::warn, "delegated token renewal failed")
      .field("credential", attempt->credential.name)
      .field("subject", attempt->user.subject)
      .field("status", static_cast<int64_t>(result.status))
      .field("error", error.empty() ? result.detail : error)
      .emit();
  if (!rejected) {
    attempt->outcome->retry_after_s = kRenewalFailedRetryS;
    return finish(attempt, DelegatedOutcome::State::Unavailable);
  }
  // The grant is dead (revoked, expired, or a rotated token replayed): forget it so the next
  // request asks the user to link again instead of failing the same way.
  attempt->outcome->refresh_refused = true;
  store_.erase(attempt->user, [this, weak = std::weak_ptr<Attempt>(attempt)](StoreStatus) {
    if (auto attempt = weak.lock()) finish(attempt, DelegatedOutcome::State::NotLinked);
  });
}

// Every way an attempt ends comes here, so a refresh lock it holds is always released (a
// lock left behind would stall the user's next renewal for its whole lifetime).
void DelegatedTokens::finish(const AttemptPtr& attempt, DelegatedOutcome::State state, const std::string& access_token) {
  if (attempt->locked) {
    store_.unlock(attempt->user, attempt->lock_owner);
    attempt->locked = false;
  }
  attempt->outcome->state = state;
  if (state == DelegatedOutcome::State::Ready) attempt->outcome->header_value = "Bearer " + access_token;
  if (attempt->timer != nullptr) evtimer_del(attempt->timer);
  attempts_.erase(attempt->map_key);
  auth::resume_waiters(attempt->waiters);
}

}  // namespace mcpgate::credentials
