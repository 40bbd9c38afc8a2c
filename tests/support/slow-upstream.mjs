// MOCK BY NECESSITY: no real MCP server can be told to hold back its response
// head for a chosen time, which is what triggers the gateway's
// upstream_timeout_ms (504). This upstream accepts the request, then answers
// with a JSON-RPC result only after `delayMs` (query ?delay=<ms> overrides).
// Binds to 127.0.0.1 only. Pending timers are cleared on close().
import http from 'node:http';
import { serveFixture } from './listen.mjs';

export function startSlowUpstream({ delayMs = 3000 } = {}) {
  const stats = { received: 0, answered: 0, abandonedByClient: 0 };
  const timers = new Set();
  const server = http.createServer((req, res) => {
    stats.received += 1;
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const q = new URL(req.url, 'http://x').searchParams;
      const delay = Math.min(Number(q.get('delay') ?? delayMs), 60000);
      let id = null;
      try {
        id = JSON.parse(Buffer.concat(chunks).toString('utf8')).id ?? null;
      } catch {
        /* not JSON */
      }
      let answered = false;
      res.on('close', () => {
        if (!answered) stats.abandonedByClient += 1;
      });
      const t = setTimeout(() => {
        timers.delete(t);
        answered = true;
        if (res.destroyed) return;
        stats.answered += 1;
        const body = JSON.stringify({ jsonrpc: '2.0', id, result: { slow: true, delay } });
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(body);
      }, delay);
      timers.add(t);
    });
  });
  return serveFixture(server, {
    fields: { stats },
    onClose: () => {
      for (const t of timers) clearTimeout(t);
    },
  });
}
