// One wrk run (pinned to core 0) with the bench's Lua script, and what its output says.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runPinned } from './procs.mjs';

const LUA = path.join(path.dirname(fileURLToPath(import.meta.url)), 'wrk', 'post.lua');

function toMs(value, unit) {
  const v = Number(value);
  return unit === 'us' ? v / 1000 : unit === 'ms' ? v : unit === 's' ? v * 1000 : unit === 'm' ? v * 60000 : NaN;
}

export function parseWrk(out) {
  const r = { requests: 0, seconds: 0, rps: 0, p50: NaN, p75: NaN, p90: NaN, p99: NaN,
              non2xx: 0, socketErrors: 0, socketErrorText: '', tokens: [] };
  let m = /(\d+) requests in ([\d.]+)(us|ms|s|m)/.exec(out);
  if (m) { r.requests = Number(m[1]); r.seconds = toMs(m[2], m[3]) / 1000; }
  m = /Requests\/sec:\s+([\d.]+)/.exec(out);
  if (m) r.rps = Number(m[1]);
  for (const p of ['50', '75', '90', '99']) {
    m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(out);
    if (m) r[`p${p}`] = toMs(m[1], m[2]);
  }
  m = /Non-2xx or 3xx responses:\s+(\d+)/.exec(out);
  if (m) r.non2xx = Number(m[1]);
  m = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  if (m) {
    r.socketErrors = Number(m[1]) + Number(m[2]) + Number(m[3]) + Number(m[4]);
    r.socketErrorText = `connect ${m[1]}, read ${m[2]}, write ${m[3]}, timeout ${m[4]}`;
  }
  for (const t of out.matchAll(/bench-tokens thread=(\d+) end=(\d+) used=(\d+) wraps=(\d+)/g)) {
    r.tokens.push({ thread: Number(t[1]), end: Number(t[2]), used: Number(t[3]), wraps: Number(t[4]) });
  }
  return r;
}

/**
 * Runs wrk -t<threads> -c<connections> -d<seconds>s --latency against `url`.
 * tokens: {mode: 'same', file} | {mode: 'rotate', file, count} | {mode: 'distinct', prefix, offsets: [o0, o1]}
 */
export async function runWrk({ url, seconds, threads = 2, connections = 64, bodyFile, tokens }) {
  const env = { BENCH_BODY: bodyFile, BENCH_MODE: tokens.mode };
  if (tokens.mode === 'same') env.BENCH_TOKENS = tokens.file;
  if (tokens.mode === 'rotate') { env.BENCH_TOKENS = tokens.file; env.BENCH_ROTATE = String(tokens.count); }
  if (tokens.mode === 'distinct') {
    env.BENCH_TOKENS = tokens.prefix;
    tokens.offsets.forEach((o, i) => { env[`BENCH_OFFSET_${i}`] = String(o); });
  }
  const argv = ['wrk', `-t${threads}`, `-c${connections}`, `-d${seconds}s`, '--timeout', '5s', '--latency', '-s', LUA, url];
  const run = await runPinned(0, argv, { env, timeoutMs: (seconds + 30) * 1000 });
  const result = parseWrk(run.stdout);
  result.exitCode = run.code;
  result.timedOut = run.timedOut;
  if (run.code !== 0 || run.timedOut) {
    result.failure = `wrk exit ${run.code}${run.timedOut ? ' (killed: timeout)' : ''}: ${run.stderr.trim().slice(0, 300)}`;
  } else if (result.requests === 0) {
    result.failure = `no request completed within the cell`;
  }
  result.raw = run.stdout;
  return result;
}
