/*
 * tool-guard: attribute-based checks on the arguments of tools/call (authorize).
 *
 * config: {"rules": [
 *   {"tool": "create_note", "argument": "tenant", "equals_claim": "tenant"},
 *   {"tool": "*", "argument": "path", "deny_values": ["/etc/passwd"]},
 *   {"tool": "delete_note", "argument": "id", "deny_prefix": "system-", "required": true}]}
 *
 * A rule applies to one tool (or "*") and one top-level argument, and has exactly one check.
 * Rules are checked in order; the first that denies decides. A message that is not a tools/call
 * is allowed. An argument that is absent or null is "missing": it denies when the rule is required
 * (the default for equals_claim) and passes the rule otherwise. A present argument that is not a
 * string denies: the checks compare strings, and a number or array must not slip past a deny list.
 */
#define _POSIX_C_SOURCE 200809L

#include <mcpgate/plugin.h>

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum check_kind { CHECK_EQUALS_CLAIM, CHECK_DENY_VALUES, CHECK_DENY_PREFIX } check_kind;

typedef struct rule {
  char *tool; /* "*" for every tool */
  char *argument;
  check_kind kind;
  bool required;
  json_t *operand; /* the claim name or prefix (string), or the denied values (array of strings) */
} rule;

typedef struct tool_guard {
  rule *rules;
  size_t count;
} tool_guard;

/* Deny reasons name the argument and claim (config text, never request data); hooks run on
 * several threads at once, so each thread formats into its own buffer. */
static _Thread_local char reason_buf[256];

static int fail(char *error, size_t error_size, const char *format, ...) {
  va_list args;
  va_start(args, format);
  vsnprintf(error, error_size, format, args);
  va_end(args);
  return -1;
}

static const char *reason(const char *format, ...) {
  va_list args;
  va_start(args, format);
  vsnprintf(reason_buf, sizeof reason_buf, format, args);
  va_end(args);
  return reason_buf;
}

static void tool_guard_free(tool_guard *self) {
  if (self == NULL) return;
  for (size_t i = 0; i < self->count; i++) {
    free(self->rules[i].tool);
    free(self->rules[i].argument);
    json_decref(self->rules[i].operand);
  }
  free(self->rules);
  free(self);
}

static bool is_nonempty_string(const json_t *v) { return json_is_string(v) && json_string_length(v) > 0; }

static int check_keys(const json_t *spec, size_t index, char *error, size_t error_size) {
  static const char *const known[] = {"tool", "argument", "equals_claim", "deny_values", "deny_prefix", "required"};
  const char *key;
  json_t *value;
  json_object_foreach((json_t *)spec, key, value) {
    bool ok = false;
    for (size_t k = 0; k < sizeof known / sizeof known[0]; k++) ok = ok || strcmp(key, known[k]) == 0;
    if (!ok) return fail(error, error_size, "rules[%zu]: unknown key '%s'", index, key);
  }
  return 0;
}

static int parse_check(rule *r, const json_t *spec, size_t index, char *error, size_t error_size) {
  json_t *claim = json_object_get(spec, "equals_claim");
  json_t *values = json_object_get(spec, "deny_values");
  json_t *prefix = json_object_get(spec, "deny_prefix");
  if ((claim != NULL) + (values != NULL) + (prefix != NULL) != 1)
    return fail(error, error_size, "rules[%zu]: needs exactly one of equals_claim, deny_values, deny_prefix", index);
  if (claim != NULL && !is_nonempty_string(claim))
    return fail(error, error_size, "rules[%zu]: equals_claim must be a claim name", index);
  if (prefix != NULL && !is_nonempty_string(prefix))
    return fail(error, error_size, "rules[%zu]: deny_prefix must be a non-empty string", index);
  if (values != NULL) {
    size_t i;
    json_t *v;
    if (!json_is_array(values) || json_array_size(values) == 0)
      return fail(error, error_size, "rules[%zu]: deny_values must be a non-empty array of strings", index);
    json_array_foreach(values, i, v) {
      if (!json_is_string(v)) return fail(error, error_size, "rules[%zu]: deny_values[%zu] is not a string", index, i);
    }
  }
  r->kind = claim != NULL ? CHECK_EQUALS_CLAIM : values != NULL ? CHECK_DENY_VALUES : CHECK_DENY_PREFIX;
  r->operand = json_incref(claim != NULL ? claim : values != NULL ? values : prefix);
  json_t *required = json_object_get(spec, "required");
  if (required != NULL && !json_is_boolean(required))
    return fail(error, error_size, "rules[%zu]: required must be true or false", index);
  r->required = required != NULL ? json_is_true(required) : r->kind == CHECK_EQUALS_CLAIM;
  return 0;
}

static int parse_rule(tool_guard *self, const json_t *spec, size_t index, char *error, size_t error_size) {
  if (!json_is_object(spec)) return fail(error, error_size, "rules[%zu]: not an object", index);
  if (check_keys(spec, index, error, error_size) != 0) return -1;
  json_t *tool = json_object_get(spec, "tool"), *argument = json_object_get(spec, "argument");
  if (!is_nonempty_string(tool)) return fail(error, error_size, "rules[%zu]: tool must be a tool name or \"*\"", index);
  if (!is_nonempty_string(argument)) return fail(error, error_size, "rules[%zu]: argument must be an argument name", index);
  rule *r = &self->rules[self->count++]; /* counted now so that tool_guard_free() frees it */
  r->tool = strdup(json_string_value(tool));
  r->argument = strdup(json_string_value(argument));
  if (r->tool == NULL || r->argument == NULL) return fail(error, error_size, "out of memory");
  return parse_check(r, spec, index, error, error_size);
}

static int parse_config(tool_guard *self, const char *config_json, char *error, size_t error_size) {
  json_t *root = json_loads(config_json != NULL ? config_json : "{}", 0, NULL);
  int rc = 0;
  const char *key;
  json_t *value, *rules = NULL;
  if (!json_is_object(root)) rc = fail(error, error_size, "config: not a JSON object");
  if (rc == 0) {
    json_object_foreach(root, key, value) {
      if (strcmp(key, "rules") != 0) {
        rc = fail(error, error_size, "config: unknown key '%s' (expected rules)", key);
        break;
      }
    }
  }
  if (rc == 0 && (!json_is_array(rules = json_object_get(root, "rules")) || json_array_size(rules) == 0))
    rc = fail(error, error_size, "config: rules must be a non-empty array");
  if (rc == 0 && (self->rules = calloc(json_array_size(rules), sizeof *self->rules)) == NULL)
    rc = fail(error, error_size, "out of memory");
  if (rc == 0) {
    size_t i;
    json_array_foreach(rules, i, value) {
      if ((rc = parse_rule(self, value, i, error, error_size)) != 0) break;
    }
  }
  json_decref(root);
  return rc;
}

static int tool_guard_init(const mcpgate_host *host, const char *config_json, void **instance, char *error,
                           size_t error_size) {
  tool_guard *self = calloc(1, sizeof *self);
  if (self == NULL) return fail(error, error_size, "out of memory");
  if (parse_config(self, config_json, error, error_size) != 0) {
    tool_guard_free(self);
    return -1;
  }
  if (host != NULL && host->log != NULL) {
    char message[64];
    snprintf(message, sizeof message, "loaded %zu rule%s", self->count, self->count == 1 ? "" : "s");
    host->log(host, MCPGATE_LOG_INFO, message);
  }
  *instance = self;
  return 0;
}

static void tool_guard_destroy(void *instance) { tool_guard_free(instance); }

static bool string_equals(const json_t *a, const json_t *b) {
  return json_string_length(a) == json_string_length(b) &&
         memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
}

/* NULL when `arg` (present and a string) passes rule `r`, else the deny reason. */
static const char *check_value(const rule *r, const json_t *arg, json_t **claims, const mcpgate_identity *identity) {
  if (r->kind == CHECK_DENY_VALUES) {
    size_t i;
    json_t *denied;
    json_array_foreach(r->operand, i, denied) {
      if (string_equals(arg, denied)) return reason("tool-guard: argument '%s' has a denied value", r->argument);
    }
    return NULL;
  }
  if (r->kind == CHECK_DENY_PREFIX) {
    size_t n = json_string_length(r->operand);
    if (json_string_length(arg) >= n && memcmp(json_string_value(arg), json_string_value(r->operand), n) == 0)
      return reason("tool-guard: argument '%s' has a denied prefix", r->argument);
    return NULL;
  }
  const char *claim_name = json_string_value(r->operand);
  if (*claims == NULL && identity->claims_json != NULL) *claims = json_loads(identity->claims_json, JSON_ALLOW_NUL, NULL);
  json_t *claim = json_is_object(*claims) ? json_object_get(*claims, claim_name) : NULL;
  if (!json_is_string(claim)) return reason("tool-guard: your token has no '%s' claim", claim_name);
  if (!string_equals(arg, claim))
    return reason("tool-guard: argument '%s' must equal your '%s' claim", r->argument, claim_name);
  return NULL;
}

/* NULL when the call passes every rule, else the deny reason of the first that fails. */
static const char *evaluate(const tool_guard *self, const mcpgate_identity *identity, const mcpgate_rpc *rpc) {
  json_t *args = NULL, *claims = NULL;
  bool parsed = false;
  const char *denied = NULL;
  for (size_t i = 0; i < self->count && denied == NULL; i++) {
    const rule *r = &self->rules[i];
    if (strcmp(r->tool, "*") != 0 && strcmp(r->tool, rpc->name) != 0) continue;
    if (!parsed) {
      parsed = true;
      args = rpc->arguments_json != NULL ? json_loads(rpc->arguments_json, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL) : json_object();
      if (!json_is_object(args)) denied = "tool-guard: arguments must be a JSON object";
      if (denied != NULL) break;
    }
    json_t *arg = json_object_get(args, r->argument);
    if (arg == NULL || json_is_null(arg)) {
      if (r->required) denied = reason("tool-guard: argument '%s' is required", r->argument);
    } else if (!json_is_string(arg)) {
      denied = reason("tool-guard: argument '%s' must be a string", r->argument);
    } else {
      denied = check_value(r, arg, &claims, identity);
    }
  }
  json_decref(args);
  json_decref(claims);
  return denied;
}

static mcpgate_result tool_guard_authorize(void *instance, const mcpgate_identity *identity, const mcpgate_rpc *rpc,
                                           mcpgate_decision *decision, mcpgate_call *call) {
  (void)call;
  if (rpc->method == NULL || strcmp(rpc->method, "tools/call") != 0 || rpc->name == NULL) return MCPGATE_ALLOW;
  if (identity == NULL) {
    decision->reason = "tool-guard: the caller is not authenticated";
    return MCPGATE_DENY;
  }
  const char *denied = evaluate(instance, identity, rpc);
  if (denied == NULL) return MCPGATE_ALLOW;
  decision->reason = denied;
  return MCPGATE_DENY;
}

static const mcpgate_plugin descriptor = {
    .abi_version = MCPGATE_PLUGIN_ABI_VERSION,
    .name = "tool-guard",
    .init = tool_guard_init,
    .destroy = tool_guard_destroy,
    .authorize = tool_guard_authorize,
};

__attribute__((visibility("default"))) const mcpgate_plugin *mcpgate_plugin_entry(void) { return &descriptor; }
