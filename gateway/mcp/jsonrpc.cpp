#include "mcp/jsonrpc.h"

#include <openssl/evp.h>

#include <array>
#include <charconv>
#include <cstdint>

#include "core/json_scan.h"
#include "observability/log.h"

namespace mcpgate::mcp {
namespace js = core::json_scan;

std::optional<std::string> jsonrpc_id_text(const js::Document& doc, std::size_t at) {
  if (doc.kind(at) == '"') return "\"" + observability::json_escape(doc.string_at(at)) + "\"";
  const std::string_view number = doc.text().substr(at, doc.end_of(at) - at);
  if (number.empty() || (number[0] != '-' && (number[0] < '0' || number[0] > '9'))) return std::nullopt;
  std::int64_t value = 0;
  const auto [end, error] = std::from_chars(number.data(), number.data() + number.size(), value);
  // A fraction, an exponent or more than 64 bits is no MCP id (and may not round-trip upstream).
  if (error != std::errc() || end != number.data() + number.size()) return std::nullopt;
  return std::to_string(value);
}

namespace {

// One message's members, read in one pass over the object at `open`.
void read_message(const js::Document& doc, std::size_t open, JsonRpcInfo& info, bool first) {
  const std::string_view body = doc.text();
  if (body[open] != '{') {
    info.is_jsonrpc = false;
    return;
  }
  std::size_t version = std::string_view::npos, method = version, id = version, params = version;
  doc.for_each_member(open, [&](std::size_t key_at, std::size_t value_at) {
    if (doc.string_equals(key_at, "jsonrpc")) version = value_at;
    else if (doc.string_equals(key_at, "method")) method = value_at;
    else if (doc.string_equals(key_at, "id")) id = value_at;
    else if (doc.string_equals(key_at, "params")) params = value_at;
    return true;
  });
  const auto is_string = [&](std::size_t at) { return at != std::string_view::npos && body[at] == '"'; };
  const bool is_jsonrpc = is_string(version) && doc.string_equals(version, "2.0");
  info.is_jsonrpc = (first || info.is_jsonrpc) && is_jsonrpc;
  JsonRpcTarget target;
  if (is_string(method)) target.method = doc.string_at(method);
  const std::string_view field = mcp_name_field(target.method);
  const bool params_object = params != std::string_view::npos && body[params] == '{';
  std::size_t name = std::string_view::npos, meta = name;
  if (params_object)  // one pass: params may hold a large "arguments"
    doc.for_each_member(params, [&](std::size_t key_at, std::size_t value_at) {
      if (!field.empty() && doc.string_equals(key_at, field)) name = value_at;
      else if (doc.string_equals(key_at, "_meta")) meta = value_at;
      return true;
    });
  if (is_string(name)) {
    target.name = doc.string_at(name);
    target.has_name = true;
  }
  std::optional<std::string> id_text;
  if (id != std::string_view::npos) {
    id_text = jsonrpc_id_text(doc, id);
    if (!id_text && !target.method.empty()) info.unusable_id = true;
    if (id_text && !target.method.empty()) info.request_ids.push_back(*id_text);
  }
  info.targets.push_back(std::move(target));
  if (!first) return;
  const JsonRpcTarget& read = info.targets.back();
  info.method = read.method;
  info.name = read.name;
  info.has_name = read.has_name;
  if (id_text) {
    info.id_json = std::move(*id_text);
    info.is_request = !info.method.empty();
  }
  if (info.is_batch) return;
  info.meta_writable = (params == std::string_view::npos || params_object) &&
                       (meta == std::string_view::npos || body[meta] == '{');
  if (meta != std::string_view::npos && body[meta] == '{') {
    const std::size_t traceparent = doc.find_member(meta, "traceparent");
    if (is_string(traceparent)) info.meta_traceparent = doc.string_at(traceparent);
  }
}

}  // namespace

JsonRpcInfo inspect_jsonrpc(std::string_view body) {
  JsonRpcInfo info;
  const js::Document doc(body);
  switch (doc.verdict()) {
    case js::Verdict::Valid: break;
    case js::Verdict::DuplicateKey: info.duplicate_keys = true; return info;
    case js::Verdict::Invalid: return info;
  }
  info.valid_json = true;
  const std::size_t root = doc.root();
  if (doc.kind(root) == '[') {
    info.is_batch = true;
    bool first = true;
    doc.for_each_element(root, [&](std::size_t element, std::size_t) {
      read_message(doc, element, info, first);
      first = false;
      return true;
    });
    return info;
  }
  read_message(doc, root, info, true);
  return info;
}

std::optional<std::string> with_meta_traceparent(std::string_view body, std::string_view traceparent) {
  const js::Document doc(body);
  if (!doc.valid() || doc.kind(doc.root()) != '{') return std::nullopt;
  const std::size_t root = doc.root();
  const std::string entry = "\"traceparent\":\"" + std::string(traceparent) + "\"";
  std::size_t object = root;
  std::string insert;
  if (const std::size_t params = doc.find_member(root, "params"); params == std::string_view::npos) {
    insert = "\"params\":{\"_meta\":{" + entry + "}}";
  } else if (const std::size_t meta = body[params] == '{' ? doc.find_member(params, "_meta") : std::string_view::npos;
             meta == std::string_view::npos) {
    object = params;
    insert = "\"_meta\":{" + entry + "}";
  } else {
    object = meta;
    insert = entry;
  }
  if (body[object] != '{') return std::nullopt;
  const bool empty = body[doc.skip_space(object + 1)] == '}';
  std::string out;
  out.reserve(body.size() + insert.size() + 1);
  out.append(body.substr(0, object + 1)).append(insert);
  if (!empty) out.push_back(',');
  out.append(body.substr(object + 1));
  return out;
}

std::string error_reply_ids(const JsonRpcInfo& info) {
  if (!info.is_batch || info.request_ids.empty()) return info.id_json;
  std::string ids = "[";
  for (const auto& id : info.request_ids) {
    if (ids.size() > 1) ids.push_back(',');
    ids.append(id);
  }
  ids.push_back(']');
  return ids;
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
