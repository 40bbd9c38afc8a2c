/* Compile-only check that <mcpgate/plugin.h> is plain C99 (built with -std=c99 -pedantic-errors
 * -Wall -Wextra -Werror) and that its types and hook signatures are the ones ABI version 1
 * promises: every hook and host function is defined here with its exact signature and stored in
 * a descriptor, and every struct field is named, so a changed signature, a renamed or removed
 * field, or a renumbered enum breaks this build. Nothing links this object.
 *
 * C99 has no _Static_assert: CHECK() declares an array type whose size is negative when the
 * condition is false, which is a hard error. */
#include <stddef.h>
#include <stdint.h>

#include <mcpgate/plugin.h>

#define CHECK_JOIN2(a, b) a##b
#define CHECK_JOIN(a, b) CHECK_JOIN2(a, b)
#define CHECK(cond) typedef char CHECK_JOIN(abi_check_line_, __LINE__)[(cond) ? 1 : -1]

CHECK(MCPGATE_PLUGIN_ABI_VERSION == 1u);
CHECK(sizeof(MCPGATE_PLUGIN_ENTRY_SYMBOL) == sizeof("mcpgate_plugin_entry"));

CHECK(MCPGATE_ALLOW == 0);
CHECK(MCPGATE_DENY == 1);
CHECK(MCPGATE_PENDING == 2);
CHECK(MCPGATE_ERROR == 3);
CHECK(MCPGATE_LOG_DEBUG == 0);
CHECK(MCPGATE_LOG_INFO == 1);
CHECK(MCPGATE_LOG_WARN == 2);
CHECK(MCPGATE_LOG_ERROR == 3);

/* The gateway reads abi_version before anything else of a descriptor built against another ABI:
 * it must stay the first field, a 32-bit one, in both the descriptor and the host table. */
CHECK(offsetof(mcpgate_plugin, abi_version) == 0);
CHECK(sizeof(((mcpgate_plugin *)0)->abi_version) == sizeof(uint32_t));
CHECK(offsetof(mcpgate_host, abi_version) == 0);
CHECK(sizeof(((mcpgate_host *)0)->abi_version) == sizeof(uint32_t));
CHECK(sizeof(((mcpgate_identity *)0)->expires_at) == sizeof(int64_t));
CHECK(sizeof(((mcpgate_verify_result *)0)->expires_at) == sizeof(int64_t));

/* ---- the host side: every function of mcpgate_host ---- */

static void host_log(const struct mcpgate_host *host, mcpgate_log_level level, const char *message) {
  (void)host;
  (void)level;
  (void)message;
}

static void host_complete_verify(mcpgate_call *call, mcpgate_result result, const mcpgate_verify_result *details) {
  (void)call;
  (void)result;
  (void)details;
}

static void host_complete_authorize(mcpgate_call *call, mcpgate_result result, const mcpgate_decision *decision) {
  (void)call;
  (void)result;
  (void)decision;
}

static const char *host_header_get(const mcpgate_headers *headers, const char *name) {
  (void)headers;
  (void)name;
  return NULL;
}

static int host_header_set(mcpgate_headers *headers, const char *name, const char *value) {
  (void)headers;
  (void)name;
  (void)value;
  return 0;
}

static int host_header_remove(mcpgate_headers *headers, const char *name) {
  (void)headers;
  (void)name;
  return 0;
}

static const mcpgate_host check_host = {
    MCPGATE_PLUGIN_ABI_VERSION, host_log,        host_complete_verify, host_complete_authorize,
    host_header_get,            host_header_set, host_header_remove,   "/etc/mcpgate", NULL,
};

/* ---- the plugin side: every hook, touching every field it is given ---- */

static const mcpgate_host *plugin_host;

static int plugin_init(const mcpgate_host *host, const char *config_json, void **instance, char *error,
                       size_t error_size) {
  (void)config_json;
  (void)error;
  (void)error_size;
  plugin_host = host;
  host->log(host, MCPGATE_LOG_INFO, "ready");
  *instance = NULL;
  return host->abi_version == MCPGATE_PLUGIN_ABI_VERSION && host->config_dir != NULL && host->host_data == NULL ? 0 : 1;
}

static void plugin_destroy(void *instance) { (void)instance; }

static mcpgate_result plugin_verify_token(void *instance, const char *token, const char *route,
                                          mcpgate_verify_result *result, mcpgate_call *call) {
  mcpgate_verify_result r = {"subject", "client", "a b", "{}", (int64_t)0, NULL};
  (void)instance;
  (void)route;
  if (token[0] == 'p') {
    plugin_host->complete_verify(call, MCPGATE_ALLOW, &r);
    return MCPGATE_PENDING;
  }
  result->subject = r.subject;
  result->client_id = r.client_id;
  result->scopes = r.scopes;
  result->claims_json = r.claims_json;
  result->expires_at = r.expires_at;
  result->reason = NULL;
  return MCPGATE_ALLOW;
}

static mcpgate_result plugin_authorize(void *instance, const mcpgate_identity *identity, const mcpgate_rpc *rpc,
                                       mcpgate_decision *decision, mcpgate_call *call) {
  const char *seen[11];
  (void)instance;
  seen[0] = identity->subject;
  seen[1] = identity->issuer;
  seen[2] = identity->client_id;
  seen[3] = identity->scopes;
  seen[4] = identity->claims_json;
  seen[5] = rpc->route;
  seen[6] = rpc->http_method;
  seen[7] = rpc->method;
  seen[8] = rpc->name;
  seen[9] = rpc->params_json;
  seen[10] = rpc->arguments_json;
  if (identity->expires_at < 0 || seen[8] == NULL) {
    mcpgate_decision d;
    d.reason = "no";
    d.step_up_scopes = "admin";
    plugin_host->complete_authorize(call, MCPGATE_DENY, &d);
    return MCPGATE_PENDING;
  }
  decision->reason = seen[0];
  decision->step_up_scopes = NULL;
  return seen[10] != NULL ? MCPGATE_DENY : MCPGATE_ALLOW;
}

static void plugin_on_upstream_request(void *instance, const mcpgate_identity *identity, const mcpgate_rpc *rpc,
                                       mcpgate_headers *headers) {
  const char *tenant;
  (void)instance;
  (void)rpc;
  tenant = plugin_host->header_get(headers, "X-Tenant");
  if (plugin_host->header_remove(headers, "X-Tenant") != 0) return;
  if (identity != NULL && tenant != NULL) (void)plugin_host->header_set(headers, "X-User-Id", identity->subject);
}

static const mcpgate_plugin check_descriptor = {
    MCPGATE_PLUGIN_ABI_VERSION, "abi-c-check",    plugin_init,
    plugin_destroy,             plugin_verify_token, plugin_authorize,
    plugin_on_upstream_request,
};

/* The entry point keeps its exact prototype: a changed declaration in the header conflicts here. */
const mcpgate_plugin *mcpgate_plugin_entry(void) {
  return check_host.abi_version == check_descriptor.abi_version ? &check_descriptor : NULL;
}
