// An MCP-ish upstream that holds GET event streams open: each GET gets a 200
// text/event-stream head and one comment line, then nothing until the client leaves.
// POSTs get a fixed JSON-RPC result. 127.0.0.1 only. Env: PORT.
import http from 'node:http';

let open = 0;
const server = http.createServer((req, res) => {
  if (req.method === 'GET') {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.write(': stream open\n\n');
    open++;
    res.on('close', () => { open--; });
    return;
  }
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"jsonrpc":"2.0","id":1,"result":{}}');
  });
});
server.keepAliveTimeout = 300_000;
server.headersTimeout = 310_000;
server.requestTimeout = 0;
server.listen(Number(process.env.PORT), '127.0.0.1', () => console.log(`sse upstream on ${process.env.PORT}`));
setInterval(() => console.log(`open streams: ${open}`), 10_000).unref();
