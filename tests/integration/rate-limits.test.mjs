// Built-in rate limits (routes[].rate_limits[]) through the real gateway, with real parts: the
// real oidc-provider for the callers' JWTs (so every subject and client is one the gateway
// verified), the real 2026-07-28 MCP server (modern-server.mjs, the SDK's own handler; its
// /__seen log tells what reached the upstream), the real server-everything driven by the real
// SDK 1.x client, and a real redis-server for the buckets shared by two gateway processes.
//
// What a user of the feature checks: the call over the limit is a 429 with Retry-After and a
// JSON-RPC error carrying the request id, it never reaches the upstream, other callers and
// other tools are not held up, the bucket is one per process (not per worker thread) or one
// per Redis, a refused call costs no tokens, the counters on /metrics add up, `mcpgate check`
// names the wrong key, and a Redis outage lets calls through instead of failing them.
//
// Rates are chosen so that no token comes back during a test (3/min: one per 20 s) except
// where refill is the point (2/s: one per 500 ms).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import { CLIENTS, startOidcProvider } from '../support/oidc-provider.mjs';
import { getTokenViaAuthCode, getTokenViaClientCredentials } from '../support/oauth-client.mjs';
import { startRedis } from '../support/redis.mjs';
import {
  buildGatewayConfig,
  freePort,
  getMetrics,
  makeTempDir,
  mcpPost,
  metricValue,
  runGatewayCli,
  sleep,
  startEverything,
  startGateway,
  startModernServer,
  toYaml,
} from '../support/harness.mjs';

const MODERN = '2026-07-28';
const META = Object.freeze({
  'io.modelcontextprotocol/protocolVersion': MODERN,
  'io.modelcontextprotocol/clientInfo': { name: 'mcpgate-rate-limit-test', version: '1.0.0' },
  'io.modelcontextprotocol/clientCapabilities': {},
});
const METRIC = 'mcpgate_rate_limit_total';

// ---------------------------------------------------------------------------
// Requests as the SDK 2.x client sends them to a 2026-07-28 server (stateless: every POST
// carries its own envelope, so each one is independent).
// ---------------------------------------------------------------------------
function rpc(method, id, params = {}) {
  const body = { jsonrpc: '2.0', id, method, params: { ...params, _meta: META } };
  const headers = { 'mcp-protocol-version': MODERN, 'mcp-method': method };
  if (method === 'tools/call') headers['mcp-name'] = params.name;
  return { body, headers };
}
const echoCall = (id, message = `hello ${id}`) => rpc('tools/call', id, { name: 'echo', arguments: { message } });
const slowCall = (id) => rpc('tools/call', id, { name: 'slow-progress', arguments: { durationMs: 0, stepMs: 10 } });
const listCall = (id) => rpc('tools/list', id);

/** POST one prepared request to `url` as the holder of `token` (none: no Authorization). */
function send(url, token, { body, headers }) {
  return mcpPost(url, body, { headers: { ...headers, ...(token ? { authorization: `Bearer ${token}` } : {}) } });
}

/** The text of the tool result in a 200 answer (fails the test on anything else). */
function toolText(res) {
  assert.equal(res.status, 200, res.text);
  const msg = res.messages.find((m) => m.id !== undefined);
  assert.ok(msg?.result, `expected a tool result, got ${res.text}`);
  return (msg.result.content ?? []).map((c) => c.text).join('\n');
}

/**
 * The documented answer over the limit: 429, Retry-After in whole seconds in [1, maxRetryAfter],
 * a JSON-RPC error with the request's id naming the limit. Returns the Retry-After seconds.
 */
function assertLimited(res, { id, limit, maxRetryAfter }) {
  assert.equal(res.status, 429, `expected 429 from limit '${limit}', got ${res.status}: ${res.text}`);
  const retryAfter = res.headers.get('retry-after');
  assert.match(retryAfter ?? '', /^\d+$/, `Retry-After must be whole seconds, got ${JSON.stringify(retryAfter)}`);
  const seconds = Number(retryAfter);
  assert.ok(seconds >= 1 && seconds <= maxRetryAfter, `Retry-After ${seconds} s, expected 1..${maxRetryAfter}`);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
  assert.ok(res.json, `429 body is JSON: ${res.text}`);
  assert.equal(res.json.jsonrpc, '2.0');
  assert.deepEqual(res.json.id, id, 'the error echoes the request id');
  assert.equal(res.json.result, undefined);
  assert.equal(res.json.error?.code, -32000, res.text);
  assert.equal(res.json.error.message, `rate limit '${limit}' exceeded; retry after ${seconds} s`);
  assert.equal(res.json.error.data?.status, 429);
  assert.equal(res.json.error.data?.reason, 'rate_limited');
  return seconds;
}

/** tools/call messages of `tool` that reached the modern upstream so far. */
async function upstreamCalls(modern, tool) {
  return (await modern.seen()).filter((s) => s.method === 'POST' && s.bodyMethod === 'tools/call' && (!tool || s.mcpName === tool)).length;
}

/** `outcome` count of one limit on /metrics (0 when the series is absent). */
async function limitCount(gw, route, limit, outcome) {
  const { status, samples } = await getMetrics(gw);
  assert.equal(status, 200);
  return metricValue(samples, METRIC, { route, limit, outcome }) ?? 0;
}
async function limitCounts(gw, route, limit) {
  return {
    allowed: await limitCount(gw, route, limit, 'allowed'),
    limited: await limitCount(gw, route, limit, 'limited'),
    unavailable: await limitCount(gw, route, limit, 'unavailable'),
  };
}

/** A caller's JWT for the route at `resource` (test-public client, auth code flow, as `user`). */
async function userToken(idp, resource, user) {
  return (await getTokenViaAuthCode({ issuer: idp.issuer, resource, scope: 'openid read:notes', user })).access_token;
}

const idpSection = (idp) => toYaml({ authorization_servers: { idp: { issuer: idp.issuer } } });
const jwtAuth = { type: 'jwt', server: 'idp' };

/**
 * POST on a connection of its own (no keep-alive, no pooling), so that concurrent requests
 * are spread over the gateway's accepting worker threads. Resolves with {status, headers, json}.
 */
function postOnFreshConnection(url, { body, headers }, { timeoutMs = 10000 } = {}) {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: 'POST',
        agent: false,
        headers: {
          ...headers,
          connection: 'close',
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'content-length': Buffer.byteLength(payload),
        },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json;
          try {
            json = JSON.parse(text);
          } catch {
            /* SSE or empty */
          }
          resolve({ status: res.statusCode, headers: new Headers(res.headers), text, json });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url} within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}

// One provider and one upstream for the whole file.
let idp;
let modern;
before(async () => {
  [idp, modern] = await Promise.all([startOidcProvider(), startModernServer()]);
});
after(async () => {
  await Promise.all([idp?.stop(), modern?.stop()]);
});

describe('per-subject limit on one tool (buckets local to the process)', () => {
  let everything;
  let gw;
  let notesUrl;
  let everythingUrl;
  const tokens = {};
  // 3 calls of `echo` per caller, then one back every 20 s.
  const echoLimit = () => [{ per: 'subject', tool: 'echo', rate: '3/min', burst: 3 }];

  before(async () => {
    everything = await startEverything('streamableHttp');
    const port = await freePort();
    notesUrl = `http://127.0.0.1:${port}/notes`;
    everythingUrl = `http://127.0.0.1:${port}/everything`;
    gw = await startGateway({
      port,
      routes: [
        { name: 'notes', path: '/notes', upstream: modern.url, auth: jwtAuth, rate_limits: echoLimit() },
        { name: 'everything', path: '/everything', upstream: everything.url, auth: jwtAuth, rate_limits: echoLimit() },
      ],
      extraYaml: idpSection(idp),
    });
    for (const user of ['alice', 'bob', 'carol']) tokens[user] = await userToken(idp, notesUrl, user);
    tokens.dave = await userToken(idp, everythingUrl, 'dave');
  });

  after(async () => {
    try {
      await gw?.stopCleanly();
    } finally {
      await everything?.stop();
    }
  });

  it('the call after the burst is a 429 with Retry-After and the JSON-RPC error; it never reaches the upstream; other callers and other tools go on', async () => {
    for (let i = 1; i <= 3; i++) {
      assert.equal(toolText(await send(notesUrl, tokens.alice, echoCall(i, `call ${i}`))), `Echo: call ${i}`, `alice's echo #${i} is within the burst`);
    }
    const seenBefore = await upstreamCalls(modern, 'echo');
    const over = await send(notesUrl, tokens.alice, echoCall(4, 'one too many'));
    // 3/min: a token is back at most 20 s after the first of the three calls.
    assertLimited(over, { id: 4, limit: 'subject:echo', maxRetryAfter: 20 });
    assert.ok(!over.text.includes('Echo: one too many'), 'no tool result in the refusal');
    // A string id is echoed as it was sent.
    assertLimited(await send(notesUrl, tokens.alice, echoCall('req-five')), { id: 'req-five', limit: 'subject:echo', maxRetryAfter: 20 });
    assert.equal(await upstreamCalls(modern, 'echo'), seenBefore, 'the refused calls did not reach the upstream');

    // Another subject has a bucket of its own.
    assert.equal(toolText(await send(notesUrl, tokens.bob, echoCall(6, 'from bob'))), 'Echo: from bob');
    assert.equal(await upstreamCalls(modern, 'echo'), seenBefore + 1);

    // The limit is on `echo` only: alice can still list tools and call another tool.
    const list = await send(notesUrl, tokens.alice, listCall(7));
    assert.equal(list.status, 200, list.text);
    const names = list.messages.find((m) => m.id === 7)?.result?.tools?.map((t) => t.name) ?? [];
    assert.ok(names.includes('echo') && names.includes('slow-progress'), `tools/list: ${list.text}`);
    assert.match(toolText(await send(notesUrl, tokens.alice, slowCall(8))), /^slow-progress done/);
    // ...and echo is still refused for her.
    assertLimited(await send(notesUrl, tokens.alice, echoCall(9)), { id: 9, limit: 'subject:echo', maxRetryAfter: 20 });
  });

  it('/metrics counts the allowed and the limited calls of the limit, and nothing else', async () => {
    const before = await limitCounts(gw, 'notes', 'subject:echo');
    for (let i = 1; i <= 3; i++) toolText(await send(notesUrl, tokens.carol, echoCall(100 + i)));
    for (let i = 4; i <= 5; i++) {
      assertLimited(await send(notesUrl, tokens.carol, echoCall(100 + i)), { id: 100 + i, limit: 'subject:echo', maxRetryAfter: 20 });
    }
    // Messages the limit does not apply to are not counted under it.
    assert.equal((await send(notesUrl, tokens.carol, listCall(110))).status, 200);
    toolText(await send(notesUrl, tokens.carol, slowCall(111)));
    const after = await limitCounts(gw, 'notes', 'subject:echo');
    assert.equal(after.allowed - before.allowed, 3, `allowed: ${before.allowed} -> ${after.allowed}`);
    assert.equal(after.limited - before.limited, 2, `limited: ${before.limited} -> ${after.limited}`);
    assert.equal(after.unavailable, 0, 'no Redis configured: nothing is "unavailable"');
    // The same limit on the other route is its own series.
    const other = await limitCounts(gw, 'everything', 'subject:echo');
    assert.equal(other.limited, 0, 'route="everything" saw no refusal yet');
  });

  it('a real SDK client sees the 429 on the call over the limit and goes on with the same session', async () => {
    const client = new Client({ name: 'mcpgate-rate-limit-test', version: '1.0.0' }, { capabilities: {} });
    const transport = new StreamableHTTPClientTransport(new URL(everythingUrl), {
      requestInit: { headers: { authorization: `Bearer ${tokens.dave}` } },
    });
    try {
      // initialize, notifications/initialized and tools/list do not count against an `echo` limit.
      await client.connect(transport);
      const tools = (await client.listTools()).tools.map((t) => t.name);
      assert.ok(tools.includes('echo') && tools.includes('get-sum'), tools.join(','));
      for (let i = 1; i <= 3; i++) {
        const r = await client.callTool({ name: 'echo', arguments: { message: `sdk ${i}` } });
        assert.equal(r.content[0].text, `Echo: sdk ${i}`);
      }
      await assert.rejects(
        client.callTool({ name: 'echo', arguments: { message: 'sdk 4' } }),
        (err) => {
          assert.equal(err.code, 429, `StreamableHTTPError code: ${err.message}`);
          assert.match(err.message, /rate limit 'subject:echo' exceeded; retry after \d+ s/);
          return true;
        },
      );
      const sum = await client.callTool({ name: 'get-sum', arguments: { a: 19, b: 23 } });
      assert.equal(sum.content[0].text, 'The sum of 19 and 23 is 42.', 'other tools work on the same session');
      assert.equal((await limitCounts(gw, 'everything', 'subject:echo')).limited, 1);
    } finally {
      await client.close().catch(() => {});
    }
  });
});

describe('per client_id, per tool, and several limits on one request', () => {
  let gw;
  let base;
  const tokens = {};

  before(async () => {
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    gw = await startGateway({
      port,
      routes: [
        // No `tool:`: every POSTed message counts, tools/list included.
        { name: 'by-client', path: '/by-client', upstream: modern.url, auth: jwtAuth, rate_limits: [{ per: 'client_id', rate: '2/min', name: 'per-client' }] },
        // per: tool gives a bucket of its own only to tools the route names (here both); any other
        // name a client sends shares one bucket, so made-up names cannot grow the bucket set.
        {
          name: 'by-tool',
          path: '/by-tool',
          upstream: modern.url,
          auth: jwtAuth,
          tools: { echo: { scopes: [] }, 'slow-progress': { scopes: [] } },
          rate_limits: [{ per: 'tool', rate: '2/min' }],
        },
        {
          name: 'combined',
          path: '/combined',
          upstream: modern.url,
          auth: jwtAuth,
          rate_limits: [
            { per: 'route', tool: 'echo', rate: '3/min', name: 'echo-all' },
            { per: 'subject', tool: 'echo', rate: '2/min', name: 'echo-each' },
          ],
        },
      ],
      extraYaml: idpSection(idp),
    });
    for (const route of ['by-client', 'by-tool', 'combined']) {
      for (const user of ['alice', 'bob']) tokens[`${user}@${route}`] = await userToken(idp, `${base}/${route}`, user);
    }
    tokens['svc@by-client'] = (
      await getTokenViaClientCredentials({ issuer: idp.issuer, clientId: 'svc', clientSecret: CLIENTS.svc.clientSecret, resource: `${base}/by-client`, scope: 'read:notes' })
    ).access_token;
  });

  after(async () => {
    await gw?.stopCleanly();
  });

  it('per client_id: two users of one OAuth client share its bucket; another client has its own', async () => {
    const url = `${base}/by-client`;
    // alice and bob both signed in through the `test-public` client.
    toolText(await send(url, tokens['alice@by-client'], echoCall(1)));
    assert.equal((await send(url, tokens['bob@by-client'], listCall(2))).status, 200, 'tools/list counts too');
    assertLimited(await send(url, tokens['alice@by-client'], echoCall(3)), { id: 3, limit: 'per-client', maxRetryAfter: 30 });
    assertLimited(await send(url, tokens['bob@by-client'], slowCall(4)), { id: 4, limit: 'per-client', maxRetryAfter: 30 });
    // `svc` (client credentials) is another client.
    toolText(await send(url, tokens['svc@by-client'], echoCall(5)));
    const counts = await limitCounts(gw, 'by-client', 'per-client');
    assert.deepEqual([counts.allowed, counts.limited], [3, 2], 'the metric label is the configured name');
  });

  it('per tool: one bucket per tool name for all callers; other tools and tools/list are not held up', async () => {
    const url = `${base}/by-tool`;
    toolText(await send(url, tokens['alice@by-tool'], echoCall(1)));
    toolText(await send(url, tokens['bob@by-tool'], echoCall(2)));
    assertLimited(await send(url, tokens['alice@by-tool'], echoCall(3)), { id: 3, limit: 'tool', maxRetryAfter: 30 });
    assertLimited(await send(url, tokens['bob@by-tool'], echoCall(4)), { id: 4, limit: 'tool', maxRetryAfter: 30 });
    // slow-progress has a bucket of its own; tools/list is no tools/call and never counts.
    toolText(await send(url, tokens['bob@by-tool'], slowCall(5)));
    for (let i = 0; i < 3; i++) assert.equal((await send(url, tokens['alice@by-tool'], listCall(6 + i))).status, 200);
    toolText(await send(url, tokens['alice@by-tool'], slowCall(9)));
    assertLimited(await send(url, tokens['alice@by-tool'], slowCall(10)), { id: 10, limit: 'tool', maxRetryAfter: 30 });
    // Names the route does not know share one bucket: two made-up names use it up together.
    const madeUp = (id, name) => rpc('tools/call', id, { name, arguments: {} });
    assert.notEqual((await send(url, tokens['alice@by-tool'], madeUp(11, 'no-such-tool-1'))).status, 429);
    assert.notEqual((await send(url, tokens['bob@by-tool'], madeUp(12, 'no-such-tool-2'))).status, 429);
    assertLimited(await send(url, tokens['alice@by-tool'], madeUp(13, 'no-such-tool-3')), { id: 13, limit: 'tool', maxRetryAfter: 30 });
  });

  it('several limits: every one must have a token, and a refused call takes none from any of them', async () => {
    const url = `${base}/combined`;
    const seenBefore = await upstreamCalls(modern, 'echo');
    toolText(await send(url, tokens['alice@combined'], echoCall(1)));
    toolText(await send(url, tokens['alice@combined'], echoCall(2)));
    // alice's own bucket is empty; the route's still holds one.
    assertLimited(await send(url, tokens['alice@combined'], echoCall(3)), { id: 3, limit: 'echo-each', maxRetryAfter: 30 });
    // Had the refusal above taken the route's last token, bob would be refused by echo-all here.
    toolText(await send(url, tokens['bob@combined'], echoCall(4)));
    // bob's own bucket still holds one, but the route's is empty now.
    assertLimited(await send(url, tokens['bob@combined'], echoCall(5)), { id: 5, limit: 'echo-all', maxRetryAfter: 20 });
    assert.equal(await upstreamCalls(modern, 'echo'), seenBefore + 3, 'exactly the three allowed calls reached the upstream');
    const all = await limitCounts(gw, 'combined', 'echo-all');
    const each = await limitCounts(gw, 'combined', 'echo-each');
    assert.equal(all.limited, 1, JSON.stringify(all));
    assert.equal(each.limited, 1, JSON.stringify(each));
  });
});

describe('per-route limit: one bucket for all worker threads; refill', () => {
  let gw;
  let base;

  before(async () => {
    gw = await startGateway({
      server: { workers: 4 },
      routes: [
        // burst defaults to the rate's count: 5.
        { name: 'shared', path: '/shared', upstream: modern.url, rate_limits: [{ per: 'route', rate: '5/min', name: 'whole-route' }] },
        { name: 'fast', path: '/fast', upstream: modern.url, rate_limits: [{ per: 'route', rate: '2/second' }] },
      ],
    });
    base = gw.url;
  });

  after(async () => {
    await gw?.stopCleanly();
  });

  it('7 concurrent requests on fresh connections over 4 workers: exactly the 5 of the default burst pass', async () => {
    const url = `${base}/shared`;
    const postsBefore = (await modern.seen()).filter((s) => s.method === 'POST').length;
    const answers = await Promise.all(Array.from({ length: 7 }, (_, i) => postOnFreshConnection(url, listCall(i + 1))));
    const ok = answers.filter((a) => a.status === 200);
    const refused = answers.filter((a) => a.status === 429);
    assert.equal(ok.length, 5, `statuses: ${answers.map((a) => a.status).join(',')}`);
    assert.equal(refused.length, 2, `statuses: ${answers.map((a) => a.status).join(',')}`);
    for (const a of refused) {
      const id = answers.indexOf(a) + 1;
      assertLimited({ ...a, messages: [a.json] }, { id, limit: 'whole-route', maxRetryAfter: 12 });
    }
    const postsAfter = (await modern.seen()).filter((s) => s.method === 'POST').length;
    assert.equal(postsAfter - postsBefore, 5, 'only the allowed requests reached the upstream');
    const counts = await limitCounts(gw, 'shared', 'whole-route');
    assert.deepEqual([counts.allowed, counts.limited], [5, 2]);

    // GET (stream) and DELETE (session end) do not count: they are not refused on an empty bucket.
    const get = await fetch(url, { headers: { accept: 'text/event-stream', 'mcp-protocol-version': MODERN }, signal: AbortSignal.timeout(5000) });
    await get.body?.cancel();
    assert.notEqual(get.status, 429, 'GET is not rate limited');
    const del = await fetch(url, { method: 'DELETE', headers: { 'mcp-protocol-version': MODERN }, signal: AbortSignal.timeout(5000) });
    await del.arrayBuffer();
    assert.notEqual(del.status, 429, 'DELETE is not rate limited');
    // And a notification on the empty bucket is refused like any other POSTed message.
    const note = await mcpPost(url, { jsonrpc: '2.0', method: 'notifications/initialized' }, { headers: { 'mcp-protocol-version': MODERN } });
    assert.equal(note.status, 429, `a notification counts too: ${note.text}`);
    assert.equal((await limitCounts(gw, 'shared', 'whole-route')).limited, 3);
  });

  it('2/s: the third request is refused with Retry-After: 1, and after that second a request passes again', async () => {
    const url = `${base}/fast`;
    assert.equal((await send(url, null, listCall(1))).status, 200);
    assert.equal((await send(url, null, listCall(2))).status, 200);
    const retryAfter = assertLimited(await send(url, null, listCall(3)), { id: 3, limit: 'route', maxRetryAfter: 1 });
    await sleep(retryAfter * 1000 + 250);
    const again = await send(url, null, listCall(4));
    assert.equal(again.status, 200, `a token is back after Retry-After: ${again.text}`);
  });
});

describe('mcpgate check: rate limit errors name the key', () => {
  let dir;
  before(() => {
    dir = makeTempDir('itest-rl-check-');
  });

  /** A config whose routes[0] is `route` (auth none unless given); returns {file, text}. */
  function writeConfig(name, route, { extra = '' } = {}) {
    const cfg = buildGatewayConfig({
      port: 18080,
      adminPort: 18081,
      routes: [{ name: 'notes', path: '/notes', upstream: 'http://127.0.0.1:3001/mcp', ...route }],
    });
    const text = toYaml(cfg) + extra;
    const file = path.join(dir, name);
    fs.writeFileSync(file, text);
    return { file, text };
  }

  /** Runs check; asserts exit 1 and "<file>:<line>:<col>: <message>"; returns {line, message}. */
  function checkFails(file) {
    const r = runGatewayCli(['check', '--config', file]);
    assert.equal(r.status, 1, `expected exit 1\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    const escaped = file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const m = new RegExp(`${escaped}:(\\d+):(\\d+): (.+)`).exec(r.stderr);
    assert.ok(m, `expected "${file}:<line>:<col>: <message>" on stderr, got: ${r.stderr}`);
    return { line: Number(m[1]), message: m[3], stderr: r.stderr };
  }

  /** 1-based numbers of the lines of `text` that contain `needle`. */
  const linesWith = (text, needle) =>
    text
      .split('\n')
      .map((l, i) => (l.includes(needle) ? i + 1 : 0))
      .filter(Boolean);

  it('a config using every rate unit, default burst and every `per` is accepted (exit 0)', () => {
    const units = ['s', 'sec', 'second', 'm', 'min', 'minute', 'h', 'hour'];
    const { file } = writeConfig(
      'good.yaml',
      {
        auth: jwtAuth,
        rate_limits: [
          ...units.map((u, i) => ({ per: 'route', rate: `${i + 1}/${u}`, name: `unit-${u}` })),
          { per: 'subject', tool: 'echo', rate: '3/min', burst: 3 },
          { per: 'client_id', rate: '10/min', name: 'per-client' },
          { per: 'tool', rate: '5/min' },
        ],
      },
      { extra: idpSection(idp) },
    );
    const r = runGatewayCli(['check', '--config', file]);
    assert.equal(r.status, 0, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
    assert.match(r.stdout + r.stderr, /config OK/);
  });

  for (const bad of ['10/fortnight', '10', 'ten/min', '/min']) {
    it(`rate "${bad}" -> exit 1 naming "rate", pointing at it`, () => {
      const { file, text } = writeConfig(`rate-${bad.replace(/\W/g, '_')}.yaml`, { rate_limits: [{ per: 'route', rate: bad }] });
      const { line, message } = checkFails(file);
      assert.match(message, /\brate\b/, message);
      const [rateLine] = linesWith(text, `rate: ${JSON.stringify(bad)}`);
      assert.ok(line >= rateLine - 1 && line <= rateLine, `error at line ${line}, the entry is at lines ${rateLine - 1}-${rateLine}`);
    });
  }

  for (const burst of [0, -1]) {
    it(`burst ${burst} -> exit 1 naming "burst"`, () => {
      const { file, text } = writeConfig(`burst${burst}.yaml`, { rate_limits: [{ per: 'route', rate: '5/min', burst }] });
      const { line, message } = checkFails(file);
      assert.match(message, /\bburst\b/, message);
      const [burstLine] = linesWith(text, `burst: ${burst}`);
      assert.ok(line >= burstLine - 2 && line <= burstLine, `error at line ${line}, the entry is at lines ${burstLine - 2}-${burstLine}`);
    });
  }

  for (const per of ['subject', 'client_id']) {
    it(`per ${per} on a route with auth none -> exit 1: needs an auth type that identifies the caller`, () => {
      const { file } = writeConfig(`per-${per}-none.yaml`, { auth: { type: 'none' }, rate_limits: [{ per, rate: '5/min' }] });
      const { message } = checkFails(file);
      assert.match(message, /needs an auth type that identifies the caller/, message);
      assert.match(message, new RegExp(`\\bper\\b|${per}`), message);
    });
  }

  it('an unknown `per` -> exit 1 naming "per"', () => {
    const { file } = writeConfig('per-ip.yaml', { rate_limits: [{ per: 'ip', rate: '5/min' }] });
    const { message } = checkFails(file);
    assert.match(message, /\bper\b/, message);
  });

  it('two limits with the same name on a route -> exit 1 naming "name"', () => {
    const { file, text } = writeConfig('dup-names.yaml', {
      rate_limits: [
        { per: 'route', rate: '5/min', name: 'same' },
        { per: 'tool', rate: '5/min', name: 'same' },
      ],
    });
    const { line, message } = checkFails(file);
    assert.match(message, /\bname\b/, message);
    assert.match(message, /same/, message);
    const [, second] = linesWith(text, 'name: "same"');
    assert.ok(line >= second - 2 && line <= second, `error at line ${line}, the second entry is at lines ${second - 2}-${second}`);
  });

  it('two limits that default to the same name -> exit 1 (name "subject" twice)', () => {
    const { file } = writeConfig(
      'dup-default-names.yaml',
      { auth: jwtAuth, rate_limits: [{ per: 'subject', rate: '5/min' }, { per: 'subject', rate: '50/hour' }] },
      { extra: idpSection(idp) },
    );
    const { message } = checkFails(file);
    assert.match(message, /\bname\b/, message);
    assert.match(message, /subject/, message);
  });
});

describe('buckets shared by two gateway processes through Redis', () => {
  let redis;
  let A;
  let B;
  let publicUrl;
  const tokens = {};
  const PREFIX = 'mcpgate:ratelimit:notes:subject:echo:';

  const evalCalls = async () => {
    const info = await redis.command('INFO', 'commandstats');
    let n = 0;
    for (const m of info.matchAll(/^cmdstat_(eval|evalsha|eval_ro|evalsha_ro|fcall|fcall_ro):calls=(\d+)/gm)) n += Number(m[2]);
    return n;
  };

  before(async () => {
    redis = await startRedis();
    const dir = makeTempDir('itest-rl-redis-');
    const keyFile = path.join(dir, 'store.key');
    fs.writeFileSync(keyFile, `${crypto.randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
    const [portA, portB] = [await freePort(), await freePort()];
    // Two replicas of one deployment: same public URL (so one token is good for both), same Redis.
    publicUrl = `http://127.0.0.1:${portA}`;
    const gateway = (port) =>
      startGateway({
        port,
        server: { public_url: publicUrl },
        routes: [
          { name: 'notes', path: '/notes', upstream: modern.url, auth: jwtAuth, rate_limits: [{ per: 'subject', tool: 'echo', rate: '3/min', burst: 3 }] },
        ],
        extraYaml:
          idpSection(idp) +
          toYaml({ token_store: { backend: 'redis', redis_url: `redis://127.0.0.1:${redis.port}`, encryption_key_file: keyFile } }),
      });
    [A, B] = await Promise.all([gateway(portA), gateway(portB)]);
    for (const user of ['alice', 'bob']) tokens[user] = await userToken(idp, `${publicUrl}/notes`, user);
  });

  after(async () => {
    try {
      const results = await Promise.allSettled([A, B].filter((gw) => gw?.proc.alive()).map((gw) => gw.stopCleanly()));
      const failed = results.find((r) => r.status === 'rejected');
      if (failed) throw failed.reason;
    } finally {
      await redis?.stop();
    }
  });

  const urlOf = (gw) => `${gw.url}/notes`;

  it('the burst is split across both processes; then the next call on either is 429; the buckets are Redis keys under the documented prefix', async () => {
    const evalsBefore = await evalCalls();
    toolText(await send(urlOf(A), tokens.alice, echoCall(1)));
    toolText(await send(urlOf(B), tokens.alice, echoCall(2)));
    toolText(await send(urlOf(A), tokens.alice, echoCall(3)));
    assertLimited(await send(urlOf(B), tokens.alice, echoCall(4)), { id: 4, limit: 'subject:echo', maxRetryAfter: 20 });
    assertLimited(await send(urlOf(A), tokens.alice, echoCall(5)), { id: 5, limit: 'subject:echo', maxRetryAfter: 20 });
    // bob's bucket is another key.
    toolText(await send(urlOf(B), tokens.bob, echoCall(6)));
    // Messages the limit does not apply to do not touch Redis.
    assert.equal((await send(urlOf(A), tokens.alice, listCall(7))).status, 200);

    const keys = await redis.command('KEYS', `${PREFIX}*`);
    assert.equal(keys.length, 2, `one bucket key per caller (alice, bob): ${JSON.stringify(keys)} (all keys: ${JSON.stringify(await redis.command('KEYS', '*'))})`);
    assert.equal(await evalCalls() - evalsBefore, 6, 'one EVAL round trip per counted request (6 echo calls)');

    const [a, b] = [await limitCounts(A, 'notes', 'subject:echo'), await limitCounts(B, 'notes', 'subject:echo')];
    assert.deepEqual([a.allowed, a.limited, b.allowed, b.limited], [2, 1, 2, 1], `A ${JSON.stringify(a)} B ${JSON.stringify(b)}`);
  });

  it('Redis down: calls are let through (not 429, not 503) and counted as outcome="unavailable"', async () => {
    const [a0, b0] = [await limitCounts(A, 'notes', 'subject:echo'), await limitCounts(B, 'notes', 'subject:echo')];
    await redis.stop();
    // alice is over her limit, but with no Redis to ask the gateway fails open.
    assert.equal(toolText(await send(urlOf(A), tokens.alice, echoCall(10, 'redis is down'))), 'Echo: redis is down');
    assert.equal(toolText(await send(urlOf(A), tokens.alice, echoCall(11, 'still down'))), 'Echo: still down');
    assert.equal(toolText(await send(urlOf(B), tokens.bob, echoCall(12, 'bob too'))), 'Echo: bob too');
    const [a1, b1] = [await limitCounts(A, 'notes', 'subject:echo'), await limitCounts(B, 'notes', 'subject:echo')];
    assert.equal(a1.unavailable - a0.unavailable, 2, `A: ${JSON.stringify(a0)} -> ${JSON.stringify(a1)}`);
    assert.equal(b1.unavailable - b0.unavailable, 1, `B: ${JSON.stringify(b0)} -> ${JSON.stringify(b1)}`);
    assert.equal(a1.limited, a0.limited, 'nothing was refused');
    assert.equal(a1.allowed, a0.allowed, 'a let-through without Redis is not counted as allowed');
  });
});
