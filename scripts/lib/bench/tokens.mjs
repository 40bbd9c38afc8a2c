// The bench's signing key, its JWKS, and the RS256 access tokens the wrk scripts send.
//
// Files, in a cache directory kept between runs (signing is the slow part: one RSA-2048
// signature costs about 1 ms, so a million tokens take minutes even on both cores):
//   key.pem (private, 0600), pub.pem, jwks.json, meta.json
//   single.txt      one token (token mode "same")
//   rotate.txt      the tokens the rotating modes cycle through (1000 / 100000 of them)
//   distinct-T.txt  for wrk thread T (0, 1): tokens read once each, in order
// Every token has its own sub and jti; all carry the same iss, aud, scope and a far exp.
// The files are reused while meta.json matches and exp is more than 7 days away; missing
// distinct tokens are appended (numbering goes on), so a longer run extends a shorter one's.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

export const KID = 'bench-rs256';
const HEADER = b64url(JSON.stringify({ alg: 'RS256', typ: 'at+jwt', kid: KID }));
const DISTINCT_FILES = 2;  // one per wrk thread (-t2)

function b64url(text) {
  return Buffer.from(text).toString('base64url');
}

function tokenFor(key, claims, index) {
  const id = String(index).padStart(9, '0');
  const payload = b64url(JSON.stringify({
    iss: claims.iss, sub: `user-${id}`, aud: claims.aud, exp: claims.exp, iat: claims.iat,
    jti: `jti-${id}`, scope: claims.scope, client_id: 'bench-client',
  }));
  const signingInput = `${HEADER}.${payload}`;
  return `${signingInput}.${crypto.sign('sha256', Buffer.from(signingInput), key).toString('base64url')}`;
}

// Worker: signs tokens [first, first+count) and appends them, one a line, to `file`.
function workerMain() {
  const { pem, claims, first, count, file } = workerData;
  const key = crypto.createPrivateKey(pem);
  const fd = fs.openSync(file, 'a');
  const lines = [];
  for (let i = 0; i < count; i++) {
    lines.push(tokenFor(key, claims, first + i));
    if (lines.length === 2000 || i === count - 1) {
      fs.writeSync(fd, lines.join('\n') + '\n');
      lines.length = 0;
      parentPort.postMessage({ progress: 2000 });
    }
  }
  fs.closeSync(fd);
  parentPort.postMessage({ done: true });
}

function runWorkers(jobs, pem, claims, onProgress) {
  return Promise.all(jobs.map((job) => new Promise((resolve, reject) => {
    const worker = new Worker(new URL(import.meta.url), { workerData: { pem, claims, ...job } });
    worker.on('message', (m) => { if (m.progress) onProgress(m.progress); if (m.done) resolve(); });
    worker.on('error', reject);
    worker.on('exit', (code) => { if (code !== 0) reject(new Error(`token worker exited ${code}`)); });
  })));
}

function lineCount(file) {
  if (!fs.existsSync(file)) return 0;
  const data = fs.readFileSync(file);
  let n = 0;
  for (let i = data.indexOf(10); i !== -1; i = data.indexOf(10, i + 1)) n++;
  return n;
}

/**
 * Makes sure `dir` holds a key and at least `rotate` rotating and `distinct` distinct
 * tokens for `claims` ({iss, aud, scope}). Returns the paths, the counts and how long
 * signing took (seconds; 0 when everything came from the cache).
 */
export async function ensureTokens(dir, { iss, aud, scope, rotate, distinct, log = () => {} }) {
  fs.mkdirSync(dir, { recursive: true });
  const metaFile = path.join(dir, 'meta.json');
  const now = Math.floor(Date.now() / 1000);
  let meta = fs.existsSync(metaFile) ? JSON.parse(fs.readFileSync(metaFile, 'utf8')) : null;
  const fresh = meta && meta.iss === iss && meta.aud === aud && meta.scope === scope &&
    meta.exp > now + 7 * 86400 && fs.existsSync(path.join(dir, 'key.pem'));
  if (!fresh) {
    for (const f of fs.readdirSync(dir)) fs.rmSync(path.join(dir, f), { force: true });
    const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    fs.writeFileSync(path.join(dir, 'key.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'pub.pem'), publicKey.export({ type: 'spki', format: 'pem' }));
    const jwk = publicKey.export({ format: 'jwk' });
    fs.writeFileSync(path.join(dir, 'jwks.json'),
      JSON.stringify({ keys: [{ ...jwk, kid: KID, alg: 'RS256', use: 'sig' }] }));
    meta = { iss, aud, scope, iat: now - 60, exp: now + 365 * 86400, next: 0 };
  }
  const pem = fs.readFileSync(path.join(dir, 'key.pem'), 'utf8');
  const claims = { iss, aud, scope, iat: meta.iat, exp: meta.exp };
  const files = {
    key: path.join(dir, 'key.pem'), pub: path.join(dir, 'pub.pem'), jwks: path.join(dir, 'jwks.json'),
    single: path.join(dir, 'single.txt'), rotate: path.join(dir, 'rotate.txt'),
    distinct: Array.from({ length: DISTINCT_FILES }, (_, t) => path.join(dir, `distinct-${t}.txt`)),
  };
  // Jobs: [first index, count, file]. Indices are never reused, so no two tokens share sub/jti.
  const jobs = [];
  const take = (count, file) => { jobs.push({ first: meta.next, count, file }); meta.next += count; };
  if (lineCount(files.single) < 1) { fs.rmSync(files.single, { force: true }); take(1, files.single); }
  const haveRotate = lineCount(files.rotate);
  if (haveRotate < rotate) take(rotate - haveRotate, files.rotate);
  const perFile = Math.ceil(distinct / DISTINCT_FILES);
  for (const file of files.distinct) {
    const have = lineCount(file);
    if (have < perFile) take(perFile - have, file);
  }
  const total = jobs.reduce((n, j) => n + j.count, 0);
  let seconds = 0;
  if (total > 0) {
    // Split every job over the cores; a file gets its pieces in order (appended one after another).
    const cores = Math.max(1, os.cpus().length);
    log(`signing ${total} RS256 tokens on ${cores} cores`);
    const started = process.hrtime.bigint();
    let done = 0, lastShown = 0;
    const progress = (n) => {
      done += n;
      if (done - lastShown >= 100000) { lastShown = done; log(`  ${done}/${total} tokens`); }
    };
    for (const job of jobs) {
      // Pieces of one file are written to temporary parts, then concatenated in order.
      const pieces = Math.min(cores, Math.max(1, Math.ceil(job.count / 5000)));
      const size = Math.ceil(job.count / pieces);
      const parts = [];
      for (let p = 0; p < pieces; p++) {
        const first = job.first + p * size;
        const count = Math.min(size, job.count - p * size);
        if (count <= 0) break;
        const part = `${job.file}.part${p}`;
        fs.rmSync(part, { force: true });
        parts.push({ first, count, file: part });
      }
      await runWorkers(parts, pem, claims, progress);
      for (const part of parts) {
        fs.appendFileSync(job.file, fs.readFileSync(part.file));
        fs.rmSync(part.file);
      }
    }
    seconds = Number(process.hrtime.bigint() - started) / 1e9;
    meta.signedTotal = (meta.signedTotal ?? 0) + total;
    meta.signSeconds = (meta.signSeconds ?? 0) + seconds;
    fs.writeFileSync(metaFile, JSON.stringify(meta));
    log(`signed ${total} tokens in ${seconds.toFixed(1)} s (${Math.round(total / seconds)} tokens/s)`);
  }
  return { files, signed: total, seconds, signedTotal: meta.signedTotal ?? 0, signSeconds: meta.signSeconds ?? 0,
           rotate: lineCount(files.rotate),
           distinctPerThread: files.distinct.map(lineCount), exp: meta.exp };
}

if (!isMainThread) workerMain();
