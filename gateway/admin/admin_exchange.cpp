#include "admin/admin_exchange.h"

#include <jansson.h>
#include <openssl/crypto.h>

#include <ctime>

#include "core/json.h"
#include "credentials/token_endpoint.h"

namespace mcpgate::admin {
namespace {

constexpr std::string_view kCredentialsApi = "/admin/v1/credentials/";

using core::JsonPtr;

// A path segment, percent-decoded ('+' stays '+': this is a path, not a query).
std::optional<std::string> decode_segment(std::string_view segment) {
  std::string plus_safe;
  for (char c : segment) plus_safe += c == '+' ? std::string("%2B") : std::string(1, c);
  return http::query_param("v=" + plus_safe, "v");
}

}  // namespace

std::string default_caller_issuer(const config::Config& config) {
  std::string issuer;
  for (const auto& route : config.routes) {
    if (route.auth.type == config::AuthType::None) continue;
    const auto server = config.authorization_servers.find(route.auth.server);
    if (server == config.authorization_servers.end()) continue;
    if (!issuer.empty() && issuer != server->second.issuer) return "";
    issuer = server->second.issuer;
  }
  return issuer;
}

bool AdminExchange::authorized() {
  const auto header = connection_.request().headers.get("Authorization");
  if (header && constant_time_equals(std::string(*header), "Bearer " + state_.token)) return true;
  connection_.send_error({401, "unauthorized", "the admin token is required"}, std::nullopt);
  return false;
}

void AdminExchange::serve_credentials_api(std::string_view rest) {
  if (state_.token.empty() || state_.token_store == nullptr) {
    connection_.send_error({403, "forbidden", "the credentials API is off: set admin.token to use it"}, std::nullopt);
    return;
  }
  if (!authorized()) return;
  // <credential>/subjects/<subject>
  const auto slash = rest.find('/');
  constexpr std::string_view kSubjects = "/subjects/";
  if (slash == std::string_view::npos || rest.substr(slash, kSubjects.size()) != kSubjects) {
    connection_.send_error({404, "not_found", "expected /admin/v1/credentials/<credential>/subjects/<subject>"}, std::nullopt);
    return;
  }
  const std::string credential_name(rest.substr(0, slash));
  const auto subject = decode_segment(rest.substr(slash + kSubjects.size()));
  const auto config = state_.config();
  const auto credential = config->credentials.find(credential_name);
  if (credential == config->credentials.end() || credential->second.type != config::CredentialType::Delegated) {
    connection_.send_error({404, "not_found", "no delegated credential of that name"}, std::nullopt);
    return;
  }
  if (!subject || subject->empty() || subject->find('/') != std::string::npos) {
    connection_.send_error({400, "bad_request", "the subject is missing or badly encoded"}, std::nullopt);
    return;
  }
  std::string issuer = http::query_param(connection_.request().query, "issuer").value_or(default_caller_issuer(*config));
  if (issuer.empty()) {
    connection_.send_error({400, "bad_request", "name the caller's issuer with ?issuer= (routes use several)"}, std::nullopt);
    return;
  }
  const credentials::UserKey user{credential_name, std::move(issuer), *subject};
  const auto& method = connection_.request().method;
  if (method == "PUT") return put_tokens(user);
  if (method == "GET") return get_tokens(user);
  if (method == "DELETE") return delete_tokens(user);
  connection_.send_error({405, "method_not_allowed", "use PUT, GET or DELETE"}, std::nullopt);
}

void AdminExchange::put_tokens(const credentials::UserKey& user) {
  const auto& body = connection_.request().body;
  JsonPtr object(json_loadb(body.data(), body.size(), JSON_REJECT_DUPLICATES, nullptr), &json_decref);
  const char* access = json_string_value(json_object_get(object.get(), "access_token"));
  const json_t* refresh = json_object_get(object.get(), "refresh_token");
  const json_t* scope = json_object_get(object.get(), "scope");
  const json_t* expires_at = json_object_get(object.get(), "expires_at");
  const json_t* expires_in = json_object_get(object.get(), "expires_in");
  const bool shapes_ok = (refresh == nullptr || json_is_string(refresh)) && (scope == nullptr || json_is_string(scope)) &&
                         (expires_at == nullptr || json_is_integer(expires_at)) &&
                         (expires_in == nullptr || json_is_integer(expires_in)) && !(expires_at && expires_in);
  if (!json_is_object(object.get()) || access == nullptr || *access == '\0' || !shapes_ok) {
    connection_.send_error({400, "bad_request",
                            "expected {\"access_token\": string, \"refresh_token\"?: string, \"expires_at\"?: unix "
                            "seconds | \"expires_in\"?: seconds, \"scope\"?: string}"},
                           std::nullopt);
    return;
  }
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  credentials::UserTokens tokens;
  tokens.access_token = access;
  if (refresh != nullptr) tokens.refresh_token = json_string_value(refresh);
  if (scope != nullptr) tokens.scope = json_string_value(scope);
  if (expires_at != nullptr) tokens.expires_at = json_integer_value(expires_at);
  if (expires_in != nullptr) tokens.expires_at = credentials::expiry_after(now, json_integer_value(expires_in));
  tokens.updated_at = now;
  // Owner of the callback: the admin loop's store; it touches this exchange only while it lives.
  state_.token_store->save(user, tokens, [this, gone = gone_](credentials::StoreStatus status) {
    if (*gone) return;
    if (status != credentials::StoreStatus::Ok) {
      connection_.send_error({503, "store_unavailable", "the token store cannot be reached"}, std::nullopt);
      return;
    }
    connection_.send_response(204, {}, "");
  });
}

void AdminExchange::get_tokens(const credentials::UserKey& user) {
  state_.token_store->load(user, [this, gone = gone_, user](credentials::StoreStatus status, credentials::UserTokens tokens) {
    if (*gone) return;
    if (status == credentials::StoreStatus::NotFound) {
      connection_.send_error({404, "not_found", "no tokens are stored for this subject"}, std::nullopt);
      return;
    }
    if (status != credentials::StoreStatus::Ok) {
      connection_.send_error({503, "store_unavailable", "the token store cannot be reached"}, std::nullopt);
      return;
    }
    // Metadata only: token values never leave the gateway through this API.
    JsonPtr object(json_pack("{s:s, s:s, s:s, s:b, s:b, s:s, s:I, s:I}", "credential", user.credential.c_str(), "issuer",
                             user.issuer.c_str(), "subject", user.subject.c_str(), "has_access_token",
                             !tokens.access_token.empty(), "has_refresh_token", !tokens.refresh_token.empty(), "scope",
                             tokens.scope.c_str(), "expires_at", static_cast<json_int_t>(tokens.expires_at), "updated_at",
                             static_cast<json_int_t>(tokens.updated_at)),
                   &json_decref);
    reply_json(200, core::json_text(object.get()));
  });
}

void AdminExchange::delete_tokens(const credentials::UserKey& user) {
  state_.token_store->erase(user, [this, gone = gone_](credentials::StoreStatus status) {
    if (*gone) return;
    if (status != credentials::StoreStatus::Ok) {
      connection_.send_error({503, "store_unavailable", "the token store cannot be reached"}, std::nullopt);
      return;
    }
    connection_.send_response(204, {}, "");
  });
}


bool constant_time_equals(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

void AdminExchange::reply_json(int status, const std::string& body) {
  http::HeaderList headers;
  headers.add("Content-Type", "application/json");
  headers.add("Cache-Control", "no-store");
  connection_.send_response(status, std::move(headers), body);
}

void AdminExchange::start() {
  const auto& request = connection_.request();
  if (request.path.rfind(kCredentialsApi, 0) == 0) {
    serve_credentials_api(std::string_view(request.path).substr(kCredentialsApi.size()));
    return;
  }
  if (request.method != "GET" && request.method != "HEAD") {
    connection_.send_error({405, "method_not_allowed", "the admin endpoints answer GET"}, std::nullopt);
    return;
  }
  if (request.path == "/healthz") {
    reply_json(200, R"({"status":"ok"})");
  } else if (request.path == "/readyz") {
    const bool ready = state_.ready.load() && (!state_.dependencies_ready || state_.dependencies_ready());
    reply_json(ready ? 200 : 503, ready ? R"({"status":"ready"})" : R"({"status":"not_ready"})");
  } else if (request.path == "/metrics") {
    if (!state_.token.empty()) {
      const auto header = request.headers.get("Authorization");
      if (!header || !constant_time_equals(std::string(*header), "Bearer " + state_.token)) {
        connection_.send_error({401, "unauthorized", "the admin token is required"}, std::nullopt);
        return;
      }
    }
    http::HeaderList headers;
    headers.add("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    connection_.send_response(200, std::move(headers), state_.metrics->render_prometheus());
  } else {
    connection_.send_error({404, "not_found", "unknown admin endpoint"}, std::nullopt);
  }
}

}  // namespace mcpgate::admin
