// A REAL OAuth 2.1 / OpenID Connect authorization server for the auth tests:
// npm `oidc-provider` (panva) running in a child process
// (tests/support/oidc-provider-main.mjs) on 127.0.0.1.
//
//   const idp = await startOidcProvider();
//   idp.issuer        // "http://127.0.0.1:<port>"
//   await idp.rotateKeys();   // new signing key, old one stays published
//   await idp.stop();         // SIGKILL: "IdP down", port refuses connections
//   await idp.restart();      // same port, same keys, EMPTY state
//   await idp.stats();        // token endpoint counters (see below)
//
// What the provider is configured with (see oidc-provider-main.mjs):
// - discovery at /.well-known/openid-configuration AND the RFC 8414
//   /.well-known/oauth-authorization-server (same document);
// - resourceIndicators (RFC 8707): any absolute http(s) URL is a resource;
//   a token request carrying `resource=<url>` gets an RFC 9068 JWT access token
//   (header typ "at+jwt", RS256, kid of the current signing key) with
//   aud = <url>, scope = granted scopes that the resource allows;
// - introspection (only clients in `introspectors`, default ['mcpgate']),
//   revocation, userinfo, dynamic client registration (open, no initial
//   access token), client_credentials, refresh tokens (scope offline_access);
// - PKCE (S256 only) required for public clients (all clients with pkceForAll);
// - NO devInteractions: every interaction is auto-approved (login as the
//   `login_hint` user or `defaultUser` = 'alice'; every requested scope, claim
//   and resource scope is granted). login_hint=deny ends in access_denied.
//
// Static clients (ids/secrets are in the returned `clients`):
//   mcpgate       confidential, client_secret_basic; may introspect; auth code
//                 (+refresh) and client_credentials; native loopback redirect
//   test-public   public (token_endpoint_auth_method none), PKCE, native app:
//                 redirect http://127.0.0.1/callback on ANY port (RFC 8252 7.3)
//   svc           confidential client_credentials only (service account)
//   short-lived   like mcpgate, but its access tokens live `shortLivedTtl`
//                 seconds (default 1) -> realistic expired tokens
//
// Options added for the credential tests (all off by default; without them the
// provider behaves exactly as before):
// - rotateRefreshTokens: true -> oidc-provider `rotateRefreshToken: true`:
//   EVERY refresh_token grant consumes the presented refresh token and returns
//   a new one. Presenting a consumed one is invalid_grant ("grant request is
//   invalid"; the real reason, "refresh token already used", is only in the
//   stats() event). By oidc-provider's design (OAuth 2.1 reuse detection) that
//   reuse ALSO REVOKES THE WHOLE GRANT, so the newest refresh token then fails
//   as well; refreshTokenReuseRevokesGrant: false keeps the successor valid
//   (the reuse is refused, nothing revoked). Default off = oidc-provider's
//   default policy: confidential clients keep their refresh token (the
//   response repeats it), public clients get it rotated.
// - tokenExchange: true (or {ttl, invalidSubjectError}) -> RFC 8693 grant
//   urn:ietf:params:oauth:grant-type:token-exchange at the token endpoint
//   (also listed in grant_types_supported; the static `mcpgate` client gets it
//   in its grant_types; an opts.clients client must list it itself).
//   Parameters: subject_token + subject_token_type (must be
//   urn:ietf:params:oauth:token-type:access_token), audience and/or resource
//   (at least one; repeatable), scope, requested_token_type (only the
//   access_token type). The subject token must be a JWT access token
//   (typ at+jwt) signed by one of the provider's current keys (as published
//   at jwks_uri), iss = issuer, exp in the future (no leeway). Any failure is
//   400 invalid_request (RFC 8693 2.2.2; invalidSubjectError: 'invalid_grant'
//   switches to the Okta/Keycloak style); no audience/resource or a bad
//   resource is invalid_target; actor_token is refused (invalid_request).
//   The issued token: JWT, header {alg: RS256, typ: at+jwt, kid: current kid},
//   claims {iss, sub: subject's sub, aud: audience/resource (array if several),
//   iat, exp, jti, client_id: exchanging client, scope: requested scope (as
//   asked, NOT checked against the subject's; default the subject's scope),
//   act: {sub: client_id} (nested {sub, act: <subject's act>} when the subject
//   was itself exchanged)}. TTL = tokenExchange.ttl ?? clientTtls[client] ??
//   accessTokenTtl. Response: {access_token, issued_token_type:
//   urn:ietf:params:oauth:token-type:access_token, token_type: Bearer,
//   expires_in, scope}. Nothing is stored (no introspection/revocation).
// - stats(): counts every token endpoint request that reached the grant stage
//   (successes and errors, client-auth failures included), per grant type;
//   kept in THIS process, so restart() does not reset it (resetStats() does).
//
// Authorization code flow for a confidential client from opts.clients, e.g.
//   {client_id, client_secret, redirect_uris: ['http://127.0.0.1:<port>/oauth/callback'],
//    grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
//    token_endpoint_auth_method: 'client_secret_basic'}
// (a 'web' client: the redirect_uri must match exactly, port included): a
// refresh token is issued iff the authorization request has `offline_access`
// in scope AND prompt contains `consent` (prompt=consent, or "login consent");
// `openid` is optional. PKCE (S256) is optional for confidential clients
// unless pkceForAll, but verified when sent. With `resource=<url>` in the
// authorization request and again at the token endpoint (code and refresh)
// the access token is a JWT with aud = <url>; the token response's `scope`
// does not list offline_access. Without openid, a token request without
// `resource` still yields the JWT for the single granted resource; with
// openid it yields an opaque userinfo token. Every authorization response
// (success AND error redirects) carries `iss` = issuer (RFC 9207;
// discovery has authorization_response_iss_parameter_supported: true).
//
// Gotchas (also in the report that introduced this file):
// - JWT access tokens are NOT stored by oidc-provider, so its introspection
//   endpoint refuses them (400 unsupported_token_type "Structured JWT Tokens
//   cannot be introspected"). For introspection tests use an opaque token:
//   pin the resource with {accessTokenFormat: 'opaque'} in `resourceServers`
//   (or accessTokenFormat: 'opaque' globally); it still carries aud = resource.
// - userinfo only accepts opaque tokens WITHOUT an audience and with the
//   openid scope. A token requested with `resource` (JWT or opaque) is
//   rejected there with 401 invalid_token "invalid token provided". To call
//   userinfo, redeem the code
//   WITHOUT `resource` at the token endpoint (scope must contain openid); the
//   resource bound at the authorization request stays in the grant and a
//   refresh_token request with `resource=` yields the JWT for the resource.
// - restart() and a killed child lose all state (in-memory adapter): sessions,
//   grants, opaque tokens, refresh tokens, dynamically registered clients.
//   JWT access tokens stay verifiable because the keys are kept.
//   rotateKeys() keeps all state (new Provider in the same process, shared
//   in-memory storage, port never closes). The store is oidc-provider's LRU
//   (1000 entries): fine for a test file, not for thousands of opaque tokens.
// - Unknown scopes are silently dropped (not invalid_scope); offline_access is
//   dropped unless prompt=consent (getTokenViaAuthCode adds it) and the client
//   may use refresh_token.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SUPPORT_DIR = path.dirname(fileURLToPath(import.meta.url));
const MAIN = path.join(SUPPORT_DIR, 'oidc-provider-main.mjs');
const LOOPBACK_PRELOAD = path.join(SUPPORT_DIR, 'loopback.mjs');
const TIME_SCALE = Number(process.env.MCPGATE_TEST_TIME_SCALE || 1);

export const DEFAULT_USER = 'alice';
export const OIDC_SCOPES = Object.freeze(['openid', 'profile', 'email', 'offline_access']);
export const RESOURCE_SCOPES = Object.freeze(['read:notes', 'write:notes', 'admin']);

export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

export const CLIENTS = Object.freeze({
  mcpgate: Object.freeze({ clientId: 'mcpgate', clientSecret: 'mcpgate-test-secret-5d1b0c7e9a2f4c6b8e0d1a3f5c7e9b2d' }),
  testPublic: Object.freeze({ clientId: 'test-public', clientSecret: undefined }),
  svc: Object.freeze({ clientId: 'svc', clientSecret: 'svc-test-secret-8c2e4a6f0b1d3e5a7c9f2b4d6e8a0c1f' }),
  shortLived: Object.freeze({ clientId: 'short-lived', clientSecret: 'short-lived-test-secret-3f6a9c2e5b8d1f4a7c0e3b6d9f2a5c8e' }),
});

/** Loopback redirect URI registered for the static clients (any port is accepted for native clients). */
export const LOOPBACK_REDIRECT = 'http://127.0.0.1/callback';

function staticClients({ tokenExchange = false } = {}) {
  const native = {
    application_type: 'native',
    response_types: ['code'],
    redirect_uris: [LOOPBACK_REDIRECT],
  };
  return [
    {
      ...native,
      client_id: CLIENTS.mcpgate.clientId,
      client_secret: CLIENTS.mcpgate.clientSecret,
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['authorization_code', 'refresh_token', 'client_credentials', ...(tokenExchange ? [TOKEN_EXCHANGE_GRANT] : [])],
    },
    {
      ...native,
      client_id: CLIENTS.testPublic.clientId,
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
    },
    {
      client_id: CLIENTS.svc.clientId,
      client_secret: CLIENTS.svc.clientSecret,
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
    },
    {
      ...native,
      client_id: CLIENTS.shortLived.clientId,
      client_secret: CLIENTS.shortLived.clientSecret,
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
    },
  ];
}

/** A fresh RS256 signing key as a private JWK (kid "k-<hex>", use sig, alg RS256). */
export function generateSigningJwk() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: `k-${crypto.randomBytes(6).toString('hex')}`, use: 'sig', alg: 'RS256' };
}

/** Public part of a private RSA/EC/OKP JWK. */
export function publicJwk(jwk) {
  const { d, p, q, dp, dq, qi, oth, k, ...pub } = jwk; // eslint-disable-line no-unused-vars
  return pub;
}

// Every spawned child is SIGKILLed when this process exits; the children also
// exit on their own when the IPC channel to us closes.
const live = new Set();
process.on('exit', () => {
  for (const c of live) {
    try {
      c.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }
});

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

function spawnChild(config, name) {
  const proc = spawn(process.execPath, ['--import', LOOPBACK_PRELOAD, MAIN], {
    env: {
      ...process.env,
      MCPGATE_TEST_PARENT_WATCHDOG: '1',
      MCPGATE_OIDC_FIXTURE_CONFIG: JSON.stringify(config),
    },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  live.add(proc);
  const chunks = [];
  let captured = 0;
  const capture = (c) => {
    if (captured > 8 * 1024 * 1024) return;
    captured += c.length;
    chunks.push(c);
  };
  proc.stdout.on('data', capture);
  proc.stderr.on('data', capture);
  if (process.env.MCPGATE_TEST_VERBOSE) {
    const tee = (c) => process.stderr.write(`[${name}:${proc.pid}] ${c}`);
    proc.stdout.on('data', tee);
    proc.stderr.on('data', tee);
  }
  let exitInfo = null;
  const exited = new Promise((resolve) => {
    proc.on('exit', (code, signal) => {
      exitInfo = { code, signal };
      live.delete(proc);
      resolve(exitInfo);
    });
    proc.on('error', (error) => {
      exitInfo = { code: null, signal: null, error };
      live.delete(proc);
      resolve(exitInfo);
    });
  });
  // The IPC channel must not keep the test process alive.
  proc.channel?.unref?.();
  const ready = new Promise((resolve, reject) => {
    let buf = '';
    const onData = (c) => {
      buf += c.toString('utf8');
      const m = /^OIDC_PROVIDER_READY (\{.*\})$/m.exec(buf);
      if (m) {
        proc.stdout.off('data', onData);
        resolve(JSON.parse(m[1]));
      } else if (buf.length > 1024 * 1024) {
        buf = buf.slice(-4096);
      }
    };
    proc.stdout.on('data', onData);
    exited.then((info) => reject(new Error(`${name} exited before ready: ${JSON.stringify(info)}\n${Buffer.concat(chunks).toString('utf8')}`)));
  });
  ready.catch(() => {});
  return {
    proc,
    exited,
    ready,
    output: () => Buffer.concat(chunks).toString('utf8'),
    alive: () => exitInfo === null,
    get exitInfo() {
      return exitInfo;
    },
  };
}

/**
 * Start the real oidc-provider on 127.0.0.1.
 *
 * @param {object}  [opts]
 * @param {number}  [opts.port=0]             fixed port (0 = pick a free one; the child binds it itself, no race)
 * @param {object}  [opts.jwks]               initial signing keys {keys: [private JWKs]} (default: one fresh RS256 key)
 * @param {number}  [opts.accessTokenTtl=3600] access token / client credentials TTL (s)
 * @param {number}  [opts.shortLivedTtl=1]    TTL (s) of tokens issued to the `short-lived` client
 * @param {object}  [opts.clientTtls]         extra {clientId: ttlSeconds}
 * @param {'jwt'|'opaque'} [opts.accessTokenFormat='jwt'] format of resource-indicated access tokens
 * @param {object}  [opts.resourceServers]    {<resource url>: {scope?, accessTokenFormat?, accessTokenTTL?, audience?}}
 * @param {string[]} [opts.extraScopes]       additional resource scopes (added to scopes_supported too)
 * @param {string[]} [opts.introspectors=['mcpgate']] clients allowed to introspect
 * @param {object[]} [opts.clients]           extra static client metadata (oidc-provider snake_case)
 * @param {string}  [opts.defaultUser='alice'] user logged in when no login_hint is sent
 * @param {object}  [opts.users]              {name: {extra claims}}
 * @param {boolean} [opts.pkceForAll=false]   require PKCE for confidential clients too
 * @param {boolean} [opts.useGrantedResource=false] token requests without `resource` reuse the granted one (JWT), instead of an opaque userinfo token
 * @param {boolean} [opts.rotateRefreshTokens=false] every refresh_token grant rotates the refresh token
 * @param {boolean} [opts.refreshTokenReuseRevokesGrant=true] reuse of a rotated refresh token also revokes its grant (oidc-provider default)
 * @param {boolean|object} [opts.tokenExchange=false] enable the RFC 8693 token exchange grant
 *                                            ({ttl?, invalidSubjectError?: 'invalid_request'|'invalid_grant'})
 * @param {number}  [opts.startTimeoutMs=15000]
 */
export async function startOidcProvider(opts = {}) {
  const startTimeoutMs = (opts.startTimeoutMs ?? 15000) * TIME_SCALE;
  let jwks = opts.jwks ? structuredClone(opts.jwks) : { keys: [generateSigningJwk()] };
  const config = {
    port: opts.port ?? 0,
    jwks,
    cookieKeys: [crypto.randomBytes(24).toString('base64url')],
    oidcScopes: [...OIDC_SCOPES],
    resourceScopes: [...RESOURCE_SCOPES, ...(opts.extraScopes || [])],
    accessTokenTtl: opts.accessTokenTtl ?? 3600,
    clientTtls: { [CLIENTS.shortLived.clientId]: opts.shortLivedTtl ?? 1, ...(opts.clientTtls || {}) },
    accessTokenFormat: opts.accessTokenFormat ?? 'jwt',
    resourceServers: opts.resourceServers || {},
    introspectors: opts.introspectors || [CLIENTS.mcpgate.clientId],
    clients: [...staticClients({ tokenExchange: !!opts.tokenExchange }), ...(opts.clients || [])],
    defaultUser: opts.defaultUser ?? DEFAULT_USER,
    users: opts.users || {},
    pkceForAll: !!opts.pkceForAll,
    useGrantedResource: !!opts.useGrantedResource,
    rotateRefreshTokens: !!opts.rotateRefreshTokens,
    refreshTokenReuseRevokesGrant: opts.refreshTokenReuseRevokesGrant ?? true,
    tokenExchange: opts.tokenExchange ? (typeof opts.tokenExchange === 'object' ? opts.tokenExchange : true) : false,
  };

  let child = null;
  let port = null;
  let issuer = null;
  let seq = 0;
  let suspended = false;
  // Token endpoint accounting, fed by the child's {type: 'grant'} events; kept
  // here so it survives restart(). See stats().
  let grantLog = [];

  async function launch() {
    const c = spawnChild({ ...config, port: port ?? config.port, jwks }, 'oidc-provider');
    child = c;
    c.proc.on('message', (m) => {
      if (m && m.type === 'grant' && m.id === undefined) grantLog.push(m);
    });
    let info;
    try {
      info = await withTimeout(c.ready, startTimeoutMs, 'oidc-provider readiness');
    } catch (e) {
      try {
        c.proc.kill('SIGKILL');
      } catch {
        /* gone */
      }
      throw e;
    }
    port = info.port;
    issuer = info.issuer;
    return info;
  }

  function request(msg, timeoutMs = 10000) {
    if (!child?.alive()) return Promise.reject(new Error('oidc-provider child is not running'));
    const id = ++seq;
    const { proc } = child;
    return withTimeout(
      new Promise((resolve, reject) => {
        const onMessage = (m) => {
          if (!m || m.id !== id) return;
          proc.off('message', onMessage);
          if (m.type === 'error') reject(new Error(m.message));
          else resolve(m);
        };
        proc.on('message', onMessage);
        proc.send({ ...msg, id });
      }),
      timeoutMs * TIME_SCALE,
      `oidc-provider ${msg.type}`,
    );
  }

  async function stop({ signal = 'SIGKILL', timeoutMs = 5000 } = {}) {
    const c = child;
    if (!c || !c.alive()) return c?.exitInfo ?? null;
    if (suspended) {
      try {
        c.proc.kill('SIGCONT');
      } catch {
        /* gone */
      }
      suspended = false;
    }
    try {
      c.proc.kill(signal);
    } catch {
      /* gone */
    }
    try {
      return await withTimeout(c.exited, timeoutMs, 'oidc-provider exit');
    } catch {
      c.proc.kill('SIGKILL');
      return c.exited;
    }
  }

  await launch();

  const handle = {
    get issuer() {
      return issuer;
    },
    get port() {
      return port;
    },
    get origin() {
      return issuer;
    },
    get jwksUri() {
      return `${issuer}/jwks`;
    },
    get discoveryUrl() {
      return `${issuer}/.well-known/openid-configuration`;
    },
    /** RFC 8414 metadata URL (served by oidc-provider, same document). */
    get asMetadataUrl() {
      return `${issuer}/.well-known/oauth-authorization-server`;
    },
    get endpoints() {
      return {
        authorization: `${issuer}/auth`,
        token: `${issuer}/token`,
        introspection: `${issuer}/token/introspection`,
        revocation: `${issuer}/token/revocation`,
        userinfo: `${issuer}/me`,
        registration: `${issuer}/reg`,
        jwks: `${issuer}/jwks`,
      };
    },
    clients: CLIENTS,
    redirectUri: LOOPBACK_REDIRECT,
    scopes: [...config.oidcScopes, ...config.resourceScopes],
    resourceScopes: [...config.resourceScopes],
    defaultUser: config.defaultUser,
    get pid() {
      return child?.proc.pid;
    },
    alive: () => !!child?.alive(),
    output: () => child?.output() ?? '',
    /** Current private signing JWK (the key oidc-provider signs with). */
    signingKey: () => structuredClone(jwks.keys[0]),
    /** Current kid used for signing. */
    get currentKid() {
      return jwks.keys[0].kid;
    },
    /** Public JWKS as published at jwks_uri. */
    publicJwks: () => ({ keys: jwks.keys.map(publicJwk) }),
    /**
     * Rotate the signing key in place: a new RS256 key (or `key`) becomes the
     * signer; with keepOld (default) previous keys stay published so earlier
     * tokens still verify. All provider state survives. Returns {kid, previousKid, kids}.
     */
    async rotateKeys({ keepOld = true, key } = {}) {
      const previousKid = jwks.keys[0].kid;
      const fresh = key ? structuredClone(key) : generateSigningJwk();
      const next = { keys: keepOld ? [fresh, ...jwks.keys] : [fresh] };
      const r = await request({ type: 'rotate', jwks: next });
      jwks = next;
      return { kid: fresh.kid, previousKid, kids: r.kids };
    },
    /** Kill the provider (default SIGKILL: abrupt "IdP down"); the port then refuses connections. */
    stop,
    /** (Re)start on the SAME port with the same keys; all stateful data starts empty. */
    async restart() {
      await stop();
      await launch();
      return handle;
    },
    /** SIGSTOP the provider: connections are accepted by the kernel but never answered ("IdP hangs"). */
    suspend() {
      if (child?.alive() && !suspended) {
        child.proc.kill('SIGSTOP');
        suspended = true;
      }
    },
    /**
     * Token endpoint counters since start (or resetStats()), across restarts:
     *   {refreshGrants, refreshGrantSuccesses, refreshGrantErrors,
     *    tokenExchanges, tokenExchangeSuccesses, tokenExchangeErrors,
     *    clientCredentialsGrants, clientCredentialsGrantSuccesses, clientCredentialsGrantErrors,
     *    authorizationCodeGrants, authorizationCodeGrantSuccesses, authorizationCodeGrantErrors,
     *    byGrantType: {<grant_type>: {success, error}}, grants: [event...]}
     * "X" counts attempts (success + error) that reached the grant stage,
     * including client authentication failures. Every event
     * {grantType, clientId, ok, error?, errorDescription?, at} is sent by the
     * child before its HTTP response; with a live child, a ping round trip
     * first flushes the IPC channel, so a token response you already have is
     * always counted. Filter by client with {clientId}.
     */
    async stats({ clientId } = {}) {
      if (child?.alive() && !suspended) await request({ type: 'ping' }).catch(() => {});
      const events = grantLog.filter((e) => clientId === undefined || e.clientId === clientId);
      const byGrantType = {};
      for (const e of events) {
        const k = e.grantType ?? '(none)';
        byGrantType[k] ??= { success: 0, error: 0 };
        byGrantType[k][e.ok ? 'success' : 'error'] += 1;
      }
      const trio = (gt) => {
        const c = byGrantType[gt] || { success: 0, error: 0 };
        return [c.success + c.error, c.success, c.error];
      };
      const out = { byGrantType, grants: events.map((e) => ({ ...e })) };
      for (const [name, gt] of [
        ['refreshGrant', 'refresh_token'],
        ['tokenExchange', TOKEN_EXCHANGE_GRANT],
        ['clientCredentialsGrant', 'client_credentials'],
        ['authorizationCodeGrant', 'authorization_code'],
      ]) {
        const [all, ok, bad] = trio(gt);
        out[`${name}s`] = all;
        out[`${name}Successes`] = ok;
        out[`${name}Errors`] = bad;
      }
      return out;
    },
    /** Forget every counted token endpoint event (after flushing in-flight ones). */
    async resetStats() {
      if (child?.alive() && !suspended) await request({ type: 'ping' }).catch(() => {});
      grantLog = [];
    },
    /** SIGCONT after suspend(). */
    resume() {
      if (child?.alive() && suspended) {
        child.proc.kill('SIGCONT');
        suspended = false;
      }
    },
  };
  return handle;
}
