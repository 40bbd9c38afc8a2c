// verify_jwt against a fixed key set (an RSA 2048 and a P-256 key made with cjose at start, as
// tests/bench/jwt_bench.cpp does), and JwkSet::parse on fuzzed JWKS documents.
//
// Input: [mode] [variant] <payload>; mode = byte 0 % 5:
//   0  the payload is a compact token, verified as a client sent it
//   1  the payload is the JWT claims, signed now with the P-256 key (header by variant)
//   2  the same with the RSA key
//   3  the payload is a JSON object merged over valid claims, signed with the P-256 key
//   4  the payload is a JWKS document; a token signed with the P-256 key is verified against it
// variant: bits 0-1 pick the JOSE header of modes 1-3, bits 2-3 the leeway (kLeeways).
//
// Checked: a signed token is never refused for its signature or key; Ok means every claim
// rule holds (iss, aud canonical, sub, exp/nbf/iat with leeway) and the Identity carries what
// the claims say (scope/scp, client_id/azp, exp); claims that break no rule always pass;
// peek_jwt_header agrees with verify_jwt; parsed key sets hold only keys that fit their alg.
#include <cjose/header.h>
#include <cjose/jwk.h>
#include <cjose/jws.h>
#include <jansson.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "auth/jwks.h"
#include "auth/jwt_verifier.h"
#include "auth/uri.h"
#include "core/json.h"
#include "fuzz_support.h"

namespace {

using mcpgate::auth::AuthStatus;
using mcpgate::auth::auth_status_name;
using mcpgate::auth::CjoseJwkPtr;
using mcpgate::auth::JwkSet;
using mcpgate::auth::JwtResult;
using mcpgate::auth::JwtRules;
using mcpgate::core::json_owned;
using mcpgate::core::JsonPtr;
using mcpgate::fuzz::printable;

constexpr int64_t kNow = 1'750'000'000;
constexpr const char* kIssuer = "https://idp.example.com";
constexpr const char* kAudience = "https://mcp.example.com/notes";
constexpr int64_t kLeeways[4] = {60, 0, 600, -5};

struct Header {
  const char* json;
  AuthStatus forced;  // what verify_jwt must answer whatever the claims, or Ok when the claims decide
};
const Header kEcHeaders[4] = {
    {R"({"alg":"ES256","kid":"ec-1","typ":"at+jwt"})", AuthStatus::Ok},
    {R"({"alg":"ES256","typ":"JWT"})", AuthStatus::Ok},  // no kid: the one key that fits
    {R"({"alg":"ES256","kid":"ec-1"})", AuthStatus::Ok},
    {R"({"alg":"ES256","kid":"ec-1","typ":"id_token+jwt"})", AuthStatus::TypeNotAllowed},
};
const Header kRsaHeaders[4] = {
    {R"({"alg":"RS256","kid":"rsa-1","typ":"at+jwt"})", AuthStatus::Ok},
    {R"({"alg":"PS256","kid":"rsa-any","typ":"application/at+jwt"})", AuthStatus::Ok},
    {R"({"alg":"RS256"})", AuthStatus::KeyNotFound},  // rsa-1 and rsa-any both fit: ambiguous
    {R"({"alg":"PS256","kid":"rsa-1"})", AuthStatus::KeyAlgorithmMismatch},  // rsa-1 says RS256
};

struct Fixture {
  CjoseJwkPtr rsa, ec;
  std::optional<JwkSet> keys;
  std::string ec_token;  // valid at kNow under the rules, kid ec-1
};
Fixture* fixture = nullptr;

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "fuzz_jwt: %s\n", what);
  std::abort();
}

JsonPtr load(std::string_view text, size_t flags = 0) {
  return json_owned(json_loadb(text.data(), text.size(), flags, nullptr));
}

std::string public_jwk(const cjose_jwk_t* key, std::string_view members) {
  std::unique_ptr<char, decltype(&free)> text(cjose_jwk_to_json(key, false, nullptr), &free);
  if (!text) die("cjose_jwk_to_json failed");
  JsonPtr jwk = load(text.get());
  json_object_update(jwk.get(), load(members).get());
  return mcpgate::core::json_text(jwk.get());
}

// A compact JWS of `payload`, or nullopt when cjose will not sign it.
std::optional<std::string> sign(const cjose_jwk_t* key, const char* header_json, std::string_view payload) {
  JsonPtr header = load(header_json);
  std::unique_ptr<cjose_jws_t, decltype(&cjose_jws_release)> jws(
      cjose_jws_sign(key, reinterpret_cast<cjose_header_t*>(header.get()),
                     reinterpret_cast<const uint8_t*>(payload.data()), payload.size(), nullptr),
      &cjose_jws_release);
  const char* compact = nullptr;
  if (!jws || !cjose_jws_export(jws.get(), &compact, nullptr)) return std::nullopt;
  return std::string(compact);
}

std::string valid_claims() {
  return std::string(R"({"iss":")") + kIssuer + R"(","sub":"alice","aud":")" + kAudience + R"(","exp":)" +
         std::to_string(kNow + 600) + R"(,"iat":)" + std::to_string(kNow - 10) +
         R"(,"client_id":"notes-cli","scope":"notes:read notes:write"})";
}

JwtRules rules_for(uint8_t variant) {
  JwtRules rules;
  rules.issuer = kIssuer;
  rules.audiences = {kAudience, "https://other.example.com/mcp"};
  rules.algorithms = {"RS256", "PS256", "ES256"};
  rules.leeway_s = kLeeways[(variant >> 2) & 3];
  return rules;
}

// ---- what an Ok result promises, checked against the claims parsed independently

std::optional<int64_t> numeric_date(json_t* claims, const char* name, bool round_up) {
  json_t* value = json_object_get(claims, name);
  if (value == nullptr) return std::nullopt;
  if (json_is_integer(value)) return json_integer_value(value);
  FUZZ_CHECK(json_is_real(value), std::string(name) + " is neither integer nor real");
  const double real = json_real_value(value);
  return static_cast<int64_t>(round_up ? std::ceil(real) : std::floor(real));
}

std::string string_claim(json_t* claims, const char* name) {
  json_t* value = json_object_get(claims, name);
  return json_is_string(value) ? std::string(json_string_value(value), json_string_length(value)) : std::string();
}

void check_ok(const JwtResult& result, std::string_view payload, const JwtRules& rules) {
  const auto& identity = result.identity;
  const std::string what = printable(payload);
  JsonPtr claims = load(payload, JSON_REJECT_DUPLICATES);
  FUZZ_CHECK(claims && json_is_object(claims.get()), what);
  const int64_t leeway = std::max<int64_t>(rules.leeway_s, 0);

  FUZZ_CHECK(identity.issuer == rules.issuer && string_claim(claims.get(), "iss") == rules.issuer, what);
  FUZZ_CHECK(!identity.subject.empty() && identity.subject == string_claim(claims.get(), "sub"), what);

  const auto exp = numeric_date(claims.get(), "exp", false);
  FUZZ_CHECK(exp && identity.expires_at == *exp && kNow - leeway <= *exp, what);
  if (auto nbf = numeric_date(claims.get(), "nbf", true)) FUZZ_CHECK(*nbf <= kNow + leeway, what);
  if (auto iat = numeric_date(claims.get(), "iat", true)) FUZZ_CHECK(*iat <= kNow + leeway, what);

  bool audience_matches = false;
  for (const std::string& audience : identity.audiences)
    for (const std::string& accepted : rules.audiences)
      audience_matches |= mcpgate::auth::canonical_resource_uri(audience) == mcpgate::auth::canonical_resource_uri(accepted);
  FUZZ_CHECK(audience_matches, what);

  for (const std::string& scope : identity.scopes)
    FUZZ_CHECK(!scope.empty() && scope.find(' ') == std::string::npos, what);
  if (json_is_string(json_object_get(claims.get(), "scope")))
    FUZZ_CHECK(identity.scopes == mcpgate::auth::split_scopes(string_claim(claims.get(), "scope")), what);

  std::string client_id = string_claim(claims.get(), "client_id");
  if (client_id.empty()) client_id = string_claim(claims.get(), "azp");
  FUZZ_CHECK(identity.client_id == client_id, what);

  JsonPtr reparsed = load(identity.claims_json);
  FUZZ_CHECK(reparsed && json_equal(reparsed.get(), claims.get()), what);
}

void check_consistent(std::string_view token, const JwtResult& result) {
  const auto header = mcpgate::auth::peek_jwt_header(token);
  const AuthStatus status = result.status;
  if (!header) {
    FUZZ_CHECK(status == AuthStatus::TokenMissing || status == AuthStatus::TokenMalformed ||
                   status == AuthStatus::HeaderInvalid,
               std::string(auth_status_name(status)));
    FUZZ_CHECK(result.kid.empty(), result.kid);
    return;
  }
  FUZZ_CHECK(status != AuthStatus::TokenMissing && status != AuthStatus::HeaderInvalid,
             std::string(auth_status_name(status)));
  FUZZ_CHECK(result.kid == header->kid, result.kid + " / " + header->kid);
  if (status == AuthStatus::Ok) {
    FUZZ_CHECK(mcpgate::auth::is_supported_jws_algorithm(header->alg), header->alg);
    FUZZ_CHECK(token.size() <= mcpgate::auth::kMaxJwtBytes, "");
  } else {
    FUZZ_CHECK(result.identity.subject.empty() && result.identity.claims_json.empty(), "identity of a refused token");
  }
}

// Modes 1-3: the token is genuinely signed with a key of the set.
void check_signed(std::string_view token, std::string_view payload, const JwtResult& result, const Header& header,
                  const JwtRules& rules, bool claims_break_no_rule) {
  const AuthStatus status = result.status;
  const std::string what = std::string(auth_status_name(status)) + " for " + printable(payload);
  if (token.size() > mcpgate::auth::kMaxJwtBytes) {
    FUZZ_CHECK(status == AuthStatus::TokenMalformed, what);
    return;
  }
  // Nothing about the signature, the key or the header may fail for a token this set signed.
  FUZZ_CHECK(status != AuthStatus::SignatureInvalid && status != AuthStatus::HeaderInvalid &&
                 status != AuthStatus::AlgorithmNotAllowed && status != AuthStatus::InternalError &&
                 status != AuthStatus::TokenMissing,
             what);
  if (header.forced != AuthStatus::Ok) {
    // The header's verdict comes before the claims unless the payload is not a JSON object.
    FUZZ_CHECK(status == header.forced || status == AuthStatus::TokenMalformed, what);
    return;
  }
  FUZZ_CHECK(status != AuthStatus::KeyNotFound && status != AuthStatus::KeyAlgorithmMismatch &&
                 status != AuthStatus::TypeNotAllowed,
             what);
  if (claims_break_no_rule) FUZZ_CHECK(status == AuthStatus::Ok, what);
  if (status == AuthStatus::Ok) check_ok(result, payload, rules);
}

// Mode 3: fuzzed members over valid claims. Members that touch no checked claim break no rule.
std::string merged_claims(std::string_view overlay_text, bool& breaks_no_rule) {
  JsonPtr claims = load(valid_claims());
  JsonPtr overlay = load(overlay_text);
  breaks_no_rule = true;
  if (overlay && json_is_object(overlay.get())) {
    json_object_update(claims.get(), overlay.get());
    for (const char* checked : {"iss", "sub", "aud", "exp", "nbf", "iat"})
      if (json_object_get(overlay.get(), checked) != nullptr) breaks_no_rule = false;
  }
  std::unique_ptr<char, decltype(&free)> text(json_dumps(claims.get(), JSON_COMPACT), &free);
  if (!text) {
    breaks_no_rule = false;
    return "";
  }
  return text.get();
}

void check_key_set(const JwkSet& set) {
  FUZZ_CHECK(set.size() > 0, "an empty set parsed");
  for (const auto& key : set.keys()) {
    FUZZ_CHECK(key.key != nullptr, key.kid);
    switch (key.type) {
      case mcpgate::auth::KeyType::Rsa: FUZZ_CHECK(key.bits >= 2048, std::to_string(key.bits)); break;
      case mcpgate::auth::KeyType::EcP256: FUZZ_CHECK(key.bits == 256, std::to_string(key.bits)); break;
      case mcpgate::auth::KeyType::EcP384: FUZZ_CHECK(key.bits == 384, std::to_string(key.bits)); break;
      case mcpgate::auth::KeyType::EcP521: FUZZ_CHECK(key.bits == 521, std::to_string(key.bits)); break;
    }
    if (!key.alg.empty()) FUZZ_CHECK(mcpgate::auth::jwk_fits_alg(key, key.alg), key.alg);
    if (!key.kid.empty()) {
      const auto* found = set.find(key.kid, key.alg.empty() ? "RS256" : key.alg);
      FUZZ_CHECK(found != nullptr && found->kid == key.kid, key.kid);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  static Fixture instance;
  static const uint8_t kExponent[] = {0x01, 0x00, 0x01};
  instance.rsa.reset(cjose_jwk_create_RSA_random(2048, kExponent, sizeof kExponent, nullptr));
  instance.ec.reset(cjose_jwk_create_EC_random(CJOSE_JWK_EC_P_256, nullptr));
  if (!instance.rsa || !instance.ec) die("key generation failed");
  const std::string jwks = R"({"keys":[)" + public_jwk(instance.rsa.get(), R"({"kid":"rsa-1","use":"sig","alg":"RS256"})") +
                           "," + public_jwk(instance.rsa.get(), R"({"kid":"rsa-any","use":"sig"})") + "," +
                           public_jwk(instance.ec.get(), R"({"kid":"ec-1","use":"sig","alg":"ES256"})") + "]}";
  std::string error;
  instance.keys = JwkSet::parse(jwks, &error);
  if (!instance.keys || instance.keys->size() != 3) die(("the fixed JWKS does not parse: " + error).c_str());
  auto token = sign(instance.ec.get(), kEcHeaders[0].json, valid_claims());
  if (!token) die("signing failed");
  instance.ec_token = *token;
  if (mcpgate::auth::verify_jwt(*token, *instance.keys, rules_for(0), kNow).status != AuthStatus::Ok)
    die("the fixed token does not verify");
  fixture = &instance;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  mcpgate::fuzz::Input input(data, size);
  const unsigned mode = input.byte() % 5;
  const uint8_t variant = input.byte();
  const std::string_view payload = input.rest();
  const JwtRules rules = rules_for(variant);
  const JwkSet& keys = *fixture->keys;

  switch (mode) {
    case 0: {
      const JwtResult result = mcpgate::auth::verify_jwt(payload, keys, rules, kNow);
      if (mcpgate::fuzz::debug()) std::fprintf(stderr, "mode 0: %s\n", auth_status_name(result.status).data());
      check_consistent(payload, result);
      // The keys are made at start: nothing from outside can carry a signature they verify.
      FUZZ_CHECK(result.status != AuthStatus::Ok, printable(payload));
      break;
    }
    case 1:
    case 2: {
      const Header& header = mode == 1 ? kEcHeaders[variant & 3] : kRsaHeaders[variant & 3];
      const auto token = sign(mode == 1 ? fixture->ec.get() : fixture->rsa.get(), header.json, payload);
      if (!token) break;
      const JwtResult result = mcpgate::auth::verify_jwt(*token, keys, rules, kNow);
      if (mcpgate::fuzz::debug()) std::fprintf(stderr, "mode %u: %s\n", mode, auth_status_name(result.status).data());
      check_consistent(*token, result);
      check_signed(*token, payload, result, header, rules, false);
      break;
    }
    case 3: {
      bool breaks_no_rule = false;
      const std::string claims = merged_claims(payload, breaks_no_rule);
      const Header& header = kEcHeaders[variant & 3];
      const auto token = sign(fixture->ec.get(), header.json, claims);
      if (!token) break;
      const JwtResult result = mcpgate::auth::verify_jwt(*token, keys, rules, kNow);
      if (mcpgate::fuzz::debug()) std::fprintf(stderr, "mode 3: %s\n", auth_status_name(result.status).data());
      check_consistent(*token, result);
      check_signed(*token, claims, result, header, rules, breaks_no_rule);
      break;
    }
    case 4: {
      std::string error;
      const auto parsed = JwkSet::parse(payload, &error);
      if (mcpgate::fuzz::debug()) std::fprintf(stderr, "mode 4: %s\n", parsed ? "parsed" : error.c_str());
      if (!parsed) {
        FUZZ_CHECK(!error.empty(), "refused without a reason");
        break;
      }
      check_key_set(*parsed);
      const JwtResult result = mcpgate::auth::verify_jwt(fixture->ec_token, *parsed, rules, kNow);
      FUZZ_CHECK(result.status != AuthStatus::TokenMalformed && result.status != AuthStatus::HeaderInvalid &&
                     result.status != AuthStatus::InternalError,
                 std::string(auth_status_name(result.status)));
      break;
    }
  }
  return 0;
}
