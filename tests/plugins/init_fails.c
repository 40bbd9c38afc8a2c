/* A plugin whose init() fails with its own message: the gateway must not start, and must show it. */
#include <stdio.h>

#include <mcpgate/plugin.h>

static int init_fails_init(const mcpgate_host *host, const char *config_json, void **instance, char *error,
                           size_t error_size) {
  (void)host;
  (void)config_json;
  *instance = NULL;
  snprintf(error, error_size, "database 'x' unreachable");
  return 1;
}

static void init_fails_destroy(void *instance) { (void)instance; }

static mcpgate_result init_fails_verify(void *instance, const char *token, const char *route,
                                        mcpgate_verify_result *result, mcpgate_call *call) {
  (void)instance;
  (void)token;
  (void)route;
  (void)call;
  result->reason = "never initialised";
  return MCPGATE_DENY;
}

static const mcpgate_plugin descriptor = {
    .abi_version = MCPGATE_PLUGIN_ABI_VERSION,
    .name = "test-init-fails",
    .init = init_fails_init,
    .destroy = init_fails_destroy,
    .verify_token = init_fails_verify,
};

__attribute__((visibility("default"))) const mcpgate_plugin *mcpgate_plugin_entry(void) { return &descriptor; }
