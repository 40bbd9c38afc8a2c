/*
 * claims-headers: passes claims of the caller to the upstream as request headers
 * (on_upstream_request).
 *
 * config: {"headers": {"X-User-Id": "sub", "X-Tenant": "tenant", "X-Org": "org.id"}}
 *
 * Every configured header is first removed from the request, so a client can never send its own
 * value; then it is set from the claim when the caller has it. A claim path is looked up as one
 * top-level key first (namespaced claims such as "https://example.com/tenant" contain dots), then
 * by walking nested objects at the dots.
 */
#define _POSIX_C_SOURCE 200809L

#include <mcpgate/plugin.h>

#include <jansson.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define VALUE_CAP 256 /* bytes of a header value, after sanitising */

typedef struct mapping {
  char *header;
  char *path;           /* as configured, e.g. "org.id" */
  atomic_bool warned;   /* the host refused this header once already: warn only once */
} mapping;

typedef struct claims_headers {
  const mcpgate_host *host;
  mapping *mappings;
  size_t count;
} claims_headers;

static int fail(char *error, size_t error_size, const char *format, ...) {
  va_list args;
  va_start(args, format);
  vsnprintf(error, error_size, format, args);
  va_end(args);
  return -1;
}

static void claims_headers_free(claims_headers *self) {
  if (self == NULL) return;
  for (size_t i = 0; i < self->count; i++) {
    free(self->mappings[i].header);
    free(self->mappings[i].path);
  }
  free(self->mappings);
  free(self);
}

/* RFC 9110 token: 1*tchar. */
static bool is_token(const char *s) {
  if (*s == '\0') return false;
  for (; *s != '\0'; s++) {
    unsigned char c = (unsigned char)*s;
    bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!alnum && strchr("!#$%&'*+-.^_`|~", c) == NULL) return false;
  }
  return true;
}

static bool is_reserved_header(const char *name) {
  static const char *const reserved[] = {"Host", "Content-Length", "Transfer-Encoding", "Connection", "Authorization"};
  for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++) {
    if (strcasecmp(name, reserved[i]) == 0) return true;
  }
  return false;
}

static bool is_valid_path(const char *path) {
  size_t len = strlen(path);
  return len > 0 && path[0] != '.' && path[len - 1] != '.' && strstr(path, "..") == NULL;
}

static int add_mapping(claims_headers *self, const char *header, const json_t *path, char *error, size_t error_size) {
  if (!is_token(header)) return fail(error, error_size, "headers: '%s' is not a valid header name", header);
  if (is_reserved_header(header)) return fail(error, error_size, "headers: '%s' cannot be set by a plugin", header);
  for (size_t i = 0; i < self->count; i++) {
    if (strcasecmp(self->mappings[i].header, header) == 0)
      return fail(error, error_size, "headers: '%s' is given twice", header);
  }
  if (!json_is_string(path) || !is_valid_path(json_string_value(path)))
    return fail(error, error_size, "headers: '%s' needs a claim path such as \"sub\" or \"org.id\"", header);
  mapping *m = &self->mappings[self->count];
  m->header = strdup(header);
  m->path = strdup(json_string_value(path));
  atomic_init(&m->warned, false);
  self->count++; /* counted before the check so that claims_headers_free() frees both */
  if (m->header == NULL || m->path == NULL) return fail(error, error_size, "out of memory");
  return 0;
}

static int parse_config(claims_headers *self, const char *config_json, char *error, size_t error_size) {
  json_error_t jerr;
  json_t *root = json_loads(config_json != NULL ? config_json : "{}", 0, &jerr);
  int rc = 0;
  const char *key;
  json_t *value;
  if (root == NULL || !json_is_object(root)) rc = fail(error, error_size, "config: not a JSON object");
  if (rc == 0) {
    json_object_foreach(root, key, value) {
      if (strcmp(key, "headers") != 0) {
        rc = fail(error, error_size, "config: unknown key '%s' (expected headers)", key);
        break;
      }
    }
  }
  json_t *headers = rc == 0 ? json_object_get(root, "headers") : NULL;
  if (rc == 0 && (!json_is_object(headers) || json_object_size(headers) == 0))
    rc = fail(error, error_size, "config: headers must map at least one header name to a claim path");
  if (rc == 0 && (self->mappings = calloc(json_object_size(headers), sizeof *self->mappings)) == NULL)
    rc = fail(error, error_size, "out of memory");
  if (rc == 0) {
    json_object_foreach(headers, key, value) {
      if ((rc = add_mapping(self, key, value, error, error_size)) != 0) break;
    }
  }
  json_decref(root);
  return rc;
}

static int claims_headers_init(const mcpgate_host *host, const char *config_json, void **instance, char *error,
                               size_t error_size) {
  claims_headers *self = calloc(1, sizeof *self);
  if (self == NULL) return fail(error, error_size, "out of memory");
  self->host = host;
  if (parse_config(self, config_json, error, error_size) != 0) {
    claims_headers_free(self);
    return -1;
  }
  if (host != NULL && host->log != NULL) {
    char message[128];
    snprintf(message, sizeof message, "maps %zu claim%s to headers", self->count, self->count == 1 ? "" : "s");
    host->log(host, MCPGATE_LOG_INFO, message);
  }
  *instance = self;
  return 0;
}

static void claims_headers_destroy(void *instance) { claims_headers_free(instance); }

/* The claim at `path`: the top-level key of that name, else a walk through nested objects. */
static json_t *find_claim(json_t *claims, const char *path) {
  json_t *found = json_object_get(claims, path);
  if (found != NULL) return found;
  json_t *node = claims;
  for (const char *p = path; json_is_object(node); p++) {
    size_t len = strcspn(p, ".");
    node = json_object_getn(node, p, len);
    p += len;
    if (*p == '\0') return node;
  }
  return NULL;
}

/* A header value built while sanitising: control characters dropped, leading spaces skipped,
 * at most VALUE_CAP bytes, cut at a UTF-8 character boundary. */
typedef struct value_buf {
  char data[VALUE_CAP + 1];
  size_t len;
  bool full;
} value_buf;

static void value_append(value_buf *v, const char *s, size_t n) {
  for (size_t i = 0; i < n && !v->full; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x20 || c == 0x7f || (c == ' ' && v->len == 0)) continue;
    if (v->len == VALUE_CAP) {
      v->full = true;
      if ((c & 0xC0) == 0x80) { /* the cut falls inside a character: drop its first bytes too */
        while (v->len > 0 && ((unsigned char)v->data[v->len - 1] & 0xC0) == 0x80) v->len--;
        if (v->len > 0 && (unsigned char)v->data[v->len - 1] >= 0xC0) v->len--;
      }
      break;
    }
    v->data[v->len++] = (char)c;
  }
}

/* Appends a scalar's text: a string as is, a number or true/false as JSON. False for other types. */
static bool append_scalar(value_buf *v, json_t *value) {
  if (json_is_string(value)) {
    value_append(v, json_string_value(value), json_string_length(value));
    return true;
  }
  if (!json_is_number(value) && !json_is_boolean(value)) return false;
  char *text = json_dumps(value, JSON_ENCODE_ANY | JSON_COMPACT);
  if (text == NULL) return false;
  value_append(v, text, strlen(text));
  free(text);
  return true;
}

/* The header value for `claim`, or NULL when it is not set (object, null, empty after sanitising). */
static const char *header_value(value_buf *v, json_t *claim) {
  if (json_is_array(claim)) {
    size_t i, n = 0;
    json_t *item;
    json_array_foreach(claim, i, item) {
      if (!json_is_string(item) && !json_is_number(item) && !json_is_boolean(item)) continue;
      if (n++ > 0) value_append(v, ",", 1);
      append_scalar(v, item);
    }
  } else if (!append_scalar(v, claim)) {
    return NULL;
  }
  while (v->len > 0 && v->data[v->len - 1] == ' ') v->len--;
  v->data[v->len] = '\0';
  return v->len > 0 ? v->data : NULL;
}

static void warn_once(const claims_headers *self, mapping *m, const char *what) {
  if (atomic_exchange(&m->warned, true) || self->host == NULL || self->host->log == NULL) return;
  char message[384];
  snprintf(message, sizeof message, "the gateway refused to %s header '%s'; it is left alone", what, m->header);
  self->host->log(self->host, MCPGATE_LOG_WARN, message);
}

static void claims_headers_request(void *instance, const mcpgate_identity *identity, const mcpgate_rpc *rpc,
                                   mcpgate_headers *headers) {
  (void)rpc;
  claims_headers *self = instance;
  const mcpgate_host *host = self->host;
  json_t *claims = NULL;
  if (identity != NULL && identity->claims_json != NULL) {
    claims = json_loads(identity->claims_json, JSON_ALLOW_NUL, NULL);
    if (!json_is_object(claims)) {
      json_decref(claims);
      claims = NULL;
    }
  }
  for (size_t i = 0; i < self->count; i++) {
    mapping *m = &self->mappings[i];
    if (host->header_remove(headers, m->header) != 0) {
      warn_once(self, m, "remove");
      continue;
    }
    json_t *claim = claims != NULL ? find_claim(claims, m->path) : NULL;
    value_buf v = {.len = 0, .full = false};
    const char *value = claim != NULL ? header_value(&v, claim) : NULL;
    if (value != NULL && host->header_set(headers, m->header, value) != 0) warn_once(self, m, "set");
  }
  json_decref(claims);
}

static const mcpgate_plugin descriptor = {
    .abi_version = MCPGATE_PLUGIN_ABI_VERSION,
    .name = "claims-headers",
    .init = claims_headers_init,
    .destroy = claims_headers_destroy,
    .on_upstream_request = claims_headers_request,
};

__attribute__((visibility("default"))) const mcpgate_plugin *mcpgate_plugin_entry(void) { return &descriptor; }
