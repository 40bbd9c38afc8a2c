// Upstream credentials injected by the gateway: static, passthrough (explicit opt-in) and
// client_credentials (a service account at the real oidc-provider), with refresh-on-401.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

import * as jose from 'jose';

import { startOidcProvider, CLIENTS } from '../support/oidc-provider.mjs';
import { getTokenViaAuthCode } from '../support/oauth-client.mjs';
import { freePort, makeTempDir, mcpPost, startEchoUpstream, startGateway, toYaml } from '../support/harness.mjs';

const toolCall = (name, id = 1) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: {} } });

// MOCK BY NECESSITY: an upstream API that refuses the first bearer token it is shown
// (as a real one does when a token was revoked), so the gateway's refresh-on-401 is visible.
async function startPickyUpstream() {
  const refused = new Set();
  const seen = [];
  const server = http.createServer((req, res) => {
    const auth = req.headers.authorization ?? '';
    seen.push(auth);
    req.resume();
    req.on('end', () => {
      if (refused.size === 0 && auth) {
        refused.add(auth);
        res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer error="invalid_token"' });
        res.end('{"error":"invalid_token"}');
        return;
      }
      const ok = !refused.has(auth);
      res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ jsonrpc: '2.0', id: 1, result: { content: [{ type: 'text', text: ok ? 'accepted' : 'refused' }] } }));
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/mcp`,
    seen,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

describe('upstream credentials', () => {
  let idp;
  let echo;
  let picky;
  let gw;
  let base;
  const apiResource = 'https://api.internal.example';

  // Service accounts that authenticate with private_key_jwt (RFC 7523): the provider knows only
  // their public keys; the gateway signs assertions with the private ones.
  const keyDir = makeTempDir('itest-pkjwt-');
  const signingClients = ['rsa', 'ec'].map((kind) => {
    const { privateKey, publicKey } =
      kind === 'rsa' ? crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }) : crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const keyFile = path.join(keyDir, `${kind}.pem`);
    fs.writeFileSync(keyFile, privateKey.export({ format: 'pem', type: 'pkcs8' }));
    const kid = `${kind}-key-1`;
    return {
      kind,
      keyFile,
      kid,
      metadata: {
        client_id: `signed-${kind}`,
        token_endpoint_auth_method: 'private_key_jwt',
        token_endpoint_auth_signing_alg: kind === 'rsa' ? 'RS256' : 'ES256',
        jwks: { keys: [{ ...publicKey.export({ format: 'jwk' }), kid, use: 'sig' }] },
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
      },
    };
  });

  before(async () => {
    idp = await startOidcProvider({ clients: signingClients.map((c) => c.metadata) });
    echo = await startEchoUpstream();
    picky = await startPickyUpstream();
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    gw = await startGateway({
      port,
      env: { UPSTREAM_API_KEY: 'k-123-secret' },
      routes: [
        {
          name: 'svc',
          path: '/svc',
          upstream: `${echo.origin}/mcp`,
          auth: { type: 'jwt', server: 'idp' },
          upstream_credential: 'service',
          tools: { 'get-time': { credential: 'none' }, 'call-api': { credential: 'api-key' } },
        },
        {
          name: 'pass',
          path: '/pass',
          upstream: `${echo.origin}/mcp`,
          auth: { type: 'jwt', server: 'idp' },
          upstream_credential: 'mine',
        },
        { name: 'picky', path: '/picky', upstream: picky.url, auth: { type: 'jwt', server: 'idp' }, upstream_credential: 'service' },
        { name: 'broken', path: '/broken', upstream: `${echo.origin}/mcp`, auth: { type: 'jwt', server: 'idp' }, upstream_credential: 'refused' },
        ...signingClients.map((c) => ({
          name: `signed-${c.kind}`,
          path: `/signed-${c.kind}`,
          upstream: `${echo.origin}/mcp`,
          auth: { type: 'jwt', server: 'idp' },
          upstream_credential: `signed-${c.kind}`,
        })),
        // Catches every other path: with no delegated credential, /oauth/* is the upstream's.
        { name: 'root', path: '/', upstream: `${echo.origin}/`, auth: { type: 'none' } },
      ],
      extraYaml: toYaml({
        authorization_servers: {
          idp: { issuer: idp.issuer, client: { id: CLIENTS.svc.clientId, secret: CLIENTS.svc.clientSecret } },
          // The same provider, but a secret it does not accept: every grant fails.
          wrongsecret: { issuer: idp.issuer, client: { id: CLIENTS.svc.clientId, secret: 'not-the-secret' } },
          ...Object.fromEntries(
            signingClients.map((c) => [`idp-${c.kind}`, { issuer: idp.issuer, client: { id: c.metadata.client_id, private_key_file: c.keyFile, key_id: c.kid } }]),
          ),
        },
        credentials: {
          service: { type: 'client_credentials', server: 'idp', scopes: ['read:notes'], resource: apiResource },
          'api-key': { type: 'static', header: 'X-Api-Key', value: '${UPSTREAM_API_KEY}' },
          mine: { type: 'passthrough' },
          refused: { type: 'client_credentials', server: 'wrongsecret', scopes: ['read:notes'] },
          ...Object.fromEntries(
            signingClients.map((c) => [
              `signed-${c.kind}`,
              { type: 'client_credentials', server: `idp-${c.kind}`, auth_method: 'private_key_jwt', scopes: ['read:notes'], resource: apiResource },
            ]),
          ),
        },
      }),
    });
  });

  after(async () => {
    try {
      await gw?.stopCleanly();
    } finally {
      await Promise.all([idp?.stop(), echo?.close(), picky?.close()]);
      fs.rmSync(keyDir, { recursive: true, force: true });
    }
  });

  const callerToken = async (route) =>
    (await getTokenViaAuthCode({ issuer: idp.issuer, resource: `${base}/${route}`, scope: 'openid read:notes' })).access_token;

  it('client_credentials: the upstream gets the service token, never the caller\'s', async () => {
    const token = await callerToken('svc');
    const res = await mcpPost(`${base}/svc`, toolCall('query'), { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200, res.text);
    const seen = echo.requests.at(-1).headers.authorization;
    assert.match(seen, /^Bearer /);
    assert.notEqual(seen, `Bearer ${token}`);
    const claims = jose.decodeJwt(seen.slice(7));
    assert.equal(claims.aud, apiResource, 'RFC 8707 resource asked for');
    assert.equal(claims.client_id, CLIENTS.svc.clientId);
    // Cached per event loop: six calls over the gateway's two loops use at most two grants.
    const used = new Set([seen]);
    for (let i = 0; i < 6; i++) {
      await mcpPost(`${base}/svc`, toolCall('query', i + 2), { headers: { authorization: `Bearer ${token}` } });
      used.add(echo.requests.at(-1).headers.authorization);
    }
    assert.ok(used.size <= 2, `service tokens reused, saw ${used.size} distinct`);
    assert.ok(!gw.logs().includes(seen.slice(7)), 'the service token never appears in logs');
  });

  it('per-tool override: credential none sends nothing, a static key goes in its header', async () => {
    const token = await callerToken('svc');
    await mcpPost(`${base}/svc`, toolCall('get-time'), { headers: { authorization: `Bearer ${token}` } });
    assert.equal(echo.requests.at(-1).headers.authorization, undefined);
    await mcpPost(`${base}/svc`, toolCall('call-api'), { headers: { authorization: `Bearer ${token}` } });
    assert.equal(echo.requests.at(-1).headers['x-api-key'], 'k-123-secret');
    assert.equal(echo.requests.at(-1).headers.authorization, undefined);
    assert.ok(!gw.logs().includes('k-123-secret'), 'the static value never appears in logs');
  });

  it('passthrough (explicit opt-in): the caller\'s token is forwarded, with a warning at start', async () => {
    const token = await callerToken('pass');
    const res = await mcpPost(`${base}/pass`, toolCall('x'), { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200, res.text);
    assert.equal(echo.requests.at(-1).headers.authorization, `Bearer ${token}`);
    assert.ok(gw.jsonLogs().some((l) => l.level === 'warning' && l.credential === 'mine'), 'passthrough warned about');
  });

  it('a service-account grant the provider refuses: 503 credential_unavailable with Retry-After, nothing forwarded', async () => {
    const token = await callerToken('broken');
    const before = echo.requests.length;
    const res = await mcpPost(`${base}/broken`, toolCall('x', 8), { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 503, res.text);
    assert.equal(res.json.id, 8);
    assert.equal(res.json.error.data.reason, 'credential_unavailable');
    assert.ok(Number(res.headers.get('retry-after')) >= 1);
    assert.equal(echo.requests.length, before);
    assert.ok(!gw.logs().includes('not-the-secret'), 'the client secret never appears in logs');
  });

  for (const kind of ['rsa', 'ec']) {
    it(`private_key_jwt (${kind === 'rsa' ? 'RS256' : 'ES256'}): the gateway authenticates with a signed assertion, no secret`, async () => {
      const token = await callerToken(`signed-${kind}`);
      const res = await mcpPost(`${base}/signed-${kind}`, toolCall('query'), { headers: { authorization: `Bearer ${token}` } });
      assert.equal(res.status, 200, res.text);
      const seen = echo.requests.at(-1).headers.authorization;
      assert.match(seen, /^Bearer /);
      const claims = jose.decodeJwt(seen.slice(7));
      assert.equal(claims.client_id, `signed-${kind}`, 'issued to the client that signed the assertion');
      assert.equal(claims.aud, apiResource);
      assert.ok(!gw.logs().includes('PRIVATE KEY'), 'the key is never logged');
    });
  }

  it('the admin credentials API is off without an admin token', async () => {
    const res = await fetch(`${gw.adminUrl}/admin/v1/credentials/service/subjects/alice`);
    assert.equal(res.status, 403);
    assert.match((await res.json()).message, /set admin\.token/);
  });

  it('without a delegated credential, /oauth/callback and /oauth/connect/* are forwarded like any path', async () => {
    for (const path of ['/oauth/callback?code=c&state=s', '/oauth/connect/service?link=x']) {
      const before = echo.requests.length;
      const res = await fetch(`${base}${path}`);
      assert.equal(res.status, 200, path);
      assert.equal(echo.requests.length, before + 1, `${path} reached the upstream`);
      assert.equal(echo.requests.at(-1).url, path);
    }
  });

  it('refresh-on-401: a refused service token is replaced and the request replayed once', async () => {
    const token = await callerToken('picky');
    const res = await mcpPost(`${base}/picky`, toolCall('x', 5), { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.result.content[0].text, 'accepted');
    assert.equal(picky.seen.length, 2, 'one refused attempt, one replay');
    assert.notEqual(picky.seen[0], picky.seen[1], 'the replay carried a new token');
  });
});
