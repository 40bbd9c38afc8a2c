// Token checks of one loop, so a client's repeated requests skip the signature check
// or the call to the IdP. Keyed by route and SHA-256 of the token (the token itself
// is not kept); a positive entry never outlives its token; failures are kept briefly.
// Loop-local: no lock.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "auth/identity.h"
#include "auth/status.h"

namespace mcpgate::auth {

class TokenCache;

// The answer of one userinfo/introspection call, handed to every request waiting for it.
struct LookupOutcome {
  bool done = false;
  AuthStatus status = AuthStatus::InternalError;
  Identity identity;
};

class TokenCache {
 public:
  static constexpr std::size_t kMaxEntries = 10000;

  static std::string key_for(std::string_view route, std::string_view token);
  struct Entry {
    AuthStatus status = AuthStatus::Ok;
    Identity identity;      // when status is Ok
    int64_t valid_until = 0;  // unix seconds
  };

  // The cached outcome if still valid at `now_s`.
  const Entry* find(const std::string& key, int64_t now_s);
  void insert(const std::string& key, Entry entry);
  void clear() { entries_.clear(); }
  std::size_t size() const { return entries_.size(); }

 private:
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace mcpgate::auth
