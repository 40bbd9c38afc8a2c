// Streamable HTTP through mcpgate with REAL parts: the gateway binary, the npm
// @modelcontextprotocol/server-everything (2025-era, sessionful), a real
// 2026-07-28 stateless upstream built with @modelcontextprotocol/server, and
// both generations of the MCP TypeScript SDK client.
//
// Every flow first runs DIRECTLY against the upstream (baseline, no gateway),
// so a failure through the gateway cannot be blamed on the test itself.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startEverything,
  startModernServer,
  startGatewayOverRealUpstreams,
  mcpPost,
  openRawSession,
  readStreamUntil,
  parseSse,
  LEGACY_PROTOCOL_VERSION,
} from '../support/harness.mjs';
import {
  sdk1StreamableFlow,
  sdk2StreamableFlow,
  assertEverythingBasics,
  assertProgressStreamed,
} from '../support/mcp-flows.mjs';

const LONG = { duration: 2, steps: 4 }; // progress every 500 ms, resolves after ~2 s
const MODERN_LONG = { name: 'slow-progress', args: { durationMs: 2000, stepMs: 200 } };

function assertModernFlow(out) {
  assert.equal(out.negotiatedProtocolVersion, '2026-07-28', 'the 2.x client must negotiate 2026-07-28');
  assert.deepEqual([...out.toolNames].sort(), ['echo', 'slow-progress']);
  assert.equal(out.echoText, 'Echo: hello through mcpgate');
  assertProgressStreamed(out.long, { minLeadMs: 1000 });
  assert.match(out.long.text, /slow-progress done: 10 steps/);
}

describe('baseline: SDK clients directly against the upstreams (no gateway)', () => {
  let everything;
  let modern;
  before(async () => {
    [everything, modern] = await Promise.all([startEverything('streamableHttp'), startModernServer()]);
  });
  after(async () => {
    await Promise.all([everything?.stop(), modern?.stop()]);
  });

  it('SDK 1.x client works against server-everything', async () => {
    const out = await sdk1StreamableFlow(everything.url, { longDuration: LONG.duration, longSteps: LONG.steps });
    assert.ok(out.sessionId, 'server-everything hands out a session id');
    assertEverythingBasics(out);
    assertProgressStreamed(out.long, { expectedCount: LONG.steps, minLeadMs: 1000 });
  });

  it('SDK 2.x client works against server-everything (falls back to a 2025 revision)', async () => {
    const out = await sdk2StreamableFlow(everything.url, {
      long: { name: 'trigger-long-running-operation', args: LONG },
    });
    assert.equal(out.negotiatedProtocolVersion, LEGACY_PROTOCOL_VERSION);
    assertEverythingBasics(out);
    assertProgressStreamed(out.long, { expectedCount: LONG.steps, minLeadMs: 1000 });
  });

  it('SDK 2.x client negotiates 2026-07-28 with the modern upstream', async () => {
    const out = await sdk2StreamableFlow(modern.url, { pin: '2026-07-28', long: MODERN_LONG, sum: false });
    assertModernFlow(out);
  });
});

describe('Streamable HTTP through the gateway', () => {
  let setup;
  let modern;
  let gw;
  before(async () => {
    setup = await startGatewayOverRealUpstreams();
    ({ modern, gw } = setup);
  });
  after(() => setup?.stop());

  it('SDK 1.x client: session, listTools, echo, get-sum, streamed progress, DELETE', async () => {
    const url = `${gw.url}/everything`;
    const out = await sdk1StreamableFlow(url, { longDuration: LONG.duration, longSteps: LONG.steps });
    assertEverythingBasics(out);
    assertProgressStreamed(out.long, { expectedCount: LONG.steps, minLeadMs: 1000 });

    // Mcp-Session-Id was handed back through the gateway on the initialize response…
    const initRec = out.records.find((r) => r.method === 'POST' && r.status === 200);
    assert.ok(out.sessionId, 'client got a session id through the gateway');
    assert.equal(initRec.responseHeaders['mcp-session-id'], out.sessionId);
    // …and every later request carried it.
    const later = out.records.slice(1);
    assert.ok(later.length >= 4);
    for (const r of later) assert.equal(r.requestHeaders['mcp-session-id'], out.sessionId, `${r.method} ${r.url}`);

    // SSE responses are marked unbuffered.
    const sse = out.records.filter((r) => (r.responseHeaders?.['content-type'] ?? '').includes('text/event-stream'));
    assert.ok(sse.length >= 3, 'server-everything answers POSTs with SSE');
    for (const r of sse) assert.equal(r.responseHeaders['x-accel-buffering'], 'no', `${r.method} ${r.url}`);

    // DELETE went through and the upstream really ended the session.
    const del = out.records.find((r) => r.method === 'DELETE');
    assert.ok(del, 'terminateSession sent DELETE');
    assert.equal(del.status, 200);
    const after = await mcpPost(url, { jsonrpc: '2.0', id: 99, method: 'tools/list' }, {
      headers: { 'mcp-session-id': out.sessionId, 'mcp-protocol-version': LEGACY_PROTOCOL_VERSION },
    });
    assert.equal(after.status, 400, `old session must be gone upstream: ${after.text}`);
    assert.match(after.text, /No valid session/);
  });

  it('SDK 2.x client against server-everything through the gateway', async () => {
    const out = await sdk2StreamableFlow(`${gw.url}/everything`, {
      long: { name: 'trigger-long-running-operation', args: LONG },
    });
    // The server/discover probe is answered by the 2025-era upstream with an
    // error that the gateway must pass through unchanged, so the client falls back.
    assert.equal(out.negotiatedProtocolVersion, LEGACY_PROTOCOL_VERSION);
    assertEverythingBasics(out);
    assertProgressStreamed(out.long, { expectedCount: LONG.steps, minLeadMs: 1000 });
    assert.ok(out.records.some((r) => r.method === 'DELETE' && r.status === 200), 'DELETE session through the gateway');
  });

  it('SDK 2.x client speaks 2026-07-28 to the modern upstream through the gateway', async () => {
    const before = (await modern.seen()).length;
    const out = await sdk2StreamableFlow(`${gw.url}/modern`, { pin: '2026-07-28', long: MODERN_LONG, sum: false });
    assertModernFlow(out);

    const seen = (await modern.seen()).slice(before);
    assert.ok(seen.length >= 4, `upstream saw ${seen.length} requests`);
    for (const s of seen.filter((x) => x.method === 'POST')) {
      assert.equal(s.protocolVersion, '2026-07-28', `MCP-Protocol-Version seen upstream for ${s.bodyMethod}`);
      assert.equal(s.mcpMethod, s.bodyMethod, 'Mcp-Method header passed through and matches the body');
      assert.equal(s.url, '/mcp', 'route prefix /modern maps to upstream path /mcp');
    }
    assert.ok(
      seen.some((s) => s.mcpMethod === 'tools/call' && s.mcpName === 'echo'),
      'Mcp-Name: echo passed through for the echo call',
    );
    assert.ok(seen.some((s) => s.mcpMethod === 'server/discover'), 'server/discover probe reached the upstream');
  });

  it('GET SSE stream with Mcp-Session-Id opens through the gateway and delivers server messages live', async () => {
    const url = `${gw.url}/everything`;
    const { init, initialized, sessionId } = await openRawSession(url);
    assert.equal(init.status, 200);
    assert.ok(sessionId, 'initialize returned Mcp-Session-Id through the gateway');
    assert.equal(initialized.status, 202, 'notification POST answered 202 is passed through');

    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), 15000);
    try {
      const res = await fetch(url, {
        method: 'GET',
        headers: {
          accept: 'text/event-stream',
          'mcp-session-id': sessionId,
          'mcp-protocol-version': LEGACY_PROTOCOL_VERSION,
        },
        signal: ac.signal,
      });
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
      assert.equal(res.headers.get('x-accel-buffering'), 'no');

      // Ask the server for an unsolicited log message; it must arrive on the open GET stream.
      const toggle = await mcpPost(
        url,
        { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'toggle-simulated-logging', arguments: {} } },
        { headers: { 'mcp-session-id': sessionId, 'mcp-protocol-version': LEGACY_PROTOCOL_VERSION } },
      );
      assert.equal(toggle.status, 200);
      const text = await readStreamUntil(res, (t) => t.includes('notifications/message'), { timeoutMs: 8000 });
      const msgs = parseSse(text)
        .filter((e) => e.data)
        .map((e) => JSON.parse(e.data));
      assert.ok(
        msgs.some((m) => m.method === 'notifications/message'),
        `expected a notifications/message on the GET stream, got: ${text.slice(0, 500)}`,
      );
    } finally {
      clearTimeout(timer);
      ac.abort();
    }
  });
});
