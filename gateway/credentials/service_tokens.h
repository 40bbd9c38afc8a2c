// Tokens the gateway obtains for itself with the client_credentials grant (a
// service account per credential), cached per event loop until shortly before
// they expire. One grant in flight per credential; requests wait for it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "auth/authorization_server.h"
#include "config/config.h"

namespace mcpgate::credentials {

class ServiceTokens {
 public:
  enum class State { Ready, Waiting, Unavailable };

  // The Authorization value ("Bearer ...") for `credential`, or Waiting (the grant runs;
  // `wait` resumes when it ends) or Unavailable (it failed recently; retry_after_s set).
  State get(const config::CredentialConfig& credential, auth::AuthorizationServer& server,
            const auth::FetchContext& context, const auth::WaitHandle& wait, std::string* header_value,
            int* retry_after_s);
  // The upstream refused the token: the next get() obtains a new one.
  void invalidate(const std::string& credential_name);
  // A reload may have changed what a credential asks for: forget every token; requests
  // waiting on a grant are woken and ask again.
  void clear();

 private:
  struct Entry {
    std::string access_token;
    int64_t obtained_at = 0;    // unix seconds
    int64_t expires_at = 0;
    int64_t failed_until = 0;   // after a failed grant: no new attempt before this
    bool in_flight = false;
    std::vector<auth::WaitHandle> waiters;
  };
  void request_token(const config::CredentialConfig& credential, const std::string& token_endpoint,
                     const auth::AuthorizationServer& server, const auth::FetchContext& context);

  std::map<std::string, std::shared_ptr<Entry>> entries_;  // loop-local: no lock
};

// The form body of a client_credentials token request (RFC 6749 §4.4, RFC 8707, audience).
std::string client_credentials_body(const config::CredentialConfig& credential,
                                    const config::AuthorizationServerConfig& server);

}  // namespace mcpgate::credentials
