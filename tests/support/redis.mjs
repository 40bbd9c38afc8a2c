// A REAL redis-server (/usr/bin/redis-server) for the tests, bound to
// 127.0.0.1 only, with no RDB snapshots and, by default, no AOF: nothing is
// written outside a private temp dir.
//
//   const redis = await startRedis();              // free port
//   redis.url                                      // "redis://127.0.0.1:<port>/0"
//   await redis.cli('SET', 'k', 'v');              // "OK" (redis-cli text output)
//   await redis.command('GET', 'k');               // "v"  (parsed RESP reply)
//   await redis.stop();                            // SIGTERM, waits for the exit: port refuses
//   await redis.start();                           // again on the SAME port (empty unless persist)
//   await redis.restart();                         // stop() + start()
//
// Options:
//   port      fixed port (default: a free one; retried on a bind race)
//   persist   false (default): --save "" --appendonly no, a restart loses all data.
//             true: --appendonly yes --appendfsync always in the temp dir, so
//             stop()/start() keep the data (SIGTERM makes redis flush the AOF).
//   dir       working dir (default: a fresh temp dir, removed at process exit
//             unless MCPGATE_TEST_KEEP_TMP is set)
//   args      extra redis-server arguments, e.g. ['--requirepass', 'pw']
//   password  sent as AUTH by command()/cli() and the readiness probe
//   startTimeoutMs (10000)
//
// Handle: {port, url, dir, pid, alive(), output(), stop({signal, timeoutMs}),
// start(), restart(), cli(...args), command(...args)}.
// cli() runs `redis-cli -h 127.0.0.1 -p <port> <args...>` (the redis-tools
// package; a built-in RESP client formats like redis-cli when it is missing)
// and resolves with its stdout minus trailing newlines; error replies come
// back as text ("ERR ..."), as redis-cli prints them. command() resolves with
// the parsed reply (string | number | null | array) and rejects on an error
// reply (err.redisError = "ERR ...").
//
// Every redis-server is SIGKILLed when this process exits; a tiny `sh`
// watchdog per server also kills it when this process dies without running
// exit hooks (SIGKILL of the test runner): the watchdog's stdin pipe from us
// closes.
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const HOST = '127.0.0.1';
const REDIS_SERVER = process.env.MCPGATE_REDIS_SERVER || '/usr/bin/redis-server';
const TIME_SCALE = Number(process.env.MCPGATE_TEST_TIME_SCALE || 1);

function findRedisCli() {
  for (const dir of [path.dirname(REDIS_SERVER), ...(process.env.PATH || '').split(':')]) {
    const p = path.join(dir || '.', 'redis-cli');
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return null;
}
const REDIS_CLI = findRedisCli();

const live = new Set();
const tempDirs = new Set();
process.on('exit', () => {
  for (const p of live) {
    try {
      p.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }
  if (process.env.MCPGATE_TEST_KEEP_TMP) return;
  for (const d of tempDirs) {
    try {
      fs.rmSync(d, { recursive: true, force: true });
    } catch {
      /* ignore */
    }
  }
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, HOST, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// ---------------------------------------------------------------------------
// Minimal RESP2 client: one connection per call, bounded by a timeout.
// ---------------------------------------------------------------------------
function encode(args) {
  let out = `*${args.length}\r\n`;
  for (const a of args) {
    const b = Buffer.isBuffer(a) ? a : Buffer.from(String(a));
    out += `$${b.length}\r\n${b.toString('latin1')}\r\n`;
  }
  return Buffer.from(out, 'latin1');
}

// Parse one reply from buf at offset; returns {value, end} or null if incomplete.
function parseReply(buf, at = 0) {
  const nl = buf.indexOf('\r\n', at);
  if (nl < 0) return null;
  const type = String.fromCharCode(buf[at]);
  const line = buf.toString('utf8', at + 1, nl);
  const next = nl + 2;
  switch (type) {
    case '+':
      return { value: line, end: next };
    case '-':
      return { value: Object.assign(new Error(line), { redisError: line }), end: next };
    case ':':
      return { value: Number(line), end: next };
    case '$': {
      const n = Number(line);
      if (n < 0) return { value: null, end: next };
      if (buf.length < next + n + 2) return null;
      return { value: buf.toString('utf8', next, next + n), end: next + n + 2 };
    }
    case '*': {
      const n = Number(line);
      if (n < 0) return { value: null, end: next };
      const items = [];
      let pos = next;
      for (let i = 0; i < n; i++) {
        const r = parseReply(buf, pos);
        if (!r) return null;
        items.push(r.value);
        pos = r.end;
      }
      return { value: items, end: pos };
    }
    default:
      throw new Error(`bad RESP type byte ${JSON.stringify(type)}`);
  }
}

/** Send commands on one fresh connection; resolves with their replies (Error objects for error replies). */
export function respCommands(port, commands, { timeoutMs = 3000 } = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: HOST, port });
    let buf = Buffer.alloc(0);
    const replies = [];
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`redis 127.0.0.1:${port} did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.on('connect', () => sock.write(Buffer.concat(commands.map(encode))));
    sock.on('data', (c) => {
      buf = Buffer.concat([buf, c]);
      try {
        for (;;) {
          const r = parseReply(buf);
          if (!r) break;
          replies.push(r.value);
          buf = buf.subarray(r.end);
          if (replies.length === commands.length) {
            clearTimeout(timer);
            sock.destroy();
            resolve(replies);
            return;
          }
        }
      } catch (e) {
        clearTimeout(timer);
        sock.destroy();
        reject(e);
      }
    });
    sock.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    sock.on('close', () => {
      clearTimeout(timer);
      if (replies.length < commands.length) reject(new Error(`redis 127.0.0.1:${port} closed the connection`));
    });
  });
}

// redis-cli's non-tty output format.
function formatLikeCli(v) {
  if (v === null) return '';
  if (v instanceof Error) return v.redisError;
  if (Array.isArray(v)) return v.map(formatLikeCli).join('\n');
  return String(v);
}

/**
 * Start a real redis-server on 127.0.0.1 (see the header comment).
 */
export async function startRedis({ port: fixedPort, persist = false, dir, args = [], password, startTimeoutMs = 10000 } = {}) {
  const workDir = dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'itest-redis-'));
  if (!dir) tempDirs.add(workDir);
  let port = fixedPort ?? null;
  let proc = null;
  let watchdog = null;
  let exited = null;
  let exitInfo = null;
  let chunks = [];

  function argv(p) {
    const a = [
      '--port', String(p),
      '--bind', HOST,
      '--protected-mode', 'yes',
      '--daemonize', 'no',
      '--dir', workDir,
      '--save', '',
      '--logfile', '',
      '--unixsocket', '',
    ];
    if (persist) a.push('--appendonly', 'yes', '--appendfsync', 'always');
    else a.push('--appendonly', 'no');
    if (password) a.push('--requirepass', password);
    return [...a, ...args];
  }

  const authPrefix = () => (password ? [['AUTH', password]] : []);

  // Ready = answers PING, and it is OUR process answering (not another redis
  // that still holds the port).
  async function ping(pid) {
    try {
      const r = await respCommands(port, [...authPrefix(), ['PING'], ['INFO', 'server']], { timeoutMs: 1000 });
      const [pong, info] = r.slice(-2);
      return pong === 'PONG' && typeof info === 'string' && new RegExp(`^process_id:${pid}\\r?$`, 'm').test(info);
    } catch {
      return false;
    }
  }

  function spawnOnce(p) {
    const child = spawn(REDIS_SERVER, argv(p), { cwd: workDir, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(child);
    chunks = [];
    let captured = 0;
    const capture = (c) => {
      if (captured > 4 * 1024 * 1024) return;
      captured += c.length;
      chunks.push(c);
    };
    child.stdout.on('data', capture);
    child.stderr.on('data', capture);
    if (process.env.MCPGATE_TEST_VERBOSE) {
      child.stdout.on('data', (c) => process.stderr.write(`[redis:${child.pid}] ${c}`));
    }
    exitInfo = null;
    exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        live.delete(child);
        exitInfo = { code, signal };
        resolve(exitInfo);
      });
      child.on('error', (error) => {
        live.delete(child);
        exitInfo = { code: null, signal: null, error };
        resolve(exitInfo);
      });
    });
    proc = child;
    if (child.pid) {
      // Kills redis when our end of its stdin pipe closes (we died).
      watchdog = spawn('/bin/sh', ['-c', 'read _; kill -9 "$0" 2>/dev/null', String(child.pid)], { stdio: ['pipe', 'ignore', 'ignore'] });
      watchdog.unref();
      watchdog.stdin.on('error', () => {});
      watchdog.stdin.unref?.();
      live.add(watchdog);
      const w = watchdog;
      w.on('exit', () => live.delete(w));
    }
    return child;
  }

  function killWatchdog() {
    const w = watchdog;
    watchdog = null;
    if (w && w.exitCode === null && w.signalCode === null) {
      try {
        w.kill('SIGKILL');
      } catch {
        /* gone */
      }
    }
  }

  async function start() {
    if (proc && exitInfo === null) return handle;
    const deadline = Date.now() + startTimeoutMs * TIME_SCALE;
    let lastError = '';
    for (let attempt = 0; Date.now() < deadline; attempt++) {
      const p = port ?? (await freePort());
      const child = spawnOnce(p);
      const prevPort = port;
      port = p;
      for (;;) {
        if (exitInfo !== null) break;
        if (await ping(child.pid)) return handle;
        if (Date.now() >= deadline) break;
        await sleep(25);
      }
      killWatchdog();
      if (exitInfo === null) {
        child.kill('SIGKILL');
        await exited;
        break;
      }
      lastError = Buffer.concat(chunks).toString('utf8');
      const inUse = /Address already in use|bind: /i.test(lastError);
      if (!inUse) break;
      // A free port raced away, or the fixed/previous port is not free yet.
      if (fixedPort === undefined && prevPort === null) port = null;
      await sleep(attempt < 10 ? 50 : 200);
    }
    throw new Error(`redis-server did not become ready on 127.0.0.1:${port} (${JSON.stringify(exitInfo)}):\n${lastError || Buffer.concat(chunks).toString('utf8')}`);
  }

  async function stop({ signal = 'SIGTERM', timeoutMs = 5000 } = {}) {
    const child = proc;
    if (!child || exitInfo !== null) {
      killWatchdog();
      return exitInfo;
    }
    try {
      child.kill(signal);
    } catch {
      /* gone */
    }
    let t;
    const info = await Promise.race([exited, new Promise((r) => (t = setTimeout(() => r(null), timeoutMs * TIME_SCALE)))]);
    clearTimeout(t);
    if (!info) {
      child.kill('SIGKILL');
      await exited;
    }
    killWatchdog();
    return exitInfo;
  }

  async function command(...cmd) {
    const replies = await respCommands(port, [...authPrefix(), cmd.map(String)]);
    const r = replies[replies.length - 1];
    if (r instanceof Error) throw r;
    return r;
  }

  function cli(...cmd) {
    if (!REDIS_CLI) {
      return respCommands(port, [...authPrefix(), cmd.map(String)]).then((r) => formatLikeCli(r[r.length - 1]));
    }
    const env = { ...process.env };
    if (password) env.REDISCLI_AUTH = password;
    return new Promise((resolve, reject) => {
      execFile(REDIS_CLI, ['-h', HOST, '-p', String(port), ...cmd.map(String)], { env, timeout: 5000 * TIME_SCALE }, (err, stdout, stderr) => {
        if (err) reject(Object.assign(new Error(`redis-cli ${cmd.join(' ')} failed: ${stderr || err.message}`), { stdout, stderr }));
        else resolve(stdout.replace(/\n+$/, ''));
      });
    });
  }

  const handle = {
    get port() {
      return port;
    },
    get url() {
      return `redis://${HOST}:${port}/0`;
    },
    dir: workDir,
    persist,
    get pid() {
      return proc?.pid;
    },
    alive: () => !!proc && exitInfo === null,
    output: () => Buffer.concat(chunks).toString('utf8'),
    start,
    stop,
    async restart() {
      await stop();
      return start();
    },
    cli,
    command,
  };
  await start();
  return handle;
}
