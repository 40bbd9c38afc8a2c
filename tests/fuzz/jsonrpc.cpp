// What the gateway reads from and writes into JSON-RPC bodies: inspect_jsonrpc (batches,
// duplicate keys, escapes), decode_mcp_header_value (the Mcp-Name Base64 sentinel),
// with_meta_traceparent, and filter_tools_list_result.
//
// Input: [flags] <body>
//   flags bits 0-1: the request id the tools/list filter is given (the body's own, 1, "1", null)
//   flags bits 2-7: which tool names the filter allows (see allowed_by)
//
// Checked: the in-place reader (core/json_scan) and jansson agree on what is JSON (jansson
// refusing numbers it cannot hold aside); inspect_jsonrpc's facts agree with each other; a Base64 sentinel round-trips;
// a traceparent inserted leaves valid JSON whose method, id and name are unchanged, holds the
// traceparent, and differs from the body by one inserted block; a filtered tools/list result
// keeps, in order, exactly the allowed tools, is marked private, and filtering it again
// changes nothing.
#include <jansson.h>
#include <openssl/evp.h>

#include <string>
#include <vector>

#include "core/json.h"
#include "core/json_scan.h"
#include "fuzz_support.h"
#include "mcp/jsonrpc.h"
#include "mcp/tools_filter.h"

namespace {

using mcpgate::core::json_owned;
using mcpgate::core::JsonPtr;
using mcpgate::fuzz::printable;
using mcpgate::mcp::JsonRpcInfo;

constexpr std::string_view kTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

std::string base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int length = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                     reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(length));
  return out;
}

// Which texts are JSON must not depend on who reads them: the gateway reads bodies in place and
// the fuzz checks (and upstreams) parse them. Refusing as a duplicate or as invalid is one answer.
void check_same_verdict(std::string_view body) {
  namespace js = mcpgate::core::json_scan;
  // A raw NUL is JSON nowhere; jansson stops reading at one (it took "1\0" for 1).
  if (body.find('\0') != std::string_view::npos) {
    FUZZ_CHECK(js::Document(body).verdict() != js::Verdict::Valid, printable(body));
    return;
  }
  json_error_t error;
  JsonPtr parsed = json_owned(json_loadb(body.data(), body.size(), JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &error));
  // jansson refuses integers beyond 64 bits and reals beyond a double, which RFC 8259 allows.
  if (!parsed && json_error_code(&error) == json_error_numeric_overflow) return;
  FUZZ_CHECK((js::Document(body).verdict() == js::Verdict::Valid) == (parsed != nullptr), printable(body));
}

void check_info(std::string_view body, const JsonRpcInfo& info) {
  const std::string what = printable(body);
  if (info.duplicate_keys) FUZZ_CHECK(!info.valid_json, what);
  if (!info.valid_json) {
    FUZZ_CHECK(!info.is_jsonrpc && !info.is_batch && !info.is_request && info.targets.empty() && info.method.empty() &&
                   info.id_json == "null" && !info.meta_writable && !info.meta_traceparent,
               what);
    return;
  }
  if (info.is_request) FUZZ_CHECK(!info.method.empty() && info.id_json != "null", what);
  if (info.has_name) FUZZ_CHECK(!mcpgate::mcp::mcp_name_field(info.method).empty(), what);
  if (!info.has_name) FUZZ_CHECK(info.name.empty(), what);
  for (const auto& target : info.targets) {
    if (target.has_name) FUZZ_CHECK(!mcpgate::mcp::mcp_name_field(target.method).empty(), what);
  }
  // A batch whose first element is not an object has no first target (and is not JSON-RPC).
  if (!info.is_batch && !info.targets.empty()) {
    FUZZ_CHECK(info.targets.front().method == info.method && info.targets.front().name == info.name &&
                   info.targets.front().has_name == info.has_name,
               what);
  }
  if (info.is_batch) {
    FUZZ_CHECK(!info.meta_writable && !info.meta_traceparent, what);
  } else {
    FUZZ_CHECK(info.targets.size() <= 1, what);
    if (info.meta_writable) FUZZ_CHECK(info.targets.size() == 1, what);
  }
  const std::string_view label = mcpgate::mcp::metrics_method_label(info.method);
  FUZZ_CHECK(info.method.empty() ? label.empty() : (label == "other" || label == info.method), what);
}

// `out` is `body` with one contiguous block inserted, and that block carries the traceparent.
void check_insertion(std::string_view body, std::string_view out) {
  const std::string what = printable(body) + "  ->  " + printable(out);
  FUZZ_CHECK(out.size() > body.size(), what);
  std::size_t prefix = 0;
  while (prefix < body.size() && body[prefix] == out[prefix]) ++prefix;
  std::size_t suffix = 0;
  while (suffix < body.size() && body[body.size() - 1 - suffix] == out[out.size() - 1 - suffix]) ++suffix;
  FUZZ_CHECK(prefix + suffix >= body.size(), what);
  const std::string entry = "\"traceparent\":\"" + std::string(kTraceparent) + "\"";
  FUZZ_CHECK(out.find(entry) != std::string_view::npos, what);
}

void check_traceparent(std::string_view body, const JsonRpcInfo& info) {
  if (!info.meta_writable || info.meta_traceparent) return;  // the proxy's precondition
  const auto traced = mcpgate::mcp::with_meta_traceparent(body, kTraceparent);
  FUZZ_CHECK(traced, printable(body));  // meta_writable promises a place for it
  const JsonRpcInfo after = mcpgate::mcp::inspect_jsonrpc(*traced);
  const std::string what = printable(body) + "  ->  " + printable(*traced);
  FUZZ_CHECK(after.valid_json && !after.duplicate_keys, what);
  FUZZ_CHECK(after.meta_traceparent && *after.meta_traceparent == kTraceparent, what);
  FUZZ_CHECK(after.method == info.method && after.id_json == info.id_json && after.name == info.name &&
                 after.has_name == info.has_name && after.is_jsonrpc == info.is_jsonrpc &&
                 after.is_request == info.is_request && !after.is_batch,
             what);
  check_insertion(body, *traced);
}

std::size_t trailing_equals(std::string_view text) {
  std::size_t count = 0;
  while (count < text.size() && text[text.size() - 1 - count] == '=') ++count;
  return count;
}

// An Mcp-Name value as a client may send it: decoded or refused, never more bytes than it holds.
void check_sentinel_value(std::string_view value) {
  const std::string_view encoded = value.substr(9, value.size() - 11);
  const auto decoded = mcpgate::mcp::decode_mcp_header_value(value);
  // Base64 pads with at most two '=': more (once "=?base64?====?=" threw std::length_error out of
  // the request pipeline, tests/fuzz/regressions/jsonrpc/) is refused.
  if (trailing_equals(encoded) > 2) FUZZ_CHECK(!decoded, printable(value));
  if (decoded) FUZZ_CHECK(decoded->size() <= encoded.size() / 4 * 3, printable(value));
}

void check_header_value(std::string_view body, const JsonRpcInfo& info) {
  const bool sentinel = body.size() >= 11 && body.substr(0, 9) == "=?base64?" && body.substr(body.size() - 2) == "?=";
  if (sentinel) {
    check_sentinel_value(body);
  } else {
    const auto as_is = mcpgate::mcp::decode_mcp_header_value(body);
    FUZZ_CHECK(as_is && *as_is == body, printable(body));
  }
  check_sentinel_value("=?base64?" + std::string(body) + "?=");
  // What a 2026-07-28 client sends for a name that is not plain ASCII, and the body itself.
  for (std::string_view value : {std::string_view(info.name), body}) {
    const std::string encoded = "=?base64?" + base64(value) + "?=";
    const auto decoded = mcpgate::mcp::decode_mcp_header_value(encoded);
    FUZZ_CHECK(decoded && *decoded == value, printable(value) + "  ->  " + encoded);
  }
}

bool allowed_by(uint8_t seed, std::string_view name) {
  if (name.empty()) return seed & 1;
  return (static_cast<unsigned char>(name.front()) + name.size() + seed) % 3 != 0;
}

// The tools with a string name, in order: what the filter chooses from.
std::vector<json_t*> named_tools(json_t* root) {
  std::vector<json_t*> tools;
  json_t* array = json_object_get(json_object_get(root, "result"), "tools");
  std::size_t index;
  json_t* tool;
  json_array_foreach(array, index, tool) {
    if (json_is_string(json_object_get(tool, "name"))) tools.push_back(tool);
  }
  return tools;
}

void check_filter(std::string_view body, const JsonRpcInfo& info, uint8_t flags) {
  const char* fixed_ids[] = {nullptr, "1", "\"1\"", "null"};
  const std::string id = fixed_ids[flags & 3] ? fixed_ids[flags & 3] : info.id_json;
  const uint8_t seed = flags >> 2;
  const mcpgate::mcp::ToolAllowed allowed = [seed](std::string_view name) { return allowed_by(seed, name); };

  std::string message(body);
  const auto outcome = mcpgate::mcp::filter_tools_list_result(message, id, allowed);
  const std::string what = printable(body) + "  ->  " + printable(message);
  if (outcome != mcpgate::mcp::FilterOutcome::Filtered) {
    FUZZ_CHECK(message == body, what);
    return;
  }
  json_error_t error{};
  JsonPtr before = json_owned(json_loadb(body.data(), body.size(), JSON_REJECT_DUPLICATES, &error));
  // jansson cannot hold every number RFC 8259 allows (the in-place reader takes them): with
  // such a number in the body there is no jansson reading to compare the result with.
  const std::string_view reason = error.text;
  if (!before && (reason.find("too big") != std::string_view::npos || reason.find("overflow") != std::string_view::npos))
    return;
  JsonPtr after = json_owned(json_loadb(message.data(), message.size(), JSON_REJECT_DUPLICATES, nullptr));
  FUZZ_CHECK(before && after && json_is_object(after.get()), what);
  // The same id, however it is spelled (ids are compared in canonical form).
  JsonPtr expected_id = json_owned(json_loads(id.c_str(), JSON_DECODE_ANY, nullptr));
  FUZZ_CHECK(expected_id && json_equal(json_object_get(after.get(), "id"), expected_id.get()), what);
  json_t* result = json_object_get(after.get(), "result");
  FUZZ_CHECK(json_is_string(json_object_get(result, "cacheScope")) &&
                 std::string_view(json_string_value(json_object_get(result, "cacheScope"))) == "private",
             what);
  json_t* kept = json_object_get(result, "tools");
  FUZZ_CHECK(json_is_array(kept), what);
  std::vector<json_t*> expected;
  for (json_t* tool : named_tools(before.get()))
    if (allowed(json_string_value(json_object_get(tool, "name")))) expected.push_back(tool);
  FUZZ_CHECK(json_array_size(kept) == expected.size(), what);
  for (std::size_t i = 0; i < expected.size(); ++i) FUZZ_CHECK(json_equal(json_array_get(kept, i), expected[i]), what);
  // Filtering what was filtered is a no-op: the stream rewrite may see a result twice.
  std::string again = message;
  FUZZ_CHECK(mcpgate::mcp::filter_tools_list_result(again, id, allowed) == mcpgate::mcp::FilterOutcome::Filtered &&
                 again == message,
             what);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  mcpgate::fuzz::Input input(data, size);
  const uint8_t flags = input.byte();
  const std::string_view body = input.rest();

  check_same_verdict(body);
  const JsonRpcInfo info = mcpgate::mcp::inspect_jsonrpc(body);
  check_info(body, info);
  check_header_value(body, info);
  check_traceparent(body, info);
  check_filter(body, info, flags);
  return 0;
}
