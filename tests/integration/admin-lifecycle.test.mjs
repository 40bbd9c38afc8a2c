// Admin listener, access log, `mcpgate check`, SIGHUP reload and SIGTERM
// draining, against the real gateway binary and real server-everything.
// echo-upstream is a mock by necessity (a route whose upstream is trivially
// observable, to tell which config is live after a reload).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import {
  startEverything,
  startGateway,
  startEchoUpstream,
  startSlowUpstream,
  buildGatewayConfig,
  toYaml,
  makeTempDir,
  runGatewayCli,
  getMetrics,
  metricValue,
  mcpPost,
  openRawSession,
  waitFor,
  sleep,
  raceTimeout,
  LEGACY_PROTOCOL_VERSION,
} from '../support/harness.mjs';

const FAMILIES = [
  'mcpgate_requests_total',
  'mcpgate_upstream_latency_seconds_bucket',
  'mcpgate_upstream_latency_seconds_sum',
  'mcpgate_upstream_latency_seconds_count',
  'mcpgate_active_connections',
  'mcpgate_active_streams',
  'mcpgate_request_bytes_total',
  'mcpgate_response_bytes_total',
];

describe('admin endpoints, metrics, access log, reload', () => {
  let everything;
  let echo;
  let gw;
  before(async () => {
    [everything, echo] = await Promise.all([startEverything('streamableHttp'), startEchoUpstream()]);
    gw = await startGateway({
      routes: [
        { name: 'everything', path: '/everything', upstream: everything.url },
        { name: 'echo', path: '/echo', upstream: `${echo.origin}/one` },
      ],
    });
  });
  after(async () => {
    try {
      await gw?.stopCleanly();
    } finally {
      await Promise.all([everything?.stop(), echo?.close()]);
    }
  });

  it('/healthz and /readyz answer 200', async () => {
    const h = await fetch(`${gw.adminUrl}/healthz`);
    assert.equal(h.status, 200);
    assert.deepEqual(await h.json(), { status: 'ok' });
    const r = await fetch(`${gw.adminUrl}/readyz`);
    assert.equal(r.status, 200);
    await r.arrayBuffer();
    // The admin endpoints are not served on the public listener.
    const pub = await fetch(`${gw.url}/healthz`);
    assert.equal(pub.status, 404);
    await pub.arrayBuffer();
  });

  it('/metrics exposes the documented families and counts a request just made', async () => {
    const { sessionId } = await openRawSession(`${gw.url}/everything`);
    assert.ok(sessionId);
    const before = await getMetrics(gw);
    assert.equal(before.status, 200);
    assert.match(before.contentType ?? '', /^text\/plain/);
    for (const f of FAMILIES) assert.ok(before.samples.some((s) => s.name === f), `metric family ${f} missing`);

    const sel = { route: 'everything', method: 'POST', status: '200', rpc_method: 'tools/call' };
    const callsBefore = metricValue(before.samples, 'mcpgate_requests_total', sel) ?? 0;
    const latBefore = metricValue(before.samples, 'mcpgate_upstream_latency_seconds_count', { route: 'everything' }) ?? 0;
    const inBefore = metricValue(before.samples, 'mcpgate_request_bytes_total', { route: 'everything' }) ?? 0;
    const outBefore = metricValue(before.samples, 'mcpgate_response_bytes_total', { route: 'everything' }) ?? 0;

    const body = JSON.stringify({ jsonrpc: '2.0', id: 77, method: 'tools/call', params: { name: 'echo', arguments: { message: 'metrics' } } });
    const r = await mcpPost(`${gw.url}/everything`, body, {
      headers: {
        'mcp-session-id': sessionId,
        'mcp-protocol-version': LEGACY_PROTOCOL_VERSION,
        authorization: 'Bearer admin-test-token-9c2e',
      },
    });
    assert.equal(r.status, 200);
    assert.ok(r.messages.some((m) => m.id === 77 && m.result), r.text);

    const after = await waitFor(
      async () => {
        const m = await getMetrics(gw);
        return (metricValue(m.samples, 'mcpgate_requests_total', sel) ?? 0) >= callsBefore + 1 ? m : false;
      },
      { timeoutMs: 3000, what: 'mcpgate_requests_total to count the call' },
    );
    assert.equal(metricValue(after.samples, 'mcpgate_requests_total', sel), callsBefore + 1);
    assert.ok(metricValue(after.samples, 'mcpgate_upstream_latency_seconds_count', { route: 'everything' }) >= latBefore + 1);
    assert.ok(metricValue(after.samples, 'mcpgate_request_bytes_total', { route: 'everything' }) >= inBefore + Buffer.byteLength(body));
    assert.ok(metricValue(after.samples, 'mcpgate_response_bytes_total', { route: 'everything' }) >= outBefore + r.text.length);
    const inf = after.samples.find(
      (s) => s.name === 'mcpgate_upstream_latency_seconds_bucket' && s.labels.route === 'everything' && s.labels.le === '+Inf',
    );
    assert.ok(inf, 'histogram has a +Inf bucket');
    assert.equal(inf.value, metricValue(after.samples, 'mcpgate_upstream_latency_seconds_count', { route: 'everything' }));

    // One access log line for the call, without the token.
    const line = await waitFor(
      () => gw.accessLogs().find((l) => l.route === 'everything' && l.rpc_method === 'tools/call' && l.tool === 'echo'),
      { timeoutMs: 3000, what: 'the access log line of the tools/call' },
    );
    // The contract lists the HTTP method as "method"; "http_method" is accepted too.
    assert.equal(line.method ?? line.http_method, 'POST');
    assert.equal(line.status, 200);
    assert.equal(line.upstream_status, 200);
    assert.equal(typeof line.latency_ms, 'number');
    assert.equal(line.bytes_in, Buffer.byteLength(body));
    assert.equal(typeof line.bytes_out, 'number');
    assert.ok(line.bytes_out > 0);
    assert.ok(!gw.logs().includes('admin-test-token-9c2e'), 'the Authorization value must not be logged');
  });

  it('SIGHUP with a changed valid config takes effect (new route)', async () => {
    const before = await fetch(`${gw.url}/added/x`);
    assert.equal(before.status, 404);
    await before.arrayBuffer();
    const cfg = structuredClone(gw.config);
    cfg.routes.push({ name: 'added', path: '/added', upstream: `${echo.origin}/two`, transport: 'streamable_http', auth: { type: 'none' } });
    gw.writeConfig(cfg);
    gw.kill('SIGHUP');
    const seen = await waitFor(
      async () => {
        const r = await fetch(`${gw.url}/added/x?q=1`);
        return r.status === 200 ? r.json() : (await r.arrayBuffer(), false);
      },
      { timeoutMs: 5000, intervalMs: 100, what: 'the new route to be served after SIGHUP' },
    );
    assert.equal(seen.url, '/two/x?q=1');
    // Old routes keep working.
    const old = await fetch(`${gw.url}/echo/y`);
    assert.equal(old.status, 200);
    assert.equal((await old.json()).url, '/one/y');
    assert.ok(gw.proc.alive());
  });

  it('SIGHUP with an invalid config is rejected and logged; the old routes keep serving', async () => {
    const logLinesBefore = gw.jsonLogs().length;
    const cfg = structuredClone(gw.config);
    cfg.routes.push({ name: 'bad', path: '/bad', upstream: `${echo.origin}/bad`, auth: { type: 'none' }, no_such_key: true });
    gw.writeConfig(cfg);
    gw.kill('SIGHUP');
    const complaint = await waitFor(
      () => gw.jsonLogs().slice(logLinesBefore).find((l) => ['error', 'warn', 'warning', 'critical'].includes(String(l.level).toLowerCase())),
      { timeoutMs: 5000, what: 'an error/warn log line about the rejected reload' },
    );
    assert.ok(complaint);
    await sleep(300);
    assert.ok(gw.proc.alive(), 'gateway keeps running');
    const bad = await fetch(`${gw.url}/bad`);
    assert.equal(bad.status, 404, 'the rejected config is not applied');
    await bad.arrayBuffer();
    const old = await fetch(`${gw.url}/echo/z`);
    assert.equal(old.status, 200);
    assert.equal((await old.json()).url, '/one/z');
    const added = await fetch(`${gw.url}/added/z`);
    assert.equal(added.status, 200, 'the last good config stays live');
    await added.arrayBuffer();
    const ready = await fetch(`${gw.adminUrl}/readyz`);
    assert.equal(ready.status, 200);
    await ready.arrayBuffer();
    // Restore a valid file so a later reload cannot trip on it.
    gw.writeConfig(gw.config);
  });
});

describe('mcpgate check', () => {
  let dir;
  before(() => {
    dir = makeTempDir('itest-check-');
  });

  function writeCfg(name, text) {
    const p = path.join(dir, name);
    fs.writeFileSync(p, text);
    return p;
  }

  const goodCfg = () =>
    buildGatewayConfig({
      port: 18080,
      adminPort: 18081,
      routes: [{ name: 'everything', path: '/everything', upstream: 'http://127.0.0.1:3001/mcp' }],
    });

  it('a good config -> exit 0, "config OK"', () => {
    const p = writeCfg('good.yaml', toYaml(goodCfg()));
    const r = runGatewayCli(['check', '--config', p]);
    assert.equal(r.status, 0, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
    assert.match(r.stdout + r.stderr, /config OK/);
  });

  it('an unknown key -> exit 1 with "<file>:<line>:<col>: <message>" pointing at it', () => {
    const lines = toYaml(goodCfg()).split('\n');
    const idx = lines.findIndex((l) => l.startsWith('  workers:'));
    lines.splice(idx + 1, 0, '  wrokers_typo: 3');
    const p = writeCfg('unknown-key.yaml', lines.join('\n'));
    const r = runGatewayCli(['check', '--config', p]);
    assert.equal(r.status, 1, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
    const m = new RegExp(`${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:(\\d+):(\\d+): (.+)`).exec(r.stderr);
    assert.ok(m, `expected "${p}:<line>:<col>: <message>" on stderr, got: ${r.stderr}`);
    assert.equal(Number(m[1]), idx + 2, 'line of the unknown key (1-based)');
    assert.equal(Number(m[2]), 3, 'column of the unknown key (1-based)');
    assert.match(m[3], /wrokers_typo/);
  });

  it('a YAML syntax error and a semantic error -> exit 1 with a location', () => {
    const syntax = writeCfg('syntax.yaml', 'server:\n  listen: "127.0.0.1:1\n  workers: [\n');
    const r1 = runGatewayCli(['check', '--config', syntax]);
    assert.equal(r1.status, 1, r1.stderr);
    assert.match(r1.stderr, new RegExp(`${syntax.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+: `));

    const cfg = goodCfg();
    delete cfg.routes[0].auth; // auth is required
    const sem = writeCfg('no-auth.yaml', toYaml(cfg));
    const r2 = runGatewayCli(['check', '--config', sem]);
    assert.equal(r2.status, 1, r2.stderr);
    assert.match(r2.stderr, new RegExp(`${sem.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+: .*auth`));
  });
});

describe('SIGTERM drains in-flight requests', () => {
  let everything;
  let slow;
  const gateways = [];
  before(async () => {
    [everything, slow] = await Promise.all([startEverything('streamableHttp'), startSlowUpstream({ delayMs: 2000 })]);
  });
  after(async () => {
    for (const g of gateways) await g.stop('SIGKILL');
    await Promise.all([everything?.stop(), slow?.close()]);
  });

  async function expectCleanExit(gw) {
    const exit = await raceTimeout(gw.proc.exited, 12000, 'timeout');
    assert.notEqual(exit, 'timeout', 'gateway did not exit within the grace period');
    assert.equal(exit.code, 0, `exit: ${JSON.stringify(exit)}\n${gw.proc.stderr().slice(-2000)}`);
    assert.equal(gw.sanitizerReport(), '');
  }

  it('a plain JSON response still pending at SIGTERM is delivered, then the gateway exits 0', async () => {
    // slow-upstream (mock by necessity) holds its JSON answer back for 2 s.
    const gw = await startGateway({
      server: { shutdown_grace_ms: 10000 },
      routes: [{ name: 'slow', path: '/slow', upstream: `${slow.origin}/mcp` }],
    });
    gateways.push(gw);
    const t0 = Date.now();
    const call = mcpPost(`${gw.url}/slow`, { jsonrpc: '2.0', id: 8, method: 'tools/call', params: { name: 'x' } }, { timeoutMs: 15000 });
    await sleep(500);
    gw.kill('SIGTERM');
    const res = await call;
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json, { jsonrpc: '2.0', id: 8, result: { slow: true, delay: 2000 } });
    assert.ok(Date.now() - t0 >= 1900);
    await expectCleanExit(gw);
  });

  it('an open GET SSE stream is ended cleanly at SIGTERM and does not hold the exit for the whole grace period', async () => {
    const gw = await startGateway({
      server: { shutdown_grace_ms: 10000 },
      routes: [{ name: 'everything', path: '/everything', upstream: everything.url }],
    });
    gateways.push(gw);
    const { sessionId } = await openRawSession(`${gw.url}/everything`);
    assert.ok(sessionId);
    const res = await new Promise((resolve, reject) => {
      const req = http.get(
        {
          host: '127.0.0.1',
          port: gw.port,
          path: '/everything',
          headers: { accept: 'text/event-stream', 'mcp-session-id': sessionId, 'mcp-protocol-version': LEGACY_PROTOCOL_VERSION },
        },
        resolve,
      );
      req.on('error', reject);
      req.setTimeout(10000, () => req.destroy(new Error('no response head')));
    });
    assert.equal(res.statusCode, 200);
    const ending = new Promise((resolve) => {
      res.on('end', () => resolve('end'));
      res.on('aborted', () => resolve('aborted'));
      res.on('error', (e) => resolve(`error ${e.code ?? e.message}`));
      res.on('close', () => setTimeout(() => resolve('closed without end'), 50));
      res.resume();
    });
    const t0 = Date.now();
    gw.kill('SIGTERM');
    const how = await raceTimeout(ending, 8000, 'still open after 8 s');
    assert.equal(how, 'end', 'the stream gets its final chunk (clean end), so the client can reconnect');
    await expectCleanExit(gw);
    assert.ok(Date.now() - t0 < 5000, `exit took ${Date.now() - t0} ms; an idle GET stream must not hold it for the whole grace`);
  });

  it('a streamed (SSE) tool call in flight at SIGTERM completes, then the gateway exits 0', async () => {
    const gw = await startGateway({
      server: { shutdown_grace_ms: 10000 },
      routes: [{ name: 'everything', path: '/everything', upstream: everything.url }],
    });
    gateways.push(gw);
    const url = `${gw.url}/everything`;
    const { sessionId } = await openRawSession(url);
    assert.ok(sessionId);
    const t0 = Date.now();
    const call = mcpPost(
      url,
      { jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'trigger-long-running-operation', arguments: { duration: 2, steps: 2 } } },
      { headers: { 'mcp-session-id': sessionId, 'mcp-protocol-version': LEGACY_PROTOCOL_VERSION }, timeoutMs: 15000 },
    );
    await sleep(500);
    gw.kill('SIGTERM');
    const res = await call;
    const finishedAt = Date.now();
    assert.equal(res.status, 200);
    const result = res.messages.find((m) => m.id === 5);
    assert.ok(
      result?.result,
      `the in-flight call must complete; the stream ended after ${finishedAt - t0} ms with: ${JSON.stringify(res.text.slice(0, 300))}`,
    );
    assert.match(result.result.content[0].text, /Long running operation completed/);
    assert.ok(finishedAt - t0 >= 1800, 'the call really ran its course');
    await expectCleanExit(gw);
  });
});
