// scripts/soak's orchestrator: a Release mcpgate in front of two real MCP servers, N
// long-lived event streams held through it for a bounded time under a request load, the
// gateway's RSS and descriptors sampled from /proc, bench/SOAK.md and a JSON written at the
// end. Run through scripts/soak (which installs, builds and raises the open-file limit); see
// its header for the options.
//
// Phases: idle baseline -> ramp (open the streams) -> steady state (streams held, request load,
// churn, upstream events; --minutes long) -> drain (every stream closed, the gateway idle again)
// -> SIGTERM (the gateway must exit 0 within its grace period).
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import * as cfg from './configs.mjs';
import { CLK_TCK, cpuTicks, describeFds, fdCount, killAll, memStatus, portFree, recordPidsIn, sleep, startPinned, stop, waitForPort } from './procs.mjs';
import { renderSoak, summarize } from './soak-report.mjs';
import { ensureTokens } from './tokens.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..', '..', '..');
const env = process.env;
const num = (name, dflt) => (env[name] !== undefined && env[name] !== '' ? Number(env[name]) : dflt);

const opt = {
  minutes: num('SOAK_MINUTES', 10),
  streams: num('SOAK_STREAMS', 5000),
  rps: num('SOAK_RPS', 100),
  churnPerMin: num('SOAK_CHURN', 5),
  sampleS: num('SOAK_SAMPLE', 5),
  eventS: num('SOAK_EVENT_INTERVAL', 10),
  liveShare: num('SOAK_LIVE_SHARE', 0.05),
  kinds: (env.SOAK_KINDS || 'listen,get').split(','),
  workers: num('SOAK_WORKERS', os.cpus().length),
  rampLimitS: num('SOAK_RAMP_LIMIT', 600),
  portBase: num('SOAK_PORT_BASE', 43000),
  out: env.SOAK_OUT || path.join(REPO, 'bench', 'SOAK.md'),
  json: env.SOAK_JSON || path.join(REPO, 'bench', 'soak.json'),
  cacheDir: env.SOAK_CACHE_DIR,  // default below: per port base, since the tokens name the issuer's port
  mcpgateBin: env.MCPGATE_BIN,
  nofile: num('SOAK_NOFILE', 1024),
  timeLimitS: num('SOAK_TIME_LIMIT', 3600),
  heap: env.SOAK_HEAP === '1',
};
if (!opt.mcpgateBin) throw new Error('MCPGATE_BIN is not set (scripts/soak sets it)');
opt.cacheDir = opt.cacheDir || path.join(REPO, 'build-bench', 'soak-cache', String(opt.portBase));
const startedAt = Date.now();

const runDir = env.SOAK_RUN_DIR || fs.mkdtempSync(path.join(os.tmpdir(), 'mcpgate-soak-'));
fs.mkdirSync(runDir, { recursive: true });
recordPidsIn(path.join(runDir, 'pids'));

const log = (msg) => {
  const t = new Date().toISOString().slice(11, 19);
  process.stderr.write(`[${t} +${Math.round((Date.now() - startedAt) / 1000)}s] ${msg}\n`);
};

const P = { modern: opt.portBase + 1, jwks: opt.portBase + 2, everything: opt.portBase + 3,
            gateway: opt.portBase + 10, admin: opt.portBase + 11 };
const ISSUER = `http://127.0.0.1:${P.jwks}`;
const AUDIENCE = `http://127.0.0.1:${P.gateway}/soak`;

const results = {
  opt: { ...opt }, ports: P, runDir, startedAt: new Date(startedAt).toISOString(), machine: {},
  samples: [], phases: {}, ramp: null, client: null, gatewayMetrics: {}, notes: [], shutdown: null,
};

// ---------------------------------------------------------------------------------------

function httpGet(port, p, timeoutMs = 3000) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, agent: false }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { data += d; });
      res.on('end', () => resolve({ status: res.statusCode, body: data }));
    });
    req.on('error', (e) => resolve({ status: 0, body: String(e) }));
    req.setTimeout(timeoutMs, () => req.destroy(new Error('timeout')));
  });
}

/** The gateway's own view: open streams and connections, and requests by status. */
async function scrapeMetrics() {
  const r = await httpGet(P.admin, '/metrics');
  if (r.status !== 200) return null;
  const gauge = (name) => Number((new RegExp(`^${name} (\\S+)$`, 'm').exec(r.body) || [])[1]);
  const byStatus = {};
  for (const m of r.body.matchAll(/^mcpgate_requests_total\{([^}]*)\} (\S+)$/gm)) {
    const status = (/status="(\d+)"/.exec(m[1]) || [])[1] ?? '?';
    byStatus[status] = (byStatus[status] ?? 0) + Number(m[2]);
  }
  const unreachable = [...r.body.matchAll(/^mcpgate_upstream_unreachable_total\{[^}]*\} (\S+)$/gm)]
    .reduce((n, m) => n + Number(m[1]), 0);
  return { activeStreams: gauge('mcpgate_active_streams'), activeConnections: gauge('mcpgate_active_connections'),
           requestsByStatus: byStatus, upstreamUnreachable: unreachable };
}

async function waitReady(proc, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if ((await httpGet(P.admin, '/readyz', 1000)).status === 200) return;
    if (await Promise.race([proc.exited.then(() => true), sleep(0).then(() => false)])) {
      throw new Error(`${proc.name} exited during start (see ${proc.logFile})`);
    }
    if (Date.now() > deadline) throw new Error(`${proc.name} not ready after ${timeoutMs} ms (see ${proc.logFile})`);
    await sleep(200);
  }
}

/** The soak client: JSON commands in, JSON lines out; ask(type) waits for the next answer of that type. */
function startClient(confJson) {
  const proc = startPinned('soak-client', null, ['node', path.join(HERE, 'servers', 'soak-client.mjs')], {
    env: { SOAK_CLIENT: JSON.stringify(confJson) },
    stdio: ['pipe', 'pipe', fs.openSync(path.join(runDir, 'soak-client.log'), 'a')],
  });
  const waiters = {};
  readline.createInterface({ input: proc.child.stdout }).on('line', (line) => {
    let m;
    try { m = JSON.parse(line); } catch { return; }
    const w = waiters[m.type]?.shift();
    if (w) w(m);
  });
  const command = (c) => proc.child.stdin.write(`${JSON.stringify(c)}\n`);
  const ask = (c, type, timeoutMs) => new Promise((resolve) => {
    const timer = setTimeout(() => { waiters[type] = (waiters[type] ?? []).filter((f) => f !== done); resolve(null); }, timeoutMs);
    const done = (m) => { clearTimeout(timer); resolve(m); };
    (waiters[type] ??= []).push(done);
    command(c);
  });
  return { proc, command, ask };
}

// ---------------------------------------------------------------------------------------

let gateway, client, tokens, probeToken, upstreams = [];
let phase = 'start';
let lastClientStats = null;

async function sample() {
  const g = memStatus(gateway.pid);
  const stats = await client.ask({ cmd: 'stats' }, 'stats', 4000);
  if (stats) lastClientStats = stats;
  const metrics = await scrapeMetrics();
  const s = {
    t: (Date.now() - startedAt) / 1000, phase, rssKiB: g.rssKiB, hwmKiB: g.hwmKiB, threads: g.threads, fds: fdCount(gateway.pid),
    cpuS: cpuTicks([gateway.pid]) / CLK_TCK, load1: os.loadavg()[0],
    upstreamRssKiB: Object.fromEntries(upstreams.map((u) => [u.name, memStatus(u.pid).rssKiB])),
    clientRssKiB: memStatus(client.proc.pid).rssKiB,
    streams: stats?.streams ?? null, listen: stats?.listen ?? null, get: stats?.get ?? null,
    requests: stats?.requests ?? null, errors: stats ? Object.values(stats.errors).reduce((a, b) => a + b, 0) : null,
    p50: stats?.latency.p50 ?? null, p99: stats?.latency.p99 ?? null, events: stats?.events ?? null,
    gwStreams: metrics?.activeStreams ?? null, gwConnections: metrics?.activeConnections ?? null,
  };
  results.samples.push(s);
  return s;
}

// Samples every opt.sampleS seconds until `until()` is true (or the time is up), logging a line a minute.
async function sampleWhile(label, seconds, until = () => false) {
  phase = label;
  const end = Date.now() + seconds * 1000;
  let lastLog = 0;
  results.phases[label] ??= { from: (Date.now() - startedAt) / 1000 };
  while (Date.now() < end && !until()) {
    const t0 = Date.now();
    const s = await sample();
    if (Date.now() - lastLog >= 60000) {
      lastLog = Date.now();
      log(`${label}: streams ${s.streams} (gateway: ${s.gwStreams}), RSS ${(s.rssKiB / 1024).toFixed(1)} MiB, fds ${s.fds}, ` +
          `requests ${s.requests}, errors ${s.errors}${s.errors ? ` ${JSON.stringify(lastClientStats?.errors)}` : ''}, ` +
          `p99 ${s.p99?.toFixed(1)} ms, load ${s.load1.toFixed(2)}`);
    }
    await sleep(Math.max(0, opt.sampleS * 1000 - (Date.now() - t0)));
  }
  results.phases[label].to = (Date.now() - startedAt) / 1000;
}

// --heap: glibc's own account of the gateway's heap (malloc_stats(), called through gdb, prints
// to the gateway's stderr, its log): bytes in use by live allocations vs bytes taken from the
// system. RSS can grow while "in use" stays flat (pages of blocks allocated earlier touched for
// the first time, or freed memory not given back); a leak grows "in use". gdb stops the gateway
// for about a second each time.
let logOffset = 0;
function recordHeap(label) {
  if (!opt.heap) return;
  const t0 = Date.now();
  const r = spawnSync('gdb', ['-p', String(gateway.pid), '-batch', '-nx', '-ex', 'call (void)malloc_stats()'], { encoding: 'utf8', timeout: 60000 });
  const pauseMs = Date.now() - t0;
  const logFile = path.join(runDir, 'mcpgate.log');
  const text = fs.readFileSync(logFile, 'utf8');
  const fresh = text.slice(logOffset);
  logOffset = text.length;
  const total = /Total \(incl\. mmap\):\s*system bytes\s*=\s*(\d+)\s*in use bytes\s*=\s*(\d+)/.exec(fresh);
  const entry = { label, t: (Date.now() - startedAt) / 1000, pauseMs, rssKiB: memStatus(gateway.pid).rssKiB };
  if (total) Object.assign(entry, { systemBytes: Number(total[1]), inUseBytes: Number(total[2]) });
  else entry.failure = `no malloc_stats output (gdb exit ${r.status}: ${(r.stderr || '').trim().slice(0, 200)})`;
  (results.heap ??= []).push(entry);
  log(`heap ${label}: ${total ? `in use ${(entry.inUseBytes / 1048576).toFixed(1)} MiB, from the system ${(entry.systemBytes / 1048576).toFixed(1)} MiB` : entry.failure} (gdb ${pauseMs} ms)`);
}

// The gateway's descriptors by kind (client sockets, upstream sockets by upstream and TCP state, ...).
function recordFds(label) {
  const names = { [P.gateway]: 'the gateway port (clients)', [P.admin]: 'the admin port', [P.modern]: 'the modern upstream',
                  [P.everything]: 'server-everything', [P.jwks]: 'the JWKS server' };
  (results.fdKinds ??= {})[label] = describeFds(gateway.pid, names);
}

/** One tools/list on each route through the gateway, on a fresh connection; true when both answer 200. */
async function probeRequest(token) {
  const meta = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientInfo': { name: 'soak-probe', version: '1' },
                 'io.modelcontextprotocol/clientCapabilities': {} };
  const post = (p, headers, body) => new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port: P.gateway, method: 'POST', path: p, agent: false,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers } },
    (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)); });
    req.on('error', () => resolve(0));
    req.setTimeout(5000, () => req.destroy());
    req.end(JSON.stringify(body));
  });
  const a = await post('/modern', { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/list' },
    { jsonrpc: '2.0', id: 1, method: 'tools/list', params: { _meta: meta } });
  const b = await post('/everything', {}, { jsonrpc: '2.0', id: 1, method: 'initialize',
    params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'soak-probe', version: '1' } } });
  return a === 200 && b === 200;
}

function describeMachine() {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const meminfo = fs.readFileSync('/proc/meminfo', 'utf8');
  const pkg = (dir) => { try { return JSON.parse(fs.readFileSync(path.join(REPO, 'node_modules', dir, 'package.json'), 'utf8')).version; } catch { return '?'; } };
  results.machine = {
    cpu: (/model name\s*:\s*(.*)/.exec(cpuinfo) || [])[1] ?? '?', cores: os.cpus().length,
    memGiB: (Number((/MemTotal:\s+(\d+)/.exec(meminfo) || [])[1]) / 1048576).toFixed(1), kernel: os.release(),
    node: process.version, everything: pkg('@modelcontextprotocol/server-everything'), sdk2: pkg('@modelcontextprotocol/server'),
    mcpgateBin: opt.mcpgateBin, mcpgateCommit: env.SOAK_MCPGATE_COMMIT || '?', nofile: opt.nofile,
    nice: Number(spawnSync('nice', [], { encoding: 'utf8' }).stdout.trim()), loadBefore: os.loadavg(),
  };
}

async function main() {
  for (const [name, port] of Object.entries(P)) {
    if (!(await portFree(port))) throw new Error(`port ${port} (${name}) is in use: set SOAK_PORT_BASE to another base`);
  }
  // Each stream holds two descriptors in the gateway (client and upstream sockets).
  const fdCap = Math.floor((opt.nofile - 512) / 2);
  if (opt.streams > fdCap) {
    results.notes.push(`open-file limit ${opt.nofile} caps the gateway at about ${fdCap} streams: held ${fdCap} instead of ${opt.streams}`);
    opt.streams = fdCap;
  }
  describeMachine();
  log(`run directory ${runDir}; report goes to ${opt.out}`);
  tokens = await ensureTokens(opt.cacheDir, { iss: ISSUER, aud: AUDIENCE, scope: cfg.TOKEN_SCOPE, rotate: 1000, distinct: 0, log });
  probeToken = fs.readFileSync(tokens.files.single, 'utf8').split('\n')[0];

  const modern = startPinned('soak-upstream', null, ['node', path.join(HERE, 'servers', 'soak-upstream.mjs')], {
    logFile: path.join(runDir, 'soak-upstream.log'),
    env: { PORT: String(P.modern), JWKS_PORT: String(P.jwks), JWKS_FILE: tokens.files.jwks, EVENT_MS: String(opt.eventS * 1000) },
  });
  const everything = startPinned('server-everything', null, ['node', '--import', path.join(REPO, 'tests', 'support', 'loopback.mjs'),
    path.join(REPO, 'node_modules', '@modelcontextprotocol', 'server-everything', 'dist', 'index.js'), 'streamableHttp'], {
    logFile: path.join(runDir, 'server-everything.log'), env: { PORT: String(P.everything) },
  });
  upstreams = [modern, everything];
  await waitForPort(P.modern, 15000, modern);
  await waitForPort(P.jwks, 15000, modern);
  await waitForPort(P.everything, 30000, everything);

  const yaml = cfg.mcpgate({
    port: P.gateway, adminPort: P.admin, upstreamPort: P.modern, issuer: ISSUER, jwksUri: `${ISSUER}/jwks.json`, audience: AUDIENCE,
    name: 'modern', path: '/modern', workers: opt.workers, maxConnections: Math.max(10000, opt.streams + 2000),
    extraRoutes: cfg.everythingRoute({ upstreamPort: P.everything, audience: AUDIENCE }),
  });
  const conf = path.join(runDir, 'mcpgate.yaml');
  fs.writeFileSync(conf, yaml);
  const check = spawnSync(opt.mcpgateBin, ['check', '--config', conf], { encoding: 'utf8' });
  if (check.status !== 0) throw new Error(`mcpgate check ${conf}: ${check.stdout}${check.stderr}`);
  gateway = startPinned('mcpgate', null, [opt.mcpgateBin, 'run', '--config', conf], { logFile: path.join(runDir, 'mcpgate.log') });
  await waitReady(gateway);
  results.gateway = { pid: gateway.pid, config: yaml };

  client = startClient({ port: P.gateway, modernPath: '/modern', everythingPath: '/everything', tokensFile: tokens.files.rotate,
                         liveShare: opt.liveShare, kinds: opt.kinds });
  log(`gateway (${opt.workers} workers) ready; idle baseline`);
  await sampleWhile('baseline', 15);
  recordFds('idle (baseline)');
  recordHeap('idle (baseline)');

  log(`ramp: opening ${opt.streams} streams (${opt.kinds.join(' + ')})`);
  let ramp = null;
  const rampAnswer = client.ask({ cmd: 'streams', n: opt.streams }, 'streams', opt.rampLimitS * 1000).then((m) => { ramp = m ?? { timedOut: true }; });
  await sampleWhile('ramp', opt.rampLimitS + 5, () => ramp !== null);
  await rampAnswer;
  results.ramp = ramp;
  log(`ramp: ${ramp.open ?? '?'} open in ${((ramp.ms ?? 0) / 1000).toFixed(1)} s (${ramp.failedOpens ?? '?'} failed opens)`);
  await sampleWhile('settle', 15);
  recordFds('after the ramp');
  recordHeap('after the ramp');

  log(`steady state: ${opt.minutes} min, ${opt.rps} req/s, churn ${opt.churnPerMin} %/min of the streams`);
  client.command({ cmd: 'load', rps: opt.rps });
  client.command({ cmd: 'churn', perMin: opt.churnPerMin });
  if (opt.heap) {
    for (let q = 1; q <= 4; q++) {
      await sampleWhile('steady', (opt.minutes * 60) / 4);
      recordHeap(`steady ${q * 25} %`);
    }
  } else {
    await sampleWhile('steady', opt.minutes * 60);
  }
  recordFds('end of the steady state');

  log('drain: closing every stream');
  client.command({ cmd: 'churn', perMin: 0 });
  let closed = null;
  const closeAnswer = client.ask({ cmd: 'close' }, 'closed', 60000).then((m) => { closed = m ?? { timedOut: true }; });
  await sampleWhile('close', 65, () => closed !== null);
  await closeAnswer;
  results.close = closed;
  // The client's final counters, then the client goes: its keep-alive connections close too.
  results.client = await client.ask({ cmd: 'stats' }, 'stats', 5000) ?? lastClientStats;
  client.command({ cmd: 'exit' });
  await Promise.race([client.proc.exited, sleep(3000)]);
  await stop(client.proc);
  await sampleWhile('idle', 30);
  recordFds('after the drain');
  recordHeap('after the drain');
  // libcurl prunes the dead connections of its cache only when it next starts a transfer: a few
  // requests (new connections, so both workers likely get some) show what is left after that.
  await Promise.all(Array.from({ length: 8 }, () => probeRequest(probeToken)));
  await sleep(2000);
  recordFds('after the drain + 8 requests');
  results.samples.at(-1).fdsAfterProbe = fdCount(gateway.pid);
  results.gatewayMetrics = await scrapeMetrics();

  log('SIGTERM to the gateway');
  const t0 = Date.now();
  process.kill(gateway.pid, 'SIGTERM');
  const code = await Promise.race([gateway.exited, sleep(15000).then(() => 'still running after 15 s')]);
  results.shutdown = { code, ms: Date.now() - t0 };
  await stop(gateway);
  for (const u of upstreams) results.upstreamAlive = { ...(results.upstreamAlive ?? {}), [u.name]: (await Promise.race([u.exited.then(() => false), sleep(0).then(() => true)])) };
  const lines = fs.readFileSync(path.join(runDir, 'mcpgate.log'), 'utf8').split('\n').filter(Boolean);
  results.gatewayLog = { lines: lines.length, warnings: lines.filter((l) => /warn|error|crit/i.test(l)).length,
                         first: lines.filter((l) => /warn|error|crit/i.test(l)).slice(0, 5).map((l) => l.slice(0, 300)) };
}

function writeReport() {
  results.finishedAt = new Date().toISOString();
  results.elapsedS = (Date.now() - startedAt) / 1000;
  results.machine.loadAfter = os.loadavg();
  try { results.summary = summarize(results); } catch (e) { results.notes.push(`summary failed: ${e.message}`); }
  for (const f of [opt.json, opt.out]) fs.mkdirSync(path.dirname(f), { recursive: true });
  fs.writeFileSync(opt.json, JSON.stringify(results, null, 1));
  fs.writeFileSync(opt.out, renderSoak(results, { jsonPath: path.relative(path.dirname(opt.out), opt.json) }));
  log(`wrote ${opt.out} and ${opt.json}`);
}

// Ctrl-C, the time limit: what was measured so far is still written, then everything is killed.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.removeAllListeners(signal);
  process.on(signal, () => {
    log(`${signal}: stopping`);
    killAll();
    results.notes.push(`stopped early by ${signal} in phase ${phase}`);
    try { writeReport(); } catch (e) { log(`report failed: ${e.message}`); }
    process.exit(130);
  });
}
const deadline = setTimeout(() => { log('time limit reached'); process.kill(process.pid, 'SIGTERM'); },
  Math.max(60, opt.timeLimitS - 60) * 1000);
deadline.unref();

let failure = null;
try {
  await main();
} catch (e) {
  failure = e;
  results.notes.push(`soak stopped early: ${e.message}`);
  log(e.stack);
} finally {
  killAll();
  writeReport();
}
process.exit(failure ? 1 : 0);
