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
  json_t* params = json_object_get(root.get(), "params");
  json_t* meta = json_is_object(params) ? json_object_get(params, "_meta") : nullptr;
  info.meta_writable = json_is_object(root.get()) && (params == nullptr || json_is_object(params)) &&
                       (meta == nullptr || json_is_object(meta));
  if (const char* traceparent = json_string_value(json_object_get(meta, "traceparent"))) info.meta_traceparent = traceparent;
  return info;
}

namespace {

// Positions in JSON text that the parser has already accepted, so only its shape is followed.
std::size_t skip_space(std::string_view text, std::size_t at) {
  while (at < text.size() && (text[at] == ' ' || text[at] == '\t' || text[at] == '\n' || text[at] == '\r')) ++at;
  return at;
}

// `at` on the opening quote; returns the position after the closing one.
std::size_t skip_string(std::string_view text, std::size_t at) {
  for (++at; at < text.size() && text[at] != '"'; ++at)
    if (text[at] == '\\') ++at;
  return at + 1;
}

std::size_t skip_value(std::string_view text, std::size_t at) {
  if (text[at] == '"') return skip_string(text, at);
  if (text[at] != '{' && text[at] != '[') {
    while (at < text.size() && text[at] != ',' && text[at] != '}' && text[at] != ']' && text[at] != ' ' &&
           text[at] != '\t' && text[at] != '\n' && text[at] != '\r')
      ++at;
    return at;
  }
  int depth = 0;
  while (at < text.size()) {
    const char c = text[at];
    if (c == '"') {
      at = skip_string(text, at);
      continue;
    }
    if (c == '{' || c == '[') ++depth;
    if ((c == '}' || c == ']') && --depth == 0) return at + 1;
    ++at;
  }
  return at;
}

enum class Member { Found, Absent, Unreadable };

// In the object whose '{' is at `open`: where `key`'s value starts.
Member find_member(std::string_view text, std::size_t open, std::string_view key, std::size_t& value_at) {
  std::size_t at = skip_space(text, open + 1);
  while (at < text.size() && text[at] == '"') {
    const std::size_t end = skip_string(text, at);
    const std::string_view name = text.substr(at + 1, end - at - 2);
    if (name.find('\\') != std::string_view::npos) return Member::Unreadable;
    at = skip_space(text, skip_space(text, end) + 1);  // past ':'
    if (name == key) {
      value_at = at;
      return Member::Found;
    }
    at = skip_space(text, skip_value(text, at));
    if (at < text.size() && text[at] == ',') at = skip_space(text, at + 1);
  }
  return Member::Absent;
}

}  // namespace

std::optional<std::string> with_meta_traceparent(std::string_view body, std::string_view traceparent) {
  const std::size_t root = skip_space(body, 0);
  if (root >= body.size() || body[root] != '{') return std::nullopt;
  const std::string entry = "\"traceparent\":\"" + std::string(traceparent) + "\"";
  std::size_t object = root;
  std::string insert;
  std::size_t params = 0, meta = 0;
  switch (find_member(body, root, "params", params)) {
    case Member::Unreadable: return std::nullopt;
    case Member::Absent: insert = "\"params\":{\"_meta\":{" + entry + "}}"; break;
    case Member::Found:
      object = params;
      switch (find_member(body, params, "_meta", meta)) {
        case Member::Unreadable: return std::nullopt;
        case Member::Absent: insert = "\"_meta\":{" + entry + "}"; break;
        case Member::Found: object = meta; insert = entry; break;
      }
  }
  if (body[object] != '{') return std::nullopt;
  const bool empty = body[skip_space(body, object + 1)] == '}';
  std::string out;
  out.reserve(body.size() + insert.size() + 1);
  out.append(body.substr(0, object + 1)).append(insert);
  if (!empty) out.push_back(',');
  out.append(body.substr(object + 1));
  return out;
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
  // Base64 pads with at most two '='; more ("====") is not Base64 and would underflow the length.
  if (padding > 2 || padding > static_cast<std::size_t>(length)) return std::nullopt;
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
