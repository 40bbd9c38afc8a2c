// JWT access-token validation through the real gateway, against a real OIDC
// provider (npm oidc-provider, tests/support/oidc-provider.mjs) and real
// upstreams: the echo fixture (to see exactly what reaches the upstream) and
// server-everything driven by the real SDK 1.x client.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { Client as Client2, StreamableHTTPClientTransport as StreamableHTTPClientTransport2 } from '@modelcontextprotocol/client';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import { startOidcProvider } from '../support/oidc-provider.mjs';
import { forgeToken, getTokenViaAuthCode, parseBearerChallenge } from '../support/oauth-client.mjs';
import fs from 'node:fs';
import path from 'node:path';

import {
  GATEWAY_BIN,
  buildGatewayConfig,
  freePort,
  makeTempDir,
  mcpPost,
  sanitizerFindings,
  sleep,
  startEchoUpstream,
  startEverything,
  startGateway,
  startModernServer,
  startProcess,
  toYaml,
  waitFor,
  waitForUrl,
} from '../support/harness.mjs';

const toolsList = (id = 1) => ({ jsonrpc: '2.0', id, method: 'tools/list' });
const toolCall = (name, id = 2) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: {} } });

// OBSERVER BY NECESSITY: the provider does not report how often its JWKS is fetched, so
// the gateway is pointed (metadata_overrides.jwks_uri) at this relay, which counts and forwards.
async function startJwksRelay(target) {
  const relay = { fetches: 0, lastFetchAt: 0 };
  const server = http.createServer(async (req, res) => {
    relay.fetches++;
    relay.lastFetchAt = Date.now();
    const upstream = await fetch(target, { signal: AbortSignal.timeout(5000) });
    res.writeHead(upstream.status, { 'content-type': 'application/json' });
    res.end(await upstream.text());
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  relay.url = `http://127.0.0.1:${server.address().port}/jwks`;
  relay.close = () => new Promise((resolve) => server.close(resolve));
  return relay;
}

function authServersYaml(servers) {
  return toYaml({ authorization_servers: servers });
}

describe('JWT access tokens through the gateway', () => {
  let idp;
  let echo;
  let everything;
  let gw;
  let notesUrl;
  let everythingUrl;
  let modern;
  let modernUrl;
  let gatewayReadyAt;
  let jwksRelay;
  const tokens = {};

  before(async () => {
    idp = await startOidcProvider();
    jwksRelay = await startJwksRelay(idp.jwksUri);
    echo = await startEchoUpstream();
    everything = await startEverything('streamableHttp');
    modern = await startModernServer();
    const port = await freePort();
    modernUrl = `http://127.0.0.1:${port}/modern`;
    notesUrl = `http://127.0.0.1:${port}/notes`;
    everythingUrl = `http://127.0.0.1:${port}/everything`;
    gw = await startGateway({
      port,
      routes: [
        {
          name: 'notes',
          path: '/notes',
          upstream: `${echo.origin}/mcp`,
          resource_name: 'Notes',
          allowed_origins: ['https://app.example'],
          forward_identity: true,
          auth: { type: 'jwt', server: 'idp', required_scopes: ['read:notes'] },
          tools: { delete_note: { scopes: ['admin'] } },
          prompts: { 'admin-report': { scopes: ['admin'] } },
          resources: { 'notes://secret': { scopes: ['admin'] } },
          methods: { 'resources/read': { scopes: ['read:notes'] } },
        },
        {
          name: 'everything',
          path: '/everything',
          upstream: `${everything.origin}/mcp`,
          auth: { type: 'jwt', server: 'idp', required_scopes: ['read:notes'] },
          filter_tools_list: true,
          tools: { 'get-sum': { scopes: ['admin'] } },
        },
        {
          // 2026-07-28 upstream: answers tools/list as plain JSON (the held-whole filter path).
          name: 'modern',
          path: '/modern',
          upstream: modern.url,
          auth: { type: 'jwt', server: 'idp' },
          filter_tools_list: true,
          tools: { 'slow-progress': { scopes: ['admin'] } },
        },
      ],
      extraYaml: authServersYaml({
        idp: { issuer: idp.issuer, type: 'oidc', discovery: 'eager', metadata_overrides: { jwks_uri: jwksRelay.url } },
      }),
    });
    gatewayReadyAt = Date.now();
    tokens.reader = (await getTokenViaAuthCode({ issuer: idp.issuer, resource: notesUrl, scope: 'openid read:notes' })).access_token;
    tokens.admin = (
      await getTokenViaAuthCode({ issuer: idp.issuer, resource: notesUrl, scope: 'openid read:notes admin', user: 'bob' })
    ).access_token;
    tokens.everything = (await getTokenViaAuthCode({ issuer: idp.issuer, resource: everythingUrl, scope: 'openid read:notes' }))
      .access_token;
    tokens.modernReader = (await getTokenViaAuthCode({ issuer: idp.issuer, resource: modernUrl, scope: 'openid read:notes' }))
      .access_token;
    tokens.modernAdmin = (
      await getTokenViaAuthCode({ issuer: idp.issuer, resource: modernUrl, scope: 'openid admin', user: 'bob' })
    ).access_token;
    tokens.everythingAdmin = (
      await getTokenViaAuthCode({ issuer: idp.issuer, resource: everythingUrl, scope: 'openid read:notes admin', user: 'bob' })
    ).access_token;
  });

  after(async () => {
    try {
      await gw?.stopCleanly();
    } finally {
      await Promise.all([idp?.stop(), echo?.close(), everything?.stop(), modern?.stop(), jwksRelay?.close()]);
    }
  });

  it('no token: 401 with resource_metadata and the scopes needed, JSON-RPC shaped', async () => {
    const res = await mcpPost(notesUrl, toolsList(7));
    assert.equal(res.status, 401);
    const challenge = parseBearerChallenge(res.headers.get('www-authenticate'));
    assert.equal(challenge.resource_metadata, `${gw.url}/.well-known/oauth-protected-resource/notes`);
    assert.equal(challenge.scope, 'read:notes');
    assert.equal(challenge.error, undefined, 'no error code when no token was sent (RFC 6750 §3.1)');
    assert.equal(res.json.id, 7);
    assert.equal(res.json.error.data.status, 401);
    assert.equal(echo.requests.length, 0, 'nothing reached the upstream');
  });

  it('CORS: a preflight is answered without a token; a browser can read the 401 challenge', async () => {
    const preflight = await fetch(notesUrl, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization' },
    });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers.get('access-control-allow-origin'), 'https://app.example');
    assert.match(preflight.headers.get('access-control-allow-headers'), /Authorization/);
    const challenged = await mcpPost(notesUrl, toolsList(), { headers: { origin: 'https://app.example' } });
    assert.equal(challenged.status, 401);
    assert.equal(challenged.headers.get('access-control-allow-origin'), 'https://app.example');
    assert.match(challenged.headers.get('access-control-expose-headers'), /WWW-Authenticate/);
    const foreign = await fetch(notesUrl, { method: 'OPTIONS', headers: { origin: 'https://evil.example' } });
    assert.equal(foreign.status, 403);
    assert.equal(foreign.headers.get('access-control-allow-origin'), null);
  });

  it('serves RFC 9728 metadata for the route and the AS metadata mirror', async () => {
    const res = await fetch(`${gw.url}/.well-known/oauth-protected-resource/notes`);
    assert.equal(res.status, 200);
    const doc = await res.json();
    assert.equal(doc.resource, notesUrl);
    assert.deepEqual(doc.authorization_servers, [idp.issuer]);
    assert.deepEqual(doc.bearer_methods_supported, ['header']);
    assert.equal(doc.resource_name, 'Notes');
    assert.ok(doc.scopes_supported.includes('read:notes') && doc.scopes_supported.includes('admin'));
    const as = await fetch(`${gw.url}/.well-known/oauth-authorization-server/notes`);
    assert.equal(as.status, 200);
    const meta = await as.json();
    assert.equal(meta.issuer, idp.issuer);
    assert.ok(meta.token_endpoint && meta.jwks_uri);
    const missing = await fetch(`${gw.url}/.well-known/oauth-protected-resource/nope`);
    assert.equal(missing.status, 404);
  });

  it('a valid token passes; the upstream sees identity headers but never the token', async () => {
    const res = await mcpPost(notesUrl, toolsList(), { headers: { authorization: `Bearer ${tokens.reader}` } });
    assert.equal(res.status, 200, res.text);
    const seen = echo.requests.at(-1);
    assert.equal(seen.headers.authorization, undefined);
    assert.equal(seen.headers['x-mcp-subject'], 'alice');
    assert.match(seen.headers['x-mcp-scopes'], /read:notes/);
    assert.ok(!JSON.stringify(seen).includes(tokens.reader));
    assert.ok(!gw.logs().includes(tokens.reader), 'the token never appears in logs');
    // Log lines are written asynchronously: wait for this request's line.
    await waitFor(() => gw.accessLogs().some((line) => line.route === 'notes' && line.subject === 'alice'), {
      timeoutMs: 5000,
      what: 'an access-log line with the subject',
    });
  });

  it('client-sent identity headers are stripped', async () => {
    await mcpPost(notesUrl, toolsList(), {
      headers: { authorization: `Bearer ${tokens.reader}`, 'x-mcp-subject': 'mallory', 'x-mcp-scopes': 'admin' },
    });
    const seen = echo.requests.at(-1);
    assert.equal(seen.headers['x-mcp-subject'], 'alice');
    assert.doesNotMatch(seen.headers['x-mcp-scopes'], /admin/);
  });

  for (const kind of [
    'expired',
    'not-yet-valid',
    'wrong-issuer',
    'wrong-audience',
    'bad-signature',
    'alg-none',
    'hs256-public-pem',
    'hs256-jwk-n',
    'unknown-kid',
    'same-kid-wrong-key',
    'embedded-jwk',
  ]) {
    it(`forged token (${kind}): 401 invalid_token, nothing forwarded`, async () => {
      const before = echo.requests.length;
      const token = await forgeToken(kind, { provider: idp, audience: notesUrl, baseToken: tokens.reader });
      const res = await mcpPost(notesUrl, toolsList(3), { headers: { authorization: `Bearer ${token}` } });
      assert.equal(res.status, 401, `${kind}: ${res.text}`);
      const challenge = parseBearerChallenge(res.headers.get('www-authenticate'));
      assert.equal(challenge.error, 'invalid_token');
      assert.ok(challenge.error_description);
      assert.equal(res.json.id, 3);
      assert.equal(echo.requests.length, before);
    });
  }

  it('a token for another resource (wrong audience from the real provider) is refused', async () => {
    const res = await mcpPost(notesUrl, toolsList(), { headers: { authorization: `Bearer ${tokens.everything}` } });
    assert.equal(res.status, 401);
    assert.equal(parseBearerChallenge(res.headers.get('www-authenticate')).error, 'invalid_token');
  });

  it('missing tool scope: 403 insufficient_scope with a step-up challenge and the request id', async () => {
    const res = await mcpPost(notesUrl, toolCall('delete_note', 11), { headers: { authorization: `Bearer ${tokens.reader}` } });
    assert.equal(res.status, 403);
    const challenge = parseBearerChallenge(res.headers.get('www-authenticate'));
    assert.equal(challenge.error, 'insufficient_scope');
    assert.deepEqual(challenge.scope.split(' ').sort(), ['admin', 'read:notes']);
    assert.equal(res.json.id, 11);
    const ok = await mcpPost(notesUrl, toolCall('delete_note'), { headers: { authorization: `Bearer ${tokens.admin}` } });
    assert.equal(ok.status, 200, ok.text);
  });

  it('per-prompt and per-resource scopes', async () => {
    const auth = { authorization: `Bearer ${tokens.reader}` };
    const prompt = await mcpPost(notesUrl, { jsonrpc: '2.0', id: 21, method: 'prompts/get', params: { name: 'admin-report' } }, { headers: auth });
    assert.equal(prompt.status, 403);
    assert.equal(prompt.json.id, 21);
    const secret = await mcpPost(notesUrl, { jsonrpc: '2.0', id: 22, method: 'resources/read', params: { uri: 'notes://secret' } }, { headers: auth });
    assert.equal(secret.status, 403);
    const open = await mcpPost(notesUrl, { jsonrpc: '2.0', id: 23, method: 'resources/read', params: { uri: 'notes://public' } }, { headers: auth });
    assert.equal(open.status, 200, open.text);
  });

  it('a batch with one denied element is not forwarded', async () => {
    const before = echo.requests.length;
    const res = await mcpPost(notesUrl, [toolsList(1), toolCall('delete_note', 2)], {
      headers: { authorization: `Bearer ${tokens.reader}` },
    });
    assert.equal(res.status, 403);
    assert.equal(echo.requests.length, before);
  });

  it('duplicate JSON keys: 400 parse error', async () => {
    const res = await mcpPost(notesUrl, '{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call"}', {
      headers: { authorization: `Bearer ${tokens.admin}` },
    });
    assert.equal(res.status, 400);
    assert.equal(res.json.error.code, -32700);
  });

  it('a token in the query string or several Authorization headers: 400 invalid_request', async () => {
    const res = await mcpPost(`${notesUrl}?access_token=${tokens.reader}`, toolsList());
    assert.equal(res.status, 400);
    assert.equal(parseBearerChallenge(res.headers.get('www-authenticate')).error, 'invalid_request');
    assert.ok(!gw.logs().includes(tokens.reader), 'the query token is masked in the access log');
  });

  it('the real SDK client works with a token from the real provider', async () => {
    const client = new Client({ name: 'auth-test', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(everythingUrl), {
      requestInit: { headers: { Authorization: `Bearer ${tokens.everything}` } },
    });
    await client.connect(transport);
    try {
      const { tools } = await client.listTools();
      assert.ok(tools.some((t) => t.name === 'echo'));
      const result = await client.callTool({ name: 'echo', arguments: { message: 'through auth' } });
      assert.match(result.content[0].text, /through auth/);
    } finally {
      await client.close();
    }
  });

  it('tools/list filtering: two users with different scopes see different tool lists (SSE responses)', async () => {
    const listFor = async (token) => {
      const client = new Client({ name: 'filter-test', version: '1.0.0' });
      const transport = new StreamableHTTPClientTransport(new URL(everythingUrl), {
        requestInit: { headers: { Authorization: `Bearer ${token}` } },
      });
      await client.connect(transport);
      try {
        const listed = await client.listTools();
        let denied;
        try {
          await client.callTool({ name: 'get-sum', arguments: { a: 1, b: 2 } });
        } catch (e) {
          denied = e;
        }
        return { listed, denied };
      } finally {
        await client.close();
      }
    };
    const reader = await listFor(tokens.everything);
    const admin = await listFor(tokens.everythingAdmin);
    const readerNames = reader.listed.tools.map((t) => t.name);
    const adminNames = admin.listed.tools.map((t) => t.name);
    assert.ok(!readerNames.includes('get-sum'), 'a reader does not see get-sum');
    assert.ok(readerNames.includes('echo'));
    assert.ok(adminNames.includes('get-sum'), 'an admin sees get-sum');
    assert.equal(adminNames.length, readerNames.length + 1);
    assert.equal(reader.listed.cacheScope, 'private', 'a filtered result is marked per-user');
    assert.ok(reader.denied, 'and a reader cannot call it either');
    assert.equal(admin.denied, undefined);
  });

  it('tools/list filtering on a 2026-07-28 upstream answering JSON, with the 2.x SDK client', async () => {
    const listFor = async (token) => {
      const client = new Client2(
        { name: 'filter-test-2', version: '1.0.0' },
        { capabilities: {}, versionNegotiation: { mode: { pin: '2026-07-28' } } },
      );
      const withToken = (url, init = {}) => {
        const headers = new Headers(init.headers);
        headers.set('authorization', `Bearer ${token}`);
        return fetch(url, { ...init, headers });
      };
      const transport = new StreamableHTTPClientTransport2(new URL(modernUrl), { fetch: withToken });
      await client.connect(transport);
      try {
        assert.equal(client.getNegotiatedProtocolVersion(), '2026-07-28');
        return (await client.listTools()).tools.map((t) => t.name);
      } finally {
        await client.close().catch(() => {});
      }
    };
    const readerTools = await listFor(tokens.modernReader);
    const adminTools = await listFor(tokens.modernAdmin);
    assert.deepEqual(readerTools, ['echo']);
    assert.deepEqual(adminTools.sort(), ['echo', 'slow-progress']);
  });

  it('tools/list filtering cannot be dodged with a batch or an id the filter would not match', async () => {
    const meta = {
      'io.modelcontextprotocol/protocolVersion': '2026-07-28',
      'io.modelcontextprotocol/clientInfo': { name: 'filter-dodge', version: '1.0.0' },
      'io.modelcontextprotocol/clientCapabilities': {},
    };
    const list = (id) => ({ jsonrpc: '2.0', id, method: 'tools/list', params: { _meta: meta } });
    const headers = { authorization: `Bearer ${tokens.modernReader}`, 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/list' };
    const seen = (await modern.seen()).length;
    // Each of these would have reached the upstream and come back with slow-progress unfiltered.
    const dodges = [
      [`{"jsonrpc":"2.0","id":1.5,"method":"tools/list","params":${JSON.stringify({ _meta: meta })}}`, null],
      [JSON.stringify(list(null)), null],
      [JSON.stringify({ ...list(1), id: undefined }), null],
      [JSON.stringify([list(7)]), [7]], // a batch is answered with a batch
    ];
    for (const [body, id] of dodges) {
      const res = await mcpPost(modernUrl, body, { headers });
      assert.equal(res.status, 400, `${body}: ${res.text}`);
      const [error] = Array.isArray(id) ? res.json : [res.json];
      assert.equal(error.jsonrpc, '2.0');
      assert.equal(error.id, Array.isArray(id) ? id[0] : id);
      assert.equal(error.error.code, -32600, res.text);
      assert.doesNotMatch(res.text, /slow-progress/);
    }
    assert.equal((await modern.seen()).length, seen, 'none reached the upstream');
    // An id spelled with escapes is still the request's id: filtered, not passed through.
    const escaped = await mcpPost(modernUrl, `{"jsonrpc":"2.0","id":"\\u0061b","method":"tools/list","params":${JSON.stringify({ _meta: meta })}}`, {
      headers,
    });
    assert.equal(escaped.status, 200, escaped.text);
    assert.equal(escaped.json.id, 'ab');
    assert.deepEqual(escaped.json.result.tools.map((t) => t.name), ['echo']);
    assert.equal(escaped.json.result.cacheScope, 'private');
  });

  it('a flood of unknown kids does not become a flood of JWKS fetches', async () => {
    assert.ok(jwksRelay.fetches >= 1, 'the eager fetch went through the relay');
    const before = jwksRelay.fetches;
    const startedAt = Date.now();
    for (let i = 0; i < 25; i++) {
      const token = await forgeToken('unknown-kid', { provider: idp, audience: notesUrl, baseToken: tokens.reader });
      const res = await mcpPost(notesUrl, toolsList(), { headers: { authorization: `Bearer ${token}` } });
      assert.equal(res.status, 401);
    }
    // Forging 25 RSA keys can take longer than one window on a loaded machine: one refetch per
    // 10 s window the flood spanned.
    const windows = 1 + Math.floor((Date.now() - startedAt) / 10_000);
    assert.ok(jwksRelay.fetches - before <= windows, `at most one refetch per 10 s, saw ${jwksRelay.fetches - before} in ${windows} window(s)`);
  });

  it('key rotation at the provider: a token signed with the new key is accepted after a JWKS refetch', async () => {
    // An unknown kid triggers a refetch at most every 10 s per issuer (flood protection);
    // the last fetch (eager at start, or one from the flood) counts, so wait out that window.
    await sleep(Math.max(0, Math.max(gatewayReadyAt, jwksRelay.lastFetchAt) + 10_500 - Date.now()));
    await idp.rotateKeys({ keepOld: true });
    const rotated = (await getTokenViaAuthCode({ issuer: idp.issuer, resource: notesUrl, scope: 'openid read:notes' })).access_token;
    const before = jwksRelay.fetches;
    const res = await mcpPost(notesUrl, toolsList(), { headers: { authorization: `Bearer ${rotated}` } });
    assert.equal(res.status, 200, res.text);
    assert.equal(jwksRelay.fetches, before + 1, 'the new kid caused one refetch');
  });
});

describe('IdP down', () => {
  it('no keys can be fetched: 503 with Retry-After, never 401', async () => {
    const echo = await startEchoUpstream();
    const deadPort = await freePort(); // nothing listens here
    const port = await freePort();
    const gw = await startGateway({
      port,
      routes: [{ name: 'notes', path: '/notes', upstream: `${echo.origin}/mcp`, auth: { type: 'jwt', server: 'down' } }],
      extraYaml: authServersYaml({ down: { issuer: `http://127.0.0.1:${deadPort}`, type: 'oidc' } }),
    });
    try {
      const token = await forgeToken('valid', {
        issuer: `http://127.0.0.1:${deadPort}`,
        signingKey: (await import('../support/oidc-provider.mjs')).generateSigningJwk(),
        audience: `http://127.0.0.1:${port}/notes`,
      });
      const res = await mcpPost(`http://127.0.0.1:${port}/notes`, toolsList(5), { headers: { authorization: `Bearer ${token}` } });
      assert.equal(res.status, 503, res.text);
      assert.ok(Number(res.headers.get('retry-after')) >= 1);
      assert.equal(res.json.id, 5);
      assert.equal(echo.requests.length, 0);
    } finally {
      try {
        await gw.stopCleanly();
      } finally {
        await echo.close();
      }
    }
  });
});

describe('readiness follows eager discovery', () => {
  it('/readyz is 503 until the eager server answers, then 200 (retried with backoff)', async () => {
    const idpPort = await freePort(); // the provider starts later, on this port
    const port = await freePort();
    const adminPort = await freePort();
    const dir = makeTempDir('itest-ready-');
    const configPath = path.join(dir, 'mcpgate.yaml');
    const config = buildGatewayConfig({
      port,
      adminPort,
      routes: [{ name: 'notes', path: '/notes', upstream: 'http://127.0.0.1:9/mcp', auth: { type: 'jwt', server: 'late' } }],
    });
    fs.writeFileSync(
      configPath,
      toYaml(config) + authServersYaml({ late: { issuer: `http://127.0.0.1:${idpPort}`, discovery: 'eager' } }),
    );
    const gw = startProcess(GATEWAY_BIN, ['run', '--config', configPath], { name: 'mcpgate' });
    let idp;
    try {
      await waitForUrl(`http://127.0.0.1:${adminPort}/healthz`, { proc: gw });
      const notReady = await fetch(`http://127.0.0.1:${adminPort}/readyz`);
      assert.equal(notReady.status, 503, 'keys of an eager server are missing');
      idp = await startOidcProvider({ port: idpPort });
      await waitForUrl(`http://127.0.0.1:${adminPort}/readyz`, { proc: gw, timeoutMs: 30000 });
    } finally {
      const exit = await gw.stop('SIGTERM');
      await idp?.stop();
      assert.equal(sanitizerFindings(gw.stderr()), '');
      assert.equal(exit.code, 0);
    }
  });
});
