// The gateway side of the plugin C ABI (plugins/include/mcpgate/plugin.h): loading shared
// objects, calling their hooks with C views of the request, and bringing their answers (direct
// or completed later from any thread) back to the asking event loop.
#pragma once

#include <mcpgate/plugin.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "auth/identity.h"
#include "config/config.h"
#include "core/event_loop.h"
#include "http/message.h"

namespace mcpgate::plugins {

// A plugin could not be loaded: the message names the plugin and the problem.
class PluginError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// An event loop a completion may be posted to from any thread; cleared (under its lock) by the
// loop's owner before the loop goes, after which completions are dropped.
class LoopRef {
 public:
  explicit LoopRef(core::EventLoop* loop) : loop_(loop) {}
  void post(std::function<void()> fn);
  void clear();

 private:
  std::mutex mutex_;
  core::EventLoop* loop_;
};

// On the main thread after the loops are gone: lets go of completions that arrived too late (and
// of the plugin instances only they still held, whose destroy() then runs here).
void drop_orphaned_completions();

// A pending hook call's way back: where to post, and the weak waiter to resume there.
struct Resume {
  std::shared_ptr<LoopRef> loop;
  std::function<void()> resume;  // runs on that loop; must hold only weak references
};

// The metrics label of a hook's answer: allow, deny or error.
constexpr std::string_view result_label(mcpgate_result result) {
  return result == MCPGATE_ALLOW ? "allow" : result == MCPGATE_DENY ? "deny" : "error";
}

// verify_token's answer, once `done`.
struct VerifyOutcome {
  bool done = false;
  mcpgate_result result = MCPGATE_ERROR;
  auth::Identity identity;
  std::string reason;
};

// authorize's answer, once `done`.
struct DecisionOutcome {
  bool done = false;
  mcpgate_result result = MCPGATE_ERROR;
  std::string reason;
  std::vector<std::string> step_up_scopes;
};

// One JSON-RPC message as the hooks see it (every string owned here; the C view points into it).
struct RpcView {
  std::string route;
  std::string http_method;
  std::string method;
  std::optional<std::string> name;
  std::optional<std::string> params_json;
  std::optional<std::string> arguments_json;
};

// Every message of a POST body, for authorize (one per batch element); none for a response.
std::vector<RpcView> rpc_views(const std::string& route, const http::HttpRequest& request);

// One loaded plugin: its library, descriptor and the instance init() made. Shared by the config
// snapshot's users and by pending calls; destroy() runs when the last of them lets go.
class Plugin : public std::enable_shared_from_this<Plugin> {
 public:
  // dlopen + entry + ABI check + init; throws PluginError. `config_dir`: for host->config_dir.
  static std::shared_ptr<Plugin> load(const config::PluginConfig& config, const std::string& config_dir);
  ~Plugin();
  Plugin(const Plugin&) = delete;
  Plugin& operator=(const Plugin&) = delete;

  const std::string& name() const { return name_; }
  bool has_verify_token() const { return descriptor_->verify_token != nullptr; }
  bool has_authorize() const { return descriptor_->authorize != nullptr; }
  bool has_on_upstream_request() const { return descriptor_->on_upstream_request != nullptr; }

  // The hooks. A direct answer comes back done; a pending one fills the outcome later and then
  // posts `resume` (it never runs inside this call).
  std::shared_ptr<VerifyOutcome> verify_token(const std::string& token, const std::string& route, Resume resume) const;
  std::shared_ptr<DecisionOutcome> authorize(const auth::Identity& identity, const RpcView& rpc, Resume resume) const;
  // `protected_header`: the upstream credential's header, which a plugin may not touch.
  void on_upstream_request(const auth::Identity* identity, const RpcView& rpc, http::HeaderList& headers,
                           std::string_view protected_header) const;

 private:
  Plugin() = default;

  std::string name_;
  void* library_ = nullptr;
  const mcpgate_plugin* descriptor_ = nullptr;
  void* instance_ = nullptr;
  bool initialized_ = false;
  std::string config_dir_;  // host_.config_dir points here
  mcpgate_host host_{};
};

using PluginPtr = std::shared_ptr<const Plugin>;

// The plugins of one config snapshot, by name. Loading checks that each plugin has the hooks
// the routes use it for.
class PluginSet {
 public:
  static std::shared_ptr<const PluginSet> load(const config::Config& config);
  PluginPtr find(const std::string& name) const;
  bool empty() const { return plugins_.empty(); }

 private:
  std::map<std::string, PluginPtr> plugins_;
};

using PluginSetPtr = std::shared_ptr<const PluginSet>;

}  // namespace mcpgate::plugins
