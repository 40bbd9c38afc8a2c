#include <doctest/doctest.h>

#include "auth/authorization_server.h"

using namespace mcpgate;
using auth::derive_metadata_url;

TEST_CASE("authorization server: where metadata is looked for") {
  using config::AuthServerType;
  CHECK(derive_metadata_url("https://idp.example", AuthServerType::Oidc) ==
        "https://idp.example/.well-known/openid-configuration");
  CHECK(derive_metadata_url("https://idp.example/realms/r/", AuthServerType::Oidc) ==
        "https://idp.example/realms/r/.well-known/openid-configuration");
  // RFC 8414 §3.1: the well-known segment goes between the host and the path.
  CHECK(derive_metadata_url("https://idp.example/tenant1", AuthServerType::OAuth) ==
        "https://idp.example/.well-known/oauth-authorization-server/tenant1");
  CHECK(derive_metadata_url("https://idp.example", AuthServerType::OAuth) ==
        "https://idp.example/.well-known/oauth-authorization-server");
}

TEST_CASE("authorization server: JWKS max-age is clamped") {
  http::HeaderList headers;
  CHECK(auth::keys_max_age(headers) == std::chrono::seconds(300));
  headers.set("Cache-Control", "public, max-age=3600");
  CHECK(auth::keys_max_age(headers) == std::chrono::seconds(3600));
  headers.set("Cache-Control", "max-age=1");
  CHECK(auth::keys_max_age(headers) == std::chrono::seconds(60));
  headers.set("Cache-Control", "max-age=99999999");
  CHECK(auth::keys_max_age(headers) == std::chrono::seconds(86400));
}

TEST_CASE("authorization server: manual metadata is used as is, with overrides merged") {
  config::AuthorizationServerConfig server_config;
  server_config.name = "manual";
  server_config.issuer = "https://idp.example";
  server_config.discovery = config::Discovery::Off;
  server_config.metadata_json = R"({"issuer":"https://idp.example","jwks_uri":"https://idp.example/keys","scopes_supported":["a"]})";
  server_config.metadata_overrides_json = R"({"scopes_supported":["b"]})";
  auto server = std::make_shared<auth::AuthorizationServer>(server_config);
  REQUIRE(server->metadata_ready());
  CHECK(auth::metadata_string(*server->metadata(), "jwks_uri") == "https://idp.example/keys");
  CHECK(server->metadata()->find(R"("scopes_supported":["b"])") != std::string::npos);
  CHECK_FALSE(server->failed());
}
