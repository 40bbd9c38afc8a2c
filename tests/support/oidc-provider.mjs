// A REAL OAuth 2.1 / OpenID Connect authorization server for the auth tests:
// npm `oidc-provider` (panva) running in a child process
// (tests/support/oidc-provider-main.mjs) on 127.0.0.1.
//
//   const idp = await startOidcProvider();
//   idp.issuer        // "http://127.0.0.1:<port>"
//   await idp.rotateKeys();   // new signing key, old one stays published
//   await idp.stop();         // SIGKILL: "IdP down", port refuses connections
//   await idp.restart();      // same port, same keys, EMPTY state
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

export const CLIENTS = Object.freeze({
  mcpgate: Object.freeze({ clientId: 'mcpgate', clientSecret: 'mcpgate-test-secret-5d1b0c7e9a2f4c6b8e0d1a3f5c7e9b2d' }),
  testPublic: Object.freeze({ clientId: 'test-public', clientSecret: undefined }),
  svc: Object.freeze({ clientId: 'svc', clientSecret: 'svc-test-secret-8c2e4a6f0b1d3e5a7c9f2b4d6e8a0c1f' }),
  shortLived: Object.freeze({ clientId: 'short-lived', clientSecret: 'short-lived-test-secret-3f6a9c2e5b8d1f4a7c0e3b6d9f2a5c8e' }),
});

/** Loopback redirect URI registered for the static clients (any port is accepted for native clients). */
export const LOOPBACK_REDIRECT = 'http://127.0.0.1/callback';

function staticClients() {
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
      grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
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
    clients: [...staticClients(), ...(opts.clients || [])],
    defaultUser: opts.defaultUser ?? DEFAULT_USER,
    users: opts.users || {},
    pkceForAll: !!opts.pkceForAll,
    useGrantedResource: !!opts.useGrantedResource,
  };

  let child = null;
  let port = null;
  let issuer = null;
  let seq = 0;
  let suspended = false;

  async function launch() {
    const c = spawnChild({ ...config, port: port ?? config.port, jwks }, 'oidc-provider');
    child = c;
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
