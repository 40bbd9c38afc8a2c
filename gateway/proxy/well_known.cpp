#include "proxy/well_known.h"

#include <jansson.h>

namespace mcpgate::proxy {
namespace {

constexpr std::string_view kProtectedResource = "/.well-known/oauth-protected-resource";
constexpr std::string_view kAuthorizationServer = "/.well-known/oauth-authorization-server";

using JsonPtr = std::unique_ptr<json_t, decltype(&json_decref)>;

json_t* string_array(const std::vector<std::string>& values) {
  json_t* array = json_array();
  for (const auto& value : values) json_array_append_new(array, json_string(value.c_str()));
  return array;
}

// The route a well-known suffix names: an exact route path, or for the bare
// form the single route with auth (or the "/" route).
const config::RouteConfig* route_for_suffix(const config::Config& config, std::string_view suffix) {
  const config::RouteConfig* only_auth_route = nullptr;
  int auth_routes = 0;
  for (const auto& route : config.routes) {
    if (route.auth.type == config::AuthType::None) continue;
    if (!suffix.empty() && route.path == suffix) return &route;
    if (suffix.empty() && route.path == "/") return &route;
    ++auth_routes;
    only_auth_route = &route;
  }
  return suffix.empty() && auth_routes == 1 ? only_auth_route : nullptr;
}

}  // namespace

bool is_well_known_path(std::string_view path) {
  for (auto prefix : {kProtectedResource, kAuthorizationServer})
    if (path.substr(0, prefix.size()) == prefix && (path.size() == prefix.size() || path[prefix.size()] == '/'))
      return true;
  return false;
}

std::string protected_resource_metadata(const config::Config& config, const config::RouteConfig& route,
                                        const config::AuthorizationServerConfig* server) {
  JsonPtr document(json_object(), &json_decref);
  json_object_set_new(document.get(), "resource", json_string(route.resource.c_str()));
  if (server != nullptr)
    json_object_set_new(document.get(), "authorization_servers", string_array({server->issuer}));
  json_object_set_new(document.get(), "scopes_supported", string_array(route.auth.scopes_supported));
  json_object_set_new(document.get(), "bearer_methods_supported", string_array({"header"}));
  json_object_set_new(document.get(), "resource_name", json_string(route.resource_name.c_str()));
  if (!route.resource_documentation.empty())
    json_object_set_new(document.get(), "resource_documentation", json_string(route.resource_documentation.c_str()));
  std::unique_ptr<char, decltype(&free)> text(json_dumps(document.get(), JSON_COMPACT), &free);
  return text ? text.get() : "{}";
}

WellKnownExchange::WellKnownExchange(http::Connection& connection, Worker& worker)
    : connection_(connection), worker_(worker), config_(worker.config), registry_(worker.auth) {}

void WellKnownExchange::start() {
  const auto& request = connection_.request();
  if (request.method == "OPTIONS") {  // CORS preflight from browser-based clients
    http::HeaderList headers;
    headers.add("Access-Control-Allow-Origin", "*");
    headers.add("Access-Control-Allow-Methods", "GET, OPTIONS");
    headers.add("Access-Control-Allow-Headers", "MCP-Protocol-Version");
    headers.add("Access-Control-Max-Age", "86400");
    connection_.send_response(204, std::move(headers), "");
    return;
  }
  if (request.method != "GET" && request.method != "HEAD") {
    connection_.send_error({405, "method_not_allowed", "discovery documents answer GET"}, std::nullopt);
    return;
  }
  const std::string_view path = request.path;
  const bool protected_resource = path.substr(0, kProtectedResource.size()) == kProtectedResource;
  const std::string_view suffix = path.substr(protected_resource ? kProtectedResource.size() : kAuthorizationServer.size());
  const config::RouteConfig* route = route_for_suffix(*config_, suffix);
  if (route == nullptr) {
    not_found();
    return;
  }
  if (protected_resource)
    serve_protected_resource(*route);
  else
    serve_authorization_server(*route);
}

void WellKnownExchange::serve_protected_resource(const config::RouteConfig& route) {
  if (route.auth.type == config::AuthType::Plugin) {  // e.g. API keys: no authorization server to name
    reply(200, protected_resource_metadata(*config_, route, nullptr));
    return;
  }
  const auto server = config_->authorization_servers.find(route.auth.server);
  if (server == config_->authorization_servers.end()) {
    not_found();
    return;
  }
  reply(200, protected_resource_metadata(*config_, route, &server->second));
}

void WellKnownExchange::serve_authorization_server(const config::RouteConfig& route) {
  auto server = registry_ ? registry_->find(route.auth.server) : nullptr;
  if (!server) {
    not_found();
    return;
  }
  if (!waiter_) waiter_ = std::make_shared<auth::Waiter>([this, &route] {
    if (!client_gone_) serve_authorization_server(route);
  });
  const auth::WaitHandle wait{&worker_.loop, waiter_};
  const auto availability = server->ensure_metadata(worker_.fetch_context(), &wait);
  if (availability == auth::AuthorizationServer::Availability::Waiting) return;
  const auto metadata = server->metadata();
  if (!metadata) {
    http::HeaderList headers;
    headers.add("Retry-After", std::to_string(server->retry_after_s()));
    connection_.send_error({503, "idp_unavailable", "the authorization server metadata is not available"}, std::nullopt,
                           headers);
    return;
  }
  reply(200, *metadata);
}

void WellKnownExchange::reply(int status, const std::string& body) {
  http::HeaderList headers;
  headers.add("Content-Type", "application/json");
  headers.add("Access-Control-Allow-Origin", "*");
  headers.add("Cache-Control", "max-age=300");
  connection_.send_response(status, std::move(headers), body);
}

void WellKnownExchange::not_found() {
  connection_.send_error({404, "not_found", "no protected resource at this path"}, std::nullopt);
}

}  // namespace mcpgate::proxy
