#include "mcp/jsonrpc.h"

#include <jansson.h>
#include <openssl/evp.h>

#include <array>
#include <memory>

namespace mcpgate::mcp {
namespace {

using JsonPtr = std::unique_ptr<json_t, decltype(&json_decref)>;

JsonRpcTarget read_target(json_t* message) {
  JsonRpcTarget target;
  if (const char* method = json_string_value(json_object_get(message, "method"))) target.method = method;
  const std::string_view field = mcp_name_field(target.method);
  json_t* params = json_object_get(message, "params");
  if (field.empty() || !json_is_object(params)) return target;
  if (const char* value = json_string_value(json_object_get(params, std::string(field).c_str()))) {
    target.name = value;
    target.has_name = true;
  }
  return target;
}

void read_message(json_t* message, JsonRpcInfo& info, bool first) {
  if (!json_is_object(message)) {
    info.is_jsonrpc = false;
    return;
  }
  const char* version = json_string_value(json_object_get(message, "jsonrpc"));
  const bool is_jsonrpc = version != nullptr && std::string_view(version) == "2.0";
  info.is_jsonrpc = (first || info.is_jsonrpc) && is_jsonrpc;
  info.targets.push_back(read_target(message));
  if (!first) return;
  const JsonRpcTarget& target = info.targets.back();
  info.method = target.method;
  info.name = target.name;
  info.has_name = target.has_name;
  if (json_t* id = json_object_get(message, "id"); id != nullptr && (json_is_string(id) || json_is_integer(id))) {
    std::unique_ptr<char, decltype(&free)> text(json_dumps(id, JSON_ENCODE_ANY | JSON_COMPACT), &free);
    if (text) info.id_json = text.get();
    info.is_request = !info.method.empty();
  }
}

}  // namespace

JsonRpcInfo inspect_jsonrpc(std::string_view body) {
  JsonRpcInfo info;
  json_error_t error;
  JsonPtr root(json_loadb(body.data(), body.size(), JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &error), &json_decref);
  if (!root) {
    info.duplicate_keys = json_error_code(&error) == json_error_duplicate_key;
    return info;
  }
  info.valid_json = true;
  if (json_is_array(root.get())) {
    info.is_batch = true;
    const std::size_t size = json_array_size(root.get());
    for (std::size_t i = 0; i < size; ++i) read_message(json_array_get(root.get(), i), info, i == 0);
    return info;
  }
  read_message(root.get(), info, true);
  return info;
}

std::string_view mcp_name_field(std::string_view method) {
  if (method == "tools/call" || method == "prompts/get") return "name";
  if (method == "resources/read") return "uri";
  if (method == "tasks/get" || method == "tasks/update" || method == "tasks/cancel") return "taskId";
  return "";
}

std::optional<std::string> decode_mcp_header_value(std::string_view value) {
  constexpr std::string_view prefix = "=?base64?";
  constexpr std::string_view suffix = "?=";
  if (value.size() < prefix.size() + suffix.size() || value.substr(0, prefix.size()) != prefix ||
      value.substr(value.size() - suffix.size()) != suffix)
    return std::string(value);
  const std::string encoded(value.substr(prefix.size(), value.size() - prefix.size() - suffix.size()));
  if (encoded.size() % 4 != 0) return std::nullopt;
  std::string decoded(encoded.size() / 4 * 3, '\0');
  const int length = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(decoded.data()),
                                     reinterpret_cast<const unsigned char*>(encoded.data()), static_cast<int>(encoded.size()));
  if (length < 0) return std::nullopt;
  std::size_t padding = 0;
  for (std::size_t i = encoded.size(); i > 0 && encoded[i - 1] == '='; --i) ++padding;
  decoded.resize(static_cast<std::size_t>(length) - padding);
  return decoded;
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
