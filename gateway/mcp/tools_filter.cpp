#include "mcp/tools_filter.h"

#include <jansson.h>

#include <memory>

namespace mcpgate::mcp {
namespace {

using JsonPtr = std::unique_ptr<json_t, decltype(&json_decref)>;

std::string dump(json_t* value) {
  std::unique_ptr<char, decltype(&free)> text(json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY), &free);
  return text ? std::string(text.get()) : std::string();
}

}  // namespace

FilterOutcome filter_tools_list_result(std::string& message, std::string_view request_id_json, const ToolAllowed& allowed) {
  JsonPtr root(json_loadb(message.data(), message.size(), JSON_REJECT_DUPLICATES, nullptr), &json_decref);
  if (!root || !json_is_object(root.get())) return FilterOutcome::Malformed;
  json_t* id = json_object_get(root.get(), "id");
  if (id == nullptr || dump(id) != request_id_json) return FilterOutcome::NotResult;
  json_t* result = json_object_get(root.get(), "result");
  if (result == nullptr) return json_object_get(root.get(), "error") ? FilterOutcome::NotResult : FilterOutcome::Malformed;
  json_t* tools = json_object_get(result, "tools");
  if (!json_is_array(tools)) return FilterOutcome::Malformed;
  JsonPtr kept(json_array(), &json_decref);
  std::size_t index;
  json_t* tool;
  json_array_foreach(tools, index, tool) {
    const char* name = json_string_value(json_object_get(tool, "name"));
    if (name != nullptr && allowed(name)) json_array_append(kept.get(), tool);
  }
  json_object_set(result, "tools", kept.get());
  // A per-caller view must never be cached as if everyone saw it.
  json_object_set_new(result, "cacheScope", json_string("private"));
  message = dump(root.get());
  return FilterOutcome::Filtered;
}

}  // namespace mcpgate::mcp
