#include "auth/token_cache.h"

#include <openssl/sha.h>

namespace mcpgate::auth {

std::string TokenCache::key_for(std::string_view route, std::string_view token) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), digest);
  std::string key(route);
  key.push_back('\0');
  key.append(reinterpret_cast<const char*>(digest), sizeof digest);
  return key;
}

const TokenCache::Entry* TokenCache::find(const std::string& key, int64_t now_s) {
  auto found = entries_.find(key);
  if (found == entries_.end()) return nullptr;
  if (found->second.valid_until <= now_s) {
    entries_.erase(found);
    return nullptr;
  }
  return &found->second;
}

void TokenCache::insert(const std::string& key, Entry entry) {
  if (entries_.size() >= kMaxEntries) entries_.clear();  // bounded; a flood only costs re-verification
  entries_[key] = std::move(entry);
}

}  // namespace mcpgate::auth
