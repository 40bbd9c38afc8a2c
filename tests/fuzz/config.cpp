// load_config_text on fuzzed YAML, as `mcpgate check` and a reload read an operator's file.
//
// Input: the YAML text, whole.
//
// Checked: the only way to refuse a config is a ConfigError that names the source and a
// line:column (any other exception type escapes the reload path's handler: a bug); a config
// that loads holds what the gateway relies on without re-checking (route paths, endpoints,
// 32-byte keys, limits in range, references that resolve). Loading always returns: a hang or
// runaway memory (once yaml-cpp's LoadAll on a stray ',', tests/fuzz/regressions/config/) is
// caught by libFuzzer's -timeout and -rss_limit_mb.
//
// Nothing here writes: the loader only reads files a config names (key files, secrets), and a
// fuzzed config names at most files that do not exist or are not keys; it is given a source
// name, never a path. scripts/fuzz runs it from an empty directory with stdin from /dev/null.
#include <cstdlib>
#include <exception>
#include <string>
#include <typeinfo>

#include "config/config.h"
#include "fuzz_support.h"

namespace {

using mcpgate::fuzz::printable;
namespace config = mcpgate::config;

constexpr const char* kSource = "fuzz.yaml";

void check_upstream(const config::UpstreamUrl& url, const std::string& what) {
  FUZZ_CHECK(url.scheme == "http" || url.scheme == "https", what);
  FUZZ_CHECK(!url.host.empty() && url.port != 0, what);
  FUZZ_CHECK(!url.path.empty() && url.path.front() == '/', what);
  FUZZ_CHECK(url.path.find_first_of("?#") == std::string::npos, what);
}

void check_loaded(const config::Config& loaded, const std::string& text) {
  const std::string what = printable(text);
  FUZZ_CHECK(loaded.server.listen.port != 0, what);
  FUZZ_CHECK(loaded.server.workers >= 1, what);
  FUZZ_CHECK(loaded.server.public_url.empty() || loaded.server.public_url.back() != '/', what);
  FUZZ_CHECK(loaded.server.limits.max_header_bytes > 0 && loaded.server.limits.max_body_bytes > 0, what);
  for (const auto& key : loaded.token_store.encryption_keys) FUZZ_CHECK(key.size() == 32, what);
  for (const auto& key : loaded.session_envelope.keys) FUZZ_CHECK(key.bytes.size() == 32 && !key.id.empty(), what);
  for (const auto& [name, credential] : loaded.credentials) {
    FUZZ_CHECK(name == credential.name, what);
    if (!credential.server.empty()) FUZZ_CHECK(loaded.authorization_servers.count(credential.server) == 1, what);
  }
  for (const auto& route : loaded.routes) {
    FUZZ_CHECK(!route.name.empty(), what);
    FUZZ_CHECK(!route.path.empty() && route.path.front() == '/', what);
    FUZZ_CHECK(route.path == "/" || route.path.back() != '/', what);
    FUZZ_CHECK(!route.upstreams.empty(), what);
    if (route.transport == config::Transport::Sse) FUZZ_CHECK(route.upstreams.size() == 1, what);
    for (const auto& url : route.upstreams) check_upstream(url, what);
    FUZZ_CHECK(route.upstream_credential == "none" || loaded.credentials.count(route.upstream_credential) == 1, what);
    if (route.auth.type == config::AuthType::Jwt || route.auth.type == config::AuthType::Userinfo ||
        route.auth.type == config::AuthType::Introspection)
      FUZZ_CHECK(loaded.authorization_servers.count(route.auth.server) == 1, what);
    FUZZ_CHECK(route.auth.leeway_s <= 600, what);
    for (const auto& [tool, rule] : route.tools) {
      if (rule.credential && *rule.credential != "none") FUZZ_CHECK(loaded.credentials.count(*rule.credential) == 1, what);
    }
    for (const auto& limit : route.rate_limits) FUZZ_CHECK(limit.burst >= 1 && limit.refill_interval_ms > 0, what);
  }
}

}  // namespace

// The variables the repo's configs (the seeds) reference, so they load past ${...}; set here,
// not by the script, so that a saved input reproduces the same way anywhere.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  for (const char* name : {"MCPGATE_ADMIN_TOKEN", "MCPGATE_CLIENT_SECRET", "REDIS_PASSWORD", "UPSTREAM_API_KEY", "API_KEY"})
    setenv(name, "fuzz-value", 0);
  setenv("MCPGATE_TLS_DIR", "/nonexistent/mcpgate-fuzz-tls", 0);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const config::ConfigPtr loaded = config::load_config_text(text, kSource);
    FUZZ_CHECK(loaded != nullptr, printable(text));
    check_loaded(*loaded, text);
    if (mcpgate::fuzz::debug()) std::fprintf(stderr, "loaded: %zu routes\n", loaded->routes.size());
  } catch (const config::ConfigError& e) {
    // "fuzz.yaml:<line>:<column>: <what>"
    const std::string message = e.what();
    if (mcpgate::fuzz::debug()) std::fprintf(stderr, "refused: %s\n", message.c_str());
    const std::string prefix = std::string(kSource) + ":";
    FUZZ_CHECK(message.compare(0, prefix.size(), prefix) == 0, message);
    const std::size_t line_end = message.find(':', prefix.size());
    const std::size_t column_end = line_end == std::string::npos ? line_end : message.find(':', line_end + 1);
    FUZZ_CHECK(column_end != std::string::npos && line_end > prefix.size() && column_end > line_end + 1, message);
    FUZZ_CHECK(message.size() > column_end + 2, message);
  } catch (const std::exception& e) {
    mcpgate::fuzz::invariant_failed(__FILE__, __LINE__, "only ConfigError may escape load_config_text",
                                    std::string(typeid(e).name()) + ": " + e.what() + " for " + printable(text));
  } catch (...) {
    mcpgate::fuzz::invariant_failed(__FILE__, __LINE__, "only ConfigError may escape load_config_text",
                                    "a non-std exception for " + printable(text));
  }
  return 0;
}
