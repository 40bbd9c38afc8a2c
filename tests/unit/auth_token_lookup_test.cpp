#include <doctest/doctest.h>

#include "auth/token_lookup.h"

using namespace mcpgate::auth;

namespace {

const IntrospectionRules kRules{"https://idp.example", {"https://mcp.example/notes"}, 60};
constexpr int64_t kNow = 1'800'000'000;

LookupResult introspect(int status, const std::string& body, bool reached = true) {
  return read_introspection_response({reached, status, body}, kRules, kNow);
}

}  // namespace

TEST_CASE("introspection: an active token for this resource gives an identity") {
  const auto result = introspect(
      200, R"({"active":true,"sub":"alice","aud":["https://MCP.example:443/notes/"],"scope":"read write","client_id":"app","iss":"https://idp.example","exp":1800000100})");
  REQUIRE(result.status == AuthStatus::Ok);
  CHECK(result.identity.subject == "alice");
  CHECK(result.identity.client_id == "app");
  CHECK(result.identity.scopes == std::vector<std::string>{"read", "write"});
  CHECK(result.identity.expires_at == 1800000100);
}

TEST_CASE("introspection: what is refused, and what is the IdP's fault") {
  CHECK(introspect(200, R"({"active":false})").status == AuthStatus::TokenInactive);
  CHECK(introspect(200, R"({"active":"true","sub":"a","aud":"https://mcp.example/notes"})").status == AuthStatus::TokenInactive);
  CHECK(introspect(200, R"({"active":true,"aud":"https://mcp.example/notes"})").status == AuthStatus::MissingClaim);
  CHECK(introspect(200, R"({"active":true,"sub":"a","aud":"https://other.example"})").status == AuthStatus::AudienceMismatch);
  CHECK(introspect(200, R"({"active":true,"sub":"a"})").status == AuthStatus::AudienceMismatch);
  CHECK(introspect(200, R"({"active":true,"sub":"a","aud":"https://mcp.example/notes","iss":"https://evil"})").status ==
        AuthStatus::IssuerMismatch);
  CHECK(introspect(200, R"({"active":true,"sub":"a","aud":"https://mcp.example/notes","exp":1799999000})").status ==
        AuthStatus::Expired);
  CHECK(introspect(400, R"({"error":"unsupported_token_type"})").status == AuthStatus::TokenInactive);
  CHECK(introspect(401, "").status == AuthStatus::IdpUnavailable);
  CHECK(introspect(503, "").status == AuthStatus::IdpUnavailable);
  CHECK(introspect(0, "", false).status == AuthStatus::IdpUnavailable);
  CHECK(introspect(200, "not json").status == AuthStatus::IdpUnavailable);
  CHECK(introspect(200, R"({"active":true,"active":false})").status == AuthStatus::IdpUnavailable);
}

TEST_CASE("userinfo: sub is the identity; a refused token is not the IdP's outage") {
  auto ok = read_userinfo_response({true, 200, R"({"sub":"bob","scope":"a b"})"}, "https://idp.example");
  REQUIRE(ok.status == AuthStatus::Ok);
  CHECK(ok.identity.subject == "bob");
  CHECK(ok.identity.issuer == "https://idp.example");
  CHECK(ok.identity.scopes.size() == 2);
  CHECK(read_userinfo_response({true, 401, ""}, "i").status == AuthStatus::TokenInactive);
  CHECK(read_userinfo_response({true, 200, R"({"name":"x"})"}, "i").status == AuthStatus::MissingClaim);
  CHECK(read_userinfo_response({true, 502, ""}, "i").status == AuthStatus::IdpUnavailable);
  CHECK(read_userinfo_response({false, 0, ""}, "i").status == AuthStatus::IdpUnavailable);
}

TEST_CASE("introspection request: form-encoded token and client_secret_basic") {
  CHECK(introspection_request_body("a+b/c=") == "token=a%2Bb%2Fc%3D&token_type_hint=access_token");
  // RFC 6749 §2.3.1: id and secret are form-encoded before Base64.
  CHECK(client_secret_basic("gw", "s:e cret") == "Basic Z3c6cyUzQWUlMjBjcmV0");
}
