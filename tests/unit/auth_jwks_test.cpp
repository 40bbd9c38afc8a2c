// Tests for parsing an issuer's JWKS: which keys are kept, which are ignored
// and why, and how a key is chosen for a kid and alg.
#include <doctest/doctest.h>

#include <string>

#include "auth/jwks.h"
#include "auth_jwt_fixtures.h"

using namespace auth_test;
using mcpgate::auth::JwkSet;
using mcpgate::auth::KeyType;

TEST_CASE("jwks: RSA and EC keys are kept with their kid, alg and size") {
  const JwkSet set = parse_jwks(jwks({public_jwk(rsa_key(), R"({"kid":"r","alg":"RS256","use":"sig"})"),
                                      public_jwk(ec_key(), R"({"kid":"e","key_ops":["verify"]})"),
                                      public_jwk(ec384_key(), R"({"kid":"e384"})")}));
  REQUIRE(set.size() == 3);
  CHECK(set.ignored() == 0);
  CHECK(set.keys()[0].kid == "r");
  CHECK(set.keys()[0].alg == "RS256");
  CHECK(set.keys()[0].type == KeyType::Rsa);
  CHECK(set.keys()[0].bits == 2048);
  CHECK(set.keys()[1].type == KeyType::EcP256);
  CHECK(set.keys()[1].alg.empty());
  CHECK(set.keys()[2].type == KeyType::EcP384);
}

TEST_CASE("jwks: oct, encryption and private keys are ignored") {
  const std::string oct = R"({"kty":"oct","kid":"r","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA","alg":"HS256"})";
  const JwkSet set = parse_jwks(jwks({
      oct,
      public_jwk(rsa_key_2(), R"({"kid":"enc","use":"enc"})"),
      public_jwk(rsa_key_2(), R"({"kid":"ops","key_ops":["encrypt"]})"),
      public_jwk(rsa_key_2(), R"({"kid":"use-type","use":1})"),
      public_jwk(rsa_key_2(), R"({"kid":"alg-family","alg":"ES256"})"),
      public_jwk(rsa_key_2(), R"({"kid":"alg-hs","alg":"HS256"})"),
      R"({"kty":"OKP","crv":"Ed25519","kid":"ed","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"})",
      R"({"kty":"EC","crv":"secp256k1","kid":"k1","x":"AAAA","y":"AAAA"})",
      R"({"kty":"RSA","kid":"junk","n":"AQAB","e":"AQAB"})",
      R"("not an object")",
      public_jwk(rsa_key(), R"({"kid":"r","use":"sig"})"),
  }));
  REQUIRE(set.size() == 1);
  CHECK(set.ignored() == 10);
  CHECK(set.keys()[0].kid == "r");
  // The oct key shares the kid "r": it must not be what an HS256 token finds.
  CHECK(set.find("r", "HS256")->type == KeyType::Rsa);
  CHECK_FALSE(mcpgate::auth::jwk_fits_alg(*set.find("r", "HS256"), "HS256"));

  // A private JWK in a JWKS is a leak or a mistake: not used.
  std::unique_ptr<char, decltype(&free)> private_json(cjose_jwk_to_json(rsa_key_2(), true, nullptr), &free);
  std::string error;
  CHECK_FALSE(JwkSet::parse(jwks({private_json.get()}), &error));
  CHECK(error.find("no usable") != std::string::npos);
}

TEST_CASE("jwks: RSA keys under 2048 bits are ignored") {
  CjoseJwkPtr small = generate_rsa(1024);
  std::string error;
  CHECK_FALSE(JwkSet::parse(jwks({public_jwk(small.get(), R"({"kid":"small"})")}), &error));
  CHECK_FALSE(error.empty());
}

TEST_CASE("jwks: documents that are not a key set") {
  std::string error;
  CHECK_FALSE(JwkSet::parse("<html>502 Bad Gateway</html>", &error));
  CHECK(error.find("not valid JSON") != std::string::npos);
  error.clear();
  CHECK_FALSE(JwkSet::parse("", &error));
  CHECK_FALSE(error.empty());
  error.clear();
  CHECK_FALSE(JwkSet::parse(R"({"keys":{}})", &error));
  CHECK(error.find("keys") != std::string::npos);
  CHECK_FALSE(JwkSet::parse(R"([])", &error));
  CHECK_FALSE(JwkSet::parse(R"({"keys":[]})", &error));
  CHECK_FALSE(JwkSet::parse(R"({"keys":[],"keys":[]})", &error));
  CHECK_FALSE(JwkSet::parse(R"({"keys":[]})", nullptr));  // the error is optional
  CHECK_FALSE(JwkSet::parse(std::string(2 * 1024 * 1024, ' '), &error));
}

TEST_CASE("jwks: find by kid, or the single fitting key without one") {
  const JwkSet set = parse_jwks(jwks({public_jwk(rsa_key(), R"({"kid":"a"})"),
                                      public_jwk(rsa_key_2(), R"({"kid":"b","alg":"PS256"})"),
                                      public_jwk(ec_key(), R"({"kid":"a"})")}));
  CHECK(set.find("a", "RS256") == &set.keys()[0]);
  CHECK(set.find("a", "ES256") == &set.keys()[2]);  // same kid, the one that fits
  CHECK(set.find("b", "PS256") == &set.keys()[1]);
  CHECK(set.find("b", "RS256") == &set.keys()[1]);  // found; the verifier reports the mismatch
  CHECK(set.find("c", "RS256") == nullptr);
  CHECK(set.find("", "ES256") == &set.keys()[2]);
  CHECK(set.find("", "PS256") == nullptr);  // keys a (no alg) and b both fit
  CHECK(set.find("", "RS256") == &set.keys()[0]);  // b is PS256 only
  CHECK(set.find("", "ES384") == nullptr);
  CHECK(set.find("", "HS256") == nullptr);
}

TEST_CASE("jwks: the sets are movable and shareable") {
  JwkSet set = parse_jwks(jwks({public_jwk(ec_key(), R"({"kid":"e"})")}));
  const mcpgate::auth::JwkSetPtr shared = std::make_shared<const JwkSet>(std::move(set));
  CHECK(shared->size() == 1);
  CHECK(shared->find("e", "ES256") != nullptr);
}

TEST_CASE("jwks: regression (fuzzing): malformed Base64 in key members is ignored, never handed to cjose") {
  // cjose asserted (aborting the process) on "A=" as an RSA modulus.
  std::string error;
  const auto set = JwkSet::parse(jwks({R"({"kty":"RSA","kid":"k1","use":"sig","n":"A=","e":"AQAB"})",
                                       R"({"kty":"RSA","kid":"k2","n":"AAAAA","e":"AQAB"})",
                                       R"({"kty":"RSA","kid":"k3","n":"","e":"AQAB"})",
                                       R"({"kty":"RSA","kid":"k4","n":7,"e":"AQAB"})",
                                       R"({"kty":"EC","crv":"P-256","kid":"k5","x":"A=","y":"AAAA"})",
                                       R"({"kty":"RSA","kid":"k6","n":"AQAB","e":"AQAB","p":"A="})",
                                       public_jwk(rsa_key(), R"({"kid":"good"})")}),
                                 &error);
  REQUIRE(set);
  CHECK(set->size() == 1);
  CHECK(set->ignored() == 6);
  CHECK(set->keys()[0].kid == "good");
}
