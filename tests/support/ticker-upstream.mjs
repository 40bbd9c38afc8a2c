// MOCK BY NECESSITY: to prove that a client disconnect cancels the upstream
// transfer, the test must observe the moment the upstream's response is closed
// by the gateway; a real MCP server exposes no such signal. This upstream
// answers every request with an SSE stream that sends one JSON-RPC
// notification every `intervalMs` (default 100) for at most `maxMs`
// (default 30000) and records when its response was closed by the peer.
// Binds to 127.0.0.1 only.
import http from 'node:http';
import { serveFixture } from './listen.mjs';

export function startTickerUpstream({ intervalMs = 100, maxMs = 30000 } = {}) {
  const streams = [];
  const sockets = new Set();
  const server = http.createServer((req, res) => {
    req.resume();
    const info = { id: streams.length + 1, url: req.url, startedAt: Date.now(), ticks: 0, closedAt: null, finished: false };
    streams.push(info);
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const timer = setInterval(() => {
      if (Date.now() - info.startedAt > maxMs) {
        clearInterval(timer);
        info.finished = true;
        res.end();
        return;
      }
      info.ticks += 1;
      const msg = { jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: `tick ${info.ticks}` } };
      res.write(`event: message\nid: ${info.ticks}\ndata: ${JSON.stringify(msg)}\n\n`);
    }, intervalMs);
    res.on('close', () => {
      clearInterval(timer);
      if (!info.finished) info.closedAt = Date.now();
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  return serveFixture(server, { fields: { streams, openSockets: () => sockets.size } });
}
