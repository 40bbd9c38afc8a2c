#include "credentials/token_sealer.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <memory>

#include "core/base64url.h"
#include <stdexcept>

namespace mcpgate::credentials {
namespace {

constexpr std::size_t kNonceBytes = 12;
constexpr std::size_t kTagBytes = 16;

using CipherContextPtr = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

std::string hex(const unsigned char* bytes, std::size_t length) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < length; ++i) {
    out.push_back(kDigits[bytes[i] >> 4]);
    out.push_back(kDigits[bytes[i] & 15]);
  }
  return out;
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  unsigned char out[32];
  unsigned int length = sizeof out;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), out, &length);
  return std::string(reinterpret_cast<char*>(out), length);
}

}  // namespace

std::string random_key() {
  std::string key(32, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(key.data()), static_cast<int>(key.size())) != 1)
    throw std::runtime_error("the system's random generator failed");
  return key;
}

TokenSealer::TokenSealer(std::vector<std::string> keys) {
  if (keys.empty()) throw std::invalid_argument("a token sealer needs a key");
  for (auto& bytes : keys) {
    if (bytes.size() != 32) throw std::invalid_argument("store keys are 32 bytes");
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest);
    keys_.push_back({hex(digest, 4), std::move(bytes)});
  }
}

TokenSealer::TokenSealer(std::vector<NamedKey> keys) : keys_(std::move(keys)) {
  if (keys_.empty()) throw std::invalid_argument("a token sealer needs a key");
  for (const auto& key : keys_)
    if (key.bytes.size() != 32 || key.id.empty() || key.id.find('.') != std::string::npos)
      throw std::invalid_argument("sealing keys are 32 bytes with an id without '.'");
}

std::string TokenSealer::seal(std::string_view plaintext, std::string_view context) const {
  const NamedKey& key = keys_.front();
  std::string out(kNonceBytes + plaintext.size() + kTagBytes, '\0');
  auto* bytes = reinterpret_cast<unsigned char*>(out.data());
  // Random 96-bit nonces: safe for far more writes than one key will ever see (NIST SP 800-38D).
  if (RAND_bytes(bytes, kNonceBytes) != 1) throw std::runtime_error("the system's random generator failed");
  CipherContextPtr ctx(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free);
  int length = 0;
  const bool ok =
      ctx && EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, reinterpret_cast<const unsigned char*>(key.bytes.data()), bytes) == 1 &&
      EVP_EncryptUpdate(ctx.get(), nullptr, &length, reinterpret_cast<const unsigned char*>(context.data()), static_cast<int>(context.size())) == 1 &&
      EVP_EncryptUpdate(ctx.get(), bytes + kNonceBytes, &length, reinterpret_cast<const unsigned char*>(plaintext.data()),
                        static_cast<int>(plaintext.size())) == 1 &&
      EVP_EncryptFinal_ex(ctx.get(), bytes + kNonceBytes + length, &length) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes, bytes + kNonceBytes + plaintext.size()) == 1;
  if (!ok) throw std::runtime_error("AES-256-GCM encryption failed");
  return key.id + "." + core::base64url_encode(out);
}

std::optional<std::string> TokenSealer::open(std::string_view sealed, std::string_view context) const {
  const auto dot = sealed.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  const std::string_view id = sealed.substr(0, dot);
  const NamedKey* key = nullptr;
  for (const NamedKey& candidate : keys_)
    if (candidate.id == id) key = &candidate;
  if (key == nullptr) return std::nullopt;
  const auto raw = core::base64url_decode(sealed.substr(dot + 1));
  if (!raw || raw->size() < kNonceBytes + kTagBytes) return std::nullopt;
  const auto* bytes = reinterpret_cast<const unsigned char*>(raw->data());
  const std::size_t text_length = raw->size() - kNonceBytes - kTagBytes;
  std::string plaintext(text_length, '\0');
  CipherContextPtr ctx(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free);
  int length = 0;
  std::string tag = raw->substr(kNonceBytes + text_length);
  const bool ok =
      ctx && EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, reinterpret_cast<const unsigned char*>(key->bytes.data()), bytes) == 1 &&
      EVP_DecryptUpdate(ctx.get(), nullptr, &length, reinterpret_cast<const unsigned char*>(context.data()), static_cast<int>(context.size())) == 1 &&
      EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(plaintext.data()), &length, bytes + kNonceBytes,
                        static_cast<int>(text_length)) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagBytes, tag.data()) == 1 &&
      EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(plaintext.data()) + length, &length) == 1;
  if (!ok) return std::nullopt;
  return plaintext;
}

std::string TokenSealer::sign(std::string_view purpose, std::string_view data) const {
  const std::string derived = hmac_sha256(keys_.front().bytes, purpose);
  return hmac_sha256(derived, data);
}

bool TokenSealer::verify(std::string_view purpose, std::string_view data, std::string_view signature) const {
  bool matched = false;
  for (const NamedKey& key : keys_) {
    const std::string expected = hmac_sha256(hmac_sha256(key.bytes, purpose), data);
    matched |= expected.size() == signature.size() && CRYPTO_memcmp(expected.data(), signature.data(), expected.size()) == 0;
  }
  return matched;
}

}  // namespace mcpgate::credentials
