/* A valid plugin that loads and initialises, but has only an authorize hook: a route that uses it
 * for authentication must fail to load ("has no verify_token hook"); as a policy plugin it works. */
#include <mcpgate/plugin.h>

static int no_verify_init(const mcpgate_host *host, const char *config_json, void **instance, char *error,
                          size_t error_size) {
  (void)host;
  (void)config_json;
  (void)error;
  (void)error_size;
  *instance = NULL;
  return 0;
}

static void no_verify_destroy(void *instance) { (void)instance; }

static mcpgate_result no_verify_authorize(void *instance, const mcpgate_identity *identity, const mcpgate_rpc *rpc,
                                          mcpgate_decision *decision, mcpgate_call *call) {
  (void)instance;
  (void)identity;
  (void)rpc;
  (void)decision;
  (void)call;
  return MCPGATE_ALLOW;
}

static const mcpgate_plugin descriptor = {
    .abi_version = MCPGATE_PLUGIN_ABI_VERSION,
    .name = "test-no-verify",
    .init = no_verify_init,
    .destroy = no_verify_destroy,
    .authorize = no_verify_authorize,
};

__attribute__((visibility("default"))) const mcpgate_plugin *mcpgate_plugin_entry(void) { return &descriptor; }
