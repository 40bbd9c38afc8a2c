// Start-up shared by the test servers in this folder: every one of them binds
// to 127.0.0.1 only.

/** Listen on 127.0.0.1:`port` (0 = ephemeral); resolves with the bound port. */
export function listenOnLoopback(server, port = 0) {
  return new Promise((resolve, reject) => {
    server.on('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server.address().port));
  });
}

/**
 * Run an in-process fixture upstream: `server` listens on an ephemeral
 * loopback port. Resolves with {port, origin, ...fields, close()}; close()
 * calls `onClose` first (e.g. to clear pending timers), then drops open
 * connections and closes the server.
 */
export async function serveFixture(server, { fields = {}, onClose } = {}) {
  const port = await listenOnLoopback(server);
  return {
    port,
    origin: `http://127.0.0.1:${port}`,
    ...fields,
    close: () =>
      new Promise((r) => {
        onClose?.();
        server.closeAllConnections?.();
        server.close(() => r());
      }),
  };
}

/**
 * For a server run as its own process: listen on 127.0.0.1:`port` and print
 * one line `LISTENING <port>` on stdout when ready.
 */
export async function listenAndAnnounce(server, port) {
  const bound = await listenOnLoopback(server, port);
  process.stdout.write(`LISTENING ${bound}\n`);
  return bound;
}

/** A request's body as UTF-8 text; rejects with {status: 413} past `maxBytes` (default 4 MiB). */
export function readRequestBody(req, maxBytes = 4 * 1024 * 1024) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > maxBytes) {
        reject(Object.assign(new Error('body too large'), { status: 413 }));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
