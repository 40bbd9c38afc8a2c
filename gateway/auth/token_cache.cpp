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
  auto found = index_.find(key);
  if (found == index_.end()) return nullptr;
  const auto slot = found->second;
  if (slot->entry.valid_until <= now_s) {
    erase(slot);
    return nullptr;
  }
  promote(slot);
  return &slot->entry;
}

void TokenCache::insert(const std::string& key, Entry entry) {
  if (auto found = index_.find(key); found != index_.end()) {
    found->second->entry = std::move(entry);
    promote(found->second);
    return;
  }
  if (index_.size() >= kMaxEntries) erase(probation_.empty() ? std::prev(protected_.end()) : std::prev(probation_.end()));
  probation_.push_front(Slot{key, std::move(entry)});
  index_.emplace(probation_.front().key, probation_.begin());
}

void TokenCache::clear() {
  index_.clear();
  probation_.clear();
  protected_.clear();
}

// Used again: to the front of the protected segment, whose least recent entry goes back on
// probation when it is full. A refusal stays on probation: bad tokens replayed, however often,
// must not push out the ones clients keep using.
void TokenCache::promote(Segment::iterator slot) {
  if (slot->entry.status != AuthStatus::Ok) {
    probation_.splice(probation_.begin(), slot->protected_segment ? protected_ : probation_, slot);
    slot->protected_segment = false;
    return;
  }
  if (slot->protected_segment) {
    protected_.splice(protected_.begin(), protected_, slot);
    return;
  }
  slot->protected_segment = true;
  protected_.splice(protected_.begin(), probation_, slot);
  if (protected_.size() > kMaxProtected) {
    const auto demoted = std::prev(protected_.end());
    demoted->protected_segment = false;
    probation_.splice(probation_.begin(), protected_, demoted);
  }
}

void TokenCache::erase(Segment::iterator slot) {
  index_.erase(slot->key);
  (slot->protected_segment ? protected_ : probation_).erase(slot);
}

}  // namespace mcpgate::auth
