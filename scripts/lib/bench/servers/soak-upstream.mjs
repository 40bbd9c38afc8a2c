// The soak's 2026-07-28 upstream: a real MCP server (@modelcontextprotocol/server 2.x, the
// repo's root node_modules) served statelessly by the SDK's own createMcpHandler, plus the
// bench authorization server's JWKS on a second port. 127.0.0.1 only.
//
//   tools       echo {message} -> "Echo: <message>";
//               slow-progress {durationMs, stepMs} -> notifications/progress every stepMs, then a result
//   resource    soak://tick, subscribable: every EVENT_MS the server publishes
//               notifications/resources/updated for it, which the SDK fans out to every open
//               subscriptions/listen stream that asked for it (the SDK also writes a
//               keep-alive comment on each stream every 15 s)
// Env: PORT, JWKS_PORT, JWKS_FILE, EVENT_MS (0: no events), MAX_SUBSCRIPTIONS.
// Prints one JSON line of counters every 10 s.
import fs from 'node:fs';
import http from 'node:http';
import { McpServer, createMcpHandler, fromJsonSchema } from '@modelcontextprotocol/server';

const env = process.env;
const TICK_URI = 'soak://tick';
let ticks = 0;
const counters = { requests: 0, listenOpened: 0, listenOpen: 0, events: 0, handlerErrors: 0 };

function buildServer() {
  const server = new McpServer({ name: 'mcpgate-soak-upstream', version: '1.0.0' },
    { capabilities: { resources: { subscribe: true, listChanged: true }, tools: { listChanged: true } } });
  server.registerTool('echo', {
    description: 'Echoes back the input string',
    inputSchema: fromJsonSchema({ type: 'object', properties: { message: { type: 'string' } }, required: ['message'] }),
  }, async ({ message }) => ({ content: [{ type: 'text', text: `Echo: ${message}` }] }));
  server.registerTool('slow-progress', {
    description: 'Runs for durationMs, sending a progress notification every stepMs',
    inputSchema: fromJsonSchema({ type: 'object', properties: { durationMs: { type: 'number' }, stepMs: { type: 'number' } } }),
  }, async (args, ctx) => {
    const durationMs = Math.min(Math.max(Number(args?.durationMs ?? 2000), 0), 30000);
    const stepMs = Math.min(Math.max(Number(args?.stepMs ?? 200), 10), 5000);
    const steps = Math.max(1, Math.round(durationMs / stepMs));
    const progressToken = ctx.mcpReq._meta?.progressToken;
    for (let i = 1; i <= steps; i++) {
      await new Promise((r) => setTimeout(r, stepMs));
      if (ctx.mcpReq.signal.aborted) break;
      if (progressToken !== undefined) {
        await ctx.mcpReq.notify({ method: 'notifications/progress', params: { progressToken, progress: i, total: steps } });
      }
    }
    return { content: [{ type: 'text', text: `slow-progress done: ${steps} steps` }] };
  });
  server.registerResource('tick', TICK_URI, { mimeType: 'text/plain' },
    async (uri) => ({ contents: [{ uri: uri.href, text: `tick ${ticks}` }] }));
  return server;
}

const handler = createMcpHandler(() => buildServer(), {
  legacy: 'reject',
  maxSubscriptions: Number(env.MAX_SUBSCRIPTIONS || 100000),
  onerror: (err) => { counters.handlerErrors++; process.stderr.write(`soak-upstream: ${err?.message ?? err}\n`); },
});

function toWebRequest(req, body, signal) {
  const headers = new Headers();
  for (let i = 0; i < req.rawHeaders.length; i += 2) headers.append(req.rawHeaders[i], req.rawHeaders[i + 1]);
  const init = { method: req.method, headers, signal };
  if (req.method !== 'GET' && req.method !== 'HEAD' && body.length > 0) init.body = body;
  return new Request(`http://${req.headers.host ?? '127.0.0.1'}${req.url}`, init);
}

async function serveMcp(req, res) {
  counters.requests++;
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const body = Buffer.concat(chunks);
  const isListen = body.includes('"subscriptions/listen"');
  const abort = new AbortController();
  res.on('close', () => abort.abort());
  let response;
  try {
    response = await handler.fetch(toWebRequest(req, body, abort.signal));
  } catch (err) {
    counters.handlerErrors++;
    if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
    res.end('{"error":"internal"}');
    return;
  }
  const headers = {};
  response.headers.forEach((v, k) => { headers[k] = v; });
  res.writeHead(response.status, headers);
  if (!response.body) { res.end(); return; }
  if (isListen && response.status === 200) {
    counters.listenOpened++;
    counters.listenOpen++;
    res.once('close', () => { counters.listenOpen--; });
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
    // the client (the gateway) went away
  }
  res.end();
}

const mcp = http.createServer((req, res) => { serveMcp(req, res); });
mcp.keepAliveTimeout = 300_000;
mcp.headersTimeout = 310_000;
mcp.requestTimeout = 0;

const jwks = fs.readFileSync(env.JWKS_FILE);
const jwksServer = http.createServer((req, res) => {
  req.resume();
  if (req.url !== '/jwks.json') { res.writeHead(404).end(); return; }
  res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=3600' }).end(jwks);
});

const eventMs = Number(env.EVENT_MS || 0);
if (eventMs > 0) {
  setInterval(() => { ticks++; counters.events++; handler.notify.resourceUpdated(TICK_URI); }, eventMs).unref();
}
setInterval(() => console.log(JSON.stringify({ at: new Date().toISOString(), ...counters })), 10_000).unref();

mcp.listen(Number(env.PORT), '127.0.0.1', () => {
  jwksServer.listen(Number(env.JWKS_PORT), '127.0.0.1', () => console.log(`soak upstream on ${env.PORT}, jwks on ${env.JWKS_PORT}`));
});
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    handler.close().finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 1000).unref();
  });
}
