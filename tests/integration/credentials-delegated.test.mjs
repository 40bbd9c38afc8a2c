// Delegated credentials (the user's own downstream tokens) and RFC 8693 token exchange,
// against a real oidc-provider (short-lived, rotating tokens; a token-exchange grant) and a
// real MCP server (SDK) that validates the downstream tokens it receives and reports them.
// Memory token store; the Redis store has its own file.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import * as jose from 'jose';

import { startOidcProvider, CLIENTS } from '../support/oidc-provider.mjs';
import { getTokenViaAuthCode } from '../support/oauth-client.mjs';
import { startCredentialUpstream } from '../support/credential-upstream.mjs';
import {
  DOWNSTREAM_API,
  DOWNSTREAM_CLIENT,
  TOKEN_TTL_S,
  callerToken,
  credentialSections,
  delegatedRoute,
  downstreamClient,
  linkOf,
  openConnectLink,
  toolCall,
  whoami,
} from '../support/delegated.mjs';
import { freePort, metricValue, mcpPost, parseMetrics, sleep, startGateway, LEGACY_PROTOCOL_VERSION } from '../support/harness.mjs';

describe('delegated credentials (memory store)', () => {
  let idp;
  let upstream;
  let gw;
  let base;
  let alice;
  const adminToken = 'admin-token-9f1e';

  before(async () => {
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    idp = await startOidcProvider({
      rotateRefreshTokens: true,
      tokenExchange: true,
      clients: [downstreamClient(base)],
      clientTtls: { [DOWNSTREAM_CLIENT.clientId]: TOKEN_TTL_S },
    });
    upstream = await startCredentialUpstream({ issuer: idp.issuer, audience: DOWNSTREAM_API });
    gw = await startGateway({
      port,
      server: { public_url: base },
      admin: { token: adminToken },
      routes: [
        delegatedRoute(upstream.url),
        { name: 'exchange', path: '/exchange', upstream: upstream.url, auth: { type: 'jwt', server: 'idp' }, upstream_credential: 'exchanged' },
      ],
      extraYaml: credentialSections(idp),
    });
    alice = await callerToken(idp, base);
  });

  after(async () => {
    try {
      await gw?.stopCleanly();
    } finally {
      await Promise.all([idp?.stop(), upstream?.close()]);
    }
  });

  const metrics = async () => {
    const res = await fetch(`${gw.adminUrl}/metrics`, { headers: { authorization: `Bearer ${adminToken}` } });
    const text = await res.text();
    return { text, samples: parseMetrics(text) };
  };
  const asAlice = (extra = {}) => ({ authorization: `Bearer ${alice}`, ...extra });
  const admin = (method, subject, body) =>
    fetch(`${gw.adminUrl}/admin/v1/credentials/user-api/subjects/${encodeURIComponent(subject)}`, {
      method,
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  it('a caller with no linked account gets a connect link; tools marked credential: none pass without one', async () => {
    const plain = await mcpPost(`${base}/user`, toolCall('whoami'), { headers: asAlice() });
    assert.equal(plain.status, 200, 'a JSON-RPC answer, not an HTTP error');
    const link = linkOf(plain.messages[0]);
    assert.equal(link.form, 'plain');
    assert.match(link.message, /user-api/);
    assert.ok(link.message.includes(link.url), 'the message carries the link for clients that show only messages');
    assert.ok(link.url.startsWith(`${base}/oauth/connect/user-api?link=`), link.url);
    assert.equal(upstream.seen.filter((r) => r.tools.includes('whoami')).length, 0, 'nothing reached the upstream');

    const open = await mcpPost(`${base}/user`, toolCall('public-time'), { headers: asAlice() });
    assert.equal(open.status, 200, open.text);
    assert.ok(open.messages[0].result.content, 'credential: none tool answered');
    assert.equal(upstream.seen.at(-1).authorization, undefined, 'and neither the caller token nor any other was sent');
  });

  it('2025-11-25 session that declared URL elicitation: JSON-RPC error -32042; 2026-07-28 with the capability: InputRequiredResult', async () => {
    const init = await mcpPost(
      `${base}/user`,
      { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: LEGACY_PROTOCOL_VERSION, capabilities: { elicitation: { form: {}, url: {} } }, clientInfo: { name: 't', version: '1' } } },
      { headers: asAlice() },
    );
    assert.equal(init.status, 200, `initialize needs no credential: ${init.text}`);
    const session = init.headers.get('mcp-session-id');
    assert.ok(session);
    const legacy = await mcpPost(`${base}/user`, toolCall('whoami', 2), {
      headers: asAlice({ 'mcp-session-id': session, 'mcp-protocol-version': LEGACY_PROTOCOL_VERSION }),
    });
    assert.equal(legacy.status, 200);
    const error = legacy.messages[0].error;
    assert.equal(error.code, -32042, legacy.text);
    assert.equal(legacy.messages[0].id, 2);
    const [elicitation] = error.data.elicitations;
    assert.equal(elicitation.mode, 'url');
    assert.ok(elicitation.elicitationId);
    assert.ok(elicitation.url.startsWith(`${base}/oauth/connect/user-api?link=`));

    const modernBody = toolCall('whoami', 'm-1', { _meta: { 'io.modelcontextprotocol/clientCapabilities': { elicitation: { url: {} } } } });
    const modern = await mcpPost(`${base}/user`, modernBody, {
      headers: asAlice({ 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'whoami' }),
    });
    assert.equal(modern.status, 200);
    const result = modern.messages[0].result;
    assert.equal(modern.messages[0].id, 'm-1');
    assert.equal(result.resultType, 'input_required', modern.text);
    const [request] = Object.values(result.inputRequests);
    assert.equal(request.method, 'elicitation/create');
    assert.equal(request.params.mode, 'url');
    assert.ok(request.params.url.startsWith(`${base}/oauth/connect/user-api?link=`));
    assert.ok(request.params.message);

    // The same modern client without URL elicitation support gets the plain error.
    const noCapability = await mcpPost(`${base}/user`, toolCall('whoami', 3), {
      headers: asAlice({ 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'whoami' }),
    });
    assert.equal(linkOf(noCapability.messages[0]).form, 'plain');
  });

  it('connect flow: the link signs in at the downstream AS (PKCE, resource) and the tool then gets the user\'s token', async () => {
    const answer = await mcpPost(`${base}/user`, toolCall('whoami'), { headers: asAlice() });
    const { url } = linkOf(answer.messages[0]);
    const flow = await openConnectLink(url, { idp, gatewayBase: base });
    assert.equal(flow.status, 200, flow.text);
    assert.match(flow.text, /Account connected/);
    const q = flow.location.searchParams;
    assert.equal(q.get('code_challenge_method'), 'S256');
    assert.ok(q.get('code_challenge'));
    assert.equal(q.get('resource'), DOWNSTREAM_API);
    assert.equal(q.get('client_id'), DOWNSTREAM_CLIENT.clientId);
    assert.equal(q.get('redirect_uri'), `${base}/oauth/callback`);

    const res = await mcpPost(`${base}/user`, toolCall('whoami'), { headers: asAlice() });
    const claims = whoami(res);
    assert.equal(claims.sub, 'alice');
    assert.equal(claims.client_id, DOWNSTREAM_CLIENT.clientId, 'the downstream token, issued to the gateway\'s client');
    assert.equal(claims.aud, DOWNSTREAM_API);
    const sent = upstream.seen.at(-1).authorization;
    assert.notEqual(sent, `Bearer ${alice}`, 'the caller\'s own token never reaches the upstream');

    // The admin API shows metadata only.
    const meta = await admin('GET', 'alice');
    assert.equal(meta.status, 200);
    const text = await meta.text();
    const body = JSON.parse(text);
    assert.equal(body.subject, 'alice');
    assert.equal(body.has_refresh_token, true);
    assert.ok(body.expires_at > Date.now() / 1000);
    assert.ok(!text.includes(sent.slice(7)), 'no token value in the admin answer');
    assert.ok(!gw.logs().includes(sent.slice(7)), 'no token value in the logs');
    const scraped = await metrics();
    assert.equal(metricValue(scraped.samples, 'mcpgate_connect_flows_total', { credential: 'user-api', outcome: 'linked' }), 1);
    assert.ok(metricValue(scraped.samples, 'mcpgate_token_store_seconds_count', { operation: 'get' }) >= 1);
    assert.ok(!scraped.text.includes(sent.slice(7)), 'no token value in the metrics');
  });

  it('a used, tampered or expired link is refused, and so is a callback from another browser', async () => {
    await admin('DELETE', 'alice');
    const { url } = linkOf((await mcpPost(`${base}/user`, toolCall('whoami'), { headers: asAlice() })).messages[0]);
    const tampered = new URL(url);
    const [payload, signature] = tampered.searchParams.get('link').split('.');
    const claims = JSON.parse(Buffer.from(payload, 'base64url'));
    claims.s = 'mallory';
    tampered.searchParams.set('link', `${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${signature}`);
    const forged = await fetch(tampered, { redirect: 'manual' });
    assert.equal(forged.status, 400, 'a link naming another subject does not verify');

    // Another browser: the flow starts in one, the callback lands in one without its cookie.
    const stolen = await openConnectLink(url, { idp, gatewayBase: base, cookieOverride: 'mcpgate_connect=someone-else' });
    assert.equal(stolen.status, 400);
    assert.match(stolen.text, /another browser/);
    assert.equal((await admin('GET', 'alice')).status, 404, 'nothing was linked');

    // RFC 9207: an answer naming another issuer (a mix-up) is refused, and so is one without iss
    // from a server that says it always sends it.
    for (const edit of [(cb) => cb.searchParams.set('iss', 'https://evil.example'), (cb) => cb.searchParams.delete('iss')]) {
      const fresh = linkOf((await mcpPost(`${base}/user`, toolCall('whoami'), { headers: asAlice() })).messages[0]).url;
      const mixedUp = await openConnectLink(fresh, { idp, gatewayBase: base, editCallback: edit });
      assert.equal(mixedUp.status, 400);
      assert.match(mixedUp.text, /expected authorization server/);
    }
    assert.equal((await admin('GET', 'alice')).status, 404, 'nothing was linked');

    const replay = await fetch(url, { redirect: 'manual' });
    assert.equal(replay.status, 400, 'a link works once');
    assert.match(await replay.text(), /already used/);
  });

  it('expiry: a token due for renewal is refreshed exactly once, also for 20 concurrent calls; the rotated refresh token keeps working', async () => {
    await admin('DELETE', 'alice');
    const { url } = linkOf((await mcpPost(`${base}/user`, toolCall('whoami'), { headers: asAlice() })).messages[0]);
    assert.equal((await openConnectLink(url, { idp, gatewayBase: base })).status, 200);
    const first = whoami(await mcpPost(`${base}/user`, toolCall('whoami'), { headers: asAlice() }));

    await idp.resetStats();
    await sleep((TOKEN_TTL_S / 2 + 0.5) * 1000);  // renewal is due from half the lifetime on
    const calls = await Promise.all(
      Array.from({ length: 20 }, (_, i) => mcpPost(`${base}/user`, toolCall('whoami', i + 10), { headers: asAlice() })),
    );
    const reports = calls.map(whoami);
    const stats = await idp.stats({ clientId: DOWNSTREAM_CLIENT.clientId });
    assert.equal(stats.refreshGrants, 1, `one refresh for 20 concurrent calls: ${JSON.stringify(stats.grants)}`);
    assert.equal(stats.refreshGrantSuccesses, 1);
    assert.ok(reports.every((r) => r.token_sha256 === reports[0].token_sha256), 'all 20 used the renewed token');
    assert.notEqual(reports[0].token_sha256, first.token_sha256);

    // Once more: the refresh token the first renewal stored (rotated) is the one spent now.
    await sleep((TOKEN_TTL_S / 2 + 0.5) * 1000);
    whoami(await mcpPost(`${base}/user`, toolCall('whoami', 99), { headers: asAlice() }));
    const after = await idp.stats({ clientId: DOWNSTREAM_CLIENT.clientId });
    assert.equal(after.refreshGrantSuccesses, 2, JSON.stringify(after.grants));
    assert.equal(after.refreshGrants, 2, 'no refresh token was spent twice');
  });

  it('refresh-on-401: the upstream refuses the stored token, the gateway renews it and replays the call once', async () => {
    // Seed (admin API) a token the upstream refuses, with the user's real refresh token.
    const linked = await getTokenViaAuthCode({
      issuer: idp.issuer,
      clientId: DOWNSTREAM_CLIENT.clientId,
      clientSecret: DOWNSTREAM_CLIENT.clientSecret,
      redirectUri: `${base}/oauth/callback`,
      resource: DOWNSTREAM_API,
      scope: 'offline_access read:notes',
    });
    assert.ok(linked.refresh_token);
    const put = await admin('PUT', 'alice', { access_token: 'revoked-or-garbage', refresh_token: linked.refresh_token, expires_in: 3600 });
    assert.equal(put.status, 204);
    await idp.resetStats();
    const before = upstream.seen.length;
    const claims = whoami(await mcpPost(`${base}/user`, toolCall('whoami', 7), { headers: asAlice() }));
    assert.equal(claims.sub, 'alice');
    const attempts = upstream.seen.slice(before).filter((r) => r.tools.includes('whoami'));
    assert.deepEqual(attempts.map((r) => r.status), [401, 200], 'refused once, replayed once with the renewed token');
    assert.equal(attempts[0].authorization, 'Bearer revoked-or-garbage');
    assert.equal((await idp.stats({ clientId: DOWNSTREAM_CLIENT.clientId })).refreshGrantSuccesses, 1);
  });

  it('refresh failure: the stored tokens are deleted and the caller gets a fresh connect link that works', async () => {
    await admin('PUT', 'alice', { access_token: 'revoked-or-garbage', refresh_token: 'not-a-refresh-token', expires_in: 3600 });
    const res = await mcpPost(`${base}/user`, toolCall('whoami', 8), { headers: asAlice() });
    assert.equal(res.status, 200, res.text);
    const link = linkOf(res.messages[0]);
    assert.equal(link.form, 'plain');
    assert.match(link.message, /expired or was revoked/);
    assert.equal((await admin('GET', 'alice')).status, 404, 'the dead tokens were deleted');
    const scraped = await metrics();
    assert.ok(metricValue(scraped.samples, 'mcpgate_credential_refreshes_total', { credential: 'user-api', outcome: 'rejected' }) >= 1);
    assert.equal((await openConnectLink(link.url, { idp, gatewayBase: base })).status, 200);
    assert.equal(whoami(await mcpPost(`${base}/user`, toolCall('whoami', 9), { headers: asAlice() })).sub, 'alice');
  });

  it('admin API: a wrong token is refused; PUT with expires_at, GET, DELETE', async () => {
    const wrong = await fetch(`${gw.adminUrl}/admin/v1/credentials/user-api/subjects/bob`, { headers: { authorization: 'Bearer nope' } });
    assert.equal(wrong.status, 401);
    const none = await fetch(`${gw.adminUrl}/admin/v1/credentials/user-api/subjects/bob`);
    assert.equal(none.status, 401);
    const unknown = await fetch(`${gw.adminUrl}/admin/v1/credentials/exchanged/subjects/bob`, { headers: { authorization: `Bearer ${adminToken}` } });
    assert.equal(unknown.status, 404, 'only delegated credentials hold per-user tokens');
    const bad = await admin('PUT', 'bob', { refresh_token: 'r' });
    assert.equal(bad.status, 400);
    const expiresAt = Math.floor(Date.now() / 1000) + 1234;
    assert.equal((await admin('PUT', 'bob', { access_token: 'a-secret-value', refresh_token: 'r-secret-value', expires_at: expiresAt, scope: 'read:notes' })).status, 204);
    const got = await admin('GET', 'bob');
    const text = await got.text();
    assert.equal(got.status, 200);
    assert.deepEqual(
      (({ subject, issuer, has_refresh_token, expires_at, scope }) => ({ subject, issuer, has_refresh_token, expires_at, scope }))(JSON.parse(text)),
      { subject: 'bob', issuer: idp.issuer, has_refresh_token: true, expires_at: expiresAt, scope: 'read:notes' },
    );
    assert.ok(!text.includes('secret-value'));
    assert.equal((await admin('DELETE', 'bob')).status, 204);
    assert.equal((await admin('GET', 'bob')).status, 404);
  });

  it('token_exchange: the upstream gets an RFC 8693 token for the caller, cached per caller', async () => {
    const token = await callerToken(idp, base, 'exchange');
    await idp.resetStats();
    const first = whoami(await mcpPost(`${base}/exchange`, toolCall('whoami'), { headers: { authorization: `Bearer ${token}` } }));
    assert.equal(first.sub, 'alice');
    assert.equal(first.aud, DOWNSTREAM_API);
    assert.equal(first.client_id, CLIENTS.mcpgate.clientId);
    assert.deepEqual(first.act, { sub: CLIENTS.mcpgate.clientId });
    assert.notEqual(upstream.seen.at(-1).authorization, `Bearer ${token}`);
    const subjectClaims = jose.decodeJwt(token);
    assert.equal(subjectClaims.sub, first.sub);
    for (let i = 0; i < 4; i++) whoami(await mcpPost(`${base}/exchange`, toolCall('whoami', i + 2), { headers: { authorization: `Bearer ${token}` } }));
    const stats = await idp.stats();
    assert.ok(stats.tokenExchanges >= 1 && stats.tokenExchanges <= 2, `cached per caller on each of the two loops: ${stats.tokenExchanges}`);
    const bob = await callerToken(idp, base, 'exchange', 'bob');
    assert.equal(whoami(await mcpPost(`${base}/exchange`, toolCall('whoami', 9), { headers: { authorization: `Bearer ${bob}` } })).sub, 'bob');
  });
});

// The downstream authorization server is another provider than the gateway's own: while it
// is down, stored tokens that are still good keep working; a renewal that needs it is a 503.
describe('delegated credentials while the downstream server is down', () => {
  let gatewayIdp;
  let downstreamIdp;
  let upstream;
  let gw;
  let base;
  const adminToken = 'admin-token-5c2d';
  const LONGER_TTL_S = 12;  // room for the gateway to start before renewal is due

  before(async () => {
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    gatewayIdp = await startOidcProvider();
    downstreamIdp = await startOidcProvider({ clients: [downstreamClient(base)], clientTtls: { [DOWNSTREAM_CLIENT.clientId]: LONGER_TTL_S } });
    upstream = await startCredentialUpstream({ issuer: downstreamIdp.issuer, audience: DOWNSTREAM_API });
    const linked = await getTokenViaAuthCode({
      issuer: downstreamIdp.issuer,
      clientId: DOWNSTREAM_CLIENT.clientId,
      clientSecret: DOWNSTREAM_CLIENT.clientSecret,
      redirectUri: `${base}/oauth/callback`,
      resource: DOWNSTREAM_API,
      scope: 'offline_access read:notes',
    });
    // The upstream learns the downstream keys now (as a running API would have), then the server goes away.
    const warm = await fetch(upstream.url, {
      method: 'POST',
      headers: { authorization: `Bearer ${linked.access_token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify(toolCall('whoami')),
    });
    assert.equal(warm.status, 200);
    await downstreamIdp.stop();
    gw = await startGateway({
      port,
      server: { public_url: base },
      admin: { token: adminToken },
      routes: [delegatedRoute(upstream.url)],
      extraYaml: credentialSections(gatewayIdp, { downstream: downstreamIdp }),
    });
    const put = await fetch(`${gw.adminUrl}/admin/v1/credentials/user-api/subjects/alice`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ access_token: linked.access_token, refresh_token: linked.refresh_token, expires_in: linked.expires_in }),
    });
    assert.equal(put.status, 204);
  });

  after(async () => {
    try {
      await gw?.stopCleanly();
    } finally {
      await Promise.all([gatewayIdp?.stop(), downstreamIdp?.stop(), upstream?.close()]);
    }
  });

  it('a good stored token is used without the downstream server; its renewal answers 503 with Retry-After', async () => {
    const alice = await callerToken(gatewayIdp, base);
    const claims = whoami(await mcpPost(`${base}/user`, toolCall('whoami'), { headers: { authorization: `Bearer ${alice}` } }));
    assert.equal(claims.client_id, DOWNSTREAM_CLIENT.clientId);
    await sleep((LONGER_TTL_S / 2 + 0.5) * 1000);
    const due = await mcpPost(`${base}/user`, toolCall('whoami', 2), { headers: { authorization: `Bearer ${alice}` } });
    assert.equal(due.status, 503, due.text);
    assert.ok(Number(due.headers.get('retry-after')) >= 1);
    assert.equal(due.messages[0].error.data.reason, 'credential_unavailable');
    const meta = await fetch(`${gw.adminUrl}/admin/v1/credentials/user-api/subjects/alice?issuer=${encodeURIComponent(gatewayIdp.issuer)}`, {
      headers: { authorization: `Bearer ${adminToken}` },
    });
    assert.equal(meta.status, 200, 'an unreachable server does not cost the user their link');
  });
});
