// Token validation by asking the IdP: OIDC userinfo and RFC 7662 introspection,
// through the real gateway against the real oidc-provider. The echo fixture is
// the upstream so the test sees exactly what reaches it.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startOidcProvider, CLIENTS } from '../support/oidc-provider.mjs';
import { getTokenViaAuthCode } from '../support/oauth-client.mjs';
import { freePort, mcpPost, startEchoUpstream, startGateway, toYaml } from '../support/harness.mjs';

const toolsList = (id = 1) => ({ jsonrpc: '2.0', id, method: 'tools/list' });

describe('userinfo and introspection auth', () => {
  let idp;
  let echo;
  let gw;
  let userinfoUrl;
  let introspectUrl;

  before(async () => {
    const port = await freePort();
    userinfoUrl = `http://127.0.0.1:${port}/who`;
    introspectUrl = `http://127.0.0.1:${port}/inspect`;
    // Introspection needs a token the provider stores: an opaque one for this resource.
    idp = await startOidcProvider({
      resourceServers: { [introspectUrl]: { accessTokenFormat: 'opaque', scope: 'openid read:notes write:notes admin' } },
    });
    echo = await startEchoUpstream();
    gw = await startGateway({
      port,
      // Token caches are per event loop; one loop makes "a cached token survives an IdP
      // outage" observable from a client that may land on any connection.
      server: { workers: 1 },
      routes: [
        {
          name: 'who',
          path: '/who',
          upstream: `${echo.origin}/mcp`,
          forward_identity: true,
          auth: { type: 'userinfo', server: 'idp', cache_ttl_s: 0 }, // never cached: every request asks the IdP
        },
        {
          name: 'inspect',
          path: '/inspect',
          upstream: `${echo.origin}/mcp`,
          forward_identity: true,
          auth: { type: 'introspection', server: 'idp', required_scopes: ['read:notes'], cache_ttl_s: 30 },
          tools: { delete_note: { scopes: ['admin'] } },
        },
      ],
      extraYaml: toYaml({
        authorization_servers: {
          idp: { issuer: idp.issuer, client: { id: CLIENTS.mcpgate.clientId, secret: CLIENTS.mcpgate.clientSecret } },
        },
      }),
    });
  });

  after(async () => {
    try {
      await gw?.stopCleanly();
    } finally {
      await Promise.all([idp?.stop(), echo?.close()]);
    }
  });

  it('userinfo: a token the IdP accepts passes with its subject; a bad one is 401', async () => {
    // oidc-provider's userinfo takes tokens issued without a resource.
    const { access_token: token } = await getTokenViaAuthCode({ issuer: idp.issuer, scope: 'openid profile' });
    const ok = await mcpPost(userinfoUrl, toolsList(), { headers: { authorization: `Bearer ${token}` } });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(echo.requests.at(-1).headers['x-mcp-subject'], 'alice');
    assert.equal(echo.requests.at(-1).headers.authorization, undefined);
    const bad = await mcpPost(userinfoUrl, toolsList(4), { headers: { authorization: 'Bearer not-a-real-token' } });
    assert.equal(bad.status, 401);
    assert.match(bad.headers.get('www-authenticate'), /error="invalid_token"/);
    assert.equal(bad.json.id, 4);
  });

  it('introspection: active token with the right audience and scopes passes; scopes are enforced per tool', async () => {
    const { access_token: token } = await getTokenViaAuthCode({
      issuer: idp.issuer,
      resource: introspectUrl,
      scope: 'openid read:notes',
    });
    assert.ok(!token.includes('.'), 'an opaque token, not a JWT');
    // Concurrent requests with one new token: all pass (they share one introspection call).
    const results = await Promise.all(
      Array.from({ length: 5 }, (_, i) => mcpPost(introspectUrl, toolsList(i + 1), { headers: { authorization: `Bearer ${token}` } })),
    );
    for (const res of results) assert.equal(res.status, 200, res.text);
    assert.equal(echo.requests.at(-1).headers['x-mcp-subject'], 'alice');
    const denied = await mcpPost(
      introspectUrl,
      { jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'delete_note', arguments: {} } },
      { headers: { authorization: `Bearer ${token}` } },
    );
    assert.equal(denied.status, 403);
    assert.match(denied.headers.get('www-authenticate'), /error="insufficient_scope"/);
  });

  it('introspection: a token issued for another resource is refused (audience)', async () => {
    const { access_token: token } = await getTokenViaAuthCode({ issuer: idp.issuer, resource: userinfoUrl, scope: 'openid read:notes' });
    const res = await mcpPost(introspectUrl, toolsList(), { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 401, res.text);
  });

  it('introspection: an unknown token is inactive: 401', async () => {
    const res = await mcpPost(introspectUrl, toolsList(), { headers: { authorization: 'Bearer opaque-but-unknown' } });
    assert.equal(res.status, 401);
  });

  it('IdP down: 503 with Retry-After, never 401; a cached good token still passes', async () => {
    const { access_token: cached } = await getTokenViaAuthCode({ issuer: idp.issuer, resource: introspectUrl, scope: 'openid read:notes' });
    const { access_token: fresh } = await getTokenViaAuthCode({ issuer: idp.issuer, resource: introspectUrl, scope: 'openid read:notes' });
    assert.equal((await mcpPost(introspectUrl, toolsList(), { headers: { authorization: `Bearer ${cached}` } })).status, 200);
    await idp.stop();
    const down = await mcpPost(introspectUrl, toolsList(6), { headers: { authorization: `Bearer ${fresh}` } });
    assert.equal(down.status, 503, down.text);
    assert.ok(Number(down.headers.get('retry-after')) >= 1);
    assert.equal(down.json.id, 6);
    const stillOk = await mcpPost(introspectUrl, toolsList(), { headers: { authorization: `Bearer ${cached}` } });
    assert.equal(stillOk.status, 200);
  });
});
