// A REAL MCP server built with @modelcontextprotocol/server@2.4.0 that serves the
// 2026-07-28 protocol revision statelessly over Streamable HTTP.
//
// It is not a mock: every MCP message is handled by the SDK's own
// createMcpHandler(). The only test-specific additions are
//   * it binds to 127.0.0.1 only (PORT from env or argv[2], 0 = ephemeral),
//   * it records the MCP-relevant request headers it saw and exposes them on
//     GET /__seen (a JSON array) so a test can assert what passed through the
//     gateway, and prints one line `LISTENING <port>` on stdout when ready.
//
// Tools:
//   echo            {message}            -> "Echo: <message>"
//   slow-progress   {durationMs, stepMs} -> sends notifications/progress every
//                                           stepMs until durationMs elapsed
//                                           (defaults 2000 / 200), then returns.
//
// Usage: node tests/support/modern-server.mjs [port]
import http from 'node:http';
import { McpServer, createMcpHandler, fromJsonSchema } from '@modelcontextprotocol/server';
import { listenAndAnnounce } from './listen.mjs';

const PORT = Number(process.argv[2] ?? process.env.PORT ?? 0);
const MAX_SEEN = 1000;
const seen = [];

function buildServer() {
  const server = new McpServer({ name: 'mcpgate-modern-test-upstream', version: '1.0.0' });
  server.registerTool(
    'echo',
    {
      description: 'Echoes back the input string',
      inputSchema: fromJsonSchema({
        type: 'object',
        properties: { message: { type: 'string' } },
        required: ['message'],
      }),
    },
    async ({ message }) => ({ content: [{ type: 'text', text: `Echo: ${message}` }] }),
  );
  server.registerTool(
    'slow-progress',
    {
      description: 'Runs for durationMs, sending a progress notification every stepMs',
      inputSchema: fromJsonSchema({
        type: 'object',
        properties: { durationMs: { type: 'number' }, stepMs: { type: 'number' } },
      }),
    },
    async (args, ctx) => {
      const durationMs = Math.min(Math.max(Number(args?.durationMs ?? 2000), 0), 30000);
      const stepMs = Math.min(Math.max(Number(args?.stepMs ?? 200), 10), 5000);
      const steps = Math.max(1, Math.round(durationMs / stepMs));
      const progressToken = ctx.mcpReq._meta?.progressToken;
      const started = Date.now();
      for (let i = 1; i <= steps; i++) {
        await new Promise((r) => setTimeout(r, stepMs));
        if (ctx.mcpReq.signal.aborted) break;
        if (progressToken !== undefined) {
          await ctx.mcpReq.notify({
            method: 'notifications/progress',
            params: { progressToken, progress: i, total: steps, message: `step ${i}/${steps}` },
          });
        }
      }
      return {
        content: [{ type: 'text', text: `slow-progress done: ${steps} steps in ${Date.now() - started} ms` }],
      };
    },
  );
  return server;
}

// legacy: 'reject' -> a strict 2026-07-28 endpoint: a client that silently fell
// back to the 2025 handshake would be rejected, so a passing test proves that
// the modern revision was spoken end to end.
const handler = createMcpHandler(() => buildServer(), {
  legacy: 'reject',
  onerror: (err) => process.stderr.write(`modern-server error: ${err?.stack ?? err}\n`),
});

function toWebRequest(req, body, signal) {
  const headers = new Headers();
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    headers.append(req.rawHeaders[i], req.rawHeaders[i + 1]);
  }
  const url = `http://${req.headers.host ?? `127.0.0.1:${PORT}`}${req.url}`;
  const init = { method: req.method, headers, signal };
  if (req.method !== 'GET' && req.method !== 'HEAD' && body.length > 0) init.body = body;
  return new Request(url, init);
}

const httpServer = http.createServer(async (req, res) => {
  if (req.method === 'GET' && req.url === '/__seen') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(seen));
    return;
  }
  const chunks = [];
  let size = 0;
  for await (const c of req) {
    size += c.length;
    if (size > 4 * 1024 * 1024) {
      res.writeHead(413).end();
      return;
    }
    chunks.push(c);
  }
  const body = Buffer.concat(chunks);
  let parsed;
  try {
    parsed = body.length ? JSON.parse(body.toString('utf8')) : undefined;
  } catch {
    parsed = undefined;
  }
  if (seen.length < MAX_SEEN) {
    seen.push({
      method: req.method,
      url: req.url,
      protocolVersion: req.headers['mcp-protocol-version'] ?? null,
      mcpMethod: req.headers['mcp-method'] ?? null,
      mcpName: req.headers['mcp-name'] ?? null,
      sessionId: req.headers['mcp-session-id'] ?? null,
      bodyMethod: parsed && !Array.isArray(parsed) ? (parsed.method ?? null) : null,
      at: Date.now(),
    });
  }
  const abort = new AbortController();
  res.on('close', () => abort.abort());
  let response;
  try {
    response = await handler.fetch(toWebRequest(req, body, abort.signal));
  } catch (err) {
    process.stderr.write(`modern-server handler threw: ${err?.stack ?? err}\n`);
    if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: 'internal' }));
    return;
  }
  const outHeaders = {};
  response.headers.forEach((v, k) => {
    outHeaders[k] = v;
  });
  res.writeHead(response.status, outHeaders);
  if (!response.body) {
    res.end();
    return;
  }
  const reader = response.body.getReader();
  res.on('close', () => reader.cancel().catch(() => {}));
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (!res.write(value)) await new Promise((r) => res.once('drain', r));
    }
  } catch {
    // client went away
  }
  res.end();
});

listenAndAnnounce(httpServer, PORT);
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    handler.close().finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 1000).unref();
  });
}
