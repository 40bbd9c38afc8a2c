// Tests for the delegated-credential parts: the token sealer, connect links, the elicitation
// answers, token JSON, token-endpoint bodies and renewal, query and cookie helpers, session
// capabilities, and the token store over the memory backend on real event loops.
#include <doctest/doctest.h>

#include <jansson.h>

#include <cctype>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "config/config.h"
#include "core/base64url.h"
#include "core/event_loop.h"
#include "credentials/connect_link.h"
#include "credentials/store_backend.h"
#include "credentials/token_endpoint.h"
#include "credentials/token_sealer.h"
#include "credentials/token_store.h"
#include "loop_thread.h"
#include "http/message.h"
#include "mcp/elicitation.h"
#include "mcp/session_capabilities.h"

using namespace mcpgate;
using credentials::TokenSealer;

namespace {

using namespace std::chrono_literals;
using JsonPtr = std::unique_ptr<json_t, decltype(&json_decref)>;

constexpr auto kAnswerWait = 5s;

bool contains(std::string_view text, std::string_view part) { return text.find(part) != std::string_view::npos; }

const std::string kKeyA(32, 'a');
const std::string kKeyB(32, 'b');

// Parses JSON text; fails the test when it is not valid JSON.
JsonPtr parse(const std::string& text) {
  json_error_t error;
  JsonPtr value(json_loadb(text.data(), text.size(), JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &error), &json_decref);
  INFO("json: " << text << " error: " << error.text);
  REQUIRE(value);
  return value;
}

// The string at `key` of `object`; "" (and a failed check) when it is not a string.
std::string string_at(const json_t* object, const char* key) {
  const char* value = json_string_value(json_object_get(object, key));
  CHECK_MESSAGE(value != nullptr, "no string member '" << key << "'");
  return value != nullptr ? value : "";
}

// The part of a sealed value after "<key id>.", decoded.
std::string sealed_bytes(const std::string& sealed) {
  const auto dot = sealed.find('.');
  REQUIRE(dot != std::string::npos);
  const auto bytes = core::base64url_decode(sealed.substr(dot + 1));
  REQUIRE(bytes.has_value());
  return *bytes;
}

}  // namespace

// ---------------------------------------------------------------- TokenSealer

TEST_CASE("token sealer: seal then open gives the plaintext back") {
  const TokenSealer sealer({kKeyA});
  const std::string secret = "gho_access-token-value";
  const std::string sealed = sealer.seal(secret, "mcpgate:tokens:gh:alice");
  CHECK(sealed.rfind(sealer.sealing_key_id() + ".", 0) == 0);
  CHECK(sealer.sealing_key_id().size() == 8);
  CHECK_FALSE(contains(sealed, secret));
  CHECK(sealer.open(sealed, "mcpgate:tokens:gh:alice") == std::optional<std::string>(secret));
  // A fresh random nonce each time: the same plaintext seals differently.
  CHECK(sealer.seal(secret, "ctx") != sealer.seal(secret, "ctx"));
  // Empty plaintext and binary plaintext round-trip too.
  CHECK(sealer.open(sealer.seal("", "ctx"), "ctx") == std::optional<std::string>(""));
  const std::string binary("a\0b\xff", 4);
  CHECK(sealer.open(sealer.seal(binary, "ctx"), "ctx") == std::optional<std::string>(binary));
}

TEST_CASE("token sealer: a value does not open under another context") {
  const TokenSealer sealer({kKeyA});
  const std::string sealed = sealer.seal("token", "mcpgate:tokens:gh:alice");
  CHECK_FALSE(sealer.open(sealed, "mcpgate:tokens:gh:bob").has_value());
  CHECK_FALSE(sealer.open(sealed, "").has_value());
  CHECK_FALSE(sealer.open(sealed, "mcpgate:tokens:gh:alice ").has_value());
}

TEST_CASE("token sealer: any flipped byte, a truncation or a malformed value fails to open") {
  const TokenSealer sealer({kKeyA});
  const std::string sealed = sealer.seal("the access token", "ctx");
  const std::string id = sealed.substr(0, sealed.find('.'));
  const std::string bytes = sealed_bytes(sealed);
  REQUIRE(bytes.size() == 12 + 16 + 16);  // nonce, ciphertext, tag
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    CAPTURE(i);
    std::string tampered = bytes;
    tampered[i] = static_cast<char>(tampered[i] ^ 0x01);
    CHECK_FALSE(sealer.open(id + "." + core::base64url_encode(tampered), "ctx").has_value());
  }
  CHECK_FALSE(sealer.open(id + "." + core::base64url_encode(bytes.substr(0, bytes.size() - 1)), "ctx").has_value());
  CHECK_FALSE(sealer.open(id + "." + core::base64url_encode(bytes.substr(0, 27)), "ctx").has_value());
  CHECK_FALSE(sealer.open(id + ".", "ctx").has_value());
  CHECK_FALSE(sealer.open(sealed.substr(sealed.find('.') + 1), "ctx").has_value());  // no key id
  CHECK_FALSE(sealer.open("", "ctx").has_value());
  CHECK_FALSE(sealer.open(id + "." + sealed.substr(sealed.find('.') + 1) + "!", "ctx").has_value());  // not base64url
  CHECK_FALSE(sealer.open("00000000" + sealed.substr(sealed.find('.')), "ctx").has_value());        // unknown key id
}

TEST_CASE("token sealer: keys must be 32 bytes, and at least one") {
  CHECK_THROWS_AS(TokenSealer(std::vector<std::string>{}), std::invalid_argument);
  CHECK_THROWS_AS(TokenSealer({std::string(31, 'k')}), std::invalid_argument);
  CHECK_THROWS_AS(TokenSealer({kKeyA, std::string(33, 'k')}), std::invalid_argument);
  CHECK(credentials::random_key().size() == 32);
  CHECK(credentials::random_key() != credentials::random_key());
}

TEST_CASE("token sealer: key rotation opens old values and seals new ones under the new key") {
  const TokenSealer old_sealer({kKeyA});
  const std::string old_value = old_sealer.seal("old token", "ctx");

  const TokenSealer rotated({kKeyB, kKeyA});
  CHECK(rotated.sealing_key_id() != old_sealer.sealing_key_id());
  CHECK(rotated.sealing_key_id() == TokenSealer({kKeyB}).sealing_key_id());
  CHECK(rotated.open(old_value, "ctx") == std::optional<std::string>("old token"));
  const std::string new_value = rotated.seal("new token", "ctx");
  CHECK(new_value.rfind(rotated.sealing_key_id() + ".", 0) == 0);
  CHECK(old_value.rfind(old_sealer.sealing_key_id() + ".", 0) == 0);
  CHECK(rotated.open(new_value, "ctx") == std::optional<std::string>("new token"));

  // Once A is dropped, A's values no longer open; B's still do.
  const TokenSealer only_b({kKeyB});
  CHECK_FALSE(only_b.open(old_value, "ctx").has_value());
  CHECK(only_b.open(new_value, "ctx") == std::optional<std::string>("new token"));
  // And a sealer that never had B cannot open B's values.
  CHECK_FALSE(old_sealer.open(new_value, "ctx").has_value());
}

TEST_CASE("token sealer: sign and verify, also under an old key") {
  const TokenSealer a({kKeyA});
  const std::string signature = a.sign("purpose", "data");
  CHECK(signature.size() == 32);
  CHECK(a.verify("purpose", "data", signature));
  CHECK_FALSE(a.verify("other purpose", "data", signature));
  CHECK_FALSE(a.verify("purpose", "data!", signature));
  CHECK_FALSE(a.verify("purpose", "data", signature.substr(0, 31)));
  CHECK_FALSE(a.verify("purpose", "data", ""));
  std::string flipped = signature;
  flipped[0] = static_cast<char>(flipped[0] ^ 0x80);
  CHECK_FALSE(a.verify("purpose", "data", flipped));
  // Purposes derive separate keys: the same data signs differently per purpose.
  CHECK(a.sign("p1", "data") != a.sign("p2", "data"));

  const TokenSealer rotated({kKeyB, kKeyA});
  CHECK(rotated.verify("purpose", "data", signature));                // A's signature, A kept as an old key
  CHECK(rotated.sign("purpose", "data") == TokenSealer({kKeyB}).sign("purpose", "data"));  // signs with B
  CHECK(a.verify("purpose", "data", a.sign("purpose", "data")));
  CHECK_FALSE(a.verify("purpose", "data", rotated.sign("purpose", "data")));
  CHECK_FALSE(TokenSealer({kKeyB}).verify("purpose", "data", signature));
}

// ---------------------------------------------------------------- connect links

TEST_CASE("connect link: sign then open gives the grant back until it expires") {
  const TokenSealer sealer({kKeyA});
  const credentials::ConnectGrant grant =
      credentials::new_connect_grant("github", "https://idp.example", "alice", 1000, 600);
  CHECK(grant.credential == "github");
  CHECK(grant.issuer == "https://idp.example");
  CHECK(grant.subject == "alice");
  CHECK(grant.expires_at == 1600);
  CHECK_FALSE(grant.id.empty());
  CHECK(credentials::new_connect_grant("github", "i", "s", 0, 1).id != grant.id);

  const std::string link = credentials::sign_connect_grant(sealer, grant);
  for (int64_t now : {int64_t{1000}, int64_t{1599}}) {
    CAPTURE(now);
    const auto opened = credentials::open_connect_grant(sealer, link, now);
    REQUIRE(opened.has_value());
    CHECK(opened->credential == grant.credential);
    CHECK(opened->issuer == grant.issuer);
    CHECK(opened->subject == grant.subject);
    CHECK(opened->id == grant.id);
    CHECK(opened->expires_at == grant.expires_at);
  }
  CHECK_FALSE(credentials::open_connect_grant(sealer, link, 1600).has_value());
  CHECK_FALSE(credentials::open_connect_grant(sealer, link, 5000).has_value());
}

TEST_CASE("connect link: a tampered payload or signature does not open") {
  const TokenSealer sealer({kKeyA});
  const auto alice = credentials::new_connect_grant("github", "https://idp.example", "alice", 1000, 600);
  credentials::ConnectGrant bob = alice;
  bob.subject = "bob";
  const std::string link = credentials::sign_connect_grant(sealer, alice);
  const std::string bob_link = credentials::sign_connect_grant(sealer, bob);
  const auto dot = link.find('.');
  REQUIRE(dot != std::string::npos);
  const std::string payload = link.substr(0, dot);
  const std::string signature = link.substr(dot + 1);

  // Bob's payload with Alice's signature.
  CHECK_FALSE(credentials::open_connect_grant(sealer, bob_link.substr(0, bob_link.find('.')) + "." + signature, 1000));
  // A payload re-encoded with a later expiry, keeping the signature.
  credentials::ConnectGrant later = alice;
  later.expires_at += 3600;
  const std::string later_link = credentials::sign_connect_grant(sealer, later);
  CHECK_FALSE(credentials::open_connect_grant(sealer, later_link.substr(0, later_link.find('.')) + "." + signature, 1000));
  // Any character of the payload changed.
  for (std::size_t i = 0; i < payload.size(); ++i) {
    CAPTURE(i);
    std::string tampered = link;
    tampered[i] = tampered[i] == 'A' ? 'B' : 'A';
    CHECK_FALSE(credentials::open_connect_grant(sealer, tampered, 1000).has_value());
  }
  // Signature bytes flipped (decoded, flipped, re-encoded).
  const auto signature_bytes = core::base64url_decode(signature);
  REQUIRE(signature_bytes.has_value());
  REQUIRE(signature_bytes->size() == 32);
  for (std::size_t i = 0; i < signature_bytes->size(); ++i) {
    CAPTURE(i);
    std::string flipped = *signature_bytes;
    flipped[i] = static_cast<char>(flipped[i] ^ 0x01);
    CHECK_FALSE(credentials::open_connect_grant(sealer, payload + "." + core::base64url_encode(flipped), 1000));
  }
  CHECK_FALSE(credentials::open_connect_grant(sealer, payload, 1000).has_value());
  CHECK_FALSE(credentials::open_connect_grant(sealer, payload + ".", 1000).has_value());
  CHECK_FALSE(credentials::open_connect_grant(sealer, "." + signature, 1000).has_value());
  CHECK_FALSE(credentials::open_connect_grant(sealer, link + ".x", 1000).has_value());
  CHECK_FALSE(credentials::open_connect_grant(sealer, "", 1000).has_value());
  CHECK_FALSE(credentials::open_connect_grant(sealer, std::string(5000, 'A') + "." + signature, 1000).has_value());
  // A payload that is validly signed but not a grant's JSON.
  const std::string junk = core::base64url_encode("{\"c\":\"x\"}");
  CHECK_FALSE(credentials::open_connect_grant(
      sealer, junk + "." + core::base64url_encode(sealer.sign("mcpgate connect link v1", junk)), 1000));
}

TEST_CASE("connect link: a link signed under another key does not open; under a kept old key it does") {
  const TokenSealer a({kKeyA});
  const TokenSealer b({kKeyB});
  const auto grant = credentials::new_connect_grant("github", "https://idp.example", "alice", 1000, 600);
  const std::string link = credentials::sign_connect_grant(a, grant);
  CHECK_FALSE(credentials::open_connect_grant(b, link, 1000).has_value());
  CHECK(credentials::open_connect_grant(TokenSealer({kKeyB, kKeyA}), link, 1000).has_value());
}

TEST_CASE("connect link: connect_url shape") {
  const TokenSealer sealer({kKeyA});
  const auto grant = credentials::new_connect_grant("github", "https://idp.example", "alice", 1000, 600);
  const std::string link = credentials::sign_connect_grant(sealer, grant);
  // The link is base64url and a dot: safe in a query without escaping.
  for (char c : link) {
    CAPTURE(c);
    CHECK((std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'));
  }
  CHECK(credentials::connect_url("https://mcp.example.com", grant, link) ==
        "https://mcp.example.com/oauth/connect/github?link=" + link);
  const std::string token = credentials::random_token();
  CHECK(token.size() == 43);  // 32 bytes, base64url without padding
  CHECK(credentials::random_token(16).size() == 22);
  CHECK(token != credentials::random_token());
}

// ---------------------------------------------------------------- elicitation answers

TEST_CASE("elicitation: InputRequired is a 2026 input_required result with a URL-mode request") {
  const std::string text = mcp::link_required_response(mcp::LinkAnswer::InputRequired, "7", "github:link",
                                                       "https://gw/oauth/connect/github?link=abc", "Connect GitHub.");
  const JsonPtr root = parse(text);
  CHECK(string_at(root.get(), "jsonrpc") == "2.0");
  REQUIRE(json_is_integer(json_object_get(root.get(), "id")));
  CHECK(json_integer_value(json_object_get(root.get(), "id")) == 7);
  CHECK(json_object_get(root.get(), "error") == nullptr);
  const json_t* result = json_object_get(root.get(), "result");
  REQUIRE(json_is_object(result));
  CHECK(string_at(result, "resultType") == "input_required");
  const json_t* requests = json_object_get(result, "inputRequests");
  REQUIRE(json_is_object(requests));
  CHECK(json_object_size(requests) == 1);
  const json_t* request = json_object_get(requests, "github:link");
  REQUIRE(json_is_object(request));
  CHECK(string_at(request, "method") == "elicitation/create");
  const json_t* params = json_object_get(request, "params");
  REQUIRE(json_is_object(params));
  CHECK(string_at(params, "mode") == "url");
  CHECK(string_at(params, "url") == "https://gw/oauth/connect/github?link=abc");
  CHECK(string_at(params, "message") == "Connect GitHub.");

  // A string id is kept as a string.
  const JsonPtr with_string_id = parse(mcp::link_required_response(mcp::LinkAnswer::InputRequired, "\"req-1\"", "k",
                                                                   "https://u", "m"));
  CHECK(string_at(with_string_id.get(), "id") == "req-1");
}

TEST_CASE("elicitation: UrlElicitationError is the 2025-11-25 error -32042 with one URL elicitation") {
  const JsonPtr root = parse(mcp::link_required_response(mcp::LinkAnswer::UrlElicitationError, "\"abc\"", "github:link",
                                                         "https://gw/connect?link=x", "Connect GitHub."));
  CHECK(string_at(root.get(), "jsonrpc") == "2.0");
  CHECK(string_at(root.get(), "id") == "abc");
  CHECK(json_object_get(root.get(), "result") == nullptr);
  const json_t* error = json_object_get(root.get(), "error");
  REQUIRE(json_is_object(error));
  CHECK(json_integer_value(json_object_get(error, "code")) == -32042);
  CHECK(mcp::kUrlElicitationRequiredCode == -32042);
  CHECK(string_at(error, "message") == "Connect GitHub.");
  const json_t* elicitations = json_object_get(json_object_get(error, "data"), "elicitations");
  REQUIRE(json_is_array(elicitations));
  REQUIRE(json_array_size(elicitations) == 1);
  const json_t* elicitation = json_array_get(elicitations, 0);
  CHECK(string_at(elicitation, "mode") == "url");
  CHECK(string_at(elicitation, "elicitationId") == "github:link");
  CHECK(string_at(elicitation, "url") == "https://gw/connect?link=x");
  CHECK(string_at(elicitation, "message") == "Connect GitHub.");

  const JsonPtr numeric = parse(mcp::link_required_response(mcp::LinkAnswer::UrlElicitationError, "42", "k", "u", "m"));
  CHECK(json_integer_value(json_object_get(numeric.get(), "id")) == 42);
}

TEST_CASE("elicitation: PlainError is error -32043 whose message carries the link") {
  const JsonPtr root = parse(mcp::link_required_response(mcp::LinkAnswer::PlainError, "3", "github:link",
                                                         "https://gw/connect?link=x", "Connect GitHub."));
  CHECK(json_integer_value(json_object_get(root.get(), "id")) == 3);
  const json_t* error = json_object_get(root.get(), "error");
  REQUIRE(json_is_object(error));
  CHECK(json_integer_value(json_object_get(error, "code")) == -32043);
  CHECK(mcp::kCredentialNotLinkedCode == -32043);
  const std::string message = string_at(error, "message");
  CHECK(contains(message, "Connect GitHub."));
  CHECK(contains(message, "https://gw/connect?link=x"));
  CHECK(string_at(json_object_get(error, "data"), "url") == "https://gw/connect?link=x");
}

TEST_CASE("elicitation: texts with quotes and non-ASCII are escaped, not spliced") {
  const std::string message = "Connect \"Acme\" \xc3\xa9 </script>";
  const JsonPtr root = parse(mcp::link_required_response(mcp::LinkAnswer::UrlElicitationError, "1", "k\"",
                                                         "https://gw/c?link=a\"b", message));
  const json_t* elicitation = json_array_get(json_object_get(json_object_get(json_object_get(root.get(), "error"), "data"),
                                                             "elicitations"),
                                             0);
  CHECK(string_at(elicitation, "message") == message);
  CHECK(string_at(elicitation, "elicitationId") == "k\"");
  CHECK(string_at(elicitation, "url") == "https://gw/c?link=a\"b");
}

TEST_CASE("elicitation: declares_url_elicitation") {
  const std::string meta_url =
      R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","_meta":{"io.modelcontextprotocol/clientCapabilities":{"elicitation":{"url":{}}}}}})";
  CHECK(mcp::declares_url_elicitation(meta_url, true));
  CHECK_FALSE(mcp::declares_url_elicitation(meta_url, false));

  const std::string meta_form =
      R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"_meta":{"io.modelcontextprotocol/clientCapabilities":{"elicitation":{}}}}})";
  CHECK_FALSE(mcp::declares_url_elicitation(meta_form, true));
  const std::string meta_form_only =
      R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"_meta":{"io.modelcontextprotocol/clientCapabilities":{"elicitation":{"form":{}}}}}})";
  CHECK_FALSE(mcp::declares_url_elicitation(meta_form_only, true));

  const std::string initialize =
      R"({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{"elicitation":{"form":{},"url":{}}},"clientInfo":{"name":"c","version":"1"}}})";
  CHECK(mcp::declares_url_elicitation(initialize, false));
  CHECK_FALSE(mcp::declares_url_elicitation(initialize, true));
  const std::string initialize_form =
      R"({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"capabilities":{"elicitation":{}}}})";
  CHECK_FALSE(mcp::declares_url_elicitation(initialize_form, false));
  const std::string initialize_none = R"({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"capabilities":{}}})";
  CHECK_FALSE(mcp::declares_url_elicitation(initialize_none, false));

  for (const char* bad : {"", "{", "not json", "[]", "null", R"({"params":"x"})", R"({"params":{"capabilities":[]}})",
                          R"({"params":{"capabilities":{"elicitation":{"url":true}}}})"}) {
    CAPTURE(bad);
    CHECK_FALSE(mcp::declares_url_elicitation(bad, false));
    CHECK_FALSE(mcp::declares_url_elicitation(bad, true));
  }
}

// ---------------------------------------------------------------- tokens as JSON

TEST_CASE("tokens: a token endpoint answer becomes tokens, expires_in turned into expires_at") {
  const auto tokens = credentials::tokens_from_token_response(
      R"({"access_token":"at1","token_type":"Bearer","expires_in":3600,"refresh_token":"rt1","scope":"repo read:user"})",
      nullptr, 1000);
  REQUIRE(tokens.has_value());
  CHECK(tokens->access_token == "at1");
  CHECK(tokens->refresh_token == "rt1");
  CHECK(tokens->scope == "repo read:user");
  CHECK(tokens->expires_at == 4600);
  CHECK(tokens->updated_at == 1000);

  const auto no_expiry = credentials::tokens_from_token_response(R"({"access_token":"at"})", nullptr, 1000);
  REQUIRE(no_expiry.has_value());
  CHECK(no_expiry->expires_at == 0);
  CHECK(no_expiry->refresh_token.empty());
  CHECK(credentials::tokens_from_token_response(R"({"access_token":"at","expires_in":0})", nullptr, 1000)->expires_at == 0);
  CHECK(credentials::tokens_from_token_response(R"({"access_token":"at","expires_in":-5})", nullptr, 1000)->expires_at == 0);
  // Some servers send expires_in as a string of digits; anything else in a string is ignored.
  CHECK(credentials::tokens_from_token_response(R"({"access_token":"at","expires_in":"60"})", nullptr, 1000)->expires_at == 1060);
  CHECK(credentials::tokens_from_token_response(R"({"access_token":"at","expires_in":"6e1"})", nullptr, 1000)->expires_at == 0);
  CHECK(credentials::tokens_from_token_response(R"({"access_token":"at","expires_in":""})", nullptr, 1000)->expires_at == 0);
}

TEST_CASE("tokens: a refresh answer without refresh_token keeps the previous one; with one, it rotates") {
  credentials::UserTokens previous;
  previous.access_token = "at0";
  previous.refresh_token = "rt0";
  previous.scope = "repo";
  previous.expires_at = 100;
  previous.updated_at = 50;

  const auto kept = credentials::tokens_from_token_response(R"({"access_token":"at1","expires_in":60})", &previous, 2000);
  REQUIRE(kept.has_value());
  CHECK(kept->access_token == "at1");
  CHECK(kept->refresh_token == "rt0");
  CHECK(kept->scope == "repo");
  CHECK(kept->expires_at == 2060);
  CHECK(kept->updated_at == 2000);

  const auto rotated = credentials::tokens_from_token_response(
      R"({"access_token":"at2","refresh_token":"rt2","scope":"repo gist"})", &previous, 3000);
  REQUIRE(rotated.has_value());
  CHECK(rotated->access_token == "at2");
  CHECK(rotated->refresh_token == "rt2");
  CHECK(rotated->scope == "repo gist");
  CHECK(rotated->expires_at == 0);
}

TEST_CASE("tokens: an answer without access_token, or not an object, is nullopt") {
  credentials::UserTokens previous;
  previous.access_token = "at0";
  previous.refresh_token = "rt0";
  for (const char* body : {R"({"refresh_token":"rt1","expires_in":60})", R"({"access_token":""})",
                           R"({"access_token":42})", R"({"error":"invalid_grant"})", "[]", "", "not json"}) {
    CAPTURE(body);
    CHECK_FALSE(credentials::tokens_from_token_response(body, nullptr, 1000).has_value());
    CHECK_FALSE(credentials::tokens_from_token_response(body, &previous, 1000).has_value());
  }
}

TEST_CASE("tokens: tokens_to_json and tokens_from_json round-trip") {
  credentials::UserTokens tokens;
  tokens.access_token = "at \"quoted\" \xc3\xa9";
  tokens.refresh_token = "rt";
  tokens.scope = "a b";
  tokens.expires_at = 1'900'000'000;
  tokens.updated_at = 1'800'000'000;
  const std::string json = credentials::tokens_to_json(tokens);
  const auto back = credentials::tokens_from_json(json);
  REQUIRE(back.has_value());
  CHECK(back->access_token == tokens.access_token);
  CHECK(back->refresh_token == tokens.refresh_token);
  CHECK(back->scope == tokens.scope);
  CHECK(back->expires_at == tokens.expires_at);
  CHECK(back->updated_at == tokens.updated_at);

  credentials::UserTokens minimal;
  minimal.access_token = "x";
  const auto minimal_back = credentials::tokens_from_json(credentials::tokens_to_json(minimal));
  REQUIRE(minimal_back.has_value());
  CHECK(minimal_back->refresh_token.empty());
  CHECK(minimal_back->expires_at == 0);

  for (const char* bad : {"{}", R"({"access_token":""})", "[]", "", "garbage", "\"at\""}) {
    CAPTURE(bad);
    CHECK_FALSE(credentials::tokens_from_json(bad).has_value());
  }
}

// ---------------------------------------------------------------- token endpoint

TEST_CASE("token endpoint: renewal_due") {
  // A one-hour token, 300 s early.
  CHECK_FALSE(credentials::renewal_due(0, 3600, 300, 0));
  CHECK_FALSE(credentials::renewal_due(0, 3600, 300, 3299));
  CHECK(credentials::renewal_due(0, 3600, 300, 3300));
  CHECK(credentials::renewal_due(0, 3600, 300, 3600));
  CHECK(credentials::renewal_due(0, 3600, 300, 9999));
  // A 60 s token is renewed at most half its lifetime early, so it is still used.
  CHECK_FALSE(credentials::renewal_due(1000, 1060, 300, 1029));
  CHECK(credentials::renewal_due(1000, 1060, 300, 1030));
  // refresh_before 0: only once expired.
  CHECK_FALSE(credentials::renewal_due(0, 3600, 0, 3599));
  CHECK(credentials::renewal_due(0, 3600, 0, 3600));
  // Unknown expiry: never proactively.
  CHECK_FALSE(credentials::renewal_due(0, 0, 300, 1'000'000));
  // Expiry before obtained (clock trouble): due once expired.
  CHECK_FALSE(credentials::renewal_due(100, 50, 300, 49));
  CHECK(credentials::renewal_due(100, 50, 300, 50));
}

namespace {

config::CredentialConfig grant_credential() {
  config::CredentialConfig credential;
  credential.name = "tx";
  credential.server = "corp";
  return credential;
}

}  // namespace

TEST_CASE("token endpoint: token_exchange_body is an RFC 8693 form") {
  config::CredentialConfig credential = grant_credential();
  credential.type = config::CredentialType::TokenExchange;
  CHECK(credentials::token_exchange_body(credential, "eyJ.a+b/c=") ==
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange"
        "&subject_token=eyJ.a%2Bb%2Fc%3D"
        "&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token"
        "&requested_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token");
  credential.scopes = {"errors:read", "errors:write"};
  credential.resource = "https://api.example.com/v1";
  credential.audience = "api internal";
  const std::string body = credentials::token_exchange_body(credential, "tok");
  CHECK(body.rfind("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token=tok&", 0) == 0);
  CHECK(contains(body, "&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token"));
  CHECK(contains(body, "&scope=errors%3Aread%20errors%3Awrite"));
  CHECK(contains(body, "&resource=https%3A%2F%2Fapi.example.com%2Fv1"));
  CHECK(contains(body, "&audience=api%20internal"));
  CHECK_FALSE(contains(body, "client_secret"));  // client authentication is added by post_token_request
}

TEST_CASE("token endpoint: refresh_body and client_credentials_body") {
  config::CredentialConfig credential = grant_credential();
  CHECK(credentials::refresh_body(credential, "rt/1") == "grant_type=refresh_token&refresh_token=rt%2F1");
  credential.resource = "https://api.example.com";
  credential.scopes = {"repo"};
  CHECK(credentials::refresh_body(credential, "rt") ==
        "grant_type=refresh_token&refresh_token=rt&resource=https%3A%2F%2Fapi.example.com");

  config::CredentialConfig cc = grant_credential();
  CHECK(credentials::client_credentials_body(cc) == "grant_type=client_credentials");
  cc.scopes = {"a", "b:c"};
  cc.resource = "https://r.example/x";
  cc.audience = "aud";
  CHECK(credentials::client_credentials_body(cc) ==
        "grant_type=client_credentials&scope=a%20b%3Ac&resource=https%3A%2F%2Fr.example%2Fx&audience=aud");
}

// ---------------------------------------------------------------- query and cookies

TEST_CASE("http: query_param decodes percent escapes and '+'") {
  CHECK(http::query_param("a=1&b=hello%20world", "b") == std::optional<std::string>("hello world"));
  CHECK(http::query_param("a=1&b=hello+world", "b") == std::optional<std::string>("hello world"));
  CHECK(http::query_param("q=%2B%26%3d%41", "q") == std::optional<std::string>("+&=A"));
  CHECK(http::query_param("a=1", "a") == std::optional<std::string>("1"));
  CHECK(http::query_param("a=", "a") == std::optional<std::string>(""));
  CHECK(http::query_param("a", "a") == std::optional<std::string>(""));
  CHECK(http::query_param("a=1&a=2", "a") == std::optional<std::string>("1"));  // the first wins
  CHECK(http::query_param("link=abc.def_-", "link") == std::optional<std::string>("abc.def_-"));
  CHECK(http::query_param("code=x&state=y", "state") == std::optional<std::string>("y"));
  // Missing.
  CHECK_FALSE(http::query_param("", "a").has_value());
  CHECK_FALSE(http::query_param("b=1", "a").has_value());
  CHECK_FALSE(http::query_param("ab=1&ba=2", "a").has_value());
  CHECK_FALSE(http::query_param("&&", "a").has_value());
  // Bad escapes.
  CHECK_FALSE(http::query_param("a=%zz", "a").has_value());
  CHECK_FALSE(http::query_param("a=%4", "a").has_value());
  CHECK_FALSE(http::query_param("a=%", "a").has_value());
  CHECK_FALSE(http::query_param("a=x%g1", "a").has_value());
  // A bad escape elsewhere does not matter.
  CHECK(http::query_param("b=%zz&a=ok", "a") == std::optional<std::string>("ok"));
}

TEST_CASE("http: cookie_value finds a cookie among several pairs and fields") {
  http::HeaderList headers;
  CHECK_FALSE(http::cookie_value(headers, "sid").has_value());
  headers.add("Cookie", "theme=dark; mcpgate_connect=abc.def;  lang=en");
  CHECK(http::cookie_value(headers, "mcpgate_connect") == std::optional<std::string>("abc.def"));
  CHECK(http::cookie_value(headers, "theme") == std::optional<std::string>("dark"));
  CHECK(http::cookie_value(headers, "lang") == std::optional<std::string>("en"));
  CHECK_FALSE(http::cookie_value(headers, "mcpgate").has_value());
  CHECK_FALSE(http::cookie_value(headers, "connect").has_value());
  CHECK_FALSE(http::cookie_value(headers, "sid").has_value());
  headers.add("cookie", "sid=s1;other=x");
  CHECK(http::cookie_value(headers, "sid") == std::optional<std::string>("s1"));
  CHECK(http::cookie_value(headers, "other") == std::optional<std::string>("x"));
  http::HeaderList empty_value;
  empty_value.add("Cookie", "a=; b=2");
  CHECK(http::cookie_value(empty_value, "a") == std::optional<std::string>(""));
  CHECK(http::cookie_value(empty_value, "b") == std::optional<std::string>("2"));
  http::HeaderList spaced;
  spaced.add("Cookie", "a=1 ;\tb=2\t; c=3");
  CHECK(http::cookie_value(spaced, "a") == std::optional<std::string>("1"));
  CHECK(http::cookie_value(spaced, "b") == std::optional<std::string>("2"));
  CHECK(http::cookie_value(spaced, "c") == std::optional<std::string>("3"));
  http::HeaderList not_cookie;
  not_cookie.add("Set-Cookie", "sid=s1");
  CHECK_FALSE(http::cookie_value(not_cookie, "sid").has_value());
}

// ---------------------------------------------------------------- session capabilities

TEST_CASE("session capabilities: remember, look up, and forget the oldest past capacity") {
  mcp::SessionCapabilities sessions(2);
  CHECK_FALSE(sessions.url_elicitation("s1"));
  sessions.remember("s1", true);
  sessions.remember("s2", false);
  CHECK(sessions.url_elicitation("s1"));
  CHECK_FALSE(sessions.url_elicitation("s2"));
  sessions.remember("s3", true);  // s1 is the oldest: forgotten
  CHECK_FALSE(sessions.url_elicitation("s1"));
  CHECK_FALSE(sessions.url_elicitation("s2"));
  CHECK(sessions.url_elicitation("s3"));
  // Remembering a known session updates it without making room.
  sessions.remember("s2", true);
  CHECK(sessions.url_elicitation("s2"));
  CHECK(sessions.url_elicitation("s3"));
  sessions.remember("s4", true);  // s2 is still the oldest
  CHECK_FALSE(sessions.url_elicitation("s2"));
  CHECK(sessions.url_elicitation("s3"));
  CHECK(sessions.url_elicitation("s4"));
}

// ---------------------------------------------------------------- TokenStore over the memory backend

namespace doctest {
template <>
struct StringMaker<mcpgate::credentials::StoreStatus> {
  static String convert(mcpgate::credentials::StoreStatus status) { return mcpgate::credentials::status_name(status); }
};
}  // namespace doctest

namespace {

using credentials::StoreStatus;
using credentials::TokenStore;
using credentials::UserKey;
using credentials::UserTokens;

using testing::LoopThread;

template <typename Value>
struct Answer {
  Value value{};
  bool inside_call = false;  // the callback ran before the starting call returned (forbidden)
  bool on_loop = false;      // the callback ran on the loop's thread
};

// Runs `start(done)` on the loop thread and waits (bounded) for the value handed to `done`.
template <typename Value, typename Start>
Answer<Value> await_on(LoopThread& thread, Start start) {
  auto promise = std::make_shared<std::promise<Answer<Value>>>();
  auto future = promise->get_future();
  thread.loop().post([start = std::move(start), promise]() mutable {
    const auto loop_thread = std::this_thread::get_id();
    auto inside = std::make_shared<bool>(true);
    start([promise, inside, loop_thread](Value value) {
      promise->set_value({std::move(value), *inside, std::this_thread::get_id() == loop_thread});
    });
    *inside = false;
  });
  REQUIRE_MESSAGE(future.wait_for(kAnswerWait) == std::future_status::ready, "the store never answered");
  Answer<Value> answer = future.get();
  CHECK_FALSE(answer.inside_call);
  CHECK(answer.on_loop);
  return answer;
}

// One TokenStore over the memory backend, on its own loop thread.
class StoreOnLoop {
 public:
  StoreOnLoop(std::shared_ptr<credentials::MemoryStoreData> data, std::shared_ptr<const TokenSealer> sealer,
              std::string prefix = "mcpgate:")
      : store_(credentials::make_store_backend(config::TokenStoreConfig{}, thread_.loop(), std::move(data)),
               std::move(sealer), std::move(prefix), nullptr) {}

  StoreStatus save(const UserKey& user, const UserTokens& tokens) {
    return status_of([this, user, tokens](auto done) { store_.save(user, tokens, std::move(done)); });
  }
  std::pair<StoreStatus, UserTokens> load(const UserKey& user) {
    using Loaded = std::pair<StoreStatus, UserTokens>;
    return await_on<Loaded>(thread_, [this, user](auto done) {
             store_.load(user, [done = std::move(done)](StoreStatus status, UserTokens tokens) {
               done(Loaded{status, std::move(tokens)});
             });
           })
        .value;
  }
  StoreStatus erase(const UserKey& user) {
    return status_of([this, user](auto done) { store_.erase(user, std::move(done)); });
  }
  StoreStatus lock(const UserKey& user, const std::string& owner, int64_t ttl_ms) {
    return status_of([this, user, owner, ttl_ms](auto done) { store_.lock(user, owner, ttl_ms, std::move(done)); });
  }
  // unlock() answers nothing; a no-op posted after it tells when the loop has run it.
  void unlock(const UserKey& user, const std::string& owner) {
    await_on<int>(thread_, [this, user, owner](auto done) {
      store_.unlock(user, owner);
      thread_.loop().post([done = std::move(done)] { done(0); });
    });
  }
  StoreStatus put_record(const std::string& record, const std::string& value, int64_t ttl_ms) {
    return status_of([this, record, value, ttl_ms](auto done) { store_.put_record(record, value, ttl_ms, std::move(done)); });
  }
  std::pair<StoreStatus, std::string> take_record(const std::string& record) {
    using Taken = std::pair<StoreStatus, std::string>;
    return await_on<Taken>(thread_, [this, record](auto done) {
             store_.take_record(record, [done = std::move(done)](StoreStatus status, std::string value) {
               done(Taken{status, std::move(value)});
             });
           })
        .value;
  }
  StoreStatus claim_once(const std::string& record, int64_t ttl_ms) {
    return status_of([this, record, ttl_ms](auto done) { store_.claim_once(record, ttl_ms, std::move(done)); });
  }

 private:
  // Runs `start(done)` on the loop, done taking a StoreStatus; `start` holds copies of its arguments.
  template <typename Start>
  StoreStatus status_of(Start start) {
    return await_on<StoreStatus>(thread_, [start](auto done) {
             start([done = std::move(done)](StoreStatus status) { done(status); });
           })
        .value;
  }

  LoopThread thread_;  // before store_: the backend posts to this loop
  TokenStore store_;
};

UserTokens sample_tokens(const std::string& access) {
  UserTokens tokens;
  tokens.access_token = access;
  tokens.refresh_token = "refresh-" + access;
  tokens.scope = "repo";
  tokens.expires_at = 1'900'000'000;
  tokens.updated_at = 1'800'000'000;
  return tokens;
}

// Snapshot of the shared map's keys and values.
std::vector<std::pair<std::string, std::string>> entries_of(credentials::MemoryStoreData& data) {
  std::lock_guard lock(data.mutex);
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [key, entry] : data.entries) out.emplace_back(key, entry.value);
  return out;
}

}  // namespace

TEST_CASE("token store: save and load round-trip; a missing user is NotFound; erase removes") {
  auto data = std::make_shared<credentials::MemoryStoreData>();
  StoreOnLoop store(data, std::make_shared<const TokenSealer>(std::vector<std::string>{kKeyA}));
  const UserKey alice{"github", "https://idp.example", "alice"};
  const UserKey other_credential{"gitlab", "https://idp.example", "alice"};
  const UserKey other_issuer{"github", "https://idp2.example", "alice"};

  const auto missing = store.load(alice);
  CHECK(missing.first == StoreStatus::NotFound);

  REQUIRE(store.save(alice, sample_tokens("at-alice")) == StoreStatus::Ok);
  const auto [status, tokens] = store.load(alice);
  CHECK(status == StoreStatus::Ok);
  CHECK(tokens.access_token == "at-alice");
  CHECK(tokens.refresh_token == "refresh-at-alice");
  CHECK(tokens.scope == "repo");
  CHECK(tokens.expires_at == 1'900'000'000);
  CHECK(tokens.updated_at == 1'800'000'000);
  // Each credential and issuer is its own entry.
  CHECK(store.load(other_credential).first == StoreStatus::NotFound);
  CHECK(store.load(other_issuer).first == StoreStatus::NotFound);

  REQUIRE(store.save(alice, sample_tokens("at-alice-2")) == StoreStatus::Ok);
  CHECK(store.load(alice).second.access_token == "at-alice-2");

  CHECK(store.erase(alice) == StoreStatus::Ok);
  CHECK(store.load(alice).first == StoreStatus::NotFound);
  CHECK(store.erase(alice) == StoreStatus::Ok);  // erasing what is not there is fine
}

TEST_CASE("token store: values in the backend are sealed and bound to their user's key") {
  auto data = std::make_shared<credentials::MemoryStoreData>();
  const auto sealer = std::make_shared<const TokenSealer>(std::vector<std::string>{kKeyA});
  StoreOnLoop store(data, sealer);
  const UserKey alice{"github", "https://idp.example", "alice"};
  const UserKey bob{"github", "https://idp.example", "bob"};
  REQUIRE(store.save(alice, sample_tokens("gho_ALICE_SECRET")) == StoreStatus::Ok);
  REQUIRE(store.save(bob, sample_tokens("gho_BOB_SECRET")) == StoreStatus::Ok);

  const auto entries = entries_of(*data);
  REQUIRE(entries.size() == 2);
  std::string alice_key;
  std::string bob_key;
  for (const auto& [key, value] : entries) {
    CAPTURE(key);
    CHECK(key.rfind("mcpgate:tokens:github:", 0) == 0);
    CHECK_FALSE(contains(key, "alice"));  // identifiers are encoded, not written raw
    CHECK_FALSE(contains(value, "SECRET"));
    CHECK_FALSE(contains(value, "refresh-"));
    CHECK(value.rfind(sealer->sealing_key_id() + ".", 0) == 0);
    const auto plain = sealer->open(value, key);
    REQUIRE(plain.has_value());
    (contains(*plain, "gho_ALICE_SECRET") ? alice_key : bob_key) = key;
  }
  REQUIRE_FALSE(alice_key.empty());
  REQUIRE_FALSE(bob_key.empty());

  // Alice's sealed value copied over Bob's entry does not open as Bob's.
  {
    std::lock_guard lock(data->mutex);
    data->entries[bob_key].value = data->entries[alice_key].value;
  }
  CHECK(store.load(bob).first == StoreStatus::NotFound);
  CHECK(store.load(alice).second.access_token == "gho_ALICE_SECRET");

  // A tampered value does not open either.
  {
    std::lock_guard lock(data->mutex);
    std::string& value = data->entries[alice_key].value;
    value[value.size() / 2] = value[value.size() / 2] == 'A' ? 'B' : 'A';
  }
  CHECK(store.load(alice).first == StoreStatus::NotFound);

  // A store with another key reads nothing of this one's.
  REQUIRE(store.save(alice, sample_tokens("gho_ALICE_SECRET")) == StoreStatus::Ok);
  StoreOnLoop other_key(data, std::make_shared<const TokenSealer>(std::vector<std::string>{kKeyB}));
  CHECK(other_key.load(alice).first == StoreStatus::NotFound);
  // One that keeps this key as an old one still does.
  StoreOnLoop rotated(data, std::make_shared<const TokenSealer>(std::vector<std::string>{kKeyB, kKeyA}));
  CHECK(rotated.load(alice).second.access_token == "gho_ALICE_SECRET");
}

TEST_CASE("token store: the refresh lock has one holder; only the holder unlocks") {
  auto data = std::make_shared<credentials::MemoryStoreData>();
  StoreOnLoop store(data, std::make_shared<const TokenSealer>(std::vector<std::string>{kKeyA}));
  const UserKey alice{"github", "https://idp.example", "alice"};
  const UserKey bob{"github", "https://idp.example", "bob"};

  CHECK(store.lock(alice, "owner-1", 10000) == StoreStatus::Ok);
  CHECK(store.lock(alice, "owner-2", 10000) == StoreStatus::Conflict);
  CHECK(store.lock(alice, "owner-1", 10000) == StoreStatus::Conflict);  // not re-entrant
  CHECK(store.lock(bob, "owner-2", 10000) == StoreStatus::Ok);          // per user
  store.unlock(alice, "owner-2");  // not the holder: nothing happens
  CHECK(store.lock(alice, "owner-2", 10000) == StoreStatus::Conflict);
  store.unlock(alice, "owner-1");
  CHECK(store.lock(alice, "owner-2", 10000) == StoreStatus::Ok);
  // A lock whose holder died expires.
  CHECK(store.lock(UserKey{"c", "i", "s"}, "owner", 1) == StoreStatus::Ok);
  std::this_thread::sleep_for(20ms);
  CHECK(store.lock(UserKey{"c", "i", "s"}, "owner-3", 10000) == StoreStatus::Ok);
}

TEST_CASE("token store: claim_once is Ok once, then Conflict") {
  auto data = std::make_shared<credentials::MemoryStoreData>();
  StoreOnLoop store(data, std::make_shared<const TokenSealer>(std::vector<std::string>{kKeyA}));
  CHECK(store.claim_once("link-id-1", 60000) == StoreStatus::Ok);
  CHECK(store.claim_once("link-id-1", 60000) == StoreStatus::Conflict);
  CHECK(store.claim_once("link-id-2", 60000) == StoreStatus::Ok);
  CHECK(store.claim_once("short", 1) == StoreStatus::Ok);
  std::this_thread::sleep_for(20ms);
  CHECK(store.claim_once("short", 60000) == StoreStatus::Ok);  // after its ttl
}

TEST_CASE("token store: records are sealed and single use") {
  auto data = std::make_shared<credentials::MemoryStoreData>();
  StoreOnLoop store(data, std::make_shared<const TokenSealer>(std::vector<std::string>{kKeyA}));
  CHECK(store.take_record("never-put").first == StoreStatus::NotFound);
  REQUIRE(store.put_record("state-1", "{\"verifier\":\"pkce-secret\"}", 60000) == StoreStatus::Ok);
  for (const auto& [key, value] : entries_of(*data)) {
    CAPTURE(key);
    CHECK_FALSE(contains(value, "pkce-secret"));
  }
  const auto taken = store.take_record("state-1");
  CHECK(taken.first == StoreStatus::Ok);
  CHECK(taken.second == "{\"verifier\":\"pkce-secret\"}");
  CHECK(store.take_record("state-1").first == StoreStatus::NotFound);
  CHECK(entries_of(*data).empty());

  REQUIRE(store.put_record("short", "v", 1) == StoreStatus::Ok);
  std::this_thread::sleep_for(20ms);
  CHECK(store.take_record("short").first == StoreStatus::NotFound);  // expired
}

TEST_CASE("token store: two stores on two loops sharing one memory map see each other's writes") {
  auto data = std::make_shared<credentials::MemoryStoreData>();
  const auto sealer = std::make_shared<const TokenSealer>(std::vector<std::string>{kKeyA});
  StoreOnLoop first(data, sealer);
  StoreOnLoop second(data, sealer);
  const UserKey alice{"github", "https://idp.example", "alice"};

  REQUIRE(first.save(alice, sample_tokens("at-1")) == StoreStatus::Ok);
  CHECK(second.load(alice).second.access_token == "at-1");
  REQUIRE(second.save(alice, sample_tokens("at-2")) == StoreStatus::Ok);
  CHECK(first.load(alice).second.access_token == "at-2");

  CHECK(first.lock(alice, "loop-1", 10000) == StoreStatus::Ok);
  CHECK(second.lock(alice, "loop-2", 10000) == StoreStatus::Conflict);
  first.unlock(alice, "loop-1");
  CHECK(second.lock(alice, "loop-2", 10000) == StoreStatus::Ok);

  CHECK(first.claim_once("link", 60000) == StoreStatus::Ok);
  CHECK(second.claim_once("link", 60000) == StoreStatus::Conflict);

  REQUIRE(first.put_record("state", "v", 60000) == StoreStatus::Ok);
  CHECK(second.take_record("state").second == "v");
  CHECK(first.take_record("state").first == StoreStatus::NotFound);

  CHECK(second.erase(alice) == StoreStatus::Ok);
  CHECK(first.load(alice).first == StoreStatus::NotFound);

  // Another prefix is another namespace in the same map.
  StoreOnLoop other_prefix(data, sealer, "other:");
  REQUIRE(first.save(alice, sample_tokens("at-3")) == StoreStatus::Ok);
  CHECK(other_prefix.load(alice).first == StoreStatus::NotFound);
}

TEST_CASE("token lifetimes: regression (fuzzing): huge or negative expires_in never overflows") {
  const auto huge = credentials::tokens_from_token_response(R"({"access_token":"a","expires_in":9223372036854775807})", nullptr, 1000);
  REQUIRE(huge);
  CHECK(huge->expires_at == 1000 + int64_t{10} * 365 * 86400);
  CHECK(credentials::expiry_after(1000, -5) == 1000);
  CHECK(credentials::expiry_after(1000, 3600) == 4600);
  CHECK(credentials::expiry_after(INT64_MAX - 10, INT64_MAX) > 0);
}
