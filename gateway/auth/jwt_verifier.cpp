#include "auth/jwt_verifier.h"

#include <cjose/error.h>
#include <cjose/jws.h>
#include <jansson.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <memory>

#include "auth/uri.h"
#include "core/base64url.h"

namespace mcpgate::auth {

using core::base64url_decode;
namespace {

using JsonPtr = std::unique_ptr<json_t, decltype(&json_decref)>;
struct CjoseJwsRelease {
  void operator()(cjose_jws_t* jws) const noexcept { cjose_jws_release(jws); }
};
using CjoseJwsPtr = std::unique_ptr<cjose_jws_t, CjoseJwsRelease>;

JsonPtr parse_object(std::string_view text) {
  // Duplicate keys are rejected: two readers of one token must not see two values.
  JsonPtr json(json_loadb(text.data(), text.size(), JSON_REJECT_DUPLICATES, nullptr), &json_decref);
  return json;
}

struct DecodedToken {
  JsonPtr header{nullptr, &json_decref};
  std::string payload;
  std::string signature;
};

AuthStatus decode_token(std::string_view token, DecodedToken& out) {
  if (token.empty()) return AuthStatus::TokenMissing;
  if (token.size() > kMaxJwtBytes) return AuthStatus::TokenMalformed;
  const size_t first = token.find('.');
  const size_t second = first == std::string_view::npos ? first : token.find('.', first + 1);
  if (second == std::string_view::npos || token.find('.', second + 1) != std::string_view::npos)
    return AuthStatus::TokenMalformed;
  auto header = base64url_decode(token.substr(0, first));
  auto payload = base64url_decode(token.substr(first + 1, second - first - 1));
  auto signature = base64url_decode(token.substr(second + 1));
  if (!header || !payload || !signature || header->empty() || payload->empty()) return AuthStatus::TokenMalformed;
  out.header = parse_object(*header);
  if (!out.header) return AuthStatus::TokenMalformed;
  out.payload = std::move(*payload);
  out.signature = std::move(*signature);
  return AuthStatus::Ok;
}

// Reads an optional string member; false when it is present with another type.
bool optional_string(json_t* object, const char* name, std::string& out) {
  json_t* value = json_object_get(object, name);
  if (value == nullptr) return true;
  if (!json_is_string(value)) return false;
  out.assign(json_string_value(value), json_string_length(value));
  return true;
}

bool iequals(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](unsigned char x, unsigned char y) {
    return std::tolower(x) == std::tolower(y);
  });
}

// The members this verifier relies on, with their types checked. Key-carrying
// members (jku, jwk, x5u, x5c) are ignored: keys come from the issuer's JWKS only.
AuthStatus read_header(json_t* header, JwtHeader& out) {
  if (!json_is_object(header) || !json_is_string(json_object_get(header, "alg"))) return AuthStatus::HeaderInvalid;
  std::string cty;
  if (!optional_string(header, "alg", out.alg) || !optional_string(header, "kid", out.kid) ||
      !optional_string(header, "typ", out.typ) || !optional_string(header, "cty", cty))
    return AuthStatus::HeaderInvalid;
  // Present but empty is a malformed header, not an absent member.
  if ((json_object_get(header, "kid") != nullptr && out.kid.empty()) ||
      (json_object_get(header, "typ") != nullptr && out.typ.empty()))
    return AuthStatus::HeaderInvalid;
  // No extension is understood, so any "crit" must be refused (RFC 7515 4.1.11),
  // and a nested JWT is not an access token.
  if (json_object_get(header, "crit") != nullptr || iequals(cty, "JWT")) return AuthStatus::HeaderInvalid;
  return AuthStatus::Ok;
}

AuthStatus check_header(const JwtHeader& header, const JwtRules& rules) {
  const auto& allowed = rules.algorithms;
  if (!is_supported_jws_algorithm(header.alg) ||
      std::find(allowed.begin(), allowed.end(), header.alg) == allowed.end())
    return AuthStatus::AlgorithmNotAllowed;
  // RFC 9068 access tokens say at+jwt; plain JWT is what most IdPs still send.
  // Anything else (an ID token, a logout token) must not pass as an access token.
  if (!header.typ.empty() && !iequals(header.typ, "JWT") && !iequals(header.typ, "at+jwt") &&
      !iequals(header.typ, "application/at+jwt"))
    return AuthStatus::TypeNotAllowed;
  return AuthStatus::Ok;
}

size_t signature_bytes(const Jwk& key) {
  switch (key.type) {
    case KeyType::Rsa: return (key.bits + 7) / 8;
    case KeyType::EcP256: return 64;
    case KeyType::EcP384: return 96;
    case KeyType::EcP521: return 132;
  }
  return 0;
}

// Done here, before cjose sees the key: Debian's cjose picks the algorithm from
// the token header and would, say, use an RSA key's bytes as an HMAC secret.
// The signature length check also refuses what cjose 0.6.2's ECDSA split misreads.
AuthStatus check_key(const Jwk* key, const JwtHeader& header, std::string_view signature) {
  if (key == nullptr) return AuthStatus::KeyNotFound;
  if (!jwk_fits_alg(*key, header.alg)) return AuthStatus::KeyAlgorithmMismatch;
  if (signature.size() != signature_bytes(*key)) return AuthStatus::SignatureInvalid;
  return AuthStatus::Ok;
}

AuthStatus verify_signature(std::string_view token, const Jwk& key, std::string_view payload) {
  cjose_err err{};
  CjoseJwsPtr jws(cjose_jws_import(token.data(), token.size(), &err));
  if (!jws) return AuthStatus::InternalError;  // the shape and header were already checked
  if (!cjose_jws_verify(jws.get(), key.key.get(), &err))
    return err.code == CJOSE_ERR_NO_MEMORY ? AuthStatus::InternalError : AuthStatus::SignatureInvalid;
  uint8_t* plaintext = nullptr;  // owned by jws
  size_t length = 0;
  if (!cjose_jws_get_plaintext(jws.get(), &plaintext, &length, &err) || (plaintext == nullptr && length != 0))
    return AuthStatus::InternalError;
  // The claims checked next must be exactly the bytes cjose verified.
  const std::string_view verified(reinterpret_cast<const char*>(plaintext), length);
  return verified == payload ? AuthStatus::Ok : AuthStatus::InternalError;
}

int64_t saturating_add(int64_t a, int64_t b) {
  int64_t sum;
  if (!__builtin_add_overflow(a, b, &sum)) return sum;
  return b > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
}

// A NumericDate (RFC 7519 section 2): integer, or a real rounded outwards
// (`round_up` for nbf/iat, down for exp) so a fraction never widens validity.
AuthStatus read_time(json_t* claims, const char* name, bool round_up, std::optional<int64_t>& out) {
  json_t* value = json_object_get(claims, name);
  if (value == nullptr) return AuthStatus::Ok;
  if (json_is_integer(value)) {
    out = json_integer_value(value);
    return AuthStatus::Ok;
  }
  if (!json_is_real(value)) return AuthStatus::ClaimInvalid;
  const double real = json_real_value(value);
  if (!std::isfinite(real) || std::fabs(real) > 1e15) return AuthStatus::ClaimInvalid;
  out = static_cast<int64_t>(round_up ? std::ceil(real) : std::floor(real));
  return AuthStatus::Ok;
}

AuthStatus check_times(json_t* claims, int64_t leeway, int64_t now_s, Identity& identity) {
  std::optional<int64_t> exp, nbf, iat;
  for (AuthStatus status : {read_time(claims, "exp", false, exp), read_time(claims, "nbf", true, nbf),
                            read_time(claims, "iat", true, iat)})
    if (status != AuthStatus::Ok) return status;
  if (!exp) return AuthStatus::MissingClaim;
  if (now_s > saturating_add(*exp, leeway)) return AuthStatus::Expired;
  if (nbf && saturating_add(now_s, leeway) < *nbf) return AuthStatus::NotYetValid;
  if (iat && *iat > saturating_add(now_s, leeway)) return AuthStatus::IssuedInFuture;
  identity.expires_at = *exp;
  return AuthStatus::Ok;
}

AuthStatus check_issuer(json_t* claims, const std::string& issuer, Identity& identity) {
  json_t* iss = json_object_get(claims, "iss");
  if (iss == nullptr) return AuthStatus::MissingClaim;
  if (!json_is_string(iss)) return AuthStatus::ClaimInvalid;
  identity.issuer.assign(json_string_value(iss), json_string_length(iss));
  return !issuer.empty() && identity.issuer == issuer ? AuthStatus::Ok : AuthStatus::IssuerMismatch;
}

AuthStatus check_audience(json_t* claims, const std::vector<std::string>& accepted, Identity& identity) {
  json_t* aud = json_object_get(claims, "aud");
  if (aud == nullptr) return AuthStatus::MissingClaim;
  if (json_is_string(aud)) {
    identity.audiences.emplace_back(json_string_value(aud), json_string_length(aud));
  } else if (json_is_array(aud)) {
    size_t index;
    json_t* item;
    json_array_foreach(aud, index, item) {
      if (!json_is_string(item)) return AuthStatus::ClaimInvalid;
      identity.audiences.emplace_back(json_string_value(item), json_string_length(item));
    }
  } else {
    return AuthStatus::ClaimInvalid;
  }
  for (const std::string& wanted : accepted) {
    const std::string canonical = canonical_resource_uri(wanted);
    for (const std::string& audience : identity.audiences)
      if (canonical_resource_uri(audience) == canonical) return AuthStatus::Ok;
  }
  return AuthStatus::AudienceMismatch;
}

AuthStatus check_subject(json_t* claims, Identity& identity) {
  json_t* sub = json_object_get(claims, "sub");
  if (sub == nullptr) return AuthStatus::MissingClaim;
  if (!json_is_string(sub) || json_string_length(sub) == 0) return AuthStatus::ClaimInvalid;
  identity.subject.assign(json_string_value(sub), json_string_length(sub));
  return AuthStatus::Ok;
}

// "scope" (RFC 9068, space-separated) wins over "scp" (array, or a string as some
// IdPs send it). Other types grant nothing rather than deny the token.
std::vector<std::string> read_scopes(json_t* claims) {
  if (json_t* scope = json_object_get(claims, "scope"); json_is_string(scope))
    return split_scopes(json_string_value(scope));
  json_t* scp = json_object_get(claims, "scp");
  if (json_is_string(scp)) return split_scopes(json_string_value(scp));
  std::vector<std::string> scopes;
  size_t index;
  json_t* item;
  if (json_is_array(scp)) {
    json_array_foreach(scp, index, item) {
      if (!json_is_string(item)) continue;
      for (std::string& one : split_scopes(json_string_value(item)))
        if (std::find(scopes.begin(), scopes.end(), one) == scopes.end()) scopes.push_back(std::move(one));
    }
  }
  return scopes;
}

AuthStatus fill_identity(json_t* claims, std::string_view payload, Identity& identity) {
  for (const char* name : {"client_id", "azp"}) {
    json_t* value = json_object_get(claims, name);
    if (!json_is_string(value) || json_string_length(value) == 0) continue;
    identity.client_id.assign(json_string_value(value), json_string_length(value));
    break;
  }
  identity.scopes = read_scopes(claims);
  // The signed bytes themselves: a JSON object already read without duplicate keys, so
  // re-serializing it would only cost time.
  identity.claims_json.assign(payload);
  return AuthStatus::Ok;
}

AuthStatus check_claims(json_t* claims, std::string_view payload, const JwtRules& rules, int64_t now_s,
                        Identity& identity) {
  const int64_t leeway = std::max<int64_t>(rules.leeway_s, 0);
  AuthStatus status = check_times(claims, leeway, now_s, identity);
  if (status == AuthStatus::Ok) status = check_issuer(claims, rules.issuer, identity);
  if (status == AuthStatus::Ok) status = check_audience(claims, rules.audiences, identity);
  if (status == AuthStatus::Ok) status = check_subject(claims, identity);
  if (status == AuthStatus::Ok) status = fill_identity(claims, payload, identity);
  return status;
}

// Everything after the header checks: payload, key, signature, claims.
AuthStatus verify_decoded(std::string_view token, const DecodedToken& decoded, const JwtHeader& header,
                          const JwkSet& keys, const JwtRules& rules, int64_t now_s, Identity& identity) {
  // The payload is parsed before any key is looked up, so that junk never costs
  // a JWKS refetch or an RSA operation.
  JsonPtr claims = parse_object(decoded.payload);
  if (!claims || !json_is_object(claims.get())) return AuthStatus::TokenMalformed;
  const Jwk* key = keys.find(header.kid, header.alg);
  AuthStatus status = check_key(key, header, decoded.signature);
  if (status != AuthStatus::Ok) return status;
  status = verify_signature(token, *key, decoded.payload);
  if (status != AuthStatus::Ok) return status;
  return check_claims(claims.get(), decoded.payload, rules, now_s, identity);
}

}  // namespace

std::optional<std::string> jwt_rules_error(const JwtRules& rules) {
  if (rules.issuer.empty()) return "issuer is empty";
  if (rules.audiences.empty()) return "no audience is configured: tokens for any resource would pass";
  if (rules.algorithms.empty()) return "the algorithm allowlist is empty";
  for (const std::string& alg : rules.algorithms)
    if (!is_supported_jws_algorithm(alg))
      return "algorithm \"" + alg + "\" cannot be allowed (supported: RS256/384/512, PS256/384/512, ES256/384/512)";
  if (rules.leeway_s < 0) return "leeway is negative";
  return std::nullopt;
}

JwtResult verify_jwt(std::string_view token, const JwkSet& keys, const JwtRules& rules, int64_t now_s) {
  JwtResult result;
  DecodedToken decoded;
  JwtHeader header;
  result.status = decode_token(token, decoded);
  if (result.status == AuthStatus::Ok) result.status = read_header(decoded.header.get(), header);
  if (result.status != AuthStatus::Ok) return result;
  result.kid = header.kid;
  result.status = check_header(header, rules);
  if (result.status != AuthStatus::Ok) return result;
  Identity identity;
  result.status = verify_decoded(token, decoded, header, keys, rules, now_s, identity);
  if (result.status == AuthStatus::Ok) result.identity = std::move(identity);
  return result;
}

std::optional<JwtHeader> peek_jwt_header(std::string_view token) {
  DecodedToken decoded;
  JwtHeader header;
  if (decode_token(token, decoded) != AuthStatus::Ok) return std::nullopt;
  if (read_header(decoded.header.get(), header) != AuthStatus::Ok) return std::nullopt;
  return header;
}

}  // namespace mcpgate::auth
