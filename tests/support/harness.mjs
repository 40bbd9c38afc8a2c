// Shared helpers for the mcpgate integration tests.
//
// Everything here starts REAL processes: the real gateway binary
// ($MCPGATE_BIN or <repo>/build/mcpgate), the real npm
// @modelcontextprotocol/server-everything, and the real 2026-07-28 upstream in
// modern-server.mjs. Every server binds to 127.0.0.1 only, every wait is
// bounded, and every child is killed when the test file ends (also on failure,
// through the process 'exit' hook below).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SUPPORT_DIR = path.join(REPO_ROOT, 'tests', 'support');
export const LOOPBACK_PRELOAD = path.join(SUPPORT_DIR, 'loopback.mjs');
export const GATEWAY_BIN = process.env.MCPGATE_BIN
  ? path.resolve(process.env.MCPGATE_BIN)
  : path.join(REPO_ROOT, 'build', 'mcpgate');
export const EVERYTHING_ENTRY = path.join(
  REPO_ROOT,
  'node_modules',
  '@modelcontextprotocol',
  'server-everything',
  'dist',
  'index.js',
);

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Resolve with `promise`'s value, or with `onTimeout` after `ms`; the timer is
 * cleared either way so it never keeps the test process alive.
 */
export function raceTimeout(promise, ms, onTimeout = 'timeout') {
  let timer;
  const t = new Promise((r) => {
    timer = setTimeout(() => r(onTimeout), ms);
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

let sanitizerCache;
/**
 * The sanitizer the gateway binary was built with: 'address' (MCPGATE_SANITIZE=ON, ASan+UBSan),
 * 'thread' (MCPGATE_SANITIZE_THREAD=ON) or '' (none). MCPGATE_SANITIZED forces it: 0, 1 (address),
 * address or thread; otherwise the binary is checked for the sanitizer's runtime.
 */
export function sanitizerKind() {
  if (sanitizerCache !== undefined) return sanitizerCache;
  const forced = process.env.MCPGATE_SANITIZED ?? process.env.MCPGATE_TEST_SANITIZER;
  if (forced !== undefined && forced !== '') {
    sanitizerCache = forced === '0' ? '' : forced === 'thread' ? 'thread' : 'address';
    return sanitizerCache;
  }
  try {
    const binary = fs.readFileSync(GATEWAY_BIN);
    sanitizerCache = binary.includes('__tsan_init') ? 'thread' : binary.includes('__asan_init') ? 'address' : '';
  } catch {
    sanitizerCache = '';
  }
  return sanitizerCache;
}

/** True when the gateway binary was built with any sanitizer (slower, larger, not the Release image). */
export function isSanitizerBuild() {
  return sanitizerKind() !== '';
}

/** Scale factor for readiness waits (sanitizer builds start slower). */
export const TIME_SCALE = Number(process.env.MCPGATE_TEST_TIME_SCALE || (isSanitizerBuild() ? 3 : 1));

// ---------------------------------------------------------------------------
// Child process bookkeeping: every child we spawn is killed at exit.
// ---------------------------------------------------------------------------
const children = new Set();
function killAllChildren() {
  for (const c of children) {
    try {
      c.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
}
process.on('exit', killAllChildren);
// The test runner stops a file that overruns its timeout with a signal; 'exit'
// does not fire then, so kill the children here too.
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
  process.once(sig, () => {
    killAllChildren();
    process.exit(128 + (sig === 'SIGHUP' ? 1 : sig === 'SIGINT' ? 2 : 15));
  });
}

const tempDirs = new Set();
process.on('exit', () => {
  if (process.env.MCPGATE_TEST_KEEP_TMP) return;
  for (const d of tempDirs) {
    try {
      fs.rmSync(d, { recursive: true, force: true });
    } catch {
      /* ignore */
    }
  }
});

/** A fresh temp dir removed when the test process exits. */
export function makeTempDir(prefix = 'itest-') {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.add(d);
  return d;
}

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Spawn a child with captured output.
 * @returns {{proc, pid, output(): string, stdout(): string, stderr(): string,
 *            exited: Promise<{code, signal}>, stop(signal?, timeoutMs?): Promise<{code, signal}>}}
 */
export function startProcess(cmd, args, { env = {}, cwd = REPO_ROOT, name = path.basename(cmd) } = {}) {
  const proc = spawn(cmd, args, {
    cwd,
    // The watchdog in loopback.mjs makes node children exit if this process dies.
    env: { ...process.env, MCPGATE_TEST_PARENT_WATCHDOG: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(proc);
  const out = [];
  const err = [];
  const both = [];
  const MAX_CAPTURE = 64 * 1024 * 1024;
  let captured = 0;
  const onData = (arr) => (chunk) => {
    if (captured > MAX_CAPTURE) return;
    captured += chunk.length;
    arr.push(chunk);
    both.push(chunk);
  };
  proc.stdout.on('data', onData(out));
  proc.stderr.on('data', onData(err));
  if (process.env.MCPGATE_TEST_VERBOSE) {
    // Debugging aid: tee every child's output to the test's stderr.
    const tee = (c) => process.stderr.write(`[${name}:${proc.pid}] ${c}`);
    proc.stdout.on('data', tee);
    proc.stderr.on('data', tee);
  }
  let exitInfo = null;
  const exited = new Promise((resolve) => {
    proc.on('exit', (code, signal) => {
      exitInfo = { code, signal };
      children.delete(proc);
      resolve(exitInfo);
    });
    proc.on('error', (e) => {
      exitInfo = { code: null, signal: null, error: e };
      children.delete(proc);
      resolve(exitInfo);
    });
  });
  const handle = {
    name,
    proc,
    pid: proc.pid,
    exited,
    get exitInfo() {
      return exitInfo;
    },
    stdout: () => Buffer.concat(out).toString('utf8'),
    stderr: () => Buffer.concat(err).toString('utf8'),
    output: () => Buffer.concat(both).toString('utf8'),
    alive: () => exitInfo === null,
    /** Send `signal`, wait up to timeoutMs, then SIGKILL. Resolves with exit info. */
    async stop(signal = 'SIGTERM', timeoutMs = 5000) {
      if (exitInfo) return exitInfo;
      try {
        proc.kill(signal);
      } catch {
        /* ignore */
      }
      const r = await raceTimeout(exited, timeoutMs, 'timeout');
      if (r === 'timeout') {
        try {
          proc.kill('SIGKILL');
        } catch {
          /* ignore */
        }
        const info = await exited;
        return { ...info, killedAfterTimeout: true };
      }
      return r;
    },
  };
  return handle;
}

/** Poll until `fn()` returns a truthy value; bounded by timeoutMs. */
export async function waitFor(fn, { timeoutMs = 15000, intervalMs = 100, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let lastErr;
  for (let i = 0; i < 100000 && Date.now() < deadline; i++) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      lastErr = e;
    }
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? `: ${lastErr.message}` : ''}`);
}

/** Wait until something accepts TCP connections on 127.0.0.1:port. */
export async function waitForPort(port, { timeoutMs = 15000, proc } = {}) {
  return waitFor(
    () => {
      if (proc && !proc.alive()) {
        throw Object.assign(new Error(`${proc.name} exited early: ${JSON.stringify(proc.exitInfo)}\n${proc.output()}`), {
          fatal: true,
        });
      }
      return new Promise((resolve) => {
        const s = net.connect({ host: '127.0.0.1', port });
        s.once('connect', () => {
          s.destroy();
          resolve(true);
        });
        s.once('error', () => resolve(false));
        s.setTimeout(1000, () => {
          s.destroy();
          resolve(false);
        });
      });
    },
    { timeoutMs: timeoutMs * TIME_SCALE, what: `127.0.0.1:${port} to accept connections` },
  ).catch((e) => {
    if (proc && !proc.alive()) throw new Error(`${proc.name} exited early: ${JSON.stringify(proc.exitInfo)}\n${proc.output()}`);
    throw e;
  });
}

/** Wait until GET url returns `status`. */
export async function waitForUrl(url, { status = 200, timeoutMs = 15000, proc } = {}) {
  return waitFor(
    async () => {
      if (proc && !proc.alive()) return 'dead';
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer().catch(() => {});
      return res.status === status;
    },
    { timeoutMs: timeoutMs * TIME_SCALE, what: `GET ${url} -> ${status}` },
  ).then((v) => {
    if (v === 'dead') throw new Error(`${proc.name} exited early: ${JSON.stringify(proc.exitInfo)}\n${proc.output()}`);
    return v;
  });
}

// ---------------------------------------------------------------------------
// Upstreams
// ---------------------------------------------------------------------------

/**
 * Run `node --import loopback.mjs <args...>` as a child that listens on a free
 * loopback port, passed to it as $PORT; resolves with {port, origin, proc}
 * once the port accepts connections.
 */
async function startNodeServer(name, args) {
  const port = await freePort();
  const proc = startProcess(process.execPath, ['--import', LOOPBACK_PRELOAD, ...args], {
    env: { PORT: String(port) },
    name,
  });
  await waitForPort(port, { proc });
  return { port, origin: `http://127.0.0.1:${port}`, proc };
}

/**
 * Start the real @modelcontextprotocol/server-everything on a free loopback port.
 * mode: 'streamableHttp' (endpoint /mcp) or 'sse' (GET /sse, POST /message).
 */
export async function startEverything(mode = 'streamableHttp') {
  const server = await startNodeServer(`server-everything(${mode})`, [EVERYTHING_ENTRY, mode]);
  const { origin, proc } = server;
  return {
    ...server,
    url: mode === 'sse' ? `${origin}/sse` : `${origin}/mcp`,
    stop: () => proc.stop('SIGKILL'),
  };
}

/** Start the real 2026-07-28 stateless upstream (tests/support/modern-server.mjs). */
export async function startModernServer() {
  const server = await startNodeServer('modern-server', [path.join(SUPPORT_DIR, 'modern-server.mjs')]);
  const { origin, proc } = server;
  return {
    ...server,
    url: `${origin}/mcp`,
    /** Requests the upstream saw (headers relevant to MCP), oldest first. */
    async seen() {
      const r = await fetch(`${origin}/__seen`);
      return r.json();
    },
    stop: () => proc.stop('SIGTERM'),
  };
}

// ---------------------------------------------------------------------------
// Gateway
// ---------------------------------------------------------------------------

export const DEFAULT_LIMITS = Object.freeze({
  max_body_bytes: 1048576,
  max_header_bytes: 16384,
  max_connections: 10000,
  upstream_timeout_ms: 30000,
  upstream_connect_timeout_ms: 5000,
  idle_timeout_ms: 60000,
  request_timeout_ms: 30000,
  stream_buffer_bytes: 262144,
});

function yamlScalar(v) {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(String(v)); // JSON strings are valid YAML double-quoted scalars
}

/** Minimal block-style YAML emitter for plain objects / arrays / scalars. */
export function toYaml(value, indent = 0) {
  const pad = ' '.repeat(indent);
  if (Array.isArray(value)) {
    if (value.length === 0) return `${pad}[]\n`;
    return value
      .map((item) => {
        if (item && typeof item === 'object') {
          const inner = toYaml(item, indent + 2);
          return `${pad}- ${inner.slice(indent + 2)}`;
        }
        return `${pad}- ${yamlScalar(item)}\n`;
      })
      .join('');
  }
  if (value && typeof value === 'object') {
    const keys = Object.keys(value).filter((k) => value[k] !== undefined);
    if (keys.length === 0) return `${pad}{}\n`;
    return keys
      .map((k) => {
        const v = value[k];
        if (v && typeof v === 'object') {
          if (Array.isArray(v) && v.length === 0) return `${pad}${k}: []\n`;
          if (!Array.isArray(v) && Object.keys(v).length === 0) return `${pad}${k}: {}\n`;
          return `${pad}${k}:\n${toYaml(v, indent + 2)}`;
        }
        return `${pad}${k}: ${yamlScalar(v)}\n`;
      })
      .join('');
  }
  return `${pad}${yamlScalar(value)}\n`;
}

/**
 * Build the config object for a gateway.
 * routes: [{name, path, upstream, transport?, allowed_origins?, auth?}]
 * server: partial server section (limits merged over DEFAULT_LIMITS)
 */
export function buildGatewayConfig({ port, adminPort, routes, server = {}, admin = {}, log = {}, tls }) {
  const { limits = {}, ...serverRest } = server;
  const cfg = {
    server: {
      listen: `127.0.0.1:${port}`,
      workers: 2,
      ...(tls ? { tls: { cert_file: tls.certFile, key_file: tls.keyFile } } : {}),
      ...serverRest,
      limits: { ...DEFAULT_LIMITS, ...limits },
      shutdown_grace_ms: serverRest.shutdown_grace_ms ?? 10000,
    },
    admin: { listen: `127.0.0.1:${adminPort}`, ...admin },
    log: { level: 'info', format: 'json', access_log: true, ...log },
    routes: routes.map((r) => ({
      ...r,
      transport: r.transport ?? 'streamable_http',
      auth: r.auth ?? { type: 'none' },
    })),
  };
  return cfg;
}

/**
 * Write a config and run `mcpgate run --config <file>`; resolves once the
 * admin /readyz answers 200.
 *
 * @param {object} opts
 * @param {Array}  opts.routes
 * @param {object} [opts.server]     partial server section (e.g. {limits: {...}})
 * @param {object} [opts.admin]
 * @param {object} [opts.log]
 * @param {{certFile,keyFile}} [opts.tls]
 * @param {string} [opts.extraYaml]  appended verbatim to the generated YAML
 * @param {object} [opts.env]
 */
export async function startGateway(opts) {
  if (!fs.existsSync(GATEWAY_BIN)) {
    throw new Error(
      `gateway binary not found at ${GATEWAY_BIN}: build it (cmake -S . -B build -G Ninja && cmake --build build) or set MCPGATE_BIN`,
    );
  }
  const port = opts.port ?? (await freePort());
  const adminPort = opts.adminPort ?? (await freePort());
  const dir = makeTempDir('itest-gw-');
  const configPath = path.join(dir, 'mcpgate.yaml');
  const cfg = buildGatewayConfig({ ...opts, port, adminPort });
  fs.writeFileSync(configPath, toYaml(cfg) + (opts.extraYaml ?? ''));
  const env = {
    // Sanitizer builds: report to stderr, and make any finding fatal.
    ASAN_OPTIONS: process.env.ASAN_OPTIONS ?? 'detect_leaks=1:halt_on_error=1:abort_on_error=0',
    UBSAN_OPTIONS: process.env.UBSAN_OPTIONS ?? 'print_stacktrace=1:halt_on_error=1',
    ...(opts.env ?? {}),
  };
  const proc = startProcess(GATEWAY_BIN, ['run', '--config', configPath], { env, name: 'mcpgate' });
  const scheme = opts.tls ? 'https' : 'http';
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  try {
    await waitForUrl(`${adminUrl}/readyz`, { proc, timeoutMs: 15000 });
  } catch (e) {
    await proc.stop('SIGKILL');
    throw new Error(`gateway did not become ready: ${e.message}\nconfig ${configPath}:\n${fs.readFileSync(configPath, 'utf8')}\noutput:\n${proc.output().slice(-4000)}`);
  }
  const gw = {
    port,
    adminPort,
    origin: `${scheme}://127.0.0.1:${port}`,
    url: `${scheme}://127.0.0.1:${port}`,
    adminUrl,
    configPath,
    config: cfg,
    dir,
    proc,
    pid: proc.pid,
    logs: () => proc.output(),
    /** Parsed JSON log lines (non-JSON lines skipped). */
    jsonLogs: () => parseJsonLines(proc.stdout()),
    accessLogs: () => parseJsonLines(proc.stdout()).filter((l) => l.msg === 'access'),
    /** Rewrite the config file (object -> YAML, or raw string). */
    writeConfig(newCfg) {
      fs.writeFileSync(configPath, typeof newCfg === 'string' ? newCfg : toYaml(newCfg));
    },
    /** Send a signal (e.g. 'SIGHUP') to the gateway process. */
    kill: (signal) => proc.proc.kill(signal),
    /** SIGTERM (or `signal`), wait up to timeoutMs, SIGKILL after that. */
    stop: (signal = 'SIGTERM', timeoutMs = 12000) => proc.stop(signal, timeoutMs * TIME_SCALE),
    sanitizerReport: () => sanitizerFindings(proc.stderr()),
    /**
     * stop() with SIGTERM, then assert that stderr holds no sanitizer findings
     * and that the gateway exited 0. Resolves with the exit info.
     */
    async stopCleanly() {
      const exit = await gw.stop();
      assert.equal(gw.sanitizerReport(), '', 'sanitizer findings in gateway stderr');
      assert.equal(exit.code, 0, `gateway should exit 0 on SIGTERM, got ${JSON.stringify(exit)}`);
      return exit;
    },
  };
  return gw;
}

/**
 * The real server-everything (Streamable HTTP) and the real modern upstream,
 * each on its own route of one gateway: /everything and /modern.
 * `gatewayOpts` go to startGateway as well (e.g. {tls}).
 * Resolves with {everything, modern, gw, stop()}; stop() stops the gateway with
 * gw.stopCleanly() (so it asserts the same), then both upstreams.
 */
export async function startGatewayOverRealUpstreams(gatewayOpts = {}) {
  const [everything, modern] = await Promise.all([startEverything('streamableHttp'), startModernServer()]);
  const stopUpstreams = () => Promise.all([everything.stop(), modern.stop()]);
  let gw;
  try {
    gw = await startGateway({
      ...gatewayOpts,
      routes: [
        { name: 'everything', path: '/everything', upstream: everything.url },
        { name: 'modern', path: '/modern', upstream: modern.url },
      ],
    });
  } catch (e) {
    await stopUpstreams();
    throw e;
  }
  return {
    everything,
    modern,
    gw,
    async stop() {
      try {
        await gw.stopCleanly();
      } finally {
        await stopUpstreams();
      }
    },
  };
}

/** Lines of sanitizer findings in a stderr text ('' when clean). */
export function sanitizerFindings(text) {
  return text
    .split('\n')
    .filter((l) => /ERROR: (Address|Leak|Undefined|Thread)Sanitizer|runtime error:|SUMMARY: \w+Sanitizer/.test(l))
    .join('\n');
}

export function parseJsonLines(text) {
  const out = [];
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (!t.startsWith('{')) continue;
    try {
      out.push(JSON.parse(t));
    } catch {
      /* not JSON */
    }
  }
  return out;
}

/** Run `mcpgate <args>` to completion (bounded); returns {status, stdout, stderr}. */
export function runGatewayCli(args, { timeoutMs = 15000 } = {}) {
  const r = spawnSync(GATEWAY_BIN, args, {
    encoding: 'utf8',
    timeout: timeoutMs * TIME_SCALE,
    env: { ...process.env, ASAN_OPTIONS: process.env.ASAN_OPTIONS ?? 'detect_leaks=1' },
  });
  return { status: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr: r.stderr ?? '', error: r.error };
}

/** Resident set size of a process in bytes (from /proc/<pid>/status VmRSS). */
export function rssBytes(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(status);
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

/** Parse Prometheus text exposition into [{name, labels, value}]. */
export function parseMetrics(text) {
  const samples = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[3]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
      let lm;
      while ((lm = re.exec(m[3])) !== null) labels[lm[1]] = lm[2].replace(/\\(.)/g, '$1');
    }
    samples.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return samples;
}

/** GET /metrics from the admin listener, parsed. */
export async function getMetrics(gw) {
  const res = await fetch(`${gw.adminUrl}/metrics`, { signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  return { status: res.status, contentType: res.headers.get('content-type'), text, samples: parseMetrics(text) };
}

/** Sum of the values of samples named `name` whose labels include `match`. */
export function metricValue(samples, name, match = {}) {
  let sum = 0;
  let found = false;
  for (const s of samples) {
    if (s.name !== name) continue;
    if (Object.entries(match).every(([k, v]) => s.labels[k] === v)) {
      sum += s.value;
      found = true;
    }
  }
  return found ? sum : undefined;
}

/**
 * A fetch wrapper that records every request the SDK client made and the
 * response status + headers it got, so a test can assert what crossed the
 * wire (e.g. Mcp-Session-Id, X-Accel-Buffering).
 */
export function recordingFetch(baseFetch = fetch) {
  const records = [];
  const pending = [];
  const f = async (input, init = {}) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const method = init.method ?? (typeof input === 'object' && 'method' in input ? input.method : 'GET');
    const reqHeaders = new Headers(init.headers ?? (typeof input === 'object' && 'headers' in input ? input.headers : undefined));
    const rec = { url, method, requestHeaders: Object.fromEntries(reqHeaders), startedAt: Date.now() };
    records.push(rec);
    const answered = baseFetch(input, init).then((res) => {
      rec.status = res.status;
      rec.responseHeaders = Object.fromEntries(res.headers);
      return res;
    });
    pending.push(answered.catch(() => {}));
    return answered;
  };
  f.records = records;
  /** Every request's response head has arrived (or failed), or `timeoutMs` passed. */
  f.settled = (timeoutMs = 10000 * TIME_SCALE) => Promise.race([Promise.all(pending), sleep(timeoutMs)]);
  return f;
}

// ---------------------------------------------------------------------------
// TLS: throwaway CA + server certificate via the openssl CLI
// ---------------------------------------------------------------------------

function openssl(args, cwd) {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8', timeout: 30000 });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${r.stderr || r.error}`);
  return r.stdout;
}

/**
 * Create a throwaway CA and a server certificate for `localhost` + IP SAN
 * 127.0.0.1 (EC P-256, valid 2 days).
 * @returns {{dir, caFile, caPem, certFile, keyFile, issue(name): {certFile, keyFile, fingerprint}}}
 */
export function makeTlsCa() {
  const dir = makeTempDir('itest-tls-');
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key'], dir);
  openssl(
    [
      'req', '-x509', '-new', '-key', 'ca.key', '-sha256', '-days', '2', '-subj', '/CN=mcpgate test CA',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
      '-out', 'ca.pem',
    ],
    dir,
  );
  fs.writeFileSync(
    path.join(dir, 'server.ext'),
    'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n',
  );
  let serial = 1000;
  const issue = (name = 'server') => {
    serial += 1;
    openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`], dir);
    openssl(['req', '-new', '-key', `${name}.key`, '-subj', '/CN=localhost', '-out', `${name}.csr`], dir);
    openssl(
      [
        'x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', String(serial),
        '-days', '2', '-sha256', '-extfile', 'server.ext', '-out', `${name}.pem`,
      ],
      dir,
    );
    const fp = openssl(['x509', '-in', `${name}.pem`, '-noout', '-fingerprint', '-sha256'], dir)
      .trim()
      .split('=')[1];
    return { certFile: path.join(dir, `${name}.pem`), keyFile: path.join(dir, `${name}.key`), fingerprint: fp };
  };
  const server = issue('server');
  const caFile = path.join(dir, 'ca.pem');
  return { dir, caFile, caPem: fs.readFileSync(caFile, 'utf8'), ...server, issue };
}

// ---------------------------------------------------------------------------
// Raw HTTP over a socket (for malformed requests and exact byte control)
// ---------------------------------------------------------------------------

/**
 * Send raw bytes to 127.0.0.1:port and collect the response until the server
 * closes or `timeoutMs` passes. Returns {raw, status, headers, body}.
 */
export function rawHttp(port, payload, { timeoutMs = 5000, endAfterWrite = false } = {}) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const chunks = [];
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve(parseRawResponse(Buffer.concat(chunks)));
    };
    const timer = setTimeout(finish, timeoutMs);
    s.on('connect', () => {
      s.write(payload);
      if (endAfterWrite) s.end();
    });
    s.on('data', (c) => {
      chunks.push(c);
      const parsed = parseRawResponse(Buffer.concat(chunks));
      if (parsed.complete) finish();
    });
    s.on('end', finish);
    s.on('close', finish);
    s.on('error', (e) => {
      if (chunks.length) finish();
      else if (!done) {
        done = true;
        clearTimeout(timer);
        reject(e);
      }
    });
  });
}

export function parseRawResponse(buf) {
  const raw = buf.toString('latin1');
  const headEnd = raw.indexOf('\r\n\r\n');
  if (headEnd < 0) return { raw, status: undefined, headers: {}, body: '', complete: false };
  const lines = raw.slice(0, headEnd).split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]);
  const headers = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  let body = buf.subarray(Buffer.byteLength(raw.slice(0, headEnd + 4), 'latin1'));
  let complete = false;
  if (headers['content-length'] !== undefined) {
    const n = Number(headers['content-length']);
    complete = body.length >= n;
    body = body.subarray(0, n);
  } else if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
    const dec = decodeChunked(body);
    complete = dec.complete;
    body = dec.body;
  }
  return { raw, status: m ? Number(m[1]) : undefined, headers, body: body.toString('utf8'), complete };
}

function decodeChunked(buf) {
  const parts = [];
  let off = 0;
  for (let i = 0; i < 100000; i++) {
    const nl = buf.indexOf('\r\n', off);
    if (nl < 0) return { body: Buffer.concat(parts), complete: false };
    const size = parseInt(buf.subarray(off, nl).toString('latin1'), 16);
    if (Number.isNaN(size)) return { body: Buffer.concat(parts), complete: false };
    if (size === 0) return { body: Buffer.concat(parts), complete: true };
    if (buf.length < nl + 2 + size + 2) return { body: Buffer.concat(parts), complete: false };
    parts.push(buf.subarray(nl + 2, nl + 2 + size));
    off = nl + 2 + size + 2;
  }
  return { body: Buffer.concat(parts), complete: false };
}

/** Parse a text/event-stream body into [{event, data, id}]. */
export function parseSse(text) {
  const events = [];
  for (const block of text.split(/\r?\n\r?\n/)) {
    if (!block.trim()) continue;
    const ev = { event: 'message', data: '', id: undefined };
    const data = [];
    let any = false;
    for (const line of block.split(/\r?\n/)) {
      if (line.startsWith(':')) continue;
      const i = line.indexOf(':');
      const field = i < 0 ? line : line.slice(0, i);
      const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
      if (field === 'event') ev.event = value;
      else if (field === 'data') data.push(value);
      else if (field === 'id') ev.id = value;
      else continue;
      any = true;
    }
    if (!any) continue;
    ev.data = data.join('\n');
    events.push(ev);
  }
  return events;
}

/**
 * Read a fetch Response body (SSE) until `predicate(text)` is true or timeout.
 * Returns the text read so far; cancels the reader afterwards.
 */
export async function readStreamUntil(res, predicate, { timeoutMs = 10000 } = {}) {
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let text = '';
  const deadline = Date.now() + timeoutMs;
  try {
    for (let i = 0; i < 100000 && Date.now() < deadline; i++) {
      const r = await raceTimeout(reader.read(), Math.max(1, deadline - Date.now()), 'timeout');
      if (r === 'timeout' || r.done) break;
      text += dec.decode(r.value, { stream: true });
      if (predicate(text)) break;
    }
  } finally {
    reader.cancel().catch(() => {});
  }
  return text;
}

// ---------------------------------------------------------------------------
// Mock upstreams (mocks by necessity; see the comment at the top of each file)
// ---------------------------------------------------------------------------
export { startEchoUpstream } from './echo-upstream.mjs';
export { startSlowUpstream } from './slow-upstream.mjs';
export { startTickerUpstream } from './ticker-upstream.mjs';

/** Start firehose-upstream.mjs as its own process; see that file. */
export async function startFirehoseUpstream() {
  const server = await startNodeServer('firehose-upstream', [path.join(SUPPORT_DIR, 'firehose-upstream.mjs')]);
  const { origin, proc } = server;
  return {
    ...server,
    async stats() {
      const r = await fetch(`${origin}/__stats`, { signal: AbortSignal.timeout(5000) });
      return (await r.json()).streams;
    },
    stop: () => proc.stop('SIGKILL'),
  };
}

// ---------------------------------------------------------------------------
// Raw MCP over HTTP (what an SDK would send, spelled out)
// ---------------------------------------------------------------------------
export const LEGACY_PROTOCOL_VERSION = '2025-11-25';

export function initializeBody(id = 1, protocolVersion = LEGACY_PROTOCOL_VERSION) {
  return {
    jsonrpc: '2.0',
    id,
    method: 'initialize',
    params: { protocolVersion, capabilities: {}, clientInfo: { name: 'mcpgate-raw-test', version: '1.0.0' } },
  };
}

/**
 * POST a JSON-RPC message (object, or raw string body) and read the whole
 * answer. Returns {status, headers (Headers), text, json, messages}; `messages`
 * holds the JSON-RPC messages from a JSON or SSE body.
 */
export async function mcpPost(url, body, { headers = {}, timeoutMs = 10000, fetchImpl = fetch } = {}) {
  const res = await fetchImpl(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...headers,
    },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  let json;
  let messages = [];
  const ct = res.headers.get('content-type') ?? '';
  if (ct.includes('text/event-stream')) {
    messages = parseSse(text)
      .filter((e) => e.data)
      .map((e) => {
        try {
          return JSON.parse(e.data);
        } catch {
          return { unparsed: e.data };
        }
      });
  } else if (text) {
    try {
      json = JSON.parse(text);
      messages = Array.isArray(json) ? json : [json];
    } catch {
      /* not JSON */
    }
  }
  return { status: res.status, headers: res.headers, text, json, messages };
}

/** Open a raw 2025-era session (initialize + notifications/initialized). */
export async function openRawSession(url, { headers = {} } = {}) {
  const init = await mcpPost(url, initializeBody(1), { headers });
  const sessionId = init.headers.get('mcp-session-id');
  const initialized = await mcpPost(
    url,
    { jsonrpc: '2.0', method: 'notifications/initialized' },
    { headers: { ...headers, 'mcp-session-id': sessionId ?? '', 'mcp-protocol-version': LEGACY_PROTOCOL_VERSION } },
  );
  return { init, initialized, sessionId };
}
