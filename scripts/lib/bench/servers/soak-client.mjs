// The soak's clients, in one process: long-lived event streams through the gateway plus a
// request load, every answer checked, every failure counted by kind. Driven by JSON
// commands on stdin, one a line; answers are JSON lines on stdout.
//
// Streams (one TCP connection each, as real clients hold them):
//   listen   2026-07-28: POST subscriptions/listen on the modern route (for soak://tick);
//            open once the acknowledged notification arrives. The upstream publishes a
//            resources/updated event every few seconds and a keep-alive every 15 s, so a
//            listen stream that stays silent for STALL_MS is counted as stalled.
//   get      2025-era: initialize + notifications/initialized on server-everything (through
//            the gateway), then the session's GET event stream; open on the 200 head. A share
//            of the sessions turns on the server's simulated logging (a notifications/message
//            every 5 s on that GET stream). Closing one ends the stream and DELETEs the session.
// A stream that ends without being closed by us is counted (stream:dropped) and replaced.
//
// Requests (open loop at `rps`, at most MAX_INFLIGHT in flight, keep-alive connections,
// tokens rotating over the given file): modern tools/call echo, modern tools/list, a tools/call
// echo and a (filtered) tools/list on a held 2025 session, and modern slow-progress calls whose
// answer streams progress events for about 2 s.
//
// Commands: {"cmd":"streams","n":N}  -> {"type":"streams", open, ms, failedOpens}
//           {"cmd":"load","rps":R} | {"cmd":"churn","perMin":P} | {"cmd":"stats"} -> {"type":"stats",...}
//           {"cmd":"close"} -> {"type":"closed", ms, left}       {"cmd":"exit"}
// Env: SOAK_CLIENT (JSON: port, modernPath, everythingPath, tokensFile, liveShare, kinds).
import fs from 'node:fs';
import http from 'node:http';
import readline from 'node:readline';

const conf = JSON.parse(process.env.SOAK_CLIENT);
const tokens = fs.readFileSync(conf.tokensFile, 'utf8').split('\n').filter(Boolean);
const KINDS = conf.kinds ?? ['listen', 'get'];
const MODERN = '2026-07-28';
const SESSION_VERSION = '2025-11-25';
const MAX_INFLIGHT = 256;
const OPEN_CONCURRENCY = 40;
const REQUEST_TIMEOUT_MS = 15_000;
const STALL_MS = 45_000;
const MODERN_META = {
  'io.modelcontextprotocol/protocolVersion': MODERN,
  'io.modelcontextprotocol/clientInfo': { name: 'mcpgate-soak', version: '1.0.0' },
  'io.modelcontextprotocol/clientCapabilities': {},
};

// Idle keep-alive sockets are closed after 30 s, before the gateway's idle_timeout_ms (60 s) would
// close them under a request just being sent (an ECONNRESET no real client should count).
const agent = new http.Agent({ keepAlive: true, maxSockets: 64, keepAliveMsecs: 10_000, timeout: 30_000 });
let tokenIndex = 0;
const nextToken = () => tokens[(tokenIndex++) % tokens.length];
const send = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);

// ---- counters -------------------------------------------------------------------------
const errors = {};  // kind -> count
const samples = {};  // kind -> first few messages
function fail(kind, detail) {
  errors[kind] = (errors[kind] ?? 0) + 1;
  samples[kind] ??= [];
  if (samples[kind].length < 3) samples[kind].push(String(detail).slice(0, 200));
}
const served = {};  // request kind -> ok count
let latencies = [];  // ms of requests completed since the last stats
const histogram = new Uint32Array(30001);  // every request's ms (slow-progress calls aside), 1 ms buckets, last = more
function record(ms) {
  latencies.push(ms);
  histogram[Math.min(histogram.length - 1, Math.floor(ms))]++;
}
function histogramPercentiles() {
  const total = histogram.reduce((a, b) => a + b, 0);
  const out = { n: total };
  for (const p of [50, 90, 99, 99.9]) {
    let seen = 0, i = 0;
    for (; i < histogram.length && seen < (p / 100) * total; i++) seen += histogram[i];
    out[`p${p}`] = total ? Math.max(0, i - 1) + 1 : null;  // upper edge of the bucket, ms
  }
  let max = histogram.length - 1;
  while (max > 0 && histogram[max] === 0) max--;
  out.max = total ? max + 1 : null;
  return out;
}
const counts = { requests: 0, skipped: 0, streamsOpened: 0, streamsClosed: 0, replaced: 0, events: 0, listenEvents: 0,
                 logEvents: 0, progressEvents: 0, keepalives: 0, peakStreams: 0,
                 notSentAtCap: 0 };

// ---- HTTP helpers ------------------------------------------------------------------------
function headersFor(extra) {
  return { authorization: `Bearer ${nextToken()}`, 'content-type': 'application/json',
           accept: 'application/json, text/event-stream', ...extra };
}

/** One request; resolves {status, headers, body} or rejects with an Error whose .kind is set. */
function request({ method = 'POST', path, headers, body, timeoutMs = REQUEST_TIMEOUT_MS, useAgent = agent }) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: conf.port, method, path, headers, agent: useAgent }, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (e) => reject(Object.assign(e, { kind: e.code ?? 'response-error' })));
    });
    req.setTimeout(timeoutMs, () => req.destroy(Object.assign(new Error('timeout'), { kind: 'timeout' })));
    req.on('error', (e) => reject(Object.assign(e, { kind: e.kind ?? e.code ?? 'error' })));
    req.end(body);
  });
}

/** Splits an event stream into JSON messages; feed() returns the messages completed so far. */
function sseParser() {
  let buf = '';
  return {
    feed(chunk) {
      buf += chunk;
      const out = [];
      let end;
      while ((end = buf.search(/\r?\n\r?\n/)) !== -1) {
        const block = buf.slice(0, end);
        buf = buf.slice(end).replace(/^\r?\n\r?\n/, '');
        const data = block.split(/\r?\n/).filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
        if (!data) { out.push({ comment: true }); continue; }
        try { out.push(JSON.parse(data)); } catch { out.push({ bad: data }); }
      }
      return out;
    },
  };
}

/** The JSON-RPC messages of a response body, JSON or an event stream. */
function messagesOf(res) {
  if (String(res.headers['content-type'] ?? '').startsWith('text/event-stream')) {
    return sseParser().feed(`${res.body}\n\n`).filter((m) => !m.comment);
  }
  try { return [JSON.parse(res.body)]; } catch { return [{ bad: res.body }]; }
}

function resultFor(res, id) {
  return messagesOf(res).find((m) => m.id === id);
}

// ---- streams -----------------------------------------------------------------------------
const streams = new Set();  // open streams: {kind, req, res, closing, lastByte, sessionId}
let opening = 0;
let target = 0;
let failedOpens = 0;
let closingAll = false;
let rpcId = 0;

function onStreamEnd(s, why) {
  if (!streams.delete(s)) return;
  if (s.closing || closingAll) { counts.streamsClosed++; return; }
  fail(`stream:${s.kind}:${why}`, `${why} after ${Math.round((Date.now() - s.openedAt) / 1000)} s`);
  counts.replaced++;
  if (s.sessionId) deleteSession(s.sessionId);
  topUp();
}

function hold(s, req, res, parser) {
  if (closingAll) {  // opened while the drain began: closed at once
    s.closing = true;
    req.destroy();
    if (s.sessionId) deleteSession(s.sessionId);
    return;
  }
  s.req = req;
  s.res = res;
  s.lastByte = Date.now();
  s.openedAt = Date.now();
  streams.add(s);
  counts.streamsOpened++;
  counts.peakStreams = Math.max(counts.peakStreams, streams.size);
  res.setEncoding('utf8');
  res.on('data', (chunk) => {
    s.lastByte = Date.now();
    for (const m of parser.feed(chunk)) {
      if (m.comment) { counts.keepalives++; continue; }
      counts.events++;
      if (m.method === 'notifications/resources/updated') counts.listenEvents++;
      else if (m.method === 'notifications/message') counts.logEvents++;
      else if (m.bad) fail(`stream:${s.kind}:bad-event`, m.bad);
    }
  });
  res.on('end', () => onStreamEnd(s, 'ended'));
  res.on('error', (e) => onStreamEnd(s, e.code ?? 'error'));
  res.on('close', () => onStreamEnd(s, 'closed'));
  req.setTimeout(0);
}

function openListen() {
  return new Promise((resolve) => {
    const id = `listen-${++rpcId}`;
    const body = JSON.stringify({ jsonrpc: '2.0', id, method: 'subscriptions/listen',
      params: { notifications: { resourceSubscriptions: ['soak://tick'] }, _meta: MODERN_META } });
    const s = { kind: 'listen', closing: false };
    const req = http.request({ host: '127.0.0.1', port: conf.port, method: 'POST', path: conf.modernPath, agent: false,
      headers: headersFor({ 'mcp-protocol-version': MODERN, 'mcp-method': 'subscriptions/listen' }) }, (res) => {
      if (res.statusCode !== 200) { res.resume(); resolve(`open-http-${res.statusCode}`); return; }
      const parser = sseParser();
      res.setEncoding('utf8');
      const first = (chunk) => {
        const msgs = parser.feed(chunk);
        if (msgs.some((m) => m.method === 'notifications/subscriptions/acknowledged')) {
          res.off('data', first);
          hold(s, req, res, parser);
          resolve(null);
        }
      };
      res.on('data', first);
      res.on('end', () => resolve('open-ended'));
    });
    req.setTimeout(REQUEST_TIMEOUT_MS, () => { req.destroy(); resolve('open-timeout'); });
    req.on('error', (e) => resolve(`open-${e.code ?? 'error'}`));
    req.end(body);
  });
}

async function initSession() {
  const id = ++rpcId;
  const init = await request({ path: conf.everythingPath, headers: headersFor({}), body: JSON.stringify({
    jsonrpc: '2.0', id, method: 'initialize',
    params: { protocolVersion: SESSION_VERSION, capabilities: {}, clientInfo: { name: 'mcpgate-soak', version: '1.0.0' } } }) });
  const sessionId = init.headers['mcp-session-id'];
  if (init.status !== 200 || !sessionId || !resultFor(init, id)?.result) throw Object.assign(new Error(`initialize ${init.status}`), { kind: `http-${init.status}` });
  const h = { 'mcp-session-id': sessionId, 'mcp-protocol-version': SESSION_VERSION };
  const note = await request({ path: conf.everythingPath, headers: headersFor(h),
    body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) });
  if (note.status !== 202) throw Object.assign(new Error(`initialized ${note.status}`), { kind: `http-${note.status}` });
  return sessionId;
}

let deleting = 0;  // DELETEs in flight: the drain waits for them before closing the agent
function deleteSession(sessionId) {
  deleting++;
  request({ method: 'DELETE', path: conf.everythingPath,
    headers: headersFor({ 'mcp-session-id': sessionId, 'mcp-protocol-version': SESSION_VERSION }) })
    .then((r) => { if (r.status !== 200) fail('session:delete', `DELETE ${r.status}`); })
    .catch((e) => fail('session:delete', e.kind))
    .finally(() => { deleting--; });
}

async function openGet(live) {
  let sessionId;
  try {
    sessionId = await initSession();
  } catch (e) {
    return `init-${e.kind ?? 'error'}`;
  }
  if (live) {
    const id = ++rpcId;
    try {
      const r = await request({ path: conf.everythingPath, headers: headersFor({ 'mcp-session-id': sessionId, 'mcp-protocol-version': SESSION_VERSION,
        'mcp-method': 'tools/call' }), body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'toggle-simulated-logging', arguments: {} } }) });
      if (r.status !== 200 || !resultFor(r, id)?.result) { deleteSession(sessionId); return `toggle-http-${r.status}`; }
    } catch (e) {
      deleteSession(sessionId);
      return `toggle-${e.kind}`;
    }
  }
  return new Promise((resolve) => {
    const s = { kind: 'get', closing: false, sessionId, live };
    const req = http.request({ host: '127.0.0.1', port: conf.port, method: 'GET', path: conf.everythingPath, agent: false,
      headers: { authorization: `Bearer ${nextToken()}`, accept: 'text/event-stream', 'mcp-session-id': sessionId,
                 'mcp-protocol-version': SESSION_VERSION } }, (res) => {
      if (res.statusCode !== 200) { res.resume(); deleteSession(sessionId); resolve(`open-http-${res.statusCode}`); return; }
      hold(s, req, res, sseParser());
      resolve(null);
    });
    req.setTimeout(REQUEST_TIMEOUT_MS, () => { req.destroy(); resolve('open-timeout'); });
    req.on('error', (e) => { deleteSession(sessionId); resolve(`open-${e.code ?? 'error'}`); });
    req.end();
  });
}

function countOf(kind) {
  let n = 0;
  for (const s of streams) if (s.kind === kind) n++;
  return n;
}

// Which kind the next stream is: keeps the kinds balanced, counting those being opened
// (listen first on a tie).
const pending = { listen: 0, get: 0 };
function nextKind() {
  if (KINDS.length === 1) return KINDS[0];
  return countOf('listen') + pending.listen <= countOf('get') + pending.get ? 'listen' : 'get';
}

let liveOpened = 0, getOpened = 0;
async function openOne() {
  const kind = nextKind();
  pending[kind]++;
  try {
    return await openKind(kind);
  } finally {
    pending[kind]--;
  }
}

async function openKind(kind) {
  let problem;
  if (kind === 'listen') {
    problem = await openListen();
  } else {
    getOpened++;
    const live = liveOpened < Math.round(getOpened * (conf.liveShare ?? 0));
    if (live) liveOpened++;
    problem = await openGet(live);
  }
  if (problem) { failedOpens++; fail(`stream:${kind}:${problem}`, problem); }
  return !problem;
}

let toppingUp = null;
function topUp() {
  if (toppingUp) return toppingUp;
  toppingUp = (async () => {
    let failuresInARow = 0;
    while (!closingAll && streams.size + opening < target && failuresInARow < 50) {
      const batch = Math.min(OPEN_CONCURRENCY, target - streams.size - opening);
      opening += batch;
      const ok = await Promise.all(Array.from({ length: batch }, () => openOne().finally(() => { opening--; })));
      failuresInARow = ok.every((x) => !x) ? failuresInARow + 1 : 0;
      if (failuresInARow) await new Promise((r) => setTimeout(r, 1000));
    }
  })().finally(() => { toppingUp = null; });
  return toppingUp;
}

function closeStream(s) {
  s.closing = true;
  s.req.destroy();
  if (s.sessionId) deleteSession(s.sessionId);
}

// Streams that have gone silent although their upstream writes at least every 15 s.
setInterval(() => {
  const now = Date.now();
  for (const s of streams) {
    const quiet = s.kind === 'listen' || s.live;
    if (quiet && now - s.lastByte > STALL_MS && !s.stalled) {
      s.stalled = true;
      fail(`stream:${s.kind}:stalled`, `no byte for ${Math.round((now - s.lastByte) / 1000)} s`);
    }
  }
}, 5000).unref();

// Churn: every second, close perMin/60 % of the streams (the oldest first) and open as many.
let churnPerMin = 0, churnCarry = 0;
setInterval(() => {
  if (!churnPerMin || closingAll || toppingUp) return;
  churnCarry += (streams.size * churnPerMin) / 100 / 60;
  const n = Math.floor(churnCarry);
  churnCarry -= n;
  let closed = 0;
  for (const s of streams) {
    if (closed >= n) break;
    closeStream(s);
    closed++;
  }
  if (closed) setTimeout(topUp, 200);
}, 1000).unref();

// ---- request load ------------------------------------------------------------------------
const MIX = [
  ['modern-call', 40], ['modern-list', 15], ['session-call', 30], ['session-list', 10], ['modern-slow', 5],
];
const MIX_TOTAL = MIX.reduce((n, [, w]) => n + w, 0);
function pickKind() {
  let r = Math.random() * MIX_TOTAL;
  for (const [k, w] of MIX) { if ((r -= w) < 0) return k; }
  return MIX[0][0];
}

function heldSession(sessionId) {
  for (const s of streams) if (s.sessionId === sessionId && !s.closing) return true;
  return false;
}

function anySession() {
  const held = [...streams].filter((s) => s.sessionId && !s.closing);
  return held.length ? held[Math.floor(Math.random() * held.length)].sessionId : null;
}

async function oneRequest(kind) {
  const id = ++rpcId;
  if (kind.startsWith('modern')) {
    const slow = kind === 'modern-slow';
    const method = kind === 'modern-list' ? 'tools/list' : 'tools/call';
    const params = method === 'tools/list' ? { _meta: MODERN_META }
      : slow ? { name: 'slow-progress', arguments: { durationMs: 2000, stepMs: 250 }, _meta: { ...MODERN_META, progressToken: id } }
        : { name: 'echo', arguments: { message: `soak ${id}` }, _meta: MODERN_META };
    const extra = { 'mcp-protocol-version': MODERN, 'mcp-method': method };
    if (method === 'tools/call') extra['mcp-name'] = params.name;
    const r = await request({ path: conf.modernPath, headers: headersFor(extra), body: JSON.stringify({ jsonrpc: '2.0', id, method, params }) });
    if (r.status !== 200) throw Object.assign(new Error(r.body.slice(0, 200)), { kind: `http-${r.status}` });
    const m = resultFor(r, id);
    const ok = method === 'tools/list' ? m?.result?.tools?.some((t) => t.name === 'echo')
      : slow ? /done/.test(m?.result?.content?.[0]?.text ?? '') : m?.result?.content?.[0]?.text === `Echo: soak ${id}`;
    if (!ok) throw Object.assign(new Error(r.body.slice(0, 200)), { kind: 'bad-result' });
    if (slow) {
      const progress = messagesOf(r).filter((x) => x.method === 'notifications/progress').length;
      counts.progressEvents += progress;
      if (progress === 0) throw Object.assign(new Error('no progress event'), { kind: 'no-progress' });
    }
    return;
  }
  const sessionId = anySession();
  if (!sessionId) { counts.skipped++; return 'skipped'; }
  const method = kind === 'session-list' ? 'tools/list' : 'tools/call';
  const params = method === 'tools/list' ? {} : { name: 'echo', arguments: { message: `soak ${id}` } };
  const r = await request({ path: conf.everythingPath, body: JSON.stringify({ jsonrpc: '2.0', id, method, params }),
    headers: headersFor({ 'mcp-session-id': sessionId, 'mcp-protocol-version': SESSION_VERSION }) });
  // A session that churn closed meanwhile is unknown upstream (server-everything answers 400
  // "No valid session ID"): not the gateway's fault, not counted.
  if ((r.status === 400 || r.status === 404) && !heldSession(sessionId)) { counts.skipped++; return 'skipped'; }
  if (r.status !== 200) throw Object.assign(new Error(r.body.slice(0, 200)), { kind: `http-${r.status}` });
  const m = resultFor(r, id);
  const ok = method === 'tools/list'
    ? m?.result?.tools?.some((t) => t.name === 'echo') && !m.result.tools.some((t) => t.name === 'get-sum')
    : m?.result?.content?.[0]?.text === `Echo: soak ${id}`;
  if (!ok) throw Object.assign(new Error(r.body.slice(0, 200)), { kind: method === 'tools/list' ? 'bad-filtered-list' : 'bad-result' });
}

let rps = 0, inflight = 0, loadCarry = 0, loadTimer = null;
function startLoad(rate) {
  rps = rate;
  clearInterval(loadTimer);
  loadTimer = null;
  if (!rps) return;
  let last = Date.now();
  loadTimer = setInterval(() => {
    const now = Date.now();
    loadCarry += ((now - last) / 1000) * rps;
    last = now;
    while (loadCarry >= 1) {
      loadCarry--;
      // Not an error of the gateway's: the generator itself is at its cap (answers slower than
      // MAX_INFLIGHT / rps, e.g. on an overloaded machine); counted apart.
      if (inflight >= MAX_INFLIGHT) { counts.notSentAtCap++; continue; }
      const kind = pickKind();
      const t0 = performance.now();
      inflight++;
      oneRequest(kind).then((skipped) => {
        if (skipped) return;
        counts.requests++;
        served[kind] = (served[kind] ?? 0) + 1;
        if (kind !== 'modern-slow') record(performance.now() - t0);
      }, (e) => {
        fail(`request:${kind}:${e.kind ?? 'error'}`, e.message);
      }).finally(() => { inflight--; });
    }
  }, 20);
}

function percentile(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function stats() {
  const sorted = latencies.sort((a, b) => a - b);
  latencies = [];
  return {
    type: 'stats', at: Date.now(), streams: streams.size, listen: countOf('listen'), get: countOf('get'), opening,
    target, failedOpens, inflight, rps, ...counts, served: { ...served }, errors: { ...errors }, samples,
    latency: { n: sorted.length, p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted[sorted.length - 1] ?? null },
    latencyAll: histogramPercentiles(),
  };
}

async function closeAll() {
  const t0 = Date.now();
  closingAll = true;
  startLoad(0);
  for (const s of [...streams]) closeStream(s);
  const deadline = Date.now() + 30_000;
  while ((streams.size || inflight || deleting) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  agent.destroy();
  return { type: 'closed', ms: Date.now() - t0, left: streams.size, inflight, deleting };
}

// Commands are handled as they come: a ramp in progress does not hold up "stats".
const rl = readline.createInterface({ input: process.stdin });
rl.on('line', async (line) => {
  let c;
  try { c = JSON.parse(line); } catch { return; }
  if (c.cmd === 'streams') {
    const t0 = Date.now();
    target = c.n;
    await topUp();
    send({ type: 'streams', open: streams.size, ms: Date.now() - t0, failedOpens });
  } else if (c.cmd === 'load') {
    startLoad(c.rps);
  } else if (c.cmd === 'churn') {
    churnPerMin = c.perMin;
  } else if (c.cmd === 'stats') {
    send(stats());
  } else if (c.cmd === 'close') {
    send(await closeAll());
  } else if (c.cmd === 'exit') {
    process.exit(0);
  }
});
rl.on('close', () => process.exit(0));
