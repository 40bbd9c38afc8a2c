// Processes of the bench: started pinned to a core, each in its own process group, all
// killed (by their own ids) when the bench exits, however it exits. And what /proc says
// about them: CPU time, resident memory, per-core busy time.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';

export const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const started = new Set();  // process group ids (= pids) of everything we spawned
let pidFile = null;

/**
 * Also list every process started from now on in `file` ("pid starttime" lines), so that
 * scripts/bench's exit trap can kill what is left even if this process is killed outright.
 */
export function recordPidsIn(file) {
  pidFile = file;
}

function remember(pid) {
  started.add(pid);
  if (!pidFile) return;
  const f = statFields(pid);
  if (f) fs.appendFileSync(pidFile, `${pid} ${f[19]}\n`);  // field 22: start time, tells a reused pid apart
}

function killGroup(pid, signal) {
  try { process.kill(-pid, signal); } catch { /* gone */ }
}

export function killAll() {
  for (const pid of started) killGroup(pid, 'SIGKILL');
  started.clear();
}
process.on('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => { console.error(`bench: ${signal}, stopping`); killAll(); process.exit(130); });
}

/**
 * Starts `argv` pinned to `core` (taskset; `null`: not pinned), in its own process group,
 * output to `logFile`. Returns {pid, name, child, exited: Promise<code>}.
 */
export function startPinned(name, core, argv, { logFile, env, cwd, stdio } = {}) {
  const out = logFile ? fs.openSync(logFile, 'a') : 'ignore';
  const [file, ...args] = core === null ? argv : ['taskset', '-c', String(core), ...argv];
  const child = spawn(file, args, {
    detached: true, cwd, env: { ...process.env, ...env },
    stdio: stdio ?? ['ignore', out, out],
  });
  if (typeof out === 'number') fs.closeSync(out);
  remember(child.pid);
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => {
    started.delete(child.pid);
    resolve(code ?? signal);
  }));
  return { pid: child.pid, name, child, exited, logFile };
}

/** Stops one process we started: SIGTERM to its group, SIGKILL after `graceMs`. */
export async function stop(proc, graceMs = 3000) {
  if (!started.has(proc.pid)) return;
  killGroup(proc.pid, 'SIGTERM');
  const timer = setTimeout(() => killGroup(proc.pid, 'SIGKILL'), graceMs);
  await proc.exited;
  clearTimeout(timer);
}

/**
 * Runs `argv` pinned to `core` to completion, killed after `timeoutMs`.
 * Resolves {code, stdout, stderr, timedOut}.
 */
export function runPinned(core, argv, { env, timeoutMs }) {
  return new Promise((resolve) => {
    const child = spawn('taskset', ['-c', String(core), ...argv], {
      detached: true, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    remember(child.pid);
    let stdout = '', stderr = '', timedOut = false;
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => { timedOut = true; killGroup(child.pid, 'SIGKILL'); }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      started.delete(child.pid);
      resolve({ code, stdout, stderr, timedOut });
    });
  });
}

function statFields(pid) {
  try {
    const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after "(comm)": state is field 3; the comm may hold spaces and parentheses.
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** pid and all its descendants (nginx's master and workers, say). */
export function processTree(pid) {
  const children = new Map();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const f = statFields(entry);
    if (!f) continue;
    const ppid = Number(f[1]);
    if (!children.has(ppid)) children.set(ppid, []);
    children.get(ppid).push(Number(entry));
  }
  const out = [];
  const walk = (p) => { out.push(p); for (const c of children.get(p) ?? []) walk(c); };
  walk(pid);
  return out;
}

/** utime+stime of these processes (all their threads), in clock ticks. */
export function cpuTicks(pids) {
  let sum = 0;
  for (const pid of pids) {
    const f = statFields(pid);
    if (f) sum += Number(f[11]) + Number(f[12]);  // utime, stime (fields 14, 15)
  }
  return sum;
}

/** CPU ticks of this process's reaped children (wrk, openssl): cutime+cstime. */
export function reapedChildTicks() {
  const f = statFields('self');
  return Number(f[13]) + Number(f[14]);
}

/** This process's own CPU, in ticks. */
export function selfTicks() {
  const u = process.cpuUsage();
  return ((u.user + u.system) / 1e6) * CLK_TCK;
}

/** VmRSS of these processes, summed, in KiB. */
export function rssKiB(pids) {
  let sum = 0;
  for (const pid of pids) {
    try {
      const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) sum += Number(m[1]);
    } catch { /* gone */ }
  }
  return sum;
}

/** Open file descriptors of one process (NaN when it is gone). */
export function fdCount(pid) {
  try {
    return fs.readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return NaN;
  }
}

const TCP_STATES = { '01': 'ESTABLISHED', '02': 'SYN_SENT', '03': 'SYN_RECV', '04': 'FIN_WAIT1', '05': 'FIN_WAIT2',
                     '06': 'TIME_WAIT', '07': 'CLOSE', '08': 'CLOSE_WAIT', '09': 'LAST_ACK', '0A': 'LISTEN', '0B': 'CLOSING' };

/**
 * What one process's descriptors are: {total, byKind: {"tcp <local|peer> port <n> <STATE>" |
 * "socket (other)" | "pipe" | "file" | ...: count}}. A TCP socket is named by its remote port
 * when `ports` (the processes' listening ports: {port: name}) knows it, else by its local one.
 */
export function describeFds(pid, ports = {}) {
  const tcp = new Map();  // inode -> {local, remote, state}
  for (const file of ['tcp', 'tcp6']) {
    let text = '';
    try { text = fs.readFileSync(`/proc/${pid}/net/${file}`, 'utf8'); } catch { continue; }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      const port = (addr) => parseInt(addr.split(':')[1], 16);
      tcp.set(f[9], { local: port(f[1]), remote: port(f[2]), state: TCP_STATES[f[3]] ?? f[3] });
    }
  }
  const byKind = {};
  let total = 0;
  let entries = [];
  try { entries = fs.readdirSync(`/proc/${pid}/fd`); } catch { return { total: NaN, byKind }; }
  for (const fd of entries) {
    let target = '';
    try { target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`); } catch { continue; }
    total++;
    const m = /^socket:\[(\d+)\]$/.exec(target);
    let kind;
    if (m && tcp.has(m[1])) {
      const t = tcp.get(m[1]);
      kind = ports[t.remote] ? `tcp to ${ports[t.remote]} ${t.state}`
        : ports[t.local] ? `tcp on ${ports[t.local]} ${t.state}` : `tcp port ${t.local} ${t.state}`;
    } else if (m) {
      kind = 'socket (not TCP)';
    } else {
      kind = /^(pipe|anon_inode):/.test(target) ? target.replace(/:.*/, '').replace(/^anon_inode$/, `anon_inode ${target.slice(11)}`)
        : target.startsWith('/dev/') ? target : 'file';
    }
    byKind[kind] = (byKind[kind] ?? 0) + 1;
  }
  return { total, byKind };
}

/** VmRSS, VmHWM (peak RSS) in KiB and the thread count of one process, from /proc/<pid>/status. */
export function memStatus(pid) {
  try {
    const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (name) => Number((new RegExp(`${name}:\\s+(\\d+)`).exec(text) || [])[1]);
    return { rssKiB: field('VmRSS'), hwmKiB: field('VmHWM'), threads: field('Threads') };
  } catch {
    return { rssKiB: NaN, hwmKiB: NaN, threads: NaN };
  }
}

/** Per-core {busy, total} ticks from /proc/stat (busy = everything but idle and iowait). */
export function coreTimes() {
  const cores = {};
  for (const line of fs.readFileSync('/proc/stat', 'utf8').split('\n')) {
    const m = /^cpu(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const v = m[2].trim().split(/\s+/).map(Number);
    const [user, nice, system, idle, iowait, irq, softirq, steal] = v;
    const busy = user + nice + system + irq + softirq + (steal || 0);
    cores[m[1]] = { busy, total: busy + idle + iowait };
  }
  return cores;
}

export function coreDelta(before, after) {
  const out = {};
  for (const k of Object.keys(after)) {
    const total = after[k].total - before[k].total;
    out[k] = { busy: after[k].busy - before[k].busy, total };
  }
  return out;
}

/** Resolves when something accepts TCP connections on 127.0.0.1:port, or rejects after timeoutMs. */
export async function waitForPort(port, timeoutMs = 15000, proc) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (proc && !started.has(proc.pid)) throw new Error(`${proc.name} exited before listening on ${port} (see ${proc.logFile})`);
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await sleep(100);
  }
}

/** True when nothing listens on 127.0.0.1:port and we could bind it. */
export function portFree(port) {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}
