// The hardening battery: what an attacker can send the real gateway binary, and what
// they (and the upstream) observe. Each group shares one gateway.
//
// Real parts: the gateway binary and its listeners, limits and timers; tokens signed with
// node's RSA (jose). Mocks by necessity, each documented where it is defined: the echo
// upstream (to see exactly which requests reached an upstream, and on which path), a JWKS
// server and an introspection endpoint that count how often the gateway calls them (the
// real oidc-provider reports neither).
//
// Already covered elsewhere and not repeated here (see tests/integration/errors.test.mjs
// and auth-jwt.test.mjs): one oversized header (431), Content-Length and chunked bodies
// over max_body_bytes (413), one stalled request (408), max_connections (503), a JSON-RPC
// 404 with its id, each forged-token kind once, 25 unknown kids.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import * as jose from 'jose';

import { generateSigningJwk, publicJwk } from '../support/oidc-provider.mjs';
import { parseBearerChallenge } from '../support/oauth-client.mjs';
import {
  GATEWAY_BIN,
  TIME_SCALE,
  buildGatewayConfig,
  freePort,
  getMetrics,
  makeTempDir,
  mcpPost,
  metricValue,
  parseJsonLines,
  parseRawResponse,
  rawHttp,
  sanitizerFindings,
  sleep,
  startEchoUpstream,
  startGateway,
  startProcess,
  toYaml,
  waitFor,
  waitForUrl,
} from '../support/harness.mjs';

const rpc = (id, method, params) => ({ jsonrpc: '2.0', id, method, ...(params ? { params } : {}) });

/**
 * Write `payload` on a fresh connection and read until the server closes it (or
 * `timeoutMs`). Returns the first response parsed, how many responses came, and whether
 * the server closed the connection.
 */
function rawExchange(port, payload, { timeoutMs = 3000 } = {}) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const chunks = [];
    let settled = false;
    const finish = (closedByServer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      const buf = Buffer.concat(chunks);
      // A status line follows the previous body directly, without a line break.
      const responses = [...buf.toString('latin1').matchAll(/HTTP\/1\.[01] \d{3} /g)].length;
      resolve({ ...parseRawResponse(buf), responses, closedByServer });
    };
    const timer = setTimeout(() => finish(false), timeoutMs * TIME_SCALE);
    socket.on('connect', () => socket.write(payload));
    socket.on('data', (c) => chunks.push(c));
    socket.on('end', () => finish(true));
    socket.on('close', () => finish(true));
    socket.on('error', (e) => {
      if (chunks.length) finish(true);
      else if (!settled) {
        settled = true;
        clearTimeout(timer);
        reject(e);
      }
    });
  });
}

/** The gateway's own error body: JSON-RPC shaped (id null: the body was not read) or plain. */
function errorReason(res) {
  const body = JSON.parse(res.body ?? res.text);
  return body.jsonrpc ? body.error?.data?.reason : body.error;
}

function assertRpcError(res, status, code, id, reason) {
  assert.equal(res.status, status, `status; body: ${res.text ?? res.body}`);
  const body = JSON.parse(res.text ?? res.body);
  assert.equal(body.jsonrpc, '2.0', JSON.stringify(body));
  assert.deepEqual(body.id, id, `id in ${JSON.stringify(body)}`);
  assert.equal(body.error?.code, code, `code in ${JSON.stringify(body)}`);
  if (reason) assert.equal(body.error.data?.reason, reason, JSON.stringify(body));
}

/** Open file descriptors of a process. */
const fdCount = (pid) => fs.readdirSync(`/proc/${pid}/fd`).length;

// ---------------------------------------------------------------------------
// One gateway in front of the echo upstream: framing, headers, sizes, ids.
// ---------------------------------------------------------------------------
describe('hostile bytes on one gateway (echo upstream)', () => {
  const MAX_HEADER = 8192;
  let echo;
  let gw;
  const seenSince = (mark) => echo.requests.slice(mark);
  before(async () => {
    echo = await startEchoUpstream();
    gw = await startGateway({
      server: { limits: { max_body_bytes: 1048576, max_header_bytes: MAX_HEADER } },
      routes: [
        { name: 'echo', path: '/echo', upstream: `${echo.origin}/base` },
        { name: 'strict', path: '/strict', upstream: `${echo.origin}/strict`, allowed_origins: ['https://ok.example'] },
        { name: 'limited', path: '/limited', upstream: `${echo.origin}/limited`, rate_limits: [{ per: 'route', rate: '1/h', burst: 1 }] },
      ],
    });
  });
  after(async () => {
    try {
      await gw?.stopCleanly();
    } finally {
      await echo?.close();
    }
  });

  describe('request smuggling over raw TCP', () => {
    const body = JSON.stringify(rpc(1, 'ping'));
    const len = Buffer.byteLength(body);
    const hex = len.toString(16);
    const head = 'Host: 127.0.0.1\r\nContent-Type: application/json\r\n';
    // Appended to every attack: if the gateway ever read it as a request of its own, the
    // echo upstream would see its path.
    const smuggled = (name) => `GET /echo/SMUGGLED-${name} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`;
    const attacks = [
      ['Content-Length then Transfer-Encoding', 400, `Content-Length: ${len}\r\nTransfer-Encoding: chunked\r\n\r\n${body}`],
      ['Transfer-Encoding then Content-Length', 400, `Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n${hex}\r\n${body}\r\n0\r\n\r\n`],
      ['two equal Content-Length fields', 400, `Content-Length: ${len}\r\nContent-Length: ${len}\r\n\r\n${body}`],
      ['two conflicting Content-Length fields', 400, `Content-Length: ${len}\r\nContent-Length: 0\r\n\r\n${body}`],
      ['Content-Length as a list', 400, `Content-Length: ${len}, ${len}\r\n\r\n${body}`],
      ['Content-Length with a sign', 400, `Content-Length: +${len}\r\n\r\n${body}`],
      ['Content-Length with 19 digits', 400, `Content-Length: 0000000000000000041\r\n\r\n${body}`],
      ['space before the colon (Content-Length)', 400, `Content-Length : ${len}\r\n\r\n${body}`],
      ['space before the colon (Transfer-Encoding)', 400, `Transfer-Encoding : chunked\r\nContent-Length: ${len}\r\n\r\n${body}`],
      ['obs-fold continuing a field', 400, `X-A: 1\r\n Transfer-Encoding: chunked\r\nContent-Length: ${len}\r\n\r\n${body}`],
      ['obs-fold hiding the coding', 400, `Transfer-Encoding:\r\n chunked\r\nContent-Length: ${len}\r\n\r\n${body}`],
      ['Transfer-Encoding: identity', 501, `Transfer-Encoding: identity\r\n\r\n${body}`],
      ['Transfer-Encoding: gzip, chunked', 501, `Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n`],
      ['Transfer-Encoding: chunked, chunked', 501, `Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n`],
      ['two Transfer-Encoding fields', 501, `Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`],
      ['Transfer-Encoding: xchunked', 501, `Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n`],
      ['vertical tab before the coding', 400, `Transfer-Encoding: \x0bchunked\r\n\r\n0\r\n\r\n`],
      ['bare CR inside a value', 400, `X-A: a\rTransfer-Encoding: chunked\r\nContent-Length: ${len}\r\n\r\n${body}`],
      ['CR CR LF ending a field', 400, `Content-Length: ${len}\r\r\n\r\n${body}`],
      ['CR inside a field name', 400, `X\rA: b\r\nContent-Length: ${len}\r\n\r\n${body}`],
      ['NUL inside a value', 400, `X-A: a\0b\r\nContent-Length: ${len}\r\n\r\n${body}`],
      ['chunk size past 64 bits', 400, `Transfer-Encoding: chunked\r\n\r\nfffffffffffffff1\r\n${body}\r\n0\r\n\r\n`],
      ['negative chunk size', 400, `Transfer-Encoding: chunked\r\n\r\n-1\r\n${body}\r\n0\r\n\r\n`],
      ['0x-prefixed chunk size', 400, `Transfer-Encoding: chunked\r\n\r\n0x${hex}\r\n${body}\r\n0\r\n\r\n`],
      ['chunk size with trailing space', 400, `Transfer-Encoding: chunked\r\n\r\n${hex} \r\n${body}\r\n0\r\n\r\n`],
      ['chunk data longer than its size', 400, `Transfer-Encoding: chunked\r\n\r\n${hex}\r\n${body}XX\r\n0\r\n\r\n`],
      ['chunk extension over 1 KiB', 400, `Transfer-Encoding: chunked\r\n\r\n${hex};${'e'.repeat(1100)}\r\n${body}\r\n0\r\n\r\n`],
      ['unsupported Expect', 417, `Expect: 101-switch\r\nContent-Length: ${len}\r\n\r\n${body}`],
    ];
    for (const [name, status, rest] of attacks) {
      it(`${name}: ${status}, the connection is closed, nothing reaches the upstream`, async () => {
        const mark = echo.requests.length;
        const tag = name.replace(/\W+/g, '-');
        const res = await rawExchange(gw.port, `POST /echo HTTP/1.1\r\n${head}${rest}${smuggled(tag)}`);
        assert.equal(res.status, status, res.raw.slice(0, 300));
        assert.equal(res.headers.connection, 'close');
        assert.ok(res.closedByServer, 'the gateway closes a connection whose framing it cannot trust');
        assert.equal(res.responses, 1, `exactly one response: ${res.raw.slice(0, 600)}`);
        assert.ok(['bad_request', 'body_too_large'].includes(errorReason(res)), res.body);
        assert.deepEqual(seenSince(mark), [], 'nothing reached the upstream');
      });
    }

    it('control: honest pipelining reaches the upstream as two requests (the probe can see a second request)', async () => {
      const mark = echo.requests.length;
      const res = await rawExchange(
        gw.port,
        `POST /echo HTTP/1.1\r\n${head}Content-Length: ${len}\r\n\r\n${body}GET /echo/second HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`,
      );
      assert.equal(res.responses, 2);
      assert.deepEqual(seenSince(mark).map((r) => `${r.method} ${r.url}`), ['POST /base', 'GET /base/second']);
    });

    it('HTTP/1.0 with chunked framing is answered once, then the connection is closed (RFC 9112 §6.1)', async () => {
      const mark = echo.requests.length;
      const res = await rawExchange(
        gw.port,
        `POST /echo HTTP/1.0\r\n${head}Connection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n${hex}\r\n${body}\r\n0\r\n\r\n${smuggled('http10')}`,
      );
      assert.equal(res.status, 200, res.raw.slice(0, 300));
      assert.ok(res.closedByServer);
      assert.equal(res.responses, 1);
      assert.deepEqual(seenSince(mark).map((r) => `${r.method} ${r.url} ${r.body}`), [`POST /base ${body}`]);
    });

    it('bare LF line ends are read as line ends: one request, and a field hidden behind a bare LF is still a field (identity headers stripped)', async () => {
      const mark = echo.requests.length;
      const res = await rawExchange(
        gw.port,
        `POST /echo HTTP/1.1\nHost: 127.0.0.1\nContent-Type: application/json\nMcp-Param-Region: eu\nX-MCP-Subject: admin\nX-Forwarded-For: 10.0.0.1\nContent-Length: ${len}\nConnection: close\n\n${body}`,
      );
      assert.equal(res.status, 200, res.raw.slice(0, 300));
      const seen = seenSince(mark);
      assert.equal(seen.length, 1);
      assert.equal(seen[0].body, body);
      assert.equal(seen[0].headers['mcp-param-region'], 'eu');
      assert.equal(seen[0].headers['x-mcp-subject'], undefined, 'a client cannot set identity headers');
      assert.equal(seen[0].headers['x-forwarded-for'], '10.0.0.1, 127.0.0.1');
    });

    it('a tab or other control byte in the request target is refused with 400 (it would hide dot segments)', async () => {
      for (const target of ['/echo/..\t', '/echo/a\tb', '/echo/%2e%2e\t/x', '/echo/a\x7fb']) {
        const mark = echo.requests.length;
        const res = await rawExchange(gw.port, `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
        assert.equal(res.status, 400, `${JSON.stringify(target)}: ${res.raw.slice(0, 300)}`);
        assert.equal(errorReason(res), 'bad_request');
        assert.deepEqual(seenSince(mark), []);
      }
    });

    it('the gateway still serves normally, and counted only the requests it forwarded', async () => {
      const { samples } = await getMetrics(gw);
      const before200 = metricValue(samples, 'mcpgate_requests_total', { route: 'echo', status: '200' }) ?? 0;
      const res = await mcpPost(`${gw.url}/echo`, rpc(2, 'ping'));
      assert.equal(res.status, 200, res.text);
      const after = (await getMetrics(gw)).samples;
      assert.equal(metricValue(after, 'mcpgate_requests_total', { route: 'echo', status: '200' }), before200 + 1);
      assert.equal(echo.requests.filter((r) => r.url.includes('SMUGGLED')).length, 0);
      assert.ok(gw.proc.alive());
    });
  });

  describe('Mcp-Method, Mcp-Name and Mcp-Param-* headers', () => {
    const call = (name, id = 9) => JSON.stringify(rpc(id, 'tools/call', { name, arguments: { region: 'eu' } }));
    const b64 = (s) => `=?base64?${Buffer.from(s, 'utf8').toString('base64')}?=`;
    /** POST `body` (UTF-8) with extra header lines written byte for byte (Latin-1). */
    const rawPostWithBody = async (headerLines, body) => {
      const head = Buffer.from(
        `POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n${headerLines}` +
          `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n`,
        'latin1',
      );
      return rawExchange(gw.port, Buffer.concat([head, Buffer.from(body, 'utf8')]));
    };

    it('CR/LF injection through Mcp-Param-*, Mcp-Name or Mcp-Method is refused before anything is forwarded', async () => {
      for (const line of [
        'Mcp-Method: tools/call\r\nMcp-Name: echo\r\nMcp-Param-Region: eu\rX-Injected: 1\r\n',
        'Mcp-Method: tools/call\r\nMcp-Name: echo\rX-Injected: 1\r\n',
        'Mcp-Method: tools/call\rX-Injected: 1\r\nMcp-Name: echo\r\n',
        'Mcp-Method: tools/call\r\nMcp-Name: ec\0ho\r\n',
        'Mcp-Method: tools/call\r\nMcp-Name: echo\r\nMcp-Param-Region: e\x7fu\r\n',
      ]) {
        const mark = echo.requests.length;
        const res = await rawPostWithBody(line, call('echo'));
        assert.equal(res.status, 400, `${JSON.stringify(line)}: ${res.raw.slice(0, 300)}`);
        assert.equal(errorReason(res), 'bad_request');
        assert.deepEqual(seenSince(mark), []);
      }
    });

    it('a header that disagrees with the body is refused with -32020 and the request id', async () => {
      const cases = [
        ['method differs', call('echo', 'm1'), { 'mcp-method': 'tools/list', 'mcp-name': 'echo' }, 'm1'],
        ['method case differs', call('echo', 'm2'), { 'mcp-method': 'Tools/Call', 'mcp-name': 'echo' }, 'm2'],
        ['name case differs', call('echo', 3), { 'mcp-method': 'tools/call', 'mcp-name': 'ECHO' }, 3],
        ['name with trailing space', call('echo ', 4), { 'mcp-method': 'tools/call', 'mcp-name': 'echo' }, 4],
        ['Base64 of another name', call('echo', 5), { 'mcp-method': 'tools/call', 'mcp-name': b64('get-sum') }, 5],
        ['invalid Base64', call('echo', 6), { 'mcp-method': 'tools/call', 'mcp-name': '=?base64?!!!!?=' }, 6],
        ['Base64 padding only', call('echo', 7), { 'mcp-method': 'tools/call', 'mcp-name': '=?base64?====?=' }, 7],
        ['Base64 with a NUL after the name', call('echo', 8), { 'mcp-method': 'tools/call', 'mcp-name': b64('echo\0admin') }, 8],
        ['a name for a method that has none', JSON.stringify(rpc(10, 'tools/list')), { 'mcp-method': 'tools/list', 'mcp-name': 'echo' }, 10],
        ['2026-07-28 without Mcp-Method', call('echo', 11), { 'mcp-protocol-version': '2026-07-28' }, 11],
        ['2026-07-28 without Mcp-Name', call('echo', 12), { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call' }, 12],
      ];
      const mark = echo.requests.length;
      for (const [label, body, headers, id] of cases) {
        const res = await mcpPost(`${gw.url}/echo`, body, { headers });
        assert.equal(res.status, 400, `${label}: ${res.text}`);
        assertRpcError(res, 400, -32020, id, 'header_mismatch');
      }
      assert.deepEqual(seenSince(mark), [], 'mismatched requests never reach the upstream');
    });

    it('matching headers pass unchanged: plain, Base64-sentinel (non-ASCII name) and raw UTF-8', async () => {
      const ok = [
        [call('echo'), { 'mcp-method': 'tools/call', 'mcp-name': 'echo' }, 'echo'],
        [call('écho-😀'), { 'mcp-method': 'tools/call', 'mcp-name': b64('écho-😀') }, b64('écho-😀')],
      ];
      for (const [body, headers, sent] of ok) {
        const res = await mcpPost(`${gw.url}/echo`, body, { headers });
        assert.equal(res.status, 200, res.text);
        assert.equal(res.json.headers['mcp-name'], sent);
        assert.equal(res.json.body, body);
      }
      // Raw UTF-8 bytes equal to the body's name match; a Latin-1 byte for the same letter does not.
      const utf8 = await rawPostWithBody(`Mcp-Method: tools/call\r\nMcp-Name: ${Buffer.from('é', 'utf8').toString('latin1')}\r\n`, call('é'));
      assert.equal(utf8.status, 200, utf8.raw.slice(0, 300));
      const latin1 = await rawPostWithBody('Mcp-Method: tools/call\r\nMcp-Name: \xe9\r\n', call('é', 13));
      assertRpcError(latin1, 400, -32020, 13, 'header_mismatch');
    });

    it('non-ASCII (obs-text) in Mcp-Param-* is passed to the upstream byte for byte', async () => {
      const mark = echo.requests.length;
      const res = await rawPostWithBody('Mcp-Method: tools/call\r\nMcp-Name: echo\r\nMcp-Param-Region: \xe9\xff-eu\r\n', call('echo'));
      assert.equal(res.status, 200, res.raw.slice(0, 300));
      const [seen] = seenSince(mark);
      const param = seen.rawHeaders.filter(([k]) => k.toLowerCase() === 'mcp-param-region');
      // node decodes header bytes as Latin-1: the same two bytes arrived.
      assert.deepEqual(param.map(([, v]) => Buffer.from(v, 'latin1').toString('hex')), ['e9ff2d6575']);
    });

    it('a second Mcp-Method, Mcp-Name or MCP-Protocol-Version field is refused (only one could have been checked)', async () => {
      const mark = echo.requests.length;
      for (const lines of [
        'Mcp-Method: tools/call\r\nMcp-Name: echo\r\nMcp-Name: delete-everything\r\n',
        'Mcp-Method: tools/call\r\nMcp-Method: tools/list\r\nMcp-Name: echo\r\n',
        'MCP-Protocol-Version: 2025-11-25\r\nMCP-Protocol-Version: 2026-07-28\r\n',
      ]) {
        const res = await rawPostWithBody(lines, call('echo', 14));
        assert.equal(res.status, 400, `${JSON.stringify(lines)}: ${res.raw.slice(0, 300)}`);
        assertRpcError(res, 400, -32020, 14, 'header_mismatch');
      }
      assert.deepEqual(seenSince(mark), []);
    });

    it('on a batch, Mcp-Method and Mcp-Name must hold for every message', async () => {
      const mark = echo.requests.length;
      const batch = JSON.stringify([rpc(1, 'tools/list'), rpc(2, 'tools/call', { name: 'get-sum', arguments: {} })]);
      for (const headers of [{ 'mcp-method': 'tools/list' }, { 'mcp-method': 'tools/call', 'mcp-name': 'get-sum' }]) {
        const res = await mcpPost(`${gw.url}/echo`, batch, { headers });
        assert.equal(res.status, 400, `${JSON.stringify(headers)}: ${res.text}`);
        assert.deepEqual(res.json.map((m) => [m.id, m.error?.code]), [[1, -32020], [2, -32020]], res.text);
      }
      assert.deepEqual(seenSince(mark), []);
      const same = JSON.stringify([rpc(1, 'tools/list'), rpc(2, 'tools/list')]);
      const ok = await mcpPost(`${gw.url}/echo`, same, { headers: { 'mcp-method': 'tools/list' } });
      assert.equal(ok.status, 200, ok.text);
      const plain = await mcpPost(`${gw.url}/echo`, batch);
      assert.equal(plain.status, 200, 'a batch without the headers passes as before');
    });
  });

  describe('oversized and deeply nested input', () => {
    it('a Content-Length far over the limit is refused at once (the body is never awaited)', async () => {
      const mark = echo.requests.length;
      const res = await rawExchange(
        gw.port,
        `POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000000000000000\r\n\r\n{"jsonrpc"`,
      );
      assert.equal(res.status, 413, res.raw.slice(0, 300));
      assert.equal(errorReason(res), 'body_too_large');
      assert.ok(res.closedByServer);
      assert.deepEqual(seenSince(mark), []);
    });

    it('100 000 nested arrays or objects: 400 -32700 (id null), nothing forwarded, the gateway lives', async () => {
      const mark = echo.requests.length;
      const depth = 100000;
      for (const body of [
        '['.repeat(depth) + ']'.repeat(depth),
        '{"a":'.repeat(depth) + '1' + '}'.repeat(depth),
        `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"echo","arguments":{"a":${'['.repeat(depth)}${']'.repeat(depth)}}}}`,
        '['.repeat(60000), // never closed
      ]) {
        const res = await mcpPost(`${gw.url}/echo`, body);
        assertRpcError(res, 400, -32700, null, 'parse_error');
      }
      assert.deepEqual(seenSince(mark), []);
      // Nesting a JSON-RPC server can still take is forwarded as sent.
      const shallow = JSON.stringify(rpc(6, 'tools/call', { name: 'echo', arguments: { a: JSON.parse('['.repeat(500) + ']'.repeat(500)) } }));
      const ok = await mcpPost(`${gw.url}/echo`, shallow);
      assert.equal(ok.status, 200, ok.text.slice(0, 300));
      assert.equal(ok.json.body, shallow);
    });

    it('an overlong request line, too many fields, or many small fields over the limit: 431', async () => {
      const mark = echo.requests.length;
      const tooMany = Array.from({ length: 101 }, (_, i) => `X-H${i}: v`).join('\r\n');
      const manySmall = Array.from({ length: 90 }, (_, i) => `X-H${i}: ${'v'.repeat(100)}`).join('\r\n');
      for (const payload of [
        `GET /echo/${'a'.repeat(MAX_HEADER + 100)} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`,
        `GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n${tooMany}\r\n\r\n`,
        `GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n${manySmall}\r\n\r\n`,
      ]) {
        const res = await rawExchange(gw.port, payload);
        assert.equal(res.status, 431, res.raw.slice(0, 200));
        assert.equal(errorReason(res), 'headers_too_large');
        assert.ok(res.closedByServer);
      }
      // A request line that never ends is cut at the limit too, not buffered without bound.
      const endless = await rawExchange(gw.port, `GET /echo/${'a'.repeat(4 * MAX_HEADER)}`);
      assert.equal(endless.status, 431);
      assert.deepEqual(seenSince(mark), []);
      const ok = await rawHttp(gw.port, 'GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
      assert.equal(ok.status, 200);
    });
  });

  describe('JSON-RPC ids echoed in errors the gateway writes', () => {
    // Mcp-Method differing from the body: the gateway answers -32020 itself.
    const mismatch = (idText) =>
      mcpPost(`${gw.url}/echo`, `{"jsonrpc":"2.0","id":${idText},"method":"tools/list"}`, { headers: { 'mcp-method': 'tools/call' } });

    it('integers (negative, zero, beyond 2^53, the int64 extremes) come back as the same digits', async () => {
      for (const idText of ['1', '-1', '0', '9007199254740993', '9223372036854775807', '-9223372036854775808']) {
        const res = await mismatch(idText);
        assert.equal(res.status, 400, res.text);
        assert.ok(res.text.includes(`"id":${idText},`), `id ${idText} in ${res.text}`);
        assert.equal(JSON.parse(res.text).error.code, -32020);
      }
    });

    it('strings (empty, Unicode, escapes, quotes and backslashes) come back as the same string', async () => {
      for (const idText of ['""', '"abc"', '"é😀"', '"\\u00e9\\ud83d\\ude00"', '"a\\"b\\\\c\\n\\t/"', `"${'x'.repeat(2000)}"`]) {
        const res = await mismatch(idText);
        assertRpcError(res, 400, -32020, JSON.parse(idText), 'header_mismatch');
      }
    });

    it('an escaped NUL anywhere in the body is refused as -32700 (names are read as C strings: "a\\u0000b" must not pass as "a")', async () => {
      const mark = echo.requests.length;
      for (const body of [
        '{"jsonrpc":"2.0","id":"a\\u0000b","method":"tools/list"}',
        '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo\\u0000admin","arguments":{}}}',
      ]) {
        const res = await mcpPost(`${gw.url}/echo`, body, { headers: { 'mcp-method': 'tools/call', 'mcp-name': 'echo' } });
        assertRpcError(res, 400, -32700, null, 'parse_error');
      }
      assert.deepEqual(seenSince(mark), []);
    });

    it('a notification (no id) gets id null', async () => {
      const notification = await mcpPost(`${gw.url}/echo`, { jsonrpc: '2.0', method: 'tools/list' }, { headers: { 'mcp-method': 'tools/call' } });
      assertRpcError(notification, 400, -32020, null, 'header_mismatch');
    });

    it('an id that is no MCP id (null, fractional, exponent, past 64 bits, object, array, boolean): -32600 with id null, never forwarded', async () => {
      // MCP ids are strings or integers; JSON-RPC 2.0 §5: an id that cannot be read is answered with null.
      const mark = echo.requests.length;
      for (const idText of ['null', '1.5', '1e3', '1.0', '18446744073709551616', '9223372036854775808', '{}', '[1]', 'true']) {
        for (const headers of [{}, { 'mcp-method': 'tools/call' }, { 'mcp-protocol-version': '2026-07-28' }]) {
          const res = await mcpPost(`${gw.url}/echo`, `{"jsonrpc":"2.0","id":${idText},"method":"tools/call","params":{"name":"echo"}}`, { headers });
          assertRpcError(res, 400, -32600, null, 'invalid_request');
        }
      }
      assert.deepEqual(seenSince(mark), [], 'in particular a 2026-07-28 call without Mcp-Method does not pass as a notification');
    });

    it('other gateway errors echo the id the same way: origin refused (403), rate limited (429)', async () => {
      for (const [id, idText] of [[77, '77'], ['o-é', '"o-é"'], [-5, '-5']]) {
        const res = await mcpPost(`${gw.url}/strict`, `{"jsonrpc":"2.0","id":${idText},"method":"ping"}`, {
          headers: { origin: 'https://evil.example' },
        });
        assertRpcError(res, 403, -32000, id, 'origin_not_allowed');
      }
      const first = await mcpPost(`${gw.url}/limited`, rpc(0, 'ping'));
      assert.equal(first.status, 200, 'the burst of 1 lets the first request through');
      const mark = echo.requests.length;
      for (const [id, idText] of [[1, '1'], ['', '""'], ['rl-😀', '"rl-😀"'], [9223372036854775807n, '9223372036854775807']]) {
        const res = await mcpPost(`${gw.url}/limited`, `{"jsonrpc":"2.0","id":${idText},"method":"ping"}`);
        assert.equal(res.status, 429, res.text);
        assert.ok(Number(res.headers.get('retry-after')) >= 1);
        if (typeof id === 'bigint') assert.ok(res.text.includes(`"id":${idText},`), res.text);
        else assertRpcError(res, 429, -32000, id, 'rate_limited');
      }
      assert.deepEqual(seenSince(mark), [], 'limited requests never reach the upstream');
      const { samples } = await getMetrics(gw);
      assert.ok(metricValue(samples, 'mcpgate_rate_limit_total', { route: 'limited', outcome: 'limited' }) >= 4);
    });

    it(
      'an error answering a whole batch is a batch: one error per request, each with its id',
      async () => {
        const res = await mcpPost(`${gw.url}/strict`, JSON.stringify([rpc('b1', 'ping'), rpc(2, 'ping'), { jsonrpc: '2.0', method: 'notifications/x' }]), {
          headers: { origin: 'https://evil.example' },
        });
        assert.equal(res.status, 403);
        assert.ok(Array.isArray(res.json), res.text);
        assert.deepEqual(res.json.map((m) => m.id), ['b1', 2]);
      },
    );
  });
});

// ---------------------------------------------------------------------------
// Protected routes: path tricks, floods of forged and invalid tokens.
// ---------------------------------------------------------------------------

// MOCK BY NECESSITY: a JWKS endpoint that counts its fetches (the real provider does not
// say how often it is asked), serving the public half of keys this file signs with.
async function startJwksServer(keys) {
  const state = { fetches: 0 };
  const server = http.createServer((req, res) => {
    state.fetches++;
    const body = JSON.stringify({ keys: keys.map(publicJwk) });
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=300' });
    res.end(body);
  });
  const port = await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)));
  state.origin = `http://127.0.0.1:${port}`;
  state.close = () => new Promise((r) => server.close(() => r()));
  return state;
}

// MOCK BY NECESSITY: an RFC 7662 endpoint that counts its calls; every token but `good`
// is inactive.
async function startIntrospection({ issuer, audience, good }) {
  const state = { calls: 0, byToken: new Map() };
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      state.calls++;
      const token = new URLSearchParams(body).get('token') ?? '';
      state.byToken.set(token, (state.byToken.get(token) ?? 0) + 1);
      const now = Math.floor(Date.now() / 1000);
      const answer = token === good ? { active: true, sub: 'alice', iss: issuer, aud: audience, exp: now + 300, scope: 'read' } : { active: false };
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(answer));
    });
  });
  const port = await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)));
  state.url = `http://127.0.0.1:${port}/introspect`;
  state.close = () => new Promise((r) => server.close(() => r()));
  return state;
}

/** Run `fn(i)` for i < count, at most `width` at a time. */
async function pool(count, width, fn) {
  const results = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, count) }, async () => {
      for (let i = next++; i < count; i = next++) results[i] = await fn(i);
    }),
  );
  return results;
}

/**
 * What a lenient upstream may make of a path: unreserved characters and '/' or '\'
 * percent-decoded once, backslashes as slashes, ';' parameters dropped, slashes merged,
 * dot segments resolved.
 */
function lenientPath(target) {
  let p = target.split('?')[0].split('#')[0];
  p = p.replace(/%([0-9a-fA-F]{2})/g, (m, h) => {
    const c = String.fromCharCode(parseInt(h, 16));
    return /[A-Za-z0-9\-._~/\\]/.test(c) ? c : m;
  });
  p = p.replace(/\\/g, '/');
  const out = [];
  for (const raw of p.split('/')) {
    const seg = raw.split(';')[0];
    if (seg === '' || seg === '.') continue;
    if (seg === '..') out.pop();
    else out.push(seg);
  }
  return `/${out.join('/')}`;
}
const under = (p, prefix) => p === prefix || p.startsWith(`${prefix}/`);

describe('protected routes under attack (JWT and introspection)', () => {
  const ISSUER_PATH = '/issuer';
  let echo;
  let jwks;
  let introspection;
  let gw;
  let port;
  let signingKey;
  let sign;
  const lookupIssuer = 'http://127.0.0.1:1/lookup';

  before(async () => {
    signingKey = generateSigningJwk();
    [echo, jwks, port] = await Promise.all([startEchoUpstream(), startJwksServer([signingKey]), freePort()]);
    introspection = await startIntrospection({ issuer: lookupIssuer, audience: `http://127.0.0.1:${port}/inspect`, good: 'good-opaque-token' });
    const issuer = `${jwks.origin}${ISSUER_PATH}`;
    const key = await jose.importJWK(signingKey, 'RS256');
    sign = ({ kid = signingKey.kid, aud = `http://127.0.0.1:${port}/secure`, claims = {}, signWith = key } = {}) => {
      const now = Math.floor(Date.now() / 1000);
      return new jose.SignJWT({ sub: 'alice', scope: 'read', iss: issuer, aud, iat: now, exp: now + 300, jti: crypto.randomUUID(), ...claims })
        .setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid })
        .sign(signWith);
    };
    // Upstream paths mirror the route paths, as when one server behind the gateway has a
    // public and a protected part: a path trick that moves a request from one route to
    // another lands on the other route's path upstream.
    gw = await startGateway({
      port,
      server: { limits: { max_header_bytes: 32768 } },
      routes: [
        { name: 'root', path: '/', upstream: `${echo.origin}/` },
        { name: 'open', path: '/open', upstream: `${echo.origin}/open` },
        { name: 'admin', path: '/open/admin', upstream: `${echo.origin}/open/admin`, auth: { type: 'jwt', server: 'idp' } },
        { name: 'secure', path: '/secure', upstream: `${echo.origin}/secure`, auth: { type: 'jwt', server: 'idp' } },
        { name: 'inspect', path: '/inspect', upstream: `${echo.origin}/inspect`, auth: { type: 'introspection', server: 'lookup', cache_ttl_s: 30 } },
      ],
      extraYaml: toYaml({
        authorization_servers: {
          idp: { issuer, discovery: 'off', metadata: { issuer, jwks_uri: `${jwks.origin}/jwks` } },
          lookup: {
            issuer: lookupIssuer,
            discovery: 'off',
            metadata: { issuer: lookupIssuer, introspection_endpoint: introspection.url },
            client: { id: 'mcpgate', secret: 'introspection-secret' },
          },
        },
      }),
    });
  });
  after(async () => {
    try {
      await gw?.stopCleanly();
    } finally {
      await Promise.all([echo?.close(), jwks?.close(), introspection?.close()]);
    }
  });

  it('controls: a valid token reaches the protected routes; without one they challenge', async () => {
    for (const route of ['secure', 'open/admin']) {
      const token = await sign({ aud: `${gw.url}/${route}` });
      const ok = await mcpPost(`${gw.url}/${route}`, rpc(1, 'ping'), { headers: { authorization: `Bearer ${token}` } });
      assert.equal(ok.status, 200, ok.text);
      assert.equal(ok.json.url, `/${route}`);
      const denied = await mcpPost(`${gw.url}/${route}`, rpc(2, 'ping'));
      assert.equal(denied.status, 401);
      assert.ok(parseBearerChallenge(denied.headers.get('www-authenticate')).resource_metadata);
    }
    assert.equal(jwks.fetches, 1, 'one JWKS fetch for both routes');
  });

  it('path tricks never carry an unauthenticated request to a protected route, here or upstream', async () => {
    const tricks = [
      '/open/../secure', '/open/%2e%2e/secure', '/open/%2E%2E/secure', '/open/.%2e/secure', '/open/%2e./secure',
      '/open%2F..%2Fsecure', '/open/..%2Fsecure', '/open/..%2fsecure', '/open/%252e%252e/secure', '/open/..;/secure',
      '/open/..\\secure', '/open/%5c..%5csecure', '/open/..%5Csecure', '/open/%2e%2e%5csecure', '/open//../secure',
      '//secure', '/secure/', '/secure//x', '/SECURE', '/Secure', '/secure.', '/secure..', '/secure%2e', '/secure%2F',
      '/secure%2fx', '/%73ecure', '/%73ecure/x', '/s%65cure', '/secure%00', '/secure;x', '/./secure', '/x/../secure',
      '/open/./admin', '/open//admin', '/open///admin/x', '/open/Admin', '/open/admin.', '/open/%61dmin', '/open/%61%64%6d%69%6e',
      '/open/admin%2f', '/open/admin/', '/open%2fadmin', '/open/x/../admin', '/open/admin;x', '/open;/admin', '/open/admin%3bx',
      '/%6fpen/admin', '/open/%2561dmin', '/open/admin?x=/../', '/open/admin#/../', '/open\\admin', '/open%5cadmin',
      '/open/%5cadmin', '/open/.../admin', '/open/admin%20', '/open/%7eadmin',
    ];
    const outcomes = [];
    for (const target of tricks) {
      const mark = echo.requests.length;
      const res = await rawExchange(gw.port, Buffer.from(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`, 'latin1'));
      const seen = echo.requests.slice(mark).map((r) => r.url);
      outcomes.push(`${target} -> ${res.status} ${seen.join(' ')}`);
      assert.ok([200, 400, 401, 404].includes(res.status), `${target}: ${res.raw.slice(0, 200)}`);
      if (res.status === 401) assert.match(res.headers['www-authenticate'] ?? '', /^Bearer /, target);
      for (const url of seen) {
        const p = lenientPath(url);
        assert.ok(!under(p, '/secure') && !under(p, '/open/admin'), `${target} reached the upstream as ${url} (${p}): an auth bypass for a lenient upstream`);
      }
      if (res.status !== 200) assert.deepEqual(seen, [], `${target}: refused, so nothing forwarded`);
    }
    // Honest variants still reach their own routes.
    for (const [target, upstreamPath] of [['/open/x', '/open/x'], ['/open/x%2Fy', '/open/x%2Fy'], ['/elsewhere', '/elsewhere'], ['/open/administrator', '/open/administrator']]) {
      const res = await rawHttp(gw.port, `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
      assert.equal(res.status, 200, `${target}: ${res.raw.slice(0, 200)}`);
      assert.equal(JSON.parse(res.body).url, upstreamPath);
    }
    assert.ok(outcomes.length === tricks.length);
  });

  it('path tricks do not bypass auth on POST either (JSON-RPC errors keep the id)', async () => {
    const mark = echo.requests.length;
    for (const target of ['/open/%61dmin', '/open//admin', '/%73ecure', '/open/..%5csecure']) {
      const res = await mcpPost(`${gw.url}${target}`, rpc(`p-${target}`, 'tools/call', { name: 'x', arguments: {} }));
      assert.ok([400, 401, 404].includes(res.status), `${target}: ${res.status} ${res.text}`);
      assert.equal(res.json.id, `p-${target}`);
    }
    assert.deepEqual(echo.requests.slice(mark), []);
  });

  it('a flood of tokens with random kids: each 401 invalid_token with a full challenge; the JWKS is not refetched per token', async () => {
    const forger = (await jose.generateKeyPair('RS256')).privateKey;
    const tokens = await pool(300, 8, () => sign({ kid: `forged-${crypto.randomBytes(8).toString('hex')}`, signWith: forger }));
    const mark = echo.requests.length;
    const before = jwks.fetches;
    const started = Date.now();
    const results = await pool(tokens.length, 16, (i) =>
      mcpPost(`${gw.url}/secure`, rpc(i, 'tools/list'), { headers: { authorization: `Bearer ${tokens[i]}` } }),
    );
    const elapsedS = (Date.now() - started) / 1000;
    for (const [i, res] of results.entries()) {
      assert.equal(res.status, 401, res.text);
      const challenge = parseBearerChallenge(res.headers.get('www-authenticate'));
      assert.equal(challenge.error, 'invalid_token');
      assert.ok(challenge.error_description);
      assert.equal(challenge.resource_metadata, `${gw.url}/.well-known/oauth-protected-resource/secure`);
      assert.equal(res.json.id, i);
    }
    // At most one refetch per 10 s per server, whatever the number of kids.
    const allowed = 1 + Math.floor(elapsedS / 10);
    assert.ok(jwks.fetches - before <= allowed, `${jwks.fetches - before} JWKS fetches for ${tokens.length} forged kids in ${elapsedS} s`);
    assert.deepEqual(echo.requests.slice(mark), []);
    const good = await mcpPost(`${gw.url}/secure`, rpc(1, 'ping'), { headers: { authorization: `Bearer ${await sign()}` } });
    assert.equal(good.status, 200, 'the real key is still known after the flood');
  });

  it('a flood of invalid tokens (garbage, bad signatures, alg none/HS256, oversized): all 401 invalid_token, none forwarded', async () => {
    const b64u = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
    const real = await sign();
    const [h, p, s] = real.split('.');
    const flipped = Buffer.from(s, 'base64url');
    flipped[10] ^= 1;
    const kinds = [
      () => crypto.randomBytes(24).toString('base64url'),
      () => `${crypto.randomBytes(8).toString('hex')}.${crypto.randomBytes(8).toString('hex')}.${crypto.randomBytes(8).toString('hex')}`,
      () => `${h}.${p}.${flipped.toString('base64url')}`,
      () => `${h}.${b64u({ ...jose.decodeJwt(real), sub: `mallory-${crypto.randomInt(1e9)}` })}.${s}`,
      () => `${b64u({ alg: 'none', typ: 'at+jwt' })}.${p}.`,
      () => `${b64u({ alg: 'HS256', typ: 'at+jwt', kid: signingKey.kid })}.${p}.${crypto.randomBytes(32).toString('base64url')}`,
      () => `${b64u('not json')}.${p}.${s}`,
      () => `${h}.${p}`,
      () => `${h}.${p}.${s}.${s}`,
      () => `${h}..${s}`,
      () => `${h}.${p}.${s}`.replace(/./, '!'),
      () => `${b64u({ alg: 'RS256', kid: signingKey.kid, pad: 'x'.repeat(17 * 1024) })}.${p}.${s}`,
    ];
    const tokens = [];
    for (let round = 0; round < 10; round++) for (const make of kinds) tokens.push(make());
    const mark = echo.requests.length;
    const results = await pool(tokens.length, 12, (i) =>
      mcpPost(`${gw.url}/secure`, rpc(i, 'tools/list'), { headers: { authorization: `Bearer ${tokens[i]}` } }),
    );
    for (const [i, res] of results.entries()) {
      assert.equal(res.status, 401, `token kind ${i % kinds.length}: ${res.text}`);
      assert.equal(parseBearerChallenge(res.headers.get('www-authenticate')).error, 'invalid_token');
      assert.equal(res.json.id, i);
    }
    assert.deepEqual(echo.requests.slice(mark), []);
    assert.ok(gw.proc.alive());
  });

  it('JWT: one bad token replayed is verified once per loop and cache period; each replay gets the same challenge', async () => {
    const [h, p, s] = (await sign()).split('.');
    const signature = Buffer.from(s, 'base64url');
    signature[5] ^= 1;
    const expired = await sign({ claims: { exp: Math.floor(Date.now() / 1000) - 3600, iat: Math.floor(Date.now() / 1000) - 7200 } });
    for (const [bad, result] of [[`${h}.${p}.${signature.toString('base64url')}`, 'signature_invalid'], [expired, 'expired']]) {
      const checks = async () => metricValue((await getMetrics(gw)).samples, 'mcpgate_jwt_verifications_total', { route: 'secure', result }) ?? 0;
      const before = await checks();
      const mark = echo.requests.length;
      const started = Date.now();
      const results = await pool(60, 12, (i) => mcpPost(`${gw.url}/secure`, rpc(i, 'ping'), { headers: { authorization: `Bearer ${bad}` } }));
      const elapsedS = (Date.now() - started) / 1000;
      const challenge = results[0].headers.get('www-authenticate');
      assert.equal(parseBearerChallenge(challenge).error, 'invalid_token');
      for (const [i, res] of results.entries()) {
        assert.equal(res.status, 401, res.text);
        assert.equal(res.headers.get('www-authenticate'), challenge, 'a cached refusal says what the first one said');
        assert.equal(res.json.id, i);
      }
      assert.deepEqual(echo.requests.slice(mark), []);
      // A refusal is kept for 2 s (whole seconds) on each of the 2 loops.
      const verified = (await checks()) - before;
      const allowed = 2 * (2 + Math.floor(elapsedS));
      assert.ok(verified >= 1 && verified <= allowed, `${verified} ${result} checks for 60 requests with one token in ${elapsedS} s`);
    }
    const good = await mcpPost(`${gw.url}/secure`, rpc(1, 'ping'), { headers: { authorization: `Bearer ${await sign()}` } });
    assert.equal(good.status, 200, 'a good token is not confused with a cached bad one');
  });

  it('introspection: one bad token repeated is checked once per loop and cache period, not once per request', async () => {
    const bad = `bad-${crypto.randomBytes(8).toString('hex')}`;
    const started = Date.now();
    const results = await pool(60, 12, (i) => mcpPost(`${gw.url}/inspect`, rpc(i, 'ping'), { headers: { authorization: `Bearer ${bad}` } }));
    const elapsedS = (Date.now() - started) / 1000;
    for (const res of results) {
      assert.equal(res.status, 401, res.text);
      assert.equal(parseBearerChallenge(res.headers.get('www-authenticate')).error, 'invalid_token');
    }
    // A refusal is kept for 2 s (whole seconds) on each of the 2 loops.
    const allowed = 2 * (2 + Math.floor(elapsedS));
    const calls = introspection.byToken.get(bad) ?? 0;
    assert.ok(calls >= 1 && calls <= allowed, `${calls} introspection calls for 60 requests with one bad token in ${elapsedS} s`);
    const good = await mcpPost(`${gw.url}/inspect`, rpc(1, 'ping'), { headers: { authorization: 'Bearer good-opaque-token' } });
    assert.equal(good.status, 200, good.text);
  });
});

// ---------------------------------------------------------------------------
// Slow clients: request_timeout_ms and idle_timeout_ms, on a single loop.
// ---------------------------------------------------------------------------
describe('slowloris and slow POST (one event loop)', () => {
  const REQUEST_TIMEOUT_MS = 1500;
  const IDLE_TIMEOUT_MS = 2000;
  let echo;
  let gw;
  before(async () => {
    echo = await startEchoUpstream();
    gw = await startGateway({
      // One loop: the slow clients and the honest one share it.
      server: { workers: 1, limits: { request_timeout_ms: REQUEST_TIMEOUT_MS, idle_timeout_ms: IDLE_TIMEOUT_MS } },
      routes: [{ name: 'echo', path: '/echo', upstream: `${echo.origin}/base` }],
    });
  });
  after(async () => {
    try {
      await gw?.stopCleanly();
    } finally {
      await echo?.close();
    }
  });

  /**
   * A client that writes `head`, then `drip` one slice every `everyMs` (bounded), until the
   * server answers or closes. Resolves with what it read and whether the server closed.
   */
  function trickle(head, drip, { slice = 1, everyMs = 100, maxWrites = 200 } = {}) {
    return new Promise((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port: gw.port });
      const chunks = [];
      let writes = 0;
      let timer;
      let offset = 0;
      const done = (closedByServer) => {
        clearInterval(timer);
        socket.destroy();
        resolve({ ...parseRawResponse(Buffer.concat(chunks)), closedByServer, writes });
      };
      socket.on('connect', () => {
        socket.write(head);
        timer = setInterval(() => {
          if (writes++ >= maxWrites) return done(false);
          socket.write(drip.slice(offset, offset + slice));
          offset = (offset + slice) % drip.length;
        }, everyMs);
      });
      socket.on('data', (c) => chunks.push(c));
      socket.on('end', () => done(true));
      socket.on('error', () => done(true));
    });
  }

  it('headers trickled a byte at a time: 408 and closed after request_timeout_ms, while others are served', async () => {
    const mark = echo.requests.length;
    const slow = Array.from({ length: 20 }, () => trickle('GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n', 'X-Pad: aaaaaaaaaaaaaaaa\r\n'));
    // Meanwhile, on the same loop, honest requests go through.
    let served = 0;
    for (let i = 0; i < 10; i++) {
      const res = await mcpPost(`${gw.url}/echo`, rpc(i, 'ping'));
      assert.equal(res.status, 200);
      served++;
      await sleep(50);
    }
    const results = await Promise.all(slow);
    for (const res of results) {
      assert.equal(res.status, 408, `got ${res.raw.slice(0, 200)} after ${res.writes} writes`);
      assert.equal(errorReason(res), 'request_timeout');
      assert.ok(res.closedByServer);
    }
    assert.equal(served, 10);
    assert.equal(echo.requests.length - mark, 10, 'only the honest requests reached the upstream');
  });

  it('a body trickled a few bytes at a time: 408 (JSON-RPC shaped, id null) and closed; never forwarded', async () => {
    const mark = echo.requests.length;
    const results = await Promise.all(
      Array.from({ length: 5 }, () =>
        trickle(
          'POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"jsonrpc":"2.0","id":1,',
          '"pad":"xxxxxxxx",',
          { slice: 16, everyMs: 100 },
        ),
      ),
    );
    for (const res of results) {
      assert.equal(res.status, 408, res.raw.slice(0, 200));
      assertRpcError(res, 408, -32000, null, 'request_timeout');
      assert.ok(res.closedByServer);
    }
    const chunked = await trickle(
      'POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n',
      '1\r\nx\r\n',
      { slice: 6, everyMs: 100 },
    );
    assert.equal(chunked.status, 408, chunked.raw.slice(0, 200));
    assert.deepEqual(echo.requests.slice(mark), []);
  });

  it('Expect: 100-continue and then no body: 100, then 408', async () => {
    const res = await rawExchange(
      gw.port,
      'POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: 50\r\n\r\n',
      { timeoutMs: REQUEST_TIMEOUT_MS + 5000 },
    );
    assert.match(res.raw, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 408 /);
    assert.ok(res.closedByServer);
  });

  it('connections that send nothing, or nothing after a response, are closed after idle_timeout_ms without a response', async () => {
    const silent = rawExchange(gw.port, '', { timeoutMs: IDLE_TIMEOUT_MS + 5000 });
    const afterOne = rawExchange(gw.port, 'GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', { timeoutMs: IDLE_TIMEOUT_MS + 5000 });
    const [a, b] = await Promise.all([silent, afterOne]);
    assert.ok(a.closedByServer, 'a silent connection is closed');
    assert.equal(a.raw, '', 'and gets no bytes');
    assert.ok(b.closedByServer);
    assert.equal(b.responses, 1);
    assert.equal(b.status, 200);
    const { samples } = await getMetrics(gw);
    assert.equal(metricValue(samples, 'mcpgate_active_connections'), 0);
  });
});

// ---------------------------------------------------------------------------
// 10 000 idle connections.
// ---------------------------------------------------------------------------

/** The soft limit on open files of this process (children inherit it). */
function openFileLimit() {
  const m = /^Max open files\s+(\d+|unlimited)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
  return !m || m[1] === 'unlimited' ? Infinity : Number(m[1]);
}

function connectMany(port, count) {
  return Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise((resolve, reject) => {
          const s = net.connect({ host: '127.0.0.1', port });
          s.once('connect', () => resolve(s));
          s.once('error', reject);
        }),
    ),
  );
}

describe('10 000 idle connections', () => {
  let echo;
  let gw;
  before(async () => {
    echo = await startEchoUpstream();
    gw = await startGateway({
      server: { limits: { max_connections: 12000, idle_timeout_ms: 60000 } },
      routes: [{ name: 'echo', path: '/echo', upstream: `${echo.origin}/base` }],
    });
  });
  after(async () => {
    try {
      await gw?.stopCleanly();
    } finally {
      await echo?.close();
    }
  });

  it('the gateway serves a normal request while they are open; its fds and connection gauge return after they close', async (t) => {
    // Both processes hold one fd per connection (the gateway inherits this limit).
    const count = Math.min(10000, openFileLimit() - 1000);
    if (count < 10000) t.diagnostic(`open-file limit ${openFileLimit()}: holding ${count} connections`);
    const baseline = fdCount(gw.pid);
    const held = [];
    try {
      for (let i = 0; i < count; i += 1000) held.push(...(await connectMany(gw.port, Math.min(1000, count - i))));
      for (const s of held) s.on('error', () => {});
      await waitFor(async () => metricValue((await getMetrics(gw)).samples, 'mcpgate_active_connections') >= count, {
        timeoutMs: 30000 * TIME_SCALE,
        what: `the gateway to accept ${count} connections`,
      });
      // One descriptor each (the baseline may include a probe connection that has closed since).
      assert.ok(fdCount(gw.pid) >= baseline + count - 10, `${fdCount(gw.pid)} fds for ${count} connections over ${baseline}`);
      const res = await mcpPost(`${gw.url}/echo`, rpc(1, 'ping'), { timeoutMs: 10000 * TIME_SCALE });
      assert.equal(res.status, 200, res.text);
    } finally {
      // Half close politely, half reset.
      held.forEach((s, i) => (i % 2 ? s.end() : s.resetAndDestroy()));
    }
    await waitFor(() => fdCount(gw.pid) <= baseline + 20, { timeoutMs: 30000 * TIME_SCALE, what: 'the gateway to close its side' });
    await waitFor(async () => metricValue((await getMetrics(gw)).samples, 'mcpgate_active_connections') === 0, {
      timeoutMs: 10000 * TIME_SCALE,
      what: 'mcpgate_active_connections back to 0',
    });
    for (const s of held) s.destroy();
    const res = await mcpPost(`${gw.url}/echo`, rpc(2, 'ping'));
    assert.equal(res.status, 200);
  });
});

// ---------------------------------------------------------------------------
// Out of file descriptors: more clients than the process may open.
// ---------------------------------------------------------------------------
describe('out of file descriptors', () => {
  it('accepting pauses instead of spinning (no flood of accept errors); service resumes when fds free up', async () => {
    const echo = await startEchoUpstream();
    const port = await freePort();
    const adminPort = await freePort();
    const dir = makeTempDir('itest-adv-fd-');
    const configPath = path.join(dir, 'mcpgate.yaml');
    fs.writeFileSync(
      configPath,
      toYaml(buildGatewayConfig({ port, adminPort, server: { workers: 1 }, routes: [{ name: 'echo', path: '/echo', upstream: `${echo.origin}/base` }] })),
    );
    // startGateway spawns the binary itself; the fd limit needs a shell in between. Both limits:
    // the gateway raises its soft limit to the hard one at start.
    const gw = startProcess('bash', ['-c', 'ulimit -n 128 && exec "$0" run --config "$1"', GATEWAY_BIN, configPath], {
      name: 'mcpgate',
      env: { ASAN_OPTIONS: process.env.ASAN_OPTIONS ?? 'detect_leaks=1:halt_on_error=1:abort_on_error=0' },
    });
    const held = [];
    try {
      await waitForUrl(`http://127.0.0.1:${adminPort}/readyz`, { proc: gw });
      for (let i = 0; i < 250; i++) {
        const s = net.connect({ host: '127.0.0.1', port });
        s.on('error', () => {});
        held.push(s);
      }
      await waitFor(() => fdCount(gw.pid) >= 120, { timeoutMs: 10000 * TIME_SCALE, what: 'the gateway to run out of fds' });
      const outputBefore = gw.output().length;
      await sleep(1500);
      const during = gw.output().slice(outputBefore);
      const acceptErrors = during.split('\n').filter((l) => /accept/i.test(l)).length;
      assert.ok(acceptErrors <= 20, `${acceptErrors} accept error lines in 1.5 s (${during.length} bytes of output)`);
      assert.ok(gw.alive());
      for (const s of held) s.destroy();
      held.length = 0;
      await waitFor(
        async () => (await rawHttp(port, 'GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n', { timeoutMs: 2000 })).status === 200,
        { timeoutMs: 15000 * TIME_SCALE, what: 'the gateway to serve again' },
      );
    } finally {
      for (const s of held) s.destroy();
      const exit = await gw.stop('SIGTERM', 12000 * TIME_SCALE);
      await echo.close();
      assert.equal(sanitizerFindings(gw.stderr()), '');
      assert.equal(exit.code, 0, JSON.stringify(exit));
    }
  });

  it('a low soft open-file limit is raised to the hard limit at start, with a warning when that is short of max_connections', async () => {
    const hard = Number(execFileSync('bash', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim());
    const echo = await startEchoUpstream();
    const port = await freePort();
    const adminPort = await freePort();
    const dir = makeTempDir('itest-adv-fd-');
    const configPath = path.join(dir, 'mcpgate.yaml');
    const routes = [{ name: 'echo', path: '/echo', upstream: `${echo.origin}/base` }];
    // max_connections above the hard limit: the warning names both.
    const cfg = buildGatewayConfig({ port, adminPort, server: { workers: 1, limits: { max_connections: hard + 1000 } }, routes });
    fs.writeFileSync(configPath, toYaml(cfg));
    const gw = startProcess('bash', ['-c', 'ulimit -Sn 256 && exec "$0" run --config "$1"', GATEWAY_BIN, configPath], {
      name: 'mcpgate',
      env: { ASAN_OPTIONS: process.env.ASAN_OPTIONS ?? 'detect_leaks=1:halt_on_error=1:abort_on_error=0' },
    });
    try {
      await waitForUrl(`http://127.0.0.1:${adminPort}/readyz`, { proc: gw });
      const [, soft, hardSeen] = fs.readFileSync(`/proc/${gw.pid}/limits`, 'utf8').match(/Max open files\s+(\d+)\s+(\d+)/);
      assert.equal(Number(hardSeen), hard);
      assert.equal(Number(soft), hard, 'soft raised from 256 to the hard limit');
      const warning = parseJsonLines(gw.stdout()).find((l) => l.msg === 'open-file limit is below what max_connections needs');
      assert.ok(warning, gw.output().slice(-2000));
      assert.equal(warning.limit, hard);
      assert.equal(warning.max_connections, hard + 1000);
    } finally {
      const exit = await gw.stop('SIGTERM', 12000 * TIME_SCALE);
      await echo.close();
      assert.equal(exit.code, 0, JSON.stringify(exit));
    }
  });
});
