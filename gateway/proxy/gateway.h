// The running gateway: N worker loops serving routes, one admin loop, and the
// control operations main() drives from its signal thread (reload, shutdown).
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "admin/admin_exchange.h"
#include "auth/authorization_server.h"
#include "config/config.h"
#include "http/tls.h"
#include "observability/metrics.h"
#include "proxy/worker.h"

namespace mcpgate::proxy {

class Gateway {
 public:
  Gateway(config::ConfigPtr config, plugins::PluginSetPtr plugins, http::TlsContextPtr tls);
  ~Gateway();

  // Binds every listener (throws std::runtime_error naming the address) and starts the threads.
  void start();
  // Hands a validated config (and its TLS context) to every worker; requests
  // already running keep the snapshot they started with.
  void apply(config::ConfigPtr config, plugins::PluginSetPtr plugins, http::TlsContextPtr tls);
  // Stops accepting, lets requests finish for up to shutdown_grace_ms, ends
  // streams cleanly, then stops every thread. Blocks until done.
  void shutdown();

  const config::Config& config() const { return *config_; }
  observability::Metrics& metrics() { return metrics_; }

 private:
  struct AdminLoop;

  config::ConfigPtr config_;  // written by the control thread; guarded by auth_mutex_ for the admin thread
  mutable std::mutex auth_mutex_;  // guards auth_ and config_, read by the admin thread
  SharedCredentialState shared_;
  const std::string fallback_session_key_;  // seals session envelopes while the config names no key
  std::shared_ptr<auth::AuthRegistry> auth_;
  observability::Metrics metrics_;
  admin::AdminState admin_state_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<AdminLoop> admin_;
};

}  // namespace mcpgate::proxy
