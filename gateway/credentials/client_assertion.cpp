#include "credentials/client_assertion.h"

#include <openssl/bio.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <memory>

#include "core/base64url.h"
#include "core/json.h"
#include "credentials/connect_link.h"

namespace mcpgate::credentials {
namespace {

using KeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

KeyPtr load_key(const std::string& pem) {
  const std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
  return KeyPtr(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr, &EVP_PKEY_free);
}

// SHA-256 signature of `input`: PKCS#1 v1.5 for RSA; for EC, JOSE's fixed-size r || s (RFC 7518 §3.4)
// instead of OpenSSL's DER.
std::optional<std::string> sign_sha256(EVP_PKEY* key, const std::string& input) {
  const std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  std::size_t length = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &length, reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1)
    return std::nullopt;
  std::string signature(length, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &length,
                     reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1)
    return std::nullopt;
  signature.resize(length);
  if (EVP_PKEY_id(key) != EVP_PKEY_EC) return signature;
  const auto* der = reinterpret_cast<const unsigned char*>(signature.data());
  const std::unique_ptr<ECDSA_SIG, decltype(&ECDSA_SIG_free)> parsed(d2i_ECDSA_SIG(nullptr, &der, static_cast<long>(length)),
                                                                   &ECDSA_SIG_free);
  if (!parsed) return std::nullopt;
  std::string raw(64, '\0');
  auto* out = reinterpret_cast<unsigned char*>(raw.data());
  if (BN_bn2binpad(ECDSA_SIG_get0_r(parsed.get()), out, 32) != 32 || BN_bn2binpad(ECDSA_SIG_get0_s(parsed.get()), out + 32, 32) != 32)
    return std::nullopt;
  return raw;
}

}  // namespace

std::optional<std::string> client_assertion(const config::AuthorizationServerConfig& server,
                                            const std::string& token_endpoint, int64_t now) {
  const KeyPtr key = load_key(server.client_private_key_pem);
  if (!key) return std::nullopt;
  const bool ec = EVP_PKEY_id(key.get()) == EVP_PKEY_EC;
  auto header = core::json_owned(json_pack("{s:s, s:s}", "alg", ec ? "ES256" : "RS256", "typ", "JWT"));
  if (!server.client_key_id.empty()) json_object_set_new(header.get(), "kid", json_string(server.client_key_id.c_str()));
  const auto claims = core::json_owned(json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "iss", server.client_id.c_str(), "sub",
                                                 server.client_id.c_str(), "aud", token_endpoint.c_str(), "jti",
                                                 random_token(16).c_str(), "iat", static_cast<json_int_t>(now), "exp",
                                                 static_cast<json_int_t>(now + kClientAssertionLifetimeS)));
  const std::string input =
      core::base64url_encode(core::json_text(header.get())) + "." + core::base64url_encode(core::json_text(claims.get()));
  const auto signature = sign_sha256(key.get(), input);
  if (!signature) return std::nullopt;
  return input + "." + core::base64url_encode(*signature);
}

}  // namespace mcpgate::credentials
