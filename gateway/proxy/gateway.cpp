#include "proxy/gateway.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <thread>

#include "proxy/connect_exchange.h"
#include "proxy/proxy_exchange.h"
#include "proxy/well_known.h"

namespace mcpgate::proxy {

namespace {

// The store key material: the configured keys, or for the memory backend without one a key
// made now (what it seals dies with the process anyway).
std::shared_ptr<const credentials::TokenSealer> make_sealer(const config::TokenStoreConfig& store) {
  auto keys = store.encryption_keys;
  if (keys.empty()) {
    spdlog::info("token_store: no encryption_key_file; stored tokens are sealed under a key made at start");
    keys.push_back(credentials::random_key());
  }
  return std::make_shared<const credentials::TokenSealer>(std::move(keys));
}

}  // namespace

struct Gateway::AdminLoop {
  core::EventLoop loop;
  std::unique_ptr<credentials::TokenStore> token_store;  // the admin API's; before `connections`, which use it
  std::atomic<int64_t> connection_count{0};
  std::unique_ptr<http::ConnectionSet> connections = std::make_unique<http::ConnectionSet>(loop, connection_count);
  std::unique_ptr<http::Listener> listener;
  std::thread thread;

  ~AdminLoop() {
    listener.reset();
    connections.reset();
    loop.drain_deferred();
  }
};

Gateway::Gateway(config::ConfigPtr config, plugins::PluginSetPtr plugins, http::TlsContextPtr tls)
    : config_(std::move(config)),
      fallback_session_key_(credentials::random_key()),
      auth_(std::make_shared<auth::AuthRegistry>(*config_, nullptr)),
      metrics_(config_->server.workers) {
  shared_.sealer = make_sealer(config_->token_store);
  shared_.memory_store = std::make_shared<credentials::MemoryStoreData>();
  shared_.sessions = std::make_shared<mcp::SessionCapabilities>();
  shared_.rate_buckets = std::make_shared<policy::LocalBuckets>();
  shared_.endpoints = std::make_shared<upstream::EndpointPool>();
  admin_state_.metrics = &metrics_;
  admin_state_.config = [this] {
    std::lock_guard lock(auth_mutex_);
    return config_;
  };
  admin_state_.token = config_->admin.token;
  admin_state_.dependencies_ready = [this] {
    std::lock_guard lock(auth_mutex_);
    for (const auto& [name, server] : auth_->servers())
      if (server->config().discovery == config::Discovery::Eager && !server->keys()) return false;
    return true;
  };
  const auto envelope = make_session_envelope(config_->session_envelope, fallback_session_key_);
  for (unsigned i = 0; i < config_->server.workers; ++i) {
    workers_.push_back(std::make_unique<Worker>(i, config_, plugins, auth_, tls, metrics_, shared_));
    workers_.back()->session_envelope = envelope;
  }
}

Gateway::~Gateway() = default;

void Gateway::start() {
  const auto& server = config_->server;
  for (auto& worker_ptr : workers_) {
    Worker* worker = worker_ptr.get();
    http::Listener::Options options{server.listen.host, server.listen.port, server.limits.max_connections};
    // Sources read the worker's current snapshot on its own thread, at accept time.
    auto tls_source = [worker] { return worker->tls; };
    auto settings_source = [worker] { return connection_settings(*worker->config); };
    auto factory = [worker](http::Connection& connection) -> std::unique_ptr<http::Exchange> {
      if (is_well_known_path(connection.request().path)) return std::make_unique<WellKnownExchange>(connection, *worker);
      if (is_connect_path(connection.request().path) && offers_connect_flow(*worker->config)) return std::make_unique<ConnectExchange>(connection, *worker);
      return std::make_unique<ProxyExchange>(connection, *worker);
    };
    worker->listener = std::make_unique<http::Listener>(worker->loop, *worker->connections, options, tls_source,
                                                        settings_source, factory, metrics_.active_connections);
  }
  admin_ = std::make_unique<AdminLoop>();
  admin_->token_store = std::make_unique<credentials::TokenStore>(
      credentials::make_store_backend(config_->token_store, admin_->loop, shared_.memory_store), shared_.sealer,
      config_->token_store.key_prefix, &metrics_);
  admin_state_.token_store = admin_->token_store.get();
  const auto& admin_listen = config_->admin.listen;
  // Admin requests are small: GETs from probes and scrapers, token seeding PUTs (a few
  // tokens of some KiB); /metrics output may be large.
  const http::ConnectionSettings admin_settings{.max_header_bytes = 8192,
                                                .max_body_bytes = 65536,
                                                .idle_timeout_ms = 30000,
                                                .request_timeout_ms = 10000,
                                                .output_high_water = 1 << 20};
  constexpr std::size_t kAdminMaxConnections = 64;
  auto admin_factory = [this](http::Connection& connection) -> std::unique_ptr<http::Exchange> {
    return std::make_unique<admin::AdminExchange>(connection, admin_state_);
  };
  admin_->listener = std::make_unique<http::Listener>(
      admin_->loop, *admin_->connections, http::Listener::Options{admin_listen.host, admin_listen.port, kAdminMaxConnections, false}, nullptr,
      [admin_settings] { return admin_settings; }, admin_factory, admin_->connection_count);

  workers_.front()->start_maintenance();
  for (auto& worker : workers_) worker->thread = std::thread([w = worker.get()] { w->loop.run(); });
  admin_->thread = std::thread([a = admin_.get()] { a->loop.run(); });
  admin_state_.ready = true;
}

void Gateway::apply(config::ConfigPtr config, plugins::PluginSetPtr plugins, http::TlsContextPtr tls) {
  std::shared_ptr<auth::AuthRegistry> registry;
  {
    std::lock_guard lock(auth_mutex_);
    config_ = config;
    registry = std::make_shared<auth::AuthRegistry>(*config, auth_.get());
    auth_ = registry;
  }
  const auto envelope = make_session_envelope(config->session_envelope, fallback_session_key_);
  for (auto& worker_ptr : workers_) {
    Worker* worker = worker_ptr.get();
    worker->loop.post([worker, config, plugins, registry, tls, envelope] {
      worker->config = config;
      worker->session_envelope = envelope;
      worker->plugins = plugins;  // the old set goes when its last request does
      worker->auth = registry;
      worker->tls = tls;
      worker->token_cache.clear();      // audiences or issuers may have changed
      worker->service_tokens.clear();   // so may what a credential asks for
    });
  }
}

void Gateway::shutdown() {
  admin_state_.ready = false;
  for (auto& worker_ptr : workers_) {
    Worker* worker = worker_ptr.get();
    worker->loop.post([worker] {
      if (worker->listener) worker->listener->stop_accepting();
      worker->connections->shutdown();
    });
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(config_->server.shutdown_grace_ms);
  while (metrics_.active_connections.load() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (metrics_.active_connections.load() > 0)
    spdlog::warn("shutdown grace period over: closing {} connections", metrics_.active_connections.load());
  for (auto& worker : workers_) worker->loop.stop();
  for (auto& worker : workers_)
    if (worker->thread.joinable()) worker->thread.join();
  workers_.clear();
  if (admin_) {
    admin_->loop.stop();
    if (admin_->thread.joinable()) admin_->thread.join();
    admin_.reset();
  }
}

}  // namespace mcpgate::proxy
