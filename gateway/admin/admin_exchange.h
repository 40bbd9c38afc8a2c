// The admin listener's requests: /healthz, /readyz, /metrics.
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include "http/server.h"
#include "observability/metrics.h"

namespace mcpgate::admin {

struct AdminState {
  std::atomic<bool> ready{false};              // listeners bound, not shutting down
  std::function<bool()> dependencies_ready;    // e.g. eager authorization server metadata; may be empty
  observability::Metrics* metrics = nullptr;
  std::string token;  // fixed at start; empty: /metrics needs no token
};

class AdminExchange : public http::Exchange {
 public:
  AdminExchange(http::Connection& connection, const AdminState& state) : connection_(connection), state_(state) {}
  void start() override;
  void on_client_closed() override {}

 private:
  void reply_json(int status, const std::string& body);

  http::Connection& connection_;
  const AdminState& state_;
};

// Constant-time comparison, so the admin token cannot be guessed byte by byte.
bool constant_time_equals(const std::string& a, const std::string& b);

}  // namespace mcpgate::admin
