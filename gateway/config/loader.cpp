// The YAML config loader: strict keys, typed values, ${ENV} substitution, and a
// "file:line:col:" position on every error (as h2o's configurator points at the node).
#include "config/config.h"
#include "auth/identity.h"
#include "http/message.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <jansson.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <map>
#include <sstream>
#include <memory>
#include <string_view>
#include <thread>
#include <utility>

namespace mcpgate::config {
namespace {

constexpr std::string_view kDefaultAdminListen = "127.0.0.1:9090";
constexpr unsigned kMaxWorkers = 256;
constexpr uint32_t kMaxLeewayS = 600;

using JsonPtr = std::unique_ptr<json_t, decltype(&json_decref)>;
using AuthorizationServers = std::map<std::string, AuthorizationServerConfig>;
using Credentials = std::map<std::string, CredentialConfig>;

// Written where a credential is referenced: send nothing (and the reserved credential name).
constexpr std::string_view kNoCredential = "none";
constexpr uint32_t kMaxRefreshBeforeExpiryS = 86400;

// A value in the document, with the key path that names it in errors.
struct Field {
  YAML::Node node;
  std::string path;     // "server.limits.max_body_bytes", "routes[0].auth"
  YAML::Mark key_mark;  // yaml-cpp marks a null value at the next token, so nulls report here
};

std::string child_path(const std::string& parent, std::string_view key) {
  return parent.empty() ? std::string(key) : parent + "." + std::string(key);
}

YAML::Mark mark_of(const Field& field) {
  const bool has_own_mark = field.node.IsDefined() && !field.node.IsNull();
  return has_own_mark ? field.node.Mark() : field.key_mark;
}

// "a map", "a list", ...: what was found where something else was expected.
std::string kind_of(const YAML::Node& node) {
  if (node.IsMap()) return "a map";
  if (node.IsSequence()) return "a list";
  if (node.IsScalar()) return "a scalar";
  return "nothing";
}

// A plain (unquoted) scalar, or one tagged explicitly; only these may be integers or booleans.
bool is_unquoted(const YAML::Node& node, std::string_view yaml_type) {
  return node.Tag() == "?" || node.Tag() == std::string("tag:yaml.org,2002:") + std::string(yaml_type);
}

bool is_env_name(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name.front()))) return false;
  return std::all_of(name.begin(), name.end(),
                     [](unsigned char c) { return std::isalnum(c) || c == '_'; });
}

std::string describe_integer(uint64_t min) {
  if (min == 0) return "a non-negative integer";
  if (min == 1) return "a positive integer";
  return "an integer of at least " + std::to_string(min);
}

std::string join(std::initializer_list<std::string_view> words) {
  std::string out;
  for (std::string_view word : words) out += (out.empty() ? "" : ", ") + std::string(word);
  return out;
}

// The source being read; turns every problem into a positioned ConfigError.
class Document {
 public:
  explicit Document(std::string source) : source_(std::move(source)) {}

  // Where the text came from (a file path, or a name for text given directly).
  const std::string& source() const { return source_; }

  [[noreturn]] void fail(const YAML::Mark& mark, const std::string& message) const {
    // yaml-cpp counts from 0; editors count from 1.
    const int line = mark.line < 0 ? 1 : mark.line + 1;
    const int column = mark.column < 0 ? 1 : mark.column + 1;
    throw ConfigError(source_ + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " +
                      message);
  }

  // Fails at the field's value, prefixing its key path.
  [[noreturn]] void fail(const Field& field, const std::string& message) const {
    fail(mark_of(field), field.path.empty() ? message : field.path + ": " + message);
  }

  // The scalar's text with ${ENV} references substituted; otherwise fails with `expected`.
  std::string text(const Field& field, const std::string& expected) const {
    if (!field.node.IsScalar()) fail(field, expected + " (got " + kind_of(field.node) + ")");
    return expand_env(field, field.node.Scalar());
  }

  std::string string(const Field& field) const { return text(field, "expected a string"); }

  std::string non_empty_string(const Field& field) const {
    std::string value = string(field);
    if (value.empty()) fail(field, "must not be empty");
    return value;
  }

  uint64_t integer(const Field& field, uint64_t min, uint64_t max) const {
    const std::string expected = "expected " + describe_integer(min);
    const std::string value = text(field, expected);
    if (!is_unquoted(field.node, "int")) fail(field, expected + " (got a quoted string)");
    uint64_t number = 0;
    const char* end = value.data() + value.size();
    const auto [stop, error] = std::from_chars(value.data(), end, number);
    if (value.empty() || stop != end || error == std::errc::invalid_argument) {
      fail(field, expected + " (got '" + value + "')");
    }
    if (error == std::errc::result_out_of_range || number > max) {
      fail(field, "expected at most " + std::to_string(max) + " (got " + value + ")");
    }
    if (number < min) fail(field, expected + " (got " + value + ")");
    return number;
  }

  bool boolean(const Field& field) const {
    const std::string expected = "expected true or false";
    const std::string value = text(field, expected);
    // Only true/false: YAML 1.1's yes/no/on/off surprise people ("NO" the country code).
    if (is_unquoted(field.node, "bool") && value == "true") return true;
    if (is_unquoted(field.node, "bool") && value == "false") return false;
    fail(field, expected + " (got '" + value + "')");
  }

  // One of a fixed set of words.
  std::string one_of(const Field& field, std::initializer_list<std::string_view> words) const {
    const std::string expected = "expected one of " + join(words);
    const std::string value = text(field, expected);
    if (std::find(words.begin(), words.end(), value) == words.end()) {
      fail(field, expected + " (got '" + value + "')");
    }
    return value;
  }

 private:
  // Replaces each ${NAME} after YAML parsing, so secrets with YAML special characters stay
  // intact; "$${" is a literal "${".
  std::string expand_env(const Field& field, const std::string& raw) const {
    std::string out;
    for (std::size_t i = 0; i < raw.size();) {
      if (raw.compare(i, 3, "$${") == 0) {
        out += "${";
        i += 3;
      } else if (raw.compare(i, 2, "${") == 0) {
        const std::size_t close = raw.find('}', i + 2);
        if (close == std::string::npos) fail(field, "unterminated '${' (write '$${' for a literal '${')");
        out += env_value(field, raw.substr(i + 2, close - i - 2));
        i = close + 1;
      } else {
        out += raw[i++];
      }
    }
    return out;
  }

  std::string env_value(const Field& field, const std::string& name) const {
    if (!is_env_name(name)) fail(field, "invalid environment variable name '" + name + "' in '${...}'");
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) fail(field, "environment variable '" + name + "' is not set");
    return value;
  }

  std::string source_;
};

// Keys a map accepts, and keys reserved for capabilities not built yet (key, capability).
struct KeyRules {
  std::vector<std::string_view> accepted;
  std::vector<std::pair<std::string_view, std::string_view>> unsupported;
};

// A YAML map being read. A null value counts as an empty map; keys must be unique scalars.
class MapView {
 public:
  MapView(const Document& doc, Field field) : doc_(doc), field_(std::move(field)) {
    if (field_.node.IsNull()) return;
    if (!field_.node.IsMap()) doc_.fail(field_, "expected a map (got " + kind_of(field_.node) + ")");
    for (const auto& item : field_.node) add_entry(item.first, item.second);
  }

  const Document& doc() const { return doc_; }

  // Rejects keys the rules don't accept; `where` completes "unknown key 'x' <where>".
  void check_keys(const KeyRules& rules, const std::string& where) const {
    for (const Entry& entry : entries_) check_key(rules, entry, where);
  }

  std::optional<Field> find(std::string_view key) const {
    for (const Entry& entry : entries_) {
      if (entry.key == key) return Field{entry.value, child_path(field_.path, key), entry.key_node.Mark()};
    }
    return std::nullopt;
  }

  Field require(std::string_view key) const {
    if (auto found = find(key)) return *found;
    doc_.fail(field_, "missing required key '" + std::string(key) + "'");
  }

  // The key's field unless it is absent or null (for keys where null means "not set").
  std::optional<Field> find_set(std::string_view key) const {
    auto found = find(key);
    if (found && found->node.IsNull()) return std::nullopt;
    return found;
  }

  // Every entry as (key, field), in document order.
  std::vector<std::pair<std::string, Field>> items() const {
    std::vector<std::pair<std::string, Field>> out;
    for (const Entry& entry : entries_) {
      out.emplace_back(entry.key, Field{entry.value, child_path(field_.path, entry.key), entry.key_node.Mark()});
    }
    return out;
  }

 private:
  struct Entry {
    std::string key;
    YAML::Node key_node;
    YAML::Node value;
  };

  void add_entry(const YAML::Node& key_node, const YAML::Node& value) {
    if (!key_node.IsScalar()) doc_.fail(key_node.Mark(), "keys must be plain strings" + in_path());
    const std::string& key = key_node.Scalar();
    // yaml-cpp keeps duplicate keys and lookups would silently pick one of them.
    if (find(key)) doc_.fail(key_node.Mark(), "duplicate key '" + key + "'" + in_path());
    entries_.push_back(Entry{key, key_node, value});
  }

  void check_key(const KeyRules& rules, const Entry& entry, const std::string& where) const {
    const auto& accepted = rules.accepted;
    if (std::find(accepted.begin(), accepted.end(), entry.key) != accepted.end()) return;
    const std::string path = child_path(field_.path, entry.key);
    for (const auto& [key, capability] : rules.unsupported) {
      if (key == entry.key) {
        doc_.fail(entry.key_node.Mark(), path + ": not supported yet (" + std::string(capability) + ")");
      }
    }
    doc_.fail(entry.key_node.Mark(), "unknown key '" + entry.key + "' " + where);
  }

  std::string in_path() const { return field_.path.empty() ? " at top level" : " in " + field_.path; }

  const Document& doc_;
  Field field_;
  std::vector<Entry> entries_;
};

template <typename T>
void read_integer(const MapView& map, std::string_view key, T& out, uint64_t min = 1,
                  uint64_t max = std::numeric_limits<T>::max()) {
  if (auto field = map.find(key)) out = static_cast<T>(map.doc().integer(*field, min, max));
}

void read_boolean(const MapView& map, std::string_view key, bool& out) {
  if (auto field = map.find(key)) out = map.doc().boolean(*field);
}

// ---- Lists, names, scopes ----

// The items of a YAML list as fields ("key[0]", ...); null counts as an empty list.
std::vector<Field> list_items(const Document& doc, const Field& field, const std::string& expected) {
  if (field.node.IsNull()) return {};
  if (!field.node.IsSequence()) doc.fail(field, expected + " (got " + kind_of(field.node) + ")");
  std::vector<Field> items;
  for (std::size_t i = 0; i < field.node.size(); ++i) {
    const YAML::Node item = field.node[i];
    items.push_back(Field{item, field.path + "[" + std::to_string(i) + "]", item.Mark()});
  }
  return items;
}

// A list of strings, each read by `read_item`; an item listed twice is an error at the second.
template <typename ReadItem>
std::vector<std::string> read_distinct(const Document& doc, const Field& field, const std::string& expected,
                                       ReadItem read_item) {
  std::vector<std::string> values;
  for (const Field& item : list_items(doc, field, expected)) {
    std::string value = read_item(item);
    if (std::find(values.begin(), values.end(), value) != values.end()) {
      doc.fail(item, "'" + value + "' is listed twice");
    }
    values.push_back(std::move(value));
  }
  return values;
}

// Route and authorization-server names: they appear in logs, metrics and references.
bool is_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '_' || c == '.' || c == '-';
  });
}

const std::string kNameRule = "may contain only letters, digits, '_', '.' and '-'";

std::string read_scope(const Document& doc, const Field& field) {
  const std::string scope = doc.non_empty_string(field);
  if (!auth::is_scope_token(scope)) {
    doc.fail(field, "invalid scope '" + scope + "': a scope is printable ASCII without whitespace, '\"' or '\\'");
  }
  return scope;
}

std::vector<std::string> read_scopes(const Document& doc, const Field& field) {
  return read_distinct(doc, field, "expected a list of scopes",
                       [&doc](const Field& item) { return read_scope(doc, item); });
}

// Appends the scopes not already in `out`, keeping first-seen order.
void add_unique(std::vector<std::string>& out, const std::vector<std::string>& scopes) {
  for (const std::string& scope : scopes) {
    if (std::find(out.begin(), out.end(), scope) == out.end()) out.push_back(scope);
  }
}

// ---- YAML to JSON (authorization-server metadata) ----

// A plain decimal YAML integer as a JSON integer; anything else is nullopt.
std::optional<json_int_t> json_integer_of(const Document& doc, const Field& field, const std::string& value) {
  if (!is_unquoted(field.node, "int") || value.empty()) return std::nullopt;
  long long number = 0;
  const char* end = value.data() + value.size();
  const auto [stop, error] = std::from_chars(value.data(), end, number);
  if (stop != end || error == std::errc::invalid_argument) return std::nullopt;
  if (error == std::errc::result_out_of_range) doc.fail(field, "integer '" + value + "' is out of range");
  return number;
}

// Scalars convert as YAML reads them: integers, true/false, null; every other scalar is a
// string (after ${ENV} substitution). Lists become arrays, maps objects.
JsonPtr to_json(const Document& doc, const Field& field) {
  if (field.node.IsNull()) return JsonPtr(json_null(), &json_decref);
  if (field.node.IsSequence()) {
    JsonPtr array(json_array(), &json_decref);
    for (const Field& item : list_items(doc, field, "expected a list")) {
      json_array_append_new(array.get(), to_json(doc, item).release());
    }
    return array;
  }
  if (field.node.IsMap()) {
    JsonPtr object(json_object(), &json_decref);
    for (const auto& [key, value] : MapView(doc, field).items()) {
      if (json_object_setn_new(object.get(), key.data(), key.size(), to_json(doc, value).release()) != 0) {
        doc.fail(value.key_mark, value.path + ": the key is not valid UTF-8");
      }
    }
    return object;
  }
  const std::string value = doc.text(field, "expected a value");
  if (auto number = json_integer_of(doc, field, value)) return JsonPtr(json_integer(*number), &json_decref);
  if (is_unquoted(field.node, "bool") && (value == "true" || value == "false")) {
    return JsonPtr(json_boolean(value == "true"), &json_decref);
  }
  JsonPtr text(json_stringn(value.data(), value.size()), &json_decref);
  if (!text) doc.fail(field, "not valid UTF-8");
  return text;
}

std::string dump_json(const json_t* value) {
  const std::unique_ptr<char, decltype(&free)> text(json_dumps(value, JSON_COMPACT), &free);
  return text ? std::string(text.get()) : std::string();
}

// A YAML map stored as compact JSON object text.
std::string read_json_object(const Document& doc, const Field& field) {
  if (!field.node.IsMap()) doc.fail(field, "expected a map (got " + kind_of(field.node) + ")");
  return dump_json(to_json(doc, field).get());
}

// The string member `key` of a compact JSON object text, or nullopt.
std::optional<std::string> json_string_member(const std::string& json, const char* key) {
  const JsonPtr object(json_loadb(json.data(), json.size(), 0, nullptr), &json_decref);
  const char* value = json_string_value(json_object_get(object.get(), key));
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

// ---- Addresses and URLs ----

struct HostPort {
  std::string host;  // IPv6 without brackets
  std::optional<uint16_t> port;
};

bool is_ipv6_literal(const std::string& host) {
  in6_addr address{};
  return inet_pton(AF_INET6, host.c_str(), &address) == 1;
}

bool is_host_name(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  return std::all_of(host.begin(), host.end(),
                     [](unsigned char c) { return std::isalnum(c) || c == '-' || c == '.'; });
}

uint16_t parse_port(std::string_view text) {
  unsigned port = 0;
  const auto [stop, error] = std::from_chars(text.data(), text.data() + text.size(), port);
  const bool whole = !text.empty() && stop == text.data() + text.size() && error == std::errc();
  if (!whole || port == 0 || port > 65535) throw std::invalid_argument("port must be a number from 1 to 65535");
  return static_cast<uint16_t>(port);
}

// "host[:port]" or "[v6][:port]".
HostPort parse_host_port(std::string_view text) {
  HostPort out;
  std::string_view after_host;
  if (!text.empty() && text.front() == '[') {
    const std::size_t close = text.find(']');
    if (close == std::string_view::npos) throw std::invalid_argument("missing ']' after the IPv6 address");
    out.host = std::string(text.substr(1, close - 1));
    if (!is_ipv6_literal(out.host)) throw std::invalid_argument("invalid IPv6 address");
    after_host = text.substr(close + 1);
    if (!after_host.empty() && after_host.front() != ':') throw std::invalid_argument("unexpected text after ']'");
  } else {
    const std::size_t colon = text.find(':');
    if (colon != text.rfind(':')) throw std::invalid_argument("write IPv6 addresses in brackets, e.g. [::1]:8080");
    out.host = std::string(text.substr(0, colon));
    if (!is_host_name(out.host)) throw std::invalid_argument("invalid host name");
    after_host = colon == std::string_view::npos ? std::string_view() : text.substr(colon);
  }
  if (!after_host.empty()) out.port = parse_port(after_host.substr(1));
  return out;
}

std::string bracketed(const std::string& host) {
  return host.find(':') == std::string::npos ? host : "[" + host + "]";
}

std::string lowercase(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  return text;
}

uint16_t default_port(const std::string& scheme) { return scheme == "https" ? 443 : 80; }

// The browser's serialization (RFC 6454): lowercase, default port omitted, no path.
std::string normalize_origin(const std::string& text) {
  const std::size_t separator = text.find("://");
  if (separator != std::string::npos && text.find('/', separator + 3) != std::string::npos) {
    throw std::invalid_argument("an origin has no path; write scheme://host[:port]");
  }
  const UpstreamUrl url = parse_upstream_url(text);
  std::string origin = url.scheme + "://" + bracketed(url.host);
  if (url.port != default_port(url.scheme)) origin += ":" + std::to_string(url.port);
  return origin;
}

// ---- Sections ----

std::string read_file(const std::string& path);
std::string read_secret_file_bytes(const Document& doc, const Field& field);

const KeyRules kTopLevelKeys{
    {"server", "admin", "log", "authorization_servers", "credentials", "token_store", "session_envelope", "plugins",
     "routes"},
    {}};
const KeyRules kServerKeys{{"listen", "public_url", "tls", "workers", "limits", "shutdown_grace_ms"}, {}};
const KeyRules kTlsKeys{{"cert_file", "key_file"}, {}};
const KeyRules kLimitsKeys{{"max_body_bytes", "max_header_bytes", "max_connections", "upstream_timeout_ms",
                            "upstream_connect_timeout_ms", "idle_timeout_ms", "request_timeout_ms",
                            "stream_buffer_bytes", "endpoint_skip_ms"},
                           {}};
const KeyRules kAdminKeys{{"listen", "token"}, {}};
const KeyRules kLogKeys{{"level", "format", "access_log", "audit_log"}, {}};
const KeyRules kAuthServerKeys{
    {"issuer", "type", "discovery", "metadata_url", "metadata", "metadata_overrides", "client"}, {}};
const KeyRules kClientKeys{{"id", "secret", "private_key_file", "key_id"}, {}};
const KeyRules kStaticCredentialKeys{{"type", "value", "value_file", "header"}, {}};
const KeyRules kPassthroughCredentialKeys{{"type"}, {}};
const KeyRules kClientCredentialsKeys{
    {"type", "server", "scopes", "resource", "audience", "auth_method", "header", "refresh_before_expiry_s"}, {}};
// delegated: the user's own tokens; the audience parameter belongs to grants the gateway makes for itself.
const KeyRules kDelegatedKeys{
    {"type", "server", "scopes", "resource", "auth_method", "header", "refresh_before_expiry_s"}, {}};
const KeyRules kTokenStoreKeys{
    {"backend", "redis_url", "key_prefix", "encryption_key_file", "previous_encryption_key_files", "connect_link_ttl_s"},
    {}};
const KeyRules kRouteKeys{
    {"name", "path", "upstream", "load_balancing", "transport", "resource", "resource_name", "resource_documentation",
     "allowed_origins", "auth", "tools", "prompts", "resources", "methods", "filter_tools_list",
     "forward_identity", "upstream_credential", "policy_plugins", "request_plugins", "rate_limits"},
    {}};
const KeyRules kPluginKeys{{"name", "path", "config"}, {}};
const KeyRules kRateLimitKeys{{"per", "tool", "rate", "burst", "name"}, {}};
// plugin: the plugin decides on the token; scopes it returns are checked as for the others.
const KeyRules kAuthPluginKeys{{"type", "plugin", "required_scopes", "scopes_supported"}, {}};
const KeyRules kToolRuleKeys{{"scopes", "credential"}, {}};
const KeyRules kMethodRuleKeys{{"scopes"}, {}};
const KeyRules kAuthJwtKeys{
    {"type", "server", "audience", "required_scopes", "scopes_supported", "algorithms", "leeway_s", "cache_ttl_s"},
    {}};
// userinfo / introspection: the IdP validates the token; no signature algorithms.
const KeyRules kAuthLookupKeys{
    {"type", "server", "audience", "required_scopes", "scopes_supported", "leeway_s", "cache_ttl_s"}, {}};
// Keys of the token-validating auth types; auth type 'none' takes no other key.
constexpr std::string_view kTokenAuth = "token-validating auth types; auth type 'none' takes only 'type'";
const KeyRules kAuthNoneKeys{{"type"},
                             {{"server", kTokenAuth},
                              {"plugin", kTokenAuth},
                              {"audience", kTokenAuth},
                              {"required_scopes", kTokenAuth},
                              {"scopes_supported", kTokenAuth},
                              {"algorithms", kTokenAuth},
                              {"leeway_s", kTokenAuth},
                              {"cache_ttl_s", kTokenAuth}}};

ListenAddress read_listen(const Document& doc, const Field& field) {
  const std::string text = doc.string(field);
  try {
    return parse_listen_address(text);
  } catch (const std::invalid_argument& e) {
    doc.fail(field, "invalid address '" + text + "': " + e.what());
  }
}

// An absolute http(s) URL; `text` receives it as written. Errors don't echo the URL: it may
// carry credentials.
UpstreamUrl read_url(const Document& doc, const Field& field, std::string* text = nullptr) {
  const std::string value = doc.string(field);
  if (text != nullptr) *text = value;
  try {
    return parse_upstream_url(value);
  } catch (const std::invalid_argument& e) {
    doc.fail(field, std::string("invalid URL: ") + e.what());
  }
}

TlsConfig read_tls(const Document& doc, const Field& field) {
  const MapView map(doc, field);
  map.check_keys(kTlsKeys, "in server.tls");
  // Only checked for presence: the gateway loads the files and reports its own errors.
  return TlsConfig{doc.non_empty_string(map.require("cert_file")),
                   doc.non_empty_string(map.require("key_file"))};
}

Limits read_limits(const Document& doc, const Field& field) {
  const MapView map(doc, field);
  map.check_keys(kLimitsKeys, "in server.limits");
  Limits limits;
  read_integer(map, "max_body_bytes", limits.max_body_bytes);
  read_integer(map, "max_header_bytes", limits.max_header_bytes, 1024);
  read_integer(map, "max_connections", limits.max_connections);
  read_integer(map, "upstream_timeout_ms", limits.upstream_timeout_ms);
  read_integer(map, "upstream_connect_timeout_ms", limits.upstream_connect_timeout_ms);
  read_integer(map, "idle_timeout_ms", limits.idle_timeout_ms);
  read_integer(map, "request_timeout_ms", limits.request_timeout_ms);
  read_integer(map, "stream_buffer_bytes", limits.stream_buffer_bytes, 4096);
  read_integer(map, "endpoint_skip_ms", limits.endpoint_skip_ms);
  return limits;
}

std::string read_public_url(const Document& doc, const Field& field) {
  std::string url;
  read_url(doc, field, &url);
  while (url.size() > 1 && url.back() == '/') url.pop_back();
  return url;
}

unsigned default_workers() {
  return std::clamp(std::thread::hardware_concurrency(), 1u, kMaxWorkers);
}

ServerConfig read_server(const Document& doc, const Field& field) {
  const MapView map(doc, field);
  map.check_keys(kServerKeys, "in server");
  ServerConfig server;
  server.listen = read_listen(doc, map.require("listen"));
  if (auto tls = map.find("tls")) server.tls = read_tls(doc, *tls);
  if (auto url = map.find("public_url")) {
    server.public_url = read_public_url(doc, *url);
  } else {
    server.public_url = (server.tls ? "https://" : "http://") + server.listen.to_string();
  }
  server.workers = default_workers();
  read_integer(map, "workers", server.workers, 1, kMaxWorkers);
  if (auto limits = map.find("limits")) server.limits = read_limits(doc, *limits);
  read_integer(map, "shutdown_grace_ms", server.shutdown_grace_ms, 0);
  return server;
}

AdminConfig read_admin(const Document& doc, const Field& field) {
  const MapView map(doc, field);
  map.check_keys(kAdminKeys, "in admin");
  AdminConfig admin;
  admin.listen = parse_listen_address(std::string(kDefaultAdminListen));
  if (auto listen = map.find("listen")) admin.listen = read_listen(doc, *listen);
  auto token = map.find("token");
  if (token && !token->node.IsNull()) admin.token = doc.string(*token);
  return admin;
}

LogConfig read_log(const Document& doc, const Field& field) {
  const MapView map(doc, field);
  map.check_keys(kLogKeys, "in log");
  LogConfig log;
  if (auto level = map.find("level")) log.level = doc.one_of(*level, {"trace", "debug", "info", "warn", "error"});
  if (auto format = map.find("format")) {
    log.format = doc.one_of(*format, {"json", "text"}) == "json" ? LogFormat::Json : LogFormat::Text;
  }
  read_boolean(map, "access_log", log.access_log);
  read_boolean(map, "audit_log", log.audit_log);
  return log;
}

bool is_wildcard(const std::string& host) { return host == "0.0.0.0" || host == "::"; }

// Both would bind the same socket: same port, and the same host or a wildcard on either side.
bool listeners_conflict(const ListenAddress& a, const ListenAddress& b) {
  return a.port == b.port && (a.host == b.host || is_wildcard(a.host) || is_wildcard(b.host));
}

void check_listeners(const Document& doc, const MapView& top, const Config& config) {
  if (!listeners_conflict(config.server.listen, config.admin.listen)) return;
  if (auto admin = top.find("admin")) {
    if (auto listen = MapView(doc, *admin).find("listen")) {
      doc.fail(*listen, "must differ from server.listen (" + config.server.listen.to_string() + ")");
    }
  }
  const Field server_listen = MapView(doc, top.require("server")).require("listen");
  doc.fail(server_listen, "conflicts with the default admin.listen " + std::string(kDefaultAdminListen) +
                              "; set admin.listen to another address");
}

// ---- Authorization servers ----

AuthServerType read_auth_server_type(const Document& doc, const Field& field) {
  return doc.one_of(field, {"oidc", "oauth"}) == "oidc" ? AuthServerType::Oidc : AuthServerType::OAuth;
}

Discovery read_discovery(const Document& doc, const Field& field) {
  const std::string value = doc.one_of(field, {"eager", "on_demand", "off"});
  if (value == "eager") return Discovery::Eager;
  return value == "off" ? Discovery::Off : Discovery::OnDemand;
}

// Why a PEM private key cannot sign client assertions (RS256 with RSA of 2048 bits or more,
// ES256 with P-256), or null when it can. Never echoes the key.
const char* client_signing_key_problem(const std::string& pem) {
  const std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
  const std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr, &EVP_PKEY_free);
  if (!key) return "not a PEM private key (unencrypted PKCS#8 or traditional RSA/EC)";
  if (EVP_PKEY_id(key.get()) == EVP_PKEY_RSA) {
    return EVP_PKEY_get_bits(key.get()) >= 2048 ? nullptr : "an RSA key for private_key_jwt needs at least 2048 bits";
  }
  if (EVP_PKEY_id(key.get()) == EVP_PKEY_EC) {
    char curve[64] = {0};
    std::size_t length = 0;
    EVP_PKEY_get_utf8_string_param(key.get(), "group", curve, sizeof curve, &length);
    return std::string_view(curve) == "prime256v1" ? nullptr : "an EC key for private_key_jwt must be on P-256 (ES256)";
  }
  return "private_key_jwt takes an RSA (RS256) or P-256 EC (ES256) key";
}

void read_client(const Document& doc, const Field& field, AuthorizationServerConfig& server) {
  const MapView map(doc, field);
  map.check_keys(kClientKeys, "in " + field.path);
  server.client_id = doc.non_empty_string(map.require("id"));
  if (auto secret = map.find("secret")) server.client_secret = doc.non_empty_string(*secret);
  if (auto key_file = map.find("private_key_file")) {
    server.client_private_key_pem = read_secret_file_bytes(doc, *key_file);
    if (const char* problem = client_signing_key_problem(server.client_private_key_pem)) doc.fail(*key_file, problem);
  }
  if (auto key_id = map.find("key_id")) {
    if (server.client_private_key_pem.empty()) doc.fail(*key_id, "key_id names the key of private_key_file, which is not set");
    server.client_key_id = doc.non_empty_string(*key_id);
  }
}

// Manual metadata that names an issuer must name this one: tokens are checked against `issuer`.
void check_metadata_issuer(const Document& doc, const Field& metadata, const AuthorizationServerConfig& server) {
  const auto issuer = MapView(doc, metadata).find("issuer");
  if (!issuer) return;
  if (json_string_member(server.metadata_json, "issuer") != server.issuer) {
    doc.fail(*issuer, "must equal the server's issuer '" + server.issuer + "' exactly");
  }
}

// Where the metadata comes from: written here, fetched from metadata_url, or derived from the issuer.
void read_metadata_source(const Document& doc, const MapView& map, AuthorizationServerConfig& server) {
  const auto metadata = map.find_set("metadata");
  const auto metadata_url = map.find_set("metadata_url");
  if (metadata_url) {
    if (metadata) doc.fail(*metadata_url, "conflicts with 'metadata': manual metadata is never fetched");
    read_url(doc, *metadata_url, &server.metadata_url);
  }
  if (metadata) {
    server.metadata_json = read_json_object(doc, *metadata);
    check_metadata_issuer(doc, *metadata, server);
  }
  if (auto overrides = map.find_set("metadata_overrides")) {
    server.metadata_overrides_json = read_json_object(doc, *overrides);
  }
  if (server.discovery == Discovery::Off && !metadata) {
    doc.fail(map.require("discovery"), "'off' needs 'metadata': with discovery off nothing is fetched");
  }
}

AuthorizationServerConfig read_authorization_server(const Document& doc, const Field& field, const std::string& name) {
  const MapView map(doc, field);
  map.check_keys(kAuthServerKeys, "in authorization server '" + name + "'");
  AuthorizationServerConfig server;
  server.name = name;
  // Kept as written: it is compared byte for byte with the token's `iss`.
  read_url(doc, map.require("issuer"), &server.issuer);
  if (auto type = map.find("type")) server.type = read_auth_server_type(doc, *type);
  if (auto discovery = map.find("discovery")) server.discovery = read_discovery(doc, *discovery);
  read_metadata_source(doc, map, server);
  if (auto client = map.find("client")) read_client(doc, *client, server);
  return server;
}

AuthorizationServers read_authorization_servers(const Document& doc, const Field& field) {
  AuthorizationServers servers;
  for (const auto& [name, server] : MapView(doc, field).items()) {
    if (!is_name(name)) doc.fail(server.key_mark, server.path + ": the name " + kNameRule);
    servers.emplace(name, read_authorization_server(doc, server, name));
  }
  return servers;
}

// ---- Credentials ----

std::string read_header_name(const Document& doc, const Field& field) {
  const std::string name = doc.non_empty_string(field);
  if (!http::is_field_name(name)) {
    doc.fail(field, "'" + name + "' is not a header name (letters, digits and !#$%&'*+-.^_`|~ only)");
  }
  if (http::is_framing_header(name)) {
    doc.fail(field, "'" + name + "' frames or routes the request and cannot carry a credential");
  }
  return name;
}

// A header value as RFC 9110 allows it: visible characters, spaces and tabs inside, no CR, LF or
// NUL (which would inject headers). Errors don't echo it: it is a secret.
std::string read_header_value(const Document& doc, const Field& field) {
  const std::string value = doc.non_empty_string(field);
  if (!http::is_field_value(value)) doc.fail(field, "must not contain control characters (CR, LF, NUL, ...)");
  if (value.front() == ' ' || value.front() == '\t' || value.back() == ' ' || value.back() == '\t') {
    doc.fail(field, "must not begin or end with whitespace");
  }
  return value;
}

// What a reference to an authorization server needs from it, beyond existing.
struct ServerNeeds {
  std::string_view client_for;        // non-empty: client.id and client.secret, for this use
  std::string_view metadata_member;   // non-empty: manual metadata must name this endpoint
  std::string_view without_it;        // what fails without that member
  bool private_key = false;           // with client_for: client.private_key_file instead of the secret
};

// A key of authorization_servers, checked against what the referring key will use it for.
std::string read_server_ref(const Document& doc, const Field& field, const AuthorizationServers& servers,
                            const ServerNeeds& needs) {
  const std::string name = doc.non_empty_string(field);
  const auto server = servers.find(name);
  if (server == servers.end()) {
    doc.fail(field, "unknown authorization server '" + name + "' (not defined under authorization_servers)");
  }
  const AuthorizationServerConfig& config = server->second;
  if (!needs.client_for.empty() && needs.private_key && config.client_private_key_pem.empty()) {
    doc.fail(field, "authorization server '" + name + "' needs client.id and client.private_key_file for " +
                        std::string(needs.client_for) + " with auth_method private_key_jwt");
  }
  if (!needs.client_for.empty() && !needs.private_key && (config.client_id.empty() || config.client_secret.empty())) {
    doc.fail(field, "authorization server '" + name + "' needs client.id and client.secret for " +
                        std::string(needs.client_for));
  }
  // Manual metadata is never fetched, so it alone decides whether the endpoint exists.
  if (needs.metadata_member.empty() || config.metadata_json.empty()) return name;
  const std::string member(needs.metadata_member);
  if (!json_string_member(config.metadata_json, member.c_str()) &&
      !json_string_member(config.metadata_overrides_json, member.c_str())) {
    doc.fail(field, "authorization server '" + name + "' has manual metadata without a '" + member + "': " +
                        std::string(needs.without_it));
  }
  return name;
}

// The keys shared by the credential kinds that get their token from an authorization server.
void read_grant_credential(const Document& doc, const MapView& map, const AuthorizationServers& servers,
                           std::string_view grant, CredentialConfig& credential) {
  if (auto method = map.find("auth_method")) {
    const std::string name = doc.one_of(*method, {"client_secret_basic", "client_secret_post", "private_key_jwt"});
    credential.auth_method = name == "client_secret_post" ? ClientAuthMethod::ClientSecretPost
                             : name == "private_key_jwt"  ? ClientAuthMethod::PrivateKeyJwt
                                                          : ClientAuthMethod::ClientSecretBasic;
  }
  credential.server = read_server_ref(doc, map.require("server"), servers,
                                      {grant, "token_endpoint", "no token could be obtained",
                                       credential.auth_method == ClientAuthMethod::PrivateKeyJwt});
  if (auto scopes = map.find("scopes")) credential.scopes = read_scopes(doc, *scopes);
  if (auto resource = map.find("resource")) read_url(doc, *resource, &credential.resource);
  if (auto audience = map.find("audience")) credential.audience = doc.non_empty_string(*audience);
  read_integer(map, "refresh_before_expiry_s", credential.refresh_before_expiry_s, 0, kMaxRefreshBeforeExpiryS);
}

// The bytes of a secret file named by `field`, read at load, exactly as stored.
std::string read_secret_file_bytes(const Document& doc, const Field& field) {
  const std::string path = doc.non_empty_string(field);
  const std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!file) doc.fail(field, "cannot read the file '" + path + "': " + std::strerror(errno));
  std::string text;
  char buffer[4096];
  std::size_t count = 0;
  while ((count = std::fread(buffer, 1, sizeof buffer, file.get())) > 0 && text.size() < (1 << 20)) text.append(buffer, count);
  if (std::ferror(file.get())) doc.fail(field, "cannot read the file '" + path + "': " + std::strerror(errno));
  if (text.empty()) doc.fail(field, "the file '" + path + "' is empty");
  return text;
}

// A secret file's text: its content with one trailing newline (LF or CRLF) removed.
std::string read_secret_file(const Document& doc, const Field& field) {
  std::string text = read_secret_file_bytes(doc, field);
  if (!text.empty() && text.back() == '\n') text.pop_back();
  if (!text.empty() && text.back() == '\r') text.pop_back();
  if (text.empty()) doc.fail(field, "the file holds only a newline");
  return text;
}

// static: `value` as written, or the content of `value_file` (a mounted secret).
std::string read_static_value(const Document& doc, const Field& field, const MapView& map) {
  const auto value = map.find("value");
  const auto file = map.find("value_file");
  if (value && file) doc.fail(*file, "give either 'value' or 'value_file', not both");
  if (value) return read_header_value(doc, *value);
  if (!file) doc.fail(field, "a static credential needs 'value' or 'value_file'");
  const std::string text = read_secret_file(doc, *file);
  const bool valid = std::all_of(text.begin(), text.end(), [](unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); });
  if (!valid) doc.fail(*file, "the file holds control characters (CR, LF, NUL, ...), which a header value cannot");
  if (text.front() == ' ' || text.front() == '\t' || text.back() == ' ' || text.back() == '\t')
    doc.fail(*file, "the value in the file must not begin or end with whitespace");
  return text;
}

CredentialConfig read_credential(const Document& doc, const Field& field, const std::string& name,
                                 const AuthorizationServers& servers) {
  const MapView map(doc, field);
  const Field type_field = map.require("type");
  const std::string type = doc.string(type_field);
  const std::string where = "in credential '" + name + "'";
  CredentialConfig credential;
  credential.name = name;
  if (type == "static") {
    map.check_keys(kStaticCredentialKeys, where);
    credential.type = CredentialType::Static;
    credential.value = read_static_value(doc, field, map);
  } else if (type == "passthrough") {
    map.check_keys(kPassthroughCredentialKeys, where);
    credential.type = CredentialType::Passthrough;
  } else if (type == "client_credentials") {
    map.check_keys(kClientCredentialsKeys, where);
    credential.type = CredentialType::ClientCredentials;
    read_grant_credential(doc, map, servers, "the client_credentials grant", credential);
  } else if (type == "token_exchange") {
    map.check_keys(kClientCredentialsKeys, where);
    credential.type = CredentialType::TokenExchange;
    read_grant_credential(doc, map, servers, "the token exchange grant (RFC 8693)", credential);
  } else if (type == "delegated") {
    map.check_keys(kDelegatedKeys, where);
    credential.type = CredentialType::Delegated;
    read_grant_credential(doc, map, servers, "the authorization code and refresh grants", credential);
  } else {
    doc.fail(type_field, "unknown credential type '" + type +
                             "' (expected static, passthrough, client_credentials, token_exchange or delegated)");
  }
  if (auto header = map.find("header")) credential.header = read_header_name(doc, *header);
  return credential;
}

Credentials read_credentials(const Document& doc, const Field& field, const AuthorizationServers& servers) {
  Credentials credentials;
  for (const auto& [name, credential] : MapView(doc, field).items()) {
    if (!is_name(name)) doc.fail(credential.key_mark, credential.path + ": the name " + kNameRule);
    if (name == kNoCredential) {
      doc.fail(credential.key_mark, credential.path + ": the name 'none' is reserved (it means no credential)");
    }
    credentials.emplace(name, read_credential(doc, credential, name, servers));
  }
  return credentials;
}

// A credential reference (route upstream_credential, tool rule credential): a key of
// `credentials`, or "none".
std::string read_credential_ref(const Document& doc, const Field& field, const Credentials& credentials) {
  const std::string name = doc.non_empty_string(field);
  if (name != kNoCredential && !credentials.contains(name)) {
    doc.fail(field, "unknown credential '" + name + "' (not defined under credentials; 'none' sends none)");
  }
  return name;
}

// passthrough, token_exchange and delegated act for the caller; a route without auth has no
// validated caller (no token to pass or exchange, no identity to hold tokens for).
void check_credential_use(const Document& doc, const Field& field, const std::string& name,
                          const Credentials& credentials, const RouteConfig& route) {
  if (route.auth.type != AuthType::None) return;
  const auto credential = credentials.find(name);
  if (credential == credentials.end()) return;
  const char* kind = nullptr;
  switch (credential->second.type) {
    case CredentialType::Passthrough: kind = "passthrough"; break;
    case CredentialType::TokenExchange: kind = "token_exchange"; break;
    case CredentialType::Delegated: kind = "delegated"; break;
    default: return;
  }
  doc.fail(field, "credential '" + name + "' is " + kind + ", which acts for an authenticated caller "
                  "(route '" + route.name + "' has auth type 'none': there is no validated caller)");
}

// ---- Token store ----

constexpr std::size_t kStoreKeyBytes = 32;  // AES-256

// A store key file: 32 random bytes, written raw, as 64 hex digits, or base64
// (`openssl rand -base64 32`). Errors never echo the content.
std::string read_store_key(const Document& doc, const Field& field) {
  std::string text = read_secret_file_bytes(doc, field);
  if (text.size() == kStoreKeyBytes) {
    // Random bytes are all printable with odds of 1 in 10^14; text this long is a shorter key
    // in hex or base64 (`openssl rand -hex 16`), and would hold less than 256 bits.
    const bool printable = std::all_of(text.begin(), text.end(), [](unsigned char c) { return c >= 0x20 && c < 0x7f; });
    if (printable) doc.fail(field, "the key file holds 32 characters of text, not 32 random bytes: write 32 bytes raw, as 64 hex digits or in base64 (openssl rand -base64 32)");
    return text;
  }
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  if (text.size() == 2 * kStoreKeyBytes && std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isxdigit(c); })) {
    std::string key;
    for (std::size_t i = 0; i < text.size(); i += 2) key.push_back(static_cast<char>(std::stoi(text.substr(i, 2), nullptr, 16)));
    return key;
  }
  if (text.size() == 44 && text.back() == '=') {
    unsigned char decoded[33];
    const int length = EVP_DecodeBlock(decoded, reinterpret_cast<const unsigned char*>(text.data()), 44);
    if (length == 33 && text[42] != '=') return std::string(reinterpret_cast<char*>(decoded), kStoreKeyBytes);  // one pad byte
  }
  doc.fail(field, "a store key file must hold 32 bytes: raw, as 64 hex digits or in base64 (openssl rand -base64 32)");
}

// redis://[[user]:password@]host[:port][/db]; user and password percent-decoded. Errors never
// echo the URL: it may hold the password.
void read_redis_url(const Document& doc, const Field& field, TokenStoreConfig& store) {
  const std::string url = doc.non_empty_string(field);
  constexpr std::string_view scheme = "redis://";
  if (url.rfind(scheme, 0) != 0) doc.fail(field, "expected redis://[[user]:password@]host[:port][/db]");
  std::string rest = url.substr(scheme.size());
  if (const auto at = rest.rfind('@'); at != std::string::npos) {
    const std::string user_info = rest.substr(0, at);
    const auto colon = user_info.find(':');
    // RFC 3986 user info without a colon is a user name; Redis URLs put a lone secret after ':'.
    const auto user = colon == std::string::npos ? user_info : user_info.substr(0, colon);
    const auto password = colon == std::string::npos ? std::string() : user_info.substr(colon + 1);
    const auto decoded_user = http::query_param("v=" + user, "v");
    const auto decoded_password = http::query_param("v=" + password, "v");
    if (!decoded_user || !decoded_password || user.find('+') != std::string::npos || password.find('+') != std::string::npos)
      doc.fail(field, "the user or password of the Redis URL is badly percent-encoded (write '+' as %2B)");
    store.redis_username = *decoded_user;
    store.redis_password = *decoded_password;
    if (!store.redis_username.empty() && store.redis_password.empty())
      doc.fail(field, "a Redis user needs a password (redis://user:password@host)");
    rest = rest.substr(at + 1);
  }
  const auto slash = rest.find('/');
  if (slash != std::string::npos) {
    const std::string db = rest.substr(slash + 1);
    if (!db.empty()) {
      if (db.size() > 2 || !std::all_of(db.begin(), db.end(), [](unsigned char c) { return std::isdigit(c); }))
        doc.fail(field, "the database after '/' must be a number from 0 to 99");
      store.redis_db = static_cast<unsigned>(std::stoi(db));
    }
    rest = rest.substr(0, slash);
  }
  try {
    HostPort host_port = parse_host_port(rest);
    if (host_port.host.empty()) doc.fail(field, "missing host in the Redis URL");
    store.redis_host = std::move(host_port.host);
    store.redis_port = host_port.port.value_or(6379);
  } catch (const std::invalid_argument& e) {
    doc.fail(field, std::string("invalid Redis URL: ") + e.what());
  }
}

TokenStoreConfig read_token_store(const Document& doc, const Field& field) {
  const MapView map(doc, field);
  map.check_keys(kTokenStoreKeys, "in token_store");
  TokenStoreConfig store;
  if (auto backend = map.find("backend"))
    store.backend = doc.one_of(*backend, {"memory", "redis"}) == "redis" ? StoreBackendType::Redis : StoreBackendType::Memory;
  const auto redis_url = map.find("redis_url");
  if (redis_url) read_redis_url(doc, *redis_url, store);
  if (auto prefix = map.find("key_prefix")) store.key_prefix = doc.string(*prefix);
  const auto key_file = map.find_set("encryption_key_file");
  if (key_file) store.encryption_keys.push_back(read_store_key(doc, *key_file));
  if (auto previous = map.find("previous_encryption_key_files")) {
    if (!key_file) doc.fail(*previous, "previous keys only open old entries: set encryption_key_file for new writes");
    for (const Field& item : list_items(doc, *previous, "expected a list of key file paths"))
      store.encryption_keys.push_back(read_store_key(doc, item));
  }
  read_integer(map, "connect_link_ttl_s", store.connect_link_ttl_s, 30, 3600);
  if (store.backend == StoreBackendType::Redis) {
    if (!redis_url) doc.fail(field, "the redis backend needs redis_url");
    // Replicas and restarts must open what another process sealed: a random key cannot do that.
    if (!key_file) doc.fail(field, "the redis backend needs encryption_key_file (shared by every replica)");
  }
  return store;
}

const KeyRules kSessionEnvelopeKeys{{"key_file", "key_id", "previous_keys"}, {}};
const KeyRules kSessionKeyKeys{{"key_file", "key_id"}, {}};

// key_id travels in clear in every session id, which is a header value of visible ASCII.
SessionEnvelopeConfig::Key read_session_key(const Document& doc, const MapView& map) {
  SessionEnvelopeConfig::Key key;
  const Field id = map.require("key_id");
  key.id = doc.non_empty_string(id);
  const bool id_ok = key.id.size() <= 32 && std::all_of(key.id.begin(), key.id.end(), [](unsigned char c) {
                       return std::isalnum(c) || c == '-' || c == '_';
                     });
  if (!id_ok) doc.fail(id, "a key id has at most 32 letters, digits, '-' and '_'");
  key.bytes = read_store_key(doc, map.require("key_file"));
  return key;
}

SessionEnvelopeConfig read_session_envelope(const Document& doc, const Field& field) {
  const MapView map(doc, field);
  map.check_keys(kSessionEnvelopeKeys, "in session_envelope");
  SessionEnvelopeConfig envelope;
  envelope.keys.push_back(read_session_key(doc, map));
  if (auto previous = map.find("previous_keys")) {
    for (const Field& item : list_items(doc, *previous, "expected a list of {key_file, key_id}")) {
      const MapView key_map(doc, item);
      key_map.check_keys(kSessionKeyKeys, "in " + item.path);
      auto key = read_session_key(doc, key_map);
      for (const auto& earlier : envelope.keys)
        if (earlier.id == key.id) doc.fail(item, "key id '" + key.id + "' is used twice");
      envelope.keys.push_back(std::move(key));
    }
  }
  return envelope;
}

// ---- Routes ----

std::string read_route_name(const Document& doc, const Field& field) {
  const std::string name = doc.non_empty_string(field);
  if (!is_name(name)) doc.fail(field, "'" + name + "' " + kNameRule);
  return name;
}

// RFC 3986 path characters, without '%': routes match raw request paths, and an encoded
// form would open a second spelling of the same path.
bool is_path_char(unsigned char c) {
  return std::isalnum(c) || std::string_view("-._~!$&'()*+,;=:@/").find(c) != std::string_view::npos;
}

// A "." segment, or "//": request paths with those never reach a route, so such a route
// could never match. ".." anywhere is refused outright.
bool has_odd_segment(std::string_view path) {
  if (path.find("..") != std::string_view::npos || path.find("//") != std::string_view::npos) return true;
  return path.find("/./") != std::string_view::npos || path.ends_with("/.");
}

std::string read_route_path(const Document& doc, const Field& field) {
  std::string path = doc.non_empty_string(field);
  if (path.front() != '/') doc.fail(field, "must start with '/'");
  if (!std::all_of(path.begin(), path.end(), is_path_char)) {
    doc.fail(field, "'" + path + "' may contain only letters, digits, '/' and -._~!$&'()*+,;=:@ "
                    "(no '?', '#', '%' or whitespace)");
  }
  if (has_odd_segment(path)) doc.fail(field, "'" + path + "' must not contain '..', '//' or '.' segments");
  if (path.size() > 1 && path.back() == '/') path.pop_back();
  // The gateway serves its own metadata under /.well-known/ (RFC 9728).
  if (path == "/.well-known" || path.rfind("/.well-known/", 0) == 0) {
    doc.fail(field, "paths under /.well-known/ are reserved for the gateway's metadata");
  }
  return path;
}

// One URL, or a list of distinct endpoints serving the same MCP server.
std::vector<UpstreamUrl> read_upstreams(const Document& doc, const Field& field) {
  if (!field.node.IsSequence()) return {read_url(doc, field)};
  std::vector<UpstreamUrl> endpoints;
  for (const Field& item : list_items(doc, field, "expected a URL or a list of URLs")) {
    UpstreamUrl endpoint = read_url(doc, item);
    for (const UpstreamUrl& earlier : endpoints)
      if (earlier.origin() == endpoint.origin() && earlier.path == endpoint.path) doc.fail(item, "this endpoint is listed twice");
    endpoints.push_back(std::move(endpoint));
  }
  if (endpoints.empty()) doc.fail(field, "expected at least one endpoint");
  return endpoints;
}

std::string read_resource(const Document& doc, const Field& field) {
  std::string resource;
  read_url(doc, field, &resource);
  return resource;
}

std::vector<std::string> read_allowed_origins(const Document& doc, const Field& field) {
  std::vector<std::string> origins;
  for (const Field& origin : list_items(doc, field, "expected a list of origins")) {
    const std::string text = doc.string(origin);
    if (text == "*") {  // any origin, written out explicitly
      origins.push_back(text);
      continue;
    }
    try {
      origins.push_back(normalize_origin(text));
    } catch (const std::invalid_argument& e) {
      doc.fail(origin, "invalid origin '" + text + "': " + e.what());
    }
  }
  return origins;
}

// Scope rules of a route's tools or methods, in document order.
using ScopeRules = std::vector<std::pair<std::string, ScopeRule>>;

// `credentials` is given for tool rules only, which may name a credential.
ScopeRules read_scope_rules(const Document& doc, const Field& field, const KeyRules& keys,
                            const Credentials* credentials = nullptr) {
  ScopeRules rules;
  for (const auto& [name, rule_field] : MapView(doc, field).items()) {
    if (name.empty()) doc.fail(rule_field.key_mark, field.path + ": a name must not be empty");
    const MapView rule(doc, rule_field);
    rule.check_keys(keys, "in " + rule_field.path);
    ScopeRule scope_rule;
    if (auto scopes = rule.find("scopes")) scope_rule.scopes = read_scopes(doc, *scopes);
    if (auto credential = rule.find("credential"); credential && credentials != nullptr) {
      scope_rule.credential = read_credential_ref(doc, *credential, *credentials);
    }
    rules.emplace_back(name, std::move(scope_rule));
  }
  return rules;
}

// What a route's policy says, as read; the auth defaults its advertised scopes from it.
struct RoutePolicy {
  ScopeRules tools;
  ScopeRules prompts;
  ScopeRules resources;
  ScopeRules methods;
};

std::vector<std::string> policy_scopes(const RoutePolicy& policy) {
  std::vector<std::string> scopes;
  for (const ScopeRules* rules : {&policy.tools, &policy.prompts, &policy.resources, &policy.methods}) {
    for (const auto& [name, rule] : *rules) add_unique(scopes, rule.scopes);
  }
  return scopes;
}

const std::initializer_list<std::string_view> kAlgorithms{"RS256", "RS384", "RS512", "PS256", "PS384",
                                                          "PS512", "ES256", "ES384", "ES512"};

// Refused outright, with the reason, before the allowlist check (algorithm confusion).
std::string read_algorithm(const Document& doc, const Field& field) {
  const std::string alg = lowercase(doc.string(field));
  if (alg == "none") doc.fail(field, "algorithm 'none' is never accepted");
  if (alg.starts_with("hs")) doc.fail(field, "symmetric algorithms are not accepted for access tokens");
  return doc.one_of(field, kAlgorithms);
}

std::vector<std::string> read_algorithms(const Document& doc, const Field& field) {
  std::vector<std::string> algorithms = read_distinct(
      doc, field, "expected a list of algorithms", [&doc](const Field& item) { return read_algorithm(doc, item); });
  if (algorithms.empty()) doc.fail(field, "must list at least one algorithm");
  return algorithms;
}

// One audience or a list of them: tokens must name one of these in `aud`.
std::vector<std::string> read_audiences(const Document& doc, const Field& field) {
  if (field.node.IsScalar()) return {doc.non_empty_string(field)};
  if (!field.node.IsSequence()) {
    doc.fail(field, "expected a string or a list of strings (got " + kind_of(field.node) + ")");
  }
  std::vector<std::string> audiences = read_distinct(
      doc, field, "expected a list", [&doc](const Field& item) { return doc.non_empty_string(item); });
  if (audiences.empty()) doc.fail(field, "must list at least one audience");
  return audiences;
}

std::string read_auth_server_ref(const Document& doc, const Field& field, const AuthorizationServers& servers,
                                 AuthType type) {
  if (type == AuthType::Introspection) return read_server_ref(doc, field, servers, {"introspection", "", ""});
  if (type == AuthType::Jwt) return read_server_ref(doc, field, servers, {"", "jwks_uri", "no token could be verified"});
  return read_server_ref(doc, field, servers, {});
}

// required_scopes, and scopes_supported (default: those, then every scope the policy names).
void read_auth_scopes(const Document& doc, const MapView& map, const RoutePolicy& policy, RouteAuth& auth) {
  if (auto scopes = map.find("required_scopes")) auth.required_scopes = read_scopes(doc, *scopes);
  if (auto scopes = map.find("scopes_supported")) {
    auth.scopes_supported = read_scopes(doc, *scopes);
  } else {
    add_unique(auth.scopes_supported, auth.required_scopes);
    add_unique(auth.scopes_supported, policy_scopes(policy));
  }
}

RouteAuth read_token_auth(const Document& doc, const MapView& map, const RouteConfig& route,
                          const RoutePolicy& policy, const AuthorizationServers& servers, AuthType type) {
  map.check_keys(type == AuthType::Jwt ? kAuthJwtKeys : kAuthLookupKeys, "in the auth of route '" + route.name + "'");
  RouteAuth auth;
  auth.type = type;
  auth.server = read_auth_server_ref(doc, map.require("server"), servers, type);
  const auto audience = map.find("audience");
  auth.audiences = audience ? read_audiences(doc, *audience) : std::vector<std::string>{route.resource};
  read_auth_scopes(doc, map, policy, auth);
  if (auto algorithms = map.find("algorithms")) auth.algorithms = read_algorithms(doc, *algorithms);
  read_integer(map, "leeway_s", auth.leeway_s, 0, kMaxLeewayS);
  read_integer(map, "cache_ttl_s", auth.cache_ttl_s, 0);
  return auth;
}

// A plugins[].name (whether the plugin has the hook a reference needs is found when it is loaded).
std::string read_plugin_ref(const Document& doc, const Field& field, const std::vector<PluginConfig>& plugins) {
  const std::string name = doc.non_empty_string(field);
  const bool known = std::any_of(plugins.begin(), plugins.end(), [&](const PluginConfig& p) { return p.name == name; });
  if (!known) doc.fail(field, "unknown plugin '" + name + "' (not defined under plugins)");
  return name;
}

RouteAuth read_plugin_auth(const Document& doc, const MapView& map, const RouteConfig& route, const RoutePolicy& policy,
                           const std::vector<PluginConfig>& plugins) {
  map.check_keys(kAuthPluginKeys, "in the auth of route '" + route.name + "'");
  RouteAuth auth;
  auth.type = AuthType::Plugin;
  auth.plugin = read_plugin_ref(doc, map.require("plugin"), plugins);
  read_auth_scopes(doc, map, policy, auth);
  return auth;
}

RouteAuth read_auth(const Document& doc, const Field& field, const RouteConfig& route, const RoutePolicy& policy,
                    const AuthorizationServers& servers, const std::vector<PluginConfig>& plugins) {
  const MapView map(doc, field);
  const Field type_field = map.require("type");
  const std::string type = doc.string(type_field);
  if (type == "plugin") return read_plugin_auth(doc, map, route, policy, plugins);
  if (type == "jwt") return read_token_auth(doc, map, route, policy, servers, AuthType::Jwt);
  if (type == "userinfo") return read_token_auth(doc, map, route, policy, servers, AuthType::Userinfo);
  if (type == "introspection") return read_token_auth(doc, map, route, policy, servers, AuthType::Introspection);
  if (type != "none") {
    doc.fail(type_field, "unknown auth type '" + type + "' (expected none, jwt, userinfo, introspection or plugin)");
  }
  map.check_keys(kAuthNoneKeys, "in the auth of route '" + route.name + "'");
  return RouteAuth{};
}

// Per-tool and per-method rules decide on the caller's scopes: without a caller they would
// deny everything, or look like protection while allowing everything.
void check_policy_has_identity(const Document& doc, const MapView& map, const RouteConfig& route) {
  if (route.auth.type != AuthType::None) return;
  for (std::string_view key : {"tools", "prompts", "resources", "methods", "filter_tools_list", "policy_plugins"}) {
    const auto field = map.find(key);
    if (!field || (key == "filter_tools_list" && !route.filter_tools_list)) continue;
    doc.fail(field->key_mark, field->path + ": needs an auth type that identifies the caller "
                              "(route '" + route.name + "' has auth type 'none')");
  }
}

// The route's and its tools' credentials, once the route's auth type is known.
void read_route_credentials(const Document& doc, const MapView& map, const RoutePolicy& policy,
                            const Credentials& credentials, RouteConfig& route) {
  if (auto credential = map.find("upstream_credential")) {
    route.upstream_credential = read_credential_ref(doc, *credential, credentials);
    check_credential_use(doc, *credential, route.upstream_credential, credentials, route);
  }
  for (const auto& [name, rule] : policy.tools) {
    if (!rule.credential) continue;
    const Field credential = MapView(doc, MapView(doc, map.require("tools")).require(name)).require("credential");
    check_credential_use(doc, credential, *rule.credential, credentials, route);
  }
}

// "<count>/<unit>": count tokens per unit, unit s|sec|second, m|min|minute, h|hour.
void read_rate(const Document& doc, const Field& field, RateLimitConfig& limit, uint32_t& count) {
  const std::string text = doc.non_empty_string(field);
  const std::string expected = "expected '<count>/<unit>' with a unit of s, min or hour (e.g. 10/min)";
  const std::size_t slash = text.find('/');
  if (slash == std::string::npos) doc.fail(field, expected + " (got '" + text + "')");
  const std::string number = text.substr(0, slash);
  const std::string unit = text.substr(slash + 1);
  const auto [stop, error] = std::from_chars(number.data(), number.data() + number.size(), count);
  if (number.empty() || stop != number.data() + number.size() || error != std::errc() || count == 0 || count > 1000000)
    doc.fail(field, "the count must be a whole number from 1 to 1000000 (got '" + text + "')");
  double period_ms = 0;
  if (unit == "s" || unit == "sec" || unit == "second") period_ms = 1000;
  if (unit == "m" || unit == "min" || unit == "minute") period_ms = 60000;
  if (unit == "h" || unit == "hour") period_ms = 3600000;
  if (period_ms == 0) doc.fail(field, expected + " (got unit '" + unit + "')");
  limit.refill_interval_ms = period_ms / count;
}

std::vector<RateLimitConfig> read_rate_limits(const Document& doc, const Field& field, const RouteConfig& route) {
  std::vector<RateLimitConfig> limits;
  for (const Field& item : list_items(doc, field, "expected a list of rate limits")) {
    const MapView map(doc, item);
    map.check_keys(kRateLimitKeys, "in a rate limit of route '" + route.name + "'");
    RateLimitConfig limit;
    const Field per = map.require("per");
    const std::string key = doc.one_of(per, {"route", "subject", "client_id", "tool"});
    limit.per = key == "route" ? RateLimitKey::Route
                : key == "subject" ? RateLimitKey::Subject
                : key == "client_id" ? RateLimitKey::ClientId
                                     : RateLimitKey::Tool;
    if ((limit.per == RateLimitKey::Subject || limit.per == RateLimitKey::ClientId) && route.auth.type == AuthType::None)
      doc.fail(per, "per " + key + " needs an auth type that identifies the caller (route '" + route.name +
                        "' has auth type 'none')");
    if (auto tool = map.find("tool")) limit.tool = doc.non_empty_string(*tool);
    uint32_t count = 0;
    read_rate(doc, map.require("rate"), limit, count);
    limit.burst = count;
    read_integer(map, "burst", limit.burst, 1, 1000000);
    if (auto name = map.find("name")) {
      limit.name = doc.non_empty_string(*name);
      if (!is_name(limit.name)) doc.fail(*name, "'" + limit.name + "' " + kNameRule);
    } else {
      limit.name = key + (limit.tool.empty() ? "" : ":" + limit.tool);
    }
    for (const auto& earlier : limits)
      if (earlier.name == limit.name)
        doc.fail(item, "rate limit name '" + limit.name + "' is already used on route '" + route.name +
                           "' (give one of them a distinct 'name')");
    limits.push_back(std::move(limit));
  }
  return limits;
}

std::vector<PluginConfig> read_plugins(const Document& doc, const Field& field) {
  std::vector<PluginConfig> plugins;
  const std::string directory = directory_of(doc.source());
  for (const Field& item : list_items(doc, field, "expected a list of plugins")) {
    const MapView map(doc, item);
    map.check_keys(kPluginKeys, "in a plugin");
    PluginConfig plugin;
    const Field name = map.require("name");
    plugin.name = doc.non_empty_string(name);
    if (!is_name(plugin.name)) doc.fail(name, "'" + plugin.name + "' " + kNameRule);
    for (const auto& earlier : plugins)
      if (earlier.name == plugin.name) doc.fail(name, "duplicate plugin name '" + plugin.name + "'");
    plugin.path = doc.non_empty_string(map.require("path"));
    if (plugin.path.front() != '/') plugin.path = (directory == "/" ? "" : directory) + "/" + plugin.path;
    const auto config = map.find_set("config");
    plugin.config_json = config ? read_json_object(doc, *config) : "{}";
    plugins.push_back(std::move(plugin));
  }
  return plugins;
}

RouteConfig read_route(const Document& doc, const Field& field, const Config& config) {
  const MapView map(doc, field);
  RouteConfig route;
  route.name = read_route_name(doc, map.require("name"));
  map.check_keys(kRouteKeys, "in route '" + route.name + "'");
  route.path = read_route_path(doc, map.require("path"));
  const Field upstream = map.require("upstream");
  route.upstreams = read_upstreams(doc, upstream);
  if (auto transport = map.find("transport")) {
    const bool sse = doc.one_of(*transport, {"streamable_http", "sse"}) == "sse";
    route.transport = sse ? Transport::Sse : Transport::StreamableHttp;
  }
  // A legacy SSE session lives in the one upstream process holding its stream, and its POSTs
  // name the session in the query, where no envelope can carry the endpoint.
  if (route.transport == Transport::Sse && route.upstreams.size() > 1)
    doc.fail(upstream, "a legacy SSE route needs a single upstream URL (its sessions cannot move between endpoints)");
  if (auto balancing = map.find("load_balancing")) {
    const bool least = doc.one_of(*balancing, {"round_robin", "least_outstanding"}) == "least_outstanding";
    route.balancing = least ? Balancing::LeastOutstanding : Balancing::RoundRobin;
  }
  auto resource = map.find("resource");
  route.resource = resource ? read_resource(doc, *resource) : config.server.public_url + route.path;
  auto resource_name = map.find("resource_name");
  route.resource_name = resource_name ? doc.non_empty_string(*resource_name) : route.name;
  if (auto documentation = map.find("resource_documentation")) {
    read_url(doc, *documentation, &route.resource_documentation);
  }
  if (auto origins = map.find("allowed_origins")) route.allowed_origins = read_allowed_origins(doc, *origins);
  RoutePolicy policy;
  if (auto tools = map.find("tools")) policy.tools = read_scope_rules(doc, *tools, kToolRuleKeys, &config.credentials);
  if (auto prompts = map.find("prompts")) policy.prompts = read_scope_rules(doc, *prompts, kMethodRuleKeys);
  if (auto resources = map.find("resources")) policy.resources = read_scope_rules(doc, *resources, kMethodRuleKeys);
  if (auto methods = map.find("methods")) policy.methods = read_scope_rules(doc, *methods, kMethodRuleKeys);
  read_boolean(map, "filter_tools_list", route.filter_tools_list);
  route.auth = read_auth(doc, map.require("auth"), route, policy, config.authorization_servers, config.plugins);
  read_route_credentials(doc, map, policy, config.credentials, route);
  check_policy_has_identity(doc, map, route);
  route.tools.insert(policy.tools.begin(), policy.tools.end());
  route.prompts.insert(policy.prompts.begin(), policy.prompts.end());
  route.resources.insert(policy.resources.begin(), policy.resources.end());
  route.methods.insert(policy.methods.begin(), policy.methods.end());
  read_boolean(map, "forward_identity", route.forward_identity);
  auto read_plugin_list = [&](std::string_view key, std::vector<std::string>& out) {
    if (auto list = map.find(key))
      out = read_distinct(doc, *list, "expected a list of plugin names",
                          [&](const Field& item) { return read_plugin_ref(doc, item, config.plugins); });
  };
  read_plugin_list("policy_plugins", route.policy_plugins);
  read_plugin_list("request_plugins", route.request_plugins);
  if (auto limits = map.find("rate_limits")) route.rate_limits = read_rate_limits(doc, *limits, route);
  return route;
}

// Names and normalized paths must be unique; reported at the later route.
void check_unique(const Document& doc, const Field& field, const RouteConfig& route,
                  const std::vector<RouteConfig>& earlier) {
  const MapView map(doc, field);
  for (const RouteConfig& other : earlier) {
    if (other.name == route.name) doc.fail(map.require("name"), "duplicate route name '" + route.name + "'");
    if (other.path == route.path) {
      doc.fail(map.require("path"), "path '" + route.path + "' is already used by route '" + other.name + "'");
    }
  }
}

std::vector<RouteConfig> read_routes(const Document& doc, const Field& field, const Config& config) {
  if (!field.node.IsSequence()) doc.fail(field, "expected a list of routes (got " + kind_of(field.node) + ")");
  if (field.node.size() == 0) doc.fail(field, "must list at least one route");
  std::vector<RouteConfig> routes;
  for (std::size_t i = 0; i < field.node.size(); ++i) {
    const YAML::Node item = field.node[i];
    const Field route_field{item, "routes[" + std::to_string(i) + "]", item.Mark()};
    if (!item.IsMap()) doc.fail(route_field, "expected a map (got " + kind_of(item) + ")");
    RouteConfig route = read_route(doc, route_field, config);
    check_unique(doc, route_field, route, routes);
    routes.push_back(std::move(route));
  }
  return routes;
}

// ---- Document ----

// Notes where documents start and nothing else: counting documents without building them.
class DocumentStarts : public YAML::EventHandler {
 public:
  std::vector<YAML::Mark> starts;
  void OnDocumentStart(const YAML::Mark& mark) override { starts.push_back(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

YAML::Node parse_yaml(const Document& doc, const std::string& text) {
  YAML::Node root;
  try {
    // At most two documents are looked for: yaml-cpp 0.7's LoadAll never returns on a stray ','
    // (each call "finds" another empty document), which would hang `check` and reloads.
    std::istringstream input(text);
    YAML::Parser parser(input);
    DocumentStarts documents;
    while (documents.starts.size() < 2 && parser.HandleNextDocument(documents)) {
    }
    if (documents.starts.size() > 1) doc.fail(documents.starts[1], "expected a single YAML document");
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    doc.fail(e.mark, e.msg);
  }
  if (!root || root.IsNull()) doc.fail(YAML::Mark(), "the config is empty");
  return root;
}

Config read_config(const Document& doc, const YAML::Node& root) {
  // Keys are checked before any value, so a not-yet-supported section is reported before,
  // say, an unset variable further down.
  const MapView top(doc, Field{root, "", root.Mark()});
  top.check_keys(kTopLevelKeys, "at top level");
  Config config;
  config.server = read_server(doc, top.require("server"));
  config.admin = read_admin(doc, top.find("admin").value_or(Field{YAML::Node(), "admin", root.Mark()}));
  config.log = read_log(doc, top.find("log").value_or(Field{YAML::Node(), "log", root.Mark()}));
  check_listeners(doc, top, config);
  if (auto servers = top.find("authorization_servers")) {
    config.authorization_servers = read_authorization_servers(doc, *servers);
  }
  // Before the routes, which refer to credentials by name.
  if (auto credentials = top.find("credentials")) {
    config.credentials = read_credentials(doc, *credentials, config.authorization_servers);
  }
  if (auto store = top.find("token_store")) config.token_store = read_token_store(doc, *store);
  if (auto envelope = top.find_set("session_envelope")) config.session_envelope = read_session_envelope(doc, *envelope);
  if (auto plugins = top.find("plugins")) config.plugins = read_plugins(doc, *plugins);  // routes refer to them
  config.routes = read_routes(doc, top.require("routes"), config);
  return config;
}

[[noreturn]] void fail_to_read(const std::string& path, int error) {
  throw ConfigError("cannot read config file '" + path + "': " + std::strerror(error));
}

std::string read_file(const std::string& path) {
  const std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!file) fail_to_read(path, errno);
  std::string text;
  char buffer[8192];
  std::size_t count = 0;
  while ((count = std::fread(buffer, 1, sizeof buffer, file.get())) > 0) text.append(buffer, count);
  if (std::ferror(file.get())) fail_to_read(path, errno);  // e.g. EISDIR: fopen accepts directories
  return text;
}

}  // namespace

std::string directory_of(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string ListenAddress::to_string() const { return bracketed(host) + ":" + std::to_string(port); }

ListenAddress parse_listen_address(const std::string& text) {
  HostPort parsed = parse_host_port(text);
  if (!parsed.port) throw std::invalid_argument("expected host:port or [ipv6]:port");
  return ListenAddress{std::move(parsed.host), *parsed.port};
}

std::string UpstreamUrl::origin() const {
  return scheme + "://" + bracketed(host) + ":" + std::to_string(port);
}

UpstreamUrl parse_upstream_url(const std::string& text) {
  const bool has_space = std::any_of(text.begin(), text.end(),
                                     [](unsigned char c) { return std::isspace(c) || std::iscntrl(c); });
  if (has_space) throw std::invalid_argument("must not contain whitespace");
  const std::size_t separator = text.find("://");
  if (separator == std::string::npos) throw std::invalid_argument("expected an absolute http:// or https:// URL");
  UpstreamUrl url;
  url.scheme = lowercase(text.substr(0, separator));
  if (url.scheme != "http" && url.scheme != "https") throw std::invalid_argument("the scheme must be http or https");
  const std::string rest = text.substr(separator + 3);
  if (rest.find_first_of("?#") != std::string::npos) {
    throw std::invalid_argument("must not have a query or fragment");
  }
  const std::size_t slash = rest.find('/');
  const std::string authority = rest.substr(0, slash);
  if (authority.find('@') != std::string::npos) throw std::invalid_argument("must not contain user info");
  if (authority.empty()) throw std::invalid_argument("missing host");
  HostPort host_port = parse_host_port(authority);
  url.host = lowercase(std::move(host_port.host));
  url.port = host_port.port.value_or(default_port(url.scheme));
  url.path = slash == std::string::npos ? "/" : rest.substr(slash);
  return url;
}

ConfigPtr load_config_text(const std::string& text, const std::string& source_name) {
  const Document doc(source_name);
  return std::make_shared<const Config>(read_config(doc, parse_yaml(doc, text)));
}

ConfigPtr load_config_file(const std::string& path) {
  const Document doc(path);
  const std::string text = read_file(path);
  Config config = read_config(doc, parse_yaml(doc, text));
  config.source_path = path;
  return std::make_shared<const Config>(std::move(config));
}

}  // namespace mcpgate::config
