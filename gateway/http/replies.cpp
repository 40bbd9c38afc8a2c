#include "http/replies.h"

#include <jansson.h>

#include <memory>

namespace mcpgate::http {
namespace {

using JsonPtr = std::unique_ptr<json_t, decltype(&json_decref)>;

std::string dump(json_t* value) {
  std::unique_ptr<char, decltype(&free)> text(json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY), &free);
  return text ? std::string(text.get()) : std::string("{}");
}

}  // namespace

std::string_view status_text(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

int jsonrpc_code_for(std::string_view reason) {
  if (reason == "parse_error") return -32700;
  if (reason == "invalid_request") return -32600;
  if (reason == "header_mismatch") return -32020;
  return -32000;  // implementation-defined server error
}

std::string error_body(const GatewayError& error, const std::optional<std::string>& jsonrpc_id) {
  if (!jsonrpc_id) {
    JsonPtr body(json_pack("{s:s, s:s}", "error", error.reason.c_str(), "message", error.message.c_str()),
                 &json_decref);
    return dump(body.get());
  }
  const auto response_to = [&error](json_t* id) {
    return json_pack("{s:s, s:O?, s:{s:i, s:s, s:{s:i, s:s}}}", "jsonrpc", "2.0", "id", id, "error", "code",
                     jsonrpc_code_for(error.reason), "message", error.message.c_str(), "data", "status", error.status,
                     "reason", error.reason.c_str());
  };
  JsonPtr id(json_loads(jsonrpc_id->c_str(), JSON_DECODE_ANY, nullptr), &json_decref);
  if (json_is_array(id.get())) {
    JsonPtr batch(json_array(), &json_decref);
    std::size_t index;
    json_t* each;
    json_array_foreach(id.get(), index, each) json_array_append_new(batch.get(), response_to(each));
    return dump(batch.get());
  }
  JsonPtr body(response_to(id.get()), &json_decref);
  return dump(body.get());
}

}  // namespace mcpgate::http
