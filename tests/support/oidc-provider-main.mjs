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

import Provider, { errors } from 'oidc-provider';
// oidc-provider's own in-memory adapter. In this version every Provider instance
// gets a private store by default; creating the factory once and handing the same
// one to every Provider we build (see rotate()) keeps grants, sessions, opaque
// tokens and dynamically registered clients across key rotations. (Deep import:
// the package has no "exports" map and the version is pinned exactly.)
import { createMemoryAdapter } from 'oidc-provider/lib/adapters/memory_adapter.js';

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

function makeProvider(jwks) {
  const p = new Provider(issuer, buildConfiguration(jwks));
  p.on('server_error', (_ctx, err) => log('server_error', err?.stack || err));
  return p;
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
