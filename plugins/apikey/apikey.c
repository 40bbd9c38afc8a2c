/*
 * apikey: authenticates static API keys (verify_token).
 *
 * config: {"keys_file": "/etc/mcpgate/keys.txt"}
 *
 * The keys file holds one key per line, as the SHA-256 of the key, never the key itself:
 *
 *   # sha256 (64 hex)                                                subject  attributes
 *   9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 ci-bot   scopes=read:notes,write:notes client_id=ci tenant=acme
 *
 * `scopes=a,b` gives the scopes (space-separated in the result), `client_id=` the client id, any
 * other `name=value` a string claim. The instance is built once in init() and read-only after,
 * so the hook needs no lock; a reload (SIGHUP) runs init() again and so re-reads the file.
 */
#define _POSIX_C_SOURCE 200809L

#include <mcpgate/plugin.h>

#include <errno.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HASH_SIZE 32 /* SHA-256 */

typedef struct key_entry {
  unsigned char hash[HASH_SIZE];
  char *subject;
  char *client_id;   /* NULL when not set */
  char *scopes;      /* NULL when not set */
  char *claims_json; /* always set: {"sub": ..., ...} */
} key_entry;

typedef struct apikey {
  key_entry *entries;
  size_t count;
} apikey;

static void entry_free(key_entry *e) {
  free(e->subject);
  free(e->client_id);
  free(e->scopes);
  free(e->claims_json);
  memset(e, 0, sizeof *e);
}

static void apikey_free(apikey *self) {
  if (self == NULL) return;
  for (size_t i = 0; i < self->count; i++) entry_free(&self->entries[i]);
  free(self->entries);
  free(self);
}

static int fail(char *error, size_t error_size, const char *format, ...) {
  va_list args;
  va_start(args, format);
  vsnprintf(error, error_size, format, args);
  va_end(args);
  return -1;
}

static int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static bool parse_hash(const char *text, unsigned char out[HASH_SIZE]) {
  if (strlen(text) != 2 * HASH_SIZE) return false;
  for (size_t i = 0; i < HASH_SIZE; i++) {
    int hi = hex_value(text[2 * i]), lo = hex_value(text[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = (unsigned char)(hi << 4 | lo);
  }
  return true;
}

/* "a,b,,c" -> "a b c"; NULL only when out of memory. */
static char *scopes_from_list(const char *list) {
  char *out = malloc(strlen(list) + 1);
  if (out == NULL) return NULL;
  size_t n = 0;
  for (const char *p = list; *p != '\0'; p++) {
    if (*p == ',') {
      if (n > 0 && out[n - 1] != ' ') out[n++] = ' ';
    } else {
      out[n++] = *p;
    }
  }
  if (n > 0 && out[n - 1] == ' ') n--;
  out[n] = '\0';
  return out;
}

/* Strips the line ending; true for blank lines and comments. */
static bool skip_line(char *line) {
  size_t len = strlen(line);
  while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
  const char *p = line + strspn(line, " \t");
  return *p == '\0' || *p == '#';
}

/* Adds one name=value attribute of a line to `e` and `claims`; false with the problem in `why`. */
static bool add_attribute(char *attr, key_entry *e, json_t *claims, char *why, size_t why_size) {
  char *eq = strchr(attr, '=');
  if (eq == NULL || eq == attr) {
    snprintf(why, why_size, "expected name=value, got '%.64s'", attr);
    return false;
  }
  *eq = '\0';
  const char *name = attr, *value = eq + 1;
  bool is_scopes = strcmp(name, "scopes") == 0, is_client = strcmp(name, "client_id") == 0;
  const char *claim = is_scopes ? "scope" : name;
  if (strcmp(name, "sub") == 0 || strcmp(name, "scope") == 0) {
    snprintf(why, why_size, "attribute '%s' is reserved (the subject is the second field; use scopes=)", name);
    return false;
  }
  if (json_object_get(claims, claim) != NULL) {
    snprintf(why, why_size, "attribute '%.64s' given twice", name);
    return false;
  }
  char *owned = is_scopes ? scopes_from_list(value) : is_client ? strdup(value) : NULL;
  if ((is_scopes || is_client) && owned == NULL) {
    snprintf(why, why_size, "out of memory");
    return false;
  }
  if (json_object_set_new(claims, claim, json_string(owned != NULL ? owned : value)) != 0) {
    snprintf(why, why_size, "attribute '%.64s' is not valid UTF-8", name);
    free(owned);
    return false;
  }
  if (is_scopes)
    e->scopes = owned;
  else if (is_client)
    e->client_id = owned;
  return true;
}

/* Parses one non-blank line into `e`; on failure writes the problem (without file/line) to `why`. */
static bool parse_line(char *line, key_entry *e, char *why, size_t why_size) {
  const char *sep = " \t";
  char *save = NULL;
  char *hash = strtok_r(line, sep, &save);
  char *subject = strtok_r(NULL, sep, &save);
  if (hash == NULL || !parse_hash(hash, e->hash)) {
    snprintf(why, why_size, "expected 64 hex characters (the key's SHA-256) first");
    return false;
  }
  if (subject == NULL) {
    snprintf(why, why_size, "expected a subject after the hash");
    return false;
  }
  json_t *claims = json_object();
  bool ok = claims != NULL && json_object_set_new(claims, "sub", json_string(subject)) == 0;
  if (!ok) snprintf(why, why_size, "the subject is not valid UTF-8");
  for (char *attr; ok && (attr = strtok_r(NULL, sep, &save)) != NULL;) ok = add_attribute(attr, e, claims, why, why_size);
  if (ok) {
    e->subject = strdup(subject);
    e->claims_json = json_dumps(claims, JSON_COMPACT);
    ok = e->subject != NULL && e->claims_json != NULL;
    if (!ok) snprintf(why, why_size, "out of memory");
  }
  json_decref(claims);
  if (!ok) entry_free(e);
  return ok;
}

static bool is_duplicate(const apikey *self, const unsigned char hash[HASH_SIZE], size_t *line_of, const size_t *lines) {
  for (size_t i = 0; i < self->count; i++) {
    if (memcmp(self->entries[i].hash, hash, HASH_SIZE) == 0) {
      *line_of = lines[i];
      return true;
    }
  }
  return false;
}

static int load_keys(apikey *self, const char *path, char *error, size_t error_size) {
  FILE *file = fopen(path, "r");
  if (file == NULL) return fail(error, error_size, "keys_file: cannot open '%s': %s", path, strerror(errno));
  int rc = 0;
  char *line = NULL;
  size_t capacity = 0, allocated = 0, line_no = 0;
  size_t *lines = NULL; /* the line of each entry, for duplicate messages */
  ssize_t len;
  while ((len = getline(&line, &capacity, file)) >= 0) {
    line_no++;
    if ((size_t)len != strlen(line)) {
      rc = fail(error, error_size, "keys file '%s' line %zu: contains a NUL byte", path, line_no);
      break;
    }
    if (skip_line(line)) continue;
    if (self->count == allocated) {
      size_t n = allocated == 0 ? 16 : 2 * allocated;
      key_entry *entries = realloc(self->entries, n * sizeof *entries);
      if (entries != NULL) self->entries = entries;
      size_t *new_lines = realloc(lines, n * sizeof *lines);
      if (new_lines != NULL) lines = new_lines;
      if (entries == NULL || new_lines == NULL) {
        rc = fail(error, error_size, "keys file '%s': out of memory", path);
        break;
      }
      allocated = n;
    }
    key_entry *e = &self->entries[self->count];
    memset(e, 0, sizeof *e);
    char why[160];
    size_t first = 0;
    if (!parse_line(line, e, why, sizeof why)) {
      rc = fail(error, error_size, "keys file '%s' line %zu: %s", path, line_no, why);
      break;
    }
    if (is_duplicate(self, e->hash, &first, lines)) {
      entry_free(e);
      rc = fail(error, error_size, "keys file '%s' line %zu: the same key hash as line %zu", path, line_no, first);
      break;
    }
    lines[self->count++] = line_no;
  }
  if (rc == 0 && ferror(file)) rc = fail(error, error_size, "keys_file: cannot read '%s': %s", path, strerror(errno));
  free(line);
  free(lines);
  fclose(file);
  return rc;
}

static int parse_config(const char *config_json, const char **keys_file, json_t **root, char *error, size_t error_size) {
  json_error_t jerr;
  *root = json_loads(config_json != NULL ? config_json : "{}", 0, &jerr);
  if (*root == NULL || !json_is_object(*root)) return fail(error, error_size, "config: not a JSON object");
  const char *key;
  json_t *value;
  json_object_foreach(*root, key, value) {
    if (strcmp(key, "keys_file") != 0) return fail(error, error_size, "config: unknown key '%s' (expected keys_file)", key);
  }
  json_t *file = json_object_get(*root, "keys_file");
  if (!json_is_string(file) || json_string_length(file) == 0)
    return fail(error, error_size, "config: keys_file is required (the path of the hashed keys file)");
  *keys_file = json_string_value(file);
  return 0;
}

static int apikey_init(const mcpgate_host *host, const char *config_json, void **instance, char *error,
                       size_t error_size) {
  json_t *root = NULL;
  const char *keys_file = NULL;
  apikey *self = NULL;
  int rc = parse_config(config_json, &keys_file, &root, error, error_size);
  if (rc == 0 && (self = calloc(1, sizeof *self)) == NULL) rc = fail(error, error_size, "out of memory");
  char resolved[4096];
  if (rc == 0 && keys_file[0] != '/' && host != NULL && host->config_dir != NULL) {
    /* A relative keys_file is taken from the gateway config's directory, like the plugin's path. */
    if ((size_t)snprintf(resolved, sizeof resolved, "%s/%s", host->config_dir, keys_file) >= sizeof resolved)
      rc = fail(error, error_size, "keys_file: path too long");
    keys_file = resolved;
  }
  if (rc == 0) rc = load_keys(self, keys_file, error, error_size);
  if (rc == 0 && host != NULL && host->log != NULL) {
    char message[4200];
    snprintf(message, sizeof message, "loaded %zu API key%s from '%s'", self->count, self->count == 1 ? "" : "s",
             keys_file);
    host->log(host, self->count == 0 ? MCPGATE_LOG_WARN : MCPGATE_LOG_INFO, message);
  }
  json_decref(root);
  if (rc != 0) {
    apikey_free(self);
    return rc;
  }
  *instance = self;
  return 0;
}

static void apikey_destroy(void *instance) { apikey_free(instance); }

static mcpgate_result apikey_verify(void *instance, const char *token, const char *route,
                                    mcpgate_verify_result *result, mcpgate_call *call) {
  (void)route;
  (void)call;
  const apikey *self = instance;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  if (token == NULL || token[0] == '\0') {
    result->reason = "unknown API key";
    return MCPGATE_DENY;
  }
  if (EVP_Digest(token, strlen(token), digest, &digest_len, EVP_sha256(), NULL) != 1 || digest_len != HASH_SIZE) {
    result->reason = "API key check failed";
    return MCPGATE_ERROR;
  }
  /* Compare with every entry, without branching on the outcome, so the time taken does not depend
   * on where (or whether) the key is in the file. Hashes are unique, so at most one matches. */
  size_t found = 0, index = 0;
  for (size_t i = 0; i < self->count; i++) {
    size_t match = (size_t)(CRYPTO_memcmp(self->entries[i].hash, digest, HASH_SIZE) == 0);
    size_t mask = (size_t)0 - match;
    index = (index & ~mask) | (i & mask);
    found |= match;
  }
  OPENSSL_cleanse(digest, sizeof digest);
  if (!found) {
    result->reason = "unknown API key";
    return MCPGATE_DENY;
  }
  const key_entry *e = &self->entries[index];
  result->subject = e->subject;
  result->client_id = e->client_id;
  result->scopes = e->scopes;
  result->claims_json = e->claims_json;
  return MCPGATE_ALLOW;
}

static const mcpgate_plugin descriptor = {
    .abi_version = MCPGATE_PLUGIN_ABI_VERSION,
    .name = "apikey",
    .init = apikey_init,
    .destroy = apikey_destroy,
    .verify_token = apikey_verify,
};

__attribute__((visibility("default"))) const mcpgate_plugin *mcpgate_plugin_entry(void) { return &descriptor; }
