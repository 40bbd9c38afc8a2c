// Client flows run with the REAL MCP TypeScript SDK clients:
//   * SDK 1.x  (@modelcontextprotocol/sdk@1.32.2, the 2025-11-25-era client)
//   * SDK 2.x  (@modelcontextprotocol/client@2.4.0, the 2026-07-28-era client)
// Each flow returns what a user would look at; the tests assert on it.
import assert from 'node:assert/strict';
import { Client as Client1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as StreamableHTTPClientTransport1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { SSEClientTransport as SSEClientTransport1 } from '@modelcontextprotocol/sdk/client/sse.js';
import { Client as Client2, StreamableHTTPClientTransport as StreamableHTTPClientTransport2 } from '@modelcontextprotocol/client';
import { recordingFetch } from './harness.mjs';

const CLIENT_INFO = { name: 'mcpgate-integration-test', version: '1.0.0' };

function textOf(result) {
  return (result?.content ?? [])
    .filter((c) => c.type === 'text')
    .map((c) => c.text)
    .join('\n');
}

/** Run one tool call with onprogress, recording arrival times. */
async function timedProgressCall(call) {
  const progress = [];
  const startedAt = Date.now();
  const result = await call((p) => progress.push({ at: Date.now(), progress: p.progress, total: p.total }));
  const resolvedAt = Date.now();
  return { startedAt, resolvedAt, progress, text: textOf(result) };
}

/**
 * SDK 1.x over Streamable HTTP against server-everything:
 * connect, listTools, echo, get-sum, trigger-long-running-operation, DELETE.
 */
export async function sdk1StreamableFlow(url, { fetchImpl = fetch, long = true, longDuration = 2, longSteps = 4 } = {}) {
  const rec = recordingFetch(fetchImpl);
  const client = new Client1(CLIENT_INFO, { capabilities: {} });
  const transport = new StreamableHTTPClientTransport1(new URL(url), { fetch: rec });
  const out = { records: rec.records };
  try {
    await client.connect(transport);
    out.sessionId = transport.sessionId;
    out.serverVersion = client.getServerVersion();
    out.protocolVersion = transport.protocolVersion;
    out.toolNames = (await client.listTools()).tools.map((t) => t.name);
    out.echoText = textOf(await client.callTool({ name: 'echo', arguments: { message: 'hello through mcpgate' } }));
    out.sumText = textOf(await client.callTool({ name: 'get-sum', arguments: { a: 19, b: 23 } }));
    if (long) {
      out.long = await timedProgressCall((onprogress) =>
        client.callTool(
          { name: 'trigger-long-running-operation', arguments: { duration: longDuration, steps: longSteps } },
          undefined,
          { onprogress, timeout: 30000 },
        ),
      );
    }
    await transport.terminateSession();
    out.terminatedSessionId = out.sessionId;
    out.sessionIdAfterTerminate = transport.sessionId;
  } finally {
    await client.close().catch(() => {});
  }
  return out;
}

/**
 * SDK 2.x over Streamable HTTP. versionNegotiation `auto` (probe with
 * server/discover, fall back to initialize) unless `pin` is given.
 * tools: {echo: name, long: {name, args}} describe what to call.
 */
export async function sdk2StreamableFlow(url, { fetchImpl = fetch, pin, long, sum = true } = {}) {
  const rec = recordingFetch(fetchImpl);
  const client = new Client2(CLIENT_INFO, {
    capabilities: {},
    versionNegotiation: { mode: pin ? { pin } : 'auto' },
  });
  const transport = new StreamableHTTPClientTransport2(new URL(url), { fetch: rec });
  const out = { records: rec.records };
  try {
    await client.connect(transport);
    out.negotiatedProtocolVersion = client.getNegotiatedProtocolVersion();
    out.sessionId = transport.sessionId;
    out.toolNames = (await client.listTools()).tools.map((t) => t.name);
    out.echoText = textOf(await client.callTool({ name: 'echo', arguments: { message: 'hello through mcpgate' } }));
    if (sum) out.sumText = textOf(await client.callTool({ name: 'get-sum', arguments: { a: 19, b: 23 } }));
    if (long) {
      out.long = await timedProgressCall((onprogress) =>
        client.callTool({ name: long.name, arguments: long.args }, { onprogress, timeout: 30000 }),
      );
    }
    if (transport.sessionId) {
      await transport.terminateSession();
      out.terminatedSessionId = out.sessionId;
    }
  } finally {
    await client.close().catch(() => {});
  }
  return out;
}

/** SDK 1.x legacy HTTP+SSE (2024-11-05) transport: connect, listTools, echo. */
export async function sdk1SseFlow(sseUrl, { fetchImpl = fetch } = {}) {
  const rec = recordingFetch(fetchImpl);
  const client = new Client1(CLIENT_INFO, { capabilities: {} });
  const transport = new SSEClientTransport1(new URL(sseUrl), { fetch: rec });
  const out = { records: rec.records };
  try {
    await client.connect(transport);
    out.serverVersion = client.getServerVersion();
    out.toolNames = (await client.listTools()).tools.map((t) => t.name);
    out.echoText = textOf(await client.callTool({ name: 'echo', arguments: { message: 'hello through mcpgate' } }));
    out.sumText = textOf(await client.callTool({ name: 'get-sum', arguments: { a: 19, b: 23 } }));
    // Legacy SSE: a result comes down the event stream, so it can arrive before the 202 that
    // acknowledges its POST; the records are complete once every response head is in.
    await rec.settled();
  } finally {
    await client.close().catch(() => {});
  }
  return out;
}

/** Assertions shared by every server-everything flow. */
export function assertEverythingBasics(out) {
  for (const t of ['echo', 'get-sum', 'trigger-long-running-operation']) {
    assert.ok(out.toolNames.includes(t), `tools/list should include ${t}; got ${out.toolNames.join(',')}`);
  }
  assert.equal(out.echoText, 'Echo: hello through mcpgate');
  assert.equal(out.sumText, 'The sum of 19 and 23 is 42.');
}

/**
 * The first progress notification must reach the client well before the call
 * resolves: a proxy that buffered the SSE response would deliver all of them
 * together with the result.
 */
export function assertProgressStreamed(long, { expectedCount, minLeadMs = 800 }) {
  assert.ok(long.progress.length > 0, 'no progress notification arrived');
  if (expectedCount !== undefined) assert.equal(long.progress.length, expectedCount, 'progress notification count');
  const first = long.progress[0];
  const lead = long.resolvedAt - first.at;
  assert.ok(
    lead >= minLeadMs,
    `first progress arrived only ${lead} ms before the call resolved (progress at +${first.at - long.startedAt} ms, resolved at +${long.resolvedAt - long.startedAt} ms); expected >= ${minLeadMs} ms`,
  );
  for (let i = 1; i < long.progress.length; i++) {
    assert.ok(long.progress[i].progress > long.progress[i - 1].progress, 'progress values must increase');
  }
}
