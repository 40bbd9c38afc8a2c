// The gateway's own discovery documents:
//   /.well-known/oauth-protected-resource<route path>   RFC 9728 metadata of a route
//   /.well-known/oauth-authorization-server<route path> the route's AS metadata, mirrored
//     for 2025-03-26-era clients that look for it on the MCP server's origin
// The bare forms (no route path) answer for the only route with auth, or the "/" route.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "auth/authorization_server.h"
#include "http/server.h"
#include "proxy/worker.h"

namespace mcpgate::proxy {

bool is_well_known_path(std::string_view path);

class WellKnownExchange : public http::Exchange {
 public:
  WellKnownExchange(http::Connection& connection, Worker& worker);
  void start() override;
  void on_client_closed() override { client_gone_ = true; }

 private:
  void serve_protected_resource(const config::RouteConfig& route);
  void serve_authorization_server(const config::RouteConfig& route);
  void reply(int status, const std::string& body);
  void not_found();

  http::Connection& connection_;
  Worker& worker_;
  config::ConfigPtr config_;
  std::shared_ptr<auth::AuthRegistry> registry_;
  std::shared_ptr<auth::Waiter> waiter_;
  bool client_gone_ = false;
};

// RFC 9728 §2 document for `route` (which must have auth); `server` null: none is named
// (plugin authentication).
std::string protected_resource_metadata(const config::Config& config, const config::RouteConfig& route,
                                        const config::AuthorizationServerConfig* server);

}  // namespace mcpgate::proxy
