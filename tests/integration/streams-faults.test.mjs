// Streaming faults: client disconnects mid-stream, and a client that reads far
// slower than the upstream writes.
//
// The upstreams here are MOCKS BY NECESSITY (see the files for details):
//   * ticker-upstream: the test must observe the moment the upstream's
//     response is closed, which no real MCP server reports;
//   * firehose-upstream: an SSE stream written as fast as the socket accepts,
//     which no real MCP server produces.
// The gateway and the clients' sockets are real.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import {
  startGateway,
  startTickerUpstream,
  startFirehoseUpstream,
  startEchoUpstream,
  getMetrics,
  metricValue,
  rssBytes,
  waitFor,
  sleep,
  isSanitizerBuild,
} from '../support/harness.mjs';

const SANITIZER = isSanitizerBuild();
// ASan keeps freed memory in a quarantine and adds shadow memory, so RSS means
// less there; keep the quarantine small and allow more headroom.
const RSS_GROWTH_LIMIT = SANITIZER ? 96 * 1024 * 1024 : 32 * 1024 * 1024;
const FIREHOSE_MS = 8000;
const FIREHOSE_MAX = 300 * 1024 * 1024;

async function activeStreams(gw) {
  const m = await getMetrics(gw);
  return metricValue(m.samples, 'mcpgate_active_streams');
}

/** Open a streaming request through the gateway; resolves once the first tick arrived. */
function openStream(gw, { method = 'GET', path = '/ticker/events' } = {}) {
  return new Promise((resolve, reject) => {
    const body = method === 'POST' ? JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'long' } }) : undefined;
    const req = http.request(
      {
        host: '127.0.0.1',
        port: gw.port,
        path,
        method,
        headers: {
          accept: 'application/json, text/event-stream',
          ...(body ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {}),
        },
      },
      (res) => {
        let text = '';
        const onData = (c) => {
          text += c;
          if (text.includes('tick 1')) {
            res.off('data', onData);
            resolve({ req, res, text });
          }
        };
        res.on('data', onData);
      },
    );
    req.setTimeout(10000, () => req.destroy(new Error('no first event within 10 s')));
    req.on('error', reject);
    req.end(body);
  });
}

describe('client disconnect mid-stream', () => {
  let ticker;
  let gw;
  before(async () => {
    ticker = await startTickerUpstream({ intervalMs: 100, maxMs: 30000 });
    gw = await startGateway({ routes: [{ name: 'ticker', path: '/ticker', upstream: `${ticker.origin}/stream` }] });
  });
  after(async () => {
    try {
      await gw?.stopCleanly();
    } finally {
      await ticker?.close();
    }
  });

  for (const method of ['GET', 'POST']) {
    it(`${method}: the upstream transfer is cancelled and active streams return to 0`, async () => {
      const before = ticker.streams.length;
      const { req, res } = await openStream(gw, { method });
      assert.equal(res.statusCode, 200);
      assert.equal(res.headers['x-accel-buffering'], 'no');
      const upstream = ticker.streams[before];
      assert.ok(upstream, 'the stream reached the upstream');
      assert.equal(upstream.closedAt, null);
      assert.ok((await activeStreams(gw)) >= 1, 'mcpgate_active_streams counts the open stream');

      const disconnectedAt = Date.now();
      req.destroy();
      res.destroy();

      await waitFor(() => upstream.closedAt !== null, {
        timeoutMs: 5000,
        intervalMs: 50,
        what: 'the gateway to close the upstream response after the client left',
      });
      assert.ok(upstream.closedAt - disconnectedAt < 5000);
      const ticksAtClose = upstream.ticks;
      await sleep(400);
      assert.equal(upstream.ticks, ticksAtClose, 'upstream stopped producing');
      await waitFor(async () => (await activeStreams(gw)) === 0, {
        timeoutMs: 5000,
        intervalMs: 100,
        what: 'mcpgate_active_streams to return to 0',
      });
      assert.ok(gw.proc.alive());
    });
  }
});

describe('slow-reading client on a firehose upstream (backpressure)', () => {
  let firehose;
  let echo;
  let gw;
  before(async () => {
    [firehose, echo] = await Promise.all([startFirehoseUpstream(), startEchoUpstream()]);
    gw = await startGateway({
      server: { limits: { stream_buffer_bytes: 262144 } },
      routes: [
        { name: 'firehose', path: '/firehose', upstream: `${firehose.origin}/fh` },
        { name: 'echo', path: '/echo', upstream: `${echo.origin}/e` },
      ],
      env: SANITIZER
        ? { ASAN_OPTIONS: `${process.env.ASAN_OPTIONS ?? 'detect_leaks=1:halt_on_error=1'}:quarantine_size_mb=16` }
        : {},
    });
  });
  after(async () => {
    try {
      await gw?.stopCleanly();
    } finally {
      await Promise.all([firehose?.stop(), echo?.close()]);
    }
  });

  it('pauses the upstream, keeps gateway memory bounded, and keeps serving others', async (t) => {
    // Warm up so the baseline includes the per-worker steady state.
    for (let i = 0; i < 10; i++) {
      const r = await fetch(`${gw.url}/echo/warm`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"jsonrpc":"2.0","id":1,"method":"ping"}' });
      assert.equal(r.status, 200);
      await r.arrayBuffer();
    }
    const baseline = rssBytes(gw.pid);

    // The slow reader: a raw socket that takes one chunk, then pauses 100 ms.
    const sock = net.connect({ host: '127.0.0.1', port: gw.port });
    let clientBytes = 0;
    let head = '';
    const throttle = [];
    sock.on('data', (c) => {
      if (head.length < 2048) head += c.toString('latin1');
      clientBytes += c.length;
      sock.pause();
      throttle.push(setTimeout(() => !sock.destroyed && sock.resume(), 100));
      if (throttle.length > 1000) throttle.splice(0, 500);
    });
    sock.on('error', () => {});
    await new Promise((r) => sock.once('connect', r));
    sock.write(`GET /firehose?ms=${FIREHOSE_MS}&max=${FIREHOSE_MAX} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`);

    const startedAt = Date.now();
    let maxRss = baseline;
    let othersChecked = false;
    const otherLatencies = [];
    try {
      for (let i = 0; i < 200 && Date.now() - startedAt < FIREHOSE_MS + 1500; i++) {
        maxRss = Math.max(maxRss, rssBytes(gw.pid));
        if (!othersChecked && Date.now() - startedAt > 3000) {
          // While the firehose is pushing, other requests are still served promptly.
          for (let k = 0; k < 5; k++) {
            const t0 = Date.now();
            const r = await fetch(`${gw.url}/echo/other`, { signal: AbortSignal.timeout(3000) });
            assert.equal(r.status, 200);
            const seen = await r.json();
            assert.equal(seen.url, '/e/other');
            otherLatencies.push(Date.now() - t0);
          }
          const h = await fetch(`${gw.adminUrl}/healthz`, { signal: AbortSignal.timeout(3000) });
          assert.equal(h.status, 200);
          assert.ok((await activeStreams(gw)) >= 1, 'the firehose stream is counted as active');
          othersChecked = true;
        }
        await sleep(250);
      }
      maxRss = Math.max(maxRss, rssBytes(gw.pid));

      assert.match(head, /^HTTP\/1\.1 200/, `firehose response head: ${head.slice(0, 200)}`);
      assert.ok(clientBytes > 0, 'the slow client did receive data');
      assert.ok(othersChecked, 'other requests were checked during the firehose');
      assert.ok(Math.max(...otherLatencies) < 2000, `other requests took ${otherLatencies.join(',')} ms`);

      const stats = await waitFor(
        async () => {
          const s = (await firehose.stats())[0];
          return s && s.stoppedBy ? s : false;
        },
        { timeoutMs: 5000, what: 'the firehose to stop' },
      );
      const growth = maxRss - baseline;
      const info = `firehose wrote ${(stats.bytesWritten / 1e6).toFixed(1)} MB in ${FIREHOSE_MS} ms (stopped by ${stats.stoppedBy}, paused ${stats.pausedMs} ms); client read ${(clientBytes / 1e6).toFixed(1)} MB; gateway RSS ${(baseline / 1e6).toFixed(1)} -> max ${(maxRss / 1e6).toFixed(1)} MB`;
      t.diagnostic(info);
      assert.equal(stats.stoppedBy, 'time', `the firehose must be held back by backpressure, not run to its ${FIREHOSE_MAX} byte cap: ${info}`);
      assert.ok(stats.bytesWritten < 64 * 1024 * 1024, `the upstream could write far less than it tried: ${info}`);
      assert.ok(stats.pausedMs > FIREHOSE_MS / 2, `the upstream spent most of the time paused: ${info}`);
      assert.ok(growth < RSS_GROWTH_LIMIT, `gateway RSS grew by ${(growth / 1e6).toFixed(1)} MB: ${info}`);
    } finally {
      for (const t of throttle) clearTimeout(t);
      sock.destroy();
    }
    await waitFor(async () => (await activeStreams(gw)) === 0, {
      timeoutMs: 5000,
      what: 'mcpgate_active_streams to return to 0 after the slow client left',
    });
    assert.ok(gw.proc.alive(), 'gateway still running');
    const h = await fetch(`${gw.adminUrl}/healthz`);
    assert.equal(h.status, 200);
  });
});
