/*
 * mcpgate plugin ABI, version 1.
 *
 * A plugin is a shared object exporting one C function, mcpgate_plugin_entry(), that returns a
 * static descriptor: the ABI version it was built against and its hooks. Only plain C types cross
 * this boundary; a plugin may be written in C, C++ (with extern "C"), Rust or anything that can
 * export a C function.
 *
 * Lifecycle
 *   The gateway loads every plugin of the config at start and again on each reload (SIGHUP): each
 *   load calls init() once and makes a new instance; the instance of the previous config is
 *   destroyed once no request uses it any more and no asynchronous call of it is pending. dlopen()
 *   hands back the same library to every load, so state a plugin keeps in globals is shared
 *   between instances: keep per-config state in the instance.
 *
 * Threading
 *   init() runs on the gateway's main thread; destroy() on the main thread or an event-loop
 *   thread, never on a thread of the plugin, and as soon as the last pending call is completed:
 *   after calling complete_* a plugin thread must not touch the instance. The library itself is
 *   never unloaded while the gateway runs. Every other hook runs on one of the gateway's event-loop threads, and
 *   several loops call the same instance at the same time: hooks must be thread-safe. Read-only
 *   state built in init() needs no locking; anything changed later needs the plugin's own lock,
 *   held briefly. A hook must never block: no network, disk or sleep on the calling thread.
 *
 * Asynchronous answers
 *   verify_token and authorize may answer later: the hook starts its work (on a thread of its
 *   own, or an event loop of its own), returns MCPGATE_PENDING, and later calls the matching
 *   host->complete_* function exactly once, from any thread, with the `call` it was given. The
 *   request waits meanwhile; nothing else waits for it. complete_* may even run before the hook
 *   has returned MCPGATE_PENDING (the answer is queued for the request's loop either way). A hook
 *   that answers directly (any result but MCPGATE_PENDING) must not call complete_* for that call.
 *   on_upstream_request is always synchronous: compute what it needs in init() or in authorize().
 *   Hooks are not given the host: a plugin that needs it keeps the pointer init() received.
 *   A pending call that is never completed leaves its request waiting until the client gives up
 *   and keeps the instance from being destroyed: give every call an answer, with a deadline of
 *   the plugin's own if its work can hang.
 *
 * Strings
 *   Every string is NUL-terminated UTF-8. Strings the gateway passes in stay valid until the hook
 *   returns (copy what a pending call needs later). Strings a plugin writes into a result stay
 *   its own; they must stay valid until the hook returns, or for a pending call until complete_*
 *   returns. The gateway copies them.
 */
#ifndef MCPGATE_PLUGIN_H
#define MCPGATE_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped on any change to the layout or meaning of the types below; the gateway loads only
 * plugins built against the version it was built with. */
#define MCPGATE_PLUGIN_ABI_VERSION 1u

/* The one symbol a plugin exports. */
#define MCPGATE_PLUGIN_ENTRY_SYMBOL "mcpgate_plugin_entry"

typedef enum mcpgate_result {
  MCPGATE_ALLOW = 0,   /* verify_token: the token is good; authorize: the call may proceed */
  MCPGATE_DENY = 1,    /* verify_token: 401 invalid_token; authorize: 403 */
  MCPGATE_PENDING = 2, /* the answer comes later through host->complete_* */
  MCPGATE_ERROR = 3    /* the plugin cannot decide now (its own dependency failed): 503 */
} mcpgate_result;

typedef enum mcpgate_log_level {
  MCPGATE_LOG_DEBUG = 0,
  MCPGATE_LOG_INFO = 1,
  MCPGATE_LOG_WARN = 2,
  MCPGATE_LOG_ERROR = 3
} mcpgate_log_level;

/* Who the request speaks for, as the route's authentication established it. */
typedef struct mcpgate_identity {
  const char *subject;     /* never NULL */
  const char *issuer;      /* the token's "iss"; "plugin:<name>" for plugin authentication */
  const char *client_id;   /* "" when unknown */
  const char *scopes;      /* space-separated, "" when none */
  const char *claims_json; /* a JSON object: the token's claims, or what verify_token returned */
  int64_t expires_at;      /* unix seconds; 0 when unknown */
} mcpgate_identity;

/* The JSON-RPC message a hook decides on. For a batch, authorize is called once per request or
 * notification in it (responses the client sends back are not shown to it), and
 * on_upstream_request once, with the first. */
typedef struct mcpgate_rpc {
  const char *route;          /* the route's name */
  const char *http_method;    /* "POST", "GET", "DELETE" */
  const char *method;         /* JSON-RPC method, e.g. "tools/call"; "" for GET/DELETE and for a
                                 POST that carries only responses */
  const char *name;           /* the tool or prompt name, the resource URI; NULL when none */
  const char *params_json;    /* "params" as JSON text; NULL when absent */
  const char *arguments_json; /* "params.arguments" as JSON text; NULL when absent */
} mcpgate_rpc;

/* verify_token's answer; the gateway zeroes it before the call. */
typedef struct mcpgate_verify_result {
  const char *subject;     /* required with MCPGATE_ALLOW */
  const char *client_id;   /* optional */
  const char *scopes;      /* optional, space-separated */
  const char *claims_json; /* optional JSON object; default {"sub": subject} */
  int64_t expires_at;      /* optional, unix seconds */
  const char *reason;      /* MCPGATE_DENY / MCPGATE_ERROR: a short text for the caller, no secrets;
                              sent as the JSON error body's message, never in WWW-Authenticate */
} mcpgate_verify_result;

/* authorize's answer on MCPGATE_DENY; the gateway zeroes it before the call. */
typedef struct mcpgate_decision {
  const char *reason;         /* shown to the caller (the JSON error's message) */
  const char *step_up_scopes; /* optional, space-separated RFC 6749 scope tokens that would allow
                                 the call; the gateway then answers 403 insufficient_scope naming
                                 them (a token with '"', '\' or a control character is dropped) */
} mcpgate_decision;

typedef struct mcpgate_call mcpgate_call;       /* one pending hook call (opaque) */
typedef struct mcpgate_headers mcpgate_headers; /* the upstream request's headers (opaque) */

/* What the gateway offers a plugin. Valid from init() until destroy() returns. */
typedef struct mcpgate_host {
  uint32_t abi_version;
  /* Writes a line to the gateway's log, tagged with the plugin's name. Any thread. */
  void (*log)(const struct mcpgate_host *host, mcpgate_log_level level, const char *message);
  /* Completes a verify_token or authorize call that returned MCPGATE_PENDING. Any thread, once.
   * `result` is ALLOW, DENY or ERROR; the details pointer may be NULL. */
  void (*complete_verify)(mcpgate_call *call, mcpgate_result result, const mcpgate_verify_result *details);
  void (*complete_authorize)(mcpgate_call *call, mcpgate_result result, const mcpgate_decision *decision);
  /* on_upstream_request only. header_get returns the first value or NULL, valid until the next
   * header_set/header_remove or the hook's return. header_set replaces every field of that name;
   * header_remove deletes them. Both return 0, or -1 for a name or value that is not a valid
   * field (CR, LF, NUL, non-token name) or a header the gateway owns (Host, Content-Length,
   * Transfer-Encoding, Connection, Upgrade, TE, Trailer, Keep-Alive, Proxy-Connection, and the
   * upstream credential's header). */
  const char *(*header_get)(const mcpgate_headers *headers, const char *name);
  int (*header_set)(mcpgate_headers *headers, const char *name, const char *value);
  int (*header_remove)(mcpgate_headers *headers, const char *name);
  /* The directory of the gateway's config file: resolve relative paths of `config` against it. */
  const char *config_dir;
  void *host_data; /* the gateway's own; plugins leave it alone */
} mcpgate_host;

typedef struct mcpgate_plugin {
  uint32_t abi_version; /* MCPGATE_PLUGIN_ABI_VERSION */
  const char *name;     /* the plugin's own name, for messages (the config gives each load its name) */

  /* Required. `config_json` is the plugin's `config` from the YAML, as a JSON object ("{}" when
   * absent). On success stores the instance in *instance (may be NULL) and returns 0; on failure
   * writes a message into error[error_size] and returns non-zero: the gateway does not start
   * (or the reload is refused). */
  int (*init)(const mcpgate_host *host, const char *config_json, void **instance, char *error,
              size_t error_size);
  /* Required. Frees the instance. */
  void (*destroy)(void *instance);

  /* Each hook may be NULL; a route that names a plugin for a hook it lacks fails at load. */

  /* auth: {type: plugin}: the bearer token of the request. ALLOW fills result->subject. */
  mcpgate_result (*verify_token)(void *instance, const char *token, const char *route,
                                 mcpgate_verify_result *result, mcpgate_call *call);
  /* policy_plugins: after the scope checks passed, once per JSON-RPC message. */
  mcpgate_result (*authorize)(void *instance, const mcpgate_identity *identity, const mcpgate_rpc *rpc,
                              mcpgate_decision *decision, mcpgate_call *call);
  /* request_plugins: just before the request goes upstream. `identity` is NULL on a route with
   * auth type none. Changes headers through host->header_*. */
  void (*on_upstream_request)(void *instance, const mcpgate_identity *identity, const mcpgate_rpc *rpc,
                              mcpgate_headers *headers);
} mcpgate_plugin;

/* Exported by the plugin: returns its descriptor (static storage, never freed). */
const mcpgate_plugin *mcpgate_plugin_entry(void);

#ifdef __cplusplus
}
#endif

#endif /* MCPGATE_PLUGIN_H */
