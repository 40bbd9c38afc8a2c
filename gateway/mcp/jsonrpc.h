// What the gateway reads from a JSON-RPC request body: method, id, target name.
#pragma once

#include <string>
#include <string_view>

namespace mcpgate::mcp {

struct JsonRpcInfo {
  bool valid_json = false;
  bool is_jsonrpc = false;  // an object (or array of objects) with "jsonrpc": "2.0"
  bool is_batch = false;
  bool is_request = false;  // has an id (a notification or response has not)
  std::string method;       // empty for responses; the first message's for a batch
  std::string id_json = "null";  // the id as JSON text
  std::string name;  // params.name (tools/call, prompts/get) or params.uri (resources/*)
  bool has_name = false;
};

JsonRpcInfo inspect_jsonrpc(std::string_view body);

// The bounded label for metrics: a known MCP method, else "other" (or "" when none).
std::string_view metrics_method_label(std::string_view method);

}  // namespace mcpgate::mcp
