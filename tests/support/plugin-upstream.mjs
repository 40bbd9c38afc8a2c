// A REAL MCP server for the plugin tests: @modelcontextprotocol/sdk 1.32.2 McpServer +
// StreamableHTTPServerTransport, stateless (a fresh server and transport per POST,
// sessionIdGenerator undefined, enableJsonResponse) behind node:http on 127.0.0.1. It does no
// authentication of its own (the gateway in front does); it records every request it sees, so a
// test can tell what reached it and with which headers.
//
//   const up = await startPluginUpstream();
//   up.url    // "http://127.0.0.1:<port>/mcp" (any path works)
//   up.seen   // [{httpMethod, url, headers, messages, rpcMethods, tools, arguments, status, at}]
//   up.toolCalls()          // the tools/call messages seen, [{name, arguments}], in order
//   await up.close();
//
// Tools:
//   whoami-headers            text = JSON of the request headers this POST arrived with
//   create_note {tenant, text} text = JSON {id, tenant, text}
//   delete_note {id}           text = "deleted <id>"
//   read_file   {path}         text = "contents of <path>"
import http from 'node:http';

import { z } from 'zod';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';

import { serveFixture, readRequestBody } from './listen.mjs';

const MAX_SEEN = 10000;


function sendJson(res, status, body) {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function buildServer(headers, counter) {
  const server = new McpServer({ name: 'plugin-upstream', version: '1.0.0' });
  const text = (t) => ({ content: [{ type: 'text', text: t }] });
  server.registerTool(
    'whoami-headers',
    { title: 'Request headers', description: 'The HTTP request headers this call arrived with, as JSON.' },
    async () => text(JSON.stringify(headers)),
  );
  server.registerTool(
    'create_note',
    { description: 'Creates a note for a tenant.', inputSchema: { tenant: z.string(), text: z.string() } },
    async ({ tenant, text: body }) => text(JSON.stringify({ id: `note-${++counter.n}`, tenant, text: body })),
  );
  server.registerTool(
    'delete_note',
    { description: 'Deletes a note.', inputSchema: { id: z.string() } },
    async ({ id }) => text(`deleted ${id}`),
  );
  server.registerTool(
    'read_file',
    { description: 'Reads a file (pretends to).', inputSchema: { path: z.string() } },
    async ({ path }) => text(`contents of ${path}`),
  );
  return server;
}

/** Start the upstream (see the header comment). Resolves with {url, origin, port, seen, toolCalls(), close()}. */
export async function startPluginUpstream() {
  const seen = [];
  const counter = { n: 0 };

  async function handle(req, res, record) {
    if (req.method !== 'POST') {
      req.resume();
      return sendJson(res, 405, { jsonrpc: '2.0', error: { code: -32000, message: 'Method not allowed.' }, id: null });
    }
    let parsed;
    try {
      parsed = JSON.parse(await readRequestBody(req));
    } catch (e) {
      return sendJson(res, e.status || 400, { jsonrpc: '2.0', error: { code: -32700, message: `Parse error: ${e.message}` }, id: null });
    }
    const messages = Array.isArray(parsed) ? parsed : [parsed];
    record.messages = messages;
    record.rpcMethods = messages.map((m) => m?.method ?? (m && 'result' in m ? '(result)' : '(invalid)'));
    const calls = messages.filter((m) => m?.method === 'tools/call');
    record.tools = calls.map((m) => m.params?.name);
    record.arguments = calls.map((m) => m.params?.arguments);

    const server = buildServer(req.headers, counter);
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => {
      transport.close().catch(() => {});
      server.close().catch(() => {});
    });
    await server.connect(transport);
    await transport.handleRequest(req, res, parsed);
    return undefined;
  }

  const httpServer = http.createServer((req, res) => {
    const record = {
      httpMethod: req.method,
      url: req.url,
      headers: { ...req.headers },
      messages: [],
      rpcMethods: [],
      tools: [],
      arguments: [],
      status: null,
      at: Date.now(),
    };
    if (seen.length < MAX_SEEN) seen.push(record);
    res.on('finish', () => {
      record.status = res.statusCode;
    });
    handle(req, res, record).catch((err) => {
      sendJson(res, 500, { jsonrpc: '2.0', error: { code: -32603, message: `upstream error: ${err?.message || err}` }, id: null });
    });
  });
  httpServer.keepAliveTimeout = 5000;

  const fixture = await serveFixture(httpServer, { fields: { seen } });
  return {
    ...fixture,
    url: `${fixture.origin}/mcp`,
    toolCalls: () => seen.flatMap((r) => r.messages.filter((m) => m?.method === 'tools/call').map((m) => ({ name: m.params?.name, arguments: m.params?.arguments }))),
  };
}
