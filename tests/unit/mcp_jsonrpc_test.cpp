// Tests for what the gateway reads from a JSON-RPC body (method, id, target name)
// and the bounded method label used in metrics.
#include <doctest/doctest.h>

#include <string>
#include <string_view>

#include "mcp/jsonrpc.h"

using mcpgate::mcp::decode_mcp_header_value;
using mcpgate::mcp::inspect_jsonrpc;
using mcpgate::mcp::metrics_method_label;

TEST_CASE("jsonrpc: a request") {
  const auto info = inspect_jsonrpc(R"({"jsonrpc":"2.0","id":7,"method":"tools/list","params":{}})");
  CHECK(info.valid_json);
  CHECK(info.is_jsonrpc);
  CHECK_FALSE(info.is_batch);
  CHECK(info.is_request);
  CHECK(info.method == "tools/list");
  CHECK(info.id_json == "7");
  CHECK_FALSE(info.has_name);
  CHECK(info.name.empty());
}

TEST_CASE("jsonrpc: a notification has no id") {
  const auto info = inspect_jsonrpc(R"({"jsonrpc":"2.0","method":"notifications/initialized"})");
  CHECK(info.valid_json);
  CHECK(info.is_jsonrpc);
  CHECK_FALSE(info.is_request);
  CHECK(info.method == "notifications/initialized");
  CHECK(info.id_json == "null");
}

TEST_CASE("jsonrpc: a response has an id but no method") {
  const auto result = inspect_jsonrpc(R"({"jsonrpc":"2.0","id":"abc","result":{"roots":[]}})");
  CHECK(result.valid_json);
  CHECK(result.is_jsonrpc);
  CHECK_FALSE(result.is_request);
  CHECK(result.method.empty());
  CHECK(result.id_json == R"("abc")");

  const auto error = inspect_jsonrpc(R"({"jsonrpc":"2.0","id":3,"error":{"code":-1,"message":"no"}})");
  CHECK(error.is_jsonrpc);
  CHECK_FALSE(error.is_request);
  CHECK(error.id_json == "3");
}

TEST_CASE("jsonrpc: a batch is read from its first message") {
  const auto info = inspect_jsonrpc(
      R"([{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search"}},)"
      R"({"jsonrpc":"2.0","id":2,"method":"ping"}])");
  CHECK(info.valid_json);
  CHECK(info.is_batch);
  CHECK(info.is_jsonrpc);
  CHECK(info.is_request);
  CHECK(info.method == "tools/call");
  CHECK(info.id_json == "1");
  CHECK(info.name == "search");
}

TEST_CASE("jsonrpc: batches that are not JSON-RPC") {
  SUBCASE("empty") {
    const auto info = inspect_jsonrpc("[]");
    CHECK(info.valid_json);
    CHECK(info.is_batch);
    CHECK_FALSE(info.is_jsonrpc);
    CHECK(info.method.empty());
  }
  SUBCASE("of non-objects") {
    const auto info = inspect_jsonrpc("[1, 2]");
    CHECK(info.valid_json);
    CHECK(info.is_batch);
    CHECK_FALSE(info.is_jsonrpc);
  }
}

TEST_CASE("jsonrpc: invalid JSON") {
  for (const char* body : {"", "{", "not json", R"({"jsonrpc":"2.0",})", R"({"jsonrpc":"2.0"} trailing)",
                           R"({"jsonrpc":"2.0","method":"a\u0000b"})", "{'jsonrpc':'2.0'}"}) {
    CAPTURE(body);
    const auto info = inspect_jsonrpc(body);
    CHECK_FALSE(info.valid_json);
    CHECK_FALSE(info.is_jsonrpc);
    CHECK_FALSE(info.is_request);
    CHECK(info.method.empty());
    CHECK(info.id_json == "null");
  }
}

TEST_CASE("jsonrpc: invalid UTF-8 is invalid JSON") {
  const auto info = inspect_jsonrpc("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"caf\xe9\"}");
  CHECK_FALSE(info.valid_json);
}

TEST_CASE("jsonrpc: a body with an embedded NUL byte is not read past it") {
  using namespace std::string_literals;
  const auto info = inspect_jsonrpc(R"({"jsonrpc":"2.0","id":1,"method":"ping"})"s + "\0garbage"s);
  CHECK_FALSE(info.valid_json);
}

TEST_CASE("jsonrpc: valid JSON that is not JSON-RPC 2.0") {
  for (const char* body : {R"({"jsonrpc":"1.0","id":1,"method":"ping"})", R"({"jsonrpc":2.0,"id":1,"method":"ping"})",
                           R"({"id":1,"method":"ping"})", R"("jsonrpc")", "42", "null", "{}"}) {
    CAPTURE(body);
    const auto info = inspect_jsonrpc(body);
    CHECK(info.valid_json);
    CHECK_FALSE(info.is_jsonrpc);
    CHECK_FALSE(info.is_batch);
  }
}

TEST_CASE("jsonrpc: id kinds") {
  SUBCASE("string") {
    const auto info = inspect_jsonrpc(R"({"jsonrpc":"2.0","id":"req-\"1\"","method":"ping"})");
    CHECK(info.is_request);
    CHECK(info.id_json == R"("req-\"1\"")");
  }
  SUBCASE("number") {
    const auto info = inspect_jsonrpc(R"({"jsonrpc":"2.0","id":-9007199254740993,"method":"ping"})");
    CHECK(info.is_request);
    CHECK(info.id_json == "-9007199254740993");
  }
  SUBCASE("zero") {
    const auto info = inspect_jsonrpc(R"({"jsonrpc":"2.0","id":0,"method":"ping"})");
    CHECK(info.is_request);
    CHECK(info.id_json == "0");
  }
  SUBCASE("empty string") {
    const auto info = inspect_jsonrpc(R"({"jsonrpc":"2.0","id":"","method":"ping"})");
    CHECK(info.is_request);
    CHECK(info.id_json == R"("")");
  }
  SUBCASE("null") {
    const auto info = inspect_jsonrpc(R"({"jsonrpc":"2.0","id":null,"method":"ping"})");
    CHECK(info.is_jsonrpc);
    CHECK(info.method == "ping");
    CHECK(info.id_json == "null");
  }
  // Only strings and integers are echoed: anything else is reported as null, so an
  // error reply never repeats an attacker-sized structure.
  for (const char* id : {R"({"nested":[1,2,3]})", "[1]", "1.5", "true"}) {
    CAPTURE(id);
    const auto info = inspect_jsonrpc(std::string(R"({"jsonrpc":"2.0","method":"ping","id":)") + id + "}");
    CHECK(info.valid_json);
    CHECK(info.is_jsonrpc);
    CHECK(info.id_json == "null");
    CHECK_FALSE(info.is_request);
  }
}

TEST_CASE("jsonrpc: the target name from params.name or params.uri") {
  SUBCASE("tools/call name") {
    const auto info = inspect_jsonrpc(
        R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_weather","arguments":{"name":"x"}}})");
    CHECK(info.has_name);
    CHECK(info.name == "get_weather");
  }
  SUBCASE("prompts/get name") {
    const auto info =
        inspect_jsonrpc(R"({"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"summarize"}})");
    CHECK(info.name == "summarize");
  }
  SUBCASE("resources/read uri") {
    const auto info =
        inspect_jsonrpc(R"({"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///etc/x"}})");
    CHECK(info.has_name);
    CHECK(info.name == "file:///etc/x");
  }
  SUBCASE("the field Mcp-Name mirrors depends on the method") {
    auto info = inspect_jsonrpc(R"({"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"u","name":"n"}})");
    CHECK(info.name == "u");
    info = inspect_jsonrpc(R"({"jsonrpc":"2.0","id":1,"method":"tasks/get","params":{"taskId":"t1"}})");
    CHECK(info.name == "t1");
    info = inspect_jsonrpc(R"({"jsonrpc":"2.0","id":1,"method":"m","params":{"uri":"u","name":"n"}})");
    CHECK_FALSE(info.has_name);
  }
  SUBCASE("no usable name") {
    for (const char* params : {R"({"name":5})", R"({"arguments":{"name":"x"}})", R"(["name"])", R"("name")", "{}"}) {
      CAPTURE(params);
      const auto info =
          inspect_jsonrpc(std::string(R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":)") + params + "}");
      CHECK(info.valid_json);
      CHECK_FALSE(info.has_name);
      CHECK(info.name.empty());
    }
  }
  SUBCASE("an empty name is still a name") {
    const auto info = inspect_jsonrpc(R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":""}})");
    CHECK(info.has_name);
    CHECK(info.name.empty());
  }
}

TEST_CASE("jsonrpc: a duplicated key anywhere makes the body unacceptable") {
  // The gateway's view must agree with the upstream's, or a policy on the method
  // or tool name could be bypassed with a duplicate key.
  for (const char* body :
       {R"({"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call","params":{"name":"a"}})",
        R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","name":"b"}})",
        R"([{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"id":3,"method":"ping"}])"}) {
    CAPTURE(body);
    const auto info = inspect_jsonrpc(body);
    CHECK_FALSE(info.valid_json);
    CHECK(info.duplicate_keys);
  }
  CHECK_FALSE(inspect_jsonrpc("{bad").duplicate_keys);
}

TEST_CASE("jsonrpc: every batch element is a target") {
  const auto info = inspect_jsonrpc(
      R"([{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"}},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"b"}}])");
  REQUIRE(info.targets.size() == 2);
  CHECK(info.targets[0].name == "a");
  CHECK(info.targets[1].name == "b");
  CHECK(info.is_batch);
}

TEST_CASE("jsonrpc: Mcp-* header values in the Base64 sentinel form are decoded") {
  CHECK(decode_mcp_header_value("echo") == "echo");
  CHECK(decode_mcp_header_value("=?base64?w6ljaG8=?=") == "\xc3\xa9" "cho");
  CHECK(decode_mcp_header_value("=?base64?ZWNobw==?=") == "echo");
  CHECK_FALSE(decode_mcp_header_value("=?base64?not base64?="));
}

TEST_CASE("jsonrpc: a non-string method is no method") {
  const auto info = inspect_jsonrpc(R"({"jsonrpc":"2.0","id":1,"method":["tools/call"]})");
  CHECK(info.is_jsonrpc);
  CHECK(info.method.empty());
  CHECK_FALSE(info.is_request);
}

TEST_CASE("jsonrpc: metrics method label is bounded") {
  for (const char* known : {"initialize", "ping", "tools/list", "tools/call", "resources/read", "prompts/get",
                            "notifications/initialized", "notifications/cancelled", "completion/complete"}) {
    CAPTURE(known);
    CHECK(metrics_method_label(known) == known);
  }
  for (const char* other : {"tools/call2", "Tools/Call", "tools/call ", "x", "rm -rf /", "notifications/", "tools"}) {
    CAPTURE(other);
    CHECK(metrics_method_label(other) == "other");
  }
  CHECK(metrics_method_label("") == "");
  const std::string huge(100000, 'a');
  CHECK(metrics_method_label(huge) == "other");
}

TEST_CASE("jsonrpc: the metrics label does not point into the caller's string") {
  std::string method = "tools/call";
  const std::string_view label = metrics_method_label(method);
  method.assign("xxxxxxxxxx");
  CHECK(label == "tools/call");
}

TEST_CASE("jsonrpc: params._meta.traceparent is read, and where one can be written") {
  const auto with_meta = inspect_jsonrpc(R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","_meta":{"traceparent":"00-x"}}})");
  CHECK(with_meta.meta_traceparent == std::optional<std::string>("00-x"));
  CHECK(with_meta.meta_writable);
  CHECK(inspect_jsonrpc(R"({"jsonrpc":"2.0","id":1,"method":"ping"})").meta_writable);
  CHECK_FALSE(inspect_jsonrpc(R"({"jsonrpc":"2.0","id":1,"method":"ping"})").meta_traceparent);
  CHECK_FALSE(inspect_jsonrpc(R"({"jsonrpc":"2.0","id":1,"method":"ping","params":[1]})").meta_writable);
  CHECK_FALSE(inspect_jsonrpc(R"({"jsonrpc":"2.0","id":1,"method":"ping","params":{"_meta":null}})").meta_writable);
  CHECK_FALSE(inspect_jsonrpc(R"([{"jsonrpc":"2.0","id":1,"method":"ping"}])").meta_writable);
  CHECK_FALSE(inspect_jsonrpc(R"({"jsonrpc":"2.0","id":1,"method":"t","params":{"_meta":{"traceparent":7}}})").meta_traceparent);
}

TEST_CASE("jsonrpc: with_meta_traceparent adds the key and keeps every other byte") {
  using mcpgate::mcp::with_meta_traceparent;
  const std::string tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  const std::string entry = R"("traceparent":")" + tp + R"(")";
  CHECK(with_meta_traceparent(R"({"jsonrpc":"2.0","id":1,"method":"ping"})", tp) ==
        R"({"params":{"_meta":{)" + entry + R"(}},"jsonrpc":"2.0","id":1,"method":"ping"})");
  // Numbers, spacing and escapes in the arguments pass untouched.
  const std::string args = R"({"n": 1.10, "fine": 2.50000000000000000001, "s": "a\"b\u00e9"})";
  const std::string call = "{ \"jsonrpc\":\"2.0\", \"id\":\"x\", \"method\":\"tools/call\",\n \"params\" : { \"name\":\"t\", \"arguments\": " + args + " } }";
  const auto traced = with_meta_traceparent(call, tp);
  REQUIRE(traced);
  CHECK(*traced == "{ \"jsonrpc\":\"2.0\", \"id\":\"x\", \"method\":\"tools/call\",\n \"params\" : {\"_meta\":{" + entry +
                        "}, \"name\":\"t\", \"arguments\": " + args + " } }");
  CHECK(inspect_jsonrpc(*traced).meta_traceparent == std::optional<std::string>(tp));
  CHECK(inspect_jsonrpc(*traced).name == "t");
  // An existing _meta keeps its keys; empty objects take no comma.
  CHECK(with_meta_traceparent(R"({"params":{"_meta":{"progressToken":5},"name":"t"},"id":1})", tp) ==
        R"({"params":{"_meta":{)" + entry + R"(,"progressToken":5},"name":"t"},"id":1})");
  CHECK(with_meta_traceparent(R"({"params":{"_meta":{ }},"id":1})", tp) == R"({"params":{"_meta":{)" + entry + R"( }},"id":1})");
  CHECK(with_meta_traceparent(R"({"id":1,"params":{}})", tp) == R"({"id":1,"params":{"_meta":{)" + entry + R"(}}})");
  // A key written with escapes is the member it names, as the upstream will read it: the entry
  // goes into it rather than into a second "params" the upstream would see twice.
  CHECK(with_meta_traceparent(R"({"par\u0061ms":{"name":"t"},"id":1})", tp) ==
        R"({"par\u0061ms":{"_meta":{)" + entry + R"(},"name":"t"},"id":1})");
  CHECK(with_meta_traceparent(R"({"params":{"_met\u0061":{}},"id":1})", tp) ==
        R"({"params":{"_met\u0061":{)" + entry + R"(}},"id":1})");
  // Other members with values of every kind before params are skipped correctly.
  const auto skipped = with_meta_traceparent(R"({"a":[1,{"params":2},"]"],"b":{"x":"}"},"c":true,"d":null,"params":{"k":1}})", tp);
  CHECK(skipped == R"({"a":[1,{"params":2},"]"],"b":{"x":"}"},"c":true,"d":null,"params":{"_meta":{)" + entry + R"(},"k":1}})");
}

TEST_CASE("jsonrpc: regression (fuzzing): Mcp-Name Base64 with padding only or too much padding is invalid") {
  for (const char* value : {"=?base64?====?=", "=?base64?A===?=", "=?base64?QQ===?=", "=?base64?========?="}) {
    CAPTURE(value);
    CHECK_FALSE(decode_mcp_header_value(value));
  }
  CHECK(decode_mcp_header_value("=?base64?QQ==?=") == "A");
}

TEST_CASE("jsonrpc: a request id must be a string or a 64-bit integer") {
  for (const char* id : {"1.5", "1e3", "1.0", "null", "true", "{}", "[1]", "99999999999999999999", "-9223372036854775809"}) {
    CAPTURE(id);
    const auto info = inspect_jsonrpc(std::string(R"({"jsonrpc":"2.0","method":"tools/list","id":)") + id + "}");
    CHECK(info.valid_json);
    CHECK(info.unusable_id);
    CHECK_FALSE(info.is_request);
    CHECK(info.id_json == "null");
  }
  // A response's id is the server's to choose: only requests are held to it.
  CHECK_FALSE(inspect_jsonrpc(R"({"jsonrpc":"2.0","id":1.5,"result":{}})").unusable_id);
  // In a batch, any request counts.
  CHECK(inspect_jsonrpc(R"([{"jsonrpc":"2.0","method":"ping","id":1},{"jsonrpc":"2.0","method":"ping","id":null}])").unusable_id);
}

TEST_CASE("jsonrpc: ids are canonical, so a request and its response compare equal however spelled") {
  CHECK(inspect_jsonrpc(R"({"jsonrpc":"2.0","method":"ping","id":-0})").id_json == "0");
  CHECK(inspect_jsonrpc(R"({"jsonrpc":"2.0","method":"ping","id":-9223372036854775808})").id_json == "-9223372036854775808");
  CHECK(inspect_jsonrpc(R"({"jsonrpc":"2.0","method":"ping","id":"\u0061\/b"})").id_json == R"("a/b")");
  CHECK(inspect_jsonrpc(R"({"jsonrpc":"2.0","method":"ping","id":"q\"\\\n\ud83d\ude00"})").id_json == "\"q\\\"\\\\\\n\xf0\x9f\x98\x80\"");
}

TEST_CASE("jsonrpc: member names and values are read with their escapes resolved") {
  const auto info = inspect_jsonrpc(
      R"({"jsonrp\u0063":"2.0","\u006dethod":"tools/c\u0061ll","id":1,"params":{"n\u0061me":"del\u00e9te"}})");
  CHECK(info.is_jsonrpc);
  CHECK(info.method == "tools/call");
  CHECK(info.has_name);
  CHECK(info.name == "del\xc3\xa9te");
  // The same member twice, once escaped, is a duplicate.
  CHECK(inspect_jsonrpc(R"({"jsonrpc":"2.0","method":"ping","id":1,"\u0069d":2})").duplicate_keys);
  CHECK(inspect_jsonrpc(R"({"jsonrpc":"2.0","method":"tools/call","id":1,"params":{"name":"a","arguments":{"x":1,"x":2}}})").duplicate_keys);
}

TEST_CASE("jsonrpc: who a gateway error answers: the id, or every request id of a batch") {
  using mcpgate::mcp::error_reply_ids;
  CHECK(error_reply_ids(inspect_jsonrpc(R"({"jsonrpc":"2.0","id":"a","method":"ping"})")) == R"("a")");
  CHECK(error_reply_ids(inspect_jsonrpc(R"({"jsonrpc":"2.0","method":"notifications/x"})")) == "null");
  CHECK(error_reply_ids(inspect_jsonrpc(
            R"([{"jsonrpc":"2.0","id":"b1","method":"ping"},{"jsonrpc":"2.0","method":"notifications/x"},{"jsonrpc":"2.0","id":2,"method":"ping"},{"jsonrpc":"2.0","id":3,"result":{}}])")) ==
        R"(["b1",2])");
  CHECK(error_reply_ids(inspect_jsonrpc(R"([{"jsonrpc":"2.0","method":"notifications/x"}])")) == "null");
}
