// Errors the gateway writes itself, and its header rules.
// Real parts: the gateway binary, server-everything (202 passthrough, allowed
// Origin). Mocks by necessity (see each file): echo-upstream (to observe the
// exact request the upstream received) and slow-upstream (to trigger 504).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import {
  startEverything,
  startGateway,
  startEchoUpstream,
  startSlowUpstream,
  freePort,
  rawHttp,
  mcpPost,
  openRawSession,
  sleep,
  LEGACY_PROTOCOL_VERSION,
} from '../support/harness.mjs';

const MAX_BODY = 64 * 1024;
const UPSTREAM_TIMEOUT_MS = 1000;
const REQUEST_TIMEOUT_MS = 2000;

/** Assert a plain (non-JSON-RPC) gateway error body. */
function assertPlainError(res, status, reason) {
  assert.equal(res.status, status, `status; body: ${res.text ?? res.body}`);
  const body = typeof res.json === 'object' ? res.json : JSON.parse(res.body ?? res.text);
  assert.equal(body.error, reason, `error reason in ${JSON.stringify(body)}`);
  assert.equal(typeof body.message, 'string');
  assert.ok(body.message.length > 0);
}

/** Assert a JSON-RPC-shaped gateway error body. */
function assertRpcError(res, status, reason, id, code = -32000) {
  assert.equal(res.status, status, `status; body: ${res.text ?? res.body}`);
  const body = typeof res.json === 'object' ? res.json : JSON.parse(res.body ?? res.text);
  assert.equal(body.jsonrpc, '2.0', JSON.stringify(body));
  assert.deepEqual(body.id, id, `id in ${JSON.stringify(body)}`);
  assert.equal(body.error?.code, code, `code in ${JSON.stringify(body)}`);
  assert.equal(typeof body.error.message, 'string');
  assert.equal(body.error.data?.status, status, `data.status in ${JSON.stringify(body)}`);
  assert.equal(body.error.data?.reason, reason, `data.reason in ${JSON.stringify(body)}`);
}

/**
 * For a POST whose body the gateway never read (malformed framing, too large,
 * stalled) the contract allows either shape: a JSON-RPC error with id null
 * (JSON content type) or the plain {"error": reason} body.
 */
function assertUnreadBodyError(res, status, reason) {
  const body = JSON.parse(res.body ?? res.text);
  if (body.jsonrpc) assertRpcError(res, status, reason, null);
  else assertPlainError(res, status, reason);
}

const rpc = (id, method, params) => ({ jsonrpc: '2.0', id, method, ...(params ? { params } : {}) });

function jsonHeaderOk(res) {
  const ct = typeof res.headers?.get === 'function' ? res.headers.get('content-type') : res.headers['content-type'];
  assert.match(ct ?? '', /application\/json/, 'gateway errors are JSON');
}

describe('gateway errors and header rules', () => {
  let everything;
  let echo;
  let slow;
  let gw;
  let downPort;
  before(async () => {
    [everything, echo, slow, downPort] = await Promise.all([
      startEverything('streamableHttp'),
      startEchoUpstream(),
      startSlowUpstream({ delayMs: 4000 }),
      freePort(), // nothing listens here
    ]);
    gw = await startGateway({
      server: {
        limits: {
          max_body_bytes: MAX_BODY,
          max_header_bytes: 16384,
          upstream_timeout_ms: UPSTREAM_TIMEOUT_MS,
          upstream_connect_timeout_ms: 1000,
          request_timeout_ms: REQUEST_TIMEOUT_MS,
        },
      },
      routes: [
        { name: 'everything', path: '/everything', upstream: everything.url, allowed_origins: ['https://ok.example'] },
        { name: 'echo', path: '/echo', upstream: `${echo.origin}/base` },
        { name: 'strict', path: '/strict', upstream: `${echo.origin}/strict`, allowed_origins: ['https://ok.example'] },
        { name: 'down', path: '/down', upstream: `http://127.0.0.1:${downPort}/mcp` },
        { name: 'slow', path: '/slow', upstream: `${slow.origin}/mcp` },
      ],
    });
  });
  after(async () => {
    try {
      await gw?.stopCleanly();
    } finally {
      await Promise.all([everything?.stop(), echo?.close(), slow?.close()]);
    }
  });

  it('unknown route -> 404 JSON; JSON-RPC POST gets a JSON-RPC error with its id', async () => {
    const get = await fetch(`${gw.url}/nope`);
    const text = await get.text();
    const res = { status: get.status, text, json: JSON.parse(text), headers: get.headers };
    jsonHeaderOk(res);
    assertPlainError(res, 404, 'not_found');

    const post = await mcpPost(`${gw.url}/nope/mcp`, rpc(42, 'tools/list'));
    jsonHeaderOk(post);
    assertRpcError(post, 404, 'not_found', 42);

    // Prefix matching is on segment boundaries: /everythingelse is not /everything.
    const near = await mcpPost(`${gw.url}/everythingelse`, rpc('s-1', 'tools/list'));
    assertRpcError(near, 404, 'not_found', 's-1');
    assert.equal(echo.requests.length, 0, 'nothing reached the echo upstream');
  });

  it('Origin not in allowed_origins -> 403; allowed Origin and no Origin pass', async () => {
    const bad = await mcpPost(`${gw.url}/strict`, rpc(3, 'ping'), { headers: { origin: 'https://evil.example' } });
    assertRpcError(bad, 403, 'origin_not_allowed', 3);
    const badGet = await fetch(`${gw.url}/strict`, { headers: { origin: 'https://evil.example' } });
    const badGetText = await badGet.text();
    assertPlainError({ status: badGet.status, text: badGetText, json: JSON.parse(badGetText) }, 403, 'origin_not_allowed');
    assert.equal(echo.requests.filter((r) => r.url.startsWith('/strict')).length, 0, 'rejected requests never reach the upstream');

    const ok = await mcpPost(`${gw.url}/strict`, rpc(4, 'ping'), { headers: { origin: 'https://ok.example' } });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.headers.origin, 'https://ok.example');

    const none = await mcpPost(`${gw.url}/strict`, rpc(5, 'ping'));
    assert.equal(none.status, 200, none.text);

    // Against the real server: an allowed browser-style client can open a session.
    const { init, sessionId } = await openRawSession(`${gw.url}/everything`, { headers: { origin: 'https://ok.example' } });
    assert.equal(init.status, 200, init.text);
    assert.ok(sessionId);
    const denied = await mcpPost(`${gw.url}/everything`, rpc(1, 'initialize', { protocolVersion: LEGACY_PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: 'x', version: '1' } }), {
      headers: { origin: 'http://attacker.example' },
    });
    assertRpcError(denied, 403, 'origin_not_allowed', 1);
  });

  it('malformed HTTP -> 400 bad_request', async () => {
    const r1 = await rawHttp(gw.port, 'THIS IS NOT HTTP\r\n\r\n');
    assertPlainError(r1, 400, 'bad_request');
    const r2 = await rawHttp(
      gw.port,
      'POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: abc\r\nContent-Type: application/json\r\n\r\n{}',
    );
    assertUnreadBodyError(r2, 400, 'bad_request');
    const r3 = await rawHttp(gw.port, 'GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nBroken Header Line\r\n\r\n');
    assertPlainError(r3, 400, 'bad_request');
  });

  it('oversized request header -> 431 headers_too_large', async () => {
    const big = 'a'.repeat(20000);
    const r = await rawHttp(gw.port, `GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${big}\r\n\r\n`);
    assertPlainError(r, 431, 'headers_too_large');
  });

  it('oversized body -> 413 body_too_large (Content-Length and chunked)', async () => {
    const before = echo.requests.length;
    const payload = JSON.stringify(rpc(9, 'tools/call', { name: 'echo', arguments: { message: 'x'.repeat(MAX_BODY * 2) } }));
    const r = await rawHttp(
      gw.port,
      `POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(payload)}\r\nConnection: close\r\n\r\n${payload}`,
    );
    assert.equal(r.status, 413, r.raw.slice(0, 300));
    const body = JSON.parse(r.body);
    // The body may not have been read: then the id is null (or the plain shape is used).
    if (body.jsonrpc && body.id === 9) assertRpcError(r, 413, 'body_too_large', 9);
    else assertUnreadBodyError(r, 413, 'body_too_large');

    const chunk = Buffer.alloc(16 * 1024, 'x').toString();
    let chunked = '';
    for (let i = 0; i < 8; i++) chunked += `${(chunk.length).toString(16)}\r\n${chunk}\r\n`;
    chunked += '0\r\n\r\n';
    const r2 = await rawHttp(
      gw.port,
      `POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${chunked}`,
    );
    assertUnreadBodyError(r2, 413, 'body_too_large');
    assert.equal(echo.requests.length, before, 'oversized bodies never reach the upstream');
  });

  it('invalid JSON body -> 400 JSON-RPC parse error (-32700, id null)', async () => {
    const r = await mcpPost(`${gw.url}/echo`, '{"jsonrpc": "2.0", "id": 1, "method": ');
    jsonHeaderOk(r);
    assertRpcError(r, 400, 'parse_error', null, -32700);
  });

  it('Mcp-Method / Mcp-Name header differing from the body -> 400 (-32020)', async () => {
    const before = echo.requests.length;
    const m = await mcpPost(`${gw.url}/echo`, rpc(11, 'tools/list'), { headers: { 'mcp-method': 'tools/call' } });
    assertRpcError(m, 400, 'header_mismatch', 11, -32020);
    const n = await mcpPost(`${gw.url}/echo`, rpc(12, 'tools/call', { name: 'echo', arguments: { message: 'x' } }), {
      headers: { 'mcp-method': 'tools/call', 'mcp-name': 'get-sum' },
    });
    assertRpcError(n, 400, 'header_mismatch', 12, -32020);
    const u = await mcpPost(`${gw.url}/echo`, rpc(13, 'resources/read', { uri: 'demo://a' }), {
      headers: { 'mcp-method': 'resources/read', 'mcp-name': 'demo://b' },
    });
    assertRpcError(u, 400, 'header_mismatch', 13, -32020);
    assert.equal(echo.requests.length, before, 'mismatched requests never reach the upstream');

    // Matching headers pass through untouched.
    const ok = await mcpPost(`${gw.url}/echo`, rpc(14, 'tools/call', { name: 'echo', arguments: { message: 'x' } }), {
      headers: { 'mcp-method': 'tools/call', 'mcp-name': 'echo' },
    });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.headers['mcp-method'], 'tools/call');
    assert.equal(ok.json.headers['mcp-name'], 'echo');
  });

  it('upstream down -> 502 upstream_unavailable (JSON-RPC error with the request id)', async () => {
    const r = await mcpPost(`${gw.url}/down`, rpc('req-502', 'tools/list'));
    jsonHeaderOk(r);
    assertRpcError(r, 502, 'upstream_unavailable', 'req-502');
    const g = await fetch(`${gw.url}/down`);
    const t = await g.text();
    assertPlainError({ status: g.status, text: t, json: JSON.parse(t) }, 502, 'upstream_unavailable');
  });

  it('slow upstream past upstream_timeout_ms -> 504 upstream_timeout', async () => {
    const t0 = Date.now();
    const r = await mcpPost(`${gw.url}/slow`, rpc(5, 'tools/call', { name: 'slow' }), { timeoutMs: 10000 });
    const elapsed = Date.now() - t0;
    assertRpcError(r, 504, 'upstream_timeout', 5);
    assert.ok(elapsed >= UPSTREAM_TIMEOUT_MS - 100, `504 came after ${elapsed} ms, before the ${UPSTREAM_TIMEOUT_MS} ms timeout`);
    assert.ok(elapsed < 3500, `504 came after ${elapsed} ms; the upstream would have answered at 4000 ms`);
    assert.ok(slow.stats.received >= 1, 'the request did reach the slow upstream');
  });

  it('client that stalls mid-request -> 408 request_timeout', async () => {
    const t0 = Date.now();
    const r = await rawHttp(
      gw.port,
      'POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"jsonrpc":',
      { timeoutMs: REQUEST_TIMEOUT_MS + 5000 },
    );
    const elapsed = Date.now() - t0;
    assert.equal(r.status, 408, `expected 408 after ~${REQUEST_TIMEOUT_MS} ms, got ${r.status} after ${elapsed} ms: ${r.raw.slice(0, 200)}`);
    assertUnreadBodyError(r, 408, 'request_timeout');
    assert.ok(elapsed < REQUEST_TIMEOUT_MS + 4000, `408 took ${elapsed} ms`);
  });

  it('header rules: credentials and hop-by-hop stripped, X-Forwarded-* added, Host rewritten, path+query mapped', async () => {
    const body = JSON.stringify(rpc(21, 'tools/call', { name: 'echo', arguments: { message: 'hi' } }));
    const token = 'secret-token-4f1c9a';
    const req =
      `POST /echo/sub/path?x=1&y=two%20words HTTP/1.1\r\n` +
      `Host: gateway.example:8443\r\n` +
      `Authorization: Bearer ${token}\r\n` +
      `Cookie: session=${token}-cookie\r\n` +
      `Connection: X-Foo, close\r\n` +
      `X-Foo: must-be-removed\r\n` +
      `Keep-Alive: timeout=5\r\n` +
      `Proxy-Authorization: Basic ${token}\r\n` +
      `TE: trailers\r\n` +
      `Content-Type: application/json\r\n` +
      `Accept: application/json, text/event-stream\r\n` +
      `Mcp-Session-Id: sess-123\r\n` +
      `MCP-Protocol-Version: 2026-07-28\r\n` +
      `Mcp-Method: tools/call\r\n` +
      `Mcp-Name: echo\r\n` +
      `Mcp-Param-Message: hi\r\n` +
      `Last-Event-ID: evt-7\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    const r = await rawHttp(gw.port, req);
    assert.equal(r.status, 200, r.raw.slice(0, 400));
    const seen = JSON.parse(r.body);
    const h = seen.headers;

    assert.equal(seen.method, 'POST');
    assert.equal(seen.url, '/base/sub/path?x=1&y=two%20words', 'prefix replaced by upstream path, rest + query preserved');
    assert.equal(seen.body, body, 'body forwarded byte for byte');

    assert.equal(h.authorization, undefined, 'Authorization must not be forwarded');
    assert.equal(h.cookie, undefined, 'Cookie must not be forwarded');
    assert.equal(h['x-foo'], undefined, 'header named in Connection must be removed');
    assert.equal(h['keep-alive'], undefined, 'Keep-Alive is hop-by-hop');
    assert.equal(h['proxy-authorization'], undefined, 'Proxy-Authorization is hop-by-hop');
    assert.equal(h.te, undefined, 'TE is hop-by-hop');
    assert.ok(!/x-foo/i.test(h.connection ?? ''), `client Connection tokens must not be forwarded: ${h.connection}`);

    assert.equal(h.host, `127.0.0.1:${echo.port}`, 'Host is the upstream host:port');
    assert.match(h['x-forwarded-for'] ?? '', /(^|,\s*)127\.0\.0\.1$/);
    assert.equal(h['x-forwarded-proto'], 'http');
    assert.equal(h['x-forwarded-host'], 'gateway.example:8443');

    assert.equal(h['content-type'], 'application/json');
    assert.equal(h.accept, 'application/json, text/event-stream');
    assert.equal(h['mcp-session-id'], 'sess-123');
    assert.equal(h['mcp-protocol-version'], '2026-07-28');
    assert.equal(h['mcp-method'], 'tools/call');
    assert.equal(h['mcp-name'], 'echo');
    assert.equal(h['mcp-param-message'], 'hi');
    assert.equal(h['last-event-id'], 'evt-7');

    await sleep(200); // let the access log line be flushed
    assert.ok(!gw.logs().includes(token), 'tokens must never appear in gateway logs');
  });

  it('202 from the upstream (notification POST) passes through as 202', async () => {
    const { initialized, sessionId } = await openRawSession(`${gw.url}/everything`);
    assert.ok(sessionId);
    assert.equal(initialized.status, 202);
    assert.equal(initialized.text, '', '202 carries no body');
    const again = await mcpPost(
      `${gw.url}/everything`,
      { jsonrpc: '2.0', method: 'notifications/roots/list_changed' },
      { headers: { 'mcp-session-id': sessionId, 'mcp-protocol-version': LEGACY_PROTOCOL_VERSION } },
    );
    assert.equal(again.status, 202);
  });
});

describe('connection limit', () => {
  let echo;
  let gw;
  before(async () => {
    echo = await startEchoUpstream();
    gw = await startGateway({
      server: { limits: { max_connections: 2 } },
      routes: [{ name: 'echo', path: '/echo', upstream: `${echo.origin}/base` }],
    });
  });
  after(async () => {
    try {
      await gw?.stopCleanly();
    } finally {
      await echo?.close();
    }
  });

  it('connections beyond max_connections get 503 too_many_connections; capacity returns after they close', async () => {
    const held = [];
    try {
      for (let i = 0; i < 2; i++) {
        const s = net.connect({ host: '127.0.0.1', port: gw.port });
        await new Promise((res, rej) => {
          s.once('connect', res);
          s.once('error', rej);
        });
        // A complete keep-alive request so the connection is surely accepted and counted.
        s.write('GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
        await new Promise((res) => s.once('data', res));
        held.push(s);
      }
      const r = await rawHttp(gw.port, 'GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
      assertPlainError(r, 503, 'too_many_connections');
    } finally {
      for (const s of held) s.destroy();
    }
    // After the held connections close, the gateway serves again.
    let last;
    for (let i = 0; i < 50; i++) {
      last = await rawHttp(gw.port, 'GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
      if (last.status === 200) break;
      await sleep(100);
    }
    assert.equal(last.status, 200, `gateway should serve again: ${last.raw.slice(0, 200)}`);
  });
});
