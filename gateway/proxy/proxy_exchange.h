// The request pipeline for one client request on an MCP route:
//   route match -> inbound checks (path, Origin, method, JSON-RPC body, MCP headers) ->
//   authenticate (bearer token; may park until keys arrive) -> authorize (scopes) -> forward ->
//   stream the response back -> access log and metrics.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "auth/authorization_server.h"
#include "auth/challenge.h"
#include "auth/identity.h"
#include "credentials/delegated_tokens.h"
#include "credentials/service_tokens.h"
#include "http/server.h"
#include "mcp/jsonrpc.h"
#include "mcp/sse.h"
#include "plugins/plugin_host.h"
#include "proxy/router.h"
#include "proxy/worker.h"
#include "upstream/transfer.h"

namespace mcpgate::proxy {

class ProxyExchange : public http::Exchange, public upstream::TransferSink {
 public:
  ProxyExchange(http::Connection& connection, Worker& worker);
  ~ProxyExchange() override;

  void start() override;
  void on_client_drained() override;
  void on_client_closed() override;
  void on_shutdown() override;

 private:
  enum class Stage { Continue, Stopped /* resumes later */, Responded };

  // Runs the stages from authentication on; called again when a parked request resumes.
  void continue_from_authentication();
  Stage check_request();
  Stage check_mcp_headers();
  Stage authenticate();
  Stage verify_jwt_token(auth::AuthorizationServer& server);
  Stage verify_by_lookup(auth::AuthorizationServer& server);
  Stage verify_with_plugin();
  Stage authorize();
  // policy_plugins: each plugin's authorize, for each message, in order; may wait for an answer.
  Stage run_policy_plugins();
  Stage check_rate_limits();
  // Multi-endpoint routes: the endpoint the client's session names, else one the pool picks.
  Stage choose_endpoint();
  const config::UpstreamUrl& endpoint() const;
  // An endpoint refused the connection before anything was sent: another one, if any is left.
  bool retry_on_another_endpoint();
  void respond_rate_limited(const std::string& limit, int64_t retry_after_ms);
  // How a plugin that answers later wakes this exchange (on its loop, only while it lives).
  plugins::Resume plugin_resume();
  const std::vector<plugins::RpcView>& plugin_views();
  // Picks the credential for the upstream (tool override, else the route's) and its header value.
  Stage choose_credential();
  Stage choose_delegated_credential();
  credentials::ServiceTokens::Subject service_subject() const;
  void respond_credential_unavailable(int retry_after_s);
  void respond_link_required(bool refresh_refused);
  void forward();
  void respond_challenge(const auth::Challenge& challenge);
  auth::ChallengeContext challenge_context(std::vector<std::string> scopes) const;
  std::vector<std::string> scopes_needed() const;
  http::HeaderList cors_headers() const;

  // upstream::TransferSink (called on the loop thread, maybe inside curl callbacks)
  void on_response_head(int status, http::HeaderList headers) override;
  bool can_take_data() override;
  void on_response_data(const char* data, std::size_t length) override;
  void on_transfer_done(upstream::TransferError error, const std::string& detail) override;

  void relay_endpoint_events(const char* data, std::size_t length);
  void relay_filtered_events(const char* data, std::size_t length);
  void finish_buffered_tools_list();
  bool tool_allowed(std::string_view tool) const;
  void fail_filtering(const char* why);
  void respond_error(int status, std::string reason, std::string message);
  // Access log line, audit record and metrics, once per exchange.
  void complete(int status);
  void write_audit_record(int status);

  http::Connection& connection_;
  Worker& worker_;
  config::ConfigPtr config_;  // the snapshot this request started with
  plugins::PluginSetPtr plugins_;  // and its plugins
  SessionEnvelopePtr envelope_;    // and its session envelope keys
  RouteMatch match_;
  mcp::JsonRpcInfo rpc_;
  std::optional<std::string> jsonrpc_id_;  // set when the client spoke JSON-RPC
  std::string token_;
  std::optional<auth::Identity> identity_;
  std::shared_ptr<auth::Waiter> waiter_;  // parked on an authorization server fetch
  std::shared_ptr<auth::LookupOutcome> lookup_;  // the userinfo/introspection call this request joined
  std::shared_ptr<plugins::VerifyOutcome> plugin_verify_;  // auth plugin's answer, pending or done
  std::shared_ptr<plugins::DecisionOutcome> plugin_decision_;  // the policy plugin call in progress
  std::optional<std::vector<plugins::RpcView>> plugin_views_;  // the body as plugins see it, made once
  std::size_t policy_step_ = 0;  // policy plugin calls done (plugin-major, message-minor)
  // The shared rate-limit store's answer, once it came (Redis); unset while waiting.
  struct RateAnswer {
    bool done = false;
    credentials::StoreStatus status = credentials::StoreStatus::Unavailable;
    credentials::BucketVerdict verdict;
  };
  std::shared_ptr<RateAnswer> rate_answer_;
  bool rate_checked_ = false;
  bool refetched_keys_ = false;
  bool client_gone_ = false;
  bool origin_checked_ = false;  // a present Origin passed the route's allowlist
  const config::CredentialConfig* credential_ = nullptr;  // null: nothing injected
  std::string credential_value_;
  std::shared_ptr<credentials::DelegatedOutcome> delegated_;  // the delegated-token lookup this request joined
  std::string refused_token_;  // delegated: the access token the upstream refused (replay asks for another)
  bool replaying_ = false;   // the upstream refused the injected credential: retry once with a new one
  bool replayed_ = false;
  std::unique_ptr<upstream::Transfer> retired_transfer_;  // the refused attempt, kept until the exchange dies
  std::unique_ptr<upstream::Transfer> transfer_;
  // Multi-endpoint routes only: the endpoint this request holds, those tried, and the session
  // the client's envelope named (its upstream id replaces the envelope towards the endpoint).
  upstream::EndpointLease endpoint_;
  std::vector<std::size_t> tried_endpoints_;
  std::optional<SessionTarget> session_;
  std::shared_ptr<auth::Waiter> retry_waiter_;  // resumes forward() on the next endpoint
  std::chrono::steady_clock::time_point started_at_;
  std::chrono::steady_clock::time_point upstream_started_at_;
  double upstream_seconds_ = -1;
  int upstream_status_ = 0;
  bool streaming_ = false;
  bool rewriting_endpoint_ = false;  // legacy SSE: until the endpoint event is rewritten
  // tools/list filtering (filter_tools_list): JSON responses are held whole, SSE ones per event.
  enum class ToolsFilter { Off, Pending, BufferJson, SseEvents } tools_filter_ = ToolsFilter::Off;
  int held_status_ = 0;
  http::HeaderList held_headers_;
  std::string held_body_;
  mcp::SseSplitter sse_splitter_;
  uint64_t bytes_out_ = 0;
  bool completed_ = false;
  std::string trace_id_;     // W3C trace id (32 hex): the client's, or made here
  std::string traceparent_;  // what the upstream gets
  bool trace_from_header_ = false;  // the client sent a valid traceparent header
  std::string upstream_body_;  // the body with params._meta.traceparent added, when it was; else empty
  bool audited_ = false;     // reached authentication: the outcome is an authorization decision
  bool forwarded_ = false;
  std::string refusal_;      // the reason of the gateway's own answer, when it gave one
};

}  // namespace mcpgate::proxy
