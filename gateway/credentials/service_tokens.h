// Tokens the gateway obtains itself at a token endpoint and caches per event loop until
// shortly before they expire: client_credentials (a service account, one token per
// credential) and RFC 8693 token exchange (one token per caller and credential). One grant
// in flight per cache entry; requests wait for it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "auth/authorization_server.h"
#include "config/config.h"
#include "observability/metrics.h"

namespace mcpgate::credentials {

class ServiceTokens {
 public:
  enum class State { Ready, Waiting, Unavailable };

  explicit ServiceTokens(observability::Metrics* metrics = nullptr) : metrics_(metrics) {}

  // What a grant is for: client_credentials needs nothing more; token_exchange names the
  // caller (cache key) and carries their validated token as the subject token.
  struct Subject {
    std::string key;    // "" for client_credentials
    std::string token;  // the caller's access token (token_exchange)
  };

  // The Authorization value ("Bearer ...") for `credential`, or Waiting (the grant runs;
  // `wait` resumes when it ends) or Unavailable (it failed recently; retry_after_s set).
  State get(const config::CredentialConfig& credential, const Subject& subject, auth::AuthorizationServer& server,
            const auth::FetchContext& context, const auth::WaitHandle& wait, std::string* header_value,
            int* retry_after_s);
  // The upstream refused the token: the next get() for the same entry obtains a new one.
  void invalidate(const config::CredentialConfig& credential, const Subject& subject);
  // A reload may have changed what a credential asks for: forget every token; requests
  // waiting on a grant are woken and ask again.
  void clear();

  // Entries are dropped once expired this long, so exchanged tokens of past callers do not pile up.
  static constexpr std::size_t kSweepEvery = 256;

 private:
  struct Entry {
    std::string access_token;
    int64_t obtained_at = 0;    // unix seconds
    int64_t expires_at = 0;
    int64_t failed_until = 0;   // after a failed grant: no new attempt before this
    bool in_flight = false;
    std::vector<auth::WaitHandle> waiters;
  };
  void request_token(const config::CredentialConfig& credential, const Subject& subject, const std::string& key,
                     const std::string& token_endpoint, const auth::AuthorizationServer& server,
                     const auth::FetchContext& context);
  void sweep(int64_t now);

  std::map<std::string, std::shared_ptr<Entry>> entries_;  // loop-local: no lock
  std::size_t gets_ = 0;
  observability::Metrics* metrics_;  // outlives the loops; null in tests
};

}  // namespace mcpgate::credentials
