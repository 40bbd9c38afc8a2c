#include "mcp/elicitation.h"

#include <jansson.h>

#include <memory>

#include "core/json.h"

namespace mcpgate::mcp {
namespace {

using core::JsonPtr;

}  // namespace

bool declares_url_elicitation(std::string_view body, bool in_meta) {
  JsonPtr root(json_loadb(body.data(), body.size(), 0, nullptr), &json_decref);
  const json_t* params = json_object_get(root.get(), "params");
  const json_t* capabilities =
      in_meta ? json_object_get(json_object_get(params, "_meta"), "io.modelcontextprotocol/clientCapabilities")
              : json_object_get(params, "capabilities");
  return json_is_object(json_object_get(json_object_get(capabilities, "elicitation"), "url"));
}

std::string link_required_response(LinkAnswer form, const std::string& id_json, const std::string& key,
                                   const std::string& url, const std::string& message) {
  JsonPtr id(json_loads(id_json.c_str(), JSON_DECODE_ANY, nullptr), &json_decref);
  JsonPtr response(json_pack("{s:s, s:O}", "jsonrpc", "2.0", "id", id ? id.get() : json_null()), &json_decref);
  switch (form) {
    case LinkAnswer::InputRequired: {
      // Multi Round-Trip Requests: the client opens the URL, then retries with inputResponses.
      json_t* request = json_pack("{s:s, s:{s:s, s:s, s:s}}", "method", "elicitation/create", "params", "mode", "url",
                                  "url", url.c_str(), "message", message.c_str());
      json_object_set_new(response.get(), "result",
                          json_pack("{s:s, s:{s:o}}", "resultType", "input_required", "inputRequests", key.c_str(), request));
      break;
    }
    case LinkAnswer::UrlElicitationError:
      json_object_set_new(response.get(), "error",
                          json_pack("{s:i, s:s, s:{s:[{s:s, s:s, s:s, s:s}]}}", "code", kUrlElicitationRequiredCode,
                                    "message", message.c_str(), "data", "elicitations", "mode", "url", "elicitationId",
                                    key.c_str(), "url", url.c_str(), "message", message.c_str()));
      break;
    case LinkAnswer::PlainError:
      json_object_set_new(response.get(), "error",
                          json_pack("{s:i, s:s, s:{s:s}}", "code", kCredentialNotLinkedCode, "message",
                                    (message + " Open this link: " + url).c_str(), "data", "url", url.c_str()));
      break;
  }
  return core::json_text(response.get());
}

}  // namespace mcpgate::mcp
