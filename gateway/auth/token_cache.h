// Verified tokens of one loop, so a client's repeated requests skip the signature
// check. Keyed by route and SHA-256 of the token (the token itself is not kept);
// an entry never outlives its token. Loop-local: no lock.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "auth/identity.h"

namespace mcpgate::auth {

class TokenCache {
 public:
  static constexpr std::size_t kMaxEntries = 10000;

  static std::string key_for(std::string_view route, std::string_view token);
  // The identity if cached and unexpired at `now_s`.
  const Identity* find(const std::string& key, int64_t now_s);
  void insert(const std::string& key, const Identity& identity);
  void clear() { entries_.clear(); }
  std::size_t size() const { return entries_.size(); }

 private:
  std::unordered_map<std::string, Identity> entries_;
};

}  // namespace mcpgate::auth
