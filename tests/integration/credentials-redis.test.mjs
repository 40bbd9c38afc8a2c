// Delegated credentials over the Redis token store: a REAL redis-server on loopback shared by
// several gateway processes, the real oidc-provider (short-lived, rotating refresh tokens whose
// reuse revokes the grant) and the real MCP upstream that validates the downstream tokens.
// What a user of replicas checks: a link made through one replica works through another and
// survives a restart; 20 concurrent calls over two processes renew once; store keys rotate;
// a Redis outage is a retryable 503 for exactly the calls that need a stored token; nothing
// secret reaches the logs or Redis in the clear.
// The memory-store behaviour (link forms, admin API details, refresh failure) is in
// credentials-delegated.test.mjs.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { startOidcProvider } from '../support/oidc-provider.mjs';
import { getTokenViaAuthCode } from '../support/oauth-client.mjs';
import { startCredentialUpstream } from '../support/credential-upstream.mjs';
import { respCommands, startRedis } from '../support/redis.mjs';
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
import { freePort, makeTempDir, mcpPost, metricValue, parseMetrics, sleep, startGateway, waitFor } from '../support/harness.mjs';

const ADMIN_TOKEN = 'admin-token-redis-3b7e';
const RENEWAL_DUE_MS = (TOKEN_TTL_S / 2 + 0.5) * 1000;  // renewal is due from half the lifetime on

const sha256hex = (data) => crypto.createHash('sha256').update(data).digest('hex');

/** A 32-byte store key in a file (hex or base64 text); its id is what sealed values start with. */
function makeStoreKey(dir, name, encoding) {
  const raw = crypto.randomBytes(32);
  const file = path.join(dir, name);
  fs.writeFileSync(file, `${raw.toString(encoding)}\n`, { mode: 0o600 });
  return { file, id: sha256hex(raw).slice(0, 8), texts: [raw.toString('hex'), raw.toString('base64')] };
}

describe('delegated credentials (redis store, several gateway processes)', () => {
  let idp;
  let upstream;
  let redis;
  let K1;
  let K2;
  let portA;
  let portB;
  let A;  // replaced by restarts
  let B;
  const gateways = [];  // every gateway process started, for the log check and cleanup
  const callers = {};   // caller tokens by `${user}@${base}`
  const knownSecrets = new Set();  // token values the test knows the gateway handled

  const baseOf = (port) => `http://127.0.0.1:${port}`;
  const storeKey = (subject) =>
    `mcpgate:tokens:user-api:${Buffer.from(idp.issuer).toString('base64url')}:${Buffer.from(subject).toString('base64url')}`;

  async function gateway(port, { key, previous } = {}) {
    const base = baseOf(port);
    const gw = await startGateway({
      port,
      server: { public_url: base },
      admin: { token: ADMIN_TOKEN },
      log: { level: 'debug' },  // the most verbose level still must not print a token
      routes: [delegatedRoute(upstream.url)],
      extraYaml: credentialSections(idp, {
        tokenStore: {
          backend: 'redis',
          redis_url: redis.url,
          encryption_key_file: key.file,
          previous_encryption_key_files: previous?.map((k) => k.file),
        },
      }),
    });
    gw.base = base;
    gateways.push(gw);
    return gw;
  }

  async function caller(gw, user = 'alice') {
    const k = `${user}@${gw.base}`;
    callers[k] ??= await callerToken(idp, gw.base, 'user', user === 'alice' ? undefined : user);
    knownSecrets.add(callers[k]);
    return callers[k];
  }
  const call = async (gw, tool, id, user = 'alice') =>
    mcpPost(`${gw.base}/user`, toolCall(tool, id), { headers: { authorization: `Bearer ${await caller(gw, user)}` } });
  const admin = (gw, method, subject, body) =>
    fetch(`${gw.adminUrl}/admin/v1/credentials/user-api/subjects/${encodeURIComponent(subject)}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10000),
    });
  const storeOps = async (gw, operation) => {
    const res = await fetch(`${gw.adminUrl}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` }, signal: AbortSignal.timeout(5000) });
    return metricValue(parseMetrics(await res.text()), 'mcpgate_token_store_seconds_count', { operation }) ?? 0;
  };
  const whoamiSeen = () => upstream.seen.filter((r) => r.tools.includes('whoami'));
  const accessTokensSeen = () => {
    const tokens = new Set();
    for (const r of upstream.seen) if (r.authorization?.startsWith('Bearer ')) tokens.add(r.authorization.slice(7));
    return [...tokens];
  };

  before(async () => {
    const dir = makeTempDir('itest-redis-keys-');
    K1 = makeStoreKey(dir, 'k1.hex', 'hex');
    K2 = makeStoreKey(dir, 'k2.b64', 'base64');
    [portA, portB] = [await freePort(), await freePort()];
    // One downstream client for both replicas: each sends its own /oauth/callback.
    const client = downstreamClient(baseOf(portA));
    client.redirect_uris = [`${baseOf(portA)}/oauth/callback`, `${baseOf(portB)}/oauth/callback`];
    [idp, redis] = await Promise.all([
      startOidcProvider({ rotateRefreshTokens: true, clients: [client], clientTtls: { [DOWNSTREAM_CLIENT.clientId]: TOKEN_TTL_S } }),
      startRedis({ persist: true }),
    ]);
    upstream = await startCredentialUpstream({ issuer: idp.issuer, audience: DOWNSTREAM_API });
    [A, B] = await Promise.all([gateway(portA, { key: K1 }), gateway(portB, { key: K1 })]);
  });

  after(async () => {
    try {
      // Those still running must exit cleanly (exit 0, no sanitizer findings), after a Redis outage too.
      const results = await Promise.allSettled(gateways.filter((gw) => gw.proc.alive()).map((gw) => gw.stopCleanly()));
      const failed = results.find((r) => r.status === 'rejected');
      if (failed) throw failed.reason;
    } finally {
      await Promise.all([idp?.stop(), upstream?.close(), redis?.stop()]);
    }
  });

  it('a link made through gateway A is used through gateway B; 10+10 concurrent calls over both renew once; the rotated refresh token keeps working', async () => {
    const before = await call(B, 'whoami', 1);
    assert.equal(linkOf(before.messages[0]).form, 'plain', `not linked yet, B too: ${before.text}`);
    const { url } = linkOf((await call(A, 'whoami', 2)).messages[0]);
    assert.ok(url.startsWith(`${A.base}/oauth/connect/user-api?link=`), url);
    const flow = await openConnectLink(url, { idp, gatewayBase: A.base });
    assert.equal(flow.status, 200, flow.text);
    assert.equal(flow.location.searchParams.get('redirect_uri'), `${A.base}/oauth/callback`);

    const viaA = whoami(await call(A, 'whoami', 3));
    const viaB = whoami(await call(B, 'whoami', 4));
    assert.equal(viaB.sub, 'alice');
    assert.equal(viaB.client_id, DOWNSTREAM_CLIENT.clientId);
    assert.equal(viaB.token_sha256, viaA.token_sha256, 'B sent the token A stored');

    await idp.resetStats();
    const locksBefore = [await storeOps(A, 'lock'), await storeOps(B, 'lock')];
    await sleep(RENEWAL_DUE_MS);
    const calls = await Promise.all([
      ...Array.from({ length: 10 }, (_, i) => call(A, 'whoami', 100 + i)),
      ...Array.from({ length: 10 }, (_, i) => call(B, 'whoami', 200 + i)),
    ]);
    const reports = calls.map(whoami);
    const stats = await idp.stats({ clientId: DOWNSTREAM_CLIENT.clientId });
    assert.equal(stats.refreshGrants, 1, `one refresh for 20 calls over two processes: ${JSON.stringify(stats.grants)}`);
    assert.equal(stats.refreshGrantSuccesses, 1);
    assert.ok(reports.every((r) => r.sub === 'alice' && r.token_sha256 === reports[0].token_sha256), 'all 20 used the renewed token');
    assert.notEqual(reports[0].token_sha256, viaA.token_sha256);
    // The winner released the lock (a stale one would hold up the next renewal for its 10 s).
    await waitFor(async () => (await redis.cli('KEYS', 'mcpgate:lock:*')) === '', { timeoutMs: 2000, intervalMs: 50, what: 'the refresh lock to be released' });
    // Both processes found the token due and went for the shared refresh lock: the single
    // refresh was coordinated through Redis, not one process doing all the work.
    const locksAfter = [await storeOps(A, 'lock'), await storeOps(B, 'lock')];
    assert.ok(locksAfter[0] > locksBefore[0] && locksAfter[1] > locksBefore[1], `refresh lock requests A/B: ${locksBefore} -> ${locksAfter}`);

    // Due again: the rotated refresh token the winner stored is spent now (a reuse of the old one
    // would be refused and revoke the whole grant).
    await sleep(RENEWAL_DUE_MS);
    const third = whoami(await call(B, 'whoami', 5));
    const again = whoami(await call(A, 'whoami', 6));
    assert.equal(third.sub, 'alice');
    assert.notEqual(third.token_sha256, reports[0].token_sha256, 'renewed a second time');
    assert.equal(again.token_sha256, third.token_sha256, 'A uses what B renewed');
    const after = await idp.stats({ clientId: DOWNSTREAM_CLIENT.clientId });
    assert.equal(after.refreshGrantSuccesses, 2, JSON.stringify(after.grants));
    assert.equal(after.refreshGrants, 2, 'no refresh token was spent twice');
  });

  it('restart: a new process with the same config and Redis still has the link', async () => {
    await A.stopCleanly();
    A = await gateway(portA, { key: K1 });
    const res = await call(A, 'whoami', 7);
    assert.equal(whoami(res).sub, 'alice', 'no relink needed');
    const meta = await admin(A, 'GET', 'alice');
    const text = await meta.text();
    assert.equal(meta.status, 200, text);
    const body = JSON.parse(text);
    assert.equal(body.subject, 'alice');
    assert.equal(body.issuer, idp.issuer);
    assert.equal(body.has_refresh_token, true);
    assert.ok(body.expires_at > Date.now() / 1000 - TOKEN_TTL_S, JSON.stringify(body));
  });

  it('store key rotation: K1 entries open with K2 + previous [K1] and are resealed under K2 on write; K2 alone cannot open them', async () => {
    // bob's entry, written by B under K1: an access token the upstream refuses and bob's real
    // refresh token, so any gateway that opens it can answer whoami (refresh-on-401).
    const bobTokens = await getTokenViaAuthCode({
      issuer: idp.issuer,
      clientId: DOWNSTREAM_CLIENT.clientId,
      clientSecret: DOWNSTREAM_CLIENT.clientSecret,
      redirectUri: `${B.base}/oauth/callback`,
      resource: DOWNSTREAM_API,
      scope: 'offline_access read:notes',
      user: 'bob',
    });
    assert.ok(bobTokens.refresh_token);
    const staleAccess = `stale-access-${crypto.randomBytes(12).toString('hex')}`;
    knownSecrets.add(bobTokens.refresh_token).add(staleAccess);
    assert.equal((await admin(B, 'PUT', 'bob', { access_token: staleAccess, refresh_token: bobTokens.refresh_token, expires_in: 3600 })).status, 204);

    const keys = (await redis.cli('KEYS', 'mcpgate:tokens:*')).split('\n').sort();
    assert.deepEqual(keys, [storeKey('alice'), storeKey('bob')].sort(), 'one entry per user, under the documented key');
    const bobSealed = await redis.cli('GET', storeKey('bob'));
    const aliceSealed = await redis.cli('GET', storeKey('alice'));
    assert.ok(bobSealed.startsWith(`${K1.id}.`), `sealed under K1 (${K1.id}): ${bobSealed.slice(0, 20)}`);
    assert.ok(aliceSealed.startsWith(`${K1.id}.`), aliceSealed.slice(0, 20));
    for (const secret of [staleAccess, bobTokens.refresh_token, ...accessTokensSeen()]) {
      assert.ok(!bobSealed.includes(secret) && !aliceSealed.includes(secret), 'no token in the clear in Redis');
    }
    for (const user of ['alice', 'bob']) {
      const ttl = Number(await redis.cli('TTL', storeKey(user)));
      assert.ok(ttl > 0 && ttl <= 30 * 24 * 3600, `${user}'s entry expires: TTL ${ttl}`);
    }
    // Nothing the gateway wrote lives forever (connect-flow records, used-link markers, locks).
    const everything = (await redis.cli('KEYS', '*')).split('\n').filter(Boolean);
    assert.ok(everything.length >= 2 && everything.every((k) => k.startsWith('mcpgate:')), everything.join(' '));
    for (const k of everything) assert.ok(Number(await redis.cli('TTL', k)) > 0, `${k} has a TTL`);

    // A gateway with only K2 treats the K1 entry as absent: a connect link, nothing forwarded.
    const C = await gateway(await freePort(), { key: K2 });
    const forwardedBefore = whoamiSeen().length;
    const onlyK2 = await call(C, 'whoami', 8, 'bob');
    assert.equal(onlyK2.status, 200, onlyK2.text);
    const link = linkOf(onlyK2.messages[0]);
    assert.equal(link.form, 'plain', onlyK2.text);
    assert.ok(link.url?.startsWith(`${C.base}/oauth/connect/user-api?link=`), onlyK2.text);
    assert.equal(whoamiSeen().length, forwardedBefore, 'nothing reached the upstream');
    assert.equal((await admin(C, 'GET', 'bob')).status, 404, 'the admin API cannot open it either');
    assert.match(C.logs(), /does not open with the configured keys/, 'the operator is told why');
    await C.stopCleanly();
    assert.equal(await redis.cli('GET', storeKey('bob')), bobSealed, 'and it left the entry alone');

    // Rotated config: K2 seals, K1 still opens.
    await A.stopCleanly();
    A = await gateway(portA, { key: K2, previous: [K1] });
    assert.equal(whoami(await call(A, 'whoami', 9)).sub, 'alice', 'a K1 entry opens after the rotation');
    await idp.resetStats();
    const bob = whoami(await call(A, 'whoami', 10, 'bob'));
    assert.equal(bob.sub, 'bob');
    assert.equal((await idp.stats({ clientId: DOWNSTREAM_CLIENT.clientId })).refreshGrantSuccesses, 1, 'the stale token was renewed');
    const resealed = await redis.cli('GET', storeKey('bob'));
    assert.ok(resealed.startsWith(`${K2.id}.`), `the renewal wrote under K2 (${K2.id}): ${resealed.slice(0, 20)}`);
    assert.ok(Number(await redis.cli('TTL', storeKey('bob'))) > 0);
    for (const secret of [bobTokens.refresh_token, ...accessTokensSeen()]) assert.ok(!resealed.includes(secret));
    assert.equal(whoami(await call(A, 'whoami', 11, 'bob')).token_sha256, bob.token_sha256, 'the K2 entry opens too');
  });

  it('Redis down: calls needing the stored token answer 503 credential_unavailable with Retry-After; credential: none tools still work; recovery after Redis returns', async () => {
    assert.equal(whoami(await call(A, 'whoami', 20)).sub, 'alice');
    await redis.stop();
    const forwardedBefore = whoamiSeen().length;
    const down = await call(A, 'whoami', 21);
    assert.equal(down.status, 503, down.text);
    assert.equal(down.json?.id, 21, down.text);
    assert.equal(down.json.error.code, -32000);
    assert.equal(down.json.error.data.reason, 'credential_unavailable');
    assert.ok(Number(down.headers.get('retry-after')) >= 1, `Retry-After: ${down.headers.get('retry-after')}`);
    assert.equal(whoamiSeen().length, forwardedBefore, 'nothing forwarded without the credential');
    const viaB = await call(B, 'whoami', 22);
    assert.equal(viaB.status, 503, `the other process too: ${viaB.text}`);

    const open = await call(A, 'public-time', 23);
    assert.equal(open.status, 200, open.text);
    assert.ok(open.messages[0].result?.content, open.text);
    assert.equal(upstream.seen.at(-1).authorization, undefined);
    assert.equal((await admin(A, 'GET', 'alice')).status, 503, 'the admin API says the store is unavailable');

    await redis.start();
    const started = Date.now();
    // Several connections at once, so every worker loop's Redis connection is exercised.
    const back = await waitFor(
      async () => {
        const batch = await Promise.all(Array.from({ length: 6 }, (_, i) => call(A, 'whoami', 30 + i)));
        return batch.every((r) => r.status === 200 && r.messages[0]?.result) ? batch : false;
      },
      { timeoutMs: 10000, intervalMs: 250, what: 'delegated calls to work again after Redis returned' },
    );
    assert.equal(whoami(back[0]).sub, 'alice', 'the persisted link is back');
    assert.ok(Date.now() - started < 10000);
    assert.ok(A.jsonLogs().some((l) => /redis connection (lost|restored)/.test(l.msg ?? '')), 'the outage is logged');
  });

  // Known gateway bug (delegated_tokens.cpp on_loaded): when the re-read under the refresh lock
  // finds the entry gone (NotFound) or fails (Unavailable), the attempt finishes without
  // releasing the lock, so it lingers for its whole TTL (10 s) and the user's next renewal waits
  // that long. Redis' CLIENT PAUSE WRITE holds the gateway's SET NX while the entry is deleted.
  it('an entry deleted while a renewal takes the lock: the lock is released', async () => {
    const carol = await getTokenViaAuthCode({
      issuer: idp.issuer,
      clientId: DOWNSTREAM_CLIENT.clientId,
      clientSecret: DOWNSTREAM_CLIENT.clientSecret,
      redirectUri: `${A.base}/oauth/callback`,
      resource: DOWNSTREAM_API,
      scope: 'offline_access read:notes',
      user: 'carol',
    });
    knownSecrets.add(carol.access_token).add(carol.refresh_token);
    // Due at once (expires_at = now).
    assert.equal((await admin(A, 'PUT', 'carol', { access_token: carol.access_token, refresh_token: carol.refresh_token, expires_in: 0 })).status, 204);
    await redis.command('CLIENT', 'PAUSE', '5000', 'WRITE');
    let answer;
    try {
      answer = call(A, 'whoami', 40, 'carol');
      await sleep(300);  // the gateway read the due entry; its SET NX of the lock waits on the pause
      const deleted = respCommands(redis.port, [['DEL', storeKey('carol')]], { timeoutMs: 5000 });
      await sleep(100);
      await redis.command('CLIENT', 'UNPAUSE');
      assert.deepEqual(await deleted, [1]);
    } finally {
      await redis.command('CLIENT', 'UNPAUSE').catch(() => {});
    }
    const res = await answer;
    assert.equal(linkOf(res.messages[0]).form, 'plain', `the entry is gone: a connect link. ${res.text}`);
    const lockKey = storeKey('carol').replace(':tokens:', ':lock:');
    await waitFor(async () => (await redis.command('EXISTS', lockKey)) === 0, { timeoutMs: 1000, intervalMs: 50, what: `${lockKey} to be released` });
  });

  it('no token value or store key appears in any gateway log', () => {
    const tokens = accessTokensSeen();
    assert.ok(tokens.length >= 4, `the upstream saw several downstream tokens: ${tokens.length}`);
    const secrets = [...tokens, ...knownSecrets, ...K1.texts, ...K2.texts];
    assert.ok(gateways.length >= 2);
    for (const gw of gateways) {
      const logs = gw.logs();
      assert.ok(logs.length > 0);
      for (const secret of secrets) assert.ok(!logs.includes(secret), `a secret (${secret.slice(0, 6)}...) in the log of pid ${gw.pid}`);
    }
  });
});
