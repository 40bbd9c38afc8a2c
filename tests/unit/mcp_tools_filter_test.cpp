#include <doctest/doctest.h>
#include <jansson.h>

#include <memory>
#include <string>

#include "mcp/tools_filter.h"

using mcpgate::mcp::filter_tools_list_result;
using mcpgate::mcp::FilterOutcome;

namespace {

const auto only_public = [](std::string_view tool) { return tool != "delete_note"; };

std::unique_ptr<json_t, decltype(&json_decref)> parse(const std::string& text) {
  return {json_loads(text.c_str(), 0, nullptr), &json_decref};
}

}  // namespace

TEST_CASE("tools filter: hidden tools are removed and the result is marked private") {
  std::string message =
      R"({"jsonrpc":"2.0","id":3,"result":{"tools":[{"name":"create_note"},{"name":"delete_note"},{"name":"x"}],"ttlMs":60000,"cacheScope":"public"}})";
  REQUIRE(filter_tools_list_result(message, "3", only_public) == FilterOutcome::Filtered);
  auto root = parse(message);
  REQUIRE(root);
  json_t* result = json_object_get(root.get(), "result");
  json_t* tools = json_object_get(result, "tools");
  REQUIRE(json_array_size(tools) == 2);
  CHECK(std::string(json_string_value(json_object_get(json_array_get(tools, 0), "name"))) == "create_note");
  CHECK(std::string(json_string_value(json_object_get(json_array_get(tools, 1), "name"))) == "x");
  CHECK(std::string(json_string_value(json_object_get(result, "cacheScope"))) == "private");
  CHECK(json_integer_value(json_object_get(result, "ttlMs")) == 60000);
}

TEST_CASE("tools filter: other messages pass unchanged") {
  for (const char* text : {R"({"jsonrpc":"2.0","method":"notifications/message","params":{}})",
                           R"({"jsonrpc":"2.0","id":4,"result":{"tools":[{"name":"delete_note"}]}})",
                           R"({"jsonrpc":"2.0","id":"3","result":{"tools":[{"name":"delete_note"}]}})",
                           R"({"jsonrpc":"2.0","id":3,"error":{"code":-1,"message":"x"}})"}) {
    CAPTURE(text);
    std::string message = text;
    CHECK(filter_tools_list_result(message, "3", only_public) == FilterOutcome::NotResult);
    CHECK(message == text);
  }
}

TEST_CASE("tools filter: what cannot be read fails closed") {
  for (const char* text : {"not json", R"({"jsonrpc":"2.0","id":3,"result":{"tools":"all"}})",
                           R"({"jsonrpc":"2.0","id":3,"result":{}})",
                           R"({"jsonrpc":"2.0","id":3,"id":3,"result":{"tools":[]}})"}) {
    CAPTURE(text);
    std::string message = text;
    CHECK(filter_tools_list_result(message, "3", only_public) == FilterOutcome::Malformed);
  }
}

TEST_CASE("tools filter: names and ids are compared as the client will read them") {
  // An escaped name is the hidden tool all the same; an id spelled with escapes is the request's.
  std::string message =
      R"({"jsonrpc":"2.0","id":"\u0033a","result":{"tools":[{"name":"delete\u005fnote"},{"description":"no name"},7,{"name":"ok"}]}})";
  REQUIRE(filter_tools_list_result(message, R"("3a")", only_public) == FilterOutcome::Filtered);
  CHECK(message == R"({"jsonrpc":"2.0","id":"\u0033a","result":{"cacheScope":"private","tools":[{"name":"ok"}]}})");
}

TEST_CASE("tools filter: kept tools are copied as sent, and an existing cacheScope is replaced") {
  std::string message = "{ \"id\" : 3, \"result\" : { \"cacheScope\" : \"public\" , \"tools\" : [ {\"name\": \"a\",\n \"x\": [1, 2]} , {\"name\":\"delete_note\"} ] } }";
  REQUIRE(filter_tools_list_result(message, "3", only_public) == FilterOutcome::Filtered);
  CHECK(message == "{ \"id\" : 3, \"result\" : { \"cacheScope\" : \"private\" , \"tools\" : [{\"name\": \"a\",\n \"x\": [1, 2]}] } }");
  std::string none = R"({"id":3,"result":{"tools":[{"name":"delete_note"}]}})";
  REQUIRE(filter_tools_list_result(none, "3", only_public) == FilterOutcome::Filtered);
  CHECK(none == R"({"id":3,"result":{"cacheScope":"private","tools":[]}})");
}

TEST_CASE("tools filter: a second tools array or result could show what the filter never saw") {
  for (const char* text : {R"({"id":3,"result":{"tools":[],"tools":[{"name":"delete_note"}]}})",
                           R"({"id":3,"result":{"tools":[]},"result":{"tools":[{"name":"delete_note"}]}})",
                           R"({"id":3,"result":{"tools":[{"name":"a","name":"delete_note"}]}})",
                           R"({"id":3,"result":{"tools":[{"name":"delete_note"}]})"}) {
    CAPTURE(text);
    std::string message = text;
    CHECK(filter_tools_list_result(message, "3", only_public) == FilterOutcome::Malformed);
  }
}
