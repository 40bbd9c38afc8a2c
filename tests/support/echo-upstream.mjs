// MOCK BY NECESSITY: a real MCP server does not report the raw HTTP request it
// received, so header-forwarding rules (Authorization/Cookie stripped,
// hop-by-hop removed, X-Forwarded-* added, Host rewritten, query preserved) can
// only be observed with an upstream that echoes the request back.
//
// Answers every request with 200 application/json:
//   {method, url, httpVersion, headers: {lower-case name: value}, rawHeaders: [[name, value]...], body}
// Binds to 127.0.0.1 only.
import http from 'node:http';
import { serveFixture } from './listen.mjs';

export function startEchoUpstream() {
  const requests = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size <= 4 * 1024 * 1024) chunks.push(c);
    });
    req.on('end', () => {
      const rawHeaders = [];
      for (let i = 0; i < req.rawHeaders.length; i += 2) rawHeaders.push([req.rawHeaders[i], req.rawHeaders[i + 1]]);
      const record = {
        method: req.method,
        url: req.url,
        httpVersion: req.httpVersion,
        headers: req.headers,
        rawHeaders,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      if (requests.length < 1000) requests.push(record);
      const body = JSON.stringify(record);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  return serveFixture(server, { fields: { requests } });
}
