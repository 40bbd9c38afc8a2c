// The verification keys of one issuer, parsed from its JWKS document (RFC 7517),
// and the rule that picks the key for a token's kid and alg.
#pragma once

#include <cjose/jwk.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mcpgate::auth {

struct CjoseJwkRelease {
  void operator()(cjose_jwk_t* key) const noexcept { cjose_jwk_release(key); }
};
using CjoseJwkPtr = std::unique_ptr<cjose_jwk_t, CjoseJwkRelease>;

// The key families this build verifies. No OKP: Debian's cjose 0.6.2 has no
// Ed25519/EdDSA support. TODO: EdDSA once a cjose with OKP keys is packaged.
enum class KeyType { Rsa, EcP256, EcP384, EcP521 };

struct Jwk {
  std::string kid;  // "" when the JWK has none
  std::string alg;  // the JWK's own "alg", "" when absent
  KeyType type = KeyType::Rsa;
  size_t bits = 0;  // RSA modulus or EC field size
  CjoseJwkPtr key;
};

// True for the JWS algorithms the gateway can verify: RS256/384/512,
// PS256/384/512, ES256/384/512. Never "none" and never HS*: a resource server
// holds no shared secret, and HS* with a public key is the algorithm-confusion attack.
bool is_supported_jws_algorithm(std::string_view alg);

// True when a token signed with `alg` may be verified with `key`: the alg's key
// type and curve (RS*/PS* -> RSA, ES256 -> P-256, ES384 -> P-384, ES512 -> P-521)
// and, when the JWK names one, its own "alg". Checked before cjose is called,
// because Debian's cjose takes the algorithm from the token and does not check the key type.
bool jwk_fits_alg(const Jwk& key, std::string_view alg);

// Immutable once parsed, so one set can serve concurrent verifications; share
// it as a JwkSetPtr and swap the pointer on refresh.
class JwkSet {
 public:
  // The usable signing keys of a JWKS document, or nullopt with `error` set when
  // the document is not a JSON object with a "keys" array or holds no usable key.
  // Ignored: "oct" keys (an IdP never legitimately gives a resource server a
  // symmetric key), "use" other than "sig", "key_ops" without "verify", private
  // keys, RSA under 2048 bits, unknown kty/crv/alg, and keys cjose rejects.
  static std::optional<JwkSet> parse(std::string_view json, std::string* error);

  // The key for a token: with a kid, the key with exactly that kid (preferring one
  // that fits `alg` when several share it; the caller still checks jwk_fits_alg);
  // without a kid, the one key that fits `alg`, or nullptr when none or several do.
  const Jwk* find(std::string_view kid, std::string_view alg) const;

  const std::vector<Jwk>& keys() const { return keys_; }
  size_t size() const { return keys_.size(); }
  // How many entries of the document were skipped as unusable (for a log line).
  size_t ignored() const { return ignored_; }

 private:
  std::vector<Jwk> keys_;
  size_t ignored_ = 0;
};
using JwkSetPtr = std::shared_ptr<const JwkSet>;

}  // namespace mcpgate::auth
