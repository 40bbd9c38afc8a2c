// Tests for the bodies the gateway writes itself: the plain JSON error and the
// JSON-RPC 2.0 error response (code per reason, id echoed, data.status/reason).
#include <doctest/doctest.h>

#include <jansson.h>

#include <memory>
#include <optional>
#include <string>

#include "http/replies.h"

using mcpgate::http::error_body;
using mcpgate::http::GatewayError;
using mcpgate::http::jsonrpc_code_for;
using mcpgate::http::status_text;

namespace {

using JsonPtr = std::unique_ptr<json_t, decltype(&json_decref)>;

// Parses `text` as a JSON object; fails the test if it is not one.
JsonPtr parse_object(const std::string& text) {
  json_error_t error;
  JsonPtr value(json_loads(text.c_str(), 0, &error), &json_decref);
  INFO("body: " << text << " error: " << error.text);
  REQUIRE(value);
  REQUIRE(json_is_object(value.get()));
  return value;
}

std::string string_at(json_t* object, const char* key) {
  json_t* value = json_object_get(object, key);
  INFO("key: " << key);
  REQUIRE(json_is_string(value));
  return json_string_value(value);
}

json_int_t integer_at(json_t* object, const char* key) {
  json_t* value = json_object_get(object, key);
  INFO("key: " << key);
  REQUIRE(json_is_integer(value));
  return json_integer_value(value);
}

}  // namespace

TEST_CASE("replies: plain error body has error and message only") {
  const auto body = parse_object(error_body({404, "not_found", "no route for this path"}, std::nullopt));
  CHECK(json_object_size(body.get()) == 2);
  CHECK(string_at(body.get(), "error") == "not_found");
  CHECK(string_at(body.get(), "message") == "no route for this path");
}

TEST_CASE("replies: plain error body escapes quotes, backslashes and newlines") {
  const std::string message = "bad \"value\" \\ here\nnext line";
  const auto body = parse_object(error_body({400, "bad_request", message}, std::nullopt));
  CHECK(string_at(body.get(), "message") == message);
}

TEST_CASE("replies: JSON-RPC error echoes a numeric id") {
  const auto body = parse_object(error_body({502, "upstream_unavailable", "the upstream refused"}, "42"));
  CHECK(string_at(body.get(), "jsonrpc") == "2.0");
  CHECK(integer_at(body.get(), "id") == 42);
  CHECK_FALSE(json_object_get(body.get(), "result"));
  json_t* error = json_object_get(body.get(), "error");
  REQUIRE(json_is_object(error));
  CHECK(integer_at(error, "code") == -32000);
  CHECK(string_at(error, "message") == "the upstream refused");
  json_t* data = json_object_get(error, "data");
  REQUIRE(json_is_object(data));
  CHECK(integer_at(data, "status") == 502);
  CHECK(string_at(data, "reason") == "upstream_unavailable");
}

TEST_CASE("replies: JSON-RPC error echoes a string id") {
  const auto body = parse_object(error_body({403, "forbidden", "no"}, R"("req-\"7\"")"));
  CHECK(string_at(body.get(), "id") == "req-\"7\"");
}

TEST_CASE("replies: JSON-RPC error with a null id") {
  const auto body = parse_object(error_body({400, "parse_error", "not JSON"}, "null"));
  json_t* id = json_object_get(body.get(), "id");
  REQUIRE(id != nullptr);  // present, not omitted
  CHECK(json_is_null(id));
}

TEST_CASE("replies: JSON-RPC error with an unparsable id text falls back to null") {
  const auto body = parse_object(error_body({400, "parse_error", "not JSON"}, "{not json"));
  json_t* id = json_object_get(body.get(), "id");
  REQUIRE(id != nullptr);
  CHECK(json_is_null(id));
}

TEST_CASE("replies: JSON-RPC codes by reason") {
  struct Case {
    const char* reason;
    int code;
  };
  for (const Case& c : {Case{"parse_error", -32700}, Case{"invalid_request", -32600}, Case{"header_mismatch", -32020},
                        Case{"not_found", -32000}, Case{"upstream_timeout", -32000}, Case{"", -32000},
                        Case{"Parse_Error", -32000}}) {
    CAPTURE(c.reason);
    CHECK(jsonrpc_code_for(c.reason) == c.code);
    const auto body = parse_object(error_body({400, c.reason, "m"}, "1"));
    json_t* error = json_object_get(body.get(), "error");
    REQUIRE(json_is_object(error));
    CHECK(integer_at(error, "code") == c.code);
    CHECK(string_at(json_object_get(error, "data"), "reason") == c.reason);
  }
}

TEST_CASE("replies: status texts") {
  CHECK(status_text(200) == "OK");
  CHECK(status_text(400) == "Bad Request");
  CHECK(status_text(413) == "Content Too Large");
  CHECK(status_text(431) == "Request Header Fields Too Large");
  CHECK(status_text(502) == "Bad Gateway");
  CHECK(status_text(505) == "HTTP Version Not Supported");
  CHECK(status_text(299) == "Unknown");
  CHECK(status_text(-1) == "Unknown");
}

TEST_CASE("replies: a batch's error is a batch, one response per request id") {
  const std::string text = error_body({403, "origin_not_allowed", "no"}, R"(["b1",2])");
  json_error_t error;
  JsonPtr body(json_loads(text.c_str(), 0, &error), &json_decref);
  REQUIRE(json_is_array(body.get()));
  REQUIRE(json_array_size(body.get()) == 2);
  CHECK(string_at(json_array_get(body.get(), 0), "id") == "b1");
  CHECK(integer_at(json_array_get(body.get(), 1), "id") == 2);
  CHECK(integer_at(json_object_get(json_array_get(body.get(), 1), "error"), "code") == -32000);
}
