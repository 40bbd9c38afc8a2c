/* hello: the smallest useful plugin. Denies tools/call for tools whose name starts with a prefix.
 * config: {"deny_prefix": "admin_"}
 * build:  cc -std=c11 -shared -fPIC -I<repo>/plugins/include -o libhello.so hello.c -ljansson */
#define _POSIX_C_SOURCE 200809L
#include <mcpgate/plugin.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct hello { char prefix[128]; char reason[192]; } hello; /* read-only after init */

static int hello_init(const mcpgate_host *host, const char *config_json, void **instance, char *error, size_t error_size) {
  json_t *config = json_loads(config_json, 0, NULL);
  const char *prefix = json_string_value(json_object_get(config, "deny_prefix"));
  hello *self = prefix != NULL && prefix[0] != '\0' && strlen(prefix) < 128 ? calloc(1, sizeof *self) : NULL;
  if (self != NULL) {
    snprintf(self->prefix, sizeof self->prefix, "%s", prefix);
    snprintf(self->reason, sizeof self->reason, "hello: tools named '%s...' are not allowed", prefix);
    host->log(host, MCPGATE_LOG_INFO, self->reason);
  } else {
    snprintf(error, error_size, "config: deny_prefix must be a string of 1 to 127 bytes");
  }
  json_decref(config);
  *instance = self;
  return self != NULL ? 0 : -1;
}

static void hello_destroy(void *instance) { free(instance); }

/* Runs on several threads at once: it only reads the instance, so it needs no lock. */
static mcpgate_result hello_authorize(void *instance, const mcpgate_identity *identity, const mcpgate_rpc *rpc,
                                      mcpgate_decision *decision, mcpgate_call *call) {
  (void)identity, (void)call;
  const hello *self = instance;
  if (strcmp(rpc->method, "tools/call") != 0 || rpc->name == NULL) return MCPGATE_ALLOW;
  if (strncmp(rpc->name, self->prefix, strlen(self->prefix)) != 0) return MCPGATE_ALLOW;
  decision->reason = self->reason; /* lives in the instance: valid until the hook returns */
  return MCPGATE_DENY;
}

static const mcpgate_plugin descriptor = {
    .abi_version = MCPGATE_PLUGIN_ABI_VERSION, .name = "hello",
    .init = hello_init, .destroy = hello_destroy, .authorize = hello_authorize,
};

__attribute__((visibility("default"))) const mcpgate_plugin *mcpgate_plugin_entry(void) { return &descriptor; }
