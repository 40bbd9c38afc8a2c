// Authenticated encryption of stored secrets (AES-256-GCM). The first key seals, every key
// opens: a rotation adds the new key in front and keeps the old ones until their entries
// are rewritten or expire. Each sealed value names its key by an id derived from the key.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mcpgate::credentials {

class TokenSealer {
 public:
  struct NamedKey {
    std::string id;     // visible ASCII without '.'
    std::string bytes;  // 32 bytes
  };
  // `keys`: 32-byte AES keys, the sealing one first; must not be empty. Ids are derived.
  explicit TokenSealer(std::vector<std::string> keys);
  // The same with the ids chosen by the operator (a session envelope's key_id).
  explicit TokenSealer(std::vector<NamedKey> keys);

  // "<key id>.<base64url(nonce | ciphertext | tag)>". `context` (the store key) is bound as
  // associated data, so a sealed value moved to another user's entry does not open.
  std::string seal(std::string_view plaintext, std::string_view context) const;
  // The plaintext, or nullopt when no key opens it (unknown key id, tampered, other context).
  std::optional<std::string> open(std::string_view sealed, std::string_view context) const;
  // An HMAC-SHA256 of `data` under a key derived from the sealing key for `purpose`.
  std::string sign(std::string_view purpose, std::string_view data) const;
  // Whether `signature` is sign(purpose, data) under any of the keys (constant time).
  bool verify(std::string_view purpose, std::string_view data, std::string_view signature) const;

  const std::string& sealing_key_id() const { return keys_.front().id; }

 private:
  // Derived ids are 8 hex digits of SHA-256(key): they name the key and reveal nothing useful.
  std::vector<NamedKey> keys_;
};

// 32 random bytes from OpenSSL's CSPRNG.
std::string random_key();

}  // namespace mcpgate::credentials
