#include "auth/jwks.h"

#include <cjose/header.h>
#include <jansson.h>

#include <array>

#include "core/base64url.h"

namespace mcpgate::auth {
namespace {

using JsonPtr = std::unique_ptr<json_t, decltype(&json_decref)>;

// A JWKS larger than this is not a key set but an attack or a mistake.
constexpr size_t kMaxJwksBytes = 1024 * 1024;
constexpr size_t kMinRsaBits = 2048;

struct AlgFamily {
  std::string_view alg;
  KeyType type;
};
constexpr std::array<AlgFamily, 9> kAlgFamilies = {{
    {"RS256", KeyType::Rsa}, {"RS384", KeyType::Rsa}, {"RS512", KeyType::Rsa},
    {"PS256", KeyType::Rsa}, {"PS384", KeyType::Rsa}, {"PS512", KeyType::Rsa},
    {"ES256", KeyType::EcP256}, {"ES384", KeyType::EcP384}, {"ES512", KeyType::EcP521},
}};

std::optional<KeyType> key_type_for_alg(std::string_view alg) {
  for (const auto& family : kAlgFamilies)
    if (family.alg == alg) return family.type;
  return std::nullopt;
}

std::string_view string_member(json_t* object, const char* name) {
  json_t* value = json_object_get(object, name);
  return json_is_string(value) ? std::string_view(json_string_value(value), json_string_length(value))
                               : std::string_view();
}

// A member that is present but not a string makes the whole JWK suspect.
bool optional_string_ok(json_t* object, const char* name) {
  json_t* value = json_object_get(object, name);
  return value == nullptr || json_is_string(value);
}

bool allows_verify(json_t* jwk) {
  if (!optional_string_ok(jwk, "use") || !optional_string_ok(jwk, "kid") || !optional_string_ok(jwk, "alg"))
    return false;
  if (json_object_get(jwk, "use") != nullptr && string_member(jwk, "use") != "sig") return false;
  json_t* ops = json_object_get(jwk, "key_ops");
  if (ops == nullptr) return true;
  if (!json_is_array(ops)) return false;
  size_t index;
  json_t* op;
  json_array_foreach(ops, index, op) {
    if (json_is_string(op) && std::string_view(json_string_value(op)) == "verify") return true;
  }
  return false;
}

std::optional<KeyType> declared_key_type(json_t* jwk) {
  const std::string_view kty = string_member(jwk, "kty");
  if (kty == "RSA") return KeyType::Rsa;
  if (kty != "EC") return std::nullopt;  // "oct" deliberately, "OKP" for want of cjose support
  const std::string_view crv = string_member(jwk, "crv");
  if (crv == "P-256") return KeyType::EcP256;
  if (crv == "P-384") return KeyType::EcP384;
  if (crv == "P-521") return KeyType::EcP521;
  return std::nullopt;
}

// cjose's view of the imported key must agree with what the JSON declared.
bool cjose_key_matches(const cjose_jwk_t* key, KeyType type, size_t bits) {
  cjose_err err;
  const cjose_jwk_kty_t kty = cjose_jwk_get_kty(key, &err);
  if (type == KeyType::Rsa) return kty == CJOSE_JWK_KTY_RSA && bits >= kMinRsaBits;
  if (kty != CJOSE_JWK_KTY_EC) return false;
  const cjose_jwk_ec_curve curve = cjose_jwk_EC_get_curve(key, &err);
  switch (type) {
    case KeyType::EcP256: return curve == CJOSE_JWK_EC_P_256;
    case KeyType::EcP384: return curve == CJOSE_JWK_EC_P_384;
    case KeyType::EcP521: return curve == CJOSE_JWK_EC_P_521;
    case KeyType::Rsa: break;
  }
  return false;
}

// The key's numbers are base64url strings (RFC 7518 §6): checked here, because cjose aborts the
// process on some malformed Base64 instead of failing the import, and a JWKS comes from the IdP.
bool key_members_decode(json_t* object, KeyType type) {
  static constexpr std::array<const char*, 2> kRsaMembers{"n", "e"}, kEcMembers{"x", "y"};
  for (const char* member : type == KeyType::Rsa ? kRsaMembers : kEcMembers) {
    const char* text = json_string_value(json_object_get(object, member));
    if (text == nullptr || *text == '\0') return false;
    const auto decoded = core::base64url_decode(text);
    if (!decoded || decoded->empty()) return false;
  }
  return true;
}

std::optional<Jwk> usable_key(json_t* object) {
  if (!json_is_object(object) || !allows_verify(object)) return std::nullopt;
  // Private material has no place in a JWKS (and would be decoded by cjose unchecked).
  for (const char* member : {"d", "p", "q", "dp", "dq", "qi"})
    if (json_object_get(object, member) != nullptr) return std::nullopt;
  const std::optional<KeyType> type = declared_key_type(object);
  if (!type) return std::nullopt;
  Jwk jwk;
  jwk.kid = string_member(object, "kid");
  jwk.alg = string_member(object, "alg");
  if (!jwk.alg.empty() && key_type_for_alg(jwk.alg) != type) return std::nullopt;
  jwk.type = *type;
  if (!key_members_decode(object, jwk.type)) return std::nullopt;
  cjose_err err;
  jwk.key.reset(cjose_jwk_import_json(reinterpret_cast<cjose_header_t*>(object), &err));
  if (!jwk.key) return std::nullopt;
  jwk.bits = cjose_jwk_get_keysize(jwk.key.get(), &err);
  if (!cjose_key_matches(jwk.key.get(), jwk.type, jwk.bits)) return std::nullopt;
  return jwk;
}

void set_error(std::string* error, std::string text) {
  if (error != nullptr) *error = std::move(text);
}

}  // namespace

bool is_supported_jws_algorithm(std::string_view alg) { return key_type_for_alg(alg).has_value(); }

bool jwk_fits_alg(const Jwk& key, std::string_view alg) {
  const std::optional<KeyType> type = key_type_for_alg(alg);
  if (!type || *type != key.type || !key.key) return false;
  return key.alg.empty() || key.alg == alg;
}

std::optional<JwkSet> JwkSet::parse(std::string_view json, std::string* error) {
  if (json.size() > kMaxJwksBytes) {
    set_error(error, "JWKS document is larger than 1 MiB");
    return std::nullopt;
  }
  json_error_t json_error;
  JsonPtr root(json_loadb(json.data(), json.size(), JSON_REJECT_DUPLICATES, &json_error), &json_decref);
  if (!root) {
    set_error(error, std::string("JWKS is not valid JSON: ") + json_error.text);
    return std::nullopt;
  }
  json_t* keys = json_object_get(root.get(), "keys");
  if (!json_is_array(keys)) {
    set_error(error, "JWKS has no \"keys\" array");
    return std::nullopt;
  }
  JwkSet set;
  size_t index;
  json_t* object;
  json_array_foreach(keys, index, object) {
    if (std::optional<Jwk> jwk = usable_key(object)) {
      set.keys_.push_back(std::move(*jwk));
    } else {
      ++set.ignored_;
    }
  }
  if (set.keys_.empty()) {
    // An empty set would replace the last good keys and deny every token.
    set_error(error, "JWKS has no usable signing key (" + std::to_string(set.ignored_) + " ignored)");
    return std::nullopt;
  }
  return set;
}

const Jwk* JwkSet::find(std::string_view kid, std::string_view alg) const {
  if (!kid.empty()) {
    const Jwk* same_kid = nullptr;
    for (const Jwk& key : keys_) {
      if (key.kid != kid) continue;
      if (jwk_fits_alg(key, alg)) return &key;
      if (same_kid == nullptr) same_kid = &key;
    }
    return same_kid;
  }
  // Without a kid, require one unambiguous key: trying each would multiply the
  // cost of every forged token and blur which key actually vouched for it.
  const Jwk* only = nullptr;
  for (const Jwk& key : keys_) {
    if (!jwk_fits_alg(key, alg)) continue;
    if (only != nullptr) return nullptr;
    only = &key;
  }
  return only;
}

}  // namespace mcpgate::auth
