// Tests for JWT access-token verification: signatures per algorithm, the
// algorithm-confusion defences, key selection, time and audience claims, and
// malformed tokens. Keys are generated and tokens signed in process.
#define OPENSSL_SUPPRESS_DEPRECATED  // PEM of an RSA key for the confusion test
#include <doctest/doctest.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <string>

#include "auth/jwt_verifier.h"
#include "auth_jwt_fixtures.h"

using namespace auth_test;
using mcpgate::auth::AuthStatus;
using mcpgate::auth::auth_status_name;
using mcpgate::auth::JwkSet;
using mcpgate::auth::JwtResult;
using mcpgate::auth::JwtRules;
using mcpgate::auth::peek_jwt_header;
using mcpgate::auth::verify_jwt;

namespace {

// One RSA key (kid rsa1), one P-256 key (ec1), one P-384 key (ec384).
const JwkSet& default_keys() {
  static const JwkSet keys = parse_jwks(jwks({public_jwk(rsa_key(), R"({"kid":"rsa1","use":"sig"})"),
                                              public_jwk(ec_key(), R"({"kid":"ec1"})"),
                                              public_jwk(ec384_key(), R"({"kid":"ec384","alg":"ES384"})")}));
  return keys;
}

JwtResult verify(const std::string& token, const JwtRules& rules = auth_test::rules(),
                 const JwkSet& keys = default_keys()) {
  return verify_jwt(token, keys, rules, kNow);
}

AuthStatus status_of(const std::string& token, const JwtRules& rules = auth_test::rules()) {
  return verify(token, rules).status;
}

std::string rs256(std::string_view payload = claims()) {
  return sign(rsa_key(), R"({"alg":"RS256","kid":"rsa1"})", payload);
}

std::string with_claims(std::string_view overrides) { return rs256(claims(overrides)); }

struct Parts {
  std::string header, payload, signature;
};

Parts split(const std::string& token) {
  const size_t first = token.find('.');
  const size_t second = token.find('.', first + 1);
  return {token.substr(0, first), token.substr(first + 1, second - first - 1), token.substr(second + 1)};
}

std::string hmac_sha256_token(std::string_view header, std::string_view payload, std::string_view secret) {
  const std::string input = b64(header) + "." + b64(payload);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_length = 0;
  REQUIRE(HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
               reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &mac_length) != nullptr);
  return input + "." + b64(std::string_view(reinterpret_cast<char*>(mac), mac_length));
}

std::string rsa_public_pem(const cjose_jwk_t* key) {
  RSA* rsa = static_cast<RSA*>(cjose_jwk_get_keydata(key, nullptr));
  REQUIRE(rsa != nullptr);
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
  REQUIRE(PEM_write_bio_RSA_PUBKEY(bio.get(), rsa) == 1);
  char* data = nullptr;
  const long length = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(length));
}

}  // namespace

TEST_CASE("jwt: a valid RS256 token yields the identity") {
  const std::string payload = claims(R"({"aud":["https://other.example.com","https://mcp.example.com/notes"]})");
  const JwtResult result = verify(rs256(payload));
  REQUIRE(result.status == AuthStatus::Ok);
  CHECK(result.kid == "rsa1");
  CHECK(result.identity.subject == "user-1");
  CHECK(result.identity.issuer == kIssuer);
  CHECK(result.identity.client_id == "notes-cli");
  CHECK(result.identity.scopes == std::vector<std::string>{"notes:read", "notes:write"});
  CHECK(result.identity.audiences == std::vector<std::string>{"https://other.example.com", std::string(kResource)});
  CHECK(result.identity.expires_at == kNow + 600);
  CHECK(result.identity.claims_json == payload);
}

TEST_CASE("jwt: valid ES256, PS256 and ES384 tokens") {
  CHECK(status_of(sign(ec_key(), R"({"alg":"ES256","kid":"ec1"})", claims())) == AuthStatus::Ok);
  CHECK(status_of(sign(rsa_key(), R"({"alg":"PS256","kid":"rsa1"})", claims())) == AuthStatus::Ok);
  JwtRules es384 = rules();
  es384.algorithms = {"ES384"};
  CHECK(status_of(sign(ec384_key(), R"({"alg":"ES384","kid":"ec384"})", claims()), es384) == AuthStatus::Ok);
  // Many ECDSA signatures, so a leading-zero r or s shows up if it is mishandled.
  for (int i = 0; i < 50; ++i)
    REQUIRE(status_of(sign(ec_key(), R"({"alg":"ES256","kid":"ec1"})", claims())) == AuthStatus::Ok);
}

TEST_CASE("jwt: typ must name an access token or a plain JWT") {
  for (const char* typ : {"JWT", "jwt", "at+jwt", "AT+JWT", "application/at+jwt", "Application/AT+JWT"}) {
    CAPTURE(typ);
    const std::string header = std::string(R"({"alg":"RS256","kid":"rsa1","typ":")") + typ + "\"}";
    CHECK(status_of(sign(rsa_key(), header, claims())) == AuthStatus::Ok);
  }
  for (const char* typ : {"id_token+jwt", "logout+jwt", "secevent+jwt", "JOSE", "application/jwt+at", "at+jwt "}) {
    CAPTURE(typ);
    const std::string header = std::string(R"({"alg":"RS256","kid":"rsa1","typ":")") + typ + "\"}";
    CHECK(status_of(sign(rsa_key(), header, claims())) == AuthStatus::TypeNotAllowed);
  }
  CHECK(status_of(sign(rsa_key(), R"({"alg":"RS256","kid":"rsa1","typ":""})", claims())) ==
        AuthStatus::HeaderInvalid);
  CHECK(status_of(sign(rsa_key(), R"({"alg":"RS256","kid":"rsa1","typ":7})", claims())) ==
        AuthStatus::HeaderInvalid);
}

TEST_CASE("jwt: exp with leeway") {
  CHECK(status_of(with_claims(R"({"exp":1749999000})")) == AuthStatus::Expired);
  CHECK(status_of(with_claims(R"({"exp":1749999970,"iat":1749999000})")) == AuthStatus::Ok);  // 30 s late, within 60
  CHECK(status_of(with_claims(R"({"exp":1749999940,"iat":1749999000})")) == AuthStatus::Ok);  // exactly at the edge
  CHECK(status_of(with_claims(R"({"exp":1749999939,"iat":1749999000})")) == AuthStatus::Expired);
  JwtRules strict = rules();
  strict.leeway_s = 0;
  CHECK(status_of(with_claims(R"({"exp":1750000000})"), strict) == AuthStatus::Ok);
  CHECK(status_of(with_claims(R"({"exp":1749999999})"), strict) == AuthStatus::Expired);
  strict.leeway_s = -500;  // counts as 0, never as extra strictness that could overflow
  CHECK(status_of(with_claims(R"({"exp":1749999999})"), strict) == AuthStatus::Expired);
  CHECK(status_of(with_claims(R"({"exp":1750000000})"), strict) == AuthStatus::Ok);
}

TEST_CASE("jwt: a fractional exp never extends validity") {
  JwtRules strict = rules();
  strict.leeway_s = 0;
  CHECK(status_of(with_claims(R"({"exp":1749999999.9})"), strict) == AuthStatus::Expired);
  CHECK(status_of(with_claims(R"({"exp":1750000000.5})"), strict) == AuthStatus::Ok);
  CHECK(status_of(with_claims(R"({"nbf":1750000000.5})"), strict) == AuthStatus::NotYetValid);
  CHECK(status_of(with_claims(R"({"exp":9223372036854775807})")) == AuthStatus::Ok);  // no overflow
  CHECK(status_of(with_claims(R"({"exp":1e300})")) == AuthStatus::ClaimInvalid);
}

TEST_CASE("jwt: nbf and iat in the future") {
  CHECK(status_of(with_claims(R"({"nbf":1750000300})")) == AuthStatus::NotYetValid);
  CHECK(status_of(with_claims(R"({"nbf":1750000030})")) == AuthStatus::Ok);  // within leeway
  CHECK(status_of(with_claims(R"({"nbf":1749999000})")) == AuthStatus::Ok);
  CHECK(status_of(with_claims(R"({"iat":1750000300})")) == AuthStatus::IssuedInFuture);
  CHECK(status_of(with_claims(R"({"iat":1750000060})")) == AuthStatus::Ok);
  CHECK(status_of(with_claims(R"({"iat":null})")) == AuthStatus::Ok);  // iat is optional
  CHECK(status_of(with_claims(R"({"nbf":"soon"})")) == AuthStatus::ClaimInvalid);
}

TEST_CASE("jwt: the issuer must match exactly") {
  CHECK(status_of(with_claims(R"({"iss":"https://evil.example.com"})")) == AuthStatus::IssuerMismatch);
  CHECK(status_of(with_claims(R"({"iss":"https://idp.example.com/"})")) == AuthStatus::IssuerMismatch);
  CHECK(status_of(with_claims(R"({"iss":"HTTPS://IDP.EXAMPLE.COM"})")) == AuthStatus::IssuerMismatch);
  CHECK(status_of(with_claims(R"({"iss":null})")) == AuthStatus::MissingClaim);
  CHECK(status_of(with_claims(R"({"iss":["https://idp.example.com"]})")) == AuthStatus::ClaimInvalid);
  JwtRules no_issuer = rules();
  no_issuer.issuer.clear();
  CHECK(status_of(with_claims(R"({"iss":""})"), no_issuer) == AuthStatus::IssuerMismatch);
}

TEST_CASE("jwt: audience as a string or an array, compared canonically") {
  CHECK(status_of(with_claims(R"({"aud":"https://mcp.example.com/notes"})")) == AuthStatus::Ok);
  CHECK(status_of(with_claims(R"({"aud":["a","https://mcp.example.com/notes"]})")) == AuthStatus::Ok);
  CHECK(status_of(with_claims(R"({"aud":"https://mcp.example.com/other"})")) == AuthStatus::AudienceMismatch);
  CHECK(status_of(with_claims(R"({"aud":"https://mcp.example.com"})")) == AuthStatus::AudienceMismatch);
  CHECK(status_of(with_claims(R"({"aud":[]})")) == AuthStatus::AudienceMismatch);
  CHECK(status_of(with_claims(R"({"aud":["x",7]})")) == AuthStatus::ClaimInvalid);
  CHECK(status_of(with_claims(R"({"aud":7})")) == AuthStatus::ClaimInvalid);
  CHECK(status_of(with_claims(R"({"aud":null})")) == AuthStatus::MissingClaim);

  CHECK(status_of(with_claims(R"({"aud":"HTTPS://MCP.Example.com:443/notes/"})")) == AuthStatus::Ok);
  JwtRules messy = rules();
  messy.audiences = {"HTTPS://MCP.Example.com:443/notes/"};
  CHECK(status_of(with_claims(R"({"aud":"https://mcp.example.com/notes"})"), messy) == AuthStatus::Ok);
  CHECK(status_of(with_claims(R"({"aud":"https://mcp.example.com:8443/notes"})")) == AuthStatus::AudienceMismatch);

  JwtRules several = rules();
  several.audiences = {"https://a.example.com", "https://mcp.example.com/notes"};
  CHECK(status_of(rs256(), several) == AuthStatus::Ok);
  JwtRules none = rules();
  none.audiences.clear();
  CHECK(status_of(rs256(), none) == AuthStatus::AudienceMismatch);
}

TEST_CASE("jwt: alg none is refused, even when allowlisted") {
  const std::string token = unsigned_token(R"({"alg":"none"})", claims());
  CHECK(token.back() == '.');
  CHECK(status_of(token) == AuthStatus::AlgorithmNotAllowed);
  JwtRules reckless = rules();
  reckless.algorithms = {"none", "RS256"};
  CHECK(status_of(token, reckless) == AuthStatus::AlgorithmNotAllowed);
  CHECK(status_of(unsigned_token(R"({"alg":"None","kid":"rsa1"})", claims()), reckless) ==
        AuthStatus::AlgorithmNotAllowed);
  CHECK(verify(token).identity.subject.empty());
}

TEST_CASE("jwt: an algorithm outside the allowlist") {
  const std::string rs384 = sign(rsa_key(), R"({"alg":"RS384","kid":"rsa1"})", claims());
  CHECK(status_of(rs384) == AuthStatus::AlgorithmNotAllowed);
  JwtRules wider = rules();
  wider.algorithms = {"RS384"};
  CHECK(status_of(rs384, wider) == AuthStatus::Ok);
  wider.algorithms = {"ES256"};
  CHECK(status_of(rs256(), wider) == AuthStatus::AlgorithmNotAllowed);
}

TEST_CASE("jwt: HS256 signed with the RSA public key never verifies") {
  // The classic confusion: the attacker HMACs with the public key's bytes and
  // hopes the verifier feeds the RSA key to HMAC.
  JsonPtr jwk = load(public_jwk(rsa_key()));
  const std::string modulus = unb64(json_string_value(json_object_get(jwk.get(), "n")));
  const std::string pem = rsa_public_pem(rsa_key());
  REQUIRE(modulus.size() == 256);
  REQUIRE(pem.find("BEGIN PUBLIC KEY") != std::string::npos);

  JwtRules reckless = rules();
  reckless.algorithms = {"HS256", "RS256"};
  for (const std::string& secret : {modulus, pem, public_jwk(rsa_key())}) {
    for (const char* header : {R"({"alg":"HS256","kid":"rsa1"})", R"({"alg":"HS256"})"}) {
      CAPTURE(header);
      const std::string token = hmac_sha256_token(header, claims(), secret);
      for (const JwtRules& allow : {rules(), reckless}) {
        const AuthStatus status = status_of(token, allow);
        CHECK(status != AuthStatus::Ok);
        CHECK((status == AuthStatus::AlgorithmNotAllowed || status == AuthStatus::KeyAlgorithmMismatch));
      }
    }
  }
  // And the key check itself, independent of the allowlist.
  const JwkSet& keys = default_keys();
  CHECK_FALSE(mcpgate::auth::jwk_fits_alg(*keys.find("rsa1", "RS256"), "HS256"));
  CHECK_FALSE(mcpgate::auth::is_supported_jws_algorithm("HS256"));
}

TEST_CASE("jwt: the key type must fit the alg") {
  // RS256 claimed, kid of an EC key.
  CHECK(status_of(unsigned_token(R"({"alg":"RS256","kid":"ec1"})", claims(), std::string(64, 'x'))) ==
        AuthStatus::KeyAlgorithmMismatch);
  // ES256 claimed against a P-384 key, and ES384 against a P-256 key.
  JwtRules ec = rules();
  ec.algorithms = {"ES256", "ES384"};
  CHECK(status_of(sign(ec384_key(), R"({"alg":"ES256","kid":"ec384"})", claims()), ec) ==
        AuthStatus::KeyAlgorithmMismatch);
  CHECK(status_of(sign(ec_key(), R"({"alg":"ES384","kid":"ec1"})", claims()), ec) ==
        AuthStatus::KeyAlgorithmMismatch);
  // A JWK that names its alg is used with that alg only.
  const JwkSet ps_only = parse_jwks(jwks({public_jwk(rsa_key(), R"({"kid":"rsa1","alg":"PS256"})")}));
  CHECK(verify(rs256(), rules(), ps_only).status == AuthStatus::KeyAlgorithmMismatch);
  CHECK(verify(sign(rsa_key(), R"({"alg":"PS256","kid":"rsa1"})", claims()), rules(), ps_only).status ==
        AuthStatus::Ok);
}

TEST_CASE("jwt: an unknown kid is reported for a refetch decision") {
  const JwtResult result = verify(sign(rsa_key(), R"({"alg":"RS256","kid":"rotated-2"})", claims()));
  CHECK(result.status == AuthStatus::KeyNotFound);
  CHECK(result.kid == "rotated-2");
  CHECK(result.identity.subject.empty());
}

TEST_CASE("jwt: without a kid, only one fitting key is used") {
  const std::string token = sign(rsa_key(), R"({"alg":"RS256"})", claims());
  const JwkSet one = parse_jwks(jwks({public_jwk(rsa_key())}));
  CHECK(verify(token, rules(), one).status == AuthStatus::Ok);
  // One RSA and one EC key: the alg picks the RSA key unambiguously.
  const JwkSet mixed = parse_jwks(jwks({public_jwk(rsa_key()), public_jwk(ec_key())}));
  CHECK(verify(token, rules(), mixed).status == AuthStatus::Ok);
  const JwkSet two = parse_jwks(jwks({public_jwk(rsa_key_2(), R"({"kid":"a"})"), public_jwk(rsa_key(), R"({"kid":"b"})")}));
  const JwtResult result = verify(token, rules(), two);
  CHECK(result.status == AuthStatus::KeyNotFound);
  CHECK(result.kid.empty());
}

TEST_CASE("jwt: tampered tokens fail the signature") {
  const Parts parts = split(rs256());
  const std::string forged_payload = b64(claims(R"({"sub":"admin"})"));
  CHECK(status_of(parts.header + "." + forged_payload + "." + parts.signature) == AuthStatus::SignatureInvalid);

  std::string signature = unb64(parts.signature);
  signature[10] = static_cast<char>(signature[10] ^ 0x01);
  CHECK(status_of(parts.header + "." + parts.payload + "." + b64(signature)) == AuthStatus::SignatureInvalid);
  CHECK(status_of(parts.header + "." + parts.payload + "." + b64(signature.substr(1))) ==
        AuthStatus::SignatureInvalid);
  CHECK(status_of(parts.header + "." + parts.payload + ".") == AuthStatus::SignatureInvalid);

  // Signed by another key that claims the same kid.
  CHECK(status_of(sign(rsa_key_2(), R"({"alg":"RS256","kid":"rsa1"})", claims())) == AuthStatus::SignatureInvalid);

  // An ECDSA signature with an extra trailing byte (cjose 0.6.2 would split it wrongly).
  const Parts ec = split(sign(ec_key(), R"({"alg":"ES256","kid":"ec1"})", claims()));
  CHECK(status_of(ec.header + "." + ec.payload + "." + b64(unb64(ec.signature) + '\0')) ==
        AuthStatus::SignatureInvalid);
}

TEST_CASE("jwt: malformed token shapes") {
  const Parts parts = split(rs256());
  CHECK(status_of("") == AuthStatus::TokenMissing);
  CHECK(status_of(parts.header + "." + parts.payload) == AuthStatus::TokenMalformed);
  CHECK(status_of(parts.header + "." + parts.payload + "." + parts.signature + ".") == AuthStatus::TokenMalformed);
  CHECK(status_of("." + parts.payload + "." + parts.signature) == AuthStatus::TokenMalformed);
  CHECK(status_of(parts.header + ".." + parts.signature) == AuthStatus::TokenMalformed);
  CHECK(status_of("Bearer " + rs256()) == AuthStatus::TokenMalformed);
  CHECK(status_of(rs256() + " ") == AuthStatus::TokenMalformed);
  // Standard base64 characters and padding are not base64url.
  CHECK(status_of(parts.header + "." + parts.payload + "+." + parts.signature) == AuthStatus::TokenMalformed);
  CHECK(status_of(parts.header + "=." + parts.payload + "." + parts.signature) == AuthStatus::TokenMalformed);
  // A 256-byte signature is 342 characters. 343 is a valid length, but a final
  // 'B' leaves non-zero spare bits; 345 leaves a lone 6-bit group.
  REQUIRE(parts.signature.size() == 342);
  CHECK(status_of(parts.header + "." + parts.payload + "." + parts.signature + "B") == AuthStatus::TokenMalformed);
  CHECK(status_of(parts.header + "." + parts.payload + "." + parts.signature + "AAA") == AuthStatus::TokenMalformed);
  CHECK(status_of(parts.header + "." + parts.payload + "." + parts.signature + "A") == AuthStatus::SignatureInvalid);
  // Not JSON, or JSON that is not an object.
  CHECK(status_of(unsigned_token("{\"alg\":\"RS256\"", claims(), "sig")) == AuthStatus::TokenMalformed);
  CHECK(status_of(unsigned_token(R"({"alg":"RS256","kid":"rsa1"})", "{\"sub\":", "sig")) ==
        AuthStatus::TokenMalformed);
  CHECK(status_of(unsigned_token(R"({"alg":"RS256","kid":"rsa1"})", R"(["sub"])", "sig")) ==
        AuthStatus::TokenMalformed);
  CHECK(status_of(unsigned_token(R"({"alg":"RS256"} trailing)", claims(), "sig")) == AuthStatus::TokenMalformed);
  CHECK(status_of(unsigned_token(R"(["RS256"])", claims(), "sig")) == AuthStatus::HeaderInvalid);
  // Over 16 KiB, even when correctly signed.
  const std::string big = rs256(claims(R"({"pad":")" + std::string(13000, 'x') + "\"}"));
  REQUIRE(big.size() > mcpgate::auth::kMaxJwtBytes);
  CHECK(status_of(big) == AuthStatus::TokenMalformed);
  CHECK(status_of(rs256(claims(R"({"pad":")" + std::string(8000, 'x') + "\"}"))) == AuthStatus::Ok);
}

TEST_CASE("jwt: header members must have the expected types") {
  CHECK(status_of(unsigned_token(R"({"kid":"rsa1"})", claims(), "sig")) == AuthStatus::HeaderInvalid);
  CHECK(status_of(unsigned_token(R"({"alg":256,"kid":"rsa1"})", claims(), "sig")) == AuthStatus::HeaderInvalid);
  CHECK(status_of(unsigned_token(R"({"alg":"RS256","kid":1})", claims(), "sig")) == AuthStatus::HeaderInvalid);
  CHECK(status_of(unsigned_token(R"({"alg":"RS256","kid":""})", claims(), "sig")) == AuthStatus::HeaderInvalid);
  // An unknown critical extension must be refused (RFC 7515 4.1.11).
  CHECK(status_of(sign(rsa_key(), R"({"alg":"RS256","kid":"rsa1","crit":["exp"],"exp":1})", claims())) ==
        AuthStatus::HeaderInvalid);
  CHECK(status_of(sign(rsa_key(), R"({"alg":"RS256","kid":"rsa1","cty":"JWT"})", claims())) ==
        AuthStatus::HeaderInvalid);
  // Keys the token offers about itself are ignored, not trusted.
  const std::string embedded = std::string(R"({"alg":"RS256","kid":"rsa1","jwk":)") + public_jwk(rsa_key_2()) + "}";
  CHECK(status_of(sign(rsa_key_2(), embedded, claims())) == AuthStatus::SignatureInvalid);
}

TEST_CASE("jwt: duplicate JSON keys are malformed") {
  CHECK(status_of(rs256(R"({"iss":"https://idp.example.com","sub":"user-1","sub":"admin",)"
                        R"("aud":"https://mcp.example.com/notes","exp":1750000600})")) == AuthStatus::TokenMalformed);
  CHECK(status_of(unsigned_token(R"({"alg":"RS256","alg":"none","kid":"rsa1"})", claims(), "sig")) ==
        AuthStatus::TokenMalformed);
}

TEST_CASE("jwt: required claims") {
  CHECK(status_of(with_claims(R"({"exp":null})")) == AuthStatus::MissingClaim);
  CHECK(status_of(with_claims(R"({"exp":"1750000600"})")) == AuthStatus::ClaimInvalid);
  CHECK(status_of(with_claims(R"({"sub":null})")) == AuthStatus::MissingClaim);
  CHECK(status_of(with_claims(R"({"sub":""})")) == AuthStatus::ClaimInvalid);
  CHECK(status_of(with_claims(R"({"sub":42})")) == AuthStatus::ClaimInvalid);
}

TEST_CASE("jwt: scopes from scope or scp, client id from client_id or azp") {
  const auto identity_of = [](std::string_view overrides) { return verify(with_claims(overrides)).identity; };
  CHECK(identity_of(R"({"scope":"a  b a"})").scopes == std::vector<std::string>{"a", "b"});
  CHECK(identity_of(R"({"scope":null,"scp":["x","y"]})").scopes == std::vector<std::string>{"x", "y"});
  CHECK(identity_of(R"({"scope":null,"scp":"x y"})").scopes == std::vector<std::string>{"x", "y"});
  CHECK(identity_of(R"({"scope":null,"scp":["x",3]})").scopes == std::vector<std::string>{"x"});
  CHECK(identity_of(R"({"scope":"s","scp":["x"]})").scopes == std::vector<std::string>{"s"});
  CHECK(identity_of(R"({"scope":null})").scopes.empty());
  CHECK(identity_of(R"({"client_id":null,"azp":"web-app"})").client_id == "web-app");
  CHECK(identity_of(R"({"client_id":null})").client_id.empty());

  const auto identity = identity_of("{}");
  CHECK(mcpgate::auth::has_all_scopes(identity, {"notes:read"}));
  CHECK(mcpgate::auth::has_all_scopes(identity, {}));
  CHECK_FALSE(mcpgate::auth::has_all_scopes(identity, {"notes:read", "notes:admin"}));
}

TEST_CASE("jwt: peek_jwt_header reads the header without verifying") {
  const auto header = peek_jwt_header(sign(rsa_key(), R"({"alg":"RS256","kid":"rsa1","typ":"at+jwt"})", claims()));
  REQUIRE(header);
  CHECK(header->alg == "RS256");
  CHECK(header->kid == "rsa1");
  CHECK(header->typ == "at+jwt");
  const auto unverified = peek_jwt_header(unsigned_token(R"({"alg":"none"})", "{}"));
  REQUIRE(unverified);
  CHECK(unverified->alg == "none");
  CHECK(unverified->kid.empty());
  CHECK_FALSE(peek_jwt_header("abc.def"));
  CHECK_FALSE(peek_jwt_header(unsigned_token(R"({"kid":"x"})", "{}")));
  CHECK_FALSE(peek_jwt_header(""));
}

TEST_CASE("jwt: rules are checked for the config loader") {
  using mcpgate::auth::jwt_rules_error;
  CHECK_FALSE(jwt_rules_error(rules()));
  JwtRules bad = rules();
  bad.algorithms = {"RS256", "none"};
  CHECK(jwt_rules_error(bad));
  bad.algorithms = {"HS256"};
  CHECK(jwt_rules_error(bad));
  bad.algorithms = {"EdDSA"};
  CHECK(jwt_rules_error(bad));
  bad.algorithms = {};
  CHECK(jwt_rules_error(bad));
  bad = rules();
  bad.audiences.clear();
  CHECK(jwt_rules_error(bad));
  bad = rules();
  bad.issuer.clear();
  CHECK(jwt_rules_error(bad));
}
