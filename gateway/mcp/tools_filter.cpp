#include "mcp/tools_filter.h"

#include <algorithm>
#include <vector>

#include "core/json_scan.h"
#include "mcp/jsonrpc.h"

namespace mcpgate::mcp {
namespace {

namespace js = core::json_scan;
constexpr std::size_t kNone = std::string_view::npos;

// A span of the message replaced by new text.
struct Edit {
  std::size_t begin, end;
  std::string text;
};

}  // namespace

// The result is rewritten as text: the kept tools are copied byte for byte, so a 500-tool list
// costs one validating pass and one copy rather than a tree built and written out again.
FilterOutcome filter_tools_list_result(std::string& message, std::string_view request_id_json, const ToolAllowed& allowed) {
  // Validated whole: a duplicate "tools" or "id" could show the caller what the filter never saw.
  const js::Document doc(message);
  if (!doc.valid()) return FilterOutcome::Malformed;
  const std::size_t root = doc.root();
  if (message[root] != '{') return FilterOutcome::Malformed;
  std::size_t id = kNone, result = kNone, error = kNone;
  doc.for_each_member(root, [&](std::size_t key_at, std::size_t value_at) {
    if (doc.string_equals(key_at, "id")) id = value_at;
    else if (doc.string_equals(key_at, "result")) result = value_at;
    else if (doc.string_equals(key_at, "error")) error = value_at;
    return true;
  });
  if (id == kNone) return FilterOutcome::NotResult;
  if (const auto id_text = jsonrpc_id_text(doc, id); !id_text || *id_text != request_id_json)
    return FilterOutcome::NotResult;
  if (result == kNone) return error != kNone ? FilterOutcome::NotResult : FilterOutcome::Malformed;
  if (message[result] != '{') return FilterOutcome::Malformed;
  std::size_t tools = kNone, cache_scope = kNone;
  doc.for_each_member(result, [&](std::size_t key_at, std::size_t value_at) {
    if (doc.string_equals(key_at, "tools")) tools = value_at;
    else if (doc.string_equals(key_at, "cacheScope")) cache_scope = value_at;
    return true;
  });
  if (tools == kNone || message[tools] != '[') return FilterOutcome::Malformed;

  std::string kept;
  kept.reserve(doc.end_of(tools) - tools);
  kept.push_back('[');
  doc.for_each_element(tools, [&](std::size_t at, std::size_t end) {
    if (message[at] != '{') return true;
    const std::size_t name = doc.find_member(at, "name");
    if (name == kNone || message[name] != '"' || !allowed(doc.string_at(name))) return true;
    if (kept.size() > 1) kept.push_back(',');
    kept.append(message, at, end - at);
    return true;
  });
  kept.push_back(']');
  std::vector<Edit> edits;
  edits.push_back({tools, doc.end_of(tools), std::move(kept)});
  // A per-caller view must never be cached as if everyone saw it.
  if (cache_scope != kNone)
    edits.push_back({cache_scope, doc.end_of(cache_scope), "\"private\""});
  else
    edits.push_back({result + 1, result + 1, "\"cacheScope\":\"private\","});  // `result` holds "tools"
  std::sort(edits.begin(), edits.end(), [](const Edit& a, const Edit& b) { return a.begin < b.begin; });

  std::string out;
  out.reserve(message.size() + 32);
  std::size_t copied = 0;
  for (const auto& edit : edits) {
    out.append(message, copied, edit.begin - copied).append(edit.text);
    copied = edit.end;
  }
  out.append(message, copied, kNone);
  message = std::move(out);
  return FilterOutcome::Filtered;
}

}  // namespace mcpgate::mcp
