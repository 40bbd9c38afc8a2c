#include "proxy/connect_exchange.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <ctime>

#include "auth/token_lookup.h"
#include "credentials/token_endpoint.h"
#include "observability/log.h"

#include "core/base64url.h"

#include "core/json.h"

namespace mcpgate::proxy {
namespace {

constexpr std::string_view kConnectPrefix = "/oauth/connect/";
constexpr std::string_view kCallbackPath = "/oauth/callback";
constexpr std::string_view kFlowCookie = "mcpgate_connect";
constexpr int64_t kFlowTtlS = 600;  // from the redirect to the AS until the callback

using core::JsonPtr;

int64_t now_s() { return static_cast<int64_t>(std::time(nullptr)); }

std::string html_escape(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

std::string pkce_challenge(const std::string& verifier) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(verifier.data()), verifier.size(), digest);
  return core::base64url_encode(std::string_view(reinterpret_cast<char*>(digest), sizeof digest));
}

std::string flow_to_json(const credentials::ConnectGrant& grant, const std::string& verifier) {
  JsonPtr object(json_pack("{s:s, s:s, s:s, s:s}", "c", grant.credential.c_str(), "i", grant.issuer.c_str(), "s",
                           grant.subject.c_str(), "v", verifier.c_str()),
                 &json_decref);
  return core::json_text(object.get());
}

bool flow_from_json(const std::string& json, credentials::ConnectGrant* grant, std::string* verifier) {
  JsonPtr object(json_loadb(json.data(), json.size(), 0, nullptr), &json_decref);
  const char *credential = nullptr, *issuer = nullptr, *subject = nullptr, *code_verifier = nullptr;
  if (!object || json_unpack(object.get(), "{s:s, s:s, s:s, s:s}", "c", &credential, "i", &issuer, "s", &subject, "v",
                             &code_verifier) != 0)
    return false;
  grant->credential = credential;
  grant->issuer = issuer;
  grant->subject = subject;
  *verifier = code_verifier;
  return true;
}

}  // namespace

bool is_connect_path(std::string_view path) {
  return path == kCallbackPath || (path.substr(0, kConnectPrefix.size()) == kConnectPrefix && path.size() > kConnectPrefix.size());
}

bool offers_connect_flow(const config::Config& config) {
  return std::any_of(config.credentials.begin(), config.credentials.end(),
                     [](const auto& entry) { return entry.second.type == config::CredentialType::Delegated; });
}

ConnectExchange::ConnectExchange(http::Connection& connection, Worker& worker)
    : connection_(connection), worker_(worker), config_(worker.config), registry_(worker.auth) {}

void ConnectExchange::start() {
  const auto& request = connection_.request();
  if (request.method != "GET") {
    page(405, "Method not allowed", "This address is opened in a browser.");
    return;
  }
  if (request.path == kCallbackPath) {
    start_callback();
  } else {
    start_connect(request.path.substr(kConnectPrefix.size()));
  }
}

const config::CredentialConfig* ConnectExchange::delegated_credential(const std::string& name) const {
  const auto found = config_->credentials.find(name);
  if (found == config_->credentials.end() || found->second.type != config::CredentialType::Delegated) return nullptr;
  return &found->second;
}

std::string ConnectExchange::redirect_uri() const { return config_->server.public_url + std::string(kCallbackPath); }

void ConnectExchange::start_connect(const std::string& credential_name) {
  const auto* credential = delegated_credential(credential_name);
  const auto link = http::query_param(connection_.request().query, "link");
  const auto grant = credential != nullptr && link ? credentials::open_connect_grant(*worker_.shared.sealer, *link, now_s())
                                                   : std::nullopt;
  if (!grant || grant->credential != credential_name) {
    worker_.metrics.record_credential_event("connect", credential != nullptr ? credential_name : "", "refused");
    page(400, "This link does not work",
         "The link is invalid or has expired. Retry the request in your MCP client to get a new one.");
    return;
  }
  Flow flow{*grant, credentials::random_token()};
  const std::string state = credentials::random_token();
  // Owner of the callbacks: the store; they touch this exchange only while it lives (gone_).
  worker_.token_store->claim_once(
      "link:" + grant->id, (grant->expires_at - now_s() + 1) * 1000,
      [this, gone = gone_, flow, state](credentials::StoreStatus status) {
        if (*gone) return;
        if (status != credentials::StoreStatus::Ok) {
          const bool used = status == credentials::StoreStatus::Conflict;
          worker_.metrics.record_credential_event("connect", flow.grant.credential, used ? "refused" : "failed");
          page(used ? 400 : 503, used ? "This link was already used" : "Try again shortly",
               used ? "Each link works once. Retry the request in your MCP client to get a new one."
                    : "The gateway cannot reach its token store right now.");
          return;
        }
        worker_.token_store->put_record(
            "flow:" + state, flow_to_json(flow.grant, flow.verifier), kFlowTtlS * 1000,
            [this, gone, flow, state](credentials::StoreStatus status) {
              if (*gone) return;
              if (status != credentials::StoreStatus::Ok) {
                page(503, "Try again shortly", "The gateway cannot reach its token store right now.");
                return;
              }
              redirect_to_server(flow, state);
            });
      });
}

void ConnectExchange::redirect_to_server(const Flow& flow, const std::string& state) {
  const auto* credential = delegated_credential(flow.grant.credential);
  auto server = credential != nullptr ? registry_->find(credential->server) : nullptr;
  if (!server) {
    page(404, "Unknown account type", "This gateway no longer offers that connection.");
    return;
  }
  if (!waiter_) waiter_ = std::make_shared<auth::Waiter>([this, flow, state] { redirect_to_server(flow, state); });
  const auth::WaitHandle wait{&worker_.loop, waiter_};
  switch (server->ensure_metadata(worker_.fetch_context(), &wait)) {
    case auth::AuthorizationServer::Availability::Waiting:
      return;
    case auth::AuthorizationServer::Availability::Unavailable:
      page(503, "Try again shortly", "The account's authorization server cannot be reached right now.");
      return;
    case auth::AuthorizationServer::Availability::Ready:
      break;
  }
  const std::string endpoint = auth::metadata_string(*server->metadata(), "authorization_endpoint");
  if (endpoint.empty()) {
    page(502, "Cannot connect", "The account's authorization server publishes no authorization endpoint.");
    return;
  }
  std::string scope;
  for (const auto& s : credential->scopes) scope.append(scope.empty() ? "" : " ").append(s);
  std::string location = endpoint + (endpoint.find('?') == std::string::npos ? "?" : "&");
  location += "response_type=code&client_id=" + auth::form_urlencode(server->config().client_id) +
              "&redirect_uri=" + auth::form_urlencode(redirect_uri()) + "&state=" + state +
              "&code_challenge=" + pkce_challenge(flow.verifier) + "&code_challenge_method=S256";
  if (!scope.empty()) location += "&scope=" + auth::form_urlencode(scope);
  if (!credential->resource.empty()) location += "&resource=" + auth::form_urlencode(credential->resource);
  // OpenID Connect issues a refresh token for offline_access only after consent.
  if (scope.find("offline_access") != std::string::npos) location += "&prompt=consent";
  http::HeaderList headers;
  headers.add("Location", location);
  headers.add("Cache-Control", "no-store");
  const bool secure = config_->server.public_url.rfind("https://", 0) == 0;
  headers.add("Set-Cookie", std::string(kFlowCookie) + "=" + state + "; Path=/oauth/; Max-Age=" + std::to_string(kFlowTtlS) +
                                "; HttpOnly; SameSite=Lax" + (secure ? "; Secure" : ""));
  worker_.metrics.record_credential_event("connect", flow.grant.credential, "started");
  connection_.send_response(302, std::move(headers), "");
}

void ConnectExchange::start_callback() {
  const auto& request = connection_.request();
  const auto state = http::query_param(request.query, "state");
  const auto cookie = http::cookie_value(request.headers, kFlowCookie);
  if (!state || state->empty()) {
    page(400, "Cannot connect", "The answer of the authorization server carries no state.");
    return;
  }
  worker_.token_store->take_record("flow:" + *state, [this, gone = gone_, state = *state, cookie](
                                                         credentials::StoreStatus status, std::string value) {
    if (*gone) return;
    Flow flow;
    if (status == credentials::StoreStatus::Unavailable) {
      page(503, "Try again shortly", "The gateway cannot reach its token store right now.");
      return;
    }
    if (status != credentials::StoreStatus::Ok || !flow_from_json(value, &flow.grant, &flow.verifier)) {
      worker_.metrics.record_credential_event("connect", "", "refused");
      page(400, "This sign-in is unknown or expired", "Retry the request in your MCP client to get a new link.");
      return;
    }
    // The flow must end in the browser that started it: a callback URL sent to someone else does
    // not link their account into this caller's identity.
    if (!cookie || cookie->size() != state.size() || CRYPTO_memcmp(cookie->data(), state.data(), state.size()) != 0) {
      worker_.metrics.record_credential_event("connect", flow.grant.credential, "refused");
      page(400, "This sign-in was started in another browser", "Open the link from your MCP client in this browser.");
      return;
    }
    const auto& query = connection_.request().query;
    if (auto error = http::query_param(query, "error")) {
      worker_.metrics.record_credential_event("connect", flow.grant.credential, "refused");
      page(400, "The account was not connected", "The authorization server answered: " + *error + ".");
      return;
    }
    const auto code = http::query_param(query, "code");
    if (!code || code->empty()) {
      page(400, "Cannot connect", "The answer of the authorization server carries no code.");
      return;
    }
    redeem(flow, *code);
  });
}

void ConnectExchange::redeem(const Flow& flow, const std::string& code) {
  const auto* credential = delegated_credential(flow.grant.credential);
  auto server = credential != nullptr ? registry_->find(credential->server) : nullptr;
  if (!server || !server->metadata()) {
    page(503, "Try again shortly", "The account's authorization server is not known right now.");
    return;
  }
  // RFC 9207: a response from another issuer (a mix-up attack) is refused; when the server
  // says it always sends iss, its absence is refused too.
  const auto iss = http::query_param(connection_.request().query, "iss");
  const auto metadata_text = server->metadata();
  JsonPtr metadata(json_loadb(metadata_text->data(), metadata_text->size(), 0, nullptr), &json_decref);
  const bool iss_always_sent = json_is_true(json_object_get(metadata.get(), "authorization_response_iss_parameter_supported"));
  if ((iss && *iss != server->config().issuer) || (!iss && iss_always_sent)) {
    worker_.metrics.record_credential_event("connect", flow.grant.credential, "refused");
    page(400, "Cannot connect", "The answer did not come from the expected authorization server.");
    return;
  }
  const std::string endpoint = auth::metadata_string(*server->metadata(), "token_endpoint");
  std::string body = "grant_type=authorization_code&code=" + auth::form_urlencode(code) +
                     "&redirect_uri=" + auth::form_urlencode(redirect_uri()) +
                     "&code_verifier=" + auth::form_urlencode(flow.verifier);
  if (!credential->resource.empty()) body += "&resource=" + auth::form_urlencode(credential->resource);
  const credentials::UserKey user{flow.grant.credential, flow.grant.issuer, flow.grant.subject};
  credentials::post_token_request(
      worker_.fetcher, endpoint, *credential, server->config(), std::move(body),
      [this, gone = gone_, user](upstream::FetchResult& result) {
        if (*gone) return;
        auto tokens = result.ok() ? credentials::tokens_from_token_response(result.body, nullptr, now_s()) : std::nullopt;
        if (!tokens) {
          worker_.metrics.record_credential_event("connect", user.credential, "failed");
          observability::LogEvent(spdlog::level::warn, "connect flow: the code was not redeemed")
              .field("credential", user.credential)
              .field("status", static_cast<int64_t>(result.status))
              .field("error", credentials::token_error_code(result))
              .emit();
          page(502, "The account was not connected", "The authorization server did not issue a token.");
          return;
        }
        worker_.token_store->save(user, *tokens, [this, gone, user](credentials::StoreStatus status) {
          if (*gone) return;
          if (status != credentials::StoreStatus::Ok) {
            worker_.metrics.record_credential_event("connect", user.credential, "failed");
            page(503, "Try again shortly", "The gateway could not store the connection.");
            return;
          }
          worker_.metrics.record_credential_event("connect", user.credential, "linked");
          observability::LogEvent(spdlog::level::info, "delegated credential linked")
              .field("credential", user.credential)
              .field("subject", user.subject)
              .emit();
          http::HeaderList clear;
          clear.add("Set-Cookie", std::string(kFlowCookie) + "=; Path=/oauth/; Max-Age=0; HttpOnly; SameSite=Lax");
          page(200, "Account connected", "You can close this tab and retry the request in your MCP client.", std::move(clear));
        });
      });
}

void ConnectExchange::page(int status, std::string_view title, std::string_view text, http::HeaderList headers) {
  headers.add("Content-Type", "text/html; charset=utf-8");
  headers.add("Cache-Control", "no-store");
  if (status == 503) headers.add("Retry-After", "2");  // the store or the AS is back in moments, usually
  headers.add("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'");
  headers.add("X-Frame-Options", "DENY");
  const std::string body = "<!doctype html><html><head><meta charset=\"utf-8\"><title>" + html_escape(title) +
                           "</title></head><body style=\"font-family:sans-serif;max-width:40em;margin:4em auto\"><h1>" +
                           html_escape(title) + "</h1><p>" + html_escape(text) + "</p></body></html>";
  connection_.send_response(status, std::move(headers), body);
}

}  // namespace mcpgate::proxy
