// Child-process entry for the real `oidc-provider` test authorization server
// (see tests/support/oidc-provider.mjs, which spawns this file).
//
//   node --import tests/support/loopback.mjs tests/support/oidc-provider-main.mjs
//
// Configuration comes as JSON in $MCPGATE_OIDC_FIXTURE_CONFIG (the parent
// builds it: port, signing keys, clients, TTLs, ...). Without it the script
// still runs standalone on a free port with a freshly generated RSA key, which
// is handy for poking at it by hand.
//
// Readiness is reported on stdout as ONE line:
//   OIDC_PROVIDER_READY {"issuer":"http://127.0.0.1:<port>","port":<port>,"kids":[...]}
// When spawned with an IPC channel the parent can send:
//   {id, type: 'rotate', jwks: {keys: [...private JWKs...]}}  -> {id, type: 'rotated', kids}
//   {id, type: 'ping'}                                         -> {id, type: 'pong'}
// and the child pushes one unsolicited message (no id) per token endpoint
// request that reached the grant stage (success or error), BEFORE the HTTP
// response is written:
//   {type: 'grant', grantType, clientId, ok, error?, errorDescription?, at}
// The parent keeps the counters (they survive restart()); a ping round trip
// flushes every event sent before it (one ordered IPC channel).
// A key rotation builds a fresh Provider with the new keystore and swaps the
// request handler; all Provider instances share one in-memory adapter store,
// so grants, sessions, opaque tokens and dynamically registered clients
// survive the rotation, and the port never closes.
//
// Binds 127.0.0.1 only. The process exits when its IPC channel to the parent
// closes (the parent died) and, through loopback.mjs's watchdog, when the
// parent pid goes away.
import crypto from 'node:crypto';
import http from 'node:http';

import * as jose from 'jose';
import Provider, { errors } from 'oidc-provider';
// oidc-provider's own in-memory adapter. In this version every Provider instance
// gets a private store by default; creating the factory once and handing the same
// one to every Provider we build (see rotate()) keeps grants, sessions, opaque
// tokens and dynamically registered clients across key rotations. (Deep import:
// the package has no "exports" map and the version is pinned exactly.)
import { createMemoryAdapter } from 'oidc-provider/lib/adapters/memory_adapter.js';
// Provider internals (grant type handlers) -- only used to wrap the
// refresh_token handler when cfg.refreshTokenReuseRevokesGrant is false.
import instance from 'oidc-provider/lib/helpers/weak_cache.js';

const HOST = '127.0.0.1';

function log(...args) {
  process.stderr.write(`[oidc-provider-main] ${args.join(' ')}\n`);
}

function generateSigningJwk() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: `k-${crypto.randomBytes(6).toString('hex')}`, use: 'sig', alg: 'RS256' };
}

function argvPort() {
  const i = process.argv.indexOf('--port');
  return i > 0 ? Number(process.argv[i + 1]) : 0;
}

const RESOURCE_SCOPES_DEFAULT = ['read:notes', 'write:notes', 'admin'];

function loadConfig() {
  const raw = process.env.MCPGATE_OIDC_FIXTURE_CONFIG;
  const cfg = raw ? JSON.parse(raw) : {};
  cfg.port ??= argvPort();
  cfg.jwks ??= { keys: [generateSigningJwk()] };
  cfg.cookieKeys ??= [crypto.randomBytes(24).toString('base64url')];
  cfg.oidcScopes ??= ['openid', 'profile', 'email', 'offline_access'];
  cfg.resourceScopes ??= RESOURCE_SCOPES_DEFAULT;
  cfg.accessTokenTtl ??= 3600;
  cfg.clientTtls ??= {};
  cfg.accessTokenFormat ??= 'jwt';
  cfg.resourceServers ??= {};
  cfg.introspectors ??= ['mcpgate'];
  cfg.defaultUser ??= 'alice';
  cfg.users ??= {};
  cfg.clients ??= [
    {
      client_id: 'test-public',
      application_type: 'native',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: ['http://127.0.0.1/callback'],
    },
  ];
  cfg.pkceForAll ??= false;
  cfg.useGrantedResource ??= false;
  cfg.rotateRefreshTokens ??= false;
  cfg.refreshTokenReuseRevokesGrant ??= true;
  cfg.tokenExchange ??= false;
  return cfg;
}

const cfg = loadConfig();

// --------------------------------------------------------------------------
// Accounts: any login name matching USER_RE is a valid account; cfg.users can
// add/override claims per user.
// --------------------------------------------------------------------------
const USER_RE = /^[A-Za-z0-9._-]{1,64}$/;

function accountClaims(sub) {
  return {
    sub,
    name: `${sub[0].toUpperCase()}${sub.slice(1)} Test`,
    preferred_username: sub,
    email: `${sub}@example.test`,
    email_verified: true,
    ...(cfg.users[sub] || {}),
  };
}

async function findAccount(_ctx, sub) {
  if (typeof sub !== 'string' || !USER_RE.test(sub)) return undefined;
  return {
    accountId: sub,
    async claims() {
      return accountClaims(sub);
    },
  };
}

// --------------------------------------------------------------------------
// Resource servers: every absolute http(s) URL without a fragment is accepted
// as a resource indicator (tests use gateways on random ports). cfg.resourceServers
// can pin per-resource settings: {scope, accessTokenFormat, accessTokenTTL, audience}.
// --------------------------------------------------------------------------
async function getResourceServerInfo(_ctx, resourceIndicator, client) {
  const url = URL.parse(resourceIndicator);
  if (!url || !['http:', 'https:'].includes(url.protocol)) {
    throw new errors.InvalidTarget('resource indicator must be an absolute http(s) URL');
  }
  const pinned = cfg.resourceServers[resourceIndicator] || {};
  const clientTtl = client && cfg.clientTtls[client.clientId];
  const info = {
    scope: pinned.scope ?? [...cfg.oidcScopes.filter((s) => s !== 'offline_access'), ...cfg.resourceScopes].join(' '),
    accessTokenFormat: pinned.accessTokenFormat ?? cfg.accessTokenFormat,
    accessTokenTTL: clientTtl ?? pinned.accessTokenTTL ?? cfg.accessTokenTtl,
  };
  if (pinned.audience) info.audience = pinned.audience;
  if (info.accessTokenFormat === 'jwt') info.jwt = { sign: { alg: 'RS256' } };
  return info;
}

function ttlFor(_ctx, token, client) {
  const clientTtl = client && cfg.clientTtls[client.clientId];
  return clientTtl ?? token.resourceServer?.accessTokenTTL ?? cfg.accessTokenTtl;
}

const CLOCK_TOLERANCE = 15; // oidc-provider default
const sharedAdapter = createMemoryAdapter(CLOCK_TOLERANCE);

function buildConfiguration(jwks) {
  return {
    adapter: sharedAdapter,
    clients: cfg.clients,
    jwks,
    cookies: { keys: cfg.cookieKeys },
    findAccount,
    // Authorization code only (OAuth 2.1 style): no implicit / hybrid.
    responseTypes: ['code'],
    scopes: [...new Set([...cfg.oidcScopes, ...cfg.resourceScopes])],
    claims: {
      openid: ['sub'],
      profile: ['name', 'preferred_username'],
      email: ['email', 'email_verified'],
    },
    pkce: {
      required: (_ctx, client) => cfg.pkceForAll || client.clientAuthMethod === 'none',
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: {
        enabled: true,
        // Only the listed (confidential) clients may introspect; everyone
        // else gets {active: false}.
        allowedPolicy: async (_ctx, client) => cfg.introspectors.includes(client.clientId),
      },
      revocation: { enabled: true },
      userinfo: { enabled: true },
      registration: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async (_ctx, _client, oneOf) => oneOf ?? undefined,
        useGrantedResource: async () => cfg.useGrantedResource,
        getResourceServerInfo,
      },
    },
    // false (default): oidc-provider's default policy (rotate only for public
    // clients / after 70% of the refresh token's lifetime); true: EVERY
    // refresh_token grant consumes the presented token and issues a new one.
    rotateRefreshToken: cfg.rotateRefreshTokens ? true : undefined,
    ttl: {
      AccessToken: ttlFor,
      ClientCredentials: ttlFor,
      AuthorizationCode: 60,
      IdToken: 3600,
      Interaction: 600,
      Session: 3600,
      Grant: 3600,
      RefreshToken: 24 * 3600,
    },
    interactions: {
      url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
    },
    // Keep error pages plain (and free of remote font @imports).
    renderError: async (ctx, out) => {
      ctx.type = 'json';
      ctx.body = out;
    },
  };
}

let issuer;
let provider;
let handler;
let currentJwks = cfg.jwks;

function makeProvider(jwks) {
  const conf = buildConfiguration(jwks);
  if (conf.rotateRefreshToken === undefined) delete conf.rotateRefreshToken;
  const p = new Provider(issuer, conf);
  p.on('server_error', (ctx, err) => {
    log('server_error', err?.stack || err);
    if (ctx?.oidc?.route === 'token') reportGrant(ctx, false, err);
  });
  p.on('grant.success', (ctx) => reportGrant(ctx, true));
  p.on('grant.error', (ctx, err) => reportGrant(ctx, false, err));
  if (cfg.tokenExchange) {
    p.registerGrantType(TOKEN_EXCHANGE, tokenExchangeHandler, TOKEN_EXCHANGE_PARAMS, ['audience', 'resource']);
  }
  if (!cfg.refreshTokenReuseRevokesGrant) {
    // oidc-provider answers a reused (consumed) refresh token with
    // invalid_grant AND revokes the whole grant (every token of it, including
    // the rotated successor). Here the reuse is only refused.
    const handlers = instance(p).grantTypeHandlers;
    const original = handlers.get('refresh_token');
    handlers.set('refresh_token', async (ctx) => {
      const value = ctx.oidc.params.refresh_token;
      if (typeof value === 'string' && value) {
        const rt = await p.RefreshToken.find(value, { ignoreExpiration: true });
        if (rt?.consumed && rt.clientId === ctx.oidc.client.clientId) {
          throw new errors.InvalidGrant('refresh token already used');
        }
      }
      return original(ctx);
    });
  }
  return p;
}

// --------------------------------------------------------------------------
// Grant accounting: one IPC event per token endpoint request that got as far
// as the grant stage (client authentication failures included: they happen
// after the parameters are parsed). Sent synchronously, before the response.
// --------------------------------------------------------------------------
function reportGrant(ctx, ok, err) {
  if (!process.send || !process.connected) return;
  const params = ctx?.oidc?.params || {};
  const msg = {
    type: 'grant',
    grantType: typeof params.grant_type === 'string' ? params.grant_type : null,
    clientId: ctx?.oidc?.client?.clientId ?? (typeof params.client_id === 'string' ? params.client_id : null),
    ok,
    at: Date.now(),
  };
  if (!ok) {
    msg.error = err?.error || err?.name || 'error';
    msg.errorDescription = err?.error_detail || err?.error_description || err?.message;
  }
  try {
    process.send(msg);
  } catch {
    /* parent gone */
  }
}

// --------------------------------------------------------------------------
// RFC 8693 token exchange (cfg.tokenExchange). The subject token must be a JWT
// access token (typ at+jwt, RS256) signed by one of this provider's current
// keys, with iss = this issuer and an unexpired exp. The issued token is an
// RFC 9068-shaped JWT signed with the current signing key (jose, the same
// key oidc-provider signs with, so it verifies against jwks_uri).
// --------------------------------------------------------------------------
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const TT_ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';
const TOKEN_EXCHANGE_PARAMS = [
  'subject_token',
  'subject_token_type',
  'actor_token',
  'actor_token_type',
  'audience',
  'resource',
  'scope',
  'requested_token_type',
];

function teOptions() {
  return typeof cfg.tokenExchange === 'object' && cfg.tokenExchange ? cfg.tokenExchange : {};
}

function asList(v) {
  if (v === undefined || v === null || v === '') return [];
  return Array.isArray(v) ? v : [v];
}

function invalidSubject(description) {
  // RFC 8693 2.2.2: an invalid subject_token is an invalid_request.
  // tokenExchange.invalidSubjectError = 'invalid_grant' mimics Okta/Keycloak.
  return teOptions().invalidSubjectError === 'invalid_grant'
    ? new errors.InvalidGrant(description)
    : new errors.InvalidRequest(description);
}

async function tokenExchangeHandler(ctx) {
  const { params, client } = ctx.oidc;
  const opts = teOptions();
  for (const name of ['subject_token', 'subject_token_type']) {
    if (typeof params[name] !== 'string' || params[name] === '') {
      throw new errors.InvalidRequest(`missing required parameter '${name}'`);
    }
  }
  if (params.subject_token_type !== TT_ACCESS_TOKEN) {
    throw new errors.InvalidRequest(`unsupported subject_token_type (only ${TT_ACCESS_TOKEN})`);
  }
  if (params.requested_token_type !== undefined && params.requested_token_type !== TT_ACCESS_TOKEN) {
    throw new errors.InvalidRequest(`unsupported requested_token_type (only ${TT_ACCESS_TOKEN})`);
  }
  if (params.actor_token !== undefined) {
    throw new errors.InvalidRequest('actor_token is not supported by this authorization server');
  }
  const resources = asList(params.resource);
  for (const r of resources) {
    const u = URL.parse(r);
    if (!u || !['http:', 'https:'].includes(u.protocol) || u.hash) {
      throw new errors.InvalidTarget('resource must be an absolute http(s) URI without a fragment');
    }
  }
  const audiences = [...new Set([...asList(params.audience), ...resources])];
  if (audiences.length === 0) {
    throw new errors.InvalidTarget('audience or resource is required');
  }

  const keys = currentJwks.keys.map(({ d, p, q, dp, dq, qi, oth, k, ...pub }) => pub); // eslint-disable-line no-unused-vars
  let subject;
  try {
    ({ payload: subject } = await jose.jwtVerify(params.subject_token, jose.createLocalJWKSet({ keys }), {
      issuer,
      algorithms: ['RS256', 'PS256', 'ES256'],
      typ: 'at+jwt',
      clockTolerance: 0,
    }));
  } catch (e) {
    throw invalidSubject(`subject_token is invalid: ${e.code || e.name}${e.message ? ` (${e.message})` : ''}`);
  }
  if (typeof subject.sub !== 'string' || !subject.sub) throw invalidSubject('subject_token has no sub');

  const scope = typeof params.scope === 'string' && params.scope !== '' ? params.scope : subject.scope;
  const ttl = opts.ttl ?? cfg.clientTtls[client.clientId] ?? cfg.accessTokenTtl;
  const now = Math.floor(Date.now() / 1000);
  const act = { sub: client.clientId };
  if (subject.act && typeof subject.act === 'object') act.act = subject.act; // RFC 8693 4.1 delegation chain
  const claims = {
    iss: issuer,
    sub: subject.sub,
    aud: audiences.length === 1 ? audiences[0] : audiences,
    iat: now,
    exp: now + ttl,
    jti: crypto.randomBytes(16).toString('base64url'),
    client_id: client.clientId,
    act,
  };
  if (scope) claims.scope = scope;
  const signer = currentJwks.keys[0];
  const key = await jose.importJWK(signer, signer.alg || 'RS256');
  const accessToken = await new jose.SignJWT(claims)
    .setProtectedHeader({ alg: signer.alg || 'RS256', typ: 'at+jwt', kid: signer.kid })
    .sign(key);

  ctx.body = {
    access_token: accessToken,
    issued_token_type: TT_ACCESS_TOKEN,
    token_type: 'Bearer',
    expires_in: ttl,
    ...(scope ? { scope } : {}),
  };
}

// --------------------------------------------------------------------------
// Auto-approving interactions: login as login_hint (or cfg.defaultUser) and
// grant every requested scope / claim / resource scope.
// login_hint "deny" finishes the interaction with access_denied instead.
// --------------------------------------------------------------------------
async function handleInteraction(req, res) {
  const p = provider;
  const details = await p.interactionDetails(req, res);
  const { prompt, params, session } = details;
  if (prompt.name === 'login') {
    const hint = typeof params.login_hint === 'string' && params.login_hint ? params.login_hint : cfg.defaultUser;
    if (hint === 'deny') {
      return p.interactionFinished(req, res, { error: 'access_denied', error_description: 'denied by test user' }, { mergeWithLastSubmission: false });
    }
    if (!USER_RE.test(hint)) {
      return p.interactionFinished(req, res, { error: 'access_denied', error_description: 'bad login_hint' }, { mergeWithLastSubmission: false });
    }
    return p.interactionFinished(req, res, { login: { accountId: hint, amr: ['pwd'] } }, { mergeWithLastSubmission: false });
  }
  if (prompt.name === 'consent') {
    let { grantId } = details;
    const grant = grantId
      ? await p.Grant.find(grantId)
      : new p.Grant({ accountId: session.accountId, clientId: params.client_id });
    const d = prompt.details || {};
    if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
    if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
    if (d.missingResourceScopes) {
      for (const [indicator, scopes] of Object.entries(d.missingResourceScopes)) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
    }
    grantId = await grant.save();
    const result = details.grantId ? {} : { consent: { grantId } };
    return p.interactionFinished(req, res, result, { mergeWithLastSubmission: true });
  }
  res.statusCode = 500;
  res.setHeader('content-type', 'text/plain');
  res.end(`unsupported prompt ${prompt.name}`);
  return undefined;
}

const server = http.createServer((req, res) => {
  if (req.url.startsWith('/interaction/')) {
    handleInteraction(req, res).catch((err) => {
      log('interaction error', err?.stack || err);
      if (!res.headersSent) {
        res.statusCode = 400;
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ error: err?.error || 'interaction_failed', error_description: String(err?.message || err) }));
      } else {
        res.destroy();
      }
    });
    return;
  }
  handler(req, res);
});
server.keepAliveTimeout = 2000;

function kidsOf(jwks) {
  return jwks.keys.map((k) => k.kid);
}

function rotate(jwks) {
  const next = makeProvider(jwks);
  const nextHandler = next.callback();
  provider = next;
  handler = nextHandler;
  currentJwks = jwks;
  return kidsOf(jwks);
}

async function listen(port) {
  // Bounded retry: the same port is reused by restart(); it can take a moment
  // to become free again.
  for (let attempt = 0; attempt < 50; attempt++) {
    try {
      await new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen({ port, host: HOST }, () => {
          server.off('error', reject);
          resolve();
        });
      });
      return server.address().port;
    } catch (e) {
      if (e.code !== 'EADDRINUSE' || port === 0) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`port ${port} stayed in use`);
}

const port = await listen(cfg.port);
issuer = `http://${HOST}:${port}`;
rotate(cfg.jwks);

if (process.send) {
  process.on('message', (msg) => {
    if (!msg || typeof msg !== 'object') return;
    try {
      if (msg.type === 'rotate') {
        const kids = rotate(msg.jwks);
        process.send({ id: msg.id, type: 'rotated', kids });
      } else if (msg.type === 'ping') {
        process.send({ id: msg.id, type: 'pong' });
      }
    } catch (err) {
      process.send({ id: msg.id, type: 'error', message: String(err?.stack || err) });
    }
  });
  process.on('disconnect', () => process.exit(0));
}

process.on('SIGTERM', () => {
  server.close();
  server.closeAllConnections?.();
  process.exit(0);
});

process.stdout.write(`OIDC_PROVIDER_READY ${JSON.stringify({ issuer, port, kids: kidsOf(cfg.jwks) })}\n`);
