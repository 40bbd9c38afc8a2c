#include <doctest/doctest.h>

#include <string>

#include "credentials/token_sealer.h"
#include "proxy/session_envelope.h"

using namespace mcpgate;

namespace {

config::SessionEnvelopeConfig keys(std::initializer_list<std::pair<std::string, char>> named) {
  config::SessionEnvelopeConfig config;
  for (const auto& [id, fill] : named) config.keys.push_back({id, std::string(32, fill)});
  return config;
}

bool is_visible_ascii(const std::string& text) {
  for (unsigned char c : text)
    if (c < 0x21 || c > 0x7e) return false;
  return !text.empty();
}

}  // namespace

TEST_CASE("session envelope: wraps the endpoint and upstream session, opens only on its route") {
  const auto envelope = proxy::make_session_envelope(keys({{"k1", 'a'}}), credentials::random_key());
  const proxy::SessionTarget target{"http://127.0.0.1:3001/mcp", "6f1c7a52-3c1e-4c8e-9d41-0d6e2d0c5b7e"};
  const std::string sealed = envelope->wrap("notes", target);
  CHECK(sealed.rfind("k1.", 0) == 0);
  CHECK(is_visible_ascii(sealed));  // a valid Mcp-Session-Id
  CHECK(sealed.find(target.upstream_session) == std::string::npos);
  CHECK(sealed.find("127.0.0.1") == std::string::npos);
  CHECK(sealed != envelope->wrap("notes", target));  // a fresh nonce each time
  const auto opened = envelope->unwrap("notes", sealed);
  REQUIRE(opened);
  CHECK(opened->endpoint == target.endpoint);
  CHECK(opened->upstream_session == target.upstream_session);
  CHECK_FALSE(envelope->unwrap("other-route", sealed));
}

TEST_CASE("session envelope: tampered, foreign and malformed envelopes do not open") {
  const auto envelope = proxy::make_session_envelope(keys({{"k1", 'a'}}), credentials::random_key());
  const std::string sealed = envelope->wrap("r", {"http://a:1/", "s"});
  for (std::size_t i = 3; i < sealed.size(); ++i) {
    std::string tampered = sealed;
    tampered[i] = tampered[i] == 'A' ? 'B' : 'A';
    CAPTURE(i);
    CHECK_FALSE(envelope->unwrap("r", tampered));
  }
  // Same key id, another key: another deployment's envelope.
  const auto foreign = proxy::make_session_envelope(keys({{"k1", 'b'}}), credentials::random_key());
  CHECK_FALSE(foreign->unwrap("r", sealed));
  for (const char* junk : {"", "k1", "k1.", "k1.AAAA", "k9.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "550e8400-e29b-41d4-a716-446655440000"})
    CHECK_FALSE(envelope->unwrap("r", junk));
}

TEST_CASE("session envelope: a rotation keeps opening envelopes sealed under the previous key") {
  const auto before = proxy::make_session_envelope(keys({{"k1", 'a'}}), credentials::random_key());
  const auto during = proxy::make_session_envelope(keys({{"k2", 'c'}, {"k1", 'a'}}), credentials::random_key());
  const auto after = proxy::make_session_envelope(keys({{"k2", 'c'}}), credentials::random_key());
  const std::string old_session = before->wrap("r", {"http://a:1/", "old"});
  REQUIRE(during->unwrap("r", old_session));
  CHECK(during->unwrap("r", old_session)->upstream_session == "old");
  const std::string new_session = during->wrap("r", {"http://a:1/", "new"});
  CHECK(new_session.rfind("k2.", 0) == 0);
  CHECK(after->unwrap("r", new_session));
  CHECK_FALSE(after->unwrap("r", old_session));
}

TEST_CASE("session envelope: without keys the fallback key seals, under the id 'local'") {
  const std::string fallback = credentials::random_key();
  const auto first = proxy::make_session_envelope({}, fallback);
  const auto reloaded = proxy::make_session_envelope({}, fallback);
  const std::string sealed = first->wrap("r", {"http://a:1/", "s"});
  CHECK(sealed.rfind("local.", 0) == 0);
  CHECK(reloaded->unwrap("r", sealed));  // a reload keeps the process's key
  CHECK_FALSE(proxy::make_session_envelope({}, credentials::random_key())->unwrap("r", sealed));
}
