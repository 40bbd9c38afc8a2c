#include "proxy/proxy_exchange.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <ctime>

#include "auth/extractor.h"
#include "auth/jwt_verifier.h"
#include "auth/token_cache.h"
#include "auth/token_lookup.h"
#include "credentials/connect_link.h"
#include "credentials/service_tokens.h"
#include "mcp/elicitation.h"
#include "mcp/tools_filter.h"

#include "observability/log.h"
#include "policy/rate_limit.h"
#include "proxy/header_rules.h"

namespace mcpgate::proxy {
namespace {

constexpr std::size_t kMaxBufferedSseBytes = 65536;
constexpr std::size_t kMaxFilteredBodyBytes = 4 << 20;
// A failed token check is reused this long: a replayed bad token costs one signature
// check, or one IdP call, per period and loop, and an IdP outage is retried soon.
constexpr int64_t kFailedCheckCacheS = 2;

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

bool origin_allowed(const config::RouteConfig& route, const config::Config& config, std::string_view origin) {
  if (route.allowed_origins.empty()) {
    // No list: only the gateway's own origin (DNS-rebinding protection stays on).
    std::string_view own = config.server.public_url;
    const auto scheme_end = own.find("://");
    const auto path_start = scheme_end == std::string_view::npos ? own.npos : own.find('/', scheme_end + 3);
    return origin == own.substr(0, path_start);
  }
  return std::any_of(route.allowed_origins.begin(), route.allowed_origins.end(),
                     [&](const std::string& allowed) { return allowed == "*" || allowed == origin; });
}

constexpr std::string_view kCorsRequestHeaders =
    "Authorization, Content-Type, Accept, Mcp-Session-Id, MCP-Protocol-Version, Mcp-Method, Mcp-Name, Last-Event-ID";
constexpr std::string_view kCorsExposedHeaders = "WWW-Authenticate, Mcp-Session-Id, MCP-Protocol-Version, Retry-After";

bool method_allowed(const config::RouteConfig& route, std::string_view method) {
  if (method == "GET" || method == "POST") return true;
  return route.transport == config::Transport::StreamableHttp && method == "DELETE";
}

}  // namespace

ProxyExchange::ProxyExchange(http::Connection& connection, Worker& worker)
    : connection_(connection),
      worker_(worker),
      config_(worker.config),
      plugins_(worker.plugins),
      envelope_(worker.session_envelope),
      started_at_(std::chrono::steady_clock::now()) {}

ProxyExchange::~ProxyExchange() {
  transfer_.reset();  // cancels before anything it points at goes away
  if (streaming_) --worker_.metrics.active_streams;
}

void ProxyExchange::start() {
  const auto& request = connection_.request();
  if (request.method == "POST" && !request.body.empty()) {
    rpc_ = mcp::inspect_jsonrpc(request.body);
    if (rpc_.is_jsonrpc) jsonrpc_id_ = mcp::error_reply_ids(rpc_);
  }
  auto trace = trace_context(request.headers.get("traceparent"), rpc_.meta_traceparent);
  trace_id_ = std::move(trace.trace_id);
  traceparent_ = std::move(trace.traceparent);
  trace_from_header_ = trace.source == TraceContext::Source::Header;
  if (check_request() != Stage::Continue) return;
  if (check_mcp_headers() != Stage::Continue) return;
  continue_from_authentication();
}

void ProxyExchange::continue_from_authentication() {
  if (client_gone_) return;
  audited_ = true;
  if (authenticate() != Stage::Continue) return;
  if (authorize() != Stage::Continue) return;
  if (run_policy_plugins() != Stage::Continue) return;
  if (check_rate_limits() != Stage::Continue) return;
  if (choose_endpoint() != Stage::Continue) return;
  if (choose_credential() != Stage::Continue) return;
  forward();
}

ProxyExchange::Stage ProxyExchange::choose_endpoint() {
  const auto& route = *match_.route;
  if (route.upstreams.size() == 1 || endpoint_.held()) return Stage::Continue;  // one endpoint, or resumed
  if (auto envelope = connection_.request().headers.get("Mcp-Session-Id")) {
    // A session lives in one endpoint's memory: an id no key opens, or naming an endpoint
    // the route no longer lists, is a session this gateway cannot reach (404: start anew).
    auto target = envelope_->unwrap(route.name, *envelope);
    std::size_t index = route.upstreams.size();
    if (target)
      for (std::size_t i = 0; i < route.upstreams.size(); ++i)
        if (endpoint_name(route.upstreams[i]) == target->endpoint) index = i;
    if (index == route.upstreams.size()) {
      respond_error(404, "session_not_found", "unknown session: start a new one");
      return Stage::Responded;
    }
    session_ = std::move(target);
    endpoint_ = worker_.shared.endpoints->hold(route, index);
  } else {
    endpoint_ = worker_.shared.endpoints->choose(route, tried_endpoints_);
  }
  tried_endpoints_.push_back(endpoint_.index());
  return Stage::Continue;
}

const config::UpstreamUrl& ProxyExchange::endpoint() const {
  return match_.route->upstreams[endpoint_.held() ? endpoint_.index() : 0];
}

bool ProxyExchange::retry_on_another_endpoint() {
  const auto& route = *match_.route;
  endpoint_.mark_unreachable(config_->server.limits.endpoint_skip_ms);
  if (session_) return false;  // the session died with its endpoint
  auto next = worker_.shared.endpoints->choose(route, tried_endpoints_);
  if (!next.held()) return false;
  observability::LogEvent(spdlog::level::warn, "upstream endpoint unreachable; trying another")
      .field("route", route.name)
      .field("endpoint", endpoint_name(endpoint()))
      .field("trace_id", trace_id_)
      .emit();
  endpoint_ = std::move(next);
  tried_endpoints_.push_back(endpoint_.index());
  retired_transfer_ = std::move(transfer_);  // its callback is still on the stack
  if (!retry_waiter_) retry_waiter_ = std::make_shared<auth::Waiter>([this] {
    if (!client_gone_) forward();
  });
  worker_.loop.post([weak = std::weak_ptr<auth::Waiter>(retry_waiter_)] {
    if (auto waiter = weak.lock()) waiter->resume();
  });
  return true;
}

ProxyExchange::Stage ProxyExchange::check_request() {
  const auto& request = connection_.request();
  match_ = match_route(*config_, request.path);
  if (match_.route == nullptr) {
    respond_error(404, "not_found", "no route for this path");
    return Stage::Responded;
  }
  const auto& route = *match_.route;
  if (http::has_dot_segment(request.path)) {
    respond_error(400, "bad_request", "dot segments are not allowed in the path");
    return Stage::Responded;
  }
  // "/open/%61dmin" or "/open//admin" would pass the checks of route /open and then be read
  // as /open/admin by an upstream that decodes or merges: refused when that names another route.
  const bool plain_path = request.path.find_first_of("%;\\") == std::string::npos && request.path.find("//") == std::string::npos;
  if (!plain_path && match_route(*config_, http::lenient_path(request.path)).route != &route) {
    respond_error(400, "bad_request", "the path names another route once decoded");
    return Stage::Responded;
  }
  if (auto origin = request.headers.get("Origin"); origin && !origin_allowed(route, *config_, *origin)) {
    respond_error(403, "origin_not_allowed", "the Origin of this request is not allowed on this route");
    return Stage::Responded;
  }
  origin_checked_ = true;
  if (request.method == "OPTIONS") {  // CORS preflight: answered here, before authentication
    http::HeaderList headers = cors_headers();
    if (!headers.fields().empty()) {
      headers.add("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS");
      headers.add("Access-Control-Allow-Headers", std::string(kCorsRequestHeaders));
      headers.add("Access-Control-Max-Age", "600");
    }
    complete(204);
    connection_.send_response(204, std::move(headers), "");
    return Stage::Responded;
  }
  if (!method_allowed(route, request.method)) {
    respond_error(405, "method_not_allowed", "HTTP method not allowed on an MCP endpoint");
    return Stage::Responded;
  }
  if (request.method != "POST") return Stage::Continue;
  if (!rpc_.valid_json) {
    jsonrpc_id_ = "null";
    respond_error(400, "parse_error",
                  rpc_.duplicate_keys ? "the request body has a duplicate JSON key" : "the request body is not valid JSON");
    return Stage::Responded;
  }
  if (!rpc_.is_jsonrpc) {
    jsonrpc_id_ = "null";
    respond_error(400, "invalid_request", "the request body is not a JSON-RPC 2.0 message");
    return Stage::Responded;
  }
  if (rpc_.unusable_id) {
    jsonrpc_id_ = "null";
    respond_error(400, "invalid_request", "a request id must be a string or an integer");
    return Stage::Responded;
  }
  // The filter rewrites the one answer to the request's id: a tools/list in a batch, or
  // without an id, would be answered past it.
  if (route.filter_tools_list && (rpc_.is_batch || !rpc_.is_request) &&
      std::any_of(rpc_.targets.begin(), rpc_.targets.end(), [](const auto& target) { return target.method == "tools/list"; })) {
    respond_error(400, "invalid_request", "tools/list must be sent alone, as a request with an id, on this route");
    return Stage::Responded;
  }
  return Stage::Continue;
}

// 2026-07-28 (SEP-2243): the routing headers must agree with the body, or policy read
// from one could be bypassed through the other. Modern requests must carry them.
ProxyExchange::Stage ProxyExchange::check_mcp_headers() {
  const auto& request = connection_.request();
  if (request.method != "POST") return Stage::Continue;
  if (auto mismatch = mcp_header_mismatch(request.headers, rpc_)) {
    respond_error(400, "header_mismatch", std::move(*mismatch));
    return Stage::Responded;
  }
  return Stage::Continue;
}

ProxyExchange::Stage ProxyExchange::authenticate() {
  const auto& route = *match_.route;
  if (route.auth.type == config::AuthType::None || identity_) return Stage::Continue;  // none, or done before parking
  if (token_.empty()) {
    auto extracted = auth::extract_bearer_token(connection_.request());
    if (extracted.outcome != auth::ExtractOutcome::Found) {
      respond_challenge(auth::challenge_for(extracted.outcome, challenge_context(scopes_needed())));
      return Stage::Responded;
    }
    token_ = std::move(extracted.token);
  }
  if (route.auth.type == config::AuthType::Plugin) return verify_with_plugin();
  auto server = worker_.auth ? worker_.auth->find(route.auth.server) : nullptr;
  if (!server) {
    respond_challenge(auth::challenge_for(auth::AuthStatus::InternalError, challenge_context({})));
    return Stage::Responded;
  }
  switch (route.auth.type) {
    case config::AuthType::Jwt:
      return verify_jwt_token(*server);
    case config::AuthType::Userinfo:
    case config::AuthType::Introspection:
      return verify_by_lookup(*server);
    default:
      respond_challenge(auth::challenge_for(auth::AuthStatus::InternalError, challenge_context({})));
      return Stage::Responded;
  }
}

ProxyExchange::Stage ProxyExchange::verify_jwt_token(auth::AuthorizationServer& server) {
  const auto& route = *match_.route;
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  const std::string cache_key = auth::TokenCache::key_for(route.name, token_);
  if (const auto* cached = worker_.token_cache.find(cache_key, now)) {
    if (cached->status != auth::AuthStatus::Ok) {
      respond_challenge(auth::challenge_for(cached->status, challenge_context(scopes_needed())));
      return Stage::Responded;
    }
    identity_ = cached->identity;
    return Stage::Continue;
  }
  if (!waiter_) waiter_ = std::make_shared<auth::Waiter>([this] { continue_from_authentication(); });
  const auth::WaitHandle wait{&worker_.loop, waiter_};
  switch (server.ensure_keys(worker_.fetch_context(), &wait)) {
    case auth::AuthorizationServer::Availability::Ready:
      break;
    case auth::AuthorizationServer::Availability::Waiting:
      return Stage::Stopped;
    case auth::AuthorizationServer::Availability::Unavailable: {
      auto context = challenge_context({});
      context.retry_after_s = server.retry_after_s();
      respond_challenge(auth::challenge_for(auth::AuthStatus::KeysUnavailable, context));
      return Stage::Responded;
    }
  }
  const auto keys = server.keys();
  if (!keys) {  // the fetch we waited for failed
    auto context = challenge_context({});
    context.retry_after_s = server.retry_after_s();
    respond_challenge(auth::challenge_for(auth::AuthStatus::KeysUnavailable, context));
    return Stage::Responded;
  }
  auth::JwtRules rules{server.config().issuer, route.auth.audiences, route.auth.algorithms,
                       static_cast<int64_t>(route.auth.leeway_s)};
  auth::JwtResult result = auth::verify_jwt(token_, *keys, rules, now);
  if (result.status == auth::AuthStatus::KeyNotFound && !refetched_keys_) {
    // The IdP may have rotated its keys: refetch once (rate-limited per server).
    refetched_keys_ = true;
    if (server.refetch_keys_for_unknown_kid(worker_.fetch_context(), wait) ==
        auth::AuthorizationServer::Availability::Waiting)
      return Stage::Stopped;
  }
  if (result.status == auth::AuthStatus::KeyNotFound) result.status = server.unknown_kid_status();
  worker_.metrics.record_jwt_verification(worker_.index, route.name, route.auth.server,
                                          auth::auth_status_name(result.status));
  if (result.status == auth::AuthStatus::KeysUnavailable) {
    auto context = challenge_context({});
    context.retry_after_s = server.retry_after_s();
    respond_challenge(auth::challenge_for(result.status, context));
    return Stage::Responded;
  }
  if (result.status != auth::AuthStatus::Ok) {
    if (route.auth.cache_ttl_s > 0 && auth::is_token_fault(result.status))
      worker_.token_cache.insert(cache_key, {result.status, {}, now + kFailedCheckCacheS});
    respond_challenge(auth::challenge_for(result.status, challenge_context(scopes_needed())));
    return Stage::Responded;
  }
  // Cached until the token expires or cache_ttl_s passes, whichever is first (0: never).
  if (route.auth.cache_ttl_s > 0) {
    const int64_t valid_until = std::min<int64_t>(result.identity.expires_at, now + route.auth.cache_ttl_s);
    worker_.token_cache.insert(cache_key, {auth::AuthStatus::Ok, result.identity, valid_until});
  }
  identity_ = std::move(result.identity);
  return Stage::Continue;
}

// userinfo / introspection: one call per token per cache period on this loop;
// concurrent requests with the same token wait for that one call.
ProxyExchange::Stage ProxyExchange::verify_by_lookup(auth::AuthorizationServer& server) {
  const auto& route = *match_.route;
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  const std::string cache_key = auth::TokenCache::key_for(route.name, token_);
  auto settle = [&](auth::AuthStatus status, const auth::Identity& identity) {
    if (status == auth::AuthStatus::Ok) {
      identity_ = identity;
      return Stage::Continue;
    }
    auto context = challenge_context(scopes_needed());
    context.retry_after_s = 1;
    respond_challenge(auth::challenge_for(status, context));
    return Stage::Responded;
  };
  if (lookup_ && lookup_->done) return settle(lookup_->status, lookup_->identity);
  if (const auto* cached = worker_.token_cache.find(cache_key, now)) return settle(cached->status, cached->identity);
  if (!waiter_) waiter_ = std::make_shared<auth::Waiter>([this] { continue_from_authentication(); });
  const auth::WaitHandle wait{&worker_.loop, waiter_};
  switch (server.ensure_metadata(worker_.fetch_context(), &wait)) {
    case auth::AuthorizationServer::Availability::Ready:
      break;
    case auth::AuthorizationServer::Availability::Waiting:
      return Stage::Stopped;
    case auth::AuthorizationServer::Availability::Unavailable:
      break;
  }
  const auto metadata = server.metadata();
  const bool introspection = route.auth.type == config::AuthType::Introspection;
  const std::string endpoint =
      metadata ? auth::metadata_string(*metadata, introspection ? "introspection_endpoint" : "userinfo_endpoint") : "";
  if (endpoint.empty()) {
    auto context = challenge_context({});
    context.retry_after_s = server.retry_after_s();
    respond_challenge(auth::challenge_for(auth::AuthStatus::IdpUnavailable, context));
    return Stage::Responded;
  }
  auto& pending = worker_.pending_token_lookups[cache_key];
  pending.waiters.push_back(wait);
  lookup_ = pending.outcome;
  if (pending.waiters.size() > 1) return Stage::Stopped;  // joined a call in flight

  http::HeaderList headers;
  headers.add("Accept", "application/json");
  std::string body;
  const auto& server_config = server.config();
  if (introspection) {
    headers.add("Authorization", auth::client_secret_basic(server_config.client_id, server_config.client_secret));
    headers.add("Content-Type", "application/x-www-form-urlencoded");
    body = auth::introspection_request_body(token_);
  } else {
    headers.add("Authorization", "Bearer " + token_);
  }
  const auth::IntrospectionRules rules{server_config.issuer, route.auth.audiences,
                                       static_cast<int64_t>(route.auth.leeway_s)};
  const int64_t ttl = route.auth.cache_ttl_s;
  Worker* worker = &worker_;
  // Owner of the callback: the worker's Fetcher. It touches only the worker (which
  // outlives its fetches) and copies; waiting exchanges are reached through weak pointers.
  worker_.fetcher.fetch(introspection ? "POST" : "GET", endpoint, std::move(headers), std::move(body),
                        auth::AuthorizationServer::kFetchTimeoutMs,
                        [worker, cache_key, rules, ttl, introspection](upstream::FetchResult& fetched) {
                          const int64_t now = static_cast<int64_t>(std::time(nullptr));
                          const auth::LookupResponse response{fetched.error == upstream::TransferError::None,
                                                              fetched.status, fetched.body};
                          auth::LookupResult result = introspection
                                                          ? auth::read_introspection_response(response, rules, now)
                                                          : auth::read_userinfo_response(response, rules.issuer);
                          int64_t valid_until = now + kFailedCheckCacheS;
                          if (result.status == auth::AuthStatus::Ok) {
                            valid_until = now + ttl;
                            if (result.identity.expires_at > 0) valid_until = std::min(valid_until, result.identity.expires_at);
                          }
                          auto pending = std::move(worker->pending_token_lookups[cache_key]);
                          worker->pending_token_lookups.erase(cache_key);
                          *pending.outcome = {true, result.status, result.identity};
                          if (valid_until > now)
                            worker->token_cache.insert(cache_key, {result.status, std::move(result.identity), valid_until});
                          auth::resume_waiters(pending.waiters);
                        });
  return Stage::Stopped;
}

plugins::Resume ProxyExchange::plugin_resume() {
  if (!waiter_) waiter_ = std::make_shared<auth::Waiter>([this] { continue_from_authentication(); });
  return {worker_.loop_ref, [waiter = std::weak_ptr<auth::Waiter>(waiter_)] {
            if (auto alive = waiter.lock()) alive->resume();
          }};
}

const std::vector<plugins::RpcView>& ProxyExchange::plugin_views() {
  if (!plugin_views_) plugin_views_ = plugins::rpc_views(match_.route->name, connection_.request());
  return *plugin_views_;
}

// auth type plugin: the plugin's verify_token decides; its answer may come later.
ProxyExchange::Stage ProxyExchange::verify_with_plugin() {
  const auto& route = *match_.route;
  if (!plugin_verify_) {
    const auto plugin = plugins_ ? plugins_->find(route.auth.plugin) : nullptr;
    if (!plugin) {
      respond_challenge(auth::challenge_for(auth::AuthStatus::InternalError, challenge_context({})));
      return Stage::Responded;
    }
    plugin_verify_ = plugin->verify_token(token_, route.name, plugin_resume());
  }
  if (!plugin_verify_->done) return Stage::Stopped;
  const auto outcome = std::move(plugin_verify_);
  worker_.metrics.record_plugin_decision(worker_.index, route.auth.plugin, "verify_token",
                                         plugins::result_label(outcome->result));
  if (outcome->result == MCPGATE_ALLOW) {
    identity_ = outcome->identity;
    return Stage::Continue;
  }
  auto context = challenge_context(outcome->result == MCPGATE_DENY ? scopes_needed() : std::vector<std::string>{});
  auth::Challenge challenge =
      challenge_for(outcome->result == MCPGATE_DENY ? auth::AuthStatus::TokenRejected : auth::AuthStatus::IdpUnavailable, context);
  if (outcome->result != MCPGATE_DENY) challenge.reason = "auth_unavailable";
  if (!outcome->reason.empty()) challenge.message = outcome->reason;
  respond_challenge(challenge);
  return Stage::Responded;
}

ProxyExchange::Stage ProxyExchange::run_policy_plugins() {
  const auto& route = *match_.route;
  if (route.policy_plugins.empty() || !identity_) return Stage::Continue;
  const auto& views = plugin_views();
  while (policy_step_ < route.policy_plugins.size() * views.size()) {
    const std::string& name = route.policy_plugins[policy_step_ / views.size()];
    if (!plugin_decision_) {
      const auto plugin = plugins_ ? plugins_->find(name) : nullptr;
      if (!plugin) {
        respond_error(500, "internal_error", "a policy plugin of this route is not loaded");
        return Stage::Responded;
      }
      plugin_decision_ = plugin->authorize(*identity_, views[policy_step_ % views.size()], plugin_resume());
    }
    if (!plugin_decision_->done) return Stage::Stopped;
    const auto decision = std::move(plugin_decision_);
    worker_.metrics.record_plugin_decision(worker_.index, name, "authorize", plugins::result_label(decision->result));
    if (decision->result == MCPGATE_ALLOW) {
      ++policy_step_;
      continue;
    }
    if (decision->result == MCPGATE_DENY && !decision->step_up_scopes.empty()) {
      auto scopes = scopes_needed();
      for (const auto& scope : decision->step_up_scopes)
        if (std::find(scopes.begin(), scopes.end(), scope) == scopes.end()) scopes.push_back(scope);
      auth::Challenge challenge = auth::challenge_for(auth::AuthStatus::InsufficientScope, challenge_context(scopes));
      if (!decision->reason.empty()) challenge.message = decision->reason;
      respond_challenge(challenge);
    } else if (decision->result == MCPGATE_DENY) {
      respond_error(403, "policy_denied",
                    decision->reason.empty() ? "denied by the route's policy plugin '" + name + "'" : decision->reason);
    } else {
      http::HeaderList headers = cors_headers();
      headers.add("Retry-After", "1");
      refusal_ = "policy_unavailable";
      complete(503);
      connection_.send_error({503, "policy_unavailable",
                              decision->reason.empty() ? "the route's policy cannot decide now; retry later" : decision->reason},
                             jsonrpc_id_, headers);
    }
    return Stage::Responded;
  }
  return Stage::Continue;
}

// Built-in token buckets: local to the process, or in the shared store (one round trip).
ProxyExchange::Stage ProxyExchange::check_rate_limits() {
  const auto& route = *match_.route;
  if (route.rate_limits.empty() || rate_checked_) return Stage::Continue;
  std::vector<std::size_t> limits;
  auto buckets = policy::buckets_for(route, rpc_.targets, identity_ ? &*identity_ : nullptr, limits);
  if (buckets.empty()) {
    rate_checked_ = true;
    return Stage::Continue;
  }
  for (std::size_t i = 0; i < buckets.size(); ++i) {
    if (buckets[i].cost <= buckets[i].capacity) continue;
    // No wait would help: a batch needing more tokens than the bucket holds never passes.
    const auto& limit = route.rate_limits[limits[i]];
    worker_.metrics.record_rate_limit(worker_.index, route.name, limit.name, "limited");
    respond_error(429, "rate_limited",
                  "this batch counts " + std::to_string(buckets[i].cost) + " messages against rate limit '" + limit.name +
                      "', more than its burst of " + std::to_string(buckets[i].capacity) + "; send fewer at once");
    return Stage::Responded;
  }
  if (!rate_answer_) {
    rate_answer_ = std::make_shared<RateAnswer>();
    if (worker_.token_store->shares_buckets()) {
      const auto resume = plugin_resume();
      // Owner of the callback: the token store's backend, on this loop; the exchange is reached
      // only through the weak waiter inside `resume`.
      worker_.token_store->take_tokens(std::move(buckets), [answer = rate_answer_, resume](credentials::StoreStatus status,
                                                                                             credentials::BucketVerdict verdict) {
        *answer = {true, status, verdict};
        resume.resume();
      });
      return Stage::Stopped;
    }
    const auto now_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
    *rate_answer_ = {true, credentials::StoreStatus::Ok, worker_.shared.rate_buckets->take(buckets, now_ms)};
  }
  if (!rate_answer_->done) return Stage::Stopped;
  rate_checked_ = true;
  const auto answer = std::move(rate_answer_);
  if (answer->status != credentials::StoreStatus::Ok) {
    // The shared store is down: requests go through (an outage of Redis must not stop every route).
    for (std::size_t index : limits)
      worker_.metrics.record_rate_limit(worker_.index, route.name, route.rate_limits[index].name, "unavailable");
    return Stage::Continue;
  }
  if (answer->verdict.allowed) {
    for (std::size_t index : limits)
      worker_.metrics.record_rate_limit(worker_.index, route.name, route.rate_limits[index].name, "allowed");
    return Stage::Continue;
  }
  const auto& limit = route.rate_limits[limits.at(std::min(answer->verdict.limited, limits.size() - 1))];
  worker_.metrics.record_rate_limit(worker_.index, route.name, limit.name, "limited");
  respond_rate_limited(limit.name, answer->verdict.retry_after_ms);
  return Stage::Responded;
}

void ProxyExchange::respond_rate_limited(const std::string& limit, int64_t retry_after_ms) {
  const int64_t seconds = std::max<int64_t>(1, (retry_after_ms + 999) / 1000);
  http::HeaderList headers = cors_headers();
  headers.add("Retry-After", std::to_string(seconds));
  refusal_ = "rate_limited";
  complete(429);
  connection_.send_error(
      {429, "rate_limited", "rate limit '" + limit + "' exceeded; retry after " + std::to_string(seconds) + " s"},
      jsonrpc_id_, headers);
}

ProxyExchange::Stage ProxyExchange::authorize() {
  if (!identity_) return Stage::Continue;  // auth: none
  const auto needed = scopes_needed();
  if (auth::has_all_scopes(*identity_, needed)) return Stage::Continue;
  respond_challenge(auth::challenge_for(auth::AuthStatus::InsufficientScope, challenge_context(needed)));
  return Stage::Responded;
}

ProxyExchange::Stage ProxyExchange::choose_credential() {
  const auto& route = *match_.route;
  std::string name = route.upstream_credential;
  if (!rpc_.is_batch && rpc_.method == "tools/call" && rpc_.has_name)
    if (auto rule = route.tools.find(rpc_.name); rule != route.tools.end() && rule->second.credential)
      name = *rule->second.credential;
  const auto found = config_->credentials.find(name);
  credential_ = found == config_->credentials.end() ? nullptr : &found->second;
  if (credential_ == nullptr) return Stage::Continue;  // "none"
  switch (credential_->type) {
    case config::CredentialType::None:
      credential_ = nullptr;
      return Stage::Continue;
    case config::CredentialType::Passthrough:
      credential_value_ = "Bearer " + token_;
      return Stage::Continue;
    case config::CredentialType::Static:
      credential_value_ = credential_->value;
      return Stage::Continue;
    case config::CredentialType::Delegated:
      return choose_delegated_credential();
    case config::CredentialType::ClientCredentials:
    case config::CredentialType::TokenExchange:
      break;
  }
  auto server = worker_.auth ? worker_.auth->find(credential_->server) : nullptr;
  if (!server) {
    respond_error(500, "internal_error", "the route's upstream credential has no authorization server");
    return Stage::Responded;
  }
  if (!waiter_) waiter_ = std::make_shared<auth::Waiter>([this] { continue_from_authentication(); });
  int retry_after_s = 1;
  switch (worker_.service_tokens.get(*credential_, service_subject(), *server, worker_.fetch_context(),
                                     {&worker_.loop, waiter_}, &credential_value_, &retry_after_s)) {
    case credentials::ServiceTokens::State::Ready:
      return Stage::Continue;
    case credentials::ServiceTokens::State::Waiting:
      return Stage::Stopped;
    case credentials::ServiceTokens::State::Unavailable:
      break;
  }
  respond_credential_unavailable(retry_after_s);
  return Stage::Responded;
}

credentials::ServiceTokens::Subject ProxyExchange::service_subject() const {
  if (credential_->type != config::CredentialType::TokenExchange || !identity_) return {};
  return {identity_->issuer + '\0' + identity_->subject, token_};
}

void ProxyExchange::respond_credential_unavailable(int retry_after_s) {
  http::HeaderList headers = cors_headers();
  headers.add("Retry-After", std::to_string(std::max(1, retry_after_s)));
  refusal_ = "credential_unavailable";
  complete(503);
  connection_.send_error({503, "credential_unavailable", "the gateway cannot obtain the upstream's credential now"},
                         jsonrpc_id_, headers);
}

// The caller's own downstream token. Requests that set up or keep up the connection
// (initialize, ping, notifications, GET streams, DELETE) go without one when none is linked;
// anything else is answered with a link to connect the account.
ProxyExchange::Stage ProxyExchange::choose_delegated_credential() {
  if (!identity_) {
    respond_error(500, "internal_error", "a delegated credential needs an authenticated caller");
    return Stage::Responded;
  }
  if (!delegated_ || delegated_->state == credentials::DelegatedOutcome::State::Pending) {
    auto server = worker_.auth ? worker_.auth->find(credential_->server) : nullptr;
    if (!server) {
      respond_error(500, "internal_error", "the route's upstream credential has no authorization server");
      return Stage::Responded;
    }
    if (!waiter_) waiter_ = std::make_shared<auth::Waiter>([this] { continue_from_authentication(); });
    delegated_ = worker_.delegated_tokens->get(*credential_, *server, worker_.fetch_context(),
                                               {credential_->name, identity_->issuer, identity_->subject},
                                               refused_token_, {&worker_.loop, waiter_});
    if (delegated_->state == credentials::DelegatedOutcome::State::Pending) return Stage::Stopped;
  }
  const auto outcome = std::move(delegated_);
  switch (outcome->state) {
    case credentials::DelegatedOutcome::State::Ready:
      credential_value_ = outcome->header_value;
      return Stage::Continue;
    case credentials::DelegatedOutcome::State::NotLinked: {
      const auto& request = connection_.request();
      const bool asks_for_work = request.method == "POST" && rpc_.is_request && rpc_.method != "initialize" && rpc_.method != "ping";
      if (!asks_for_work) {
        credential_ = nullptr;
        return Stage::Continue;
      }
      respond_link_required(outcome->refresh_refused);
      return Stage::Responded;
    }
    default:
      respond_credential_unavailable(outcome->retry_after_s);
      return Stage::Responded;
  }
}

// The answer to a caller whose downstream account is not linked (or whose link the downstream
// server refused): a signed, single-use link to connect it, in the form the caller's era reads.
void ProxyExchange::respond_link_required(bool refresh_refused) {
  refusal_ = "connect_required";
  const auto& request = connection_.request();
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  const auto grant = credentials::new_connect_grant(credential_->name, identity_->issuer, identity_->subject, now,
                                                    config_->token_store.connect_link_ttl_s);
  const std::string url =
      credentials::connect_url(config_->server.public_url, grant, credentials::sign_connect_grant(*worker_.shared.sealer, grant));
  const std::string message =
      refresh_refused ? "The connection to '" + credential_->name + "' has expired or was revoked. Connect it again, then retry."
                      : "This request needs your '" + credential_->name + "' account. Connect it, then retry.";
  const auto version = request.headers.get("MCP-Protocol-Version");
  const bool modern = version && *version >= "2026-07-28";
  const bool input_required_allowed =
      rpc_.method == "tools/call" || rpc_.method == "prompts/get" || rpc_.method == "resources/read";
  mcp::LinkAnswer form = mcp::LinkAnswer::PlainError;
  if (modern && input_required_allowed && mcp::declares_url_elicitation(request.body, true)) {
    form = mcp::LinkAnswer::InputRequired;
  } else if (auto session = request.headers.get("Mcp-Session-Id");
             !modern && session && worker_.shared.sessions->url_elicitation(std::string(*session))) {
    form = mcp::LinkAnswer::UrlElicitationError;
  }
  observability::LogEvent(spdlog::level::info, "delegated credential not linked")
      .field("credential", credential_->name)
      .field("subject", identity_->subject)
      .field("reason", refresh_refused ? "refresh_refused" : "not_linked")
      .emit();
  http::HeaderList headers = cors_headers();
  headers.add("Content-Type", "application/json");
  headers.add("Cache-Control", "no-store");
  const std::string body = mcp::link_required_response(form, rpc_.id_json, "connect-" + grant.id, url, message);
  bytes_out_ = body.size();
  complete(200);
  connection_.send_response(200, std::move(headers), body);
}

// The route's required scopes plus those of every method, tool, prompt and resource the body names
// (every element of a batch): the step-up challenge asks for all of them.
std::vector<std::string> ProxyExchange::scopes_needed() const {
  const auto& route = *match_.route;
  std::vector<std::string> scopes = route.auth.required_scopes;
  auto add = [&](const std::vector<std::string>& more) {
    for (const auto& scope : more)
      if (std::find(scopes.begin(), scopes.end(), scope) == scopes.end()) scopes.push_back(scope);
  };
  for (const auto& target : rpc_.targets) {
    if (auto rule = route.methods.find(target.method); rule != route.methods.end()) add(rule->second.scopes);
    if (!target.has_name) continue;
    const std::map<std::string, config::ScopeRule, std::less<>>* rules = nullptr;
    if (target.method == "tools/call") rules = &route.tools;
    if (target.method == "prompts/get") rules = &route.prompts;
    if (target.method == "resources/read") rules = &route.resources;
    if (rules == nullptr) continue;
    if (auto rule = rules->find(target.name); rule != rules->end()) add(rule->second.scopes);
  }
  return scopes;
}

auth::ChallengeContext ProxyExchange::challenge_context(std::vector<std::string> scopes) const {
  const auto& route = *match_.route;
  auth::ChallengeContext context;
  context.resource_metadata_url =
      config_->server.public_url + "/.well-known/oauth-protected-resource" + (route.path == "/" ? "" : route.path);
  context.scopes = std::move(scopes);
  return context;
}

void ProxyExchange::respond_challenge(const auth::Challenge& challenge) {
  http::HeaderList headers = cors_headers();
  if (!challenge.www_authenticate.empty()) headers.add("WWW-Authenticate", challenge.www_authenticate);
  if (challenge.retry_after_s > 0) headers.add("Retry-After", std::to_string(challenge.retry_after_s));
  refusal_ = challenge.reason;
  complete(challenge.status);
  connection_.send_error({challenge.status, challenge.reason, challenge.message}, jsonrpc_id_, headers);
}

void ProxyExchange::forward() {
  const auto& request = connection_.request();
  const auto& route = *match_.route;
  const auto& limits = config_->server.limits;
  const auto& upstream = endpoint();
  ForwardingFacts facts{connection_.peer_address(), connection_.is_tls(), upstream.origin().substr(upstream.scheme.size() + 3)};
  upstream::UpstreamRequest upstream_request;
  upstream_request.method = request.method;
  upstream_request.url = upstream_url_for(match_, upstream, request.query);
  upstream_request.headers = upstream_request_headers(request.headers, facts);
  if (session_) upstream_request.headers.set("Mcp-Session-Id", session_->upstream_session);
  if (route.forward_identity && identity_) add_identity_headers(*identity_, upstream_request.headers);
  if (!route.request_plugins.empty()) {
    const auto& views = plugin_views();
    const plugins::RpcView first = views.empty() ? plugins::RpcView{route.name, request.method, {}, {}, {}, {}} : views.front();
    for (const auto& name : route.request_plugins)
      if (const auto plugin = plugins_ ? plugins_->find(name) : nullptr)
        plugin->on_upstream_request(identity_ ? &*identity_ : nullptr, first, upstream_request.headers,
                                    credential_ != nullptr ? std::string_view(credential_->header) : std::string_view());
  }
  if (credential_ != nullptr) upstream_request.headers.set(credential_->header, credential_value_);
  if (route.filter_tools_list && identity_ && rpc_.method == "tools/list" && rpc_.is_request && !rpc_.is_batch) {
    tools_filter_ = ToolsFilter::Pending;
    upstream_request.headers.set("Accept-Encoding", "identity");  // the gateway must read the result
  }
  upstream_request.headers.set("traceparent", traceparent_);
  upstream_request.body = &request.body;  // the Connection keeps the request until the response ends
  // 2026-07-28 messages carry a client's trace context in params._meta as well (SEP-414). A trace
  // the gateway started goes in the header only: bodies stay as sent unless the client traces.
  const auto version = request.headers.get("MCP-Protocol-Version");
  if (trace_from_header_ && version && *version >= "2026-07-28" && rpc_.meta_writable && !rpc_.meta_traceparent &&
      upstream_body_.empty()) {
    if (auto traced = mcp::with_meta_traceparent(request.body, traceparent_)) upstream_body_ = std::move(*traced);
  }
  if (!upstream_body_.empty()) upstream_request.body = &upstream_body_;
  upstream_request.connect_timeout_ms = limits.upstream_connect_timeout_ms;
  upstream_request.response_timeout_ms = limits.upstream_timeout_ms;
  forwarded_ = true;
  transfer_ = std::make_unique<upstream::Transfer>(worker_.curl, *this, std::move(upstream_request));
  upstream_started_at_ = std::chrono::steady_clock::now();
  transfer_->start();
}

void ProxyExchange::on_response_head(int status, http::HeaderList headers) {
  upstream_status_ = status;
  if (status == 401 && !replayed_ && credential_ != nullptr && credential_->type != config::CredentialType::Static &&
      credential_->type != config::CredentialType::Passthrough) {
    replaying_ = true;  // nothing of this answer reaches the client
    return;
  }
  upstream_seconds_ = seconds_since(upstream_started_at_);
  if (match_.route->upstreams.size() > 1)
    if (auto upstream_session = headers.get("Mcp-Session-Id")) {
      // The client holds the envelope, never the endpoint's own id; an unchanged id keeps the
      // envelope the client sent.
      std::string sealed = session_ && session_->upstream_session == *upstream_session
                               ? std::string(*connection_.request().headers.get("Mcp-Session-Id"))
                               : envelope_->wrap(match_.route->name, {endpoint_name(endpoint()), std::string(*upstream_session)});
      headers.set("Mcp-Session-Id", std::move(sealed));
    }
  if (rpc_.method == "initialize" && rpc_.is_request && !rpc_.is_batch)
    if (auto session = headers.get("Mcp-Session-Id"))
      worker_.shared.sessions->remember(std::string(*session),
                                        mcp::declares_url_elicitation(connection_.request().body, false));
  // A session ended by DELETE is forgotten, so the map holds live sessions, not the last 100000.
  if (connection_.request().method == "DELETE" && status >= 200 && status < 300)
    if (auto session = connection_.request().headers.get("Mcp-Session-Id"))
      worker_.shared.sessions->forget(std::string(*session));
  streaming_ = is_event_stream(headers);
  if (streaming_) ++worker_.metrics.active_streams;
  rewriting_endpoint_ = streaming_ && match_.route->transport == config::Transport::Sse &&
                        connection_.request().method == "GET";
  std::optional<std::size_t> content_length;
  if (!streaming_) {
    if (auto length = headers.get("Content-Length"); length && !length->empty() &&
                                                     length->find_first_not_of("0123456789") == std::string_view::npos)
      content_length = std::stoull(std::string(*length));
  }
  http::HeaderList response_headers = client_response_headers(headers);
  const http::HeaderList cors = cors_headers();
  for (const auto& field : cors.fields()) response_headers.set(field.name, field.value);
  if (tools_filter_ == ToolsFilter::Pending) {
    if (streaming_) {
      tools_filter_ = ToolsFilter::SseEvents;
    } else if (status == 200) {
      tools_filter_ = ToolsFilter::BufferJson;  // the head waits: the length changes
      held_status_ = status;
      held_headers_ = std::move(response_headers);
      return;
    } else {
      tools_filter_ = ToolsFilter::Off;  // an error answer carries no tools
    }
  }
  connection_.send_head(status, response_headers, content_length);
}

bool ProxyExchange::can_take_data() { return !connection_.over_high_water(); }

void ProxyExchange::on_response_data(const char* data, std::size_t length) {
  if (replaying_) return;
  bytes_out_ += length;
  if (rewriting_endpoint_) {
    relay_endpoint_events(data, length);
    return;
  }
  if (tools_filter_ == ToolsFilter::BufferJson) {
    if (held_body_.size() + length > kMaxFilteredBodyBytes) {
      fail_filtering("tools/list result too large to filter");
      return;
    }
    held_body_.append(data, length);
    return;
  }
  if (tools_filter_ == ToolsFilter::SseEvents) {
    relay_filtered_events(data, length);
    return;
  }
  connection_.send_body(data, length);
}

// Legacy SSE: events pass whole until the `endpoint` event, which is pointed back
// at the gateway; from then on bytes pass through untouched.
void ProxyExchange::relay_endpoint_events(const char* data, std::size_t length) {
  sse_splitter_.feed(std::string_view(data, length));
  while (rewriting_endpoint_) {
    auto raw = sse_splitter_.next_event();
    if (!raw) break;
    mcp::SseEvent event = mcp::parse_sse_event(*raw);
    if (event.type != "endpoint") {
      connection_.send_body(raw->data(), raw->size());
      continue;
    }
    auto mapped = mcp::gateway_endpoint_for(event.data, endpoint(), match_.route->path);
    if (!mapped) {
      spdlog::error("route '{}': upstream endpoint event names another origin; closing the stream", match_.route->name);
      transfer_->cancel();
      complete(502);
      connection_.abort();
      return;
    }
    event.data = *mapped;
    const std::string rewritten = mcp::serialize_sse_event(event);
    connection_.send_body(rewritten.data(), rewritten.size());
    rewriting_endpoint_ = false;
  }
  if (!rewriting_endpoint_) {
    const std::string rest = sse_splitter_.take_rest();
    connection_.send_body(rest.data(), rest.size());
  } else if (sse_splitter_.buffered() > kMaxBufferedSseBytes) {
    spdlog::error("route '{}': upstream SSE event too large before the endpoint event", match_.route->name);
    transfer_->cancel();
    complete(502);
    connection_.abort();
  }
}

void ProxyExchange::relay_filtered_events(const char* data, std::size_t length) {
  sse_splitter_.feed(std::string_view(data, length));
  while (auto raw = sse_splitter_.next_event()) {
    mcp::SseEvent event = mcp::parse_sse_event(*raw);
    if (event.data.empty()) {
      connection_.send_body(raw->data(), raw->size());
      continue;
    }
    const auto outcome = mcp::filter_tools_list_result(event.data, rpc_.id_json,
                                                       [this](std::string_view tool) { return tool_allowed(tool); });
    if (outcome == mcp::FilterOutcome::Malformed) {
      fail_filtering("unreadable event in a tools/list stream");
      return;
    }
    const std::string out = outcome == mcp::FilterOutcome::Filtered ? mcp::serialize_sse_event(event) : *raw;
    connection_.send_body(out.data(), out.size());
  }
  if (sse_splitter_.buffered() > kMaxFilteredBodyBytes) fail_filtering("tools/list event too large to filter");
}

void ProxyExchange::finish_buffered_tools_list() {
  std::string body = std::move(held_body_);
  const auto outcome =
      mcp::filter_tools_list_result(body, rpc_.id_json, [this](std::string_view tool) { return tool_allowed(tool); });
  if (outcome == mcp::FilterOutcome::Malformed) {
    fail_filtering("unreadable tools/list result");
    return;
  }
  bytes_out_ = body.size();
  complete(held_status_);
  connection_.send_response(held_status_, std::move(held_headers_), body);
}

// What cannot be filtered is not passed on: a hidden tool must never leak.
void ProxyExchange::fail_filtering(const char* why) {
  spdlog::warn("route '{}': {}", match_.route->name, why);
  if (transfer_) transfer_->cancel();
  if (connection_.head_sent()) {
    complete(upstream_status_);
    connection_.abort();
  } else {
    tools_filter_ = ToolsFilter::Off;
    respond_error(502, "upstream_unavailable", "the upstream's tools/list result could not be filtered");
  }
}

// Called once per tool of a tools/list result (hundreds): no copies, no allocation.
bool ProxyExchange::tool_allowed(std::string_view tool) const {
  const auto& route = *match_.route;
  if (auto rule = route.methods.find("tools/call"); rule != route.methods.end() && !auth::has_all_scopes(*identity_, rule->second.scopes))
    return false;
  auto rule = route.tools.find(tool);
  return rule == route.tools.end() || auth::has_all_scopes(*identity_, rule->second.scopes);
}

void ProxyExchange::on_transfer_done(upstream::TransferError error, const std::string& detail) {
  if (replaying_) {
    // Refresh-on-401: a new service token, the same request once more (the body is
    // still the connection's). Resumed from the loop: this transfer is still on the stack.
    replaying_ = false;
    replayed_ = true;
    upstream_status_ = 0;
    if (credential_->type == config::CredentialType::Delegated) {
      refused_token_ = credential_value_.substr(std::string_view("Bearer ").size());
    } else {
      worker_.service_tokens.invalidate(*credential_, service_subject());
    }
    retired_transfer_ = std::move(transfer_);
    if (!waiter_) waiter_ = std::make_shared<auth::Waiter>([this] { continue_from_authentication(); });
    worker_.loop.post([weak = std::weak_ptr<auth::Waiter>(waiter_)] {
      if (auto waiter = weak.lock()) waiter->resume();
    });
    return;
  }
  if (error == upstream::TransferError::None && tools_filter_ == ToolsFilter::BufferJson) {
    finish_buffered_tools_list();
    return;
  }
  if (error == upstream::TransferError::None) {
    complete(upstream_status_);
    connection_.finish_response();
    return;
  }
  if (connection_.head_sent()) {
    // Mid-body failure: the status is already out; a truncated body tells the client.
    spdlog::warn("route '{}': upstream failed mid-response: {}", match_.route->name, detail);
    complete(upstream_status_);
    connection_.abort();
    return;
  }
  if (error == upstream::TransferError::Unreachable) {
    const std::string failed_endpoint = endpoint_name(endpoint());
    const bool retried = endpoint_.held() && retry_on_another_endpoint();
    worker_.metrics.record_upstream_unreachable(worker_.index, match_.route->name, failed_endpoint,
                                                retried ? "retried" : "failed");
    if (retried) return;
  }
  if (error == upstream::TransferError::Unreachable && session_) {
    respond_error(404, "session_not_found", "the session's upstream endpoint is unavailable: start a new session");
    return;
  }
  if (error == upstream::TransferError::Timeout) {
    respond_error(504, "upstream_timeout", "the upstream did not answer in time");
  } else {
    spdlog::warn("route '{}': upstream unavailable: {}", match_.route->name, detail);
    respond_error(502, "upstream_unavailable", "the upstream server is unavailable");
  }
}

void ProxyExchange::on_client_drained() {
  if (transfer_ && transfer_->paused()) transfer_->resume();
}

void ProxyExchange::on_client_closed() {
  client_gone_ = true;
  if (transfer_) transfer_->cancel();  // for 2026-07-28 clients this is the cancellation signal
  complete(connection_.head_sent() ? upstream_status_ : 499);
}

void ProxyExchange::on_shutdown() {
  // A stream answering one request (a tool call) finishes within the grace period like
  // any request; streams that never end on their own (GET streams, subscriptions/listen)
  // are ended now so clients reconnect elsewhere.
  const bool long_lived = connection_.request().method == "GET" || rpc_.method == "subscriptions/listen";
  if (!streaming_ || !long_lived || !connection_.head_sent()) return;
  transfer_->cancel();
  complete(upstream_status_);
  connection_.finish_response();
}

void ProxyExchange::respond_error(int status, std::string reason, std::string message) {
  refusal_ = reason;
  complete(status);
  connection_.send_error({status, std::move(reason), std::move(message)}, jsonrpc_id_, cors_headers());
}

// For a browser client whose Origin passed the route's check: allow it to read the
// response, including the challenge and the session id.
http::HeaderList ProxyExchange::cors_headers() const {
  http::HeaderList headers;
  const auto origin = connection_.request().headers.get("Origin");
  if (!origin || !origin_checked_) return headers;
  headers.add("Access-Control-Allow-Origin", std::string(*origin));
  headers.add("Access-Control-Expose-Headers", std::string(kCorsExposedHeaders));
  headers.add("Vary", "Origin");
  return headers;
}

void ProxyExchange::complete(int status) {
  if (completed_) return;
  completed_ = true;
  const auto& request = connection_.request();
  const std::string_view route = match_.route != nullptr ? std::string_view(match_.route->name) : std::string_view();
  const double latency = seconds_since(started_at_);
  worker_.metrics.record_request(worker_.index, {route, observability::http_method_label(request.method),
                                                 mcp::metrics_method_label(rpc_.method), status, upstream_seconds_,
                                                 request.body.size(), bytes_out_});
  if (audited_ && config_->log.audit_log) write_audit_record(status);
  if (!config_->log.access_log) return;
  observability::LogEvent line(spdlog::level::info, "access");
  line.field("trace_id", trace_id_)
      .field("route", route)
      .field("http_method", request.method)
      .field("path", request.target)
      .field("client", connection_.peer_address())
      .field("status", static_cast<int64_t>(status))
      .field("upstream_status", static_cast<int64_t>(upstream_status_))
      .field("latency_ms", latency * 1000)
      .field("bytes_in", static_cast<int64_t>(request.body.size()))
      .field("bytes_out", static_cast<int64_t>(bytes_out_));
  if (identity_) {
    line.field("subject", identity_->subject);
    if (!identity_->client_id.empty()) line.field("client_id", identity_->client_id);
  }
  if (!rpc_.method.empty()) line.field("rpc_method", rpc_.method);
  if (rpc_.method == "tools/call" && rpc_.has_name) line.field("tool", rpc_.name);
  if (upstream_seconds_ >= 0) line.field("upstream_ms", upstream_seconds_ * 1000);
  if (forwarded_ && match_.route->upstreams.size() > 1) line.field("endpoint", endpoint_name(endpoint()));
  line.emit();
}

// One record per authorization decision: who asked what, what was decided and why, which
// credential went upstream (its name, never its value) and what the upstream answered.
void ProxyExchange::write_audit_record(int status) {
  observability::LogEvent record(spdlog::level::info, "audit");
  record.field("trace_id", trace_id_).field("route", match_.route->name).field("http_method", connection_.request().method);
  if (!rpc_.method.empty()) record.field("rpc_method", rpc_.method);
  if (rpc_.method == "tools/call" && rpc_.has_name) record.field("tool", rpc_.name);
  if (identity_) {
    record.field("subject", identity_->subject);
    if (!identity_->client_id.empty()) record.field("client_id", identity_->client_id);
  }
  record.field("decision", forwarded_ ? "allow" : "deny")
      .field("reason", forwarded_ ? std::string("ok") : refusal_.empty() ? std::string("client_closed") : refusal_)
      .field("status", static_cast<int64_t>(status))
      .field("credential", forwarded_ && credential_ != nullptr ? credential_->name : std::string("none"));
  if (forwarded_ && upstream_status_ > 0) record.field("upstream_status", static_cast<int64_t>(upstream_status_));
  record.emit_audit();
}

}  // namespace mcpgate::proxy
