/* A plugin that answers both verify_token and authorize later, from a thread of its own (~20 ms),
 * as a plugin asking a remote service would. One detached thread per call: fine for a test.
 *
 * verify_token:  "async-good"  -> ALLOW, subject "async-user", scopes "read"
 *                "async-error" -> ERROR, "async: backend down"
 *                anything else -> DENY,  "async: unknown token"
 * authorize:     tools/call "forbidden"   -> DENY, "async: forbidden tool"
 *                tools/call "needs-admin" -> DENY, step-up scopes "admin"
 *                anything else            -> ALLOW
 *
 * The hook copies what the thread needs (the token, the tool name) before it returns; the thread
 * touches nothing of the gateway's but the `call` and the complete_* function, and frees its job
 * after complete_* returns. Every string in a completion is a literal, so it outlives the call. */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mcpgate/plugin.h>

#define ASYNC_DELAY_NS (20L * 1000L * 1000L)

typedef struct async_instance {
  const mcpgate_host *host;
} async_instance;

typedef struct verify_job {
  void (*complete)(mcpgate_call *, mcpgate_result, const mcpgate_verify_result *);
  mcpgate_call *call;
  char *token;
} verify_job;

typedef struct authorize_job {
  void (*complete)(mcpgate_call *, mcpgate_result, const mcpgate_decision *);
  mcpgate_call *call;
  int is_tool_call;
  char *tool; /* NULL when the message names none */
} authorize_job;

static char *copy_string(const char *s) {
  if (s == NULL) return NULL;
  size_t n = strlen(s) + 1;
  char *c = malloc(n);
  if (c != NULL) memcpy(c, s, n);
  return c;
}

static void delay(void) {
  struct timespec ts = {0, ASYNC_DELAY_NS};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

static int start_detached(void *(*fn)(void *), void *arg) {
  pthread_attr_t attr;
  pthread_t thread;
  if (pthread_attr_init(&attr) != 0) return -1;
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  int rc = pthread_create(&thread, &attr, fn, arg);
  pthread_attr_destroy(&attr);
  return rc == 0 ? 0 : -1;
}

static void *verify_thread(void *arg) {
  verify_job *job = arg;
  delay();
  mcpgate_verify_result r;
  memset(&r, 0, sizeof r);
  mcpgate_result result;
  if (strcmp(job->token, "async-good") == 0) {
    r.subject = "async-user";
    r.scopes = "read";
    r.claims_json = "{\"sub\":\"async-user\",\"via\":\"async\"}";
    result = MCPGATE_ALLOW;
  } else if (strcmp(job->token, "async-error") == 0) {
    r.reason = "async: backend down";
    result = MCPGATE_ERROR;
  } else {
    r.reason = "async: unknown token";
    result = MCPGATE_DENY;
  }
  job->complete(job->call, result, &r);
  free(job->token);
  free(job);
  return NULL;
}

static void *authorize_thread(void *arg) {
  authorize_job *job = arg;
  delay();
  mcpgate_decision d;
  memset(&d, 0, sizeof d);
  mcpgate_result result = MCPGATE_ALLOW;
  if (job->is_tool_call && job->tool != NULL) {
    if (strcmp(job->tool, "forbidden") == 0) {
      d.reason = "async: forbidden tool";
      result = MCPGATE_DENY;
    } else if (strcmp(job->tool, "needs-admin") == 0) {
      d.reason = "async: needs admin";
      d.step_up_scopes = "admin";
      result = MCPGATE_DENY;
    }
  }
  job->complete(job->call, result, result == MCPGATE_ALLOW ? NULL : &d);
  free(job->tool);
  free(job);
  return NULL;
}

static int async_init(const mcpgate_host *host, const char *config_json, void **instance, char *error,
                      size_t error_size) {
  (void)config_json;
  async_instance *inst = malloc(sizeof *inst);
  if (inst == NULL) {
    strncpy(error, "out of memory", error_size - 1);
    error[error_size - 1] = '\0';
    return 1;
  }
  inst->host = host;
  *instance = inst;
  if (host->log != NULL) host->log(host, MCPGATE_LOG_INFO, "test-async ready");
  return 0;
}

static void async_destroy(void *instance) { free(instance); }

static mcpgate_result async_verify(void *instance, const char *token, const char *route,
                                   mcpgate_verify_result *result, mcpgate_call *call) {
  async_instance *inst = instance;
  (void)route;
  verify_job *job = malloc(sizeof *job);
  char *copy = copy_string(token != NULL ? token : "");
  if (job == NULL || copy == NULL) {
    free(job);
    free(copy);
    result->reason = "async: out of memory";
    return MCPGATE_ERROR;
  }
  job->complete = inst->host->complete_verify;
  job->call = call;
  job->token = copy;
  if (start_detached(verify_thread, job) != 0) {
    free(copy);
    free(job);
    result->reason = "async: cannot start a thread";
    return MCPGATE_ERROR;
  }
  return MCPGATE_PENDING;
}

static mcpgate_result async_authorize(void *instance, const mcpgate_identity *identity, const mcpgate_rpc *rpc,
                                      mcpgate_decision *decision, mcpgate_call *call) {
  async_instance *inst = instance;
  (void)identity;
  authorize_job *job = malloc(sizeof *job);
  if (job == NULL) {
    decision->reason = "async: out of memory";
    return MCPGATE_ERROR;
  }
  job->complete = inst->host->complete_authorize;
  job->call = call;
  job->is_tool_call = rpc->method != NULL && strcmp(rpc->method, "tools/call") == 0;
  job->tool = NULL;
  if (rpc->name != NULL) {
    job->tool = copy_string(rpc->name);
    if (job->tool == NULL) {
      free(job);
      decision->reason = "async: out of memory";
      return MCPGATE_ERROR;
    }
  }
  if (start_detached(authorize_thread, job) != 0) {
    free(job->tool);
    free(job);
    decision->reason = "async: cannot start a thread";
    return MCPGATE_ERROR;
  }
  return MCPGATE_PENDING;
}

static const mcpgate_plugin descriptor = {
    .abi_version = MCPGATE_PLUGIN_ABI_VERSION,
    .name = "test-async",
    .init = async_init,
    .destroy = async_destroy,
    .verify_token = async_verify,
    .authorize = async_authorize,
};

__attribute__((visibility("default"))) const mcpgate_plugin *mcpgate_plugin_entry(void) { return &descriptor; }
