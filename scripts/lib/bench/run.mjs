// scripts/bench's orchestrator: starts every system under test, runs the interleaved wrk
// cells, the growth measurements, and writes bench/RESULTS.md. Run through scripts/bench
// (which installs what is needed and builds mcpgate); see its header for the options.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import * as cfg from './configs.mjs';
import {
  CLK_TCK, coreDelta, coreTimes, cpuTicks, killAll, portFree, processTree, reapedChildTicks, recordPidsIn, rssKiB,
  runPinned, selfTicks, sleep, startPinned, stop, waitForPort,
} from './procs.mjs';
import { render } from './report.mjs';
import { ensureTokens } from './tokens.mjs';
import { runWrk } from './wrk.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..', '..', '..');
const env = process.env;
const quick = process.argv.includes('--quick');
const num = (name, dflt) => (env[name] !== undefined && env[name] !== '' ? Number(env[name]) : dflt);

const rounds = num('BENCH_ROUNDS', quick ? 1 : 3);
const duration = num('BENCH_DURATION', quick ? 3 : 10);
const opt = {
  quick, rounds, duration,
  warmup: num('BENCH_WARMUP', quick ? 1 : 2),
  threads: 2, connections: 64,
  // Distinct-token cells read each token once, each system from its own position: enough for
  // 16000 fresh RS256 tokens a second on one core (a verify alone is ~26 us here, the fastest
  // verifying proxy measured needs over 2.5 times that per request). A wrap is detected.
  distinctTokens: num('BENCH_DISTINCT_TOKENS', rounds * duration * 16000),
  rotations: [1, 1000, quick ? 20000 : 100000],
  streams: quick ? [1, 100, 1000] : [1, 1000, 10000],
  bodies: quick ? [1024, 16384, 262144] : [1024, 16384, 131072, 1048576],
  routeCounts: [1, 10, 100],
  portBase: num('BENCH_PORT_BASE', 42000),
  out: env.BENCH_OUT || path.join(REPO, 'bench', 'RESULTS.md'),
  cacheDir: env.BENCH_CACHE_DIR || path.join(REPO, 'build-bench', 'bench-cache'),
  mcpgateBin: env.MCPGATE_BIN,
  timeLimit: num('BENCH_TIME_LIMIT', quick ? 900 : 3600),
  phases: new Set((env.BENCH_PHASES || 'main,routes,tokens,tools,bodies,idle,streams').split(',')),
  quietThreshold: num('BENCH_QUIET_THRESHOLD', 0.15),  // a core busier than this (bench idle): wait
  quietPerCell: num('BENCH_QUIET_WAIT', quick ? 10 : 30),
  quietBudget: num('BENCH_QUIET_BUDGET', quick ? 60 : 300),
  nofile: num('BENCH_NOFILE', 1024),
};
if (!opt.mcpgateBin) throw new Error('MCPGATE_BIN is not set (scripts/bench sets it)');
const startedAt = Date.now();
const softDeadline = startedAt + (opt.timeLimit - 120) * 1000;

const runDir = env.BENCH_RUN_DIR || fs.mkdtempSync(path.join(os.tmpdir(), 'mcpgate-bench-'));
fs.mkdirSync(runDir, { recursive: true });
fs.chmodSync(runDir, 0o755);  // nginx workers (nobody) read the static files
recordPidsIn(path.join(runDir, 'pids'));
const staticDir = path.join(runDir, 'static');
fs.mkdirSync(staticDir, { recursive: true, mode: 0o755 });

const log = (msg) => {
  const t = new Date().toISOString().slice(11, 19);
  process.stderr.write(`[${t} +${Math.round((Date.now() - startedAt) / 1000)}s] ${msg}\n`);
};

const P = {
  upstream: opt.portBase + 1, jwks: opt.portBase + 2,
  nginx: opt.portBase + 10, haproxy: opt.portBase + 11, mcpAuth: opt.portBase + 12, sdk: opt.portBase + 13,
  mcpgate: opt.portBase + 20, mcpgateAdmin: opt.portBase + 21, audit: opt.portBase + 22, auditAdmin: opt.portBase + 23,
  r10: opt.portBase + 24, r10Admin: opt.portBase + 25, r100: opt.portBase + 26, r100Admin: opt.portBase + 27,
  tools: opt.portBase + 28, toolsAdmin: opt.portBase + 29, sse: opt.portBase + 30, sseAdmin: opt.portBase + 31,
  sseUpstream: opt.portBase + 32, quickstart: opt.portBase + 40, quickstartAdmin: opt.portBase + 41,
};
const ISSUER = `http://127.0.0.1:${P.jwks}`;
const JWKS_URI = `${ISSUER}/jwks.json`;
const AUDIENCE = `http://127.0.0.1:${P.mcpgate}/bench`;

const results = {
  opt: { ...opt, phases: [...opt.phases] }, ports: P, issuer: ISSUER, audience: AUDIENCE, runDir,
  startedAt: new Date(startedAt).toISOString(), machine: {}, cells: [], probes: [], idleRss: {},
  streams: null, quickstartRss: null, notes: [], skipped: [], quiet: { waitedS: 0 },
};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

function sh(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return `${r.stdout || ''}${r.stderr || ''}`.trim();
}

function request({ port, method = 'POST', path: p, headers = {}, body, timeoutMs = 5000 }) {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: p, headers, agent: false }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { data += d; });
      res.on('end', () => resolve({ status: res.statusCode, body: data }));
    });
    req.on('error', (e) => resolve({ status: 0, body: String(e) }));
    req.setTimeout(timeoutMs, () => req.destroy(new Error('timeout')));
    if (body) req.end(body); else req.end();
  });
}

async function waitReady(adminPort, proc, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await request({ port: adminPort, method: 'GET', path: '/readyz', timeoutMs: 1000 });
    if (r.status === 200) return;
    if (proc && (await Promise.race([proc.exited.then(() => true), sleep(0).then(() => false)]))) {
      throw new Error(`${proc.name} exited during start (see ${proc.logFile})`);
    }
    if (Date.now() > deadline) throw new Error(`${proc?.name ?? adminPort} not ready after ${timeoutMs} ms (see ${proc?.logFile})`);
    await sleep(100);
  }
}

function median(values) {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

function write(name, text, mode) {
  const f = path.join(runDir, name);
  fs.writeFileSync(f, text, mode ? { mode } : undefined);
  return f;
}

function timeLeft() {
  return Date.now() < softDeadline;
}

// Waits (bounded) until both cores are quiet while the bench is idle: other people's
// builds on this machine would otherwise land in the numbers. Returns seconds waited.
async function waitQuiet() {
  if (results.quiet.waitedS >= opt.quietBudget) return 0;
  const t0 = Date.now();
  for (;;) {
    const a = coreTimes();
    await sleep(500);
    const d = coreDelta(a, coreTimes());
    const busiest = Math.max(...Object.values(d).map((c) => (c.total > 0 ? c.busy / c.total : 0)));
    const waited = (Date.now() - t0) / 1000;
    if (busiest < opt.quietThreshold) break;
    if (waited >= opt.quietPerCell || results.quiet.waitedS + waited >= opt.quietBudget) break;
  }
  const waited = (Date.now() - t0) / 1000 - 0.5;
  results.quiet.waitedS += Math.max(0, waited);
  return waited;
}

// ---------------------------------------------------------------------------------------
// The systems
// ---------------------------------------------------------------------------------------

const procs = {};
let tokens;          // ensureTokens() result
let bodyFiles = {};  // name -> path

async function startNginx(name, core, text, port) {
  fs.mkdirSync(path.join(runDir, `${name}-tmp`), { recursive: true, mode: 0o755 });
  const conf = write(`${name}.conf`, text);
  const proc = startPinned(name, core, ['nginx', '-c', conf], { logFile: path.join(runDir, `${name}.log`) });
  await waitForPort(port, 10000, proc);
  return proc;
}

async function startMcpgate(name, port, adminPort, yaml) {
  const conf = write(`${name}.yaml`, yaml);
  const check = spawnSync(opt.mcpgateBin, ['check', '--config', conf], { encoding: 'utf8' });
  if (check.status !== 0) throw new Error(`mcpgate check ${conf}: ${check.stdout}${check.stderr}`);
  const proc = startPinned(name, 1, [opt.mcpgateBin, 'run', '--config', conf], { logFile: path.join(runDir, `${name}.log`) });
  await waitReady(adminPort, proc);
  await sleep(300);
  results.idleRss[name] = rssKiB(processTree(proc.pid));
  return proc;
}

function mcpgateYaml(extra) {
  return cfg.mcpgate({ upstreamPort: P.upstream, issuer: ISSUER, jwksUri: JWKS_URI, audience: AUDIENCE, ...extra });
}

async function startSystems() {
  const tools = cfg.toolsListResult(500);
  fs.writeFileSync(path.join(staticDir, 'tools'), tools.json);
  fs.copyFileSync(tokens.files.jwks, path.join(staticDir, 'jwks.json'));
  fs.chmodSync(path.join(staticDir, 'tools'), 0o644);
  fs.chmodSync(path.join(staticDir, 'jwks.json'), 0o644);
  const workerConnections = Math.max(1024, Math.min(8192, opt.nofile - 128));

  log('starting the upstream nginx (core 0) and the proxies (core 1)');
  procs.upstream = await startNginx('upstream', 0, cfg.upstreamNginx({ dir: runDir, port: P.upstream, jwksPort: P.jwks,
    connections: workerConnections }), P.upstream);
  procs.nginx = await startNginx('nginx-proxy', 1, cfg.proxyNginx({ dir: runDir, port: P.nginx, upstreamPort: P.upstream }), P.nginx);

  const haConf = write('haproxy.cfg', cfg.haproxy({ port: P.haproxy, upstreamPort: P.upstream, pubPem: tokens.files.pub,
    issuer: ISSUER, audience: AUDIENCE }));
  procs.haproxy = startPinned('haproxy', 1, ['haproxy', '-db', '-f', haConf], { logFile: path.join(runDir, 'haproxy.log') });
  await waitForPort(P.haproxy, 10000, procs.haproxy);

  const nodeEnv = { UPSTREAM_PORT: String(P.upstream), ISSUER, AUDIENCE, JWKS_URI, JWKS_FILE: tokens.files.jwks,
                    REQUIRED_SCOPE: cfg.REQUIRED_SCOPE, NODE_ENV: 'production' };
  const nodeProxy = path.join(HERE, 'servers', 'node-proxy.mjs');
  procs['mcp-auth'] = startPinned('mcp-auth', 1, ['node', nodeProxy, 'mcp-auth'],
    { logFile: path.join(runDir, 'mcp-auth.log'), env: { ...nodeEnv, PORT: String(P.mcpAuth) }, cwd: HERE });
  procs.sdk = startPinned('sdk', 1, ['node', nodeProxy, 'sdk'],
    { logFile: path.join(runDir, 'sdk.log'), env: { ...nodeEnv, PORT: String(P.sdk) }, cwd: HERE });
  await waitForPort(P.mcpAuth, 20000, procs['mcp-auth']);
  await waitForPort(P.sdk, 20000, procs.sdk);

  procs.mcpgate = await startMcpgate('mcpgate', P.mcpgate, P.mcpgateAdmin, mcpgateYaml({ port: P.mcpgate, adminPort: P.mcpgateAdmin }));
  if (opt.phases.has('main')) {
    procs['mcpgate-audit'] = await startMcpgate('mcpgate-audit', P.audit, P.auditAdmin,
      mcpgateYaml({ port: P.audit, adminPort: P.auditAdmin, audit: true }));
  }
  if (opt.phases.has('routes')) {
    procs['mcpgate-10'] = await startMcpgate('mcpgate-10', P.r10, P.r10Admin, mcpgateYaml({ port: P.r10, adminPort: P.r10Admin, routes: 10 }));
    procs['mcpgate-100'] = await startMcpgate('mcpgate-100', P.r100, P.r100Admin, mcpgateYaml({ port: P.r100, adminPort: P.r100Admin, routes: 100 }));
  }
  if (opt.phases.has('tools')) {
    procs['mcpgate-tools'] = await startMcpgate('mcpgate-tools', P.tools, P.toolsAdmin, mcpgateYaml({
      port: P.tools, adminPort: P.toolsAdmin,
      extraRoutes: cfg.toolsListRoutes({ upstreamPort: P.upstream, audience: AUDIENCE, tools: tools.names }),
    }));
  }
}

// The systems of the main matrix, in the order of every round.
function mainSystems() {
  return [
    { key: 'direct', label: 'direct (no proxy)', port: P.upstream, path: '/mcp', proc: null, verifies: false },
    { key: 'nginx', label: 'nginx plain proxy (no auth)', port: P.nginx, path: '/mcp', proc: procs.nginx, verifies: false },
    { key: 'haproxy', label: 'HAProxy + jwt_verify', port: P.haproxy, path: '/mcp', proc: procs.haproxy, verifies: true },
    { key: 'mcp-auth', label: 'mcp-auth (express)', port: P.mcpAuth, path: '/mcp', proc: procs['mcp-auth'], verifies: true },
    { key: 'sdk', label: 'MCP SDK requireBearerAuth (express)', port: P.sdk, path: '/mcp', proc: procs.sdk, verifies: true },
    { key: 'mcpgate', label: 'mcpgate', port: P.mcpgate, path: '/bench', proc: procs.mcpgate, verifies: true },
    { key: 'mcpgate-audit', label: 'mcpgate, audit log on', port: P.audit, path: '/bench', proc: procs['mcpgate-audit'],
      verifies: true, modes: ['same'] },
  ];
}

// Every system answers the good token with the upstream's result and refuses a bad one.
async function probe(system, { body = cfg.TOOLS_CALL, expect = cfg.RESULT_BODY } = {}) {
  const token = fs.readFileSync(tokens.files.single, 'utf8').split('\n')[0];
  const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
  const good = await request({ port: system.port, path: system.path, body, headers: { ...headers, authorization: `Bearer ${token}` } });
  const entry = { system: system.key, path: system.path, goodStatus: good.status, goodBodyOk: expect ? good.body === expect : true };
  if (system.verifies) {
    const forged = `${token.slice(0, -8)}AAAAAAAA`;
    const bad = await request({ port: system.port, path: system.path, body, headers: { ...headers, authorization: `Bearer ${forged}` } });
    const none = await request({ port: system.port, path: system.path, body, headers });
    entry.badSignatureStatus = bad.status;
    entry.noTokenStatus = none.status;
  }
  entry.ok = entry.goodStatus === 200 && entry.goodBodyOk &&
    (!system.verifies || (entry.badSignatureStatus === 401 && entry.noTokenStatus === 401));
  results.probes.push(entry);
  if (!entry.ok) log(`probe of ${system.key} unexpected: ${JSON.stringify(entry)} ${good.body.slice(0, 200)}`);
  return { ...entry, goodBody: good.body };
}

// ---------------------------------------------------------------------------------------
// One measured cell
// ---------------------------------------------------------------------------------------

const cursors = {};  // system key -> byte offsets into distinct-0/1.txt

function tokenSource(mode, systemKey) {
  if (mode === 'same') return { mode: 'same', file: tokens.files.single };
  if (mode.startsWith('rotate')) return { mode: 'rotate', file: tokens.files.rotate, count: Number(mode.slice(6)) };
  cursors[systemKey] ??= [0, 0];
  return { mode: 'distinct', prefix: tokens.files.distinct[0].replace(/0\.txt$/, ''), offsets: cursors[systemKey] };
}

async function cell({ phase, group, round, system, mode, bodyFile = bodyFiles.call, cursorKey = system.key }) {
  const waited = await waitQuiet();
  // The distinct mode warms up on the 1000 rotating tokens: its own tokens are each used once.
  const warmMode = mode === 'distinct' ? 'rotate1000' : mode;
  const url = `http://127.0.0.1:${system.port}${system.path}`;
  let warm = null;
  if (opt.warmup > 0) warm = await runWrk({ url, seconds: opt.warmup, bodyFile, tokens: tokenSource(warmMode, cursorKey) });

  const pids = system.proc ? processTree(system.proc.pid) : [];
  const upPids = processTree(procs.upstream.pid);
  const before = { cores: coreTimes(), cpu: cpuTicks(pids), up: cpuTicks(upPids), wrk: reapedChildTicks(), self: selfTicks() };
  const w = await runWrk({ url, seconds: opt.duration, bodyFile, tokens: tokenSource(mode, cursorKey),
                           threads: opt.threads, connections: opt.connections });
  const after = { cores: coreTimes(), cpu: cpuTicks(pids), up: cpuTicks(upPids), wrk: reapedChildTicks(), self: selfTicks() };
  const cores = coreDelta(before.cores, after.cores);
  const sut = after.cpu - before.cpu;
  const ours0 = (after.wrk - before.wrk) + (after.up - before.up) + (after.self - before.self);

  let wrapped = false;
  if (mode === 'distinct') {
    cursors[cursorKey] = w.tokens.sort((a, b) => a.thread - b.thread).map((t) => t.end);
    wrapped = w.tokens.some((t) => t.wraps > 0);
    if (cursors[cursorKey].length !== 2) w.failure = w.failure ?? 'no token report from the wrk script';
  }
  const c = {
    phase, group, round, system: system.key, label: system.label, mode,
    rps: w.rps, requests: w.requests, seconds: w.seconds, p50: w.p50, p90: w.p90, p99: w.p99,
    cpuUs: system.proc && w.requests > 0 ? (sut / CLK_TCK) * 1e6 / w.requests : NaN,
    rssKiB: system.proc ? rssKiB(processTree(system.proc.pid)) : NaN,
    non2xx: w.non2xx, socketErrors: w.socketErrors, socketErrorText: w.socketErrorText,
    warmNon2xx: warm ? warm.non2xx + warm.socketErrors : 0,
    core0Busy: cores[0] ? cores[0].busy / cores[0].total : NaN,
    core1Busy: cores[1] ? cores[1].busy / cores[1].total : NaN,
    otherCore0: cores[0] ? Math.max(0, cores[0].busy - ours0) / cores[0].total : NaN,
    otherCore1: cores[1] ? Math.max(0, cores[1].busy - (system.proc ? sut : 0)) / cores[1].total : NaN,
    quietWaitS: Math.max(0, waited),
    wrapped: wrapped && system.verifies, wrappedHarmless: wrapped && !system.verifies,
    tokensUsed: w.tokens.reduce((n, t) => n + t.used, 0),
    failure: w.failure,
  };
  c.valid = !c.failure && c.non2xx === 0 && c.socketErrors === 0 && !c.wrapped;
  results.cells.push(c);
  fs.writeFileSync(path.join(runDir, 'cells.json'), JSON.stringify(results.cells, null, 1));
  const f = (x, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : '-');
  log(`${phase}/${group} r${round} ${system.key}: ${f(c.rps)} req/s, ${f(c.cpuUs, 1)} us/req, p50 ${f(c.p50, 2)} ms, ` +
      `p99 ${f(c.p99, 2)} ms, rss ${f(c.rssKiB / 1024, 1)} MiB, non-2xx ${c.non2xx}, sock err ${c.socketErrors}` +
      `${c.wrapped ? ', TOKENS WRAPPED' : ''}${c.failure ? `, FAILED: ${c.failure}` : ''}` +
      `, other load c0 ${f(c.otherCore0 * 100)}% c1 ${f(c.otherCore1 * 100)}%`);
  return c;
}

// ---------------------------------------------------------------------------------------
// Phases
// ---------------------------------------------------------------------------------------

async function phaseMain() {
  const systems = mainSystems();
  for (const s of systems) await probe(s);
  for (const [mode, group] of [['same', 'same'], ['rotate1000', 'rotate1000'], ['distinct', 'distinct']]) {
    for (let round = 1; round <= opt.rounds; round++) {
      for (const system of systems) {
        if (system.modes && !system.modes.includes(mode)) continue;
        if (!timeLeft()) { results.skipped.push(`main/${group} round ${round} ${system.key}: time limit`); continue; }
        await cell({ phase: 'main', group, round, system, mode });
      }
    }
  }
}

async function phaseRoutes() {
  const systems = [
    { key: 'routes-1', label: '1 route', port: P.mcpgate, path: '/bench', proc: procs.mcpgate, verifies: true },
    { key: 'routes-10', label: '10 routes', port: P.r10, path: '/bench', proc: procs['mcpgate-10'], verifies: true },
    { key: 'routes-100', label: '100 routes', port: P.r100, path: '/bench', proc: procs['mcpgate-100'], verifies: true },
  ];
  for (const s of systems) await probe(s);
  for (let round = 1; round <= opt.rounds; round++) {
    for (const system of systems) {
      if (!timeLeft()) { results.skipped.push(`routes round ${round} ${system.key}: time limit`); continue; }
      await cell({ phase: 'routes', group: system.key, round, system, mode: 'same' });
    }
  }
}

async function phaseTokens() {
  const system = { key: 'mcpgate', label: 'mcpgate', port: P.mcpgate, path: '/bench', proc: procs.mcpgate, verifies: true };
  for (let round = 1; round <= opt.rounds; round++) {
    for (const n of opt.rotations) {
      const mode = n === 1 ? 'same' : `rotate${n}`;
      if (!timeLeft()) { results.skipped.push(`tokens round ${round} ${n}: time limit`); continue; }
      await cell({ phase: 'tokens', group: `tokens-${n}`, round, system, mode });
    }
  }
}

async function phaseTools() {
  const systems = [
    { key: 'tools-unfiltered', label: 'filter_tools_list: false', port: P.tools, path: '/tools-unfiltered',
      proc: procs['mcpgate-tools'], verifies: true },
    { key: 'tools-filtered', label: 'filter_tools_list: true', port: P.tools, path: '/tools-filtered',
      proc: procs['mcpgate-tools'], verifies: true },
  ];
  for (const s of systems) {
    const p = await probe(s, { body: cfg.TOOLS_LIST, expect: null });
    try {
      const listed = JSON.parse(p.goodBody).result.tools.length;
      results.probes[results.probes.length - 1].toolsListed = listed;
    } catch {
      results.notes.push(`tools/list through ${s.path} did not parse: ${p.goodBody.slice(0, 200)}`);
    }
  }
  for (let round = 1; round <= opt.rounds; round++) {
    for (const system of systems) {
      if (!timeLeft()) { results.skipped.push(`tools round ${round} ${system.key}: time limit`); continue; }
      await cell({ phase: 'tools', group: system.key, round, system, mode: 'same', bodyFile: bodyFiles.list });
    }
  }
}

async function phaseBodies() {
  const systems = [
    { key: 'nginx', label: 'nginx plain proxy (no auth)', port: P.nginx, path: '/mcp', proc: procs.nginx, verifies: false },
    { key: 'mcpgate', label: 'mcpgate', port: P.mcpgate, path: '/bench', proc: procs.mcpgate, verifies: true },
  ];
  for (const size of opt.bodies) {
    const f = path.join(runDir, `body-${size}.json`);
    fs.writeFileSync(f, cfg.toolsCallBody(size));
    bodyFiles[size] = f;
  }
  for (let round = 1; round <= opt.rounds; round++) {
    for (const size of opt.bodies) {
      for (const system of systems) {
        if (!timeLeft()) { results.skipped.push(`bodies round ${round} ${size} ${system.key}: time limit`); continue; }
        await cell({ phase: 'bodies', group: `body-${size}`, round, system, mode: 'same', bodyFile: bodyFiles[size] });
      }
    }
  }
}

// mcpgate on config/quickstart.yaml (its ports moved to the bench's), idle: resident memory.
async function phaseIdle() {
  const source = fs.readFileSync(path.join(REPO, 'config', 'quickstart.yaml'), 'utf8');
  const yaml = source.replaceAll('127.0.0.1:8080', `127.0.0.1:${P.quickstart}`).replaceAll('127.0.0.1:9090', `127.0.0.1:${P.quickstartAdmin}`);
  const conf = write('quickstart.yaml', yaml);
  const proc = startPinned('mcpgate-quickstart', 1, [opt.mcpgateBin, 'run', '--config', conf],
    { logFile: path.join(runDir, 'mcpgate-quickstart.log') });
  try {
    await waitForPort(P.quickstartAdmin, 10000, proc);
    const health = await request({ port: P.quickstartAdmin, method: 'GET', path: '/healthz' });
    await sleep(2000);
    const at2s = rssKiB(processTree(proc.pid));
    await sleep(3000);
    const at5s = rssKiB(processTree(proc.pid));
    results.quickstartRss = { at2s, at5s, health: health.status, workers: 'default (one per core: 2)' };
    log(`quickstart-like idle RSS: ${(at2s / 1024).toFixed(1)} MiB after 2 s, ${(at5s / 1024).toFixed(1)} MiB after 5 s`);
  } finally {
    await stop(proc);
  }
}

function lines(stream) {
  const rl = readline.createInterface({ input: stream });
  const queue = [];
  const waiters = [];
  rl.on('line', (l) => { if (waiters.length) waiters.shift()(l); else queue.push(l); });
  return (timeoutMs) => new Promise((resolve) => {
    if (queue.length) { resolve(queue.shift()); return; }
    const timer = setTimeout(() => { waiters.splice(waiters.indexOf(done), 1); resolve(null); }, timeoutMs);
    const done = (l) => { clearTimeout(timer); resolve(l); };
    waiters.push(done);
  });
}

// Idle GET event streams through mcpgate: resident memory at 1, 1000 and 10000 of them.
async function phaseStreams() {
  // Each stream holds two descriptors in the gateway (client and upstream sockets).
  const fdCap = Math.floor((opt.nofile - 256) / 2);
  const counts = opt.streams.map((n) => Math.min(n, fdCap));
  if (counts.some((n, i) => n !== opt.streams[i])) {
    results.notes.push(`open-file limit ${opt.nofile} (hard limit; raising it was refused) caps the gateway at ` +
      `${fdCap} streams (2 descriptors each): measured ${counts.join(' / ')} instead of ${opt.streams.join(' / ')}`);
  }
  const upstream = startPinned('sse-upstream', 0, ['node', path.join(HERE, 'servers', 'sse-upstream.mjs')],
    { logFile: path.join(runDir, 'sse-upstream.log'), env: { PORT: String(P.sseUpstream) } });
  await waitForPort(P.sseUpstream, 10000, upstream);
  const gw = await startMcpgate('mcpgate-streams', P.sse, P.sseAdmin, cfg.mcpgate({
    port: P.sse, adminPort: P.sseAdmin, upstreamPort: P.upstream, issuer: ISSUER, jwksUri: JWKS_URI, audience: AUDIENCE,
    maxConnections: 4 * Math.max(...counts) + 1000,
    extraRoutes: cfg.sseRoute({ upstreamPort: P.sseUpstream, audience: AUDIENCE }),
  }));
  const client = startPinned('sse-client', 0, ['node', path.join(HERE, 'servers', 'sse-client.mjs')], {
    env: { PORT: String(P.sse), PATH_: '/streams', TOKEN_FILE: tokens.files.single },
    stdio: ['pipe', 'pipe', fs.openSync(path.join(runDir, 'sse-client.log'), 'a')],
  });
  const next = lines(client.child.stdout);
  const points = [];
  try {
    const gwPids = processTree(gw.pid);
    const base = rssKiB(gwPids);
    for (const n of counts) {
      client.child.stdin.write(`open ${n}\n`);
      const answer = await next(180000);
      const m = /^open (\d+) failed (\d+) ms (\d+)/.exec(answer ?? '');
      if (!m) throw new Error(`stream client did not answer (${answer})`);
      await sleep(2000);
      const rss = rssKiB(gwPids);
      points.push({ target: n, open: Number(m[1]), failed: Number(m[2]), openMs: Number(m[3]), rssKiB: rss });
      log(`streams: ${m[1]} open (${m[2]} failed, ${m[3]} ms), gateway RSS ${(rss / 1024).toFixed(1)} MiB`);
    }
    results.streams = { baseRssKiB: base, points, fdLimit: opt.nofile };
  } finally {
    client.child.stdin.write('close\n');
    await Promise.race([client.exited, sleep(5000)]);
    await stop(client);
    await stop(gw);
    await stop(upstream);
  }
}

// ---------------------------------------------------------------------------------------
// Machine description, RSA verify cost, main
// ---------------------------------------------------------------------------------------

function pkgVersion(name) {
  try {
    return JSON.parse(fs.readFileSync(path.join(HERE, 'node_modules', name, 'package.json'), 'utf8')).version;
  } catch {
    return '?';
  }
}

async function describeMachine() {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const meminfo = fs.readFileSync('/proc/meminfo', 'utf8');
  results.machine = {
    cpu: (/model name\s*:\s*(.*)/.exec(cpuinfo) || [])[1] ?? '?',
    mhz: (/cpu MHz\s*:\s*(.*)/.exec(cpuinfo) || [])[1] ?? '?',
    cores: os.cpus().length,
    memGiB: (Number((/MemTotal:\s+(\d+)/.exec(meminfo) || [])[1]) / 1048576).toFixed(1),
    kernel: os.release(),
    debian: fs.existsSync('/etc/debian_version') ? fs.readFileSync('/etc/debian_version', 'utf8').trim() : '?',
    nginx: sh('nginx', ['-v']).replace(/^nginx version: /, ''),
    haproxy: sh('haproxy', ['-v']).split('\n')[0],
    wrk: sh('wrk', ['-v']).split('\n')[0],
    openssl: sh('openssl', ['version']),
    node: process.version,
    npm: { 'mcp-auth': pkgVersion('mcp-auth'), '@modelcontextprotocol/sdk': pkgVersion('@modelcontextprotocol/sdk'),
           express: pkgVersion('express'), jose: pkgVersion('jose') },
    mcpgateBin: opt.mcpgateBin,
    mcpgateCommit: env.BENCH_MCPGATE_COMMIT || '?',
    nofile: opt.nofile,
  };
}

async function measureRsaVerify() {
  await waitQuiet();
  const r = await runPinned(1, ['openssl', 'speed', '-seconds', '1', 'rsa2048'], { timeoutMs: 60000 });
  const m = /rsa 2048 bits\s+([\d.]+)s\s+([\d.]+)s\s+([\d.]+)\s+([\d.]+)/.exec(r.stdout);
  if (!m) throw new Error(`openssl speed rsa2048: unexpected output ${r.stdout} ${r.stderr}`);
  results.rsa = { signPerS: Number(m[3]), verifyPerS: Number(m[4]), verifyUs: 1e6 / Number(m[4]) };
  log(`RSA-2048 on core 1: ${m[4]} verify/s (${results.rsa.verifyUs.toFixed(1)} us), ${m[3]} sign/s`);
}

async function main() {
  for (const [name, port] of Object.entries(P)) {
    if (!(await portFree(port))) throw new Error(`port ${port} (${name}) is in use: set BENCH_PORT_BASE to another base`);
  }
  await describeMachine();
  log(`run directory ${runDir}; results go to ${opt.out}`);
  await measureRsaVerify();

  tokens = await ensureTokens(opt.cacheDir, {
    iss: ISSUER, aud: AUDIENCE, scope: cfg.TOKEN_SCOPE,
    rotate: Math.max(...opt.rotations), distinct: opt.distinctTokens, log,
  });
  // Signing used every core; from now on this process stays on core 0 with wrk (all its threads).
  const pin = spawnSync('taskset', ['-a', '-p', '-c', '0', String(process.pid)], { encoding: 'utf8' });
  if (pin.status !== 0) throw new Error(`taskset -a -p -c 0 ${process.pid}: ${pin.stderr}`);
  results.tokens = { signed: tokens.signed, seconds: tokens.seconds, signedTotal: tokens.signedTotal,
                     signSeconds: tokens.signSeconds, rotate: tokens.rotate,
                     distinctPerThread: tokens.distinctPerThread, cacheDir: opt.cacheDir };
  bodyFiles.call = write('body-call.json', cfg.TOOLS_CALL);
  bodyFiles.list = write('body-list.json', cfg.TOOLS_LIST);

  await startSystems();
  const phases = [['main', phaseMain], ['routes', phaseRoutes], ['tokens', phaseTokens], ['tools', phaseTools],
                  ['bodies', phaseBodies], ['idle', phaseIdle], ['streams', phaseStreams]];
  for (const [name, fn] of phases) {
    if (!opt.phases.has(name)) continue;
    if (!timeLeft()) { results.skipped.push(`phase ${name}: time limit`); continue; }
    log(`phase ${name}`);
    try {
      await fn();
    } catch (e) {
      results.notes.push(`phase ${name} failed: ${e.message}`);
      log(`phase ${name} failed: ${e.stack}`);
    }
  }
  for (const [name, p] of Object.entries(procs)) {
    if (p && name !== 'upstream') results.finalRss = { ...(results.finalRss ?? {}), [name]: rssKiB(processTree(p.pid)) };
  }
  // Did anything the bench started log an error? (mcpgate logs at warn level here.)
  for (const f of fs.readdirSync(runDir).filter((n) => n.endsWith('.log'))) {
    const text = fs.readFileSync(path.join(runDir, f), 'utf8');
    const interesting = text.split('\n').filter((l) => /error|warn|crit|alert|emerg/i.test(l) && !/audit/.test(f));
    if (interesting.length) results.notes.push(`${f}: ${interesting.length} warning/error lines, first: ${interesting[0].slice(0, 240)}`);
  }
}

let failure = null;
try {
  await main();
} catch (e) {
  failure = e;
  results.notes.push(`bench stopped early: ${e.message}`);
  log(e.stack);
} finally {
  results.finishedAt = new Date().toISOString();
  results.elapsedS = (Date.now() - startedAt) / 1000;
  fs.writeFileSync(path.join(runDir, 'results.json'), JSON.stringify(results, null, 1));
  fs.mkdirSync(path.dirname(opt.out), { recursive: true });
  fs.writeFileSync(opt.out, render(results, { median }));
  log(`wrote ${opt.out} (raw numbers: ${path.join(runDir, 'results.json')})`);
  killAll();
}
process.exit(failure ? 1 : 0);
