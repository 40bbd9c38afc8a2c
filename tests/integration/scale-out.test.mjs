// Scale-out with REAL parts: two instances of the npm
// @modelcontextprotocol/server-everything (2025-era, sessions in process memory)
// behind one route, two real 2026-07-28 stateless servers
// (tests/support/modern-server.mjs, the MCP SDK's own handler) behind others,
// and two gateway processes sharing one session_envelope key. No mocks.
//
// A 2025-era session lives in one server-everything process: a request that
// reaches the other one fails there with "session not found". So a session
// that keeps working while its requests alternate between gateways proves the
// envelope carried its endpoint.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import {
  LEGACY_PROTOCOL_VERSION,
  TIME_SCALE,
  getMetrics,
  makeTempDir,
  mcpPost,
  metricValue,
  openRawSession,
  startEverything,
  startGateway,
  startModernServer,
  waitFor,
} from '../support/harness.mjs';

const ENVELOPE = /^k1\.[A-Za-z0-9_-]+$/;
const UNREACHABLE = 'upstream endpoint unreachable; trying another';

const echoCall = (id, message = `m${id}`) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'echo', arguments: { message } } });
// 2026-07-28: every request carries its own envelope in params._meta (stateless).
const MODERN_META = Object.freeze({
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientInfo': { name: 'mcpgate-scale-out-test', version: '1.0.0' },
  'io.modelcontextprotocol/clientCapabilities': {},
});
const modernCall = (id, name, args) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args, _meta: MODERN_META } });
const modernHeaders = (name) => ({ 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': name });
const modernEcho = (url, id) => mcpPost(url, modernCall(id, 'echo', { message: `m${id}` }), { headers: modernHeaders('echo') });
const sessionHeaders = (id) => ({ 'mcp-session-id': id, 'mcp-protocol-version': LEGACY_PROTOCOL_VERSION });

describe('scale-out: several endpoints per route, sessions sealed in an envelope shared by two gateways', () => {
  let everything = [];
  let modern = [];
  let gwA;
  let gwB;
  let gwForeign; // another deployment: a different envelope key
  let keyDir;

  const routes = () => [
    { name: 'everything', path: '/everything', upstream: everything.map((e) => e.url) },
    { name: 'modern', path: '/modern', upstream: modern.map((m) => m.url) },
    { name: 'modern-lo', path: '/modern-lo', upstream: modern.map((m) => m.url), load_balancing: 'least_outstanding' },
  ];
  const envelopeYaml = (file) => `session_envelope:\n  key_file: ${file}\n  key_id: k1\n`;

  before(async () => {
    keyDir = makeTempDir('itest-envelope-');
    const shared = path.join(keyDir, 'session.key');
    const foreign = path.join(keyDir, 'foreign.key');
    fs.writeFileSync(shared, crypto.randomBytes(32).toString('base64') + '\n', { mode: 0o600 });
    fs.writeFileSync(foreign, crypto.randomBytes(32).toString('base64') + '\n', { mode: 0o600 });
    everything = await Promise.all([startEverything('streamableHttp'), startEverything('streamableHttp')]);
    modern = await Promise.all([startModernServer(), startModernServer()]);
    const started = await Promise.allSettled([
      startGateway({ routes: routes(), server: { workers: 2 }, extraYaml: envelopeYaml(shared) }),
      startGateway({ routes: routes(), server: { workers: 2 }, extraYaml: envelopeYaml(shared) }),
      startGateway({ routes: routes(), extraYaml: envelopeYaml(foreign) }),
    ]);
    [gwA, gwB, gwForeign] = started.map((r) => (r.status === 'fulfilled' ? r.value : undefined));
    const failed = started.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
  });
  after(async () => {
    try {
      await Promise.all([gwA?.stopCleanly(), gwB?.stopCleanly(), gwForeign?.stopCleanly()]);
    } finally {
      await Promise.all([...everything, ...modern].map((s) => s?.stop()));
      if (keyDir) fs.rmSync(keyDir, { recursive: true, force: true });
    }
  });

  const initializeEndpoints = (gw) =>
    gw.accessLogs().filter((l) => l.route === 'everything' && l.rpc_method === 'initialize').map((l) => l.endpoint);

  it('an SDK client session keeps working while its requests alternate between the two gateways', async () => {
    const gateways = [gwA, gwB];
    let turn = 0;
    const hits = [0, 0];
    // Every request of the client goes to the next gateway in turn.
    const alternating = (url, init) => {
      const i = turn++ % 2;
      hits[i] += 1;
      const target = new URL(url);
      target.port = String(gateways[i].port);
      return fetch(target, init);
    };
    const client = new Client({ name: 'scale-out-test', version: '1.0.0' }, { capabilities: {} });
    const transport = new StreamableHTTPClientTransport(new URL(`${gwA.url}/everything`), { fetch: alternating });
    try {
      await client.connect(transport);
      assert.match(transport.sessionId, ENVELOPE, 'the client holds an envelope, not the upstream session id');
      const tools = (await client.listTools()).tools.map((t) => t.name);
      assert.ok(tools.includes('echo'), `tools: ${tools}`);
      for (let i = 0; i < 6; i++) {
        const result = await client.callTool({ name: 'echo', arguments: { message: `hop ${i}` } });
        assert.equal(result.content[0].text, `Echo: hop ${i}`);
      }
      const sum = await client.callTool({ name: 'get-sum', arguments: { a: 19, b: 23 } });
      assert.match(sum.content[0].text, /42/);
      assert.ok(hits[0] >= 4 && hits[1] >= 4, `both gateways served the session: ${hits}`);
      await transport.terminateSession();
    } finally {
      await client.close().catch(() => {});
    }
    // Both gateways sent that session's requests to one endpoint.
    const sessionLines = [gwA, gwB].flatMap((g) => g.accessLogs().filter((l) => l.route === 'everything' && l.rpc_method === 'tools/call'));
    assert.ok(sessionLines.length >= 7, `tools/call lines: ${sessionLines.length}`);
    assert.equal(new Set(sessionLines.map((l) => l.endpoint)).size, 1, 'one endpoint for the whole session');
  });

  it('new sessions are spread round robin over the endpoints', async () => {
    const before = initializeEndpoints(gwB).length;
    const sessions = [];
    for (let i = 0; i < 4; i++) sessions.push(await openRawSession(`${gwB.url}/everything`));
    for (const s of sessions) assert.match(s.sessionId, ENVELOPE);
    const endpoints = initializeEndpoints(gwB).slice(before);
    assert.equal(endpoints.length, 4);
    const expected = everything.map((e) => e.url);
    assert.deepEqual(endpoints.filter((e) => e === expected[0]).length, 2, `endpoints: ${endpoints}`);
    assert.deepEqual(endpoints.filter((e) => e === expected[1]).length, 2, `endpoints: ${endpoints}`);
    // Each session answers on the other gateway too.
    for (const [i, s] of sessions.entries()) {
      const res = await mcpPost(`${gwA.url}/everything`, echoCall(100 + i), { headers: sessionHeaders(s.sessionId) });
      assert.equal(res.status, 200, res.text);
      assert.match(JSON.stringify(res.messages), new RegExp(`Echo: m${100 + i}`));
    }
  });

  it('a tampered, foreign or bare session id is an unknown session: 404 with a JSON-RPC error, nothing reaches an endpoint', async () => {
    const { sessionId } = await openRawSession(`${gwA.url}/everything`);
    const foreign = (await openRawSession(`${gwForeign.url}/everything`)).sessionId;
    const flipped = sessionId.slice(0, -2) + (sessionId.at(-2) === 'A' ? 'B' : 'A') + sessionId.at(-1);
    const linesBefore = gwA.accessLogs().length;
    for (const [what, id] of [
      ['tampered', flipped],
      ['foreign key', foreign],
      ['bare upstream-style id', crypto.randomUUID()],
      ['unknown key id', `k9.${sessionId.slice(3)}`],
    ]) {
      const res = await mcpPost(`${gwA.url}/everything`, echoCall(7), { headers: sessionHeaders(id) });
      assert.equal(res.status, 404, `${what}: ${res.text}`);
      assert.equal(res.json?.jsonrpc, '2.0', `${what}: JSON-RPC shaped`);
      assert.equal(res.json?.id, 7, `${what}: the id echoed`);
      assert.ok(res.json?.error, `${what}: an error`);
    }
    const lines = await waitFor(() => {
      const l = gwA.accessLogs().slice(linesBefore);
      return l.length >= 4 ? l : null;
    }, { what: 'the access lines of the refused requests' });
    for (const l of lines) {
      assert.equal(l.status, 404);
      assert.equal(l.upstream_status, 0, 'nothing was sent upstream');
      assert.equal(l.endpoint, undefined);
    }
    // The genuine envelope still works.
    const ok = await mcpPost(`${gwB.url}/everything`, echoCall(8), { headers: sessionHeaders(sessionId) });
    assert.equal(ok.status, 200, ok.text);
  });

  it('2026-07-28 stateless requests are balanced round robin over the endpoints', async () => {
    const before = await Promise.all(modern.map((m) => m.seen()));
    for (let i = 0; i < 10; i++) {
      const res = await modernEcho(`${gwA.url}/modern`, 200 + i);
      assert.equal(res.status, 200, res.text);
    }
    const after = await Promise.all(modern.map((m) => m.seen()));
    const calls = after.map((seen, i) => seen.slice(before[i].length).filter((r) => r.bodyMethod === 'tools/call').length);
    assert.deepEqual(calls, [5, 5], `calls per endpoint: ${calls}`);
  });

  it('least_outstanding: while one endpoint holds a long call, new requests go to the other', async () => {
    const before = await Promise.all(modern.map((m) => m.seen()));
    const long = mcpPost(
      `${gwA.url}/modern-lo`,
      modernCall(300, 'slow-progress', { durationMs: 2500 * TIME_SCALE, stepMs: 500 }),
      { headers: modernHeaders('slow-progress'), timeoutMs: 20000 * TIME_SCALE },
    );
    const busy = await waitFor(async () => {
      const seen = await Promise.all(modern.map((m) => m.seen()));
      const i = seen.findIndex((s, k) => s.slice(before[k].length).some((r) => r.mcpName === 'slow-progress'));
      return i >= 0 ? { index: i } : null;
    }, { what: 'the long call at an endpoint' });
    const mid = await Promise.all(modern.map((m) => m.seen()));
    for (let i = 0; i < 6; i++) {
      const res = await modernEcho(`${gwA.url}/modern-lo`, 310 + i);
      assert.equal(res.status, 200, res.text);
    }
    const after = await Promise.all(modern.map((m) => m.seen()));
    const echoes = after.map((seen, i) => seen.slice(mid[i].length).filter((r) => r.mcpName === 'echo').length);
    const other = 1 - busy.index;
    assert.equal(echoes[other], 6, `echo calls per endpoint while endpoint ${busy.index} was busy: ${echoes}`);
    assert.equal((await long).status, 200);
  });

  it('a stopped endpoint is skipped: new sessions land on the live one, its own sessions get 404, one warning per rest period', async () => {
    const orphan = await (async () => {
      // A session on the endpoint about to stop.
      for (let i = 0; i < 4; i++) {
        const s = await openRawSession(`${gwA.url}/everything`);
        if (initializeEndpoints(gwA).at(-1) === everything[1].url) return s.sessionId;
      }
      throw new Error('no session landed on the second endpoint');
    })();
    await everything[1].stop();
    const warningsBefore = gwA.jsonLogs().filter((l) => l.msg === UNREACHABLE).length;
    const before = initializeEndpoints(gwA).length;
    for (let i = 0; i < 6; i++) {
      const s = await openRawSession(`${gwA.url}/everything`);
      assert.match(s.sessionId ?? '', ENVELOPE, `session ${i} opened`);
      const res = await mcpPost(`${gwA.url}/everything`, echoCall(400 + i), { headers: sessionHeaders(s.sessionId) });
      assert.equal(res.status, 200, res.text);
    }
    const landed = initializeEndpoints(gwA).slice(before);
    assert.deepEqual(new Set(landed), new Set([everything[0].url]), `every new session on the live endpoint: ${landed}`);
    const warnings = gwA.jsonLogs().filter((l) => l.msg === UNREACHABLE).slice(warningsBefore);
    assert.equal(warnings.length, 1, 'the stopped endpoint was tried once, then left out');
    assert.equal(warnings[0].endpoint, everything[1].url);
    const lost = await mcpPost(`${gwA.url}/everything`, echoCall(9), { headers: sessionHeaders(orphan) });
    assert.equal(lost.status, 404, lost.text);
    assert.equal(lost.json?.id, 9);
    const { samples: metrics } = await getMetrics(gwA);
    const unreachable = (result) =>
      metricValue(metrics, 'mcpgate_upstream_unreachable_total', { route: 'everything', endpoint: everything[1].url, result });
    assert.equal(unreachable('retried'), 1, 'the new session that met the stopped endpoint went to the other one');
    assert.equal(unreachable('failed'), 1, 'the orphaned session could not be served');
  });
});
