// MOCK BY NECESSITY: no real MCP server produces an unbounded, as-fast-as-
// possible SSE stream, which is what it takes to prove the gateway applies
// backpressure (pauses the upstream) instead of buffering without bound.
//
// Every request (except GET /__stats) is answered with 200 text/event-stream
// and SSE events written as fast as the socket accepts them (the next write
// waits for 'drain'), stopping after `ms` (default 10000) or `max` bytes
// (default 300 MB), whichever comes first (query ?ms=&max= override).
// GET /__stats returns, per stream: bytesWritten (bytes the socket accepted),
// the time spent paused waiting for 'drain', and why it stopped.
//
// Runs as its own process so the pump does not share an event loop with the
// test's slow-reading client:  node firehose-upstream.mjs <port>  (or PORT=<port>)
// Prints `LISTENING <port>` when ready. Binds to 127.0.0.1 only.
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { listenAndAnnounce } from './listen.mjs';

export function createFirehoseServer() {
  const streams = [];
  const payload = `data: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'debug', data: 'x'.repeat(16 * 1024) } })}\n\n`;
  const chunk = Buffer.from(`event: message\n${payload}`);
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/__stats') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ streams: streams.map(snapshot) }));
      return;
    }
    req.resume();
    const q = new URL(req.url, 'http://x').searchParams;
    const maxMs = Math.min(Number(q.get('ms') ?? 10000), 60000);
    const maxBytes = Math.min(Number(q.get('max') ?? 300 * 1024 * 1024), 1024 * 1024 * 1024);
    const s = {
      id: streams.length + 1,
      url: req.url,
      startedAt: Date.now(),
      endedAt: null,
      maxMs,
      maxBytes,
      bytesQueued: 0,
      drainWaits: 0,
      pausedMs: 0,
      pausedSince: null,
      stoppedBy: null,
      res,
    };
    streams.push(s);
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const stop = (why) => {
      if (s.stoppedBy) return;
      s.stoppedBy = why;
      s.endedAt = Date.now();
      if (s.pausedSince !== null) {
        s.pausedMs += Date.now() - s.pausedSince;
        s.pausedSince = null;
      }
      clearTimeout(deadline);
      // End gracefully if the peer is still there; a peer that reads nothing
      // would keep us waiting, so destroy after a short grace.
      if (why === 'time' || why === 'size') {
        res.end();
        setTimeout(() => res.destroy(), 2000).unref();
      }
    };
    const deadline = setTimeout(() => stop('time'), maxMs);
    res.on('close', () => stop('closed-by-peer'));
    const pump = () => {
      if (s.pausedSince !== null) {
        s.pausedMs += Date.now() - s.pausedSince;
        s.pausedSince = null;
      }
      for (let i = 0; i < 1_000_000 && !s.stoppedBy; i++) {
        if (s.bytesQueued >= maxBytes) {
          stop('size');
          return;
        }
        s.bytesQueued += chunk.length;
        if (!res.write(chunk)) {
          s.drainWaits += 1;
          s.pausedSince = Date.now();
          res.once('drain', pump);
          return;
        }
      }
      if (!s.stoppedBy) setImmediate(pump);
    };
    pump();
  });
  return { server, streams };
}

function snapshot(s) {
  const sock = s.res.socket;
  // bytes the kernel accepted = queued minus what still sits in userland buffers
  const pending = (s.res.writableLength ?? 0) + (sock?.writableLength ?? 0);
  return {
    id: s.id,
    url: s.url,
    startedAt: s.startedAt,
    endedAt: s.endedAt,
    maxMs: s.maxMs,
    maxBytes: s.maxBytes,
    bytesQueued: s.bytesQueued,
    bytesWritten: Math.max(0, s.bytesQueued - pending),
    drainWaits: s.drainWaits,
    pausedMs: s.pausedMs + (s.pausedSince !== null ? Date.now() - s.pausedSince : 0),
    stoppedBy: s.stoppedBy,
  };
}

const isMain = process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const port = Number(process.argv[2] ?? process.env.PORT ?? 0);
  const { server } = createFirehoseServer();
  listenAndAnnounce(server, port);
  process.on('SIGTERM', () => process.exit(0));
  // Safety net: never outlive a forgotten test by more than 5 minutes.
  setTimeout(() => process.exit(0), 5 * 60 * 1000).unref();
}
