// Fault injection for every dependency of the gateway (issue 8): the IdP, the upstream MCP
// server, Redis and the token endpoint failing in the ways they really fail, and the signals an
// orchestrator sends while traffic flows. Each case checks what the client sees (status, the
// JSON-RPC error with its id, Retry-After / WWW-Authenticate), that the gateway stays up and
// serves again once the fault clears, and, where a token store is involved, that no stored
// token is lost.
//
// Real parts: the gateway binary, the npm oidc-provider (callers' tokens, key rotation),
// redis-server (killed, hung, restarted), server-everything and the 2026-07-28 modern server
// (load during SIGHUP and SIGTERM).
// Mocks by necessity, in this file:
//   * FaultyIdp: discovery, JWKS, userinfo, introspection and a token endpoint that can be
//     switched to answer garbage (HTML 500s, non-JSON, wrong JSON, oversized), reset, hang, or
//     stall after the head. The real provider can be stopped or suspended (the existing tests
//     do that) but it cannot be made to answer garbage.
//   * ScriptedUpstream: a raw TCP upstream that resets, cuts a JSON body or an SSE stream
//     mid-event, and drops reused keep-alive connections; no real MCP server fails on cue.
//   * echo-upstream (tests/support): shows which stored token the gateway injected.
//
// Already covered elsewhere, not repeated here:
//   * IdP stopped (connections refused) with JWT: auth-jwt.test.mjs "IdP down"; readiness while
//     an eager IdP is absent: auth-jwt.test.mjs "readiness follows eager discovery".
//   * userinfo/introspection IdP stopped, a cached token still passes: auth-lookup.test.mjs.
//   * one JWKS rotation (single request) and the unknown-kid flood bound: auth-jwt.test.mjs.
//   * upstream refusing connections (502) and answering after upstream_timeout_ms (504):
//     errors.test.mjs; client disconnects mid-stream, slow readers: streams-faults.test.mjs.
//   * Redis stopped (SIGTERM) between calls and back: credentials-redis.test.mjs; rate limits
//     with Redis down: rate-limits.test.mjs.
//   * the downstream token server stopped while a renewal is due, invalid_grant deleting the
//     link, 20 concurrent renewals: credentials-delegated.test.mjs, credentials-redis.test.mjs.
//   * SIGHUP with a changed / broken config, requests and a stream across a reload:
//     admin-lifecycle.test.mjs, reload-audit.test.mjs, plugins.test.mjs (pending plugin calls).
//   * SIGTERM with one GET stream and one streamed tool call: admin-lifecycle.test.mjs.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';

import { generateSigningJwk, publicJwk, startOidcProvider } from '../support/oidc-provider.mjs';
import { forgeToken, getTokenViaAuthCode, parseBearerChallenge } from '../support/oauth-client.mjs';
import { startRedis } from '../support/redis.mjs';
import {
  GATEWAY_BIN,
  LEGACY_PROTOCOL_VERSION,
  TIME_SCALE,
  buildGatewayConfig,
  freePort,
  getMetrics,
  makeTempDir,
  mcpPost,
  metricValue,
  openRawSession,
  parseJsonLines,
  parseMetrics,
  raceTimeout,
  rawHttp,
  sanitizerFindings,
  sleep,
  startEchoUpstream,
  startEverything,
  startGateway,
  startModernServer,
  startProcess,
  startTickerUpstream,
  toYaml,
  waitFor,
  waitForUrl,
} from '../support/harness.mjs';

const FETCH_TIMEOUT_MS = 5000;  // AuthorizationServer::kFetchTimeoutMs: the gateway's own calls
const WORKERS = 2;
const toolsList = (id) => ({ jsonrpc: '2.0', id, method: 'tools/list' });
const toolCall = (name, id, args = {}) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });
const b64u = (s) => Buffer.from(s).toString('base64url');
const bearer = (token) => ({ authorization: `Bearer ${token}` });

/** A gateway error answer to a JSON-RPC request: status, reason, the request's id. */
function assertRpcError(res, status, reason, id) {
  assert.equal(res.status, status, `status; body: ${res.text}`);
  assert.equal(res.json?.jsonrpc, '2.0', res.text);
  assert.deepEqual(res.json.id, id, `id in ${res.text}`);
  assert.equal(res.json.error?.code, -32000, res.text);
  assert.equal(res.json.error.data?.status, status, res.text);
  assert.equal(res.json.error.data?.reason, reason, res.text);
}

/** 503 for an IdP that cannot answer: Retry-After, never a challenge that blames the token. */
function assertIdpUnavailable(res, id) {
  assertRpcError(res, 503, 'idp_unavailable', id);
  assert.ok(Number(res.headers.get('retry-after')) >= 1, `Retry-After: ${res.headers.get('retry-after')}`);
  assert.doesNotMatch(res.headers.get('www-authenticate') ?? '', /invalid_token/, 'a good token must not be declared invalid');
}

/** 503 credential_unavailable with Retry-After and the request's id. */
function assertCredentialUnavailable(res, id) {
  assertRpcError(res, 503, 'credential_unavailable', id);
  assert.ok(Number(res.headers.get('retry-after')) >= 1, `Retry-After: ${res.headers.get('retry-after')}`);
}

/** A POST that never throws: a client-side failure (timeout, reset) comes back as status 0. */
async function tryPost(url, body, opts) {
  try {
    return await mcpPost(url, body, opts);
  } catch (e) {
    return { status: 0, error: `${e.name}: ${e.message}`, text: '', headers: new Headers(), messages: [] };
  }
}

/** Run `fn(worker, i)` in `workers` parallel loops until `untilMs` passes (at most `maxEach` rounds each). */
async function load({ workers, untilMs, maxEach = 500 }, fn) {
  const deadline = Date.now() + untilMs;
  await Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      for (let i = 0; i < maxEach && Date.now() < deadline; i++) await fn(w, i);
    }),
  );
}

/** Follow a streaming response until it ends: 'end' (final chunk) or how it was cut. */
function streamOutcome(res, { timeoutMs = 10000 } = {}) {
  let text = '';
  const outcome = new Promise((resolve) => {
    res.on('data', (c) => {
      text += c;
    });
    res.on('end', () => resolve('end'));
    res.on('aborted', () => resolve('aborted'));
    res.on('error', (e) => resolve(`error ${e.code ?? e.message}`));
    res.on('close', () => setTimeout(() => resolve('closed without end'), 50));
  });
  return raceTimeout(outcome, timeoutMs, 'still open').then((how) => ({ how, text }));
}

/** GET (or POST `body`) through the gateway with node:http; resolves at the response head. */
function openStream(port, reqPath, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path: reqPath,
        method,
        agent: false,
        headers: {
          accept: 'application/json, text/event-stream',
          ...(body ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {}),
          ...headers,
        },
      },
      (res) => resolve({ req, res }),
    );
    req.setTimeout(10000, () => req.destroy(new Error('no response head within 10 s')));
    req.on('error', reject);
    req.end(body);
  });
}

// ---------------------------------------------------------------------------
// FaultyIdp: an IdP whose every endpoint can be told how to fail (see the header for why).
// Each tenant is an issuer of its own, http://127.0.0.1:<port>/<tenant>, with its own modes:
//   discovery / jwks: ok | reset | html500 | notjson | wrongissuer | array | badkeys | huge |
//                     hang | stall (the head, then nothing)
//   userinfo / introspection: the mode is the token's middle word (m.<mode>.<random>), or the
//                     tenant's `lookup` mode for tokens m.tenant.<random>: ok | html500 | notjson |
//                     array | empty502 | reset | hang | stall | client401
//   token (refresh_token grant): ok | html500 | slow500 | hang | garbage200 | noaccess200 | html400
// ---------------------------------------------------------------------------
async function startFaultyIdp() {
  const tenants = new Map();
  const held = new Set();  // hung responses, ended at close()
  let origin;

  const fail = (res, mode, { okBody, okStatus = 200 }) => {
    switch (mode) {
      case 'ok':
        res.writeHead(okStatus, { 'content-type': 'application/json', 'cache-control': 'max-age=300' });
        return res.end(JSON.stringify(okBody()));
      case 'reset':
        return res.socket.resetAndDestroy();
      case 'html500':
        res.writeHead(500, { 'content-type': 'text/html' });
        return res.end('<html><body><h1>500 Internal Server Error</h1></body></html>');
      case 'html400':
        res.writeHead(400, { 'content-type': 'text/html' });
        return res.end('<html><body>Bad Request</body></html>');
      case 'notjson':
      case 'garbage200':
        res.writeHead(200, { 'content-type': 'text/html' });
        return res.end('<!doctype html><title>Sign in</title><p>Please enable JavaScript');
      case 'array':
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end('[{"issuer":"x"}]');
      case 'empty502':
        res.writeHead(502);
        return res.end();
      case 'client401':
        res.writeHead(401, { 'content-type': 'application/json' });
        return res.end('{"error":"invalid_client"}');
      case 'hang':
        held.add(res);
        return undefined;
      case 'stall':
        held.add(res);
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '4096' });
        return res.write('{"keys":[{"kty":"RSA",');
      default:
        throw new Error(`unknown mode ${mode}`);
    }
  };

  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      try {
        const body = Buffer.concat(chunks).toString('utf8');
        const [, name, endpoint] = /^\/([^/]+)\/(.*)$/.exec(req.url.split('?')[0]) ?? [];
        const t = tenants.get(name);
        if (!t) {
          res.writeHead(404);
          return res.end();
        }
        const issuer = `${origin}/${name}`;
        t.hits.push({ endpoint, at: Date.now() });
        if (endpoint === '.well-known/openid-configuration') {
          if (t.discovery === 'wrongissuer') {
            res.writeHead(200, { 'content-type': 'application/json' });
            return res.end(JSON.stringify({ issuer: `${origin}/someone-else`, jwks_uri: `${issuer}/jwks` }));
          }
          return fail(res, t.discovery, {
            okBody: () => ({
              issuer,
              jwks_uri: `${issuer}/jwks`,
              userinfo_endpoint: `${issuer}/userinfo`,
              introspection_endpoint: `${issuer}/introspect`,
              token_endpoint: `${issuer}/token`,
              authorization_endpoint: `${issuer}/auth`,
            }),
          });
        }
        if (endpoint === 'jwks') {
          const mode = t.jwks;
          if (mode === 'ok') t.lastJwksOkAt = Date.now();
          if (mode === 'badkeys') {
            res.writeHead(200, { 'content-type': 'application/json' });
            return res.end('{"keys":[{"kty":"RSA","kid":"k","n":"!!not base64!!","e":"AQAB"}]}');
          }
          if (mode === 'huge') {
            res.writeHead(200, { 'content-type': 'application/json' });
            return res.end(`{"keys":[],"pad":"${'x'.repeat(2 * 1024 * 1024)}"}`);
          }
          return fail(res, mode, { okBody: () => ({ keys: t.keys.map(publicJwk) }) });
        }
        if (endpoint === 'userinfo' || endpoint === 'introspect') {
          const token =
            endpoint === 'userinfo'
              ? (req.headers.authorization ?? '').replace(/^Bearer /, '')
              : new URLSearchParams(body).get('token') ?? '';
          const [, word] = token.split('.');
          const mode = word === 'tenant' ? t.lookup : word ?? 'ok';
          const sub = `user-${token.split('.')[2] ?? 'x'}`;
          return fail(res, mode, {
            okBody: () =>
              endpoint === 'userinfo'
                ? { sub }
                : { active: true, sub, aud: t.audience, scope: 'read:notes', exp: Math.floor(Date.now() / 1000) + 3600, iss: issuer },
          });
        }
        if (endpoint === 'token') {
          const form = new URLSearchParams(body);
          t.tokenRequests.push({ grantType: form.get('grant_type'), refreshToken: form.get('refresh_token'), mode: t.token, at: Date.now() });
          const mode = t.token;
          if (mode === 'slow500') {
            const timer = setTimeout(() => fail(res, 'html500', {}), 600);
            res.on('close', () => clearTimeout(timer));
            return undefined;
          }
          if (mode === 'noaccess200') {
            res.writeHead(200, { 'content-type': 'application/json' });
            return res.end('{"token_type":"Bearer","expires_in":3600}');
          }
          return fail(res, mode, { okBody: () => t.tokenAnswer() });
        }
        res.writeHead(404);
        return res.end();
      } catch (e) {
        res.writeHead(500);
        return res.end(String(e));
      }
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  origin = `http://127.0.0.1:${server.address().port}`;
  return {
    origin,
    /** Adds (or resets) a tenant; returns its state, whose modes the test switches. */
    tenant(name, init = {}) {
      const t = {
        name,
        issuer: `${origin}/${name}`,
        discovery: 'ok',
        jwks: 'ok',
        lookup: 'ok',
        token: 'ok',
        keys: [generateSigningJwk()],
        audience: undefined,
        hits: [],
        tokenRequests: [],
        lastJwksOkAt: 0,
        tokenAnswer: () => ({ access_token: `at-${crypto.randomBytes(6).toString('hex')}`, token_type: 'Bearer', expires_in: 3600 }),
        count: (endpoint, since = 0) => t.hits.filter((h) => h.endpoint === endpoint && h.at >= since).length,
        // Fetch attempts of the gateway: hits closer than 200 ms are one attempt (curl itself
        // resends a request up to 5 times when a reused connection is reset under it).
        attempts: (endpoint) =>
          t.hits.filter((h) => h.endpoint === endpoint).reduce((n, h, i, all) => n + (i === 0 || h.at - all[i - 1].at > 200 ? 1 : 0), 0),
        ...init,
      };
      tenants.set(name, t);
      return t;
    },
    close() {
      for (const res of held) res.destroy();
      server.closeAllConnections();
      return new Promise((r) => server.close(r));
    },
  };
}

// ---------------------------------------------------------------------------
// ScriptedUpstream: a raw TCP upstream; the request path picks how it fails (see the header).
// ---------------------------------------------------------------------------
const SSE_EVENT = (n) => `event: message\nid: ${n}\ndata: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/message', params: { data: `event ${n}` } })}\n\n`;
const chunk = (s) => `${Buffer.byteLength(s).toString(16)}\r\n${s}\r\n`;

async function startScriptedUpstream() {
  const stats = { keepaliveAnswered: 0, keepaliveDropped: 0, closedByPeer: {} };
  const sockets = new Set();
  const timers = new Set();
  const later = (ms, fn) => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buf = '';
    let served = 0;
    socket.on('data', (data) => {
      buf += data.toString('latin1');
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.slice(0, end);
        const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
        if (buf.length < end + 4 + length) return;
        const body = buf.slice(end + 4, end + 4 + length);
        buf = buf.slice(end + 4 + length);
        const mode = head.split(' ')[1].split('/')[1].split('?')[0];
        let id = null;
        try {
          id = JSON.parse(body).id ?? null;
        } catch {
          /* GET */
        }
        served += 1;
        answer(socket, mode, id, served);
      }
    });
  });
  const json = (id) => JSON.stringify({ jsonrpc: '2.0', id, result: { ok: true, pad: 'x'.repeat(100) } });
  const sseHead = 'HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n';
  function answer(socket, mode, id, served) {
    switch (mode) {
      case 'reset-before-head':
        return socket.resetAndDestroy();
      case 'close-before-head':
        return socket.end();
      case 'partial-head':
        socket.write('HTTP/1.1 200 OK\r\nContent-Ty');
        return later(50, () => socket.resetAndDestroy());
      case 'json-cut': {
        const text = json(id);
        socket.write(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${text.length}\r\n\r\n${text.slice(0, 40)}`);
        return later(100, () => socket.resetAndDestroy());
      }
      case 'sse-cut-reset':
      case 'sse-cut-fin': {
        const half = SSE_EVENT(2).slice(0, 30);
        socket.write(sseHead + chunk(SSE_EVENT(1)));
        later(100, () => socket.write(chunk(half)));
        return later(250, () => (mode === 'sse-cut-reset' ? socket.resetAndDestroy() : socket.end()));
      }
      case 'sse-ok':
        socket.write(sseHead + chunk(SSE_EVENT(1)));
        return later(100, () => socket.write(chunk(SSE_EVENT(2)) + '0\r\n\r\n'));
      case 'sse-slow': {
        // Events further apart than upstream_timeout_ms: a stream that has started is not cut by it.
        socket.write(sseHead);
        for (let n = 1; n <= 3; n++) later(n * 700, () => socket.write(chunk(SSE_EVENT(n)) + (n === 3 ? '0\r\n\r\n' : '')));
        return undefined;
      }
      case 'keepalive': {
        // The first request on a connection is answered (keep-alive); the next one on it is
        // dropped unanswered, as a server closing an idle connection at that moment does.
        if (served > 1) {
          stats.keepaliveDropped += 1;
          return socket.destroy();
        }
        stats.keepaliveAnswered += 1;
        const text = json(id);
        return socket.write(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${text.length}\r\nConnection: keep-alive\r\n\r\n${text}`);
      }
      default: {
        const text = json(id);
        return socket.write(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${text.length}\r\n\r\n${text}`);
      }
    }
  }
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    origin: `http://127.0.0.1:${server.address().port}`,
    stats,
    close() {
      for (const t of timers) clearTimeout(t);
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(r));
    },
  };
}

// ---------------------------------------------------------------------------
// A gateway that is not ready yet (eager discovery failing): started like startGateway, but
// waited for on /healthz instead of /readyz.
// ---------------------------------------------------------------------------
async function startUnreadyGateway(opts) {
  const port = opts.port ?? (await freePort());
  const adminPort = await freePort();
  const dir = makeTempDir('itest-faults-');
  const configPath = path.join(dir, 'mcpgate.yaml');
  fs.writeFileSync(configPath, toYaml(buildGatewayConfig({ ...opts, port, adminPort })) + (opts.extraYaml ?? ''));
  const proc = startProcess(GATEWAY_BIN, ['run', '--config', configPath], {
    name: 'mcpgate',
    env: {
      ASAN_OPTIONS: process.env.ASAN_OPTIONS ?? 'detect_leaks=1:halt_on_error=1:abort_on_error=0',
      UBSAN_OPTIONS: process.env.UBSAN_OPTIONS ?? 'print_stacktrace=1:halt_on_error=1',
    },
  });
  await waitForUrl(`http://127.0.0.1:${adminPort}/healthz`, { proc });
  const gw = {
    port,
    url: `http://127.0.0.1:${port}`,
    adminUrl: `http://127.0.0.1:${adminPort}`,
    proc,
    logs: () => proc.output(),
    jsonLogs: () => parseJsonLines(proc.stdout()),
    async stopCleanly() {
      const exit = await proc.stop('SIGTERM', 12000 * TIME_SCALE);
      assert.equal(sanitizerFindings(proc.stderr()), '', 'sanitizer findings in gateway stderr');
      assert.equal(exit.code, 0, `gateway should exit 0 on SIGTERM, got ${JSON.stringify(exit)}`);
    },
  };
  return gw;
}

// ---------------------------------------------------------------------------
// Shared parts. The rotation gateway starts here, at the top: the gateway refetches keys for
// an unknown kid at most once per 10 s per server, so its first fetch must be long past when
// the rotation test runs (the tests in between use that time).
// ---------------------------------------------------------------------------
let idp;
let modern;
let everything;
let echo;
let fakeIdp;
let scripted;
let rotation;  // {gw, relay, base, tokens}

async function startJwksRelay(target) {
  const relay = { fetches: { a: 0, b: 0 } };
  const server = http.createServer(async (req, res) => {
    const which = req.url.endsWith('/b') ? 'b' : 'a';
    relay.fetches[which] += 1;
    try {
      const upstream = await fetch(target, { signal: AbortSignal.timeout(5000) });
      res.writeHead(upstream.status, { 'content-type': 'application/json' });
      res.end(await upstream.text());
    } catch {
      res.writeHead(502);
      res.end();
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  relay.url = (which) => `http://127.0.0.1:${server.address().port}/jwks/${which}`;
  relay.close = () => {
    server.closeAllConnections();
    return new Promise((r) => server.close(r));
  };
  return relay;
}

const MODERN_META = {
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientInfo': { name: 'mcpgate-faults', version: '1.0.0' },
  'io.modelcontextprotocol/clientCapabilities': {},
};
const MODERN_HEADERS = { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'echo' };
const modernEcho = (id, message) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'echo', arguments: { message }, _meta: MODERN_META } });
const echoed = (res) => res.messages?.find((m) => m.result)?.result?.content?.[0]?.text;

before(async () => {
  [idp, modern, everything, echo, fakeIdp, scripted] = await Promise.all([
    startOidcProvider(),
    startModernServer(),
    startEverything('streamableHttp'),
    startEchoUpstream(),
    startFaultyIdp(),
    startScriptedUpstream(),
  ]);
  const relay = await startJwksRelay(idp.jwksUri);
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const gw = await startGateway({
    port,
    server: { workers: WORKERS },
    routes: ['a', 'b'].map((x) => ({
      name: `modern-${x}`,
      path: `/modern-${x}`,
      upstream: modern.url,
      auth: { type: 'jwt', server: `idp-${x}`, cache_ttl_s: 0 },  // every request checks its signature
    })),
    extraYaml: toYaml({
      authorization_servers: Object.fromEntries(
        ['a', 'b'].map((x) => [`idp-${x}`, { issuer: idp.issuer, discovery: 'eager', metadata_overrides: { jwks_uri: relay.url(x) } }]),
      ),
    }),
  });
  const tokens = {};
  for (const x of ['a', 'b'])
    tokens[x] = (await getTokenViaAuthCode({ issuer: idp.issuer, resource: `${base}/modern-${x}`, scope: 'openid' })).access_token;
  rotation = { gw, relay, base, tokens, keysLoadedAt: Date.now() };
});

after(async () => {
  try {
    await rotation?.gw.stopCleanly();
  } finally {
    await Promise.all([idp?.stop(), modern?.stop(), everything?.stop(), echo?.close(), fakeIdp?.close(), scripted?.close(), rotation?.relay.close()]);
  }
});

// ===========================================================================
// 1. The IdP down, slow or answering garbage, at start and at run time
// ===========================================================================
describe('IdP faults: discovery, JWKS, userinfo and introspection answering garbage, resetting, hanging, stalling', () => {
  const START_FAULTS = {
    // discovery fails; the keys would be fine
    'd-reset': { discovery: 'reset' },
    'd-html500': { discovery: 'html500' },
    'd-notjson': { discovery: 'notjson' },
    'd-wrongissuer': { discovery: 'wrongissuer' },
    'd-array': { discovery: 'array' },
    'd-hang': { discovery: 'hang' },
    'd-stall': { discovery: 'stall' },
    // discovery works, the JWKS does not
    'k-html500': { jwks: 'html500' },
    'k-notjson': { jwks: 'notjson' },
    'k-badkeys': { jwks: 'badkeys' },
    'k-huge': { jwks: 'huge' },
    'k-hang': { jwks: 'hang' },
    'k-stall': { jwks: 'stall' },
  };
  const tenants = {};
  let gw;
  let startedAt;
  const routeUrl = (name) => `${gw.url}/t/${name}`;
  const tokenFor = (name, key = tenants[name].keys[0]) =>
    forgeToken('valid', { issuer: tenants[name].issuer, signingKey: key, audience: routeUrl(name) });

  before(async () => {
    for (const [name, modes] of Object.entries(START_FAULTS)) tenants[name] = fakeIdp.tenant(name, modes);
    tenants.rt = fakeIdp.tenant('rt');  // healthy at start; fails at run time
    tenants.lookup = fakeIdp.tenant('lookup');
    const port = await freePort();
    tenants.lookup.audience = `http://127.0.0.1:${port}/intro`;
    const jwtNames = [...Object.keys(START_FAULTS), 'rt'];
    startedAt = Date.now();
    gw = await startUnreadyGateway({
      port,
      server: { workers: WORKERS },
      routes: [
        ...jwtNames.map((name) => ({ name, path: `/t/${name}`, upstream: `${echo.origin}/mcp`, auth: { type: 'jwt', server: name } })),
        { name: 'ui', path: '/ui', upstream: `${echo.origin}/mcp`, forward_identity: true, auth: { type: 'userinfo', server: 'lookup', cache_ttl_s: 0 } },
        { name: 'intro', path: '/intro', upstream: `${echo.origin}/mcp`, forward_identity: true, auth: { type: 'introspection', server: 'lookup', cache_ttl_s: 30 } },
      ],
      extraYaml: toYaml({
        authorization_servers: {
          ...Object.fromEntries(jwtNames.map((name) => [name, { issuer: tenants[name].issuer, discovery: 'eager' }])),
          lookup: { issuer: tenants.lookup.issuer, client: { id: 'mcpgate', secret: 'lookup-secret' } },
        },
      }),
    });
  });
  after(async () => {
    await gw?.stopCleanly();
  });

  it('at start: every kind of broken discovery or JWKS gives 503 idp_unavailable with Retry-After (never 401), /readyz stays 503, fetches back off; once the IdP is fixed the gateway gets ready by itself', async () => {
    const names = Object.keys(START_FAULTS);
    const forwardedBefore = echo.requests.length;
    assert.equal((await fetch(`${gw.adminUrl}/readyz`)).status, 503, 'eager servers without keys: not ready');
    const tokens = Object.fromEntries(await Promise.all(names.map(async (n) => [n, await tokenFor(n)])));
    // One request per route first (those of hanging and stalling servers wait for the fetch
    // timeout), and meanwhile a flood on every route: 20 requests each.
    const first = Promise.all(names.map((n, i) => tryPost(routeUrl(n), toolsList(100 + i), { headers: bearer(tokens[n]), timeoutMs: 15000 })));
    const floods = [];
    for (let round = 0; round < 20; round++) {
      floods.push(...names.map((n) => tryPost(routeUrl(n), toolsList(round), { headers: bearer(tokens[n]), timeoutMs: 15000 })));
      await sleep(50);
    }
    const [firsts, flood] = await Promise.all([first, Promise.all(floods)]);
    firsts.forEach((res, i) => {
      assert.notEqual(res.status, 0, `${names[i]}: the request was never answered (${res.error})`);
      assertIdpUnavailable(res, 100 + i);
    });
    for (const res of flood) assert.equal(res.status, 503, `flood: ${res.status} ${res.text} ${res.error ?? ''}`);
    assert.equal(echo.requests.length, forwardedBefore, 'nothing reached the upstream');
    const failingFor = Date.now() - startedAt;
    for (const n of names) {
      const endpoint = START_FAULTS[n].discovery ? '.well-known/openid-configuration' : 'jwks';
      const attempts = tenants[n].attempts(endpoint);
      // Backoff 1, 2, 4 s...: a handful in these seconds, not one per request (21 each).
      assert.ok(attempts >= 1 && attempts <= 5, `${n}: ${attempts} ${endpoint} fetch attempts in ${failingFor} ms`);
    }
    assert.equal((await fetch(`${gw.adminUrl}/readyz`)).status, 503);

    for (const n of names) Object.assign(tenants[n], { discovery: 'ok', jwks: 'ok' });
    await waitForUrl(`${gw.adminUrl}/readyz`, { timeoutMs: 30000, proc: gw.proc });
    const healed = await Promise.all(names.map((n, i) => mcpPost(routeUrl(n), toolsList(200 + i), { headers: bearer(tokens[n]) })));
    healed.forEach((res, i) => assert.equal(res.status, 200, `${names[i]} after the fix: ${res.text}`));
    assert.match(gw.logs(), /authorization server unavailable/, 'the failures are logged');
  });

  it('userinfo and introspection failing at run time (HTML 500, non-JSON, wrong JSON, 502, reset, hang, stall, our client refused): 503 with Retry-After and the id, never 401; recovery after the failure cache', async () => {
    const rand = () => crypto.randomBytes(4).toString('hex');
    const modes = ['html500', 'notjson', 'array', 'empty502', 'reset', 'hang', 'stall'];
    const cases = [
      ...modes.map((mode) => ({ route: 'ui', mode })),
      ...[...modes, 'client401'].map((mode) => ({ route: 'intro', mode })),
    ];
    const forwardedBefore = echo.requests.length;
    const answers = await Promise.all(
      cases.map((c, i) => tryPost(`${gw.url}/${c.route}`, toolsList(300 + i), { headers: bearer(`m.${c.mode}.${rand()}`), timeoutMs: 15000 })),
    );
    answers.forEach((res, i) => {
      assert.notEqual(res.status, 0, `${cases[i].route}/${cases[i].mode}: never answered (${res.error})`);
      assertIdpUnavailable(res, 300 + i);
    });
    assert.equal(echo.requests.length, forwardedBefore, 'nothing reached the upstream');

    // Controls: the IdP saying the token is bad is a 401; a good answer passes with its subject.
    const refused = await mcpPost(`${gw.url}/ui`, toolsList(1), { headers: bearer(`m.client401.${rand()}`) });
    assert.equal(refused.status, 401, refused.text);
    assert.equal(parseBearerChallenge(refused.headers.get('www-authenticate')).error, 'invalid_token');
    for (const route of ['ui', 'intro']) {
      const tag = rand();
      const ok = await mcpPost(`${gw.url}/${route}`, toolsList(2), { headers: bearer(`m.ok.${tag}`) });
      assert.equal(ok.status, 200, `${route}: ${ok.text}`);
      assert.equal(echo.requests.at(-1).headers['x-mcp-subject'], `user-${tag}`);
    }

    // One token through an outage and back: 503 while the IdP fails, 200 once the 2 s failure
    // cache is over.
    const token = `m.tenant.${rand()}`;
    tenants.lookup.lookup = 'html500';
    assertIdpUnavailable(await mcpPost(`${gw.url}/intro`, toolsList(3), { headers: bearer(token) }), 3);
    tenants.lookup.lookup = 'ok';
    const back = await waitFor(
      async () => {
        const res = await mcpPost(`${gw.url}/intro`, toolsList(4), { headers: bearer(token) });
        if (res.status !== 200) assertIdpUnavailable(res, 4);
        return res.status === 200 && res;
      },
      { timeoutMs: 8000, intervalMs: 250, what: 'the token to pass once introspection works again' },
    );
    assert.equal(back.json.headers['x-mcp-subject'], `user-${token.split('.')[2]}`);
  });

  it('JWKS answering HTML 500 at run time: the last good keys keep working; a token of a just-rotated key is 503 (not 401) until the JWKS is back, then accepted', async () => {
    const t = tenants.rt;
    const oldToken = await tokenFor('rt');
    assert.equal((await mcpPost(routeUrl('rt'), toolsList(1), { headers: bearer(oldToken) })).status, 200);
    // The unknown-kid refetch is allowed 10 s after the last fetch.
    await sleep(Math.max(0, t.lastJwksOkAt + 10_500 - Date.now()));
    const rotated = generateSigningJwk();
    t.keys = [rotated, ...t.keys];
    t.jwks = 'html500';
    const newToken = await tokenFor('rt', rotated);
    const fetchesBefore = t.count('jwks');
    assertIdpUnavailable(await mcpPost(routeUrl('rt'), toolsList(2), { headers: bearer(newToken) }), 2);
    assert.equal(t.count('jwks'), fetchesBefore + 1, 'the unknown kid did cause a refetch');
    const stillOk = await mcpPost(routeUrl('rt'), toolsList(3), { headers: bearer(oldToken) });
    assert.equal(stillOk.status, 200, `the last good keys are kept: ${stillOk.text}`);

    t.jwks = 'ok';
    const accepted = await waitFor(
      async () => {
        const res = await mcpPost(routeUrl('rt'), toolsList(4), { headers: bearer(newToken) });
        if (res.status !== 200) assertIdpUnavailable(res, 4);  // during the backoff: 503, never 401
        return res.status === 200 && res;
      },
      { timeoutMs: 10000, intervalMs: 250, what: 'the rotated key to be accepted once the JWKS is back' },
    );
    assert.equal(accepted.status, 200);
    // Control: with fresh keys, a kid the IdP never published is the token's fault.
    const forged = await forgeToken('unknown-kid', { issuer: t.issuer, audience: routeUrl('rt') });
    const res = await mcpPost(routeUrl('rt'), toolsList(5), { headers: bearer(forged) });
    assert.equal(res.status, 401, res.text);
    assert.equal(parseBearerChallenge(res.headers.get('www-authenticate')).error, 'invalid_token');
    assert.ok(gw.proc.alive());
  });
});

// ===========================================================================
// 3. The upstream resetting, closing mid-stream, answering slowly
// ===========================================================================
describe('upstream faults: resets, a JSON body or an SSE stream cut mid-event, dropped keep-alive connections', () => {
  let gw;
  before(async () => {
    gw = await startGateway({
      server: { workers: WORKERS, limits: { upstream_timeout_ms: 400, upstream_connect_timeout_ms: 1000 } },
      routes: [{ name: 'up', path: '/up', upstream: `${scripted.origin}/` }],
    });
  });
  after(async () => {
    await gw?.stopCleanly();
  });

  it('reset before the head, closed before the head, a head cut off: 502 upstream_unavailable with the id (POST) or plain JSON (GET); the gateway keeps serving', async () => {
    for (const [i, mode] of ['reset-before-head', 'close-before-head', 'partial-head'].entries()) {
      const res = await mcpPost(`${gw.url}/up/${mode}`, toolCall('x', `id-${i}`));
      assertRpcError(res, 502, 'upstream_unavailable', `id-${i}`);
      const get = await fetch(`${gw.url}/up/${mode}`, { signal: AbortSignal.timeout(5000) });
      assert.equal(get.status, 502);
      assert.deepEqual(Object.keys(await get.json()).sort(), ['error', 'message']);
    }
    const ok = await mcpPost(`${gw.url}/up/fine`, toolCall('x', 9));
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.id, 9);
  });

  it('a JSON body cut short: the client gets the 200 head and a body that visibly ends early (no completed response)', async () => {
    const body = JSON.stringify(toolCall('x', 5));
    const r = await rawHttp(gw.port, `POST /up/json-cut HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`, { timeoutMs: 5000 });
    assert.equal(r.status, 200, r.raw.slice(0, 200));
    assert.equal(r.complete, false, 'the truncation must show: fewer bytes than Content-Length, then the connection closes');
    assert.ok(r.body.length > 0 && r.body.length < Number(r.headers['content-length']), `${r.body.length} of ${r.headers['content-length']} bytes`);
  });

  it('an SSE stream cut mid-event (reset or FIN without the final chunk): the client gets the whole events and the cut, never a clean end; active streams return to 0', async () => {
    for (const mode of ['sse-cut-reset', 'sse-cut-fin']) {
      const { res } = await openStream(gw.port, `/up/${mode}`);
      assert.equal(res.statusCode, 200);
      assert.match(res.headers['content-type'], /text\/event-stream/);
      const { how, text } = await streamOutcome(res, { timeoutMs: 8000 });
      assert.notEqual(how, 'still open', `${mode}: the gateway must not leave the client hanging`);
      assert.notEqual(how, 'end', `${mode}: a cut upstream stream must not look complete to the client`);
      assert.ok(text.startsWith(SSE_EVENT(1)), `${mode}: the complete first event arrives: ${JSON.stringify(text)}`);
    }
    // Control: the same stream, ended properly, ends cleanly.
    const { res } = await openStream(gw.port, '/up/sse-ok');
    const ok = await streamOutcome(res);
    assert.equal(ok.how, 'end');
    assert.equal(ok.text, SSE_EVENT(1) + SSE_EVENT(2));
    await waitFor(async () => metricValue((await getMetrics(gw)).samples, 'mcpgate_active_streams') === 0, {
      timeoutMs: 5000,
      what: 'mcpgate_active_streams to return to 0',
    });
  });

  it('a stream whose events come slower than upstream_timeout_ms is not cut by it (documented: the timeout ends at the head)', async () => {
    const { res } = await openStream(gw.port, '/up/sse-slow');
    const { how, text } = await streamOutcome(res, { timeoutMs: 8000 });
    assert.equal(how, 'end');
    assert.equal(text, SSE_EVENT(1) + SSE_EVENT(2) + SSE_EVENT(3));
  });

  it('an upstream that drops reused keep-alive connections unanswered: no request fails (curl retries on a fresh connection)', async () => {
    const before = { ...scripted.stats };
    const results = [];
    await load({ workers: 3, untilMs: 1500, maxEach: 40 }, async (w, i) => {
      results.push(await tryPost(`${gw.url}/up/keepalive`, toolCall('x', w * 1000 + i), { timeoutMs: 5000 }));
      await sleep(20);
    });
    assert.ok(scripted.stats.keepaliveDropped > before.keepaliveDropped, 'the gateway did reuse connections the upstream then dropped');
    const failed = results.filter((r) => r.status !== 200);
    assert.deepEqual(failed.map((r) => `${r.status} ${r.text}`), [], `${failed.length} of ${results.length} requests failed`);
    assert.ok(gw.proc.alive());
  });
});

// ===========================================================================
// 4 + 5. Redis killed / hung under load; the token endpoint failing during a refresh storm
// ===========================================================================
describe('token store and token endpoint faults (real redis-server, real oidc-provider for callers)', () => {
  const ADMIN = 'admin-token-faults-7c1d';
  let redis;
  let gw;
  let as;  // the downstream authorization server of the delegated credential (FaultyIdp tenant)
  const callers = {};
  const storeKey = (subject) => `mcpgate:tokens:user-api:${b64u(idp.issuer)}:${b64u(subject)}`;
  const call = (user, tool, id, timeoutMs = 15000) =>
    tryPost(`${gw.url}/user`, toolCall(tool, id), { headers: bearer(callers[user]), timeoutMs });
  const admin = (method, subject, body) =>
    fetch(`${gw.adminUrl}/admin/v1/credentials/user-api/subjects/${subject}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: body && JSON.stringify(body),
      signal: AbortSignal.timeout(10000),
    });
  const injected = (res) => res.json?.headers?.authorization;  // what the echo upstream received

  before(async () => {
    redis = await startRedis({ persist: true });
    as = fakeIdp.tenant('as');
    const dir = makeTempDir('itest-faults-store-');
    const keyFile = path.join(dir, 'store.key');
    fs.writeFileSync(keyFile, crypto.randomBytes(32).toString('base64'), { mode: 0o600 });
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    gw = await startGateway({
      port,
      server: { workers: WORKERS, public_url: base },
      admin: { token: ADMIN },
      routes: [
        {
          name: 'user',
          path: '/user',
          upstream: `${echo.origin}/mcp`,
          auth: { type: 'jwt', server: 'idp' },
          upstream_credential: 'user-api',
          tools: { 'public-time': { credential: 'none' } },
        },
      ],
      extraYaml: toYaml({
        authorization_servers: {
          idp: { issuer: idp.issuer },
          down: { issuer: as.issuer, client: { id: 'gw-web', secret: 'gw-web-secret-faults' } },
        },
        credentials: { 'user-api': { type: 'delegated', server: 'down', scopes: ['offline_access'], resource: 'https://api.example' } },
        token_store: { backend: 'redis', redis_url: redis.url, encryption_key_file: keyFile },
      }),
    });
    for (const user of ['alice', 'bob'])
      callers[user] = (await getTokenViaAuthCode({ issuer: idp.issuer, resource: `${base}/user`, scope: 'openid', user })).access_token;
  });
  after(async () => {
    try {
      if (redis?.pid) process.kill(redis.pid, 'SIGCONT');
    } catch {
      /* gone */
    }
    try {
      await gw?.stopCleanly();
    } finally {
      await redis?.stop();
    }
  });

  it('Redis SIGKILLed under load, then restarted: delegated calls answer 200 or 503 credential_unavailable (Retry-After, id), never hang; credential-free tools keep working; the gateway reconnects by itself; the stored tokens survive unchanged', async () => {
    assert.equal((await admin('PUT', 'alice', { access_token: 'alice-at-1', refresh_token: 'alice-rt-1', expires_in: 3600 })).status, 204);
    const sealed = await redis.command('GET', storeKey('alice'));
    assert.ok(sealed && !sealed.includes('alice-at-1'), 'stored sealed');
    assert.equal(injected(await call('alice', 'whoami', 1)), 'Bearer alice-at-1');

    const results = [];
    let killedAt = 0;
    let restartedAt = 0;
    const chaos = (async () => {
      await sleep(600);
      await redis.stop({ signal: 'SIGKILL' });
      killedAt = Date.now();
      await sleep(1500);
      await redis.start();
      restartedAt = Date.now();
    })();
    await load({ workers: 4, untilMs: 3500, maxEach: 200 }, async (w, i) => {
      const tool = i % 4 === 3 ? 'public-time' : 'whoami';
      const id = w * 10000 + i;
      const startedAt = Date.now();
      results.push({ tool, id, startedAt, res: await call('alice', tool, id, 10000) });
      await sleep(10);
    });
    await chaos;
    for (const { tool, id, res } of results) {
      assert.notEqual(res.status, 0, `${tool} ${id} was never answered: ${res.error}`);
      if (tool === 'public-time') {
        assert.equal(res.status, 200, `a tool without a credential needs no store: ${res.text}`);
        assert.equal(injected(res), undefined);
      } else if (res.status === 200) {
        assert.equal(injected(res), 'Bearer alice-at-1');
      } else {
        assertCredentialUnavailable(res, id);
      }
    }
    const during = results.filter((r) => r.tool === 'whoami' && r.startedAt > killedAt + 200 && r.startedAt < restartedAt - 200);
    assert.ok(during.length > 0, 'requests were made during the outage');
    assert.ok(during.every((r) => r.res.status === 503), 'and none of them got a token from nowhere');

    const back = await waitFor(
      async () => {
        const batch = await Promise.all(Array.from({ length: 6 }, (_, i) => call('alice', 'whoami', 900 + i)));
        return batch.every((r) => r.status === 200) && batch;
      },
      { timeoutMs: 10000, intervalMs: 250, what: 'delegated calls to work again after Redis was restarted' },
    );
    assert.ok(back.every((r) => injected(r) === 'Bearer alice-at-1'), 'the same stored token');
    assert.equal(await redis.command('GET', storeKey('alice')), sealed, 'the stored entry survived the kill unchanged');
    const meta = await admin('GET', 'alice');
    assert.equal(meta.status, 200);
    assert.equal((await meta.json()).has_refresh_token, true);
    const logs = gw.jsonLogs().map((l) => l.msg);
    assert.ok(logs.includes('token store: redis connection lost; reconnecting'), 'the outage is logged');
    assert.ok(logs.includes('token store: redis connection restored'), 'and the recovery');
  });

  it('Redis hung (SIGSTOP): calls needing the store answer 503 within the store timeout instead of hanging; after SIGCONT the gateway recovers', async () => {
    const sealed = await redis.command('GET', storeKey('alice'));
    process.kill(redis.pid, 'SIGSTOP');
    try {
      const t0 = Date.now();
      const [hung, open] = await Promise.all([call('alice', 'whoami', 21, 12000), call('alice', 'public-time', 22)]);
      assertCredentialUnavailable(hung, 21);
      assert.ok(Date.now() - t0 < 8000 * TIME_SCALE, `answered after ${Date.now() - t0} ms (liveness: the store timeout is 2 s)`);
      assert.equal(open.status, 200, open.text);
    } finally {
      process.kill(redis.pid, 'SIGCONT');
    }
    await waitFor(async () => (await call('alice', 'whoami', 23)).status === 200, {
      timeoutMs: 10000,
      intervalMs: 250,
      what: 'delegated calls to work again after SIGCONT',
    });
    assert.equal(await redis.command('GET', storeKey('alice')), sealed);
  });

  it('token endpoint failing during a refresh storm (slow HTML 500s, then a timeout, then garbage): one refresh per worker per storm, 503 with Retry-After for all, the stored refresh token neither lost nor overwritten; after recovery the original refresh token is redeemed once', async () => {
    assert.equal((await admin('PUT', 'bob', { access_token: 'bob-at-0', refresh_token: 'bob-rt-0', expires_in: 0 })).status, 204);
    const sealed = await redis.command('GET', storeKey('bob'));
    const refreshes = () => as.tokenRequests.filter((r) => r.grantType === 'refresh_token');
    const storm = async (n, idBase) => {
      const answers = await Promise.all(Array.from({ length: n }, (_, i) => call('bob', 'whoami', idBase + i, 20000)));
      answers.forEach((res, i) => {
        assert.notEqual(res.status, 0, `never answered: ${res.error}`);
        assertCredentialUnavailable(res, idBase + i);
      });
    };

    as.token = 'slow500';
    let seen = refreshes().length;
    await storm(30, 1000);
    const slow = refreshes().slice(seen);
    assert.ok(slow.length >= 1 && slow.length <= WORKERS, `30 concurrent calls, ${slow.length} refreshes (one per event loop at most)`);

    // A token endpoint that never answers: the first refresh times out (5 s); the endpoint then
    // answers 500 to the loop that tries next.
    as.token = 'hang';
    seen = refreshes().length;
    const hangStorm = storm(20, 2000);
    await waitFor(() => refreshes().length > seen, { timeoutMs: 5000, intervalMs: 20, what: 'the first refresh to arrive' });
    await sleep(300);
    as.token = 'html500';
    const t0 = Date.now();
    await hangStorm;
    assert.ok(Date.now() - t0 < (FETCH_TIMEOUT_MS + 7000) * TIME_SCALE, 'every caller answered within the fetch timeout (liveness)');
    const hung = refreshes().slice(seen);
    assert.ok(hung.length >= 1 && hung.length <= WORKERS, `${hung.length} refreshes during the timeout storm`);

    for (const [i, mode] of ['garbage200', 'noaccess200', 'html400', 'reset'].entries()) {
      as.token = mode;
      assertCredentialUnavailable(await call('bob', 'whoami', 3000 + i), 3000 + i);
    }
    assert.ok(refreshes().every((r) => r.refreshToken === 'bob-rt-0'), 'every failed attempt presented the one stored refresh token');
    assert.equal(await redis.command('GET', storeKey('bob')), sealed, 'no failure rewrote or deleted the stored entry');
    assert.equal((await redis.command('KEYS', 'mcpgate:lock:*')).length, 0, 'no refresh lock was left behind');
    const metrics = await fetch(`${gw.adminUrl}/metrics`, { headers: { authorization: `Bearer ${ADMIN}` } });
    const failed = metricValue(parseMetrics(await metrics.text()), 'mcpgate_credential_refreshes_total', { credential: 'user-api', outcome: 'failed' });
    assert.ok(failed >= 3, `failed refreshes counted: ${failed}`);

    as.token = 'ok';
    as.tokenAnswer = () => ({ access_token: 'bob-at-1', refresh_token: 'bob-rt-1', token_type: 'Bearer', expires_in: 3600 });
    seen = refreshes().length;
    const healed = await call('bob', 'whoami', 4000);
    assert.equal(healed.status, 200, healed.text);
    assert.equal(injected(healed), 'Bearer bob-at-1');
    assert.deepEqual(refreshes().slice(seen).map((r) => r.refreshToken), ['bob-rt-0'], 'the original refresh token, once');
    assert.notEqual(await redis.command('GET', storeKey('bob')), sealed, 'the renewal was stored');
    assert.equal(injected(await call('bob', 'whoami', 4001)), 'Bearer bob-at-1');
    assert.equal(refreshes().length, seen + 1, 'and is not renewed again');
  });
});

// ===========================================================================
// 6. SIGHUP while requests flow
// ===========================================================================
describe('SIGHUP under load (real server-everything and the 2026-07-28 server)', () => {
  let gw;
  before(async () => {
    gw = await startGateway({
      server: { workers: WORKERS },
      routes: [
        { name: 'everything', path: '/everything', upstream: everything.url },
        { name: 'modern', path: '/modern', upstream: modern.url },
      ],
    });
  });
  after(async () => {
    await gw?.stopCleanly();
  });

  it('20 reloads (half of them changing the config) while 4 clients call tools on keep-alive and fresh connections, with a GET stream open: every request succeeds, the stream survives', async () => {
    const url = `${gw.url}/everything`;
    const { sessionId } = await openRawSession(url);
    assert.ok(sessionId);
    const session = { 'mcp-session-id': sessionId, 'mcp-protocol-version': LEGACY_PROTOCOL_VERSION };
    const { res: stream } = await openStream(gw.port, '/everything', { headers: { ...session, accept: 'text/event-stream' } });
    assert.equal(stream.statusCode, 200);
    const streamEnd = streamOutcome(stream, { timeoutMs: 60000 });
    const reloadsBefore = metricValue((await getMetrics(gw)).samples, 'mcpgate_config_reloads_total', { result: 'success' });

    const results = [];
    let hups = 0;
    const hupper = (async () => {
      for (let i = 0; i < 20; i++) {
        await sleep(120);
        if (i % 2 === 0) {
          const cfg = structuredClone(gw.config);
          if (i % 4 === 0) cfg.routes.push({ name: 'extra', path: '/extra', upstream: `${echo.origin}/x`, transport: 'streamable_http', auth: { type: 'none' } });
          gw.writeConfig(cfg);
        }
        gw.kill('SIGHUP');
        hups += 1;
      }
    })();
    await load({ workers: 4, untilMs: 3000, maxEach: 300 }, async (w, i) => {
      const fresh = i % 3 === 0 ? { connection: 'close' } : {};
      if (w % 2 === 0) {
        const res = await tryPost(url, toolCall('echo', i, { message: `w${w}-${i}` }), { headers: { ...session, ...fresh } });
        results.push({ what: 'everything', res, ok: res.status === 200 && res.messages.find((m) => m.id === i)?.result?.content?.[0]?.text === `Echo: w${w}-${i}` });
      } else {
        const res = await tryPost(`${gw.url}/modern`, modernEcho(i, `w${w}-${i}`), { headers: { ...MODERN_HEADERS, ...fresh } });
        results.push({ what: 'modern', res, ok: res.status === 200 && echoed(res) === `Echo: w${w}-${i}` });
      }
    });
    await hupper;
    const failed = results.filter((r) => !r.ok);
    assert.deepEqual(failed.map((r) => `${r.what}: ${r.res.status} ${r.res.error ?? r.res.text.slice(0, 200)}`), [], `${failed.length} of ${results.length} failed`);
    assert.ok(results.length >= 40, `${results.length} requests made`);
    const reloads = await waitFor(
      async () => {
        const n = metricValue((await getMetrics(gw)).samples, 'mcpgate_config_reloads_total', { result: 'success' }) - reloadsBefore;
        return n >= 5 && n;
      },
      { timeoutMs: 5000, what: 'the reloads to be counted' },
    );
    assert.ok(reloads <= hups, `${reloads} reloads for ${hups} SIGHUPs (pending signals may merge)`);
    assert.equal(metricValue((await getMetrics(gw)).samples, 'mcpgate_config_reloads_total', { result: 'failure' }) ?? 0, 0);
    assert.equal(await raceTimeout(streamEnd, 100, 'open').then((r) => (r === 'open' ? 'open' : r.how)), 'open', 'the GET stream survived every reload');
    stream.destroy();
  });
});

// ===========================================================================
// 2. JWKS rotation mid-load (real oidc-provider)
// ===========================================================================
describe('JWKS rotation while requests flow (real oidc-provider, every request verified)', () => {
  const routeUrl = (x) => `${rotation.base}/modern-${x}`;
  const callWith = (x, token, id) => tryPost(routeUrl(x), modernEcho(id, `m${id}`), { headers: { ...MODERN_HEADERS, ...bearer(token) } });

  it('the signing key rotates (old key still published) under 4 clients: no 5xx, old tokens keep passing, new-key tokens pass from the first refetch on, one JWKS refetch', async () => {
    await sleep(Math.max(0, rotation.keysLoadedAt + 10_500 - Date.now()));
    const fetchesBefore = rotation.relay.fetches.a;
    let newToken = null;
    let firstNewOkAt = Infinity;
    const results = [];
    const rotate = (async () => {
      await sleep(500);
      const { kid } = await idp.rotateKeys({ keepOld: true });
      newToken = (await getTokenViaAuthCode({ issuer: idp.issuer, resource: routeUrl('a'), scope: 'openid' })).access_token;
      assert.equal(JSON.parse(Buffer.from(newToken.split('.')[0], 'base64url')).kid, kid, 'the new token is signed with the new key');
    })();
    let id = 0;
    await load({ workers: 4, untilMs: 3000, maxEach: 300 }, async (w, i) => {
      const useNew = newToken && i % 2 === 0;
      const startedAt = Date.now();
      const res = await callWith('a', useNew ? newToken : rotation.tokens.a, ++id);
      if (useNew && res.status === 200) firstNewOkAt = Math.min(firstNewOkAt, Date.now());
      results.push({ useNew, startedAt, res });
    });
    await rotate;
    const serverErrors = results.filter((r) => r.res.status === 0 || r.res.status >= 500);
    assert.deepEqual(serverErrors.map((r) => `${r.res.status} ${r.res.text}`), [], 'no 5xx storm');
    const old = results.filter((r) => !r.useNew);
    assert.ok(old.every((r) => r.res.status === 200 && echoed(r.res)?.startsWith('Echo: m')), 'every old-key request passed');
    const fresh = results.filter((r) => r.useNew);
    assert.ok(fresh.length >= 10, `${fresh.length} new-key requests made`);
    assert.ok(firstNewOkAt < Infinity, 'a new-key token was accepted');
    const refusedLater = fresh.filter((r) => r.res.status !== 200 && r.startedAt > firstNewOkAt);
    assert.equal(refusedLater.length, 0, `refused after the refetch: ${refusedLater.map((r) => r.res.text).join(' | ')}`);
    const refetches = rotation.relay.fetches.a - fetchesBefore;
    assert.ok(refetches >= 1 && refetches <= 2, `${refetches} JWKS fetches during the rotation`);
  });

  it('a withdrawn key (rotation without the old key): its tokens pass until the next refetch, then 401 invalid_token; new-key tokens pass; no 5xx', async () => {
    await idp.rotateKeys({ keepOld: false });
    const oldToken = rotation.tokens.b;
    const before = await callWith('b', oldToken, 1);
    assert.equal(before.status, 200, `route b has not refetched yet: the last good keys hold: ${before.text}`);
    const newToken = (await getTokenViaAuthCode({ issuer: idp.issuer, resource: routeUrl('b'), scope: 'openid' })).access_token;
    const fetchesBefore = rotation.relay.fetches.b;
    const accepted = await callWith('b', newToken, 2);
    assert.equal(accepted.status, 200, accepted.text);
    assert.equal(rotation.relay.fetches.b, fetchesBefore + 1, 'the new kid caused one refetch');
    const withdrawn = await callWith('b', oldToken, 3);
    assert.equal(withdrawn.status, 401, withdrawn.text);
    assert.equal(parseBearerChallenge(withdrawn.headers.get('www-authenticate')).error, 'invalid_token');
    assert.equal(withdrawn.json.id, 3);
  });
});

// ===========================================================================
// 7. SIGTERM while long-lived streams are open
// ===========================================================================
describe('SIGTERM during long-lived streams', () => {
  it('GET streams (server-everything, a never-ending ticker) end cleanly and at once, a streamed call within the grace completes, one beyond it is cut at the grace; /readyz is 503 meanwhile; exit 0 in bounded time', async () => {
    const GRACE_MS = 3000;
    const ticker = await startTickerUpstream({ intervalMs: 100, maxMs: 60000 });
    const gw = await startGateway({
      server: { workers: WORKERS, shutdown_grace_ms: GRACE_MS },
      routes: [
        { name: 'everything', path: '/everything', upstream: everything.url },
        { name: 'modern', path: '/modern', upstream: modern.url },
        { name: 'ticker', path: '/ticker', upstream: `${ticker.origin}/stream` },
      ],
    });
    try {
      const { sessionId } = await openRawSession(`${gw.url}/everything`);
      const session = { 'mcp-session-id': sessionId, 'mcp-protocol-version': LEGACY_PROTOCOL_VERSION };
      const getStreams = await Promise.all([
        openStream(gw.port, '/everything', { headers: { ...session, accept: 'text/event-stream' } }),
        openStream(gw.port, '/ticker/a'),
        openStream(gw.port, '/ticker/b'),
      ]);
      const slowCall = (id, durationMs) =>
        openStream(gw.port, '/modern', {
          method: 'POST',
          headers: { ...MODERN_HEADERS, 'mcp-name': 'slow-progress' },
          body: JSON.stringify({
            jsonrpc: '2.0',
            id,
            method: 'tools/call',
            params: { name: 'slow-progress', arguments: { durationMs, stepMs: 200 }, _meta: { ...MODERN_META, progressToken: `p${id}` } },
          }),
        });
      const [short, long] = await Promise.all([slowCall(1, 1500), slowCall(2, 20000)]);
      const outcomes = [...getStreams, short, long].map(({ res }) => {
        assert.equal(res.statusCode, 200);
        return streamOutcome(res, { timeoutMs: 15000 });
      });
      await sleep(400);  // every stream is flowing
      const t0 = Date.now();
      gw.kill('SIGTERM');
      const [everythingGet, tickA, tickB] = await Promise.all(outcomes.slice(0, 3));
      for (const [what, o] of [['server-everything GET', everythingGet], ['ticker a', tickA], ['ticker b', tickB]])
        assert.equal(o.how, 'end', `${what}: the final chunk is sent so the client reconnects`);
      assert.ok(Date.now() - t0 < GRACE_MS, 'GET streams are ended at once, not at the end of the grace');
      assert.ok(tickA.text.includes('tick 1'));
      assert.equal((await fetch(`${gw.adminUrl}/readyz`, { signal: AbortSignal.timeout(2000) })).status, 503, 'not ready while draining');

      const shortOutcome = await outcomes[3];
      assert.equal(shortOutcome.how, 'end');
      assert.match(shortOutcome.text, /slow-progress done/, 'the call within the grace completed');
      const longOutcome = await outcomes[4];
      assert.notEqual(longOutcome.how, 'end', 'a call beyond the grace is cut, and the cut shows');
      assert.match(longOutcome.text, /notifications\/progress/, 'it was streaming until then');
      const exit = await raceTimeout(gw.proc.exited, (GRACE_MS + 7000) * TIME_SCALE, 'timeout');
      assert.notEqual(exit, 'timeout', 'the gateway exits after the grace');
      assert.equal(exit.code, 0, JSON.stringify(exit));
      assert.ok(Date.now() - t0 >= GRACE_MS - 200, 'the long call had the whole grace');
      assert.equal(gw.sanitizerReport(), '');
      await waitFor(() => ticker.streams.length >= 2 && ticker.streams.every((s) => s.closedAt !== null), {
        timeoutMs: 3000,
        what: 'the upstream streams to be closed',
      });
      await assert.rejects(fetch(`${gw.url}/modern`, { signal: AbortSignal.timeout(2000) }), 'nothing serves after the exit');
    } finally {
      await gw.stop('SIGKILL');
      await ticker.close();
    }
  });
});
