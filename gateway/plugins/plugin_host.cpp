#include "plugins/plugin_host.h"

#include <dlfcn.h>
#include <signal.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <array>
#include <cstdio>
#include <cstring>

#include "core/json.h"
#include "mcp/jsonrpc.h"
#include "observability/log.h"

using mcpgate::plugins::DecisionOutcome;
using mcpgate::plugins::PluginPtr;
using mcpgate::plugins::Resume;
using mcpgate::plugins::VerifyOutcome;

// One hook call that answered MCPGATE_PENDING. Owner: the gateway until the hook returns PENDING,
// then the plugin until complete_* (which deletes it).
struct mcpgate_call {
  PluginPtr plugin;  // the instance stays until the call completes
  std::shared_ptr<VerifyOutcome> verify;     // set for verify_token
  std::shared_ptr<DecisionOutcome> decision;  // set for authorize
  Resume resume;
};

// The upstream request's headers during on_upstream_request (borrowed for the call).
struct mcpgate_headers {
  mcpgate::http::HeaderList* headers;
  std::string_view protected_header;
};

namespace mcpgate::plugins {
namespace {

constexpr std::size_t kInitErrorBytes = 1024;

std::string text_or_empty(const char* text) { return text != nullptr ? text : ""; }

// ---- Answers ----

void fill_verify(VerifyOutcome& outcome, mcpgate_result result, const mcpgate_verify_result* details,
                 const std::string& plugin) {
  outcome.done = true;
  outcome.result = result;
  outcome.reason = details ? text_or_empty(details->reason) : "";
  if (result != MCPGATE_ALLOW && result != MCPGATE_DENY) outcome.result = MCPGATE_ERROR;
  if (outcome.result != MCPGATE_ALLOW) return;
  if (details == nullptr || details->subject == nullptr || details->subject[0] == '\0') {
    outcome.result = MCPGATE_ERROR;
    outcome.reason = "the plugin accepted the token without naming a subject";
    return;
  }
  auth::Identity& identity = outcome.identity;
  identity.subject = details->subject;
  identity.issuer = "plugin:" + plugin;
  identity.client_id = text_or_empty(details->client_id);
  identity.scopes = auth::split_scopes(text_or_empty(details->scopes));
  identity.expires_at = details->expires_at;
  if (details->claims_json != nullptr) {
    const auto claims = core::json_owned(json_loads(details->claims_json, JSON_REJECT_DUPLICATES, nullptr));
    if (!json_is_object(claims.get())) {
      outcome.result = MCPGATE_ERROR;
      outcome.reason = "the plugin returned claims that are not a JSON object";
      return;
    }
    identity.claims_json = core::json_text(claims.get());
  } else {
    identity.claims_json = core::json_text(core::json_owned(json_pack("{s:s}", "sub", details->subject)).get());
  }
}

void fill_decision(DecisionOutcome& outcome, mcpgate_result result, const mcpgate_decision* decision) {
  outcome.done = true;
  outcome.result = result == MCPGATE_ALLOW || result == MCPGATE_DENY ? result : MCPGATE_ERROR;
  if (decision == nullptr) return;
  outcome.reason = text_or_empty(decision->reason);
  // They go into WWW-Authenticate: anything that is not a scope token is dropped.
  for (auto& scope : auth::split_scopes(text_or_empty(decision->step_up_scopes)))
    if (auth::is_scope_token(scope)) outcome.step_up_scopes.push_back(std::move(scope));
}

// ---- Host functions (any thread) ----

void host_log(const mcpgate_host* host, mcpgate_log_level level, const char* message) {
  const auto* plugin = static_cast<const Plugin*>(host->host_data);
  spdlog::level::level_enum spd = spdlog::level::info;
  if (level == MCPGATE_LOG_DEBUG) spd = spdlog::level::debug;
  if (level == MCPGATE_LOG_WARN) spd = spdlog::level::warn;
  if (level == MCPGATE_LOG_ERROR) spd = spdlog::level::err;
  observability::LogEvent(spd, text_or_empty(message)).field("plugin", plugin->name()).emit();
}

// Posts the filled answer to the asking loop, where it is stored and the request resumed; the
// plugin reference is let go there too, so destroy() never runs on the plugin's own thread.
template <typename Outcome>
void deliver(mcpgate_call* call, std::shared_ptr<Outcome> target, Outcome filled) {
  std::unique_ptr<mcpgate_call> owned(call);
  auto loop = owned->resume.loop;
  loop->post([target = std::move(target), filled = std::move(filled), resume = std::move(owned->resume.resume),
              plugin = std::move(owned->plugin)]() mutable {
    *target = std::move(filled);
    resume();
  });
}

void host_complete_authorize(mcpgate_call* call, mcpgate_result result, const mcpgate_decision* decision);

// The other hook's completion function: the call still gets an answer (an error), so its
// request does not wait forever.
void complete_mismatched(mcpgate_call* call, const char* used) {
  observability::LogEvent(spdlog::level::err, "plugin completed a call with the wrong function; answered as an error")
      .field("plugin", call->plugin->name())
      .field("function", used)
      .emit();
}

void host_complete_verify(mcpgate_call* call, mcpgate_result result, const mcpgate_verify_result* details) {
  if (call == nullptr) return;
  if (!call->verify) {
    complete_mismatched(call, "complete_verify");
    return host_complete_authorize(call, MCPGATE_ERROR, nullptr);
  }
  VerifyOutcome filled;
  fill_verify(filled, result, details, call->plugin->name());
  deliver(call, call->verify, std::move(filled));
}

void host_complete_authorize(mcpgate_call* call, mcpgate_result result, const mcpgate_decision* decision) {
  if (call == nullptr) return;
  if (!call->decision) {
    complete_mismatched(call, "complete_authorize");
    return host_complete_verify(call, MCPGATE_ERROR, nullptr);
  }
  DecisionOutcome filled;
  fill_decision(filled, result, decision);
  deliver(call, call->decision, std::move(filled));
}

bool may_touch(const mcpgate_headers* headers, const char* name) {
  return name != nullptr && http::is_field_name(name) && !http::is_framing_header(name) &&
         !http::iequals(name, headers->protected_header);
}

const char* host_header_get(const mcpgate_headers* headers, const char* name) {
  if (headers == nullptr || name == nullptr) return nullptr;
  for (const auto& field : headers->headers->fields())
    if (http::iequals(field.name, name)) return field.value.c_str();
  return nullptr;
}

int host_header_set(mcpgate_headers* headers, const char* name, const char* value) {
  if (headers == nullptr || value == nullptr || !may_touch(headers, name) || !http::is_field_value(value)) return -1;
  headers->headers->set(name, value);
  return 0;
}

int host_header_remove(mcpgate_headers* headers, const char* name) {
  if (headers == nullptr || !may_touch(headers, name)) return -1;
  headers->headers->remove(name);
  return 0;
}

// ---- A crash inside init ----

// Written by the signal handler; prepared before init runs (the handler may only write(2)).
std::array<char, 256> g_crash_prefix{};
std::size_t g_crash_prefix_length = 0;
constexpr std::array kCrashSignals{SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};

void on_init_crash(int signal_number) noexcept {
  char digits[8];
  std::size_t count = 0;
  for (int n = signal_number; n > 0 && count < sizeof digits; n /= 10) digits[count++] = static_cast<char>('0' + n % 10);
  [[maybe_unused]] ssize_t ignored = ::write(STDERR_FILENO, g_crash_prefix.data(), g_crash_prefix_length);
  while (count > 0) ignored = ::write(STDERR_FILENO, &digits[--count], 1);
  static constexpr char kSuffix[] = ")\n";
  ignored = ::write(STDERR_FILENO, kSuffix, sizeof kSuffix - 1);
  ::signal(signal_number, SIG_DFL);
  ::raise(signal_number);
}

// While alive, a fatal signal prints which plugin crashed in init before the process dies of it
// (a plugin crash is not survivable, but it must not be silent).
class InitCrashReport {
 public:
  explicit InitCrashReport(const std::string& plugin) {
    const int length = std::snprintf(g_crash_prefix.data(), g_crash_prefix.size(),
                                     "mcpgate: plugin '%s' crashed in init (signal ", plugin.c_str());
    g_crash_prefix_length = std::min<std::size_t>(length > 0 ? length : 0, g_crash_prefix.size() - 1);
    struct sigaction action {};
    action.sa_handler = &on_init_crash;
    sigemptyset(&action.sa_mask);
    for (std::size_t i = 0; i < kCrashSignals.size(); ++i) sigaction(kCrashSignals[i], &action, &previous_[i]);
  }
  ~InitCrashReport() {
    for (std::size_t i = 0; i < kCrashSignals.size(); ++i) sigaction(kCrashSignals[i], &previous_[i], nullptr);
  }
  InitCrashReport(const InitCrashReport&) = delete;
  InitCrashReport& operator=(const InitCrashReport&) = delete;

 private:
  std::array<struct sigaction, kCrashSignals.size()> previous_{};
};

// C views of an identity and a message, valid while the view objects live.
struct IdentityView {
  explicit IdentityView(const auth::Identity& identity) {
    for (const auto& scope : identity.scopes) scopes += (scopes.empty() ? "" : " ") + scope;
    claims = identity.claims_json.empty() ? "{}" : identity.claims_json;
    view = {identity.subject.c_str(), identity.issuer.c_str(), identity.client_id.c_str(),
            scopes.c_str(),           claims.c_str(),          identity.expires_at};
  }
  std::string scopes;
  std::string claims;
  mcpgate_identity view{};
};

mcpgate_rpc c_view(const RpcView& rpc) {
  auto optional_text = [](const std::optional<std::string>& text) { return text ? text->c_str() : nullptr; };
  return {rpc.route.c_str(), rpc.http_method.c_str(), rpc.method.c_str(), optional_text(rpc.name),
          optional_text(rpc.params_json), optional_text(rpc.arguments_json)};
}

RpcView view_of(const std::string& route, const http::HttpRequest& request, json_t* message) {
  RpcView view{route, request.method, {}, {}, {}, {}};
  view.method = text_or_empty(json_string_value(json_object_get(message, "method")));
  json_t* params = json_object_get(message, "params");
  if (params == nullptr) return view;
  view.params_json = core::json_text(params);
  const std::string field(mcp::mcp_name_field(view.method));
  if (!field.empty())
    if (const char* name = json_string_value(json_object_get(params, field.c_str()))) view.name = name;
  if (json_t* arguments = json_object_get(params, "arguments")) view.arguments_json = core::json_text(arguments);
  return view;
}

}  // namespace

namespace {
// Completions that came after their loop was gone. They may hold the last reference to a plugin
// instance, whose destroy() must not run on the plugin's own thread: they are dropped on the main
// thread by drop_orphaned_completions().
std::mutex g_orphans_mutex;
std::vector<std::function<void()>> g_orphans;
}  // namespace

void LoopRef::post(std::function<void()> fn) {
  std::unique_lock lock(mutex_);
  if (loop_ != nullptr) return loop_->post(std::move(fn));
  lock.unlock();
  std::lock_guard orphans(g_orphans_mutex);
  g_orphans.push_back(std::move(fn));
}

void drop_orphaned_completions() {
  std::vector<std::function<void()>> orphans;
  {
    std::lock_guard lock(g_orphans_mutex);
    orphans.swap(g_orphans);
  }
}

void LoopRef::clear() {
  std::lock_guard lock(mutex_);
  loop_ = nullptr;
}

std::vector<RpcView> rpc_views(const std::string& route, const http::HttpRequest& request) {
  if (request.method != "POST") return {RpcView{route, request.method, {}, {}, {}, {}}};
  const auto body = core::json_owned(json_loadb(request.body.data(), request.body.size(), 0, nullptr));
  std::vector<RpcView> views;
  auto add = [&](json_t* message) {
    if (json_is_object(message) && json_is_string(json_object_get(message, "method")))
      views.push_back(view_of(route, request, message));
  };
  if (json_is_array(body.get())) {
    for (std::size_t i = 0; i < json_array_size(body.get()); ++i) add(json_array_get(body.get(), i));
  } else {
    add(body.get());
  }
  return views;
}

std::shared_ptr<Plugin> Plugin::load(const config::PluginConfig& config, const std::string& config_dir) {
  std::shared_ptr<Plugin> plugin(new Plugin());
  plugin->name_ = config.name;
  const std::string where = "plugin '" + config.name + "' ('" + config.path + "')";
  // Never unloaded (RTLD_NODELETE): a thread of the plugin may still be returning from
  // complete_* when the last reference to its instance goes.
  plugin->library_ = dlopen(config.path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (plugin->library_ == nullptr)
    throw PluginError("cannot load plugin '" + config.name + "' from '" + config.path + "': " + text_or_empty(dlerror()));
  using Entry = const mcpgate_plugin* (*)();
  auto entry = reinterpret_cast<Entry>(dlsym(plugin->library_, MCPGATE_PLUGIN_ENTRY_SYMBOL));
  if (entry == nullptr)
    throw PluginError(where + " has no " MCPGATE_PLUGIN_ENTRY_SYMBOL " (an mcpgate plugin exports that C function)");
  plugin->descriptor_ = entry();
  const mcpgate_plugin* descriptor = plugin->descriptor_;
  if (descriptor == nullptr) throw PluginError(where + ": " MCPGATE_PLUGIN_ENTRY_SYMBOL " returned no descriptor");
  if (descriptor->abi_version != MCPGATE_PLUGIN_ABI_VERSION)
    throw PluginError(where + " is built for plugin ABI " + std::to_string(descriptor->abi_version) +
                      ", this gateway speaks " + std::to_string(MCPGATE_PLUGIN_ABI_VERSION) +
                      " (rebuild it against this gateway's mcpgate/plugin.h)");
  if (descriptor->init == nullptr || descriptor->destroy == nullptr)
    throw PluginError(where + " lacks init or destroy (both are required)");
  plugin->config_dir_ = config_dir;
  plugin->host_ = {MCPGATE_PLUGIN_ABI_VERSION, &host_log,        &host_complete_verify,       &host_complete_authorize,
                   &host_header_get,           &host_header_set, &host_header_remove,         plugin->config_dir_.c_str(),
                   plugin.get()};
  std::array<char, kInitErrorBytes> error{};
  int failed = 0;
  {
    const InitCrashReport report(config.name);
    failed = descriptor->init(&plugin->host_, config.config_json.c_str(), &plugin->instance_, error.data(), error.size());
  }
  error.back() = '\0';
  if (failed != 0)
    throw PluginError("plugin '" + config.name + "' failed to initialize: " +
                      (error[0] != '\0' ? std::string(error.data()) : "init returned " + std::to_string(failed)));
  plugin->initialized_ = true;
  return plugin;
}

Plugin::~Plugin() {
  if (initialized_) descriptor_->destroy(instance_);
  if (library_ != nullptr) dlclose(library_);
}

std::shared_ptr<VerifyOutcome> Plugin::verify_token(const std::string& token, const std::string& route,
                                                    Resume resume) const {
  auto outcome = std::make_shared<VerifyOutcome>();
  auto call = std::make_unique<mcpgate_call>(mcpgate_call{shared_from_this(), outcome, nullptr, std::move(resume)});
  mcpgate_verify_result details{};
  const mcpgate_result result = descriptor_->verify_token(instance_, token.c_str(), route.c_str(), &details, call.get());
  if (result == MCPGATE_PENDING) {
    call.release();  // the plugin's until complete_verify
    return outcome;
  }
  fill_verify(*outcome, result, &details, name_);
  return outcome;
}

std::shared_ptr<DecisionOutcome> Plugin::authorize(const auth::Identity& identity, const RpcView& rpc,
                                                   Resume resume) const {
  auto outcome = std::make_shared<DecisionOutcome>();
  auto call = std::make_unique<mcpgate_call>(mcpgate_call{shared_from_this(), nullptr, outcome, std::move(resume)});
  const IdentityView identity_view(identity);
  const mcpgate_rpc rpc_view = c_view(rpc);
  mcpgate_decision decision{};
  const mcpgate_result result = descriptor_->authorize(instance_, &identity_view.view, &rpc_view, &decision, call.get());
  if (result == MCPGATE_PENDING) {
    call.release();  // the plugin's until complete_authorize
    return outcome;
  }
  fill_decision(*outcome, result, &decision);
  return outcome;
}

void Plugin::on_upstream_request(const auth::Identity* identity, const RpcView& rpc, http::HeaderList& headers,
                                 std::string_view protected_header) const {
  std::optional<IdentityView> identity_view;
  if (identity != nullptr) identity_view.emplace(*identity);
  const mcpgate_rpc rpc_view = c_view(rpc);
  mcpgate_headers handle{&headers, protected_header};
  descriptor_->on_upstream_request(instance_, identity_view ? &identity_view->view : nullptr, &rpc_view, &handle);
}

std::shared_ptr<const PluginSet> PluginSet::load(const config::Config& config) {
  auto set = std::make_shared<PluginSet>();
  const std::string config_dir = config::directory_of(config.source_path);
  for (const auto& plugin_config : config.plugins)
    set->plugins_.emplace(plugin_config.name, Plugin::load(plugin_config, config_dir));
  auto require = [&](const config::RouteConfig& route, const std::string& name, bool (Plugin::*has)() const,
                     const char* hook, const char* use) {
    const auto& plugin = set->plugins_.at(name);
    if (!((*plugin).*has)())
      throw PluginError("route '" + route.name + "' uses plugin '" + name + "' " + use + ", but plugin '" + name +
                        "' has no " + hook + " hook");
  };
  for (const auto& route : config.routes) {
    if (route.auth.type == config::AuthType::Plugin)
      require(route, route.auth.plugin, &Plugin::has_verify_token, "verify_token", "for auth");
    for (const auto& name : route.policy_plugins)
      require(route, name, &Plugin::has_authorize, "authorize", "in policy_plugins");
    for (const auto& name : route.request_plugins)
      require(route, name, &Plugin::has_on_upstream_request, "on_upstream_request", "in request_plugins");
  }
  return set;
}

PluginPtr PluginSet::find(const std::string& name) const {
  const auto found = plugins_.find(name);
  return found == plugins_.end() ? nullptr : found->second;
}

}  // namespace mcpgate::plugins
