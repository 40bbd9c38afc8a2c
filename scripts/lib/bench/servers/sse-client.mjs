// Opens idle GET event streams through the gateway, one socket each, and keeps them.
// Commands on stdin, one a line: "open N" (open until N are open; answers "open N failed F
// ms T"), "close" (destroy all and exit). Env: PORT, PATH_, TOKEN_FILE.
import fs from 'node:fs';
import http from 'node:http';
import readline from 'node:readline';

const token = fs.readFileSync(process.env.TOKEN_FILE, 'utf8').split('\n')[0];
const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
const streams = new Set();  // streams still open

function openOne() {
  return new Promise((resolve) => {
    const req = http.get({
      host: '127.0.0.1', port: Number(process.env.PORT), path: process.env.PATH_, agent,
      headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream', 'mcp-protocol-version': '2025-11-25' },
    }, (res) => {
      if (res.statusCode !== 200) { res.resume(); resolve(false); return; }
      res.once('data', () => { req.setTimeout(0); streams.add(res); resolve(true); });
      res.on('close', () => streams.delete(res));
      res.on('error', () => {});
    });
    req.on('error', () => resolve(false));
    req.setTimeout(30_000, () => { req.destroy(); resolve(false); });
  });
}

async function openUntil(n) {
  const t0 = Date.now();
  let failed = 0;
  while (streams.size < n && failed < 100) {
    const batch = Math.min(200, n - streams.size);
    const results = await Promise.all(Array.from({ length: batch }, openOne));
    failed += results.filter((ok) => !ok).length;
  }
  return { failed, ms: Date.now() - t0 };
}

const rl = readline.createInterface({ input: process.stdin });
for await (const line of rl) {
  const [cmd, arg] = line.trim().split(/\s+/);
  if (cmd === 'open') {
    const { failed, ms } = await openUntil(Number(arg));
    console.log(`open ${streams.size} failed ${failed} ms ${ms}`);
  } else if (cmd === 'close') {
    for (const s of streams) s.destroy();
    process.exit(0);
  }
}
