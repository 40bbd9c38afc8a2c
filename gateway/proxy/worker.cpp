#include "proxy/worker.h"

namespace mcpgate::proxy {

Worker::Worker(unsigned index_, config::ConfigPtr config_, http::TlsContextPtr tls_, observability::Metrics& metrics_)
    : index(index_),
      curl(loop.base()),
      config(std::move(config_)),
      tls(std::move(tls_)),
      metrics(metrics_),
      connections(std::make_unique<http::ConnectionSet>(loop, metrics_.active_connections)) {}

Worker::~Worker() {
  listener.reset();
  connections.reset();  // connections own exchanges, exchanges own transfers on `curl`
  loop.drain_deferred();
}

http::ConnectionSettings connection_settings(const config::Config& config) {
  const auto& limits = config.server.limits;
  return {limits.max_header_bytes, limits.max_body_bytes, limits.idle_timeout_ms, limits.request_timeout_ms,
          limits.stream_buffer_bytes};
}

}  // namespace mcpgate::proxy
