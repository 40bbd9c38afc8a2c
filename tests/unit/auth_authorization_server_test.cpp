#include <doctest/doctest.h>

#include "auth/authorization_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>

#include "loop_thread.h"
#include "upstream/curl_multi.h"

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

namespace {

// A loopback port nothing listens on right now.
uint16_t refused_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  ::close(fd);
  REQUIRE(ok);
  return ntohs(addr.sin_port);
}

}  // namespace

TEST_CASE("authorization server: an unknown kid while the keys cannot be fetched is the server's fault, not the token's") {
  // Regression: a token signed with a key the IdP had just rotated to was answered 401
  // invalid_token while the JWKS refetch failed (and during the backoff after it), so clients
  // threw away good tokens; the README promises 503 with Retry-After whenever the IdP is down.
  const std::string jwks_uri = "http://127.0.0.1:" + std::to_string(refused_port()) + "/jwks";
  config::AuthorizationServerConfig server_config;
  server_config.name = "down";
  server_config.issuer = "https://idp.example";
  server_config.discovery = config::Discovery::Off;
  server_config.metadata_json = R"({"issuer":"https://idp.example","jwks_uri":")" + jwks_uri + R"("})";
  auto server = std::make_shared<auth::AuthorizationServer>(server_config);
  CHECK(server->unknown_kid_status() == auth::AuthStatus::KeyNotFound);  // nothing failed yet

  testing::LoopThread thread;
  std::unique_ptr<upstream::CurlMulti> curl;
  std::unique_ptr<upstream::Fetcher> fetcher;
  auto resumed = std::make_shared<std::promise<void>>();
  auto waiter = std::make_shared<auth::Waiter>([resumed] { resumed->set_value(); });
  auth::AuthorizationServer::Availability availability{};
  thread.call([&] {
    curl = std::make_unique<upstream::CurlMulti>(thread.loop().base());
    fetcher = std::make_unique<upstream::Fetcher>(thread.loop(), *curl);
    const auth::WaitHandle wait{&thread.loop(), waiter};
    availability = server->ensure_keys({&thread.loop(), fetcher.get()}, &wait);
  });
  CHECK(availability == auth::AuthorizationServer::Availability::Waiting);
  const bool done = resumed->get_future().wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  thread.call([&] {
    fetcher.reset();
    curl.reset();
  });
  REQUIRE_MESSAGE(done, "the failed JWKS fetch never resumed its waiter");
  CHECK(server->failed());
  CHECK(server->keys() == nullptr);
  CHECK(server->unknown_kid_status() == auth::AuthStatus::KeysUnavailable);
}
