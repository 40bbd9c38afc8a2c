#include "mcp/jsonrpc.h"

#include <jansson.h>

#include <array>
#include <memory>

namespace mcpgate::mcp {
namespace {

using JsonPtr = std::unique_ptr<json_t, decltype(&json_decref)>;

void read_message(json_t* message, JsonRpcInfo& info) {
  if (!json_is_object(message)) return;
  const char* version = json_string_value(json_object_get(message, "jsonrpc"));
  info.is_jsonrpc = version != nullptr && std::string_view(version) == "2.0";
  if (const char* method = json_string_value(json_object_get(message, "method"))) info.method = method;
  if (json_t* id = json_object_get(message, "id"); id != nullptr && (json_is_string(id) || json_is_integer(id))) {
    std::unique_ptr<char, decltype(&free)> text(json_dumps(id, JSON_ENCODE_ANY | JSON_COMPACT), &free);
    if (text) info.id_json = text.get();
    info.is_request = !info.method.empty();
  }
  json_t* params = json_object_get(message, "params");
  if (!json_is_object(params)) return;
  for (const char* key : {"name", "uri"}) {
    if (const char* value = json_string_value(json_object_get(params, key))) {
      info.name = value;
      info.has_name = true;
      return;
    }
  }
}

}  // namespace

JsonRpcInfo inspect_jsonrpc(std::string_view body) {
  JsonRpcInfo info;
  json_error_t error;
  JsonPtr root(json_loadb(body.data(), body.size(), JSON_DECODE_ANY, &error), &json_decref);
  if (!root) return info;
  info.valid_json = true;
  if (json_is_array(root.get())) {
    info.is_batch = true;
    if (json_array_size(root.get()) > 0) read_message(json_array_get(root.get(), 0), info);
    return info;
  }
  read_message(root.get(), info);
  return info;
}

std::string_view metrics_method_label(std::string_view method) {
  static constexpr std::array<std::string_view, 30> kKnown = {
      "initialize", "ping", "tools/list", "tools/call", "resources/list", "resources/read",
      "resources/templates/list", "resources/subscribe", "resources/unsubscribe", "prompts/list", "prompts/get",
      "completion/complete", "logging/setLevel", "subscriptions/listen", "tasks/get", "tasks/result",
      "tasks/list", "tasks/cancel", "notifications/initialized", "notifications/cancelled",
      "notifications/progress", "notifications/roots/list_changed", "sampling/createMessage",
      "elicitation/create", "roots/list", "server/discover", "notifications/message",
      "notifications/resources/updated", "notifications/tools/list_changed", "notifications/elicitation/complete"};
  if (method.empty()) return "";
  for (auto known : kKnown)
    if (known == method) return known;
  return "other";
}

}  // namespace mcpgate::mcp
