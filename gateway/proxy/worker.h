// One event-loop thread of the gateway: its loop, its curl multi handle, its
// config snapshot and its listener. Everything here is touched only on that
// thread, except through EventLoop::post.
#pragma once

#include <memory>
#include <thread>
#include <unordered_map>
#include <vector>

#include "auth/authorization_server.h"
#include "auth/token_cache.h"
#include "config/config.h"
#include "credentials/delegated_tokens.h"
#include "credentials/service_tokens.h"
#include "credentials/token_store.h"
#include "mcp/session_capabilities.h"
#include "core/event_loop.h"
#include "http/server.h"
#include "http/tls.h"
#include "observability/metrics.h"
#include "plugins/plugin_host.h"
#include "policy/rate_limit.h"
#include "proxy/session_envelope.h"
#include "upstream/curl_multi.h"
#include "upstream/endpoint_pool.h"
#include "upstream/http_fetch.h"

namespace mcpgate::proxy {

// What the loops of one process share: upstream credential state, rate-limit buckets and the
// load of multi-endpoint upstreams.
struct SharedCredentialState {
  std::shared_ptr<const credentials::TokenSealer> sealer;   // store key material, fixed at start
  std::shared_ptr<credentials::MemoryStoreData> memory_store;  // the memory backend's map
  std::shared_ptr<mcp::SessionCapabilities> sessions;      // what 2025-era sessions declared
  std::shared_ptr<policy::LocalBuckets> rate_buckets;      // rate limits without a shared store
  std::shared_ptr<upstream::EndpointPool> endpoints;       // outstanding requests and health per endpoint
};

struct Worker {
  Worker(unsigned index, config::ConfigPtr config, plugins::PluginSetPtr plugins, std::shared_ptr<auth::AuthRegistry> auth,
         http::TlsContextPtr tls, observability::Metrics& metrics, const SharedCredentialState& shared);
  // Starts the background refresh of authorization server keys on this loop.
  void start_maintenance();
  auth::FetchContext fetch_context() { return {&loop, &fetcher}; }
  // Stops nothing: call after the loop has returned. Tears down in dependency order.
  ~Worker();

  unsigned index;
  core::EventLoop loop;
  upstream::CurlMulti curl;
  upstream::Fetcher fetcher;  // the gateway's own outbound calls from this loop
  config::ConfigPtr config;   // the snapshot new requests use
  plugins::PluginSetPtr plugins;  // the plugins loaded for that snapshot
  // Where plugins post answers completed on their own threads; cleared before the loop goes.
  std::shared_ptr<plugins::LoopRef> loop_ref = std::make_shared<plugins::LoopRef>(&loop);
  std::shared_ptr<auth::AuthRegistry> auth;  // authorization servers of that snapshot
  http::TlsContextPtr tls;    // the context new connections use
  SessionEnvelopePtr session_envelope;  // seals session ids on multi-endpoint routes; set with `config`
  auth::TokenCache token_cache;
  credentials::ServiceTokens service_tokens;  // client_credentials and token_exchange tokens of this loop
  SharedCredentialState shared;
  std::unique_ptr<credentials::TokenStore> token_store;  // declared before delegated_tokens, which uses it
  std::unique_ptr<credentials::DelegatedTokens> delegated_tokens;
  // userinfo/introspection calls in flight, by token cache key: the answer (shared with
  // every request that joined, so it reaches them even when it is not cached) and who waits.
  struct PendingLookup {
    std::shared_ptr<auth::LookupOutcome> outcome = std::make_shared<auth::LookupOutcome>();
    std::vector<auth::WaitHandle> waiters;
  };
  std::unordered_map<std::string, PendingLookup> pending_token_lookups;
  event* maintenance_timer = nullptr;  // refreshes keys in the background (worker 0 only)
  observability::Metrics& metrics;
  std::unique_ptr<http::ConnectionSet> connections;
  std::unique_ptr<http::Listener> listener;
  std::thread thread;
};

// The connection settings a config snapshot gives.
http::ConnectionSettings connection_settings(const config::Config& config);

}  // namespace mcpgate::proxy
