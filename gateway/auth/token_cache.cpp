#include "auth/token_cache.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <memory>

namespace mcpgate::auth {

namespace {

// OpenSSL 3's one-shot SHA256() looks the algorithm up in its provider on every call; each
// request hashes its token, so the algorithm is fetched once and each thread keeps a context.
void sha256(std::string_view data, unsigned char* digest) {
  static EVP_MD* const algorithm = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  thread_local const std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  unsigned int length = 0;
  if (algorithm == nullptr || !context || EVP_DigestInit_ex(context.get(), algorithm, nullptr) != 1 ||
      EVP_DigestUpdate(context.get(), data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(context.get(), digest, &length) != 1)
    SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
}

}  // namespace

std::string TokenCache::key_for(std::string_view route, std::string_view token) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  sha256(token, digest);
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
