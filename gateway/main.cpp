// mcpgate: arguments, config load, signals, run.
#include <curl/curl.h>
#include <signal.h>
#include <sys/resource.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "config/config.h"
#include "config/file_watch.h"
#include "core/event_loop.h"
#include "http/tls.h"
#include "observability/log.h"
#include "plugins/plugin_host.h"
#include "proxy/gateway.h"
#include "proxy/session_envelope.h"

namespace {

using namespace mcpgate;

constexpr const char* kUsage =
    "usage: mcpgate run --config FILE     start the gateway\n"
    "       mcpgate check --config FILE   validate FILE and exit 0 (valid) or 1\n"
    "       mcpgate --version\n";

struct Arguments {
  std::string command;
  std::string config_path;
};

bool parse_arguments(int argc, char** argv, Arguments& out) {
  int i = 1;
  if (i < argc && argv[i][0] != '-') out.command = argv[i++];
  if (out.command.empty()) out.command = "run";
  for (; i < argc; ++i) {
    const std::string arg = argv[i];
    if ((arg == "--config" || arg == "-c") && i + 1 < argc) {
      out.config_path = argv[++i];
    } else if (arg.rfind("--config=", 0) == 0) {
      out.config_path = arg.substr(9);
    } else {
      return false;
    }
  }
  return (out.command == "run" || out.command == "check") && !out.config_path.empty();
}

http::TlsContextPtr load_tls(const config::Config& config) {
  if (!config.server.tls) return nullptr;
  return http::make_server_tls_context(config.server.tls->cert_file, config.server.tls->key_file);
}

void log_restart_only_changes(const config::Config& old_config, const config::Config& new_config) {
  if (old_config.server.listen.to_string() != new_config.server.listen.to_string() ||
      old_config.server.workers != new_config.server.workers ||
      old_config.admin.listen.to_string() != new_config.admin.listen.to_string() ||
      old_config.admin.token != new_config.admin.token || old_config.server.tls.has_value() != new_config.server.tls.has_value())
    spdlog::warn("config reload: changes to server.listen, server.workers, server.tls on/off and admin take effect on restart");
  const auto& old_store = old_config.token_store;
  const auto& new_store = new_config.token_store;
  if (old_store.backend != new_store.backend || old_store.redis_host != new_store.redis_host ||
      old_store.redis_port != new_store.redis_port || old_store.redis_db != new_store.redis_db ||
      old_store.redis_username != new_store.redis_username || old_store.redis_password != new_store.redis_password || old_store.key_prefix != new_store.key_prefix ||
      old_store.encryption_keys != new_store.encryption_keys)
    spdlog::warn("config reload: changes to token_store (backend, Redis, key prefix, keys) take effect on restart");
}

// SIGHUP or a changed file: load and validate off the event loops; a bad config leaves the old
// one serving. Plugins are loaded afresh (init runs again, e.g. an API key file is re-read); a
// plugin failing to load refuses the reload.
void reload(proxy::Gateway& gateway, const std::string& path, const char* trigger) {
  try {
    auto new_config = config::load_config_file(path);
    auto tls = load_tls(*new_config);
    auto plugins = plugins::PluginSet::load(*new_config);
    log_restart_only_changes(gateway.config(), *new_config);
    observability::setup_logging(new_config->log);
    gateway.apply(new_config, std::move(plugins), tls);
    ++gateway.metrics().reloads_succeeded;
    observability::LogEvent(spdlog::level::info, "config reloaded")
        .field("trigger", trigger)
        .field("routes", static_cast<int64_t>(new_config->routes.size()))
        .emit();
  } catch (const std::exception& e) {
    ++gateway.metrics().reloads_failed;
    observability::LogEvent(spdlog::level::err, "config reload rejected; the previous config stays in force")
        .field("trigger", trigger)
        .field("error", e.what())
        .emit();
  }
}

// The signals the control thread waits for. Blocked before any thread starts (the logger's,
// a plugin's), so every thread inherits the mask and only sigwait() takes them.
sigset_t control_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGHUP, SIGTERM, SIGINT}) sigaddset(&signals, s);
  return signals;
}

// Each client connection takes a descriptor (and one more while its request is upstream), so the
// default soft limit (often 1024) would cap the gateway far below max_connections: raised to the
// hard limit the operator allows, with a warning when even that cannot hold max_connections.
void raise_open_file_limit(std::size_t max_connections) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
    getrlimit(RLIMIT_NOFILE, &limit);
  }
  const rlim_t wanted = static_cast<rlim_t>(max_connections) + 256;  // + listeners, IdP calls, the store
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < wanted)
    observability::LogEvent(spdlog::level::warn, "open-file limit is below what max_connections needs")
        .field("limit", static_cast<int64_t>(limit.rlim_cur))
        .field("max_connections", static_cast<int64_t>(max_connections))
        .field("needed", static_cast<int64_t>(wanted))
        .emit();
}

int run(const config::ConfigPtr& config, plugins::PluginSetPtr plugins) {
  const sigset_t signals = control_signals();
  raise_open_file_limit(config->server.limits.max_connections);

  core::enable_libevent_threads();
  curl_global_init(CURL_GLOBAL_DEFAULT);
  proxy::Gateway gateway(config, std::move(plugins), load_tls(*config));
  gateway.start();
  const std::string public_url = config->server.public_url;
  observability::LogEvent started(spdlog::level::info, "mcpgate started");
  started.field("listen", config->server.listen.to_string())
      .field("admin", config->admin.listen.to_string())
      .field("workers", static_cast<int64_t>(config->server.workers))
      .field("tls", config->server.tls ? "on" : "off");
  started.emit();
  for (const auto& [name, credential] : config->credentials)
    if (credential.type == config::CredentialType::Passthrough)
      observability::LogEvent(spdlog::level::warn,
                              "credential forwards the caller's own token upstream (token passthrough); the MCP "
                              "specification forbids this unless the upstream is the token's intended audience")
          .field("credential", name)
          .emit();
  for (const auto& [name, credential] : config->credentials)
    if (credential.type == config::CredentialType::Delegated)
      observability::LogEvent(spdlog::level::info,
                              "delegated credential: register this redirect URI for the gateway's client at its server")
          .field("credential", name)
          .field("server", credential.server)
          .field("redirect_uri", public_url + "/oauth/callback")
          .emit();
  bool balanced = false;
  for (const auto& route : config->routes) {
    std::string upstreams;
    for (const auto& endpoint : route.upstreams) upstreams += (upstreams.empty() ? "" : " ") + proxy::endpoint_name(endpoint);
    balanced |= route.upstreams.size() > 1;
    observability::LogEvent(spdlog::level::info, "route")
        .field("name", route.name)
        .field("url", public_url + (route.path == "/" ? "" : route.path))
        .field("upstream", upstreams)
        .field("transport", route.transport == config::Transport::Sse ? "sse" : "streamable_http")
        .emit();
  }
  if (balanced && config->session_envelope.keys.empty())
    observability::LogEvent(spdlog::level::warn,
                            "session_envelope has no key_file: sessions on routes with several upstream endpoints are "
                            "sealed under a key made at start, so they end with this process and other replicas reject them")
        .emit();

  // Kubernetes updates a mounted ConfigMap or Secret by swapping a symlink, without a signal:
  // the files are looked at once a second.
  config::FileWatch watch(config::watched_files(*config));
  constexpr timespec kWatchInterval{1, 0};
  for (;;) {
    const int received = sigtimedwait(&signals, nullptr, &kWatchInterval);
    if (received < 0) {
      if (!watch.changed()) continue;
      reload(gateway, config->source_path, "file");
      watch = config::FileWatch(config::watched_files(gateway.config()));
      continue;
    }
    if (received == SIGHUP) {
      reload(gateway, config->source_path, "signal");
      watch = config::FileWatch(config::watched_files(gateway.config()));
      continue;
    }
    observability::LogEvent(spdlog::level::info, "shutting down").field("signal", strsignal(received)).emit();
    gateway.shutdown();
    break;
  }
  plugins::drop_orphaned_completions();
  observability::LogEvent(spdlog::level::info, "mcpgate stopped").emit();
  spdlog::shutdown();
  curl_global_cleanup();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && (std::strcmp(argv[1], "--version") == 0)) {
    std::printf("mcpgate %s\n", MCPGATE_VERSION);
    return 0;
  }
  Arguments arguments;
  if (!parse_arguments(argc, argv, arguments)) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  const sigset_t signals = control_signals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  config::ConfigPtr config;
  plugins::PluginSetPtr plugins;
  try {
    config = config::load_config_file(arguments.config_path);
    if (arguments.command == "check") load_tls(*config);  // certificates must load too
    // Plugins log from init: logging is set up first. `check` runs their init too, so a plugin's
    // own config problems are reported by it.
    observability::setup_logging(config->log);
    plugins = plugins::PluginSet::load(*config);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  if (arguments.command == "check") {
    std::printf("config OK: %s (%zu routes, %zu plugins)\n", arguments.config_path.c_str(), config->routes.size(),
                config->plugins.size());
    plugins.reset();
    spdlog::shutdown();
    return 0;
  }
  try {
    return run(config, std::move(plugins));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mcpgate: %s\n", e.what());
    return 1;
  }
}
