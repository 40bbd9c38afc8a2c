// Token checks of one loop, so a client's repeated requests skip the signature check
// or the call to the IdP. Keyed by route and SHA-256 of the token (the token itself
// is not kept); a positive entry never outlives its token; failures are kept briefly.
// Bounded as a segmented LRU: a token enters on probation and is protected once used again,
// so a flood of tokens seen once (forged, or each new) evicts only other such tokens, never
// the ones clients keep using; a refusal is never protected, however often it is replayed.
// Loop-local: no lock.
#pragma once

#include <cstdint>
#include <list>
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
  static constexpr std::size_t kMaxProtected = kMaxEntries * 4 / 5;

  static std::string key_for(std::string_view route, std::string_view token);
  struct Entry {
    AuthStatus status = AuthStatus::Ok;
    Identity identity;      // when status is Ok
    int64_t valid_until = 0;  // unix seconds
  };

  // The cached outcome if still valid at `now_s`.
  const Entry* find(const std::string& key, int64_t now_s);
  void insert(const std::string& key, Entry entry);
  void clear();
  std::size_t size() const { return index_.size(); }

 private:
  struct Slot {
    std::string key;
    Entry entry;
    bool protected_segment = false;
  };
  using Segment = std::list<Slot>;  // most recently used first

  void promote(Segment::iterator slot);
  void erase(Segment::iterator slot);

  Segment probation_;
  Segment protected_;
  std::unordered_map<std::string_view, Segment::iterator> index_;  // keys view Slot::key (list nodes never move)
};

}  // namespace mcpgate::auth
