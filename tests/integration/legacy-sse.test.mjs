// Legacy HTTP+SSE transport (protocol 2024-11-05) through a `transport: sse`
// route: real server-everything in `sse` mode, real SDK 1.x SSEClientTransport.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEverything, startGateway, parseSse, raceTimeout } from '../support/harness.mjs';
import { sdk1SseFlow } from '../support/mcp-flows.mjs';

function assertSseBasics(out) {
  for (const t of ['echo', 'get-sum']) assert.ok(out.toolNames.includes(t), `tools/list should include ${t}`);
  assert.equal(out.echoText, 'Echo: hello through mcpgate');
  assert.equal(out.sumText, 'The sum of 19 and 23 is 42.');
}

describe('baseline: SDK 1.x SSEClientTransport directly against server-everything (no gateway)', () => {
  let everything;
  before(async () => {
    everything = await startEverything('sse');
  });
  after(async () => {
    await everything?.stop();
  });
  it('connects, lists tools, calls echo', async () => {
    const out = await sdk1SseFlow(everything.url);
    assertSseBasics(out);
  });
});

describe('legacy SSE route through the gateway', () => {
  let everything;
  let gw;
  before(async () => {
    everything = await startEverything('sse');
    gw = await startGateway({
      routes: [{ name: 'legacy', path: '/legacy', upstream: everything.url, transport: 'sse' }],
    });
  });
  after(async () => {
    try {
      await gw?.stopCleanly();
    } finally {
      await everything?.stop();
    }
  });

  it('SDK 1.x SSEClientTransport connects through the gateway, lists tools and calls echo', async () => {
    const out = await sdk1SseFlow(`${gw.url}/legacy`);
    assertSseBasics(out);
    const get = out.records.find((r) => r.method === 'GET');
    assert.equal(get.url, `${gw.url}/legacy`);
    assert.equal(get.status, 200);
    assert.equal(get.responseHeaders['x-accel-buffering'], 'no');
    const posts = out.records.filter((r) => r.method === 'POST');
    assert.ok(posts.length >= 3, 'initialize, initialized, tools/list, tools/call were POSTed');
    for (const p of posts) {
      assert.ok(
        p.url.startsWith(`${gw.url}/legacy/message?sessionId=`),
        `client must POST to the gateway route, not the upstream: ${p.url}`,
      );
      assert.equal(p.status, 202, `legacy POST is acknowledged 202: ${p.url}`);
    }
  });

  it('raw: the endpoint event is rewritten to the gateway route path and that endpoint works', async () => {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), 15000);
    try {
      const res = await fetch(`${gw.url}/legacy`, { headers: { accept: 'text/event-stream' }, signal: ac.signal });
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
      const reader = res.body.getReader();
      const dec = new TextDecoder();
      let text = '';
      const deadline = Date.now() + 8000;
      for (let i = 0; i < 1000 && Date.now() < deadline && !/event: endpoint\r?\ndata: [^\r\n]*\r?\n\r?\n/.test(text); i++) {
        const r = await reader.read();
        if (r.done) break;
        text += dec.decode(r.value, { stream: true });
      }
      const endpoint = parseSse(text).find((e) => e.event === 'endpoint');
      assert.ok(endpoint, `no endpoint event received: ${text.slice(0, 300)}`);
      assert.match(endpoint.data, /^\/legacy\/message\?sessionId=[0-9a-f-]+$/, `endpoint event data: ${endpoint.data}`);

      // POST initialize to the rewritten endpoint: 202 on the POST, the
      // response arrives on the still-open SSE stream.
      const post = await fetch(new URL(endpoint.data, gw.url), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 7,
          method: 'initialize',
          params: { protocolVersion: '2024-11-05', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
        }),
        signal: AbortSignal.timeout(5000),
      });
      assert.equal(post.status, 202);
      await post.text();
      let more = '';
      for (let i = 0; i < 1000 && Date.now() < deadline + 5000 && !more.includes('"id":7'); i++) {
        const r = await raceTimeout(reader.read(), 5000, { done: true });
        if (r.done) break;
        more += dec.decode(r.value, { stream: true });
      }
      const msgs = parseSse(more)
        .filter((e) => e.event === 'message')
        .map((e) => JSON.parse(e.data));
      const initResult = msgs.find((m) => m.id === 7);
      assert.ok(initResult?.result?.serverInfo, `initialize result on the SSE stream: ${more.slice(0, 300)}`);
      reader.cancel().catch(() => {});
    } finally {
      clearTimeout(timer);
      ac.abort();
    }
  });
});
