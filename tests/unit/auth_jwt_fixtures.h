// Keys and token signing for the auth unit tests: everything is generated in
// process with cjose, so no fixture files and no network are needed.
#pragma once

#include <cjose/base64.h>
#include <cjose/header.h>
#include <cjose/jwk.h>
#include <cjose/jws.h>
#include <cjose/util.h>
#include <doctest/doctest.h>
#include <jansson.h>

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>

#include "auth/jwks.h"
#include "auth/jwt_verifier.h"

namespace auth_test {

using mcpgate::auth::CjoseJwkPtr;
using JsonPtr = std::unique_ptr<json_t, decltype(&json_decref)>;

inline constexpr int64_t kNow = 1'750'000'000;
inline constexpr std::string_view kIssuer = "https://idp.example.com";
inline constexpr std::string_view kResource = "https://mcp.example.com/notes";

inline CjoseJwkPtr generate_rsa(size_t bits = 2048) {
  static const uint8_t kExponent[] = {0x01, 0x00, 0x01};
  CjoseJwkPtr key(cjose_jwk_create_RSA_random(bits, kExponent, sizeof(kExponent), nullptr));
  REQUIRE(key);
  return key;
}

inline CjoseJwkPtr generate_ec(cjose_jwk_ec_curve curve) {
  CjoseJwkPtr key(cjose_jwk_create_EC_random(curve, nullptr));
  REQUIRE(key);
  return key;
}

// Generated once per test run: RSA generation is the slow part.
inline const cjose_jwk_t* rsa_key() {
  static CjoseJwkPtr key = generate_rsa();
  return key.get();
}
inline const cjose_jwk_t* rsa_key_2() {
  static CjoseJwkPtr key = generate_rsa();
  return key.get();
}
inline const cjose_jwk_t* ec_key() {
  static CjoseJwkPtr key = generate_ec(CJOSE_JWK_EC_P_256);
  return key.get();
}
inline const cjose_jwk_t* ec384_key() {
  static CjoseJwkPtr key = generate_ec(CJOSE_JWK_EC_P_384);
  return key.get();
}

inline JsonPtr load(std::string_view text) {
  JsonPtr json(json_loadb(text.data(), text.size(), 0, nullptr), &json_decref);
  REQUIRE_MESSAGE(json, "test JSON does not parse: " << text);
  return json;
}

inline std::string dump(json_t* json) {
  std::unique_ptr<char, decltype(&free)> text(json_dumps(json, JSON_COMPACT), &free);
  REQUIRE(text);
  return text.get();
}

// The key's public JWK with `members` (a JSON object) merged in: kid, use, alg...
inline std::string public_jwk(const cjose_jwk_t* key, std::string_view members = "{}") {
  std::unique_ptr<char, decltype(&free)> text(cjose_jwk_to_json(key, false, nullptr), &free);
  REQUIRE(text);
  JsonPtr jwk = load(text.get());
  json_object_update(jwk.get(), load(members).get());
  return dump(jwk.get());
}

inline std::string jwks(std::initializer_list<std::string> keys) {
  std::string out = R"({"keys":[)";
  for (const std::string& key : keys) out += (out.back() == '[' ? "" : ",") + key;
  return out + "]}";
}

inline mcpgate::auth::JwkSet parse_jwks(const std::string& json) {
  std::string error;
  auto set = mcpgate::auth::JwkSet::parse(json, &error);
  REQUIRE_MESSAGE(set, error);
  return std::move(*set);
}

inline std::string b64(std::string_view bytes) {
  char* out = nullptr;
  size_t length = 0;
  REQUIRE(cjose_base64url_encode(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), &out, &length,
                                 nullptr));
  std::string text(out, length);
  cjose_get_dealloc()(out);
  return text;
}

inline std::string unb64(std::string_view text) {
  uint8_t* out = nullptr;
  size_t length = 0;
  REQUIRE(cjose_base64url_decode(text.data(), text.size(), &out, &length, nullptr));
  std::string bytes(reinterpret_cast<char*>(out), length);
  cjose_get_dealloc()(out);
  return bytes;
}

// A compact JWS of `payload` under `header_json` (signed with the header's alg).
inline std::string sign(const cjose_jwk_t* key, std::string_view header_json, std::string_view payload) {
  JsonPtr header = load(header_json);
  std::unique_ptr<cjose_jws_t, decltype(&cjose_jws_release)> jws(
      cjose_jws_sign(key, reinterpret_cast<cjose_header_t*>(header.get()),
                     reinterpret_cast<const uint8_t*>(payload.data()), payload.size(), nullptr),
      &cjose_jws_release);
  REQUIRE(jws);
  const char* compact = nullptr;
  REQUIRE(cjose_jws_export(jws.get(), &compact, nullptr));
  return compact;
}

// A valid payload with `overrides` merged in; a null override removes the claim.
inline std::string claims(std::string_view overrides = "{}") {
  JsonPtr payload = load(R"({"iss":"https://idp.example.com","sub":"user-1","aud":"https://mcp.example.com/notes",)"
                         R"("exp":1750000600,"iat":1749999990,"client_id":"notes-cli","scope":"notes:read notes:write"})");
  JsonPtr extra = load(overrides);
  const char* name;
  json_t* value;
  json_object_foreach(extra.get(), name, value) {
    if (json_is_null(value)) {
      json_object_del(payload.get(), name);
    } else {
      json_object_set(payload.get(), name, value);
    }
  }
  return dump(payload.get());
}

inline mcpgate::auth::JwtRules rules() {
  mcpgate::auth::JwtRules rules;
  rules.issuer = kIssuer;
  rules.audiences = {std::string(kResource)};
  return rules;
}

// An unsigned token from raw header and payload text, for shapes that must fail before any signature check.
inline std::string unsigned_token(std::string_view header, std::string_view payload, std::string_view signature = "") {
  return b64(header) + "." + b64(payload) + "." + b64(signature);
}

}  // namespace auth_test
