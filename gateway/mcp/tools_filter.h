// tools/list filtering: the tools a caller may not call are removed from the
// result, and the result is marked per-user (cacheScope "private", 2026-07-28).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace mcpgate::mcp {

using ToolAllowed = std::function<bool(std::string_view tool_name)>;

enum class FilterOutcome {
  Filtered,   // `message` was the tools/list result for the request; rewritten
  NotResult,  // another message (a notification, another id): pass it unchanged
  Malformed,  // not JSON, or a result without a usable tools array: fail closed
};

// `message` is one JSON-RPC message; `request_id_json` the request's id as JSON text.
FilterOutcome filter_tools_list_result(std::string& message, std::string_view request_id_json, const ToolAllowed& allowed);

}  // namespace mcpgate::mcp
