/* A plugin whose init() dereferences NULL (SIGSEGV). The gateway must not die silently: its
 * stderr has to say "plugin '<name>' crashed in init". */
#include <mcpgate/plugin.h>

static int init_crashes_init(const mcpgate_host *host, const char *config_json, void **instance, char *error,
                             size_t error_size) {
  (void)host;
  (void)config_json;
  (void)error;
  (void)error_size;
  *instance = NULL;
  volatile int *volatile nowhere = NULL;
  return *nowhere;
}

static void init_crashes_destroy(void *instance) { (void)instance; }

static mcpgate_result init_crashes_verify(void *instance, const char *token, const char *route,
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
    .name = "test-init-crashes",
    .init = init_crashes_init,
    .destroy = init_crashes_destroy,
    .verify_token = init_crashes_verify,
};

__attribute__((visibility("default"))) const mcpgate_plugin *mcpgate_plugin_entry(void) { return &descriptor; }
