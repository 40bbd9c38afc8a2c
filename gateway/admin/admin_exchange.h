// The admin listener's requests: /healthz, /readyz, /metrics, and the delegated-token API
//   PUT|GET|DELETE /admin/v1/credentials/<credential>/subjects/<subject>[?issuer=<issuer>]
// (seed or migrate a user's tokens, read their metadata — never their values —, revoke locally).
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include <memory>

#include "config/config.h"
#include "credentials/token_store.h"
#include "http/server.h"
#include "observability/metrics.h"

namespace mcpgate::admin {

struct AdminState {
  std::atomic<bool> ready{false};              // listeners bound, not shutting down
  std::function<bool()> dependencies_ready;    // e.g. eager authorization server metadata; may be empty
  observability::Metrics* metrics = nullptr;
  std::string token;  // fixed at start; empty: /metrics needs no token, the credentials API is off
  std::function<config::ConfigPtr()> config;  // the config in force now
  credentials::TokenStore* token_store = nullptr;  // the admin loop's
};

class AdminExchange : public http::Exchange {
 public:
  AdminExchange(http::Connection& connection, const AdminState& state) : connection_(connection), state_(state) {}
  ~AdminExchange() override { *gone_ = true; }
  void start() override;
  void on_client_closed() override { *gone_ = true; }

 private:
  void reply_json(int status, const std::string& body);
  bool authorized();
  void serve_credentials_api(std::string_view rest);
  void put_tokens(const credentials::UserKey& user);
  void get_tokens(const credentials::UserKey& user);
  void delete_tokens(const credentials::UserKey& user);

  http::Connection& connection_;
  const AdminState& state_;
  std::shared_ptr<bool> gone_ = std::make_shared<bool>(false);  // shared with store callbacks
};

// The issuer an admin request means when it names none: the one authorization server that
// authenticates callers on every route with auth; "" when there are several (or none).
std::string default_caller_issuer(const config::Config& config);

// Constant-time comparison, so the admin token cannot be guessed byte by byte.
bool constant_time_equals(const std::string& a, const std::string& b);

}  // namespace mcpgate::admin
