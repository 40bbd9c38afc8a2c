// Tests for the YAML config loader: a full config, the defaults, and every validation error
// with its position.
#include <doctest/doctest.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "config/config.h"

using namespace mcpgate::config;

namespace {

constexpr const char* kSource = "test.yaml";

// The loader's error message, or a marker when the text loads.
std::string error_for(const std::string& yaml) {
  try {
    load_config_text(yaml, kSource);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "<loaded without error>";
}

bool contains(const std::string& text, std::string_view part) { return text.find(part) != std::string::npos; }

// Loading `yaml` fails at `position` ("test.yaml:3:5: ") with a message containing `text`.
#define CHECK_CONFIG_ERROR(yaml, position, text)          \
  do {                                                    \
    const std::string message_ = error_for(yaml);         \
    INFO("message: " << message_);                        \
    CHECK(message_.rfind(position, 0) == 0);              \
    CHECK(contains(message_, text));                      \
  } while (false)

// A valid config whose only route has `body` after its name; the body starts on line 5 and
// its keys at column 5.
std::string with_route(const std::string& body) {
  return "server:\n"
         "  listen: \"127.0.0.1:8080\"\n"
         "routes:\n"
         "  - name: notes\n" +
         body;
}

constexpr const char* kRouteBody =
    "    path: /notes\n"
    "    upstream: \"http://127.0.0.1:3001/mcp\"\n"
    "    auth: {type: none}\n";

// A valid config with `body` in the server section from line 3, keys at column 3.
std::string with_server(const std::string& body) {
  return "server:\n"
         "  listen: \"127.0.0.1:8080\"\n" +
         body + "routes:\n  - name: notes\n" + kRouteBody;
}

// A valid config with `sections` (e.g. admin:, log:) starting on line 3.
std::string with_sections(const std::string& sections) {
  return "server:\n"
         "  listen: \"127.0.0.1:8080\"\n" +
         sections + "routes:\n  - name: notes\n" + kRouteBody;
}

ConfigPtr load(const std::string& yaml) { return load_config_text(yaml, kSource); }

// A valid config (one auth-none route, lines 1-7) with authorization server 'corp' on line 9,
// `body` as its keys from line 10, column 5.
std::string with_auth_server(const std::string& body) {
  return with_route(kRouteBody) + "authorization_servers:\n  corp:\n" + body;
}

constexpr const char* kCorpServer = "authorization_servers:\n  corp:\n    issuer: \"https://auth.example.com\"\n";

// A valid config whose route has `auth: {type: jwt, server: corp}` (type on line 8, server on
// line 9); `body` follows from line 10: auth keys at column 7, then route keys at column 5.
std::string with_jwt_route(const std::string& body) {
  return with_route("    path: /notes\n    upstream: \"http://127.0.0.1:3001/mcp\"\n    auth:\n      type: jwt\n"
                    "      server: corp\n" +
                    body) +
         kCorpServer;
}

// Like with_jwt_route, for a route with `auth: {type: none}` on line 7; `body` from line 8.
std::string with_open_route(const std::string& body) {
  return with_route("    path: /notes\n    upstream: \"http://127.0.0.1:3001/mcp\"\n    auth: {type: none}\n" + body);
}

using JsonPtr = std::unique_ptr<json_t, decltype(&json_decref)>;

// Parses JSON text the loader produced; null when it is not valid JSON.
JsonPtr parse_json(const std::string& text) {
  return JsonPtr(json_loadb(text.data(), text.size(), JSON_REJECT_DUPLICATES, nullptr), &json_decref);
}

// The repository root, derived by text: tests/data may not exist in a fresh checkout, and
// "<dir>/../.." only resolves when <dir> does.
std::string repo_root() {
  const std::string data_dir = MCPGATE_TEST_DATA_DIR;
  const std::string suffix = "/tests/data";
  REQUIRE(data_dir.size() > suffix.size());
  REQUIRE(data_dir.compare(data_dir.size() - suffix.size(), suffix.size(), suffix) == 0);
  return data_dir.substr(0, data_dir.size() - suffix.size());
}

// Sets an environment variable for one test and restores the previous state after.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) previous_ = old;
    if (value) {
      setenv(name, value, 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (previous_) {
      setenv(name_, previous_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> previous_;
};

}  // namespace

// ---- Valid configs ----

TEST_CASE("config: a full valid config loads every field") {
  const std::string yaml = R"(
server:
  listen: "[::1]:8443"
  public_url: "https://mcp.example.com/"
  tls:
    cert_file: /etc/mcpgate/tls.crt
    key_file: /etc/mcpgate/tls.key
  workers: 4
  limits:
    max_body_bytes: 2048
    max_header_bytes: 8192
    max_connections: 100
    upstream_timeout_ms: 1000
    upstream_connect_timeout_ms: 500
    idle_timeout_ms: 2000
    request_timeout_ms: 3000
    stream_buffer_bytes: 65536
  shutdown_grace_ms: 0
admin:
  listen: "127.0.0.1:9191"
  token: "s3cret"
log:
  level: debug
  format: text
  access_log: false
routes:
  - name: notes
    path: /notes/
    upstream: "https://Notes.Internal:8443/mcp/v1"
    transport: streamable_http
    resource: "https://mcp.example.com/notes"
    resource_name: "Notes"
    allowed_origins: ["https://Inspector.example.com:443", "http://localhost:6274"]
    auth:
      type: none
    forward_identity: true
  - name: legacy.sse_1
    path: /
    upstream: "http://[::1]:3002/sse"
    transport: sse
    auth: {type: none}
)";
  const ConfigPtr config = load(yaml);
  CHECK(config->source_path.empty());

  const ServerConfig& server = config->server;
  CHECK(server.listen.host == "::1");
  CHECK(server.listen.port == 8443);
  CHECK(server.public_url == "https://mcp.example.com");
  REQUIRE(server.tls.has_value());
  CHECK(server.tls->cert_file == "/etc/mcpgate/tls.crt");
  CHECK(server.tls->key_file == "/etc/mcpgate/tls.key");
  CHECK(server.workers == 4);
  CHECK(server.limits.max_body_bytes == 2048);
  CHECK(server.limits.max_header_bytes == 8192);
  CHECK(server.limits.max_connections == 100);
  CHECK(server.limits.upstream_timeout_ms == 1000);
  CHECK(server.limits.upstream_connect_timeout_ms == 500);
  CHECK(server.limits.idle_timeout_ms == 2000);
  CHECK(server.limits.request_timeout_ms == 3000);
  CHECK(server.limits.stream_buffer_bytes == 65536);
  CHECK(server.shutdown_grace_ms == 0);

  CHECK(config->admin.listen.to_string() == "127.0.0.1:9191");
  CHECK(config->admin.token == "s3cret");
  CHECK(config->log.level == "debug");
  CHECK(config->log.format == LogFormat::Text);
  CHECK_FALSE(config->log.access_log);

  REQUIRE(config->routes.size() == 2);
  const RouteConfig& notes = config->routes[0];
  CHECK(notes.name == "notes");
  CHECK(notes.path == "/notes");
  CHECK(notes.upstreams.at(0).scheme == "https");
  CHECK(notes.upstreams.at(0).host == "notes.internal");
  CHECK(notes.upstreams.at(0).port == 8443);
  CHECK(notes.upstreams.at(0).path == "/mcp/v1");
  CHECK(notes.transport == Transport::StreamableHttp);
  CHECK(notes.resource == "https://mcp.example.com/notes");
  CHECK(notes.resource_name == "Notes");
  CHECK(notes.allowed_origins == std::vector<std::string>{"https://inspector.example.com", "http://localhost:6274"});
  CHECK(notes.auth.type == AuthType::None);
  CHECK(notes.forward_identity);

  const RouteConfig& legacy = config->routes[1];
  CHECK(legacy.name == "legacy.sse_1");
  CHECK(legacy.path == "/");
  CHECK(legacy.upstreams.at(0).origin() == "http://[::1]:3002");
  CHECK(legacy.transport == Transport::Sse);
  CHECK(legacy.resource == "https://mcp.example.com/");
  CHECK(legacy.resource_name == "legacy.sse_1");
}

TEST_CASE("config: omitted keys take their defaults") {
  const ConfigPtr config = load(with_route(kRouteBody));
  const Limits defaults;
  CHECK(config->server.public_url == "http://127.0.0.1:8080");
  CHECK_FALSE(config->server.tls.has_value());
  CHECK(config->server.workers >= 1);
  CHECK(config->server.workers <= 256);
  if (std::thread::hardware_concurrency() > 0 && std::thread::hardware_concurrency() <= 256) {
    CHECK(config->server.workers == std::thread::hardware_concurrency());
  }
  CHECK(config->server.limits.max_body_bytes == defaults.max_body_bytes);
  CHECK(config->server.limits.stream_buffer_bytes == defaults.stream_buffer_bytes);
  CHECK(config->server.shutdown_grace_ms == 10000);
  CHECK(config->admin.listen.to_string() == "127.0.0.1:9090");
  CHECK(config->admin.token.empty());
  CHECK(config->log.level == "info");
  CHECK(config->log.format == LogFormat::Json);
  CHECK(config->log.access_log);
  const RouteConfig& route = config->routes.at(0);
  CHECK(route.transport == Transport::StreamableHttp);
  CHECK(route.resource == "http://127.0.0.1:8080/notes");
  CHECK(route.resource_name == "notes");
  CHECK(route.allowed_origins.empty());
  CHECK_FALSE(route.forward_identity);
}

TEST_CASE("config: public_url defaults to https when tls is set") {
  const ConfigPtr config = load(with_server("  tls: {cert_file: a.crt, key_file: a.key}\n"));
  CHECK(config->server.public_url == "https://127.0.0.1:8080");
  CHECK(config->routes.at(0).resource == "https://127.0.0.1:8080/notes");
}

TEST_CASE("config: empty or null admin token and empty sections are accepted") {
  CHECK(load(with_sections("admin:\n  token:\n"))->admin.token.empty());
  CHECK(load(with_sections("admin:\n  token: \"\"\n"))->admin.token.empty());
  CHECK(load(with_sections("admin:\nlog: {}\n"))->log.level == "info");
  CHECK(load(with_server("  limits:\n"))->server.limits.max_connections == Limits().max_connections);
  CHECK(load(with_route(std::string(kRouteBody) + "    allowed_origins: []\n"))->routes.at(0).allowed_origins.empty());
}

TEST_CASE("config: upstream path defaults to / and the scheme's port is filled in") {
  const ConfigPtr config = load(with_route(
      "    path: /a\n"
      "    upstream: \"http://upstream.local\"\n"
      "    auth: {type: none}\n"));
  const UpstreamUrl& upstream = config->routes.at(0).upstreams.at(0);
  CHECK(upstream.path == "/");
  CHECK(upstream.port == 80);
  CHECK(upstream.origin() == "http://upstream.local:80");
}

// ---- Addresses and URLs ----

TEST_CASE("config: parse_listen_address") {
  CHECK(parse_listen_address("127.0.0.1:8080").to_string() == "127.0.0.1:8080");
  CHECK(parse_listen_address("[::]:8443").host == "::");
  CHECK(parse_listen_address("[::1]:8443").to_string() == "[::1]:8443");
  CHECK(parse_listen_address("localhost:1").port == 1);
  CHECK_THROWS_AS(parse_listen_address("127.0.0.1"), std::invalid_argument);
  CHECK_THROWS_AS(parse_listen_address("127.0.0.1:"), std::invalid_argument);
  CHECK_THROWS_AS(parse_listen_address("127.0.0.1:0"), std::invalid_argument);
  CHECK_THROWS_AS(parse_listen_address("127.0.0.1:65536"), std::invalid_argument);
  CHECK_THROWS_AS(parse_listen_address("127.0.0.1:80x"), std::invalid_argument);
  CHECK_THROWS_AS(parse_listen_address(":8080"), std::invalid_argument);
  CHECK_THROWS_AS(parse_listen_address("::1:8080"), std::invalid_argument);
  CHECK_THROWS_AS(parse_listen_address("[::1]8080"), std::invalid_argument);
  CHECK_THROWS_AS(parse_listen_address("[::1"), std::invalid_argument);
  CHECK_THROWS_AS(parse_listen_address("[not-v6]:80"), std::invalid_argument);
  CHECK_THROWS_AS(parse_listen_address("bad host:80"), std::invalid_argument);
}

TEST_CASE("config: parse_upstream_url") {
  const UpstreamUrl url = parse_upstream_url("HTTPS://[::1]/mcp");
  CHECK(url.scheme == "https");
  CHECK(url.host == "::1");
  CHECK(url.port == 443);
  CHECK(url.path == "/mcp");
  CHECK(url.origin() == "https://[::1]:443");
  CHECK(parse_upstream_url("http://h:3001").origin() == "http://h:3001");
  for (const char* bad : {"ftp://h/", "h:80/mcp", "/mcp", "http://", "http:///mcp", "http://h/mcp?x=1",
                          "http://h/mcp#f", "http://u:p@h/mcp", "http://h:0/", "http://h:99999/",
                          "http://h/a b", "http://::1/"}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(parse_upstream_url(bad), std::invalid_argument);
  }
}

// ---- Environment substitution ----

TEST_CASE("config: ${ENV} is substituted anywhere in a scalar, $${ is a literal") {
  ScopedEnv host("MCPGATE_TEST_HOST", "10.0.0.7");
  ScopedEnv port("MCPGATE_TEST_PORT", "3001");
  ScopedEnv token("MCPGATE_TEST_TOKEN", "a: #{b} 'c\" [d]");  // YAML specials stay intact
  ScopedEnv workers("MCPGATE_TEST_WORKERS", "3");
  const ConfigPtr config = load(R"(
server:
  listen: "127.0.0.1:8080"
  workers: ${MCPGATE_TEST_WORKERS}
admin:
  token: ${MCPGATE_TEST_TOKEN}
routes:
  - name: notes
    path: /notes
    upstream: "http://${MCPGATE_TEST_HOST}:${MCPGATE_TEST_PORT}/mcp"
    resource_name: "cost: $${NOT_A_VAR} and $$ and $"
    auth: {type: none}
)");
  CHECK(config->admin.token == "a: #{b} 'c\" [d]");
  CHECK(config->server.workers == 3);
  CHECK(config->routes.at(0).upstreams.at(0).origin() == "http://10.0.0.7:3001");
  CHECK(config->routes.at(0).resource_name == "cost: ${NOT_A_VAR} and $$ and $");
}

TEST_CASE("config: an unset environment variable names the variable, key and line") {
  ScopedEnv unset("MCPGATE_TEST_UNSET", nullptr);
  CHECK_CONFIG_ERROR(with_sections("admin:\n  token: \"x${MCPGATE_TEST_UNSET}\"\n"), "test.yaml:4:10: ",
                     "admin.token: environment variable 'MCPGATE_TEST_UNSET' is not set");
}

TEST_CASE("config: malformed ${...} references are errors") {
  CHECK_CONFIG_ERROR(with_sections("admin:\n  token: \"${OPEN\"\n"), "test.yaml:4:10: ",
                     "admin.token: unterminated '${'");
  CHECK_CONFIG_ERROR(with_sections("admin:\n  token: \"${}\"\n"), "test.yaml:4:10: ",
                     "admin.token: invalid environment variable name ''");
  CHECK_CONFIG_ERROR(with_sections("admin:\n  token: \"${A-B}\"\n"), "test.yaml:4:10: ",
                     "invalid environment variable name 'A-B'");
}

// ---- Document-level errors ----

TEST_CASE("config: YAML syntax errors carry the position") {
  CHECK_CONFIG_ERROR("server:\n  listen: [1, 2\nroutes: []\n", "test.yaml:", "end of sequence flow not found");
  CHECK_CONFIG_ERROR("server: {listen: a: b}\n", "test.yaml:1:", "");
  CHECK_CONFIG_ERROR("server: *missing\n", "test.yaml:1:", "anchor");
}

TEST_CASE("config: an empty document, several documents, or a non-map top level are errors") {
  CHECK_CONFIG_ERROR("", "test.yaml:1:1: ", "the config is empty");
  CHECK_CONFIG_ERROR("# only a comment\n", "test.yaml:1:1: ", "the config is empty");
  // The position of the second document's "---".
  CHECK_CONFIG_ERROR(with_route(kRouteBody) + "---\nserver: {}\n", "test.yaml:8:1: ", "expected a single YAML document");
  // Regression (fuzzing): yaml-cpp 0.7's LoadAll never returned on a stray ','.
  CHECK_CONFIG_ERROR(",", "test.yaml:", "");
  CHECK_CONFIG_ERROR(with_route(kRouteBody) + "---\n,", "test.yaml:8:1: ", "expected a single YAML document");
  CHECK_CONFIG_ERROR("- server\n", "test.yaml:1:1: ", "expected a map (got a list)");
}

TEST_CASE("config: duplicate keys are errors") {
  CHECK_CONFIG_ERROR(with_server("  listen: \"127.0.0.1:8081\"\n"), "test.yaml:3:3: ",
                     "duplicate key 'listen' in server");
  CHECK_CONFIG_ERROR(with_route(kRouteBody) + "server: {}\n", "test.yaml:8:1: ", "duplicate key 'server' at top level");
}

// ---- Unknown and not-yet-supported keys ----

TEST_CASE("config: unknown keys name the key and where it is") {
  CHECK_CONFIG_ERROR("serverr:\n  listen: x\n", "test.yaml:1:1: ", "unknown key 'serverr' at top level");
  CHECK_CONFIG_ERROR(with_server("  foo: 1\n"), "test.yaml:3:3: ", "unknown key 'foo' in server");
  CHECK_CONFIG_ERROR(with_server("  tls: {cert_file: a, key_file: b, ca_file: c}\n"), "test.yaml:3:36: ",
                     "unknown key 'ca_file' in server.tls");
  CHECK_CONFIG_ERROR(with_server("  limits:\n    max_body: 1\n"), "test.yaml:4:5: ",
                     "unknown key 'max_body' in server.limits");
  CHECK_CONFIG_ERROR(with_sections("admin:\n  port: 1\n"), "test.yaml:4:3: ", "unknown key 'port' in admin");
  CHECK_CONFIG_ERROR(with_sections("log:\n  file: x\n"), "test.yaml:4:3: ", "unknown key 'file' in log");
  CHECK_CONFIG_ERROR(with_route(std::string(kRouteBody) + "    foo: bar\n"), "test.yaml:8:5: ",
                     "unknown key 'foo' in route 'notes'");
  CHECK_CONFIG_ERROR(with_route("    path: /n\n    upstream: \"http://h/\"\n    auth: {type: none, foo: 1}\n"),
                     "test.yaml:7:24: ", "unknown key 'foo' in the auth of route 'notes'");
}

TEST_CASE("config: rate limits: per, tool, rate, burst and names") {
  const auto config = load_config_text(
      with_jwt_route("    rate_limits:\n"
                "      - { per: subject, tool: delete_note, rate: 10/min, burst: 5 }\n"
                "      - { per: route, rate: 100/s }\n"
                "      - { per: client_id, rate: 3/hour, name: per-client }\n"
                "      - { per: tool, rate: 2/second }\n"),
      "test.yaml");
  const auto& limits = config->routes.at(0).rate_limits;
  REQUIRE(limits.size() == 4);
  CHECK(limits[0].per == RateLimitKey::Subject);
  CHECK(limits[0].tool == "delete_note");
  CHECK(limits[0].burst == 5);
  CHECK(limits[0].refill_interval_ms == doctest::Approx(6000));
  CHECK(limits[0].name == "subject:delete_note");
  CHECK(limits[1].per == RateLimitKey::Route);
  CHECK(limits[1].burst == 100);  // default: the rate's count
  CHECK(limits[1].refill_interval_ms == doctest::Approx(10));
  CHECK(limits[1].name == "route");
  CHECK(limits[2].name == "per-client");
  CHECK(limits[2].refill_interval_ms == doctest::Approx(1200000));
  CHECK(limits[3].per == RateLimitKey::Tool);

  auto limit = [](const std::string& entry) { return with_jwt_route("    rate_limits:\n      - " + entry + "\n"); };
  CHECK_CONFIG_ERROR(limit("{ per: subject, rate: 10/fortnight }"), "test.yaml:",
                     "rate_limits[0].rate: expected '<count>/<unit>' with a unit of s, min or hour (e.g. 10/min) (got unit 'fortnight')");
  CHECK_CONFIG_ERROR(limit("{ per: subject, rate: 0/min }"), "test.yaml:", "the count must be a whole number from 1 to 1000000");
  CHECK_CONFIG_ERROR(limit("{ per: subject, rate: 10 }"), "test.yaml:", "expected '<count>/<unit>'");
  CHECK_CONFIG_ERROR(limit("{ per: subject, rate: 10/min, burst: 0 }"), "test.yaml:", "rate_limits[0].burst: expected");
  CHECK_CONFIG_ERROR(limit("{ per: ip, rate: 10/min }"), "test.yaml:", "rate_limits[0].per: expected one of route, subject, client_id, tool");
  CHECK_CONFIG_ERROR(limit("{ rate: 10/min }"), "test.yaml:", "missing required key 'per'");
  CHECK_CONFIG_ERROR(limit("{ per: subject, rate: 10/min, window: 1 }"), "test.yaml:",
                     "unknown key 'window' in a rate limit of route 'notes'");
  CHECK_CONFIG_ERROR(with_jwt_route("    rate_limits:\n      - { per: subject, rate: 1/s }\n      - { per: subject, rate: 9/min }\n"),
                     "test.yaml:", "rate limit name 'subject' is already used on route 'notes'");
  CHECK_CONFIG_ERROR(with_open_route("    rate_limits:\n      - { per: subject, rate: 1/s }\n"), "test.yaml:",
                     "rate_limits[0].per: per subject needs an auth type that identifies the caller");
  // Without a caller, a route-wide or per-tool limit still works.
  CHECK(load_config_text(with_open_route("    rate_limits:\n      - { per: route, rate: 1/s }\n"), "test.yaml")
            ->routes.at(0).rate_limits.size() == 1);
}

TEST_CASE("config: plugins, auth type plugin, policy and request plugins") {
  const std::string plugins =
      "plugins:\n"
      "  - name: keys\n    path: /opt/p/libkeys.so\n    config: { keys_file: /etc/keys.txt, strict: true }\n"
      "  - name: guard\n    path: plugins/libguard.so\n";
  const auto config = load_config_text(
      plugins + with_route("    path: /n\n    upstream: \"http://h/\"\n"
                           "    auth: { type: plugin, plugin: keys, required_scopes: [read] }\n"
                           "    policy_plugins: [guard]\n    request_plugins: [keys, guard]\n"),
      "conf/test.yaml");
  REQUIRE(config->plugins.size() == 2);
  CHECK(config->plugins[0].path == "/opt/p/libkeys.so");
  CHECK(config->plugins[0].config_json == R"({"keys_file":"/etc/keys.txt","strict":true})");
  CHECK(config->plugins[1].path == "conf/plugins/libguard.so");  // relative to the config file
  CHECK(config->plugins[1].config_json == "{}");
  const auto& route = config->routes.at(0);
  CHECK(route.auth.type == AuthType::Plugin);
  CHECK(route.auth.plugin == "keys");
  CHECK(route.auth.required_scopes == std::vector<std::string>{"read"});
  CHECK(route.auth.scopes_supported == std::vector<std::string>{"read"});
  CHECK(route.policy_plugins == std::vector<std::string>{"guard"});
  CHECK(route.request_plugins == std::vector<std::string>{"keys", "guard"});

  auto route_with = [&](const std::string& body) {
    return plugins + with_route("    path: /n\n    upstream: \"http://h/\"\n" + body);
  };
  CHECK_CONFIG_ERROR(route_with("    auth: { type: plugin, plugin: nope }\n"), "test.yaml:",
                     "routes[0].auth.plugin: unknown plugin 'nope' (not defined under plugins)");
  CHECK_CONFIG_ERROR(route_with("    auth: { type: plugin }\n"), "test.yaml:", "missing required key 'plugin'");
  CHECK_CONFIG_ERROR(route_with("    auth: { type: plugin, plugin: keys, server: corp }\n"), "test.yaml:",
                     "unknown key 'server' in the auth of route 'notes'");
  CHECK_CONFIG_ERROR(route_with("    auth: { type: none }\n    policy_plugins: [guard]\n"), "test.yaml:",
                     "policy_plugins: needs an auth type that identifies the caller");
  CHECK_CONFIG_ERROR(route_with("    auth: { type: none }\n    request_plugins: [guard, guard]\n"), "test.yaml:",
                     "'guard' is listed twice");
  CHECK(load_config_text(route_with("    auth: { type: none }\n    request_plugins: [guard]\n"), "test.yaml")
            ->routes.at(0).request_plugins.size() == 1);
  CHECK_CONFIG_ERROR("plugins:\n  - name: a\n    path: /x.so\n  - name: a\n    path: /y.so\n" +
                         with_route(kRouteBody),
                     "test.yaml:4:11: ", "plugins[1].name: duplicate plugin name 'a'");
  CHECK_CONFIG_ERROR("plugins:\n  - name: a\n" + with_route(kRouteBody), "test.yaml:", "missing required key 'path'");
  CHECK_CONFIG_ERROR("plugins:\n  - name: a\n    path: /x.so\n    config: [1]\n" + with_route(kRouteBody),
                     "test.yaml:", "plugins[0].config: expected a map");
  CHECK_CONFIG_ERROR("plugins:\n  - name: a b\n    path: /x.so\n" + with_route(kRouteBody), "test.yaml:",
                     "may contain only letters");
}

TEST_CASE("config: userinfo and introspection auth, unknown types") {
  const std::string servers =
      "authorization_servers:\n  corp:\n    issuer: \"https://idp.example\"\n    client: {id: gw, secret: s}\n"
      "  bare:\n    issuer: \"https://idp2.example\"\n";
  for (const char* type : {"userinfo", "introspection"}) {
    CAPTURE(type);
    const auto config = load_config_text(
        servers + with_route("    path: /n\n    upstream: \"http://h/\"\n    auth:\n      type: " + std::string(type) +
                             "\n      server: corp\n      required_scopes: [read]\n      cache_ttl_s: 30\n"),
        "test.yaml");
    const auto& auth = config->routes.at(0).auth;
    CHECK(auth.type == (std::string(type) == "userinfo" ? AuthType::Userinfo : AuthType::Introspection));
    CHECK(auth.server == "corp");
    CHECK(auth.cache_ttl_s == 30);
    CHECK(auth.required_scopes == std::vector<std::string>{"read"});
    // Signature algorithms belong to jwt only.
    CHECK_CONFIG_ERROR(servers + with_route("    path: /n\n    upstream: \"http://h/\"\n    auth:\n      type: " +
                                            std::string(type) + "\n      server: corp\n      algorithms: [RS256]\n"),
                       "test.yaml:", "unknown key 'algorithms'");
  }
  CHECK_CONFIG_ERROR(servers + with_route("    path: /n\n    upstream: \"http://h/\"\n    auth:\n      type: introspection\n"
                                          "      server: bare\n"),
                     "test.yaml:", "routes[0].auth.server: authorization server 'bare' needs client.id and client.secret");
  CHECK_CONFIG_ERROR(with_route("    path: /n\n    upstream: \"http://h/\"\n    auth: {type: basic}\n"),
                     "test.yaml:7:18: ",
                     "routes[0].auth.type: unknown auth type 'basic' (expected none, jwt, userinfo, introspection or plugin)");
}

TEST_CASE("config: auth type none takes no other auth keys") {
  for (const char* key : {"server", "audience", "required_scopes", "scopes_supported", "algorithms", "leeway_s",
                          "cache_ttl_s"}) {
    CAPTURE(key);
    CHECK_CONFIG_ERROR(with_route("    path: /n\n    upstream: \"http://h/\"\n    auth:\n      type: none\n      " +
                                  std::string(key) + ": x\n"),
                       "test.yaml:9:7: ", std::string("routes[0].auth.") + key + ": not supported yet (");
  }
}

TEST_CASE("config: auth is required and must be a map with a type") {
  CHECK_CONFIG_ERROR(with_route("    path: /n\n    upstream: \"http://h/\"\n"), "test.yaml:4:5: ",
                     "routes[0]: missing required key 'auth'");
  CHECK_CONFIG_ERROR(with_route("    path: /n\n    upstream: \"http://h/\"\n    auth: {}\n"), "test.yaml:7:11: ",
                     "routes[0].auth: missing required key 'type'");
  CHECK_CONFIG_ERROR(with_route("    path: /n\n    upstream: \"http://h/\"\n    auth: none\n"), "test.yaml:7:11: ",
                     "routes[0].auth: expected a map (got a scalar)");
}

TEST_CASE("config: a route's upstream may list several endpoints") {
  const ConfigPtr config = load(with_route(
      "    path: /n\n    upstream: [\"http://10.0.0.5:3001/mcp\", \"https://10.0.0.6/v2\"]\n    auth: {type: none}\n"));
  const auto& route = config->routes.at(0);
  REQUIRE(route.upstreams.size() == 2);
  CHECK(route.upstreams[0].origin() == "http://10.0.0.5:3001");
  CHECK(route.upstreams[1].origin() == "https://10.0.0.6:443");
  CHECK(route.upstreams[1].path == "/v2");
  CHECK(route.balancing == Balancing::RoundRobin);
  CHECK(config->server.limits.endpoint_skip_ms == 10000);
  CHECK(load(with_route("    path: /n\n    upstream: [\"http://a/\", \"http://b/\"]\n    load_balancing: least_outstanding\n"
                        "    auth: {type: none}\n"))
            ->routes.at(0)
            .balancing == Balancing::LeastOutstanding);
  CHECK_CONFIG_ERROR(with_route("    path: /n\n    upstream: [\"http://a/\", \"http://a:80/\"]\n    auth: {type: none}\n"),
                     "test.yaml:6:29: ", "routes[0].upstream[1]: this endpoint is listed twice");
  CHECK_CONFIG_ERROR(with_route("    path: /n\n    upstream: []\n    auth: {type: none}\n"), "test.yaml:6:15: ",
                     "routes[0].upstream: expected at least one endpoint");
  CHECK_CONFIG_ERROR(with_route("    path: /n\n    upstream: [\"http://a/\", \"ftp://b/\"]\n    auth: {type: none}\n"),
                     "test.yaml:6:29: ", "routes[0].upstream[1]: invalid URL");
  CHECK_CONFIG_ERROR(with_route("    path: /n\n    upstream: [\"http://a/sse\", \"http://b/sse\"]\n    transport: sse\n"
                                "    auth: {type: none}\n"),
                     "test.yaml:6:15: ", "routes[0].upstream: a legacy SSE route needs a single upstream URL");
  CHECK_CONFIG_ERROR(with_route("    path: /n\n    upstream: \"http://a/\"\n    load_balancing: random\n    auth: {type: none}\n"),
                     "test.yaml:7:21: ", "expected one of round_robin, least_outstanding (got 'random')");
}

TEST_CASE("config: the design's full config loads") {
  // Every section of the design loads; its session envelope key file is read at load (with a
  // real file in "config: session_envelope keys").
  // The user-facing shape from the design (shared/design/config.yaml), abridged.
  const std::string server = R"(server:
  listen: "0.0.0.0:8443"
  public_url: "https://mcp.example.com"
  tls:
    cert_file: /etc/mcpgate/tls/tls.crt
    key_file: /etc/mcpgate/tls/tls.key
  workers: 2
  limits:
    max_body_bytes: 1048576
    max_header_bytes: 16384
    max_connections: 10000
    upstream_timeout_ms: 30000
admin:
  listen: "127.0.0.1:9090"
  token: ${MCPGATE_ADMIN_TOKEN}
log:
  level: info
  format: json
)";
  const std::string supported_sections = R"(authorization_servers:
  corp:
    issuer: "https://auth.example.com/oidc"
    type: oidc
    discovery: on_demand
    client:
      id: mcpgate
      secret: ${MCPGATE_CLIENT_SECRET}
credentials:
  user-api:
    type: delegated
    server: corp
    scopes: [openid, profile, offline_access]
  api-key:
    type: static
    header: X-Api-Key
    value: ${UPSTREAM_API_KEY}
)";
  const std::string token_store = R"(token_store:
  backend: memory
)";
  const std::string file_sections = R"(session_envelope:
  key_file: /etc/mcpgate/session.key
  key_id: k1
plugins:
  - name: api-keys
    path: /usr/lib/mcpgate/plugins/libmcpgate_apikey.so
)";
  const std::string routes = R"(routes:
  - name: notes
    path: /notes
    upstream: "http://127.0.0.1:3001/mcp"
    resource: "https://mcp.example.com/notes"
    resource_name: "Notes"
    allowed_origins: ["https://inspector.example.com"]
    auth:
      type: jwt
      server: corp
      audience: "https://mcp.example.com/notes"
      required_scopes: [read:notes]
    upstream_credential: user-api
    forward_identity: false
    rate_limits:
      - { per: subject, tool: delete_note, rate: 10/min, burst: 5 }
    filter_tools_list: true
    tools:
      create_note:  { scopes: [write:notes] }
      get-current-time: { credential: none }
    methods:
      resources/read: { scopes: [read:notes] }
)";
  ScopedEnv admin_token("MCPGATE_ADMIN_TOKEN", nullptr);  // keys are checked before any value
  ScopedEnv client_secret("MCPGATE_CLIENT_SECRET", nullptr);
  ScopedEnv api_key("UPSTREAM_API_KEY", nullptr);
  {
    // token_store (lines 36-37) loads; the session envelope's key file (line 39) does not exist here.
    ScopedEnv early_token("MCPGATE_ADMIN_TOKEN", "t");
    ScopedEnv early_secret("MCPGATE_CLIENT_SECRET", "s");
    ScopedEnv early_key("UPSTREAM_API_KEY", "k");
    CHECK_CONFIG_ERROR(server + supported_sections + token_store + file_sections + routes, "test.yaml:39:13: ",
                       "session_envelope.key_file: cannot read the file '/etc/mcpgate/session.key'");
  }

  ScopedEnv set_token("MCPGATE_ADMIN_TOKEN", "t");

  // The credentials are read before the routes that use them: an unset variable in the static
  // credential (line 35) is reported before the route's unsupported key.
  ScopedEnv set_secret("MCPGATE_CLIENT_SECRET", "s");
  CHECK_CONFIG_ERROR(server + supported_sections + routes, "test.yaml:35:12: ",
                     "credentials.api-key.value: environment variable 'UPSTREAM_API_KEY' is not set");
  // With it set, everything but the session envelope (no key file here) loads: the plugin and the rate limit too.
  ScopedEnv set_api_key("UPSTREAM_API_KEY", "k3y");
  const std::string plugins = file_sections.substr(file_sections.find("plugins:"));
  const ConfigPtr full = load(server + supported_sections + token_store + plugins + routes);
  CHECK(full->plugins.at(0).name == "api-keys");
  CHECK(full->plugins.at(0).path == "/usr/lib/mcpgate/plugins/libmcpgate_apikey.so");
  CHECK(full->routes.at(0).rate_limits.at(0).name == "subject:delete_note");
  CHECK(full->routes.at(0).rate_limits.at(0).burst == 5);

  // Without rate_limits, the design's authorization server, credentials, token store and jwt
  // route load, the route using the delegated credential (and the same on a route without auth, below).
  std::string supported_routes = routes;
  for (std::string_view line : {"    rate_limits:\n      - { per: subject, tool: delete_note, rate: 10/min, burst: 5 }\n"}) {
    supported_routes.erase(supported_routes.find(line), line.size());
  }
  const ConfigPtr config = load(server + supported_sections + token_store + supported_routes);
  CHECK(config->authorization_servers.at("corp").client_secret == "s");
  const CredentialConfig& user_api = config->credentials.at("user-api");
  CHECK(user_api.type == CredentialType::Delegated);
  CHECK(user_api.server == "corp");
  CHECK(user_api.scopes == std::vector<std::string>{"openid", "profile", "offline_access"});
  CHECK(user_api.header == "Authorization");
  CHECK(config->credentials.at("api-key").value == "k3y");
  CHECK(config->credentials.at("api-key").header == "X-Api-Key");
  CHECK(config->token_store.backend == StoreBackendType::Memory);
  CHECK(config->token_store.encryption_keys.empty());
  CHECK(config->routes.at(0).upstream_credential == "user-api");
  CHECK(config->routes.at(0).tools.at("get-current-time").credential == std::optional<std::string>("none"));
  CHECK(config->routes.at(0).auth.type == AuthType::Jwt);
  CHECK(config->routes.at(0).auth.scopes_supported == std::vector<std::string>{"read:notes", "write:notes"});

  // The same delegated credential on a route without auth has no caller to act for.
  std::string open_routes = supported_routes;
  const std::string_view jwt_auth =
      "    auth:\n      type: jwt\n      server: corp\n      audience: \"https://mcp.example.com/notes\"\n"
      "      required_scopes: [read:notes]\n";
  open_routes.replace(open_routes.find(jwt_auth), jwt_auth.size(), "    auth: {type: none}\n");
  CHECK_CONFIG_ERROR(server + supported_sections + token_store + open_routes, "test.yaml:46:26: ",
                     "routes[0].upstream_credential: credential 'user-api' is delegated, which acts for an "
                     "authenticated caller (route 'notes' has auth type 'none'");
}

// ---- Required keys ----

TEST_CASE("config: missing required keys are named") {
  CHECK_CONFIG_ERROR("routes: []\n", "test.yaml:1:1: ", "missing required key 'server'");
  CHECK_CONFIG_ERROR("server:\n  listen: \"127.0.0.1:8080\"\n", "test.yaml:1:1: ", "missing required key 'routes'");
  CHECK_CONFIG_ERROR("server:\n  workers: 1\nroutes: []\n", "test.yaml:2:3: ", "server: missing required key 'listen'");
  CHECK_CONFIG_ERROR(with_route("    upstream: \"http://h/\"\n    auth: {type: none}\n"), "test.yaml:4:5: ",
                     "routes[0]: missing required key 'path'");
  CHECK_CONFIG_ERROR(with_route("    path: /n\n    auth: {type: none}\n"), "test.yaml:4:5: ",
                     "routes[0]: missing required key 'upstream'");
  CHECK_CONFIG_ERROR("server:\n  listen: \"127.0.0.1:8080\"\nroutes:\n  - path: /n\n", "test.yaml:4:5: ",
                     "routes[0]: missing required key 'name'");
  CHECK_CONFIG_ERROR(with_server("  tls: {cert_file: a.crt}\n"), "test.yaml:3:8: ",
                     "server.tls: missing required key 'key_file'");
  CHECK_CONFIG_ERROR(with_server("  tls:\n    key_file: a.key\n"), "test.yaml:4:5: ",
                     "server.tls: missing required key 'cert_file'");
}

// ---- server ----

TEST_CASE("config: server sections must be maps") {
  CHECK_CONFIG_ERROR("server: \"127.0.0.1:8080\"\nroutes: []\n", "test.yaml:1:9: ", "server: expected a map (got a scalar)");
  CHECK_CONFIG_ERROR(with_server("  limits: [1]\n"), "test.yaml:3:11: ", "server.limits: expected a map (got a list)");
  CHECK_CONFIG_ERROR(with_sections("log: json\n"), "test.yaml:3:6: ", "log: expected a map");
}

TEST_CASE("config: server.listen must be host:port") {
  CHECK_CONFIG_ERROR("server:\n  listen: \"127.0.0.1\"\nroutes: []\n", "test.yaml:2:11: ",
                     "server.listen: invalid address '127.0.0.1'");
  CHECK_CONFIG_ERROR("server:\n  listen: \"::1:8080\"\nroutes: []\n", "test.yaml:2:11: ", "in brackets");
  CHECK_CONFIG_ERROR("server:\n  listen: \"0.0.0.0:70000\"\nroutes: []\n", "test.yaml:2:11: ", "port must be");
  CHECK_CONFIG_ERROR("server:\n  listen: {host: a}\nroutes: []\n", "test.yaml:2:11: ",
                     "server.listen: expected a string (got a map)");
  CHECK_CONFIG_ERROR("server:\n  listen:\nroutes: []\n", "test.yaml:2:3: ", "server.listen: expected a string (got nothing)");
}

TEST_CASE("config: server.public_url must be an absolute http(s) URL") {
  CHECK_CONFIG_ERROR(with_server("  public_url: \"mcp.example.com\"\n"), "test.yaml:3:15: ",
                     "server.public_url: invalid URL");
  CHECK_CONFIG_ERROR(with_server("  public_url: \"ftp://mcp.example.com\"\n"), "test.yaml:3:15: ", "http or https");
  CHECK_CONFIG_ERROR(with_server("  public_url: \"https://mcp.example.com/?a=1\"\n"), "test.yaml:3:15: ", "query");
  CHECK_CONFIG_ERROR(with_server("  public_url: \"https://user:pw@mcp.example.com\"\n"), "test.yaml:3:15: ",
                     "user info");
}

TEST_CASE("config: server.tls files must be non-empty strings") {
  CHECK_CONFIG_ERROR(with_server("  tls: {cert_file: \"\", key_file: b}\n"), "test.yaml:3:20: ",
                     "server.tls.cert_file: must not be empty");
  CHECK_CONFIG_ERROR(with_server("  tls: {cert_file: a, key_file: [b]}\n"), "test.yaml:3:33: ",
                     "server.tls.key_file: expected a string (got a list)");
  CHECK_CONFIG_ERROR(with_server("  tls: a.crt\n"), "test.yaml:3:8: ", "server.tls: expected a map");
}

TEST_CASE("config: server.workers is a positive integer up to 256") {
  CHECK(load(with_server("  workers: 256\n"))->server.workers == 256);
  for (const char* bad : {"0", "-1", "1.5", "abc", "true", "0x10", "\"4\""}) {
    CAPTURE(bad);
    CHECK_CONFIG_ERROR(with_server(std::string("  workers: ") + bad + "\n"), "test.yaml:3:12: ",
                       "server.workers: expected a positive integer");
  }
  CHECK_CONFIG_ERROR(with_server("  workers: 257\n"), "test.yaml:3:12: ", "server.workers: expected at most 256");
  CHECK_CONFIG_ERROR(with_server("  workers: [1]\n"), "test.yaml:3:12: ",
                     "server.workers: expected a positive integer (got a list)");
}

TEST_CASE("config: server.limits are positive integers") {
  for (const char* key : {"max_body_bytes", "max_header_bytes", "max_connections", "upstream_timeout_ms",
                          "upstream_connect_timeout_ms", "idle_timeout_ms", "request_timeout_ms",
                          "stream_buffer_bytes"}) {
    for (const char* bad : {"0", "-5", "abc", "2.5", "false"}) {
      CAPTURE(key);
      CAPTURE(bad);
      const std::string line = std::string("    ") + key + ": ";
      CHECK_CONFIG_ERROR(with_server("  limits:\n" + line + bad + "\n"),
                         "test.yaml:4:" + std::to_string(line.size() + 1) + ": ",
                         std::string("server.limits.") + key + ": expected ");
    }
  }
  CHECK_CONFIG_ERROR(with_server("  limits:\n    max_body_bytes: abc\n"), "test.yaml:4:21: ",
                     "server.limits.max_body_bytes: expected a positive integer (got 'abc')");
}

TEST_CASE("config: server.limits minimums and ranges") {
  CHECK(load(with_server("  limits: {max_header_bytes: 1024, stream_buffer_bytes: 4096}\n"))
            ->server.limits.max_header_bytes == 1024);
  CHECK_CONFIG_ERROR(with_server("  limits: {max_header_bytes: 1023}\n"), "test.yaml:3:30: ",
                     "server.limits.max_header_bytes: expected an integer of at least 1024");
  CHECK_CONFIG_ERROR(with_server("  limits: {stream_buffer_bytes: 4095}\n"), "test.yaml:3:33: ",
                     "server.limits.stream_buffer_bytes: expected an integer of at least 4096");
  CHECK_CONFIG_ERROR(with_server("  limits: {idle_timeout_ms: 4294967296}\n"), "test.yaml:3:29: ",
                     "server.limits.idle_timeout_ms: expected at most 4294967295");
  CHECK_CONFIG_ERROR(with_server("  limits: {max_body_bytes: 99999999999999999999999}\n"), "test.yaml:3:28: ",
                     "server.limits.max_body_bytes: expected at most");
}

TEST_CASE("config: server.shutdown_grace_ms is a non-negative integer") {
  CHECK(load(with_server("  shutdown_grace_ms: 0\n"))->server.shutdown_grace_ms == 0);
  CHECK_CONFIG_ERROR(with_server("  shutdown_grace_ms: -1\n"), "test.yaml:3:22: ",
                     "server.shutdown_grace_ms: expected a non-negative integer");
}

// ---- admin and log ----

TEST_CASE("config: admin.listen must differ from server.listen") {
  CHECK_CONFIG_ERROR(with_sections("admin:\n  listen: \"127.0.0.1:8080\"\n"), "test.yaml:4:11: ",
                     "admin.listen: must differ from server.listen");
  CHECK_CONFIG_ERROR(with_sections("admin:\n  listen: \"0.0.0.0:8080\"\n"), "test.yaml:4:11: ",
                     "admin.listen: must differ from server.listen");
  CHECK_CONFIG_ERROR("server:\n  listen: \"127.0.0.1:9090\"\nroutes: []\n", "test.yaml:2:11: ",
                     "server.listen: conflicts with the default admin.listen 127.0.0.1:9090");
  CHECK(load(with_sections("admin:\n  listen: \"127.0.0.2:8080\"\n"))->admin.listen.port == 8080);
}

TEST_CASE("config: admin fields have types") {
  CHECK_CONFIG_ERROR(with_sections("admin:\n  listen: \"9090\"\n"), "test.yaml:4:11: ", "admin.listen: invalid address");
  CHECK_CONFIG_ERROR(with_sections("admin:\n  token: {a: b}\n"), "test.yaml:4:10: ",
                     "admin.token: expected a string (got a map)");
}

TEST_CASE("config: log fields take fixed values") {
  CHECK_CONFIG_ERROR(with_sections("log:\n  level: verbose\n"), "test.yaml:4:10: ",
                     "log.level: expected one of trace, debug, info, warn, error (got 'verbose')");
  CHECK_CONFIG_ERROR(with_sections("log:\n  format: xml\n"), "test.yaml:4:11: ",
                     "log.format: expected one of json, text (got 'xml')");
  for (const char* bad : {"yes", "on", "1", "\"true\"", "True"}) {
    CAPTURE(bad);
    CHECK_CONFIG_ERROR(with_sections(std::string("log:\n  access_log: ") + bad + "\n"), "test.yaml:4:15: ",
                       "log.access_log: expected true or false");
  }
  CHECK(load_config_text(with_sections("log:\n  audit_log: false\n"), "test.yaml")->log.audit_log == false);
  CHECK(load_config_text(with_sections("log:\n  level: info\n"), "test.yaml")->log.audit_log == true);  // on by default
  CHECK_CONFIG_ERROR(with_sections("log:\n  audit_log: yes\n"), "test.yaml:4:14: ", "log.audit_log: expected true or false");
}

// ---- routes ----

TEST_CASE("config: routes must be a non-empty list of maps") {
  CHECK_CONFIG_ERROR("server:\n  listen: \"127.0.0.1:8080\"\nroutes: []\n", "test.yaml:3:9: ",
                     "routes: must list at least one route");
  CHECK_CONFIG_ERROR("server:\n  listen: \"127.0.0.1:8080\"\nroutes:\n  notes: {}\n", "test.yaml:4:3: ",
                     "routes: expected a list of routes (got a map)");
  CHECK_CONFIG_ERROR("server:\n  listen: \"127.0.0.1:8080\"\nroutes:\n  - notes\n", "test.yaml:4:5: ",
                     "routes[0]: expected a map (got a scalar)");
}

TEST_CASE("config: route names") {
  CHECK_CONFIG_ERROR("server:\n  listen: \"127.0.0.1:8080\"\nroutes:\n  - name: \"my notes\"\n", "test.yaml:4:11: ",
                     "routes[0].name: 'my notes' may contain only");
  CHECK_CONFIG_ERROR("server:\n  listen: \"127.0.0.1:8080\"\nroutes:\n  - name: \"\"\n", "test.yaml:4:11: ",
                     "routes[0].name: must not be empty");
  const std::string twice = with_route(kRouteBody) + "  - name: notes\n    path: /other\n" +
                            "    upstream: \"http://h/\"\n    auth: {type: none}\n";
  CHECK_CONFIG_ERROR(twice, "test.yaml:8:11: ", "routes[1].name: duplicate route name 'notes'");
}

TEST_CASE("config: route paths") {
  const auto route_with_path = [](const std::string& path) {
    return with_route("    path: " + path + "\n    upstream: \"http://h/\"\n    auth: {type: none}\n");
  };
  CHECK(load(route_with_path("/a/b/"))->routes.at(0).path == "/a/b");
  CHECK(load(route_with_path("/v1:call@x"))->routes.at(0).path == "/v1:call@x");
  CHECK_CONFIG_ERROR(route_with_path("notes"), "test.yaml:5:11: ", "routes[0].path: must start with '/'");
  for (const char* bad : {"\"/a?b\"", "\"/a#b\"", "\"/a b\"", "\"/a%20b\"", "\"/a\\tb\""}) {
    CAPTURE(bad);
    CHECK_CONFIG_ERROR(route_with_path(bad), "test.yaml:5:11: ", "routes[0].path: ");
    CHECK_CONFIG_ERROR(route_with_path(bad), "test.yaml:5:11: ", "may contain only");
  }
  CHECK_CONFIG_ERROR(route_with_path("/a/../b"), "test.yaml:5:11: ", "routes[0].path: '/a/../b' must not contain '..'");
  CHECK_CONFIG_ERROR(route_with_path("/a//b"), "test.yaml:5:11: ", "must not contain '..', '//' or '.' segments");
  CHECK_CONFIG_ERROR(route_with_path("/a/./b"), "test.yaml:5:11: ", "'.' segments");
  CHECK_CONFIG_ERROR(route_with_path("/a/."), "test.yaml:5:11: ", "'.' segments");
  CHECK_CONFIG_ERROR(route_with_path("/a..b"), "test.yaml:5:11: ", "'..'");
  CHECK(load(route_with_path("/a.b/.c"))->routes.at(0).path == "/a.b/.c");
  CHECK_CONFIG_ERROR(route_with_path("/.well-known/x"), "test.yaml:5:11: ", "reserved");
  const std::string twice = with_route(kRouteBody) + "  - name: other\n    path: /notes/\n" +
                            "    upstream: \"http://h/\"\n    auth: {type: none}\n";
  CHECK_CONFIG_ERROR(twice, "test.yaml:9:11: ", "routes[1].path: path '/notes' is already used by route 'notes'");
}

TEST_CASE("config: route upstream URLs") {
  const auto route_with_upstream = [](const std::string& upstream) {
    return with_route("    path: /n\n    upstream: \"" + upstream + "\"\n    auth: {type: none}\n");
  };
  for (const char* bad : {"ws://h/mcp", "//h/mcp", "http://h/mcp?x=1", "http://h/mcp#top", "http://u:secret@h/mcp",
                          "http:///mcp", "http://h:0/mcp"}) {
    CAPTURE(bad);
    const std::string message = error_for(route_with_upstream(bad));
    CHECK(message.rfind("test.yaml:6:15: routes[0].upstream: invalid URL: ", 0) == 0);
    CHECK_FALSE(contains(message, "secret"));  // URLs may carry credentials: never echoed
  }
}

TEST_CASE("config: route transport, resource and resource_name") {
  const std::string base = "    path: /n\n    upstream: \"http://h/\"\n    auth: {type: none}\n";
  CHECK_CONFIG_ERROR(with_route(base + "    transport: websocket\n"), "test.yaml:8:16: ",
                     "routes[0].transport: expected one of streamable_http, sse (got 'websocket')");
  CHECK_CONFIG_ERROR(with_route(base + "    resource: notes\n"), "test.yaml:8:15: ", "routes[0].resource: invalid URL");
  CHECK_CONFIG_ERROR(with_route(base + "    resource: \"https://x/n#frag\"\n"), "test.yaml:8:15: ",
                     "routes[0].resource: invalid URL");
  CHECK_CONFIG_ERROR(with_route(base + "    resource_name: \"\"\n"), "test.yaml:8:20: ",
                     "routes[0].resource_name: must not be empty");
}

TEST_CASE("config: route allowed_origins") {
  const std::string base = "    path: /n\n    upstream: \"http://h/\"\n    auth: {type: none}\n";
  CHECK_CONFIG_ERROR(with_route(base + "    allowed_origins: \"https://a\"\n"), "test.yaml:8:22: ",
                     "routes[0].allowed_origins: expected a list of origins (got a scalar)");
  CHECK_CONFIG_ERROR(with_route(base + "    allowed_origins: [\"https://a\", \"https://b/\"]\n"), "test.yaml:8:36: ",
                     "routes[0].allowed_origins[1]: invalid origin 'https://b/': an origin has no path");
  CHECK_CONFIG_ERROR(with_route(base + "    allowed_origins: [\"chrome-extension://abc\"]\n"), "test.yaml:8:23: ",
                     "routes[0].allowed_origins[0]: invalid origin");
  CHECK_CONFIG_ERROR(with_route(base + "    allowed_origins: [\"null\"]\n"), "test.yaml:8:23: ", "invalid origin 'null'");
  CHECK(load(with_route(base + "    allowed_origins: [\"*\"]\n"))->routes.at(0).allowed_origins ==
        std::vector<std::string>{"*"});
  CHECK_CONFIG_ERROR(with_route(base + "    allowed_origins: [{a: b}]\n"), "test.yaml:8:23: ",
                     "routes[0].allowed_origins[0]: expected a string (got a map)");
}

TEST_CASE("config: route forward_identity is a boolean") {
  CHECK_CONFIG_ERROR(with_route(std::string(kRouteBody) + "    forward_identity: yes\n"), "test.yaml:8:23: ",
                     "routes[0].forward_identity: expected true or false (got 'yes')");
}

// ---- authorization_servers and route auth ----

TEST_CASE("config: a full auth config loads every field") {
  ScopedEnv secret("MCPGATE_TEST_CLIENT_SECRET", "client-s3cret");
  ScopedEnv port("MCPGATE_TEST_PORT", "9000");
  const ConfigPtr config = load(R"(
server:
  listen: "127.0.0.1:8080"
  public_url: "https://mcp.example.com"
authorization_servers:
  corp:
    issuer: "https://Auth.example.com/oidc/"
    type: oidc
    discovery: eager
    metadata_url: "https://auth.example.com/custom/.well-known/openid-configuration"
    metadata: null
    metadata_overrides:
      response_types_supported: [code]
      require_pushed_authorization_requests: true
      max_age: 300
      note: null
    client:
      id: mcpgate
      secret: ${MCPGATE_TEST_CLIENT_SECRET}
  manual:
    issuer: "http://127.0.0.1:9000"
    type: oauth
    discovery: off
    metadata:
      issuer: "http://127.0.0.1:9000"
      jwks_uri: "http://127.0.0.1:${MCPGATE_TEST_PORT}/jwks"
      port: ${MCPGATE_TEST_PORT}
      negative: -7
      ratio: 1.5
      quoted_number: "42"
      quoted_true: "true"
      plain_yes: yes
      nested: {list: [1, {flag: false}], empty: ~}
  minimal:
    issuer: "https://minimal.example.com"
routes:
  - name: notes
    path: /notes
    upstream: "http://127.0.0.1:3001/mcp"
    resource_documentation: "https://docs.example.com/notes"
    auth:
      type: jwt
      server: corp
      audience: ["https://mcp.example.com/notes", "notes-api"]
      required_scopes: [read:notes]
      scopes_supported: [read:notes, write:notes, admin]
      algorithms: [RS256, ES384, PS512]
      leeway_s: 600
      cache_ttl_s: 0
    filter_tools_list: true
    tools:
      delete_note: { scopes: [admin, write:notes] }
      create_note: { scopes: [write:notes] }
      get-current-time: {}
    methods:
      resources/read: { scopes: [read:notes] }
  - name: defaults
    path: /defaults
    upstream: "http://127.0.0.1:3002/mcp"
    auth:
      type: jwt
      server: manual
      required_scopes: [z:required]
    tools:
      zeta: { scopes: [t:2, z:required] }
      alpha: { scopes: [t:1] }
    methods:
      resources/list: { scopes: [m:1, t:1] }
  - name: single
    path: /single
    upstream: "http://127.0.0.1:3003/mcp"
    auth: {type: jwt, server: minimal, audience: "api://single"}
  - name: open
    path: /open
    upstream: "http://127.0.0.1:3004/mcp"
    auth: {type: none}
    filter_tools_list: false
)");

  REQUIRE(config->authorization_servers.size() == 3);
  const AuthorizationServerConfig& corp = config->authorization_servers.at("corp");
  CHECK(corp.name == "corp");
  CHECK(corp.issuer == "https://Auth.example.com/oidc/");  // as written: compared byte for byte with iss
  CHECK(corp.type == AuthServerType::Oidc);
  CHECK(corp.discovery == Discovery::Eager);
  CHECK(corp.metadata_url == "https://auth.example.com/custom/.well-known/openid-configuration");
  CHECK(corp.metadata_json.empty());
  // Compact, in document order.
  CHECK(corp.metadata_overrides_json ==
        R"({"response_types_supported":["code"],"require_pushed_authorization_requests":true,"max_age":300,"note":null})");
  CHECK(corp.client_id == "mcpgate");
  CHECK(corp.client_secret == "client-s3cret");

  const AuthorizationServerConfig& manual = config->authorization_servers.at("manual");
  CHECK(manual.type == AuthServerType::OAuth);
  CHECK(manual.discovery == Discovery::Off);
  CHECK(manual.metadata_url.empty());
  CHECK(manual.metadata_overrides_json.empty());
  CHECK(manual.client_id.empty());
  CHECK(manual.client_secret.empty());
  const JsonPtr metadata = parse_json(manual.metadata_json);
  REQUIRE(json_is_object(metadata.get()));
  CHECK(json_object_size(metadata.get()) == 9);
  const auto member = [&metadata](const char* key) { return json_object_get(metadata.get(), key); };
  CHECK(std::string(json_string_value(member("issuer"))) == "http://127.0.0.1:9000");
  CHECK(std::string(json_string_value(member("jwks_uri"))) == "http://127.0.0.1:9000/jwks");
  REQUIRE(json_is_integer(member("port")));  // a plain ${VAR} that expands to digits is an integer
  CHECK(json_integer_value(member("port")) == 9000);
  REQUIRE(json_is_integer(member("negative")));
  CHECK(json_integer_value(member("negative")) == -7);
  CHECK(std::string(json_string_value(member("ratio"))) == "1.5");
  CHECK(std::string(json_string_value(member("quoted_number"))) == "42");
  CHECK(std::string(json_string_value(member("quoted_true"))) == "true");
  CHECK(std::string(json_string_value(member("plain_yes"))) == "yes");
  json_t* nested = member("nested");
  REQUIRE(json_is_object(nested));
  CHECK(json_is_null(json_object_get(nested, "empty")));
  json_t* list = json_object_get(nested, "list");
  REQUIRE(json_is_array(list));
  REQUIRE(json_array_size(list) == 2);
  CHECK(json_integer_value(json_array_get(list, 0)) == 1);
  CHECK(json_is_false(json_object_get(json_array_get(list, 1), "flag")));
  const JsonPtr overrides = parse_json(corp.metadata_overrides_json);
  REQUIRE(json_is_object(overrides.get()));
  CHECK(json_is_true(json_object_get(overrides.get(), "require_pushed_authorization_requests")));
  CHECK(json_integer_value(json_object_get(overrides.get(), "max_age")) == 300);

  const AuthorizationServerConfig& minimal = config->authorization_servers.at("minimal");
  CHECK(minimal.type == AuthServerType::Oidc);
  CHECK(minimal.discovery == Discovery::OnDemand);
  CHECK(minimal.metadata_url.empty());
  CHECK(minimal.metadata_json.empty());
  CHECK(minimal.metadata_overrides_json.empty());

  REQUIRE(config->routes.size() == 4);
  const RouteConfig& notes = config->routes[0];
  CHECK(notes.resource_documentation == "https://docs.example.com/notes");
  CHECK(notes.auth.type == AuthType::Jwt);
  CHECK(notes.auth.server == "corp");
  CHECK(notes.auth.audiences == std::vector<std::string>{"https://mcp.example.com/notes", "notes-api"});
  CHECK(notes.auth.required_scopes == std::vector<std::string>{"read:notes"});
  CHECK(notes.auth.scopes_supported == std::vector<std::string>{"read:notes", "write:notes", "admin"});
  CHECK(notes.auth.algorithms == std::vector<std::string>{"RS256", "ES384", "PS512"});
  CHECK(notes.auth.leeway_s == 600);
  CHECK(notes.auth.cache_ttl_s == 0);
  CHECK(notes.filter_tools_list);
  REQUIRE(notes.tools.size() == 3);
  CHECK(notes.tools.at("delete_note").scopes == std::vector<std::string>{"admin", "write:notes"});
  CHECK(notes.tools.at("create_note").scopes == std::vector<std::string>{"write:notes"});
  CHECK(notes.tools.at("get-current-time").scopes.empty());
  REQUIRE(notes.methods.size() == 1);
  CHECK(notes.methods.at("resources/read").scopes == std::vector<std::string>{"read:notes"});

  const RouteConfig& defaults = config->routes[1];
  CHECK(defaults.resource_documentation.empty());
  CHECK(defaults.auth.server == "manual");
  CHECK(defaults.auth.audiences == std::vector<std::string>{"https://mcp.example.com/defaults"});
  // required_scopes, then tools and methods as written (not sorted), each scope once.
  CHECK(defaults.auth.scopes_supported == std::vector<std::string>{"z:required", "t:2", "t:1", "m:1"});
  CHECK(defaults.auth.algorithms == std::vector<std::string>{"RS256", "ES256", "PS256"});
  CHECK(defaults.auth.leeway_s == 60);
  CHECK(defaults.auth.cache_ttl_s == 60);
  CHECK_FALSE(defaults.filter_tools_list);

  const RouteConfig& single = config->routes[2];
  CHECK(single.auth.audiences == std::vector<std::string>{"api://single"});
  CHECK(single.auth.required_scopes.empty());
  CHECK(single.auth.scopes_supported.empty());
  CHECK(single.tools.empty());
  CHECK(single.methods.empty());

  const RouteConfig& open = config->routes[3];
  CHECK(open.auth.type == AuthType::None);
  CHECK(open.auth.server.empty());
  CHECK(open.auth.audiences.empty());
  CHECK_FALSE(open.filter_tools_list);
}

TEST_CASE("config: authorization_servers may be empty or null") {
  for (const char* value : {" {}", " null", ""}) {
    CAPTURE(value);
    CHECK(load(with_route(kRouteBody) + "authorization_servers:" + value + "\n")->authorization_servers.empty());
  }
  CHECK(load(with_route(kRouteBody))->authorization_servers.empty());
}

TEST_CASE("config: authorization server shape and names") {
  CHECK_CONFIG_ERROR(with_route(kRouteBody) + "authorization_servers: [corp]\n", "test.yaml:8:24: ",
                     "authorization_servers: expected a map (got a list)");
  CHECK_CONFIG_ERROR(with_route(kRouteBody) + "authorization_servers:\n  \"my corp\": {issuer: \"https://a\"}\n",
                     "test.yaml:9:3: ", "authorization_servers.my corp: the name may contain only letters");
  CHECK_CONFIG_ERROR(with_route(kRouteBody) + "authorization_servers:\n  corp: \"https://a\"\n", "test.yaml:9:9: ",
                     "authorization_servers.corp: expected a map (got a scalar)");
  CHECK_CONFIG_ERROR(with_auth_server("    type: oidc\n"), "test.yaml:10:5: ",
                     "authorization_servers.corp: missing required key 'issuer'");
  CHECK_CONFIG_ERROR(with_auth_server("    issuer: \"https://a\"\n    jwks_uri: \"https://a/jwks\"\n"), "test.yaml:11:5: ",
                     "unknown key 'jwks_uri' in authorization server 'corp'");
  CHECK_CONFIG_ERROR(with_auth_server("    issuer: \"https://a\"\n    issuer: \"https://b\"\n"), "test.yaml:11:5: ",
                     "duplicate key 'issuer' in authorization_servers.corp");
}

TEST_CASE("config: authorization server issuer is an absolute http(s) URL kept as written") {
  CHECK(load(with_auth_server("    issuer: \"https://A.example/x/\"\n"))->authorization_servers.at("corp").issuer ==
        "https://A.example/x/");
  for (const char* bad : {"auth.example.com", "\"ftp://a/\"", "\"https://a/?tenant=1\"", "\"https://a/#f\""}) {
    CAPTURE(bad);
    CHECK_CONFIG_ERROR(with_auth_server(std::string("    issuer: ") + bad + "\n"), "test.yaml:10:13: ",
                       "authorization_servers.corp.issuer: invalid URL");
  }
  CHECK_CONFIG_ERROR(with_auth_server("    issuer:\n"), "test.yaml:10:5: ",
                     "authorization_servers.corp.issuer: expected a string (got nothing)");
}

TEST_CASE("config: authorization server type and discovery take fixed values") {
  const std::string issuer = "    issuer: \"https://a\"\n";
  CHECK_CONFIG_ERROR(with_auth_server(issuer + "    type: saml\n"), "test.yaml:11:11: ",
                     "authorization_servers.corp.type: expected one of oidc, oauth (got 'saml')");
  CHECK_CONFIG_ERROR(with_auth_server(issuer + "    discovery: lazy\n"), "test.yaml:11:16: ",
                     "authorization_servers.corp.discovery: expected one of eager, on_demand, off (got 'lazy')");
  CHECK(load(with_auth_server(issuer + "    discovery: on_demand\n"))->authorization_servers.at("corp").discovery ==
        Discovery::OnDemand);
}

TEST_CASE("config: authorization server metadata sources") {
  const std::string issuer = "    issuer: \"https://a\"\n";
  CHECK_CONFIG_ERROR(with_auth_server(issuer + "    metadata_url: \"https://a/meta?x=1\"\n"), "test.yaml:11:19: ",
                     "authorization_servers.corp.metadata_url: invalid URL");
  CHECK_CONFIG_ERROR(with_auth_server(issuer + "    metadata: \"{}\"\n"), "test.yaml:11:15: ",
                     "authorization_servers.corp.metadata: expected a map (got a scalar)");
  CHECK_CONFIG_ERROR(with_auth_server(issuer + "    metadata_overrides: [a]\n"), "test.yaml:11:25: ",
                     "authorization_servers.corp.metadata_overrides: expected a map (got a list)");
  CHECK_CONFIG_ERROR(with_auth_server(issuer + "    metadata_url: \"https://a/m\"\n    metadata: {jwks_uri: x}\n"),
                     "test.yaml:11:19: ",
                     "authorization_servers.corp.metadata_url: conflicts with 'metadata': manual metadata is never fetched");
  CHECK(load(with_auth_server(issuer + "    metadata_url: null\n    metadata: {jwks_uri: x}\n"))
            ->authorization_servers.at("corp").metadata_json == R"({"jwks_uri":"x"})");
  CHECK_CONFIG_ERROR(with_auth_server(issuer + "    metadata: {issuer: \"https://a/\"}\n"), "test.yaml:11:24: ",
                     "authorization_servers.corp.metadata.issuer: must equal the server's issuer 'https://a' exactly");
  CHECK_CONFIG_ERROR(with_auth_server(issuer + "    metadata:\n      issuer: 42\n"), "test.yaml:12:15: ",
                     "authorization_servers.corp.metadata.issuer: must equal the server's issuer");
}

TEST_CASE("config: discovery off needs manual metadata") {
  const std::string issuer = "    issuer: \"https://a\"\n";
  CHECK_CONFIG_ERROR(with_auth_server(issuer + "    discovery: off\n"), "test.yaml:11:16: ",
                     "authorization_servers.corp.discovery: 'off' needs 'metadata'");
  CHECK_CONFIG_ERROR(with_auth_server(issuer + "    discovery: off\n    metadata_url: \"https://a/m\"\n"),
                     "test.yaml:11:16: ", "authorization_servers.corp.discovery: 'off' needs 'metadata'");
  CHECK_CONFIG_ERROR(with_auth_server(issuer + "    discovery: off\n    metadata: null\n"), "test.yaml:11:16: ",
                     "authorization_servers.corp.discovery: 'off' needs 'metadata'");
  CHECK(load(with_auth_server(issuer + "    discovery: off\n    metadata: {jwks_uri: \"https://a/k\"}\n"))
            ->authorization_servers.at("corp").discovery == Discovery::Off);
}

TEST_CASE("config: metadata values are converted and checked") {
  const std::string issuer = "    issuer: \"https://a\"\n";
  CHECK_CONFIG_ERROR(with_auth_server(issuer + "    metadata:\n      max_age: 99999999999999999999\n"),
                     "test.yaml:12:16: ", "authorization_servers.corp.metadata.max_age: integer '99999999999999999999' is out of range");
  CHECK_CONFIG_ERROR(with_auth_server(issuer + "    metadata_overrides:\n      a: 1\n      a: 2\n"), "test.yaml:13:7: ",
                     "duplicate key 'a' in authorization_servers.corp.metadata_overrides");
  ScopedEnv unset("MCPGATE_TEST_UNSET", nullptr);
  CHECK_CONFIG_ERROR(with_auth_server(issuer + "    metadata_overrides:\n      x: [\"${MCPGATE_TEST_UNSET}\"]\n"),
                     "test.yaml:12:11: ",
                     "authorization_servers.corp.metadata_overrides.x[0]: environment variable 'MCPGATE_TEST_UNSET' is not set");
  CHECK(load(with_auth_server(issuer + "    metadata_overrides: {a: \"$${literal}\", b: \"\", c: []}\n"))
            ->authorization_servers.at("corp").metadata_overrides_json == R"({"a":"${literal}","b":"","c":[]})");
}

TEST_CASE("config: authorization server client") {
  const std::string issuer = "    issuer: \"https://a\"\n";
  CHECK_CONFIG_ERROR(with_auth_server(issuer + "    client: {secret: x}\n"), "test.yaml:11:13: ",
                     "authorization_servers.corp.client: missing required key 'id'");
  CHECK_CONFIG_ERROR(with_auth_server(issuer + "    client: {id: gw, password: x}\n"), "test.yaml:11:22: ",
                     "unknown key 'password' in authorization_servers.corp.client");
  CHECK_CONFIG_ERROR(with_auth_server(issuer + "    client: {id: \"\"}\n"), "test.yaml:11:18: ",
                     "authorization_servers.corp.client.id: must not be empty");
  ScopedEnv unset("MCPGATE_TEST_UNSET", nullptr);
  CHECK_CONFIG_ERROR(with_auth_server(issuer + "    client:\n      id: gw\n      secret: ${MCPGATE_TEST_UNSET}\n"),
                     "test.yaml:13:15: ",
                     "authorization_servers.corp.client.secret: environment variable 'MCPGATE_TEST_UNSET' is not set");
  ScopedEnv empty("MCPGATE_TEST_EMPTY", "");
  CHECK_CONFIG_ERROR(with_auth_server(issuer + "    client: {id: gw, secret: \"${MCPGATE_TEST_EMPTY}\"}\n"),
                     "test.yaml:11:30: ", "authorization_servers.corp.client.secret: must not be empty");
  const ConfigPtr public_client = load(with_auth_server(issuer + "    client: {id: gw}\n"));
  CHECK(public_client->authorization_servers.at("corp").client_id == "gw");
  CHECK(public_client->authorization_servers.at("corp").client_secret.empty());
}

TEST_CASE("config: jwt auth needs a server defined under authorization_servers") {
  CHECK_CONFIG_ERROR(with_route("    path: /n\n    upstream: \"http://h/\"\n    auth: {type: jwt}\n") + kCorpServer,
                     "test.yaml:7:11: ", "routes[0].auth: missing required key 'server'");
  CHECK_CONFIG_ERROR(with_route("    path: /n\n    upstream: \"http://h/\"\n    auth: {type: jwt, server: other}\n") +
                         kCorpServer,
                     "test.yaml:7:31: ",
                     "routes[0].auth.server: unknown authorization server 'other' (not defined under authorization_servers)");
  CHECK_CONFIG_ERROR(with_route("    path: /n\n    upstream: \"http://h/\"\n    auth: {type: jwt, server: corp}\n"),
                     "test.yaml:7:31: ", "routes[0].auth.server: unknown authorization server 'corp'");
  const std::string manual = with_route("    path: /n\n    upstream: \"http://h/\"\n    auth:\n      type: jwt\n"
                                        "      server: corp\n") +
                             kCorpServer + "    discovery: off\n    metadata: {token_endpoint: \"https://a/t\"}\n";
  CHECK_CONFIG_ERROR(manual, "test.yaml:9:15: ",
                     "routes[0].auth.server: authorization server 'corp' has manual metadata without a 'jwks_uri'");
  CHECK(load(manual + "    metadata_overrides: {jwks_uri: \"https://a/k\"}\n")->routes.at(0).auth.server == "corp");
}

TEST_CASE("config: jwt auth keys") {
  CHECK_CONFIG_ERROR(with_jwt_route("      issuer: x\n"), "test.yaml:10:7: ",
                     "unknown key 'issuer' in the auth of route 'notes'");
  CHECK_CONFIG_ERROR(with_jwt_route("      scopes: [a]\n"), "test.yaml:10:7: ",
                     "unknown key 'scopes' in the auth of route 'notes'");
}

TEST_CASE("config: jwt audience is a string or a non-empty list of strings") {
  CHECK(load(with_jwt_route("      audience: [a, b]\n"))->routes.at(0).auth.audiences == std::vector<std::string>{"a", "b"});
  CHECK_CONFIG_ERROR(with_jwt_route("      audience: \"\"\n"), "test.yaml:10:17: ",
                     "routes[0].auth.audience: must not be empty");
  CHECK_CONFIG_ERROR(with_jwt_route("      audience: []\n"), "test.yaml:10:17: ",
                     "routes[0].auth.audience: must list at least one audience");
  CHECK_CONFIG_ERROR(with_jwt_route("      audience: {a: b}\n"), "test.yaml:10:17: ",
                     "routes[0].auth.audience: expected a string or a list of strings (got a map)");
  CHECK_CONFIG_ERROR(with_jwt_route("      audience:\n"), "test.yaml:10:7: ",
                     "routes[0].auth.audience: expected a string or a list of strings (got nothing)");
  CHECK_CONFIG_ERROR(with_jwt_route("      audience: [a, [b]]\n"), "test.yaml:10:21: ",
                     "routes[0].auth.audience[1]: expected a string (got a list)");
  CHECK_CONFIG_ERROR(with_jwt_route("      audience: [a, a]\n"), "test.yaml:10:21: ",
                     "routes[0].auth.audience[1]: 'a' is listed twice");
}

TEST_CASE("config: scopes are RFC 6749 scope tokens") {
  for (const char* bad : {"\"read notes\"", "\"read\\tnotes\"", "'say\"hi'", "'back\\slash'", "\"caf\xc3\xa9\""}) {
    CAPTURE(bad);
    CHECK_CONFIG_ERROR(with_jwt_route(std::string("      required_scopes: [ok, ") + bad + "]\n"), "test.yaml:10:29: ",
                       "routes[0].auth.required_scopes[1]: invalid scope");
  }
  CHECK_CONFIG_ERROR(with_jwt_route("      required_scopes: [\"\"]\n"), "test.yaml:10:25: ",
                     "routes[0].auth.required_scopes[0]: must not be empty");
  CHECK_CONFIG_ERROR(with_jwt_route("      required_scopes: read\n"), "test.yaml:10:24: ",
                     "routes[0].auth.required_scopes: expected a list of scopes (got a scalar)");
  CHECK_CONFIG_ERROR(with_jwt_route("      required_scopes: [a, a]\n"), "test.yaml:10:28: ",
                     "routes[0].auth.required_scopes[1]: 'a' is listed twice");
  CHECK_CONFIG_ERROR(with_jwt_route("      scopes_supported: [a, \"b c\"]\n"), "test.yaml:10:29: ",
                     "routes[0].auth.scopes_supported[1]: invalid scope 'b c'");
  CHECK_CONFIG_ERROR(with_jwt_route("    tools:\n      t: {scopes: [\"x y\"]}\n"), "test.yaml:11:20: ",
                     "routes[0].tools.t.scopes[0]: invalid scope 'x y'");
  CHECK_CONFIG_ERROR(with_jwt_route("    methods:\n      tools/list: {scopes: [\"x\\\"\"]}\n"), "test.yaml:11:29: ",
                     "routes[0].methods.tools/list.scopes[0]: invalid scope");
  CHECK(load(with_jwt_route("      scopes_supported: []\n      required_scopes: [\"https://x/read\", \"a!#$%&'()*+,-./:;<=>?@[]^_`{|}~\"]\n"))
            ->routes.at(0).auth.scopes_supported.empty());
}

TEST_CASE("config: jwt algorithms") {
  CHECK_CONFIG_ERROR(with_jwt_route("      algorithms: [RS256, none]\n"), "test.yaml:10:27: ",
                     "routes[0].auth.algorithms[1]: algorithm 'none' is never accepted");
  CHECK_CONFIG_ERROR(with_jwt_route("      algorithms: [None]\n"), "test.yaml:10:20: ",
                     "routes[0].auth.algorithms[0]: algorithm 'none' is never accepted");
  for (const char* symmetric : {"HS256", "HS384", "HS512"}) {
    CAPTURE(symmetric);
    CHECK_CONFIG_ERROR(with_jwt_route(std::string("      algorithms: [") + symmetric + "]\n"), "test.yaml:10:20: ",
                       "routes[0].auth.algorithms[0]: symmetric algorithms are not accepted for access tokens");
  }
  CHECK_CONFIG_ERROR(with_jwt_route("      algorithms: [rs256]\n"), "test.yaml:10:20: ",
                     "routes[0].auth.algorithms[0]: expected one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, "
                     "ES384, ES512 (got 'rs256')");
  CHECK_CONFIG_ERROR(with_jwt_route("      algorithms: [EdDSA]\n"), "test.yaml:10:20: ", "(got 'EdDSA')");
  CHECK_CONFIG_ERROR(with_jwt_route("      algorithms: []\n"), "test.yaml:10:19: ",
                     "routes[0].auth.algorithms: must list at least one algorithm");
  CHECK_CONFIG_ERROR(with_jwt_route("      algorithms: RS256\n"), "test.yaml:10:19: ",
                     "routes[0].auth.algorithms: expected a list of algorithms (got a scalar)");
  CHECK_CONFIG_ERROR(with_jwt_route("      algorithms: [ES256, ES256]\n"), "test.yaml:10:27: ",
                     "routes[0].auth.algorithms[1]: 'ES256' is listed twice");
  CHECK(load(with_jwt_route("      algorithms: [RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512]\n"))
            ->routes.at(0).auth.algorithms.size() == 9);
}

TEST_CASE("config: jwt leeway_s and cache_ttl_s") {
  CHECK(load(with_jwt_route("      leeway_s: 0\n"))->routes.at(0).auth.leeway_s == 0);
  CHECK_CONFIG_ERROR(with_jwt_route("      leeway_s: 601\n"), "test.yaml:10:17: ",
                     "routes[0].auth.leeway_s: expected at most 600 (got 601)");
  CHECK_CONFIG_ERROR(with_jwt_route("      leeway_s: -1\n"), "test.yaml:10:17: ",
                     "routes[0].auth.leeway_s: expected a non-negative integer");
  CHECK_CONFIG_ERROR(with_jwt_route("      cache_ttl_s: \"60\"\n"), "test.yaml:10:20: ",
                     "routes[0].auth.cache_ttl_s: expected a non-negative integer (got a quoted string)");
  CHECK_CONFIG_ERROR(with_jwt_route("      cache_ttl_s: 4294967296\n"), "test.yaml:10:20: ",
                     "routes[0].auth.cache_ttl_s: expected at most 4294967295");
}

TEST_CASE("config: route tools and methods rules") {
  CHECK(load(with_jwt_route("    tools:\n      get-current-time: {credential: none}\n"))
            ->routes.at(0)
            .tools.at("get-current-time")
            .credential == std::optional<std::string>("none"));
  CHECK_CONFIG_ERROR(with_jwt_route("    tools:\n      t: {scope: [a]}\n"), "test.yaml:11:11: ",
                     "unknown key 'scope' in routes[0].tools.t");
  CHECK_CONFIG_ERROR(with_jwt_route("    methods:\n      tools/call: {credential: x}\n"), "test.yaml:11:20: ",
                     "unknown key 'credential' in routes[0].methods.tools/call");
  CHECK_CONFIG_ERROR(with_jwt_route("    tools: [a, b]\n"), "test.yaml:10:12: ",
                     "routes[0].tools: expected a map (got a list)");
  CHECK_CONFIG_ERROR(with_jwt_route("    methods:\n      tools/call: [a]\n"), "test.yaml:11:19: ",
                     "routes[0].methods.tools/call: expected a map (got a list)");
  CHECK_CONFIG_ERROR(with_jwt_route("    tools:\n      \"\": {scopes: [a]}\n"), "test.yaml:11:7: ",
                     "routes[0].tools: a name must not be empty");
  CHECK_CONFIG_ERROR(with_jwt_route("    tools:\n      t: {scopes: a}\n"), "test.yaml:11:19: ",
                     "routes[0].tools.t.scopes: expected a list of scopes (got a scalar)");
  const ConfigPtr config = load(with_jwt_route("    tools:\n      t:\n      u: {scopes: []}\n    methods: {}\n"));
  CHECK(config->routes.at(0).tools.at("t").scopes.empty());
  CHECK(config->routes.at(0).tools.at("u").scopes.empty());
  CHECK(config->routes.at(0).methods.empty());
}

TEST_CASE("config: tools, methods and filter_tools_list need an auth type that identifies the caller") {
  CHECK_CONFIG_ERROR(with_open_route("    tools:\n      t: {scopes: [a]}\n"), "test.yaml:8:5: ",
                     "routes[0].tools: needs an auth type that identifies the caller (route 'notes' has auth type 'none')");
  CHECK_CONFIG_ERROR(with_open_route("    methods: {tools/call: {scopes: [a]}}\n"), "test.yaml:8:5: ",
                     "routes[0].methods: needs an auth type that identifies the caller");
  CHECK_CONFIG_ERROR(with_open_route("    tools: {}\n"), "test.yaml:8:5: ",
                     "routes[0].tools: needs an auth type that identifies the caller");
  CHECK_CONFIG_ERROR(with_open_route("    filter_tools_list: true\n"), "test.yaml:8:5: ",
                     "routes[0].filter_tools_list: needs an auth type that identifies the caller");
  CHECK_FALSE(load(with_open_route("    filter_tools_list: false\n"))->routes.at(0).filter_tools_list);
  CHECK_CONFIG_ERROR(with_jwt_route("    filter_tools_list: \"true\"\n"), "test.yaml:10:24: ",
                     "routes[0].filter_tools_list: expected true or false");
  CHECK(load(with_jwt_route("    filter_tools_list: true\n"))->routes.at(0).filter_tools_list);
}

TEST_CASE("config: route resource_documentation is an absolute http(s) URL") {
  CHECK(load(with_open_route("    resource_documentation: \"https://Docs.example.com/notes\"\n"))
            ->routes.at(0)
            .resource_documentation == "https://Docs.example.com/notes");
  CHECK_CONFIG_ERROR(with_open_route("    resource_documentation: docs/notes\n"), "test.yaml:8:29: ",
                     "routes[0].resource_documentation: invalid URL");
  CHECK_CONFIG_ERROR(with_open_route("    resource_documentation: \"https://d/n#x\"\n"), "test.yaml:8:29: ",
                     "routes[0].resource_documentation: invalid URL");
}

// ---- Files ----

TEST_CASE("config: load_config_file reports unreadable files") {
  const std::string missing = repo_root() + "/config/no-such-config.yaml";
  CHECK_THROWS_WITH_AS(load_config_file(missing),
                       ("cannot read config file '" + missing + "': No such file or directory").c_str(), ConfigError);
  const std::string directory = repo_root() + "/config";
  CHECK_THROWS_WITH_AS(load_config_file(directory),
                       ("cannot read config file '" + directory + "': Is a directory").c_str(), ConfigError);
}

TEST_CASE("config: the example configs in config/ load cleanly") {
  const std::string repo = repo_root();

  const ConfigPtr quickstart = load_config_file(repo + "/config/quickstart.yaml");
  CHECK(quickstart->source_path == repo + "/config/quickstart.yaml");
  CHECK(quickstart->server.listen.to_string() == "127.0.0.1:8080");
  CHECK(quickstart->admin.listen.to_string() == "127.0.0.1:9090");
  REQUIRE(quickstart->routes.size() == 3);
  CHECK(quickstart->routes[0].name == "everything");
  CHECK(quickstart->routes[0].upstreams.at(0).origin() == "http://127.0.0.1:3001");
  CHECK(quickstart->routes[1].transport == Transport::Sse);
  CHECK(quickstart->routes[1].upstreams.at(0).path == "/sse");
  CHECK(quickstart->routes[2].auth.type == AuthType::Jwt);
  CHECK(quickstart->routes[2].auth.server == "demo");
  CHECK(quickstart->routes[2].filter_tools_list);
  CHECK(quickstart->authorization_servers.at("demo").issuer == "http://127.0.0.1:3003");

  ScopedEnv tls_dir("MCPGATE_TLS_DIR", "/etc/mcpgate/tls");
  ScopedEnv admin_token("MCPGATE_ADMIN_TOKEN", "example-token");
  ScopedEnv client_secret("MCPGATE_CLIENT_SECRET", "example-secret");
  const ConfigPtr example = load_config_file(repo + "/config/example.yaml");
  REQUIRE(example->server.tls.has_value());
  CHECK(example->server.tls->cert_file == "/etc/mcpgate/tls/tls.crt");
  CHECK(example->admin.token == "example-token");
  CHECK(example->authorization_servers.at("corp").client_secret == "example-secret");
  CHECK(example->authorization_servers.at("partner").discovery == Discovery::Off);
  REQUIRE(example->routes.size() >= 2);
  CHECK(example->routes[0].auth.type == AuthType::Jwt);
  CHECK(example->routes[0].auth.server == "corp");
  CHECK(example->routes[0].tools.size() == 3);
  CHECK(example->routes[0].tools.at("query-recent-errors").credential == "svc-errors");
  CHECK(example->credentials.at("svc-errors").type == CredentialType::ClientCredentials);
  CHECK(example->routes[0].prompts.at("weekly-report").scopes == std::vector<std::string>{"admin"});
  CHECK(example->routes[0].resources.count("notes://archive") == 1);
  REQUIRE(example->routes[0].rate_limits.size() == 2);
  CHECK(example->routes[0].rate_limits[0].name == "subject:delete_note");
  CHECK(example->routes[0].rate_limits[1].burst == 400);
}

TEST_CASE("config: errors from a file are positioned in that file") {
  const std::string repo = repo_root();
  ScopedEnv tls_dir("MCPGATE_TLS_DIR", nullptr);
  ScopedEnv admin_token("MCPGATE_ADMIN_TOKEN", "example-token");
  const std::string path = repo + "/config/example.yaml";
  try {
    load_config_file(path);
    FAIL("example.yaml loaded without MCPGATE_TLS_DIR");
  } catch (const ConfigError& e) {
    const std::string message = e.what();
    INFO(message);
    CHECK(message.rfind(path + ":", 0) == 0);
    CHECK(contains(message, "server.tls.cert_file: environment variable 'MCPGATE_TLS_DIR' is not set"));
  }
}

TEST_CASE("config: per-prompt and per-resource scope rules") {
  const std::string yaml =
      "authorization_servers:\n  corp:\n    issuer: \"https://idp.example\"\n" +
      with_route("    path: /n\n    upstream: \"http://h/\"\n    auth: {type: jwt, server: corp}\n"
                 "    prompts:\n      report: {scopes: [admin]}\n"
                 "    resources:\n      \"notes://secret\": {scopes: [secret]}\n");
  const auto config = load_config_text(yaml, "test.yaml");
  const auto& route = config->routes.at(0);
  CHECK(route.prompts.at("report").scopes == std::vector<std::string>{"admin"});
  CHECK(route.resources.at("notes://secret").scopes == std::vector<std::string>{"secret"});
  CHECK(route.auth.scopes_supported == std::vector<std::string>{"admin", "secret"});
  CHECK_CONFIG_ERROR(with_route("    path: /n\n    upstream: \"http://h/\"\n    auth: {type: none}\n"
                                "    prompts:\n      report: {scopes: [admin]}\n"),
                     "test.yaml:", "needs an auth type that identifies the caller");
}

// ---- Upstream credentials ----

namespace {

// Authorization servers for credentials (14 lines): 'corp' with a confidential client, 'public'
// with a public client, 'bare' without a client, 'manual' with manual metadata and no
// token_endpoint.
constexpr const char* kCredentialServers =
    "authorization_servers:\n"
    "  corp:\n"
    "    issuer: \"https://auth.example.com\"\n"
    "    client: {id: gw, secret: s3cret}\n"
    "  public:\n"
    "    issuer: \"https://public.example.com\"\n"
    "    client: {id: spa}\n"
    "  bare:\n"
    "    issuer: \"https://bare.example.com\"\n"
    "  manual:\n"
    "    issuer: \"https://m.example.com\"\n"
    "    discovery: off\n"
    "    metadata: {jwks_uri: \"https://m.example.com/jwks\"}\n"
    "    client: {id: gw, secret: s}\n";

// A valid config (one auth-none route, lines 1-7), the servers above (lines 8-21), then
// `credentials:` on line 22 with `body` from line 23 (names at column 3, keys at column 5).
std::string with_credentials(const std::string& body) {
  return with_route(kRouteBody) + kCredentialServers + "credentials:\n" + body;
}

// The servers above (lines 1-14), credentials 'pt' (passthrough) and 'key' (static) on lines
// 15-17, then a config whose only route has `body` from line 22 (keys at column 5).
std::string with_credential_route(const std::string& body) {
  return std::string(kCredentialServers) + "credentials:\n  pt: {type: passthrough}\n  key: {type: static, value: k}\n" +
         with_route(body);
}

constexpr const char* kOpenRouteStart = "    path: /notes\n    upstream: \"http://127.0.0.1:3001/mcp\"\n    auth: {type: none}\n";
constexpr const char* kJwtRouteStart =
    "    path: /notes\n    upstream: \"http://127.0.0.1:3001/mcp\"\n    auth: {type: jwt, server: corp}\n";

}  // namespace

TEST_CASE("config: a full credentials config loads every field") {
  ScopedEnv api_key("MCPGATE_TEST_API_KEY", "k3y: \"x\"");
  const std::string yaml = std::string(kCredentialServers) + R"(credentials:
  api-key:
    type: static
    header: X-Api-Key
    value: ${MCPGATE_TEST_API_KEY}
  basic:
    type: static
    value: "Basic dXNlcjpwYXNz"
  pt:
    type: passthrough
  svc:
    type: client_credentials
    server: corp
    scopes: [errors:read, errors:write]
    resource: "https://API.internal.example.com/v1"
    audience: api-internal
    auth_method: client_secret_post
    header: X-Upstream-Token
    refresh_before_expiry_s: 60
  svc-min:
    type: client_credentials
    server: corp
    refresh_before_expiry_s: 0
server:
  listen: "127.0.0.1:8080"
routes:
  - name: notes
    path: /notes
    upstream: "http://127.0.0.1:3001/mcp"
    auth: {type: jwt, server: corp}
    upstream_credential: pt
    tools:
      query-recent-errors: {credential: svc, scopes: [errors]}
      get-current-time: {credential: none}
      create_note: {scopes: [write]}
  - name: open
    path: /open
    upstream: "http://127.0.0.1:3002/mcp"
    auth: {type: none}
    upstream_credential: api-key
  - name: plain
    path: /plain
    upstream: "http://127.0.0.1:3003/mcp"
    auth: {type: none}
  - name: explicit-none
    path: /explicit-none
    upstream: "http://127.0.0.1:3004/mcp"
    auth: {type: none}
    upstream_credential: none
)";
  const ConfigPtr config = load(yaml);
  REQUIRE(config->credentials.size() == 5);

  const CredentialConfig& api = config->credentials.at("api-key");
  CHECK(api.name == "api-key");
  CHECK(api.type == CredentialType::Static);
  CHECK(api.header == "X-Api-Key");
  CHECK(api.value == "k3y: \"x\"");
  CHECK(api.server.empty());

  const CredentialConfig& basic = config->credentials.at("basic");
  CHECK(basic.type == CredentialType::Static);
  CHECK(basic.header == "Authorization");
  CHECK(basic.value == "Basic dXNlcjpwYXNz");

  const CredentialConfig& pt = config->credentials.at("pt");
  CHECK(pt.name == "pt");
  CHECK(pt.type == CredentialType::Passthrough);
  CHECK(pt.header == "Authorization");
  CHECK(pt.value.empty());

  const CredentialConfig& svc = config->credentials.at("svc");
  CHECK(svc.type == CredentialType::ClientCredentials);
  CHECK(svc.server == "corp");
  CHECK(svc.scopes == std::vector<std::string>{"errors:read", "errors:write"});
  CHECK(svc.resource == "https://API.internal.example.com/v1");  // as written
  CHECK(svc.audience == "api-internal");
  CHECK(svc.auth_method == ClientAuthMethod::ClientSecretPost);
  CHECK(svc.header == "X-Upstream-Token");
  CHECK(svc.refresh_before_expiry_s == 60);
  CHECK(svc.value.empty());

  const CredentialConfig& svc_min = config->credentials.at("svc-min");
  CHECK(svc_min.type == CredentialType::ClientCredentials);
  CHECK(svc_min.server == "corp");
  CHECK(svc_min.scopes.empty());
  CHECK(svc_min.resource.empty());
  CHECK(svc_min.audience.empty());
  CHECK(svc_min.auth_method == ClientAuthMethod::ClientSecretBasic);
  CHECK(svc_min.header == "Authorization");
  CHECK(svc_min.refresh_before_expiry_s == 0);

  REQUIRE(config->routes.size() == 4);
  const RouteConfig& notes = config->routes[0];
  CHECK(notes.upstream_credential == "pt");
  CHECK(notes.tools.at("query-recent-errors").credential == std::optional<std::string>("svc"));
  CHECK(notes.tools.at("query-recent-errors").scopes == std::vector<std::string>{"errors"});
  CHECK(notes.tools.at("get-current-time").credential == std::optional<std::string>("none"));
  CHECK_FALSE(notes.tools.at("create_note").credential.has_value());
  CHECK(config->routes[1].upstream_credential == "api-key");
  CHECK(config->routes[2].upstream_credential == "none");
  CHECK(config->routes[3].upstream_credential == "none");
}

TEST_CASE("config: credentials may be absent, null or empty; otherwise a map") {
  CHECK(load(with_route(kRouteBody))->credentials.empty());
  CHECK(load(with_route(kRouteBody) + "credentials:\n")->credentials.empty());
  CHECK(load(with_route(kRouteBody) + "credentials: {}\n")->credentials.empty());
  CHECK_CONFIG_ERROR(with_route(kRouteBody) + "credentials: [a]\n", "test.yaml:8:14: ",
                     "credentials: expected a map (got a list)");
  CHECK_CONFIG_ERROR(with_credentials("  x: static\n"), "test.yaml:23:6: ", "credentials.x: expected a map (got a scalar)");
}

TEST_CASE("config: credential names") {
  CHECK_CONFIG_ERROR(with_credentials("  none: {type: passthrough}\n"), "test.yaml:23:3: ",
                     "credentials.none: the name 'none' is reserved");
  CHECK_CONFIG_ERROR(with_credentials("  \"a b\": {type: passthrough}\n"), "test.yaml:23:3: ",
                     "credentials.a b: the name may contain only letters, digits, '_', '.' and '-'");
  CHECK_CONFIG_ERROR(with_credentials("  x: {type: passthrough}\n  x: {type: passthrough}\n"), "test.yaml:24:3: ",
                     "duplicate key 'x' in credentials");
}

TEST_CASE("config: credential types") {
  CHECK_CONFIG_ERROR(with_credentials("  x: {}\n"), "test.yaml:23:6: ", "credentials.x: missing required key 'type'");
  CHECK(load(with_credentials("  x: {type: delegated, server: corp}\n"))->credentials.at("x").type ==
        CredentialType::Delegated);
  CHECK(load(with_credentials("  x: {type: token_exchange, server: corp}\n"))->credentials.at("x").type ==
        CredentialType::TokenExchange);
  CHECK_CONFIG_ERROR(with_credentials("  x: {type: token_exchange}\n"), "test.yaml:23:6: ",
                     "credentials.x: missing required key 'server'");
  CHECK_CONFIG_ERROR(with_credentials("  x: {type: delegated}\n"), "test.yaml:23:6: ",
                     "credentials.x: missing required key 'server'");
  CHECK_CONFIG_ERROR(with_credentials("  x: {type: bearer}\n"), "test.yaml:23:13: ",
                     "credentials.x.type: unknown credential type 'bearer' (expected static, passthrough, "
                     "client_credentials, token_exchange or delegated)");
  CHECK_CONFIG_ERROR(with_credentials("  x: {type: [static]}\n"), "test.yaml:23:13: ",
                     "credentials.x.type: expected a string (got a list)");
}

TEST_CASE("config: static credentials") {
  CHECK_CONFIG_ERROR(with_credentials("  x:\n    type: static\n"), "test.yaml:24:5: ",
                     "credentials.x: a static credential needs 'value' or 'value_file'");
  CHECK_CONFIG_ERROR(with_credentials("  x:\n    type: static\n    value: \"\"\n"), "test.yaml:25:12: ",
                     "credentials.x.value: must not be empty");
  {
    ScopedEnv value("MCPGATE_TEST_VALUE", "secret\r\nX-Evil: 1");
    const std::string message = error_for(with_credentials("  x:\n    type: static\n    value: ${MCPGATE_TEST_VALUE}\n"));
    CHECK(message.rfind("test.yaml:25:12: ", 0) == 0);
    CHECK(contains(message, "credentials.x.value: must not contain control characters"));
    CHECK_FALSE(contains(message, "secret"));  // never echoed
  }
  CHECK_CONFIG_ERROR(with_credentials("  x:\n    type: static\n    value: \"k \"\n"), "test.yaml:25:12: ",
                     "credentials.x.value: must not begin or end with whitespace");
  CHECK(load(with_credentials("  x:\n    type: static\n    value: \"Bearer a\\tb\"\n"))->credentials.at("x").value ==
        "Bearer a\tb");
  CHECK_CONFIG_ERROR(with_credentials("  x:\n    type: static\n    value: k\n    header: \"X Api\"\n"), "test.yaml:26:13: ",
                     "credentials.x.header: 'X Api' is not a header name");
  CHECK_CONFIG_ERROR(with_credentials("  x:\n    type: static\n    value: k\n    header: \"X-Api:\"\n"), "test.yaml:26:13: ",
                     "credentials.x.header: 'X-Api:' is not a header name");
  CHECK_CONFIG_ERROR(with_credentials("  x:\n    type: static\n    value: k\n    header: \"\"\n"), "test.yaml:26:13: ",
                     "credentials.x.header: must not be empty");
  for (const char* header : {"Host", "content-length", "Transfer-Encoding", "Connection"}) {
    CAPTURE(header);
    CHECK_CONFIG_ERROR(with_credentials("  x:\n    type: static\n    value: k\n    header: " + std::string(header) + "\n"),
                       "test.yaml:26:13: ", "credentials.x.header: '" + std::string(header) + "' frames or routes the request");
  }
  CHECK(load(with_credentials("  x:\n    type: static\n    value: k\n    header: X-Key_1.v2\n"))->credentials.at("x").header ==
        "X-Key_1.v2");
  CHECK_CONFIG_ERROR(with_credentials("  x:\n    type: static\n    value: k\n    server: corp\n"), "test.yaml:26:5: ",
                     "unknown key 'server' in credential 'x'");
}

TEST_CASE("config: passthrough credentials take no other key") {
  for (const char* key : {"header", "value", "server", "scopes"}) {
    CAPTURE(key);
    CHECK_CONFIG_ERROR(with_credentials("  x:\n    type: passthrough\n    " + std::string(key) + ": X\n"), "test.yaml:25:5: ",
                       "unknown key '" + std::string(key) + "' in credential 'x'");
  }
}

TEST_CASE("config: client_credentials credentials") {
  const std::string cc = "  x:\n    type: client_credentials\n";  // lines 23-24
  CHECK_CONFIG_ERROR(with_credentials(cc), "test.yaml:24:5: ", "credentials.x: missing required key 'server'");
  CHECK_CONFIG_ERROR(with_credentials(cc + "    server: nope\n"), "test.yaml:25:13: ",
                     "credentials.x.server: unknown authorization server 'nope' (not defined under authorization_servers)");
  CHECK_CONFIG_ERROR(with_credentials(cc + "    server: public\n"), "test.yaml:25:13: ",
                     "credentials.x.server: authorization server 'public' needs client.id and client.secret for the "
                     "client_credentials grant");
  CHECK_CONFIG_ERROR(with_credentials(cc + "    server: bare\n"), "test.yaml:25:13: ",
                     "credentials.x.server: authorization server 'bare' needs client.id and client.secret");
  CHECK_CONFIG_ERROR(with_credentials(cc + "    server: manual\n"), "test.yaml:25:13: ",
                     "credentials.x.server: authorization server 'manual' has manual metadata without a 'token_endpoint'");
  const std::string with_server = cc + "    server: corp\n";  // keys from line 26
  CHECK(load(with_credentials(with_server))->credentials.at("x").server == "corp");
  CHECK_CONFIG_ERROR(with_credentials(with_server + "    scopes: [\"a b\"]\n"), "test.yaml:26:14: ",
                     "credentials.x.scopes[0]: invalid scope 'a b'");
  CHECK_CONFIG_ERROR(with_credentials(with_server + "    scopes: [a, a]\n"), "test.yaml:26:17: ",
                     "credentials.x.scopes[1]: 'a' is listed twice");
  CHECK_CONFIG_ERROR(with_credentials(with_server + "    scopes: a\n"), "test.yaml:26:13: ",
                     "credentials.x.scopes: expected a list of scopes (got a scalar)");
  CHECK_CONFIG_ERROR(with_credentials(with_server + "    resource: api.example.com\n"), "test.yaml:26:15: ",
                     "credentials.x.resource: invalid URL");
  CHECK_CONFIG_ERROR(with_credentials(with_server + "    resource: \"ftp://api.example.com\"\n"), "test.yaml:26:15: ",
                     "credentials.x.resource: invalid URL");
  CHECK_CONFIG_ERROR(with_credentials(with_server + "    audience: \"\"\n"), "test.yaml:26:15: ",
                     "credentials.x.audience: must not be empty");
  CHECK_CONFIG_ERROR(with_credentials(with_server + "    auth_method: client_secret_jwt\n"), "test.yaml:26:18: ",
                     "credentials.x.auth_method: expected one of client_secret_basic, client_secret_post, private_key_jwt");
  CHECK(load(with_credentials(with_server + "    auth_method: client_secret_basic\n"))->credentials.at("x").auth_method ==
        ClientAuthMethod::ClientSecretBasic);
  CHECK_CONFIG_ERROR(with_credentials(with_server + "    refresh_before_expiry_s: 86401\n"), "test.yaml:26:30: ",
                     "credentials.x.refresh_before_expiry_s: expected at most 86400");
  CHECK_CONFIG_ERROR(with_credentials(with_server + "    refresh_before_expiry_s: -1\n"), "test.yaml:26:30: ",
                     "credentials.x.refresh_before_expiry_s: expected a non-negative integer");
  CHECK(load(with_credentials(with_server + "    refresh_before_expiry_s: 86400\n"))
            ->credentials.at("x")
            .refresh_before_expiry_s == 86400);
  CHECK_CONFIG_ERROR(with_credentials(with_server + "    header: \"a@b\"\n"), "test.yaml:26:13: ",
                     "credentials.x.header: 'a@b' is not a header name");
  CHECK_CONFIG_ERROR(with_credentials(with_server + "    value: k\n"), "test.yaml:26:5: ",
                     "unknown key 'value' in credential 'x'");
}

TEST_CASE("config: route upstream_credential") {
  CHECK(load(with_credential_route(kOpenRouteStart))->routes.at(0).upstream_credential == "none");
  CHECK(load(with_credential_route(std::string(kOpenRouteStart) + "    upstream_credential: key\n"))
            ->routes.at(0)
            .upstream_credential == "key");
  CHECK(load(with_credential_route(std::string(kJwtRouteStart) + "    upstream_credential: pt\n"))
            ->routes.at(0)
            .upstream_credential == "pt");
  CHECK_CONFIG_ERROR(with_credential_route(std::string(kOpenRouteStart) + "    upstream_credential: nope\n"),
                     "test.yaml:25:26: ",
                     "routes[0].upstream_credential: unknown credential 'nope' (not defined under credentials");
  CHECK_CONFIG_ERROR(with_credential_route(std::string(kOpenRouteStart) + "    upstream_credential: \"\"\n"),
                     "test.yaml:25:26: ", "routes[0].upstream_credential: must not be empty");
  CHECK_CONFIG_ERROR(with_credential_route(std::string(kOpenRouteStart) + "    upstream_credential: [key]\n"),
                     "test.yaml:25:26: ", "routes[0].upstream_credential: expected a string (got a list)");
  CHECK_CONFIG_ERROR(with_credential_route(std::string(kOpenRouteStart) + "    upstream_credential: pt\n"),
                     "test.yaml:25:26: ",
                     "routes[0].upstream_credential: credential 'pt' is passthrough, which acts for an "
                     "authenticated caller (route 'notes' has auth type 'none': there is no validated caller)");
}

TEST_CASE("config: tool rule credential") {
  CHECK(load(with_credential_route(std::string(kJwtRouteStart) + "    tools:\n      t: {credential: pt}\n"))
            ->routes.at(0)
            .tools.at("t")
            .credential == std::optional<std::string>("pt"));
  CHECK_CONFIG_ERROR(with_credential_route(std::string(kJwtRouteStart) + "    tools:\n      t: {credential: nope}\n"),
                     "test.yaml:26:23: ", "routes[0].tools.t.credential: unknown credential 'nope'");
  CHECK_CONFIG_ERROR(with_credential_route(std::string(kJwtRouteStart) + "    tools:\n      t: {credential: [pt]}\n"),
                     "test.yaml:26:23: ", "routes[0].tools.t.credential: expected a string (got a list)");
  CHECK_CONFIG_ERROR(with_credential_route(std::string(kOpenRouteStart) + "    tools:\n      t: {credential: pt}\n"),
                     "test.yaml:26:23: ",
                     "routes[0].tools.t.credential: credential 'pt' is passthrough, which acts for an "
                     "authenticated caller (route 'notes'");
  // Any other tool rule on an auth-none route is refused as before.
  CHECK_CONFIG_ERROR(with_credential_route(std::string(kOpenRouteStart) + "    tools:\n      t: {credential: key}\n"),
                     "test.yaml:25:5: ", "routes[0].tools: needs an auth type that identifies the caller");
  CHECK_CONFIG_ERROR(with_credential_route(std::string(kJwtRouteStart) + "    prompts:\n      p: {credential: key}\n"),
                     "test.yaml:26:11: ", "unknown key 'credential' in routes[0].prompts.p");
}

// ---- Grant credentials: token_exchange and delegated ----

namespace {

// Like with_credential_route, with 'tx' (token_exchange) and 'dg' (delegated) on lines 16-17;
// the route's `body` from line 22 (keys at column 5).
std::string with_grant_route(const std::string& body) {
  return std::string(kCredentialServers) +
         "credentials:\n  tx: {type: token_exchange, server: corp}\n  dg: {type: delegated, server: corp}\n" +
         with_route(body);
}

}  // namespace

TEST_CASE("config: token_exchange and delegated credentials load their fields") {
  const ConfigPtr config = load(with_credentials(R"(  tx:
    type: token_exchange
    server: corp
    scopes: [errors:read, errors:write]
    resource: "https://API.internal.example.com/v1"
    audience: api-internal
    auth_method: client_secret_post
    header: X-Upstream-Token
    refresh_before_expiry_s: 120
  tx-min:
    type: token_exchange
    server: corp
  dg:
    type: delegated
    server: corp
    scopes: [repo, read:user]
    resource: "https://api.github.example/"
    auth_method: client_secret_basic
    header: X-GitHub-Token
    refresh_before_expiry_s: 0
  dg-min:
    type: delegated
    server: corp
)"));
  REQUIRE(config->credentials.size() == 4);

  const CredentialConfig& tx = config->credentials.at("tx");
  CHECK(tx.name == "tx");
  CHECK(tx.type == CredentialType::TokenExchange);
  CHECK(tx.server == "corp");
  CHECK(tx.scopes == std::vector<std::string>{"errors:read", "errors:write"});
  CHECK(tx.resource == "https://API.internal.example.com/v1");  // as written
  CHECK(tx.audience == "api-internal");
  CHECK(tx.auth_method == ClientAuthMethod::ClientSecretPost);
  CHECK(tx.header == "X-Upstream-Token");
  CHECK(tx.refresh_before_expiry_s == 120);
  CHECK(tx.value.empty());

  const CredentialConfig& tx_min = config->credentials.at("tx-min");
  CHECK(tx_min.type == CredentialType::TokenExchange);
  CHECK(tx_min.scopes.empty());
  CHECK(tx_min.resource.empty());
  CHECK(tx_min.audience.empty());
  CHECK(tx_min.auth_method == ClientAuthMethod::ClientSecretBasic);
  CHECK(tx_min.header == "Authorization");
  CHECK(tx_min.refresh_before_expiry_s == 300);

  const CredentialConfig& dg = config->credentials.at("dg");
  CHECK(dg.type == CredentialType::Delegated);
  CHECK(dg.server == "corp");
  CHECK(dg.scopes == std::vector<std::string>{"repo", "read:user"});
  CHECK(dg.resource == "https://api.github.example/");
  CHECK(dg.audience.empty());
  CHECK(dg.auth_method == ClientAuthMethod::ClientSecretBasic);
  CHECK(dg.header == "X-GitHub-Token");
  CHECK(dg.refresh_before_expiry_s == 0);

  const CredentialConfig& dg_min = config->credentials.at("dg-min");
  CHECK(dg_min.type == CredentialType::Delegated);
  CHECK(dg_min.scopes.empty());
  CHECK(dg_min.header == "Authorization");
  CHECK(dg_min.refresh_before_expiry_s == 300);
}

TEST_CASE("config: token_exchange and delegated credential errors") {
  const std::string tx = "  x:\n    type: token_exchange\n";  // lines 23-24
  const std::string dg = "  x:\n    type: delegated\n";
  CHECK_CONFIG_ERROR(with_credentials(tx + "    server: nope\n"), "test.yaml:25:13: ",
                     "credentials.x.server: unknown authorization server 'nope'");
  CHECK_CONFIG_ERROR(with_credentials(tx + "    server: public\n"), "test.yaml:25:13: ",
                     "credentials.x.server: authorization server 'public' needs client.id and client.secret for the "
                     "token exchange grant (RFC 8693)");
  CHECK_CONFIG_ERROR(with_credentials(dg + "    server: public\n"), "test.yaml:25:13: ",
                     "credentials.x.server: authorization server 'public' needs client.id and client.secret for the "
                     "authorization code and refresh grants");
  CHECK_CONFIG_ERROR(with_credentials(dg + "    server: bare\n"), "test.yaml:25:13: ",
                     "authorization server 'bare' needs client.id and client.secret");
  CHECK_CONFIG_ERROR(with_credentials(tx + "    server: manual\n"), "test.yaml:25:13: ",
                     "credentials.x.server: authorization server 'manual' has manual metadata without a 'token_endpoint'");
  CHECK_CONFIG_ERROR(with_credentials(dg + "    server: manual\n"), "test.yaml:25:13: ",
                     "credentials.x.server: authorization server 'manual' has manual metadata without a 'token_endpoint'");
  // The audience parameter is for grants the gateway makes for itself, not for a user's own tokens.
  CHECK_CONFIG_ERROR(with_credentials(dg + "    server: corp\n    audience: api\n"), "test.yaml:26:5: ",
                     "unknown key 'audience' in credential 'x'");
  CHECK(load(with_credentials(tx + "    server: corp\n    audience: api\n"))->credentials.at("x").audience == "api");
  for (const std::string& start : {tx, dg}) {
    CAPTURE(start);
    const std::string with_server = start + "    server: corp\n";  // keys from line 26
    CHECK_CONFIG_ERROR(with_credentials(with_server + "    value: k\n"), "test.yaml:26:5: ",
                       "unknown key 'value' in credential 'x'");
    CHECK_CONFIG_ERROR(with_credentials(with_server + "    scopes: [a, a]\n"), "test.yaml:26:17: ",
                       "credentials.x.scopes[1]: 'a' is listed twice");
    CHECK_CONFIG_ERROR(with_credentials(with_server + "    resource: api.example.com\n"), "test.yaml:26:15: ",
                       "credentials.x.resource: invalid URL");
    CHECK_CONFIG_ERROR(with_credentials(with_server + "    auth_method: client_secret_jwt\n"), "test.yaml:26:18: ",
                       "credentials.x.auth_method: expected one of client_secret_basic, client_secret_post, private_key_jwt");
    CHECK_CONFIG_ERROR(with_credentials(with_server + "    refresh_before_expiry_s: 86401\n"), "test.yaml:26:30: ",
                       "credentials.x.refresh_before_expiry_s: expected at most 86400");
    CHECK_CONFIG_ERROR(with_credentials(with_server + "    header: Host\n"), "test.yaml:26:13: ",
                       "credentials.x.header: 'Host' frames or routes the request");
  }
}

TEST_CASE("config: token_exchange and delegated act for a caller, so an auth-none route refuses them") {
  for (const char* name : {"tx", "dg"}) {
    CAPTURE(name);
    const std::string kind = std::string(name) == "tx" ? "token_exchange" : "delegated";
    CHECK_CONFIG_ERROR(with_grant_route(std::string(kOpenRouteStart) + "    upstream_credential: " + name + "\n"),
                       "test.yaml:25:26: ",
                       "routes[0].upstream_credential: credential '" + std::string(name) + "' is " + kind +
                           ", which acts for an authenticated caller (route 'notes' has auth type 'none': there is "
                           "no validated caller)");
    CHECK_CONFIG_ERROR(with_grant_route(std::string(kOpenRouteStart) + "    tools:\n      t: {credential: " + name + "}\n"),
                       "test.yaml:26:23: ",
                       "routes[0].tools.t.credential: credential '" + std::string(name) + "' is " + kind +
                           ", which acts for an authenticated caller");
  }
  const ConfigPtr config = load(with_grant_route(std::string(kJwtRouteStart) +
                                                 "    upstream_credential: dg\n    tools:\n      t: {credential: tx}\n"));
  CHECK(config->routes.at(0).upstream_credential == "dg");
  CHECK(config->routes.at(0).tools.at("t").credential == std::optional<std::string>("tx"));
}

// ---- Secret files: token store keys and static value_file ----

namespace {

// A private temporary directory, removed with everything in it at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string pattern = "/tmp/mcpgate-config-test-XXXXXX";
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  // Writes `content` byte for byte to `name` in the directory; returns its path.
  std::string write(const std::string& name, const std::string& content) const {
    const std::string path = path_ + "/" + name;
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    REQUIRE(out.good());
    return path;
  }
  std::string path(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// 32 key bytes with a NUL, a newline and a space inside (raw key files are binary).
std::string store_key(unsigned char seed) {
  std::string key;
  for (int i = 0; i < 32; ++i) key.push_back(static_cast<char>(seed + i * 37));
  key[3] = '\0';
  key[4] = '\n';
  key[5] = ' ';
  key[31] = '\n';  // a raw key may end in a newline byte: it is not stripped
  return key;
}

std::string to_hex(const std::string& bytes, bool upper = false) {
  const char* digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

std::string to_base64(const std::string& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int length = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                     reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(length));
  return out;
}

// A valid config with `token_store:` on line 3 and `body` (its keys, column 3) from line 4.
std::string with_token_store(const std::string& body) { return with_sections("token_store:\n" + body); }

}  // namespace

TEST_CASE("config: token_store is optional, defaults to memory, and must be a map") {
  const TokenStoreConfig defaults;
  for (const std::string& yaml : {with_route(kRouteBody), with_sections("token_store:\n"),
                                  with_sections("token_store: {}\n"), with_sections("token_store: null\n")}) {
    CAPTURE(yaml);
    const ConfigPtr config = load(yaml);
    const TokenStoreConfig& store = config->token_store;
    CHECK(store.backend == StoreBackendType::Memory);
    CHECK(store.redis_host == "127.0.0.1");
    CHECK(store.redis_port == 6379);
    CHECK(store.redis_db == 0);
    CHECK(store.redis_password.empty());
    CHECK(store.key_prefix == "mcpgate:");
    CHECK(store.encryption_keys.empty());
    CHECK(store.connect_link_ttl_s == 600);
    CHECK(store.connect_link_ttl_s == defaults.connect_link_ttl_s);
  }
  CHECK_CONFIG_ERROR(with_sections("token_store: [x]\n"), "test.yaml:3:14: ", "token_store: expected a map (got a list)");
  CHECK_CONFIG_ERROR(with_token_store("  foo: 1\n"), "test.yaml:4:3: ", "unknown key 'foo' in token_store");
  CHECK_CONFIG_ERROR(with_token_store("  backend: postgres\n"), "test.yaml:4:12: ",
                     "token_store.backend: expected one of memory, redis (got 'postgres')");
  CHECK(load(with_token_store("  backend: memory\n  key_prefix: \"team-a:\"\n"))->token_store.key_prefix == "team-a:");
}

TEST_CASE("config: the redis backend needs redis_url and encryption_key_file") {
  TempDir dir;
  const std::string key_file = dir.write("store.key", to_hex(store_key(1)) + "\n");
  CHECK_CONFIG_ERROR(with_token_store("  backend: redis\n  encryption_key_file: " + key_file + "\n"), "test.yaml:4:3: ",
                     "token_store: the redis backend needs redis_url");
  CHECK_CONFIG_ERROR(with_token_store("  backend: redis\n  redis_url: \"redis://127.0.0.1\"\n"), "test.yaml:4:3: ",
                     "token_store: the redis backend needs encryption_key_file (shared by every replica)");
  CHECK_CONFIG_ERROR(with_token_store("  backend: redis\n  redis_url: \"redis://127.0.0.1\"\n  encryption_key_file:\n"),
                     "test.yaml:4:3: ", "token_store: the redis backend needs encryption_key_file");
  const ConfigPtr config = load(with_token_store("  backend: redis\n  redis_url: \"redis://:pw@cache:6380/3\"\n"
                                                 "  encryption_key_file: " + key_file + "\n  key_prefix: \"gw1:\"\n"
                                                 "  connect_link_ttl_s: 120\n"));
  const TokenStoreConfig& store = config->token_store;
  CHECK(store.backend == StoreBackendType::Redis);
  CHECK(store.redis_host == "cache");
  CHECK(store.redis_port == 6380);
  CHECK(store.redis_db == 3);
  CHECK(store.redis_password == "pw");
  CHECK(store.key_prefix == "gw1:");
  CHECK(store.encryption_keys == std::vector<std::string>{store_key(1)});
  CHECK(store.connect_link_ttl_s == 120);
}

TEST_CASE("config: token_store redis_url") {
  // Parsed whenever it is given (here with the memory backend); the value starts at 4:14.
  const auto parsed = [](const std::string& url) {
    return load(with_token_store("  redis_url: \"" + url + "\"\n"))->token_store;
  };
  {
    const TokenStoreConfig store = parsed("redis://127.0.0.1");
    CHECK(store.redis_host == "127.0.0.1");
    CHECK(store.redis_port == 6379);
    CHECK(store.redis_db == 0);
    CHECK(store.redis_password.empty());
  }
  {
    const TokenStoreConfig store = parsed("redis://cache.internal:6380/2");
    CHECK(store.redis_host == "cache.internal");
    CHECK(store.redis_port == 6380);
    CHECK(store.redis_db == 2);
    CHECK(store.redis_password.empty());
  }
  {
    const TokenStoreConfig store = parsed("redis://:s3cret@cache.internal:6380/15");
    CHECK(store.redis_host == "cache.internal");
    CHECK(store.redis_port == 6380);
    CHECK(store.redis_db == 15);
    CHECK(store.redis_password == "s3cret");
  }
  CHECK(parsed("redis://app:s3cret@h").redis_username == "app");        // Redis 6 ACL user
  CHECK(parsed("redis://app:s3cret@h").redis_password == "s3cret");
  CHECK(parsed("redis://:p%40ss%3Aw@h").redis_password == "p@ss:w");      // percent-decoded
  CHECK(parsed("redis://:s3cret@h").redis_username.empty());
  CHECK(parsed("redis://:p@ss@h").redis_password == "p@ss");             // the last '@' ends the user info
  CHECK_CONFIG_ERROR(with_token_store("  redis_url: \"redis://app@h\"\n"), "test.yaml:4:14: ",
                     "token_store.redis_url: a Redis user needs a password");
  CHECK_CONFIG_ERROR(with_token_store("  redis_url: \"redis://:bad%zz@h\"\n"), "test.yaml:4:14: ",
                     "token_store.redis_url: the user or password of the Redis URL is badly percent-encoded");
  CHECK(parsed("redis://:p@ss@h").redis_host == "h");
  CHECK(parsed("redis://h/").redis_db == 0);
  CHECK(parsed("redis://h/99").redis_db == 99);
  {
    const TokenStoreConfig store = parsed("redis://[::1]:7000/1");
    CHECK(store.redis_host == "::1");
    CHECK(store.redis_port == 7000);
    CHECK(store.redis_db == 1);
  }
  for (const char* url : {"http://h:6379", "rediss://h", "h:6379", "REDIS://h", "unix:///run/redis.sock"}) {
    CAPTURE(url);
    CHECK_CONFIG_ERROR(with_token_store("  redis_url: \"" + std::string(url) + "\"\n"), "test.yaml:4:14: ",
                       "token_store.redis_url: expected redis://[[user]:password@]host[:port][/db]");
  }
  for (const char* url : {"redis://h/x", "redis://h/100", "redis://h/-1", "redis://h/1/2", "redis://h/ 1"}) {
    CAPTURE(url);
    CHECK_CONFIG_ERROR(with_token_store("  redis_url: \"" + std::string(url) + "\"\n"), "test.yaml:4:14: ",
                       "token_store.redis_url: the database after '/' must be a number from 0 to 99");
  }
  for (const char* url : {"redis://", "redis://h:0", "redis://h:99999", "redis://h:", "redis://::1:6379", "redis://:pw@"}) {
    CAPTURE(url);
    CHECK_CONFIG_ERROR(with_token_store("  redis_url: \"" + std::string(url) + "\"\n"), "test.yaml:4:14: ",
                       "token_store.redis_url: invalid Redis URL: ");
  }
  CHECK_CONFIG_ERROR(with_token_store("  redis_url: \"\"\n"), "test.yaml:4:14: ", "token_store.redis_url: must not be empty");
  // The password is a secret: errors do not echo the URL.
  const std::string message = error_for(with_token_store("  redis_url: \"redis://:hunter2@h/x\"\n"));
  CHECK(contains(message, "the database after '/'"));
  CHECK_FALSE(contains(message, "hunter2"));
}

TEST_CASE("config: token_store encryption key files: raw, hex or base64, all the same 32 bytes") {
  TempDir dir;
  const std::string key = store_key(7);
  REQUIRE(key.size() == 32);
  const std::vector<std::string> files = {
      dir.write("raw.key", key),
      dir.write("hex.key", to_hex(key) + "\n"),
      dir.write("hex-upper.key", to_hex(key, true)),
      dir.write("hex-crlf.key", to_hex(key) + "\r\n"),
      dir.write("base64.key", to_base64(key) + "\n"),  // as `openssl rand -base64 32 > file` writes it
      dir.write("base64-bare.key", to_base64(key)),
  };
  for (const std::string& file : files) {
    CAPTURE(file);
    const ConfigPtr config = load(with_token_store("  encryption_key_file: " + file + "\n"));
    REQUIRE(config->token_store.encryption_keys.size() == 1);
    CHECK(config->token_store.encryption_keys[0] == key);
  }
}

TEST_CASE("config: token_store encryption key files of the wrong size or missing are rejected") {
  TempDir dir;
  const std::string key = store_key(9);
  const std::vector<std::string> wrong = {
      dir.write("raw31.key", key.substr(0, 31)),
      dir.write("raw33.key", key + "x"),
      dir.write("hex62.key", to_hex(key).substr(0, 62) + "\n"),
      dir.write("hex66.key", to_hex(key) + "ab\n"),
      dir.write("hex-bad.key", "zz" + to_hex(key).substr(2) + "\n"),
      dir.write("base64-16.key", to_base64(key.substr(0, 16)) + "\n"),
      dir.write("base64-33.key", to_base64(key + "x") + "\n"),
      dir.write("text.key", "correct horse battery staple\n"),
  };
  for (const std::string& file : wrong) {
    CAPTURE(file);
    const std::string message = error_for(with_token_store("  encryption_key_file: " + file + "\n"));
    INFO("message: " << message);
    CHECK(message.rfind("test.yaml:4:24: ", 0) == 0);
    CHECK(contains(message, "token_store.encryption_key_file: a store key file must hold 32 bytes: raw, as 64 hex "
                            "digits or in base64"));
    CHECK_FALSE(contains(message, "horse"));  // the content is never echoed
    CHECK_FALSE(contains(message, to_hex(key).substr(0, 16)));
  }
  const std::string missing = dir.path("no-such.key");
  const std::string message = error_for(with_token_store("  encryption_key_file: " + missing + "\n"));
  INFO("message: " << message);
  CHECK(message.rfind("test.yaml:4:24: ", 0) == 0);
  CHECK(contains(message, "token_store.encryption_key_file: "));
  CHECK(contains(message, "'" + missing + "'"));
  CHECK(contains(message, "No such file or directory"));
  const std::string empty = dir.write("empty.key", "");
  CHECK_CONFIG_ERROR(with_token_store("  encryption_key_file: " + empty + "\n"), "test.yaml:4:24: ",
                     "token_store.encryption_key_file: the file '" + empty + "' is empty");
  // 32 characters of text are a shorter key written as text, not 256 random bits.
  for (const char* text : {"0123456789abcdef0123456789abcdef", "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"}) {
    const std::string weak = dir.write("weak.key", text);
    CHECK_CONFIG_ERROR(with_token_store("  encryption_key_file: " + weak + "\n"), "test.yaml:4:24: ",
                       "token_store.encryption_key_file: the key file holds 32 characters of text, not 32 random bytes");
  }
  CHECK_CONFIG_ERROR(with_token_store("  encryption_key_file: \"\"\n"), "test.yaml:4:24: ",
                     "token_store.encryption_key_file: must not be empty");
}

TEST_CASE("config: token_store previous_encryption_key_files open old entries after the sealing key") {
  TempDir dir;
  const std::string current = store_key(1);
  const std::string old = store_key(2);
  const std::string older = store_key(3);
  const std::string current_file = dir.write("current.key", to_base64(current) + "\n");
  const std::string old_file = dir.write("old.key", old);
  const std::string older_file = dir.write("older.key", to_hex(older) + "\n");
  const ConfigPtr config = load(with_token_store("  encryption_key_file: " + current_file +
                                                 "\n  previous_encryption_key_files: [" + old_file + ", " + older_file +
                                                 "]\n"));
  CHECK(config->token_store.encryption_keys == std::vector<std::string>{current, old, older});
  CHECK(load(with_token_store("  encryption_key_file: " + current_file + "\n  previous_encryption_key_files: []\n"))
            ->token_store.encryption_keys == std::vector<std::string>{current});

  CHECK_CONFIG_ERROR(with_token_store("  previous_encryption_key_files: [" + old_file + "]\n"), "test.yaml:4:34: ",
                     "token_store.previous_encryption_key_files: previous keys only open old entries: set "
                     "encryption_key_file for new writes");
  CHECK_CONFIG_ERROR(with_token_store("  encryption_key_file:\n  previous_encryption_key_files: [" + old_file + "]\n"),
                     "test.yaml:5:34: ", "token_store.previous_encryption_key_files: previous keys only open old entries");
  const std::string bad = dir.write("bad.key", "short\n");
  CHECK_CONFIG_ERROR(with_token_store("  encryption_key_file: " + current_file + "\n  previous_encryption_key_files: [" +
                                      old_file + ", " + bad + "]\n"),
                     "test.yaml:5:", "token_store.previous_encryption_key_files[1]: a store key file must hold 32 bytes");
  CHECK_CONFIG_ERROR(with_token_store("  encryption_key_file: " + current_file + "\n  previous_encryption_key_files: " +
                                      old_file + "\n"),
                     "test.yaml:5:34: ", "token_store.previous_encryption_key_files: expected a list of key file paths");
}

TEST_CASE("config: token_store connect_link_ttl_s is 30 to 3600 seconds") {
  CHECK(load(with_token_store("  connect_link_ttl_s: 30\n"))->token_store.connect_link_ttl_s == 30);
  CHECK(load(with_token_store("  connect_link_ttl_s: 3600\n"))->token_store.connect_link_ttl_s == 3600);
  CHECK_CONFIG_ERROR(with_token_store("  connect_link_ttl_s: 29\n"), "test.yaml:4:23: ",
                     "token_store.connect_link_ttl_s: expected an integer of at least 30 (got 29)");
  CHECK_CONFIG_ERROR(with_token_store("  connect_link_ttl_s: 0\n"), "test.yaml:4:23: ",
                     "token_store.connect_link_ttl_s: expected an integer of at least 30 (got 0)");
  CHECK_CONFIG_ERROR(with_token_store("  connect_link_ttl_s: 3601\n"), "test.yaml:4:23: ",
                     "token_store.connect_link_ttl_s: expected at most 3600 (got 3601)");
  CHECK_CONFIG_ERROR(with_token_store("  connect_link_ttl_s: \"600\"\n"), "test.yaml:4:23: ",
                     "token_store.connect_link_ttl_s: expected an integer of at least 30 (got a quoted string)");
}

TEST_CASE("config: static credential value_file") {
  TempDir dir;
  const auto value_of = [](const std::string& path) {
    return load(with_credentials("  x:\n    type: static\n    value_file: " + path + "\n"))->credentials.at("x").value;
  };
  CHECK(value_of(dir.write("lf", "Bearer abc\n")) == "Bearer abc");  // one trailing newline is stripped
  CHECK(value_of(dir.write("crlf", "Bearer abc\r\n")) == "Bearer abc");
  CHECK(value_of(dir.write("bare", "k3y: \"x\"")) == "k3y: \"x\"");
  CHECK(value_of(dir.write("tab", "Bearer a\tb\n")) == "Bearer a\tb");
  {
    const std::string path = dir.write("hdr", "s3cret\n");
    const ConfigPtr config =
        load(with_credentials("  x:\n    type: static\n    header: X-Api-Key\n    value_file: " + path + "\n"));
    CHECK(config->credentials.at("x").value == "s3cret");
    CHECK(config->credentials.at("x").header == "X-Api-Key");
  }
  // value_file is on line 25, column 17.
  for (const std::string& content : {std::string("a\nb\n"), std::string("a\n\n"), std::string("a\rb"),
                                     std::string("a\0b", 3), std::string("a\x7f")}) {
    CAPTURE(content);
    const std::string path = dir.write("ctl", content);
    const std::string message = error_for(with_credentials("  x:\n    type: static\n    value_file: " + path + "\n"));
    INFO("message: " << message);
    CHECK(message.rfind("test.yaml:25:17: ", 0) == 0);
    CHECK(contains(message, "credentials.x.value_file: the file holds control characters"));
  }
  const std::string missing = dir.path("missing");
  CHECK_CONFIG_ERROR(with_credentials("  x:\n    type: static\n    value_file: " + missing + "\n"), "test.yaml:25:17: ",
                     "credentials.x.value_file: cannot read");
  CHECK(contains(error_for(with_credentials("  x:\n    type: static\n    value_file: " + missing + "\n")), missing));
  const std::string empty = dir.write("empty", "");
  CHECK_CONFIG_ERROR(with_credentials("  x:\n    type: static\n    value_file: " + empty + "\n"), "test.yaml:25:17: ",
                     "credentials.x.value_file: the file '" + empty + "' is empty");
  const std::string good = dir.write("good", "k\n");
  CHECK_CONFIG_ERROR(with_credentials("  x:\n    type: static\n    value: k\n    value_file: " + good + "\n"),
                     "test.yaml:26:17: ", "credentials.x.value_file: give either 'value' or 'value_file', not both");
  CHECK_CONFIG_ERROR(with_credentials("  x:\n    type: static\n    value_file: " + good + "\n    value: k\n"),
                     "test.yaml:25:17: ", "credentials.x.value_file: give either 'value' or 'value_file', not both");
}

// ---- private_key_jwt ----

namespace {

// A fresh private key as PEM: "rsa" (`bits`) or an EC key on `curve`.
std::string pem_private_key(const char* kind, int bits_or_curve_nid) {
  EVP_PKEY* key = std::string_view(kind) == "rsa" ? EVP_RSA_gen(static_cast<unsigned>(bits_or_curve_nid))
                                                  : EVP_EC_gen(OBJ_nid2sn(bits_or_curve_nid));
  REQUIRE(key != nullptr);
  BIO* bio = BIO_new(BIO_s_mem());
  REQUIRE(PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr) == 1);
  char* data = nullptr;
  const long length = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<std::size_t>(length));
  BIO_free(bio);
  EVP_PKEY_free(key);
  return pem;
}

// One server `signer` whose client has `client_body` (YAML flow map entries), and credential
// `x` on line 6 of the credentials section.
std::string with_signing_client(const std::string& client_body, const std::string& auth_method = "private_key_jwt") {
  return with_route(kRouteBody) + "authorization_servers:\n  signer:\n    issuer: \"https://as.example.com\"\n    client: {id: gw" +
         client_body + "}\ncredentials:\n  x: {type: client_credentials, server: signer, auth_method: " + auth_method + "}\n";
}

}  // namespace

TEST_CASE("config: private_key_jwt clients sign with an RSA (2048+) or P-256 key read at load") {
  TempDir dir;
  const std::string rsa = dir.write("rsa.pem", pem_private_key("rsa", 2048));
  const std::string ec = dir.write("ec.pem", pem_private_key("ec", NID_X9_62_prime256v1));
  for (const std::string& file : {rsa, ec}) {
    CAPTURE(file);
    const ConfigPtr config = load(with_signing_client(", private_key_file: " + file + ", key_id: k1"));
    const auto& server = config->authorization_servers.at("signer");
    CHECK(server.client_private_key_pem.find("PRIVATE KEY") != std::string::npos);
    CHECK(server.client_key_id == "k1");
    CHECK(server.client_secret.empty());
    CHECK(config->credentials.at("x").auth_method == ClientAuthMethod::PrivateKeyJwt);
  }
  // Without the key, or with a key that cannot sign RS256/ES256.
  CHECK_CONFIG_ERROR(with_signing_client(", secret: s"), "test.yaml:13:41: ",
                     "credentials.x.server: authorization server 'signer' needs client.id and client.private_key_file");
  const std::string small = dir.write("small.pem", pem_private_key("rsa", 1024));
  const std::string p384 = dir.write("p384.pem", pem_private_key("ec", NID_secp384r1));
  const std::string junk = dir.write("junk.pem", "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n");
  for (const auto& [file, problem] : std::vector<std::pair<std::string, std::string>>{
           {small, "needs at least 2048 bits"}, {p384, "must be on P-256"}, {junk, "not a PEM private key"}}) {
    CAPTURE(file);
    const std::string message = error_for(with_signing_client(", private_key_file: " + file));
    CHECK(contains(message, "authorization_servers.signer.client.private_key_file: "));
    CHECK(contains(message, problem));
    CHECK_FALSE(contains(message, "not a key\n"));
  }
  CHECK(contains(error_for(with_signing_client(", private_key_file: " + dir.path("none.pem"))), "No such file or directory"));
  CHECK(contains(error_for(with_signing_client(", secret: s, key_id: k1", "client_secret_basic")),
                 "key_id names the key of private_key_file, which is not set"));
  // A secret-based method still needs the secret, even when a key is there.
  CHECK(contains(error_for(with_signing_client(", private_key_file: " + rsa, "client_secret_basic")),
                 "needs client.id and client.secret"));
}

TEST_CASE("config: session_envelope keys") {
  TempDir dir;
  const std::string current = dir.write("session.key", to_hex(store_key(3)) + "\n");
  const std::string old = dir.write("old.key", to_base64(store_key(4)) + "\n");
  CHECK(load(with_route(kRouteBody))->session_envelope.keys.empty());
  const ConfigPtr config = load(with_sections("session_envelope:\n  key_file: " + current + "\n  key_id: k2\n"
                                              "  previous_keys:\n    - {key_file: " + old + ", key_id: k1}\n"));
  const auto& keys = config->session_envelope.keys;
  REQUIRE(keys.size() == 2);
  CHECK(keys[0].id == "k2");
  CHECK(keys[0].bytes == store_key(3));
  CHECK(keys[1].id == "k1");
  CHECK(keys[1].bytes == store_key(4));
  CHECK_CONFIG_ERROR(with_sections("session_envelope:\n  key_file: " + current + "\n"), "test.yaml:4:3: ",
                     "session_envelope: missing required key 'key_id'");
  CHECK_CONFIG_ERROR(with_sections("session_envelope:\n  key_id: k1\n"), "test.yaml:4:3: ",
                     "session_envelope: missing required key 'key_file'");
  CHECK_CONFIG_ERROR(with_sections("session_envelope:\n  key_file: " + current + "\n  key_id: \"k.1\"\n"), "test.yaml:5:11: ",
                     "session_envelope.key_id: a key id has at most 32 letters, digits, '-' and '_'");
  CHECK_CONFIG_ERROR(with_sections("session_envelope:\n  key_file: " + current + "\n  key_id: k1\n  previous_keys:\n"
                                   "    - {key_file: " + old + ", key_id: k1}\n"),
                     "test.yaml:7:7: ", "session_envelope.previous_keys[0]: key id 'k1' is used twice");
  CHECK_CONFIG_ERROR(with_sections("session_envelope:\n  key_file: " + dir.write("short.key", "abc") + "\n  key_id: k1\n"),
                     "test.yaml:4:13: ", "session_envelope.key_file: a store key file must hold 32 bytes");
  CHECK_CONFIG_ERROR(with_sections("session_envelope:\n  key_file: " + current + "\n  key_id: k1\n  rotate: true\n"),
                     "test.yaml:6:3: ", "unknown key 'rotate' in session_envelope");
}
