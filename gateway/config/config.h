// Immutable configuration snapshot. Built once by the loader, shared read-only
// by every worker through a ConfigPtr; a reload builds a new snapshot.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace mcpgate::config {

// A config problem, positioned at the node that caused it ("file:line:col: message").
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ListenAddress {
  std::string host;  // IPv6 literal without brackets ("::1"), IPv4 literal or name
  uint16_t port = 0;
  std::string to_string() const;  // "127.0.0.1:8080" or "[::1]:8080"
};

// host:port or [v6]:port; throws std::invalid_argument with a short reason.
ListenAddress parse_listen_address(const std::string& text);

struct UpstreamUrl {
  std::string scheme;  // "http" or "https"
  std::string host;    // without brackets
  uint16_t port = 0;   // explicit or the scheme's default
  std::string path;    // begins with '/', no query
  std::string origin() const;  // "http://host:port" (brackets restored for IPv6)
};

// Absolute http(s) URL with no query/fragment/userinfo; throws std::invalid_argument.
UpstreamUrl parse_upstream_url(const std::string& text);

struct TlsConfig {
  std::string cert_file;
  std::string key_file;
};

struct Limits {
  std::size_t max_body_bytes = 1048576;
  std::size_t max_header_bytes = 16384;
  std::size_t max_connections = 10000;
  uint32_t upstream_timeout_ms = 30000;          // until the upstream's response head
  uint32_t upstream_connect_timeout_ms = 5000;   // TCP/TLS connect to the upstream
  uint32_t idle_timeout_ms = 60000;              // keep-alive connection with no request
  uint32_t request_timeout_ms = 30000;           // to receive one whole request
  std::size_t stream_buffer_bytes = 262144;      // per-connection output high-water mark
  uint32_t endpoint_skip_ms = 10000;             // an endpoint that refused a connection is left out this long
};

struct ServerConfig {
  ListenAddress listen;
  std::string public_url;  // without trailing slash
  std::optional<TlsConfig> tls;
  unsigned workers = 0;  // 0 in YAML is rejected; default = hardware cores
  Limits limits;
  uint32_t shutdown_grace_ms = 10000;
};

struct AdminConfig {
  ListenAddress listen;
  std::string token;  // empty: /metrics open; set: /metrics needs "Authorization: Bearer <token>"
};

enum class LogFormat { Json, Text };

struct LogConfig {
  std::string level = "info";  // trace|debug|info|warn|error
  LogFormat format = LogFormat::Json;
  bool access_log = true;
  bool audit_log = true;  // one record per authorization decision, logger "audit"
};

enum class Transport { StreamableHttp, Sse };
enum class AuthType { None, Jwt, Userinfo, Introspection, Plugin };

enum class AuthServerType { Oidc, OAuth };
enum class Discovery { Eager, OnDemand, Off };

// An OAuth 2.1 / OIDC authorization server the gateway trusts (authorization_servers.<name>).
struct AuthorizationServerConfig {
  std::string name;
  std::string issuer;  // exactly as the server writes it in `iss`
  AuthServerType type = AuthServerType::Oidc;
  Discovery discovery = Discovery::OnDemand;
  std::string metadata_url;             // explicit well-known URL; empty: derived from issuer and type
  std::string metadata_json;            // manual metadata (compact JSON object); set: nothing is fetched
  std::string metadata_overrides_json;  // compact JSON object merged over fetched metadata; may be empty
  std::string client_id;                // the gateway's own client (introspection, grants, connect flow)
  std::string client_secret;
  std::string client_private_key_pem;   // for private_key_jwt (RFC 7523): an RSA or P-256 key, PEM
  std::string client_key_id;            // its `kid` in the client's JWK set; empty: none sent
};

enum class CredentialType { None, Passthrough, Static, ClientCredentials, TokenExchange, Delegated };
enum class ClientAuthMethod { ClientSecretBasic, ClientSecretPost, PrivateKeyJwt };

// What the gateway injects towards an upstream (credentials.<name>).
struct CredentialConfig {
  std::string name;
  CredentialType type = CredentialType::None;
  std::string header = "Authorization";  // where the credential goes
  std::string value;                     // static: the header value (written, or read from value_file)
  // client_credentials, token_exchange, delegated: the authorization server that issues the token
  // (a key of authorization_servers; its client is the gateway's own there).
  std::string server;
  std::vector<std::string> scopes;       // requested scope
  std::string resource;                  // RFC 8707 resource, optional
  std::string audience;                  // audience parameter (client_credentials, token_exchange), optional
  ClientAuthMethod auth_method = ClientAuthMethod::ClientSecretBasic;
  uint32_t refresh_before_expiry_s = 300;  // a token this close to expiry is replaced before use
};

// Scopes one JSON-RPC target needs (routes[].tools.<name>, routes[].methods.<method>);
// for tools also the credential that tool's calls carry upstream.
struct ScopeRule {
  std::vector<std::string> scopes;
  std::optional<std::string> credential;  // tools only: a credentials key or "none"; unset: the route's
};

struct RouteAuth {
  AuthType type = AuthType::None;
  std::string server;                         // key of authorization_servers (token-validating types)
  std::string plugin;                         // type plugin: the plugins[].name whose verify_token decides
  std::vector<std::string> audiences;         // default: the route's resource
  std::vector<std::string> required_scopes;   // for every request on the route
  std::vector<std::string> scopes_supported;  // advertised in RFC 9728 metadata; default: all scopes named
  std::vector<std::string> algorithms{"RS256", "ES256", "PS256"};
  uint32_t leeway_s = 60;
  uint32_t cache_ttl_s = 60;
};

// A token bucket (routes[].rate_limits[]): `burst` tokens at most, one back every
// `refill_interval_ms`; each counted message takes one.
enum class RateLimitKey { Route, Subject, ClientId, Tool };

struct RateLimitConfig {
  std::string name;        // metric label and store key part; unique within the route
  RateLimitKey per = RateLimitKey::Subject;
  std::string tool;        // set: only tools/call of this tool counts
  uint32_t burst = 1;      // bucket capacity
  double refill_interval_ms = 1000;  // period / count of the `rate`
};

// How a route with several upstream endpoints picks one for a request that no session ties.
enum class Balancing { RoundRobin, LeastOutstanding };

struct RouteConfig {
  std::string name;
  std::string path;  // begins with '/', no trailing '/' unless it is "/"
  std::vector<UpstreamUrl> upstreams;  // one or more endpoints, all distinct; legacy SSE: exactly one
  Balancing balancing = Balancing::RoundRobin;
  Transport transport = Transport::StreamableHttp;
  std::string resource;       // default: public_url + path
  std::string resource_name;  // default: name
  std::vector<std::string> allowed_origins;  // empty: only public_url's origin; "*": any
  std::string resource_documentation;        // optional URL for RFC 9728 metadata
  RouteAuth auth;
  std::map<std::string, ScopeRule, std::less<>> tools;    // tools/call params.name -> scopes
  std::map<std::string, ScopeRule, std::less<>> prompts;  // prompts/get params.name -> scopes
  std::map<std::string, ScopeRule, std::less<>> resources;  // resources/read params.uri -> scopes
  std::map<std::string, ScopeRule, std::less<>> methods;  // JSON-RPC method -> scopes
  bool filter_tools_list = false;
  bool forward_identity = false;
  std::string upstream_credential = "none";  // a credentials key, or "none"
  std::vector<std::string> policy_plugins;   // plugins[].name, their authorize hooks in order
  std::vector<std::string> request_plugins;  // plugins[].name, their on_upstream_request hooks in order
  std::vector<RateLimitConfig> rate_limits;
};

// A plugin shared object (plugins[]): loaded at start and on each reload.
struct PluginConfig {
  std::string name;
  std::string path;         // absolute (relative paths are resolved against the config file's directory)
  std::string config_json;  // its `config` map as a compact JSON object; "{}" when absent
};

enum class StoreBackendType { Memory, Redis };

// Where per-user tokens and connect-flow records live (token_store).
struct TokenStoreConfig {
  StoreBackendType backend = StoreBackendType::Memory;
  std::string redis_host = "127.0.0.1";
  uint16_t redis_port = 6379;
  unsigned redis_db = 0;
  std::string redis_username;  // from redis://user:password@host (Redis 6 ACL); empty: the default user
  std::string redis_password;  // from redis://[user]:password@host
  std::string key_prefix = "mcpgate:";
  // AES-256 keys (32 bytes each): the first seals new writes, all of them open. Empty: the
  // memory backend makes a random key at start (its tokens die with the process anyway).
  std::vector<std::string> encryption_keys;
  uint32_t connect_link_ttl_s = 600;  // how long a connect link handed to a caller stays usable
};

// The keys sealing 2025-era session ids on multi-endpoint routes (session_envelope). Empty:
// not configured; the gateway seals under a key made at start.
struct SessionEnvelopeConfig {
  struct Key {
    std::string id;     // key_id: written in clear in front of each envelope
    std::string bytes;  // 32 bytes
  };
  std::vector<Key> keys;  // the sealing key first, then previous ones (open only)
};

struct Config {
  std::string source_path;
  ServerConfig server;
  AdminConfig admin;
  LogConfig log;
  std::map<std::string, AuthorizationServerConfig> authorization_servers;
  std::map<std::string, CredentialConfig> credentials;
  TokenStoreConfig token_store;
  SessionEnvelopeConfig session_envelope;
  std::vector<PluginConfig> plugins;
  std::vector<RouteConfig> routes;
};

using ConfigPtr = std::shared_ptr<const Config>;

// The directory part of a config file's path ("." for a bare name): relative paths in the
// config (plugin paths, and plugins' own files) are taken from there.
std::string directory_of(const std::string& path);

// Reads and validates a config file. Throws ConfigError naming the key and its position.
ConfigPtr load_config_file(const std::string& path);
// Same, from text; `source_name` is used in error positions.
ConfigPtr load_config_text(const std::string& text, const std::string& source_name);

}  // namespace mcpgate::config
