// HTTPS termination by mcpgate, with a throwaway CA made by the openssl CLI.
// The SDK clients run in a child process that trusts the CA through
// NODE_EXTRA_CA_CERTS, exactly as a user would configure Node.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import {
  startGatewayOverRealUpstreams,
  makeTlsCa,
  waitFor,
  rawHttp,
  SUPPORT_DIR,
  LEGACY_PROTOCOL_VERSION,
} from '../support/harness.mjs';

const execFileP = promisify(execFile);

/** TLS handshake to the gateway; resolves {ok, protocol, alpn, fingerprint} or {ok:false, code, message}. */
function handshake(port, opts = {}) {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ...opts });
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ ok: false, code: 'TIMEOUT', message: 'handshake timed out' });
    }, 5000);
    s.once('secureConnect', () => {
      clearTimeout(timer);
      const cert = s.getPeerCertificate();
      resolve({ ok: true, protocol: s.getProtocol(), alpn: s.alpnProtocol, fingerprint: cert.fingerprint256, authorized: s.authorized });
      s.destroy();
    });
    s.once('error', (e) => {
      clearTimeout(timer);
      resolve({ ok: false, code: e.code, message: e.message });
    });
  });
}

// TLS 1.0/1.1 need the weak-cipher security level on the client side; without
// it the CLIENT would refuse and the test could not fail.
const LEGACY_TLS_CLIENT = { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' };

describe('HTTPS through the gateway', () => {
  let setup;
  let gw;
  let ca;
  before(async () => {
    ca = makeTlsCa();
    setup = await startGatewayOverRealUpstreams({ tls: { certFile: ca.certFile, keyFile: ca.keyFile } });
    ({ gw } = setup);
  });
  after(() => setup?.stop());

  it('SDK 1.x and 2.x clients connect, list tools and call tools over HTTPS (test CA trusted via NODE_EXTRA_CA_CERTS)', async () => {
    const arg = JSON.stringify({ everythingUrl: `${gw.url}/everything`, modernUrl: `${gw.url}/modern` });
    assert.match(gw.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const { stdout } = await execFileP(process.execPath, [path.join(SUPPORT_DIR, 'tls-client.mjs'), arg], {
      env: { ...process.env, NODE_EXTRA_CA_CERTS: ca.caFile },
      timeout: 60000,
      encoding: 'utf8',
    });
    const r = JSON.parse(stdout.trim().split('\n').pop());
    assert.equal(r.error, undefined, `client flow failed: ${r.error}`);

    assert.deepEqual(r.sdk1.schemes, ['https:']);
    assert.ok(r.sdk1.sessionId, 'SDK 1.x got a session over HTTPS');
    assert.ok(r.sdk1.toolNames.includes('echo') && r.sdk1.toolNames.includes('get-sum'));
    assert.equal(r.sdk1.echoText, 'Echo: hello through mcpgate');
    assert.equal(r.sdk1.sumText, 'The sum of 19 and 23 is 42.');
    assert.ok(r.sdk1.statuses.includes('DELETE 200'));

    assert.deepEqual(r.sdk2Everything.schemes, ['https:']);
    assert.equal(r.sdk2Everything.negotiatedProtocolVersion, LEGACY_PROTOCOL_VERSION);
    assert.equal(r.sdk2Everything.echoText, 'Echo: hello through mcpgate');
    assert.equal(r.sdk2Everything.sumText, 'The sum of 19 and 23 is 42.');

    assert.deepEqual(r.sdk2Modern.schemes, ['https:']);
    assert.equal(r.sdk2Modern.negotiatedProtocolVersion, '2026-07-28');
    assert.deepEqual([...r.sdk2Modern.toolNames].sort(), ['echo', 'slow-progress']);
    assert.equal(r.sdk2Modern.echoText, 'Echo: hello through mcpgate');
  });

  it('serves the configured certificate, TLS >= 1.2 with ALPN http/1.1', async () => {
    const h = await handshake(gw.port, { ca: ca.caPem, ALPNProtocols: ['http/1.1'] });
    assert.equal(h.ok, true, `handshake failed: ${h.code} ${h.message}`);
    assert.equal(h.authorized, true);
    assert.equal(h.fingerprint, ca.fingerprint);
    assert.ok(['TLSv1.2', 'TLSv1.3'].includes(h.protocol), h.protocol);
    assert.equal(h.alpn, 'http/1.1');

    const h12 = await handshake(gw.port, { ca: ca.caPem, minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' });
    assert.equal(h12.ok, true, `TLS 1.2 handshake failed: ${h12.code} ${h12.message}`);
    assert.equal(h12.protocol, 'TLSv1.2');
  });

  it('control: the TLS 1.1 test client does complete a handshake with a server that allows TLS 1.1', async () => {
    // Proves the next test fails because of the gateway, not because this Node
    // client is unable to speak TLS 1.1.
    const srv = tls.createServer(
      { cert: fs.readFileSync(ca.certFile), key: fs.readFileSync(ca.keyFile), minVersion: 'TLSv1', ciphers: 'DEFAULT@SECLEVEL=0' },
      (s) => s.end(),
    );
    srv.on('tlsClientError', () => {});
    await new Promise((r) => srv.listen(0, '127.0.0.1', r));
    try {
      const h = await handshake(srv.address().port, { ca: ca.caPem, ...LEGACY_TLS_CLIENT });
      assert.equal(h.ok, true, `control handshake failed: ${h.code} ${h.message}`);
      assert.equal(h.protocol, 'TLSv1.1');
    } finally {
      srv.close();
    }
  });

  it('rejects a TLS 1.1-only client handshake', async () => {
    const h = await handshake(gw.port, { ca: ca.caPem, ...LEGACY_TLS_CLIENT });
    assert.equal(h.ok, false, `gateway accepted ${h.protocol}`);
    assert.notEqual(h.code, 'TIMEOUT', 'the gateway should fail the handshake, not hang');
  });

  it('does not serve plain HTTP on the TLS listener', async () => {
    // A gateway that also spoke plain HTTP here would answer this with its own
    // 404 not_found JSON; a TLS-only listener answers with a TLS alert, a
    // close, or at most a generic 400.
    let r;
    try {
      r = await rawHttp(gw.port, 'GET /no-such-route HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n', { timeoutMs: 5000 });
    } catch (e) {
      r = { error: e.code ?? e.message, raw: '' };
    }
    assert.ok(!r.raw.includes('not_found'), `plain HTTP was routed: ${r.raw.slice(0, 200)}`);
    assert.ok(r.status === undefined || r.status === 400, `unexpected plain-HTTP answer: ${r.raw.slice(0, 200)}`);
  });

  it('SIGHUP reloads the certificate', async () => {
    const next = ca.issue('server-rotated');
    assert.notEqual(next.fingerprint, ca.fingerprint);
    // Replace the files the config points at, as a cert rotation would.
    fs.copyFileSync(next.certFile, ca.certFile);
    fs.copyFileSync(next.keyFile, ca.keyFile);
    gw.kill('SIGHUP');
    const h = await waitFor(
      async () => {
        const x = await handshake(gw.port, { ca: ca.caPem });
        return x.ok && x.fingerprint === next.fingerprint ? x : false;
      },
      { timeoutMs: 8000, intervalMs: 200, what: 'the rotated certificate to be served after SIGHUP' },
    );
    assert.equal(h.fingerprint, next.fingerprint);
    assert.ok(gw.proc.alive(), 'gateway still running after SIGHUP');
    // And the data path still works with the new certificate.
    const res = await new Promise((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: gw.port, servername: 'localhost', ca: ca.caPem }, () => {
        s.write('GET /nope HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
      });
      let data = '';
      s.on('data', (c) => (data += c));
      s.on('end', () => resolve(data));
      s.on('error', reject);
      s.setTimeout(5000, () => s.destroy(new Error('timeout')));
    });
    assert.match(res, /^HTTP\/1\.1 404/);
  });
});
