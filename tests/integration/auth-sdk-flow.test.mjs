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
import { followAuthorizationRedirects, parseBearerChallenge } from '../support/oauth-client.mjs';
import { serveFixture } from '../support/listen.mjs';
import { freePort, raceTimeout, recordingFetch, startEverything, startGateway, waitFor } from '../support/harness.mjs';

const CLIENT_INFO = { name: 'mcpgate-auth-sdk-flow', version: '1.0.0' };
const STEP_TIMEOUT_MS = 20000;

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

/**
 * An in-memory OAuthClientProvider (the same shape for SDK 1.x and 2.x): a
 * public client (token_endpoint_auth_method none) with a loopback redirect URI
 * that nothing listens on; redirectToAuthorization() runs the headless browser
 * (followAuthorizationRedirects: the provider's auto-approving redirects, with
 * a cookie jar, loopback and the issuer's origin only, bounded) and keeps the
 * callback URL, whose query carries the code.
 */
class HeadlessOAuthProvider {
  constructor({ issuer, redirectUrl, clientName }) {
    this._issuer = issuer;
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
    const { callback, hops } = await followAuthorizationRedirects(url, {
      issuer: this._issuer,
      redirectUri: this._redirectUrl,
      timeoutMs: STEP_TIMEOUT_MS / 4, // per request; the whole walk within STEP_TIMEOUT_MS
    });
    this.callbacks.push({ callback, hops });
  }

  get lastCallback() {
    return this.callbacks.at(-1)?.callback;
  }
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

/** What differs between the two SDK generations for this flow. */
const SDKS = [
  {
    label: 'SDK 1.x (@modelcontextprotocol/sdk 1.32.2)',
    tag: 'sdk1',
    Client: Client1,
    Transport: StreamableHTTPClientTransport1,
    UnauthorizedError: UnauthorizedError1,
    checksIss: false,
    // 1.x: finishAuth(authorizationCode); callTool(params, resultSchema, options).
    finishAuth: (transport, callback) => transport.finishAuth(callback.searchParams.get('code')),
    callTool: (client, params, options) => client.callTool(params, undefined, options),
  },
  {
    label: 'SDK 2.x (@modelcontextprotocol/client 2.4.0)',
    tag: 'sdk2',
    Client: Client2,
    Transport: StreamableHTTPClientTransport2,
    UnauthorizedError: UnauthorizedError2,
    checksIss: true,
    // 2.x: finishAuth(the callback's query: code, state, iss); callTool(params, options).
    finishAuth: (transport, callback) => transport.finishAuth(callback.searchParams),
    callTool: (client, params, options) => client.callTool(params, options),
  },
];

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
    const challenge = parseBearerChallenge(records[first].responseHeaders['www-authenticate']);
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

  /**
   * One SDK's whole flow, in three legs: connect without a token
   * (-> UnauthorizedError, after discovery, DCR and the authorization request),
   * finishAuth with the callback (-> token), reconnect and use the tools.
   */
  async function runOAuthFlow(sdk) {
    const redirectUrl = `http://127.0.0.1:${await freePort()}/callback`;
    const provider = new HeadlessOAuthProvider({ issuer: idp.issuer, redirectUrl, clientName: `${sdk.tag} headless` });
    const rec = recordingFetch(fetch);
    const tapBefore = tap.seen.length;

    // Leg 1: connect without a token -> the SDK runs discovery, DCR and the
    // authorization request, then reports that the user must authorize.
    const client = new sdk.Client(CLIENT_INFO, { capabilities: {} });
    const transport = new sdk.Transport(new URL(routeUrl), { authProvider: provider, fetch: rec });
    const err = await raceTimeout(
      client.connect(transport).then(
        () => null,
        (e) => e,
      ),
      STEP_TIMEOUT_MS,
      'timeout',
    );
    assert.notEqual(err, 'timeout', 'connect settled');
    assert.ok(err instanceof sdk.UnauthorizedError, `connect should fail with UnauthorizedError until the user authorizes; got ${err?.stack ?? err}`);
    assert.equal(tap.seen.length, tapBefore, 'nothing reached the upstream before authorization');
    const { clientId } = assertAuthorizationLeg({ records: rec.records, provider });
    // RFC 9207: the provider names itself in the authorization response; the 2.x SDK checks it.
    if (sdk.checksIss) assert.equal(provider.lastCallback.searchParams.get('iss'), idp.issuer);

    // Leg 2: the redirect came back: exchange the code.
    const beforeFinish = rec.records.length;
    await raceTimeout(sdk.finishAuth(transport, provider.lastCallback), STEP_TIMEOUT_MS, 'timeout').then((r) =>
      assert.notEqual(r, 'timeout', 'finishAuth settled'),
    );
    const { accessToken } = assertTokenLeg({ records: rec.records, provider, clientId, from: beforeFinish });
    await client.close().catch(() => {});

    // Leg 3: reconnect with the token and use the server.
    const afterToken = rec.records.length;
    const client2 = new sdk.Client(CLIENT_INFO, { capabilities: {} });
    const transport2 = new sdk.Transport(new URL(routeUrl), { authProvider: provider, fetch: rec });
    try {
      await client2.connect(transport2, { timeout: STEP_TIMEOUT_MS });
      assert.equal(client2.getServerVersion()?.name, 'mcp-servers/everything');
      const { tools } = await client2.listTools(undefined, { timeout: STEP_TIMEOUT_MS });
      assert.ok(tools.some((t) => t.name === 'echo'), `tools: ${tools.map((t) => t.name).join(',')}`);
      const message = `${sdk.tag} via oauth`;
      const result = await sdk.callTool(client2, { name: 'echo', arguments: { message } }, { timeout: STEP_TIMEOUT_MS });
      assert.equal(textOf(result), `Echo: ${message}`);
      await assertPassThrough({ records: rec.records, accessToken, tapBefore, from: afterToken });
      assert.equal(provider.authorizationUrls.length, 1, 'the user was asked to authorize once');
      assert.equal(provider.registered.length, 1, 'the client registered once');
    } finally {
      await client2.close().catch(() => {});
    }
  }

  for (const sdk of SDKS) {
    it(`${sdk.label}: 401 -> discovery -> DCR -> code+PKCE -> token -> tools`, { timeout: 90000 }, () => runOAuthFlow(sdk));
  }
});
