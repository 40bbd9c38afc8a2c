/* A plugin built against an ABI the gateway does not speak (999). The gateway must read only
 * abi_version from the descriptor and refuse it before touching any hook. */
#include <mcpgate/plugin.h>

static int wrong_abi_init(const mcpgate_host *host, const char *config_json, void **instance, char *error,
                          size_t error_size) {
  (void)host;
  (void)config_json;
  (void)error;
  (void)error_size;
  *instance = NULL;
  return 0;
}

static void wrong_abi_destroy(void *instance) { (void)instance; }

static const mcpgate_plugin descriptor = {
    .abi_version = 999u,
    .name = "test-wrong-abi",
    .init = wrong_abi_init,
    .destroy = wrong_abi_destroy,
};

__attribute__((visibility("default"))) const mcpgate_plugin *mcpgate_plugin_entry(void) { return &descriptor; }
