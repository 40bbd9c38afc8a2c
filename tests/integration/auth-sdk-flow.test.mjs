// The WHOLE MCP authorization flow, driven by the REAL MCP SDK clients with no
// pre-obtained token, through the real gateway (jwt route), against the real
// OIDC provider (tests/support/oidc-provider.mjs) and the real server-everything:
//
//   POST /everything -> 401 + WWW-Authenticate: Bearer resource_metadata="..."
//   -> the SDK fetches the gateway's RFC 9728 document
//   -> the authorization server metadata (RFC 8414 / OIDC discovery)
//   -> dynamic client registration (RFC 7591)
//   -> authorization code + PKCE (S256) with resource = the route URL (RFC 8707)
//      (the browser step is done headlessly by redirectToAuthorization(): it
//      walks the provider's auto-approving redirects with a cookie jar until the
//      redirect to the client's redirect_uri, whose query carries the code)
//   -> transport.finishAuth(code) -> token request -> reconnect
//   -> tools/list and tools/call('echo') through the gateway to server-everything.
//
// Once with @modelcontextprotocol/sdk 1.32.2 and once with
// @modelcontextprotocol/client 2.4.0. Loopback only; every wait is bounded.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';

import * as jose from 'jose';
import { Client as Client1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as StreamableHTTPClientTransport1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError as UnauthorizedError1 } from '@modelcontextprotocol/sdk/client/auth.js';
import {
  Client as Client2,
  StreamableHTTPClientTransport as StreamableHTTPClientTransport2,
  UnauthorizedError as UnauthorizedError2,
} from '@modelcontextprotocol/client';

import { startOidcProvider } from '../support/oidc-provider.mjs';
import { serveFixture } from '../support/listen.mjs';
import { freePort, raceTimeout, recordingFetch, startEverything, startGateway, waitFor } from '../support/harness.mjs';

const CLIENT_INFO = { name: 'mcpgate-auth-sdk-flow', version: '1.0.0' };
const STEP_TIMEOUT_MS = 20000;
const MAX_AUTH_REDIRECTS = 20;
const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

// ---------------------------------------------------------------------------
// OBSERVER BY NECESSITY: server-everything does not report the HTTP headers it
// received, so to see what actually reached it this transparent relay sits
// between the gateway and server-everything. It records the request line and
// headers, and forwards bytes unchanged both ways (SSE responses stream
// through). Binds to 127.0.0.1 only.
// ---------------------------------------------------------------------------
function startTap(targetOrigin) {
  const target = new URL(targetOrigin);
  const seen = [];
  const server = http.createServer((req, res) => {
    if (seen.length < 1000) seen.push({ method: req.method, url: req.url, headers: { ...req.headers } });
    const up = http.request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: target.host } },
      (upRes) => {
        res.writeHead(upRes.statusCode, upRes.statusMessage, upRes.headers);
        upRes.pipe(res);
      },
    );
    up.setTimeout(60000, () => up.destroy(new Error('tap upstream timeout')));
    up.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    res.on('close', () => up.destroy());
    req.pipe(up);
  });
  return serveFixture(server, { fields: { seen } });
}

// ---------------------------------------------------------------------------
// The headless "browser": follows the authorization server's redirects by hand
// (cookie jar, loopback only, bounded) until the redirect to the client's
// redirect_uri, and returns that callback URL without requesting it.
// ---------------------------------------------------------------------------
function cookieJar() {
  const cookies = new Map();
  return {
    store(res) {
      for (const line of res.headers.getSetCookie()) {
        const [pair, ...attrs] = line.split(';');
        const eq = pair.indexOf('=');
        if (eq <= 0) continue;
        const name = pair.slice(0, eq).trim();
        const value = pair.slice(eq + 1).trim();
        const expired =
          value === '' ||
          attrs.some((a) => {
            const [k, v = ''] = a.split('=');
            const key = k.trim().toLowerCase();
            return (key === 'max-age' && Number(v) <= 0) || (key === 'expires' && Date.parse(v) <= Date.now());
          });
        if (expired) cookies.delete(name);
        else cookies.set(name, value);
      }
    },
    header: () => [...cookies].map(([k, v]) => `${k}=${v}`).join('; '),
  };
}

async function walkAuthorization(authorizationUrl, redirectUrl) {
  const start = new URL(authorizationUrl);
  const redirect = new URL(redirectUrl);
  const jar = cookieJar();
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  const hops = [];
  let url = start;
  for (let i = 0; i < MAX_AUTH_REDIRECTS && Date.now() < deadline; i++) {
    assert.ok(LOOPBACK_HOSTS.has(url.hostname), `authorization flow left loopback: ${url.href}`);
    assert.equal(url.origin, start.origin, `authorization flow left the authorization server: ${url.href}`);
    const res = await fetch(url, {
      redirect: 'manual',
      headers: { cookie: jar.header(), accept: 'text/html,application/json' },
      signal: AbortSignal.timeout(5000),
    });
    jar.store(res);
    hops.push({ url: url.href, status: res.status });
    const location = res.headers.get('location');
    if (res.status < 300 || res.status >= 400 || !location) {
      const body = await res.text().catch(() => '');
      throw new Error(`authorization step ${url.pathname} answered ${res.status} without a redirect: ${body.slice(0, 500)}`);
    }
    await res.arrayBuffer().catch(() => {});
    const next = new URL(location, url);
    if (next.origin === redirect.origin && next.pathname === redirect.pathname) return { callback: next, hops };
    url = next;
  }
  throw new Error(`authorization did not reach ${redirectUrl} within ${MAX_AUTH_REDIRECTS} redirects / ${STEP_TIMEOUT_MS} ms`);
}

/**
 * An in-memory OAuthClientProvider (the same shape for SDK 1.x and 2.x): a
 * public client (token_endpoint_auth_method none) with a loopback redirect URI
 * that nothing listens on; redirectToAuthorization() runs the headless browser
 * and keeps the callback URL.
 */
class HeadlessOAuthProvider {
  constructor(redirectUrl, clientName) {
    this._redirectUrl = redirectUrl;
    this._clientName = clientName;
    this._client = undefined;
    this._tokens = undefined;
    this._verifier = undefined;
    this._discovery = undefined;
    this.states = [];
    this.authorizationUrls = [];
    this.callbacks = [];
    this.registered = [];
    this.savedTokens = [];
  }

  get redirectUrl() {
    return this._redirectUrl;
  }

  get clientMetadata() {
    return {
      client_name: this._clientName,
      redirect_uris: [this._redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }

  state() {
    const s = crypto.randomBytes(16).toString('base64url');
    this.states.push(s);
    return s;
  }

  clientInformation() {
    return this._client;
  }

  saveClientInformation(info) {
    this._client = info;
    this.registered.push(info);
  }

  tokens() {
    return this._tokens;
  }

  saveTokens(tokens) {
    this._tokens = tokens;
    this.savedTokens.push(tokens);
  }

  saveCodeVerifier(v) {
    this._verifier = v;
  }

  codeVerifier() {
    if (!this._verifier) throw new Error('no PKCE code verifier saved');
    return this._verifier;
  }

  saveDiscoveryState(state) {
    this._discovery = state;
  }

  discoveryState() {
    return this._discovery;
  }

  async redirectToAuthorization(authorizationUrl) {
    const url = new URL(authorizationUrl);
    this.authorizationUrls.push(url);
    const { callback, hops } = await walkAuthorization(url, this._redirectUrl);
    this.callbacks.push({ callback, hops });
  }

  get lastCallback() {
    return this.callbacks.at(-1)?.callback;
  }
}

function parseChallenge(header) {
  assert.ok(header, 'WWW-Authenticate present');
  assert.match(header, /^Bearer /);
  const params = {};
  for (const m of header.matchAll(/(\w+)="([^"]*)"/g)) params[m[1]] = m[2];
  return params;
}

function textOf(result) {
  return (result?.content ?? [])
    .filter((c) => c.type === 'text')
    .map((c) => c.text)
    .join('\n');
}

/** Index of the first record after `from` matching `pred` (-1 when none). */
function findFrom(records, from, pred) {
  for (let i = Math.max(0, from); i < records.length; i++) if (pred(records[i])) return i;
  return -1;
}

describe('the real MCP SDK clients run the whole OAuth flow through the gateway', () => {
  let idp;
  let everything;
  let tap;
  let gw;
  let routeUrl;
  let prmUrl;

  before(async () => {
    idp = await startOidcProvider();
    everything = await startEverything('streamableHttp');
    tap = await startTap(everything.origin);
    const port = await freePort();
    routeUrl = `http://127.0.0.1:${port}/everything`;
    prmUrl = `http://127.0.0.1:${port}/.well-known/oauth-protected-resource/everything`;
    gw = await startGateway({
      port,
      routes: [
        {
          name: 'everything',
          path: '/everything',
          upstream: `${tap.origin}/mcp`,
          resource_name: 'Everything',
          forward_identity: true,
          auth: { type: 'jwt', server: 'idp', required_scopes: ['read:notes'] },
        },
      ],
      extraYaml: `authorization_servers:\n  idp:\n    issuer: ${JSON.stringify(idp.issuer)}\n    type: "oidc"\n    discovery: "eager"\n`,
    });
  });

  after(async () => {
    try {
      await gw?.stopCleanly();
    } finally {
      await Promise.all([idp?.stop(), everything?.stop(), tap?.close()]);
    }
  });

  /**
   * What every flow must show, from the recorded HTTP exchanges of the SDK and
   * the provider's state: the discovery chain, DCR, the authorization request,
   * and the token.
   */
  function assertAuthorizationLeg({ records, provider }) {
    // 1. The first request to the gateway was refused with a challenge that
    //    points at the gateway's RFC 9728 document for this route.
    const first = records.findIndex((r) => r.url.startsWith(routeUrl));
    assert.ok(first >= 0, 'the SDK contacted the route');
    assert.equal(records[first].status, 401, `first MCP request: ${records[first].method} ${records[first].url}`);
    assert.equal(records[first].requestHeaders.authorization, undefined, 'no token on the first request');
    const challenge = parseChallenge(records[first].responseHeaders['www-authenticate']);
    assert.equal(challenge.resource_metadata, prmUrl);
    assert.equal(challenge.scope, 'read:notes');

    // 2. The SDK fetched that document from the gateway...
    const prm = findFrom(records, first, (r) => r.method === 'GET' && r.url === prmUrl);
    assert.ok(prm > first, `the SDK fetched ${prmUrl}; saw ${records.map((r) => `${r.method} ${r.url} ${r.status}`).join(' | ')}`);
    assert.equal(records[prm].status, 200);
    // What the SDK took from it: this route as the resource, the provider as its authorization server.
    const discovered = provider.discoveryState();
    assert.ok(discovered, 'the SDK saved its discovery state');
    assert.equal(discovered.resourceMetadata?.resource, routeUrl);
    assert.deepEqual(discovered.resourceMetadata?.authorization_servers, [idp.issuer]);
    assert.equal(new URL(discovered.authorizationServerUrl).href, new URL(idp.issuer).href);
    assert.equal(discovered.authorizationServerMetadata?.issuer, idp.issuer);
    // 3. ...then the authorization server's metadata at the advertised issuer...
    const asMeta = findFrom(
      records,
      prm,
      (r) => r.method === 'GET' && r.url.startsWith(`${idp.issuer}/.well-known/`) && r.status === 200,
    );
    assert.ok(asMeta > prm, 'the SDK fetched the authorization server metadata from the issuer named by the gateway');
    // 4. ...registered itself dynamically...
    const reg = findFrom(records, asMeta, (r) => r.method === 'POST' && r.url === idp.endpoints.registration);
    assert.ok(reg > asMeta, 'dynamic client registration happened');
    assert.equal(records[reg].status, 201);
    assert.equal(provider.registered.length, 1);
    const clientId = provider.registered[0].client_id;
    assert.ok(clientId, 'the provider issued a client_id');

    // 5. ...and sent the user to the authorization endpoint with PKCE and
    //    resource = the route URL.
    assert.equal(provider.authorizationUrls.length, 1);
    const authz = provider.authorizationUrls[0];
    assert.equal(`${authz.origin}${authz.pathname}`, idp.endpoints.authorization);
    const q = authz.searchParams;
    assert.equal(q.get('response_type'), 'code');
    assert.equal(q.get('client_id'), clientId);
    assert.equal(q.get('redirect_uri'), provider.redirectUrl);
    assert.equal(q.get('code_challenge_method'), 'S256');
    assert.match(q.get('code_challenge') ?? '', /^[A-Za-z0-9_-]{43}$/);
    assert.deepEqual(q.getAll('resource'), [routeUrl]);
    assert.ok((q.get('scope') ?? '').split(' ').includes('read:notes'), `scope requested: ${q.get('scope')}`);
    assert.equal(q.get('state'), provider.states.at(-1));

    // 6. The (headless) user agent came back to the redirect URI with a code.
    const cb = provider.lastCallback;
    assert.ok(cb, 'the authorization ended at the redirect URI');
    assert.equal(cb.searchParams.get('error'), null, `authorization error: ${cb.searchParams.get('error_description')}`);
    assert.ok(cb.searchParams.get('code'));
    assert.equal(cb.searchParams.get('state'), q.get('state'));
    return { first, clientId };
  }

  function assertTokenLeg({ records, provider, clientId, from }) {
    const tok = findFrom(records, from, (r) => r.method === 'POST' && r.url === idp.endpoints.token);
    assert.ok(tok >= 0, 'the SDK redeemed the code at the token endpoint');
    assert.equal(records[tok].status, 200);
    const accessToken = provider.tokens()?.access_token;
    assert.ok(accessToken, 'the SDK saved an access token');
    const claims = jose.decodeJwt(accessToken);
    assert.equal(jose.decodeProtectedHeader(accessToken).typ, 'at+jwt');
    assert.equal(claims.aud, routeUrl, 'the token is for the route (RFC 8707 resource)');
    assert.equal(claims.iss, idp.issuer);
    assert.equal(claims.client_id, clientId);
    assert.equal(claims.sub, 'alice');
    assert.ok(claims.scope.split(' ').includes('read:notes'), `token scope: ${claims.scope}`);
    return { tok, accessToken };
  }

  /** After the flow: every MCP request carried the token and got through; the upstream never saw it. */
  async function assertPassThrough({ records, accessToken, tapBefore, from }) {
    const mcp = records.slice(from).filter((r) => r.url.startsWith(routeUrl));
    const posts = mcp.filter((r) => r.method === 'POST');
    assert.ok(posts.length >= 3, 'initialize, tools/list and tools/call went to the route');
    for (const r of mcp) {
      assert.equal(r.requestHeaders.authorization, `Bearer ${accessToken}`, `${r.method} ${r.url} carries the token`);
      // The standalone GET SSE stream may still be open (no status yet); everything answered is 2xx.
      if (r.method === 'POST' || r.status !== undefined) assert.ok(r.status >= 200 && r.status < 300, `${r.method} ${r.url} -> ${r.status}`);
    }
    const upstream = tap.seen.slice(tapBefore);
    assert.ok(upstream.length >= 3, 'the requests reached server-everything');
    for (const r of upstream) {
      assert.equal(r.headers.authorization, undefined, 'server-everything never sees an Authorization header');
      assert.equal(r.headers['x-mcp-subject'], 'alice');
      assert.ok(!JSON.stringify(r).includes(accessToken), 'the token never reaches the upstream');
    }
    await waitFor(
      () => gw.accessLogs().some((l) => l.route === 'everything' && l.subject === 'alice' && l.tool === 'echo'),
      { timeoutMs: 5000, what: 'an access-log line for tools/call echo with subject alice' },
    );
    assert.ok(!gw.logs().includes(accessToken), 'the token never appears in the gateway logs');
  }

  it('SDK 1.x (@modelcontextprotocol/sdk 1.32.2): 401 -> discovery -> DCR -> code+PKCE -> token -> tools', { timeout: 90000 }, async () => {
    const redirectUrl = `http://127.0.0.1:${await freePort()}/callback`;
    const provider = new HeadlessOAuthProvider(redirectUrl, 'sdk1 headless');
    const rec = recordingFetch(fetch);
    const tapBefore = tap.seen.length;

    // Leg 1: connect without a token -> the SDK runs discovery, DCR and the
    // authorization request, then reports that the user must authorize.
    const client = new Client1(CLIENT_INFO, { capabilities: {} });
    const transport = new StreamableHTTPClientTransport1(new URL(routeUrl), { authProvider: provider, fetch: rec });
    const err = await raceTimeout(
      client.connect(transport).then(
        () => null,
        (e) => e,
      ),
      STEP_TIMEOUT_MS,
      'timeout',
    );
    assert.notEqual(err, 'timeout', 'connect settled');
    assert.ok(err instanceof UnauthorizedError1, `connect should fail with UnauthorizedError until the user authorizes; got ${err?.stack ?? err}`);
    assert.equal(tap.seen.length, tapBefore, 'nothing reached the upstream before authorization');
    const { clientId } = assertAuthorizationLeg({ records: rec.records, provider });

    // Leg 2: the redirect came back: exchange the code.
    const beforeFinish = rec.records.length;
    await raceTimeout(transport.finishAuth(provider.lastCallback.searchParams.get('code')), STEP_TIMEOUT_MS, 'timeout').then((r) =>
      assert.notEqual(r, 'timeout', 'finishAuth settled'),
    );
    const { accessToken } = assertTokenLeg({ records: rec.records, provider, clientId, from: beforeFinish });
    await client.close().catch(() => {});

    // Leg 3: reconnect with the token and use the server.
    const afterToken = rec.records.length;
    const client2 = new Client1(CLIENT_INFO, { capabilities: {} });
    const transport2 = new StreamableHTTPClientTransport1(new URL(routeUrl), { authProvider: provider, fetch: rec });
    try {
      await client2.connect(transport2, { timeout: STEP_TIMEOUT_MS });
      assert.equal(client2.getServerVersion()?.name, 'mcp-servers/everything');
      const { tools } = await client2.listTools(undefined, { timeout: STEP_TIMEOUT_MS });
      assert.ok(tools.some((t) => t.name === 'echo'), `tools: ${tools.map((t) => t.name).join(',')}`);
      const result = await client2.callTool({ name: 'echo', arguments: { message: 'sdk1 via oauth' } }, undefined, { timeout: STEP_TIMEOUT_MS });
      assert.equal(textOf(result), 'Echo: sdk1 via oauth');
      await assertPassThrough({ records: rec.records, accessToken, tapBefore, from: afterToken });
      assert.equal(provider.authorizationUrls.length, 1, 'the user was asked to authorize once');
      assert.equal(provider.registered.length, 1, 'the client registered once');
    } finally {
      await client2.close().catch(() => {});
    }
  });

  it('SDK 2.x (@modelcontextprotocol/client 2.4.0): 401 -> discovery -> DCR -> code+PKCE -> token -> tools', { timeout: 90000 }, async () => {
    const redirectUrl = `http://127.0.0.1:${await freePort()}/callback`;
    const provider = new HeadlessOAuthProvider(redirectUrl, 'sdk2 headless');
    const rec = recordingFetch(fetch);
    const tapBefore = tap.seen.length;

    const client = new Client2(CLIENT_INFO, { capabilities: {} });
    const transport = new StreamableHTTPClientTransport2(new URL(routeUrl), { authProvider: provider, fetch: rec });
    const err = await raceTimeout(
      client.connect(transport).then(
        () => null,
        (e) => e,
      ),
      STEP_TIMEOUT_MS,
      'timeout',
    );
    assert.notEqual(err, 'timeout', 'connect settled');
    assert.ok(err instanceof UnauthorizedError2, `connect should fail with UnauthorizedError until the user authorizes; got ${err?.stack ?? err}`);
    assert.equal(tap.seen.length, tapBefore, 'nothing reached the upstream before authorization');
    const { clientId } = assertAuthorizationLeg({ records: rec.records, provider });
    // RFC 9207: the provider names itself in the authorization response; the 2.x SDK checks it.
    assert.equal(provider.lastCallback.searchParams.get('iss'), idp.issuer);

    const beforeFinish = rec.records.length;
    await raceTimeout(transport.finishAuth(provider.lastCallback.searchParams), STEP_TIMEOUT_MS, 'timeout').then((r) =>
      assert.notEqual(r, 'timeout', 'finishAuth settled'),
    );
    const { accessToken } = assertTokenLeg({ records: rec.records, provider, clientId, from: beforeFinish });
    await client.close().catch(() => {});

    const afterToken = rec.records.length;
    const client2 = new Client2(CLIENT_INFO, { capabilities: {} });
    const transport2 = new StreamableHTTPClientTransport2(new URL(routeUrl), { authProvider: provider, fetch: rec });
    try {
      await client2.connect(transport2, { timeout: STEP_TIMEOUT_MS });
      const { tools } = await client2.listTools(undefined, { timeout: STEP_TIMEOUT_MS });
      assert.ok(tools.some((t) => t.name === 'echo'), `tools: ${tools.map((t) => t.name).join(',')}`);
      const result = await client2.callTool({ name: 'echo', arguments: { message: 'sdk2 via oauth' } }, { timeout: STEP_TIMEOUT_MS });
      assert.equal(textOf(result), 'Echo: sdk2 via oauth');
      await assertPassThrough({ records: rec.records, accessToken, tapBefore, from: afterToken });
      assert.equal(provider.authorizationUrls.length, 1, 'the user was asked to authorize once');
      assert.equal(provider.registered.length, 1, 'the client registered once');
    } finally {
      await client2.close().catch(() => {});
    }
  });
});
