// Reload on a changed config file (no signal), the audit log, and W3C
// traceparent handling, against the real gateway binary, real
// server-everything (legacy SSE mode, for a stream held open across a reload)
// and the real OIDC provider (npm oidc-provider) for JWTs.
//
// Mocks by necessity (see the comment at the top of each file):
// - echo-upstream: the only upstream that reports the exact request headers it
//   received (traceparent at the upstream) and which of two configs is live;
// - slow-upstream: a request that is still in flight when the reload happens.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';

import { startOidcProvider } from '../support/oidc-provider.mjs';
import { forgeToken, getTokenViaAuthCode } from '../support/oauth-client.mjs';
import {
  GATEWAY_BIN,
  TIME_SCALE,
  buildGatewayConfig,
  freePort,
  getMetrics,
  makeTempDir,
  makeTlsCa,
  mcpPost,
  metricValue,
  parseJsonLines,
  parseSse,
  sanitizerFindings,
  sleep,
  startEchoUpstream,
  startEverything,
  startGateway,
  startProcess,
  startSlowUpstream,
  toYaml,
  waitFor,
  waitForUrl,
} from '../support/harness.mjs';

const RELOADED = 'config reloaded';
const REJECTED = 'config reload rejected; the previous config stays in force';
// The gateway stats the file once per second; a change must be live within ~5 s.
const PICKUP_MS = 5000 * TIME_SCALE;

const toolCall = (name, id = 2) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: {} } });

// ---------------------------------------------------------------------------
// A gateway run on a config path this file chooses (a ConfigMap-style
// symlink, or a plain file), unlike startGateway which writes its own file.
// ---------------------------------------------------------------------------
async function runGatewayOn(configPath, { port, adminPort, scheme = 'http' }) {
  const proc = startProcess(GATEWAY_BIN, ['run', '--config', configPath], {
    name: 'mcpgate',
    env: {
      ASAN_OPTIONS: process.env.ASAN_OPTIONS ?? 'detect_leaks=1:halt_on_error=1:abort_on_error=0',
      UBSAN_OPTIONS: process.env.UBSAN_OPTIONS ?? 'print_stacktrace=1:halt_on_error=1',
    },
  });
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  try {
    await waitForUrl(`${adminUrl}/readyz`, { proc, timeoutMs: 15000 });
  } catch (e) {
    await proc.stop('SIGKILL');
    throw new Error(`gateway did not become ready: ${e.message}\noutput:\n${proc.output().slice(-4000)}`);
  }
  const gw = {
    port,
    adminPort,
    adminUrl,
    url: `${scheme}://127.0.0.1:${port}`,
    proc,
    jsonLogs: () => parseJsonLines(proc.stdout()),
    kill: (signal) => proc.proc.kill(signal),
    stop: (signal = 'SIGTERM') => proc.stop(signal, 12000 * TIME_SCALE),
    async stopCleanly() {
      const exit = await gw.stop();
      assert.equal(sanitizerFindings(proc.stderr()), '', 'sanitizer findings in gateway stderr');
      assert.equal(exit.code, 0, `gateway should exit 0 on SIGTERM, got ${JSON.stringify(exit)}`);
      return exit;
    },
  };
  return gw;
}

/**
 * A Kubernetes ConfigMap volume as the kubelet lays it out:
 *   dir/config.yaml -> ..data/config.yaml,  dir/..data -> ..vN (a directory).
 * publish(text) writes ..vN+1/config.yaml, points a temp symlink ..data_tmp at
 * it, renames that over ..data (atomic), then removes the previous version's
 * directory, as the kubelet does.
 */
function makeConfigMapDir() {
  const dir = makeTempDir('itest-cm-');
  let version = 0;
  const publish = (text) => {
    version += 1;
    const v = `..v${version}`;
    fs.mkdirSync(path.join(dir, v));
    fs.writeFileSync(path.join(dir, v, 'config.yaml'), text);
    if (version === 1) {
      fs.symlinkSync(v, path.join(dir, '..data'));
      fs.symlinkSync(path.join('..data', 'config.yaml'), path.join(dir, 'config.yaml'));
      return;
    }
    fs.symlinkSync(v, path.join(dir, '..data_tmp'));
    fs.renameSync(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
    fs.rmSync(path.join(dir, `..v${version - 1}`), { recursive: true, force: true });
  };
  return { dir, configPath: path.join(dir, 'config.yaml'), publish };
}

/** GET url; resolves {status, json?} and always drains the body. */
async function get(url) {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, json, text };
}

/** Poll GET url until it answers 200; resolves {json, at}. */
function waitServed(url, what) {
  return waitFor(
    async () => {
      const r = await get(url);
      return r.status === 200 ? { json: r.json, at: Date.now() } : false;
    },
    { timeoutMs: PICKUP_MS, intervalMs: 100, what },
  );
}

async function reloadCounts(gw) {
  const { samples } = await getMetrics(gw);
  return {
    success: metricValue(samples, 'mcpgate_config_reloads_total', { result: 'success' }),
    failure: metricValue(samples, 'mcpgate_config_reloads_total', { result: 'failure' }),
  };
}

/**
 * Open a legacy SSE GET stream and keep reading it in the background (bounded
 * by close()). Resolves once the endpoint event arrived.
 */
async function openLegacyStream(url) {
  const ac = new AbortController();
  const res = await fetch(url, { headers: { accept: 'text/event-stream' }, signal: ac.signal });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  const state = { text: '', ended: null };
  (async () => {
    for (let i = 0; i < 1_000_000; i++) {
      let r;
      try {
        r = await reader.read();
      } catch (e) {
        state.ended = `error: ${e.name}`;
        return;
      }
      if (r.done) {
        state.ended = 'done';
        return;
      }
      state.text += dec.decode(r.value, { stream: true });
    }
  })();
  const stream = {
    state,
    messages: () =>
      parseSse(state.text)
        .filter((e) => e.event === 'message')
        .map((e) => JSON.parse(e.data)),
    waitMessage: (id, what) =>
      waitFor(() => stream.messages().find((m) => m.id === id), { timeoutMs: 8000 * TIME_SCALE, what }),
    close: () => ac.abort(),
  };
  const endpoint = await waitFor(() => parseSse(state.text).find((e) => e.event === 'endpoint'), {
    timeoutMs: 8000 * TIME_SCALE,
    what: 'the endpoint event of the legacy SSE stream',
  });
  stream.endpoint = endpoint.data;
  return stream;
}

async function postLegacy(gwUrl, endpoint, message) {
  const res = await fetch(new URL(endpoint, gwUrl), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(message),
    signal: AbortSignal.timeout(5000),
  });
  await res.text();
  return res.status;
}

/** TLS handshake; resolves {ok, fingerprint} or {ok: false, code}. */
function handshake(port, ca) {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca });
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ ok: false, code: 'TIMEOUT' });
    }, 5000);
    s.once('secureConnect', () => {
      clearTimeout(timer);
      resolve({ ok: true, fingerprint: s.getPeerCertificate().fingerprint256 });
      s.destroy();
    });
    s.once('error', (e) => {
      clearTimeout(timer);
      resolve({ ok: false, code: e.code });
    });
  });
}

// ---------------------------------------------------------------------------
// A. Reload on file change
// ---------------------------------------------------------------------------
describe('reload when the config file changes (no signal)', () => {
  let everything;
  let echo;
  let slow;
  before(async () => {
    [everything, echo, slow] = await Promise.all([
      startEverything('sse'),
      startEchoUpstream(),
      startSlowUpstream({ delayMs: 3000 }),
    ]);
  });
  after(async () => {
    await Promise.all([everything?.stop(), echo?.close(), slow?.close()]);
  });

  describe('ConfigMap-style symlink swap', () => {
    let cm;
    let gw;
    let base;
    let stream;
    const routesV1 = () => [
      { name: 'legacy', path: '/legacy', upstream: everything.url, transport: 'sse' },
      { name: 'echo', path: '/echo', upstream: `${echo.origin}/one` },
      { name: 'slow', path: '/slow', upstream: `${slow.origin}/mcp` },
    ];
    const withRoutes = (routes) => toYaml(buildGatewayConfig({ ...base, routes }));

    before(async () => {
      base = { port: await freePort(), adminPort: await freePort() };
      cm = makeConfigMapDir();
      cm.publish(withRoutes(routesV1()));
      assert.ok(fs.lstatSync(cm.configPath).isSymbolicLink());
      gw = await runGatewayOn(cm.configPath, base);
    });
    after(async () => {
      stream?.close();
      await gw?.stopCleanly();
    });

    it('a swap adding a route is picked up; old routes, an open SSE stream and a slow request survive it', async () => {
      const added = { name: 'added', path: '/added', upstream: `${echo.origin}/two` };
      assert.equal((await get(`${gw.url}/added/x`)).status, 404, 'the new route does not exist yet');

      // A legacy SSE stream, working before the reload.
      stream = await openLegacyStream(`${gw.url}/legacy`);
      assert.match(stream.endpoint, /^\/legacy\/message\?sessionId=/);
      const initStatus = await postLegacy(gw.url, stream.endpoint, {
        jsonrpc: '2.0',
        id: 7,
        method: 'initialize',
        params: { protocolVersion: '2024-11-05', capabilities: {}, clientInfo: { name: 'reload-test', version: '1' } },
      });
      assert.equal(initStatus, 202);
      const init = await stream.waitMessage(7, 'the initialize result on the SSE stream');
      assert.ok(init.result?.serverInfo, JSON.stringify(init));

      const counts0 = await reloadCounts(gw);
      assert.notEqual(counts0.success, undefined, 'mcpgate_config_reloads_total{result="success"} is exposed');
      const logsBefore = gw.jsonLogs().length;

      // A request in flight across the reload (slow-upstream answers after 3 s).
      const slowCall = mcpPost(`${gw.url}/slow`, toolCall('slow', 41), { timeoutMs: 15000 }).then((r) => ({ ...r, at: Date.now() }));
      await sleep(200);
      cm.publish(withRoutes([...routesV1(), added]));

      const served = await waitServed(`${gw.url}/added/x?q=1`, 'the added route to be served after the symlink swap');
      assert.equal(served.json.url, '/two/x?q=1');
      const line = await waitFor(() => gw.jsonLogs().slice(logsBefore).find((l) => l.msg === RELOADED), {
        timeoutMs: 3000,
        what: 'the "config reloaded" log line',
      });
      assert.equal(line.trigger, 'file');
      assert.equal(line.level, 'info');

      const old = await get(`${gw.url}/echo/y`);
      assert.equal(old.status, 200);
      assert.equal(old.json.url, '/one/y');

      const slowRes = await slowCall;
      assert.equal(slowRes.status, 200, slowRes.text);
      assert.deepEqual(slowRes.json, { jsonrpc: '2.0', id: 41, result: { slow: true, delay: 3000 } });
      assert.ok(served.at < slowRes.at, 'the reload was live while the slow request was still in flight');

      // The stream opened before the swap is still open and still delivers.
      assert.equal(stream.state.ended, null, `the SSE stream ended across the reload (${stream.state.ended})`);
      assert.equal(await postLegacy(gw.url, stream.endpoint, { jsonrpc: '2.0', method: 'notifications/initialized' }), 202);
      assert.equal(await postLegacy(gw.url, stream.endpoint, { jsonrpc: '2.0', id: 8, method: 'tools/list' }), 202);
      const listed = await stream.waitMessage(8, 'the tools/list result on the pre-reload SSE stream');
      assert.ok(listed.result?.tools?.some((t) => t.name === 'echo'), JSON.stringify(listed).slice(0, 300));
      assert.equal(stream.state.ended, null);

      // One change, one reload.
      const counts1 = await reloadCounts(gw);
      assert.equal(counts1.success, counts0.success + 1, 'one successful reload counted');
      assert.equal(counts1.failure, counts0.failure, 'no failed reload');
      assert.equal(gw.jsonLogs().slice(logsBefore).filter((l) => l.msg === RELOADED).length, 1);
    });

    it('a bad config swapped in is rejected (log + metric), old routes keep serving; a good one afterwards is picked up', async () => {
      const added = { name: 'added', path: '/added', upstream: `${echo.origin}/two` };
      const counts0 = await reloadCounts(gw);
      const logsBefore = gw.jsonLogs().length;

      const bad = { name: 'bad', path: '/bad', upstream: `${echo.origin}/bad`, no_such_key: true };
      cm.publish(withRoutes([...routesV1(), added, bad]));
      const complaint = await waitFor(() => gw.jsonLogs().slice(logsBefore).find((l) => l.msg === REJECTED), {
        timeoutMs: PICKUP_MS,
        what: 'the "config reload rejected" log line',
      });
      assert.equal(complaint.level, 'error');
      assert.equal(complaint.trigger, 'file');
      await waitFor(async () => (await reloadCounts(gw)).failure === counts0.failure + 1, {
        timeoutMs: 3000,
        what: 'mcpgate_config_reloads_total{result="failure"} to count the rejected reload',
      });

      // The rejected file is not retried every second.
      await sleep(2200);
      const counts1 = await reloadCounts(gw);
      assert.equal(counts1.failure, counts0.failure + 1, 'one rejection for one bad file');
      assert.equal(counts1.success, counts0.success, 'no reload succeeded');
      assert.equal(gw.jsonLogs().slice(logsBefore).filter((l) => l.msg === REJECTED).length, 1);
      assert.ok(gw.proc.alive());

      assert.equal((await get(`${gw.url}/bad/x`)).status, 404, 'the rejected config is not applied');
      const old = await get(`${gw.url}/echo/z`);
      assert.equal(old.status, 200);
      assert.equal(old.json.url, '/one/z');
      const kept = await get(`${gw.url}/added/z`);
      assert.equal(kept.status, 200, 'the last good config stays in force');
      assert.equal(kept.json.url, '/two/z');
      assert.equal(stream.state.ended, null, 'the SSE stream survives a rejected reload too');

      // A good config afterwards is picked up again.
      const fixed = { name: 'fixed', path: '/fixed', upstream: `${echo.origin}/three` };
      cm.publish(withRoutes([...routesV1(), added, fixed]));
      const served = await waitServed(`${gw.url}/fixed/a`, 'the route of the good config after a rejected one');
      assert.equal(served.json.url, '/three/a');
      const ok = await waitFor(() => gw.jsonLogs().slice(logsBefore).find((l) => l.msg === RELOADED), {
        timeoutMs: 3000,
        what: 'the "config reloaded" log line',
      });
      assert.equal(ok.trigger, 'file');
      await waitFor(async () => (await reloadCounts(gw)).success === counts0.success + 1, {
        timeoutMs: 3000,
        what: 'mcpgate_config_reloads_total{result="success"} to count the good reload',
      });
      assert.equal((await get(`${gw.url}/bad/x`)).status, 404);
    });
  });

  it('an in-place rewrite of a plain config file is picked up; SIGHUP logs trigger "signal"', async () => {
    const base = { port: await freePort(), adminPort: await freePort() };
    const dir = makeTempDir('itest-plain-');
    const configPath = path.join(dir, 'mcpgate.yaml');
    const one = [{ name: 'echo', path: '/echo', upstream: `${echo.origin}/one` }];
    fs.writeFileSync(configPath, toYaml(buildGatewayConfig({ ...base, routes: one })));
    const gw = await runGatewayOn(configPath, base);
    try {
      assert.equal((await get(`${gw.url}/added/x`)).status, 404);
      const counts0 = await reloadCounts(gw);
      const logsBefore = gw.jsonLogs().length;
      const inode = fs.statSync(configPath).ino;
      fs.writeFileSync(
        configPath,
        toYaml(buildGatewayConfig({ ...base, routes: [...one, { name: 'added', path: '/added', upstream: `${echo.origin}/two` }] })),
      );
      assert.equal(fs.statSync(configPath).ino, inode, 'rewritten in place (same inode)');
      const served = await waitServed(`${gw.url}/added/x`, 'the added route after an in-place rewrite');
      assert.equal(served.json.url, '/two/x');
      const line = await waitFor(() => gw.jsonLogs().slice(logsBefore).find((l) => l.msg === RELOADED), {
        timeoutMs: 3000,
        what: 'the "config reloaded" log line',
      });
      assert.equal(line.trigger, 'file');
      await waitFor(async () => (await reloadCounts(gw)).success >= counts0.success + 1, {
        timeoutMs: 3000,
        what: 'the success counter',
      });
      const old = await get(`${gw.url}/echo/y`);
      assert.equal(old.json.url, '/one/y');

      const logsBeforeHup = gw.jsonLogs().length;
      gw.kill('SIGHUP');
      const hup = await waitFor(() => gw.jsonLogs().slice(logsBeforeHup).find((l) => l.msg === RELOADED), {
        timeoutMs: 5000 * TIME_SCALE,
        what: 'the "config reloaded" line after SIGHUP',
      });
      assert.equal(hup.trigger, 'signal');
    } finally {
      await gw.stopCleanly();
    }
  });

  it('rewriting server.tls cert_file/key_file (config file untouched) reloads the certificate', async () => {
    const ca = makeTlsCa();
    const base = { port: await freePort(), adminPort: await freePort() };
    const dir = makeTempDir('itest-tlsw-');
    const configPath = path.join(dir, 'mcpgate.yaml');
    const cfg = buildGatewayConfig({
      ...base,
      tls: { certFile: ca.certFile, keyFile: ca.keyFile },
      routes: [{ name: 'echo', path: '/echo', upstream: `${echo.origin}/one` }],
    });
    fs.writeFileSync(configPath, toYaml(cfg));
    const configBefore = fs.readFileSync(configPath, 'utf8');
    const gw = await runGatewayOn(configPath, { ...base, scheme: 'https' });
    try {
      const first = await handshake(gw.port, ca.caPem);
      assert.ok(first.ok, JSON.stringify(first));
      assert.equal(first.fingerprint, ca.fingerprint);
      const logsBefore = gw.jsonLogs().length;
      const next = ca.issue('server-rotated');
      assert.notEqual(next.fingerprint, ca.fingerprint);
      fs.copyFileSync(next.keyFile, ca.keyFile);
      fs.copyFileSync(next.certFile, ca.certFile);
      const h = await waitFor(
        async () => {
          const x = await handshake(gw.port, ca.caPem);
          return x.ok && x.fingerprint === next.fingerprint ? x : false;
        },
        { timeoutMs: PICKUP_MS, intervalMs: 200, what: 'the rotated certificate to be served without a signal' },
      );
      assert.equal(h.fingerprint, next.fingerprint);
      assert.equal(fs.readFileSync(configPath, 'utf8'), configBefore, 'the config file itself did not change');
      const line = gw.jsonLogs().slice(logsBefore).find((l) => l.msg === RELOADED);
      assert.ok(line, 'a "config reloaded" line');
      assert.equal(line.trigger, 'file');
      assert.ok(gw.proc.alive());
    } finally {
      await gw.stopCleanly();
    }
  });
});

// ---------------------------------------------------------------------------
// B + C. Audit log and traceparent
// ---------------------------------------------------------------------------
const hex = (bytes) => crypto.randomBytes(bytes).toString('hex');
function makeTraceparent() {
  const traceId = hex(16);
  return { traceId, header: `00-${traceId}-${hex(8)}-01` };
}
const GENERATED = /^00-([0-9a-f]{32})-([0-9a-f]{16})-00$/;
const ZERO32 = '0'.repeat(32);
const ZERO16 = '0'.repeat(16);
const claimsOf = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'));
const isAudit = (l) => l.msg === 'audit' || l.logger === 'audit';

describe('audit log and traceparent (JWT route, real oidc-provider)', () => {
  let idp;
  let echo;
  let gw; // log.audit_log: true
  let gwOff; // log.audit_log: false
  let gwDefault; // log.audit_log not set
  let notesUrl;
  let offUrl;
  let defaultUrl;
  const tokens = {};

  const notesRoute = () => ({
    name: 'notes',
    path: '/notes',
    upstream: `${echo.origin}/mcp`,
    allowed_origins: ['https://app.example'],
    auth: { type: 'jwt', server: 'idp', required_scopes: ['read:notes'] },
    tools: { delete_note: { scopes: ['admin'] } },
  });
  const asYaml = () =>
    toYaml({ authorization_servers: { idp: { issuer: idp.issuer, type: 'oidc', discovery: 'eager' } } });

  before(async () => {
    [idp, echo] = await Promise.all([startOidcProvider(), startEchoUpstream()]);
    const [port, offPort, defaultPort] = await Promise.all([freePort(), freePort(), freePort()]);
    notesUrl = `http://127.0.0.1:${port}/notes`;
    offUrl = `http://127.0.0.1:${offPort}/notes`;
    defaultUrl = `http://127.0.0.1:${defaultPort}/notes`;
    // allSettled: a gateway that did start is stopped in after() even when another one failed.
    const started = await Promise.allSettled([
      startGateway({ port, log: { audit_log: true }, routes: [notesRoute()], extraYaml: asYaml() }),
      startGateway({ port: offPort, log: { audit_log: false }, routes: [notesRoute()], extraYaml: asYaml() }),
      startGateway({ port: defaultPort, routes: [notesRoute()], extraYaml: asYaml() }),
    ]);
    [gw, gwOff, gwDefault] = started.map((r) => (r.status === 'fulfilled' ? r.value : undefined));
    const failed = started.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
    tokens.reader = (await getTokenViaAuthCode({ issuer: idp.issuer, resource: notesUrl, scope: 'openid read:notes' })).access_token;
    tokens.offReader = (await getTokenViaAuthCode({ issuer: idp.issuer, resource: offUrl, scope: 'openid read:notes' }))
      .access_token;
  });
  after(async () => {
    try {
      await Promise.all([gw?.stopCleanly(), gwOff?.stopCleanly(), gwDefault?.stopCleanly()]);
    } finally {
      await Promise.all([idp?.stop(), echo?.close()]);
    }
  });

  const auditLines = (g = gw) => g.jsonLogs().filter(isAudit);
  const waitAudit = (pred, what, g = gw) =>
    waitFor(() => auditLines(g).find(pred), { timeoutMs: 5000 * TIME_SCALE, what: `the audit line of ${what}` });
  const waitAccess = (pred, what, g = gw) =>
    waitFor(() => g.accessLogs().find(pred), { timeoutMs: 5000 * TIME_SCALE, what: `the access line of ${what}` });

  function assertAuditShape(a) {
    assert.equal(a.logger, 'audit');
    assert.equal(a.msg, 'audit');
    assert.match(a.trace_id, /^[0-9a-f]{32}$/);
    assert.notEqual(a.trace_id, ZERO32);
  }

  it('allow: tools/call with a good token -> one audit record, field by field; the traceparent reaches the upstream unchanged', async () => {
    const tp = makeTraceparent();
    const before = echo.requests.length;
    const res = await mcpPost(notesUrl, toolCall('search_notes', 31), {
      headers: { authorization: `Bearer ${tokens.reader}`, traceparent: tp.header },
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(echo.requests.length, before + 1);
    const seen = echo.requests.at(-1);
    assert.equal(seen.headers.traceparent, tp.header, 'a valid traceparent is forwarded unchanged');
    assert.equal(seen.rawHeaders.filter(([n]) => n.toLowerCase() === 'traceparent').length, 1);

    const claims = claimsOf(tokens.reader);
    assert.equal(claims.sub, 'alice');
    assert.ok(claims.client_id, 'the provider put client_id in the token');
    const a = await waitAudit((l) => l.trace_id === tp.traceId, 'the allowed call');
    assertAuditShape(a);
    assert.equal(a.route, 'notes');
    assert.equal(a.http_method, 'POST');
    assert.equal(a.rpc_method, 'tools/call');
    assert.equal(a.tool, 'search_notes');
    assert.equal(a.subject, claims.sub);
    assert.equal(a.client_id, claims.client_id);
    assert.equal(a.decision, 'allow');
    assert.equal(a.reason, 'ok');
    assert.equal(a.status, 200);
    assert.equal(a.credential, 'none');
    assert.equal(a.upstream_status, 200);

    const access = await waitAccess((l) => l.trace_id === tp.traceId, 'the allowed call');
    assert.equal(access.status, 200);
    assert.equal(auditLines().filter((l) => l.trace_id === tp.traceId).length, 1, 'exactly one audit record per request');
  });

  it('deny, no token: 401, reason "unauthorized", no subject, nothing forwarded', async () => {
    const tp = makeTraceparent();
    const before = echo.requests.length;
    const res = await mcpPost(notesUrl, toolCall('probe_anon', 32), { headers: { traceparent: tp.header } });
    assert.equal(res.status, 401, res.text);
    assert.equal(echo.requests.length, before);
    const a = await waitAudit((l) => l.trace_id === tp.traceId, 'the tokenless call');
    assertAuditShape(a);
    assert.equal(a.route, 'notes');
    assert.equal(a.http_method, 'POST');
    assert.equal(a.rpc_method, 'tools/call');
    assert.equal(a.tool, 'probe_anon');
    assert.equal(a.decision, 'deny');
    assert.equal(a.reason, 'unauthorized');
    assert.equal(a.status, 401);
    assert.equal(a.subject, undefined);
    assert.equal(a.client_id, undefined);
    assert.equal(a.upstream_status, undefined);
    assert.equal(a.credential, 'none');
    const access = await waitAccess((l) => l.trace_id === tp.traceId, 'the tokenless call');
    assert.equal(access.status, 401);
  });

  it('deny, forged token: 401, reason "invalid_token", no subject', async () => {
    const tp = makeTraceparent();
    const forged = await forgeToken('bad-signature', { provider: idp, audience: notesUrl, baseToken: tokens.reader });
    const res = await mcpPost(notesUrl, toolCall('probe_forged', 33), {
      headers: { authorization: `Bearer ${forged}`, traceparent: tp.header },
    });
    assert.equal(res.status, 401, res.text);
    const a = await waitAudit((l) => l.trace_id === tp.traceId, 'the forged-token call');
    assertAuditShape(a);
    assert.equal(a.decision, 'deny');
    assert.equal(a.reason, 'invalid_token');
    assert.equal(a.status, 401);
    assert.equal(a.subject, undefined);
    assert.equal(a.upstream_status, undefined);
    assert.equal(a.tool, 'probe_forged');
    assert.ok(!gw.logs().includes(forged.split('.')[2]), 'the forged token is not logged');
  });

  it('deny, insufficient scope: 403, reason "insufficient_scope", subject present, not forwarded', async () => {
    const tp = makeTraceparent();
    const before = echo.requests.length;
    const res = await mcpPost(notesUrl, toolCall('delete_note', 34), {
      headers: { authorization: `Bearer ${tokens.reader}`, traceparent: tp.header },
    });
    assert.equal(res.status, 403, res.text);
    assert.equal(echo.requests.length, before);
    const claims = claimsOf(tokens.reader);
    const a = await waitAudit((l) => l.trace_id === tp.traceId, 'the under-scoped call');
    assertAuditShape(a);
    assert.equal(a.route, 'notes');
    assert.equal(a.http_method, 'POST');
    assert.equal(a.rpc_method, 'tools/call');
    assert.equal(a.tool, 'delete_note');
    assert.equal(a.decision, 'deny');
    assert.equal(a.reason, 'insufficient_scope');
    assert.equal(a.status, 403);
    assert.equal(a.subject, claims.sub);
    assert.equal(a.client_id, claims.client_id);
    assert.equal(a.upstream_status, undefined);
    assert.equal(a.credential, 'none');
  });

  it('a disallowed Origin is refused before authentication: no audit record (access line with trace_id only)', async () => {
    const tp = makeTraceparent();
    const res = await mcpPost(notesUrl, toolCall('probe_origin', 35), {
      headers: { authorization: `Bearer ${tokens.reader}`, traceparent: tp.header, origin: 'https://evil.example' },
    });
    assert.equal(res.status, 403, res.text);
    const access = await waitAccess((l) => l.trace_id === tp.traceId, 'the foreign-origin call');
    assert.equal(access.status, 403);
    // A later request's audit line being out means the earlier one would be too.
    const marker = makeTraceparent();
    assert.equal((await mcpPost(notesUrl, toolCall('probe_marker', 36), { headers: { traceparent: marker.header } })).status, 401);
    await waitAudit((l) => l.trace_id === marker.traceId, 'the marker call');
    assert.deepEqual(
      auditLines().filter((l) => l.trace_id === tp.traceId || l.tool === 'probe_origin'),
      [],
      'origin_not_allowed happens before authentication: no audit record',
    );
  });

  it('no traceparent: the upstream gets a generated one, and its trace id is the logged trace_id', async () => {
    const res = await mcpPost(notesUrl, toolCall('probe_generated', 37), { headers: { authorization: `Bearer ${tokens.reader}` } });
    assert.equal(res.status, 200, res.text);
    const seen = echo.requests.at(-1);
    assert.match(seen.body, /probe_generated/);
    const m = GENERATED.exec(seen.headers.traceparent ?? '');
    assert.ok(m, `generated traceparent is 00-<32 hex>-<16 hex>-00: ${seen.headers.traceparent}`);
    assert.notEqual(m[1], ZERO32);
    assert.notEqual(m[2], ZERO16);
    const a = await waitAudit((l) => l.tool === 'probe_generated', 'the call without traceparent');
    assertAuditShape(a);
    assert.equal(a.trace_id, m[1]);
    assert.equal(a.decision, 'allow');
    const access = await waitAccess((l) => l.trace_id === m[1], 'the call without traceparent (by its generated trace id)');
    assert.equal(access.status, 200);
  });

  it('an invalid traceparent is not forwarded: replaced by a generated one, whose trace id is logged', async () => {
    const clientTrace = hex(16);
    const invalid = [
      '00-zzz',
      `00-${ZERO32}-${hex(8)}-01`, // all-zero trace id
      `00-${clientTrace}-${ZERO16}-01`, // all-zero parent id
    ];
    const generatedIds = new Set();
    for (const [i, bad] of invalid.entries()) {
      const tool = `probe_invalid_${i}`;
      const res = await mcpPost(notesUrl, toolCall(tool, 40 + i), {
        headers: { authorization: `Bearer ${tokens.reader}`, traceparent: bad },
      });
      assert.equal(res.status, 200, `${bad}: ${res.text}`);
      const seen = echo.requests.at(-1);
      assert.match(seen.body, new RegExp(tool));
      assert.notEqual(seen.headers.traceparent, bad, `${bad} must not be forwarded as is`);
      assert.equal(seen.rawHeaders.filter(([n]) => n.toLowerCase() === 'traceparent').length, 1, `${bad}: one traceparent upstream`);
      const m = GENERATED.exec(seen.headers.traceparent ?? '');
      assert.ok(m, `${bad}: replaced by a generated 00-<32 hex>-<16 hex>-00, got ${seen.headers.traceparent}`);
      assert.notEqual(m[1], ZERO32);
      assert.notEqual(m[2], ZERO16);
      assert.notEqual(m[1], clientTrace, `${bad}: a fresh trace id, not the client's`);
      generatedIds.add(m[1]);
      const a = await waitAudit((l) => l.tool === tool, `the call with traceparent ${bad}`);
      assert.equal(a.trace_id, m[1], `${bad}: the audit trace_id is the generated one`);
    }
    assert.equal(generatedIds.size, invalid.length, 'each generated trace id is new');
  });

  const modernHeaders = (tool) => ({ 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': tool });

  it('2026-07-28: the traceparent also reaches the upstream in params._meta (SEP-414), every other body byte as sent', async () => {
    const tp = makeTraceparent();
    const body = `{"jsonrpc":"2.0","id":61,"method":"tools/call","params":{"name":"probe_meta","arguments":{"n":1.10,"s":"\\u00e9"}}}`;
    const res = await mcpPost(notesUrl, body, {
      headers: { authorization: `Bearer ${tokens.reader}`, traceparent: tp.header, ...modernHeaders('probe_meta') },
    });
    assert.equal(res.status, 200, res.text);
    const seen = echo.requests.at(-1);
    assert.equal(seen.headers.traceparent, tp.header);
    assert.equal(JSON.parse(seen.body).params._meta.traceparent, tp.header);
    assert.equal(seen.body, body.replace('"params":{', `"params":{"_meta":{"traceparent":"${tp.header}"},`));
    assert.equal(Number(seen.headers['content-length']), Buffer.byteLength(seen.body));
  });

  it('2026-07-28: a traceparent only in params._meta is the trace: sent upstream as the header, logged, the body untouched', async () => {
    const tp = makeTraceparent();
    const body = JSON.stringify({
      jsonrpc: '2.0', id: 62, method: 'tools/call',
      params: { name: 'probe_meta_only', arguments: {}, _meta: { traceparent: tp.header, progressToken: 3 } },
    });
    const res = await mcpPost(notesUrl, body, {
      headers: { authorization: `Bearer ${tokens.reader}`, ...modernHeaders('probe_meta_only') },
    });
    assert.equal(res.status, 200, res.text);
    const seen = echo.requests.at(-1);
    assert.equal(seen.headers.traceparent, tp.header);
    assert.equal(seen.body, body);
    const a = await waitAudit((l) => l.tool === 'probe_meta_only', 'the call with _meta.traceparent only');
    assert.equal(a.trace_id, tp.traceId);
  });

  it('2025-era requests keep their body as sent: the trace context goes in the header only', async () => {
    const tp = makeTraceparent();
    const body = JSON.stringify(toolCall('probe_meta_legacy', 63));
    const res = await mcpPost(notesUrl, body, {
      headers: { authorization: `Bearer ${tokens.reader}`, traceparent: tp.header, 'mcp-protocol-version': '2025-11-25' },
    });
    assert.equal(res.status, 200, res.text);
    const seen = echo.requests.at(-1);
    assert.equal(seen.body, body);
    assert.equal(seen.headers.traceparent, tp.header);
  });

  it('no audit line (nor any log line) carries the token', async () => {
    const lines = auditLines();
    assert.ok(lines.length >= 6, `audit lines so far: ${lines.length}`);
    const signature = tokens.reader.split('.')[2];
    for (const l of lines) {
      const text = JSON.stringify(l);
      assert.ok(!text.includes(tokens.reader) && !text.includes(signature), `token in audit line: ${text}`);
      assertAuditShape(l);
    }
    assert.ok(!gw.logs().includes(tokens.reader), 'the token appears nowhere in the logs');
  });

  it('log.audit_log: false -> no audit lines; unset -> audit lines (default true)', async () => {
    const tool = (n) => `probe_off_${n}`;
    const tps = [makeTraceparent(), makeTraceparent(), makeTraceparent()];
    assert.equal((await mcpPost(offUrl, toolCall(tool('anon'), 51), { headers: { traceparent: tps[0].header } })).status, 401);
    const allowed = await mcpPost(offUrl, toolCall(tool('ok'), 52), {
      headers: { authorization: `Bearer ${tokens.offReader}`, traceparent: tps[1].header },
    });
    assert.equal(allowed.status, 200, allowed.text);
    const scoped = await mcpPost(offUrl, toolCall('delete_note', 53), {
      headers: { authorization: `Bearer ${tokens.offReader}`, traceparent: tps[2].header },
    });
    assert.equal(scoped.status, 403);
    for (const [i, tp] of tps.entries()) {
      const name = [tool('anon'), tool('ok'), 'delete_note'][i];
      await waitAccess((l) => l.trace_id === tp.traceId || l.tool === name, `${name} (audit off)`, gwOff);
    }
    assert.deepEqual(auditLines(gwOff), [], 'audit_log: false writes no audit records');
    assert.ok(!gwOff.logs().includes('"logger":"audit"'));

    assert.equal((await mcpPost(defaultUrl, toolCall('probe_default', 54))).status, 401);
    const a = await waitAudit((l) => l.tool === 'probe_default', 'the tokenless call (audit_log unset)', gwDefault);
    assertAuditShape(a);
    assert.equal(a.decision, 'deny');
    assert.equal(a.reason, 'unauthorized');
    assert.equal(a.status, 401);
  });
});
