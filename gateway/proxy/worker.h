// One event-loop thread of the gateway: its loop, its curl multi handle, its
// config snapshot and its listener. Everything here is touched only on that
// thread, except through EventLoop::post.
#pragma once

#include <memory>
#include <thread>

#include "config/config.h"
#include "core/event_loop.h"
#include "http/server.h"
#include "http/tls.h"
#include "observability/metrics.h"
#include "upstream/curl_multi.h"

namespace mcpgate::proxy {

struct Worker {
  Worker(unsigned index, config::ConfigPtr config, http::TlsContextPtr tls, observability::Metrics& metrics);
  // Stops nothing: call after the loop has returned. Tears down in dependency order.
  ~Worker();

  unsigned index;
  core::EventLoop loop;
  upstream::CurlMulti curl;
  config::ConfigPtr config;   // the snapshot new requests use
  http::TlsContextPtr tls;    // the context new connections use
  observability::Metrics& metrics;
  std::unique_ptr<http::ConnectionSet> connections;
  std::unique_ptr<http::Listener> listener;
  std::thread thread;
};

// The connection settings a config snapshot gives.
http::ConnectionSettings connection_settings(const config::Config& config);

}  // namespace mcpgate::proxy
