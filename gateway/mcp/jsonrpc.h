// What the gateway reads from a JSON-RPC request body: method, id, target name.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/json_scan.h"

namespace mcpgate::mcp {

// One message's routing facts: its method and the target the method names.
struct JsonRpcTarget {
  std::string method;
  std::string name;  // the params field Mcp-Name mirrors for `method` (mcp_name_field)
  bool has_name = false;
};

struct JsonRpcInfo {
  bool valid_json = false;
  bool duplicate_keys = false;  // refused: the gateway and the upstream could read different values
  bool is_jsonrpc = false;  // an object (or array of objects) with "jsonrpc": "2.0"
  bool is_batch = false;
  bool is_request = false;  // has a method and a usable id (a notification or response has not)
  bool unusable_id = false;  // a message with a method has an id that is not a string or 64-bit integer
  std::string method;       // empty for responses; the first message's for a batch
  std::string id_json = "null";  // the id as JSON text
  std::string name;  // the first message's target name (see JsonRpcTarget)
  bool has_name = false;
  std::vector<JsonRpcTarget> targets;  // every message of a batch; one otherwise
  std::vector<std::string> request_ids;  // the ids (JSON text) of every request, in order
  // SEP-414 trace context in a single message's params._meta.traceparent (a string; not checked).
  std::optional<std::string> meta_traceparent;
  // A single message whose params (absent or an object) and params._meta (absent or an object)
  // can take a traceparent.
  bool meta_writable = false;
};

// Who a gateway-made error answers, as error_body (http/replies.h) takes it: the request's id,
// or for a batch with requests "[id,id,...]", so each request gets its own error (JSON-RPC 2.0
// §6); "null" when there is no id to answer.
std::string error_reply_ids(const JsonRpcInfo& info);

// The params field a method's Mcp-Name header mirrors ("name", "uri", "taskId"); "" for none.
std::string_view mcp_name_field(std::string_view method);

// An Mcp-* header value: "=?base64?...?=" decoded from Base64 (UTF-8), else as is.
// Nullopt when the sentinel's Base64 is invalid.
std::optional<std::string> decode_mcp_header_value(std::string_view value);

JsonRpcInfo inspect_jsonrpc(std::string_view body);

// The canonical text of the id whose value starts at `at` in `doc`, so a request's id and its response's compare equal however each was
// spelled: a string re-encoded, an integer in decimal. Nullopt for any other value (MCP ids
// are strings or integers).
std::optional<std::string> jsonrpc_id_text(const core::json_scan::Document& doc, std::size_t at);

// `body` (one JSON-RPC message that inspect_jsonrpc found meta_writable, without a traceparent)
// with params._meta.traceparent set to `traceparent` (visible ASCII without '"' or '\\'),
// inserted into the text so every other byte stays as the client sent it.
std::optional<std::string> with_meta_traceparent(std::string_view body, std::string_view traceparent);

// The bounded label for metrics: a known MCP method, else "other" (or "" when none).
std::string_view metrics_method_label(std::string_view method);

}  // namespace mcpgate::mcp
