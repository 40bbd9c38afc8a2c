#include "proxy/worker.h"

#include <event2/event.h>

namespace mcpgate::proxy {

Worker::Worker(unsigned index_, config::ConfigPtr config_, plugins::PluginSetPtr plugins_,
               std::shared_ptr<auth::AuthRegistry> auth_, http::TlsContextPtr tls_, observability::Metrics& metrics_,
               const SharedCredentialState& shared_)
    : index(index_),
      curl(loop.base()),
      fetcher(loop, curl),
      config(std::move(config_)),
      plugins(std::move(plugins_)),
      auth(std::move(auth_)),
      tls(std::move(tls_)),
      service_tokens(&metrics_),
      shared(shared_),
      token_store(std::make_unique<credentials::TokenStore>(
          credentials::make_store_backend(config->token_store, loop, shared.memory_store), shared.sealer,
          config->token_store.key_prefix, &metrics_)),
      delegated_tokens(std::make_unique<credentials::DelegatedTokens>(*token_store, &metrics_)),
      metrics(metrics_),
      connections(std::make_unique<http::ConnectionSet>(loop, metrics_.active_connections)) {}

Worker::~Worker() {
  loop_ref->clear();  // late plugin answers are dropped from now on
  if (maintenance_timer != nullptr) event_free(maintenance_timer);
  listener.reset();
  connections.reset();  // connections own exchanges, exchanges own transfers on `curl`
  loop.drain_deferred();
}

namespace {

// Owner: the Worker, which frees this timer before anything it touches.
void on_maintenance(int, short, void* self) noexcept {
  auto* worker = static_cast<Worker*>(self);
  for (const auto& [name, server] : worker->auth->servers()) server->refresh_if_stale(worker->fetch_context());
}

}  // namespace

void Worker::start_maintenance() {
  maintenance_timer = event_new(loop.base(), -1, EV_PERSIST, &on_maintenance, this);
  const timeval period{1, 0};
  event_add(maintenance_timer, &period);
  event_active(maintenance_timer, EV_TIMEOUT, 0);  // eager discovery starts at once
}

http::ConnectionSettings connection_settings(const config::Config& config) {
  const auto& limits = config.server.limits;
  return {limits.max_header_bytes, limits.max_body_bytes, limits.idle_timeout_ms, limits.request_timeout_ms,
          limits.stream_buffer_bytes};
}

}  // namespace mcpgate::proxy
