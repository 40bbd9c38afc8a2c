#include "proxy/header_rules.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <optional>
#include <random>

namespace mcpgate::proxy {
namespace {

constexpr std::array<std::string_view, 9> kHopByHop = {
    "Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization",
    "TE",         "Trailer",    "Transfer-Encoding", "Upgrade"};

bool connection_names(const http::HeaderList& message, std::string_view name) {
  for (const auto& field : message.fields()) {
    if (!http::iequals(field.name, "Connection")) continue;
    std::string_view list = field.value;
    while (!list.empty()) {
      const std::size_t comma = list.find(',');
      std::string_view token = list.substr(0, comma);
      while (!token.empty() && std::isspace(static_cast<unsigned char>(token.front()))) token.remove_prefix(1);
      while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.remove_suffix(1);
      if (http::iequals(token, name)) return true;
      if (comma == std::string_view::npos) break;
      list.remove_prefix(comma + 1);
    }
  }
  return false;
}

bool starts_with_ci(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && http::iequals(text.substr(0, prefix.size()), prefix);
}

}  // namespace

bool is_hop_by_hop(std::string_view name, const http::HeaderList& message) {
  for (auto hop : kHopByHop)
    if (http::iequals(name, hop)) return true;
  return connection_names(message, name);
}

http::HeaderList upstream_request_headers(const http::HeaderList& client, const ForwardingFacts& facts) {
  http::HeaderList out;
  std::string forwarded_for;
  for (const auto& field : client.fields()) {
    const std::string_view name = field.name;
    if (is_hop_by_hop(name, client)) continue;
    if (http::iequals(name, "Host") || http::iequals(name, "Content-Length") || http::iequals(name, "Expect") ||
        http::iequals(name, "Authorization") || http::iequals(name, "Cookie") || http::iequals(name, "Forwarded"))
      continue;
    if (http::iequals(name, "X-Forwarded-For")) {
      forwarded_for = field.value;  // the chain so far; ours is appended below
      continue;
    }
    // Identity headers are the gateway's to set (forward_identity); never the client's.
    if (starts_with_ci(name, "X-Forwarded-") || starts_with_ci(name, "X-MCP-") || http::iequals(name, "X-Real-IP") ||
        http::iequals(name, "True-Client-IP") || http::iequals(name, "X-Client-IP"))
      continue;
    out.add(field.name, field.value);
  }
  out.add("Host", facts.upstream_host);
  out.add("X-Forwarded-For", forwarded_for.empty() ? facts.client_address : forwarded_for + ", " + facts.client_address);
  out.add("X-Forwarded-Proto", facts.client_tls ? "https" : "http");
  if (auto host = client.get("Host")) out.add("X-Forwarded-Host", std::string(*host));
  return out;
}

http::HeaderList client_response_headers(const http::HeaderList& upstream) {
  http::HeaderList out;
  for (const auto& field : upstream.fields()) {
    if (is_hop_by_hop(field.name, upstream) || http::iequals(field.name, "Content-Length")) continue;
    out.add(field.name, field.value);
  }
  if (is_event_stream(upstream)) {
    out.set("X-Accel-Buffering", "no");
    if (!out.get("Cache-Control")) out.add("Cache-Control", "no-cache");
  }
  return out;
}

void add_identity_headers(const auth::Identity& identity, http::HeaderList& headers) {
  auto clean = [](std::string value) {
    std::erase_if(value, [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
    return value;
  };
  std::string scopes;
  for (const auto& scope : identity.scopes) scopes.append(scopes.empty() ? "" : " ").append(scope);
  headers.set("X-MCP-Subject", clean(identity.subject));
  headers.set("X-MCP-Scopes", clean(scopes));
  if (!identity.client_id.empty()) headers.set("X-MCP-Client-Id", clean(identity.client_id));
}

std::optional<std::string> mcp_header_mismatch(const http::HeaderList& headers, const mcp::JsonRpcInfo& rpc) {
  for (std::string_view name : {"Mcp-Method", "Mcp-Name", "MCP-Protocol-Version"})
    if (headers.count(name) > 1) return "more than one " + std::string(name) + " header";
  const auto version = headers.get("MCP-Protocol-Version");
  const bool modern_request = !rpc.is_batch && version && *version >= "2026-07-28" && rpc.is_request;
  const auto method = headers.get("Mcp-Method");
  if (!method && modern_request) return "the Mcp-Method header is missing";
  for (const auto& target : rpc.targets)
    if (method && *method != target.method) return "the Mcp-Method header does not match the body's method";
  const auto name = headers.get("Mcp-Name");
  if (!name) {
    if (modern_request && rpc.has_name) return "the Mcp-Name header is missing";
    return std::nullopt;
  }
  const auto decoded = mcp::decode_mcp_header_value(*name);
  for (const auto& target : rpc.targets)
    if (!decoded || !target.has_name || *decoded != target.name)
      return "the Mcp-Name header does not match the body's target name";
  return std::nullopt;
}

bool is_event_stream(const http::HeaderList& headers) {
  const auto type = headers.get("Content-Type");
  return type && starts_with_ci(*type, "text/event-stream");
}

namespace {

bool is_lower_hex(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::string random_hex(std::size_t digits) {
  // Trace ids need to be unique, not secret: a per-thread generator, seeded once.
  thread_local std::mt19937_64 generator{std::random_device{}()};
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(digits, '0');
  for (std::size_t i = 0; i < digits; i += 16) {
    uint64_t bits = generator();
    for (std::size_t j = i; j < std::min(digits, i + 16); ++j, bits >>= 4) out[j] = kDigits[bits & 15];
  }
  return out;
}

}  // namespace

// version "00": 00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>, ids not all zero. A later
// version may append fields after the flags ("-..."), which are kept.
namespace {

std::optional<TraceContext> valid_trace_context(std::optional<std::string_view> traceparent) {
  if (!traceparent || traceparent->size() < 55) return std::nullopt;
  const std::string_view value = *traceparent;
  const std::string_view version = value.substr(0, 2), trace = value.substr(3, 32), parent = value.substr(36, 16),
                         flags = value.substr(53, 2);
  const bool shape = value[2] == '-' && value[35] == '-' && value[52] == '-' &&
                     (value.size() == 55 ? version == "00" : version != "00" && value[55] == '-');
  if (shape && is_lower_hex(version) && version != "ff" && is_lower_hex(trace) && is_lower_hex(parent) &&
      is_lower_hex(flags) && trace != std::string(32, '0') && parent != std::string(16, '0'))
    return TraceContext{std::string(trace), std::string(value), TraceContext::Source::Header};
  return std::nullopt;
}

}  // namespace

TraceContext trace_context(std::optional<std::string_view> header, std::optional<std::string_view> meta) {
  if (auto from_header = valid_trace_context(header)) return std::move(*from_header);
  if (auto from_meta = valid_trace_context(meta)) {
    from_meta->source = TraceContext::Source::Meta;
    return std::move(*from_meta);
  }
  std::string trace = random_hex(32);
  std::string traceparent = "00-" + trace + "-" + random_hex(16) + "-00";
  return {std::move(trace), std::move(traceparent), TraceContext::Source::Made};
}

}  // namespace mcpgate::proxy
