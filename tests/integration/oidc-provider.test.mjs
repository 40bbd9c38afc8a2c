// Proves the OAuth/OIDC fixture works on its own, WITHOUT the gateway.
// Real parts: npm `oidc-provider` in a child process on 127.0.0.1
// (tests/support/oidc-provider.mjs), npm `jose` for verification and forging.
// Every wait is bounded; nothing leaves loopback.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';

import * as jose from 'jose';

import { startOidcProvider, generateSigningJwk } from '../support/oidc-provider.mjs';
import {
  discover,
  fetchJwks,
  fetchUserinfo,
  forgeToken,
  FORGE_KINDS,
  getTokenViaAuthCode,
  getTokenViaClientCredentials,
  introspectToken,
  publicPemOf,
  refreshAccessToken,
  registerClient,
  revokeToken,
  tokenRequest,
} from '../support/oauth-client.mjs';

const RESOURCE = 'http://127.0.0.1:9999/notes';
const OPAQUE_RESOURCE = 'http://127.0.0.1:9999/opaque-notes';
const OTHER_RESOURCE = 'http://127.0.0.1:9998/other';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Verify an access token the way a strict RFC 9068 resource server would. */
async function verifyAt(token, idp, { audience = RESOURCE, jwks } = {}) {
  const keySet = jose.createLocalJWKSet(jwks ?? (await fetchJwks(idp.issuer)));
  return jose.jwtVerify(token, keySet, {
    issuer: idp.issuer,
    audience,
    typ: 'at+jwt',
    algorithms: ['RS256'],
    requiredClaims: ['exp', 'iat', 'sub', 'client_id', 'jti'],
    clockTolerance: 0,
  });
}

/** True when nothing accepts TCP on 127.0.0.1:port (bounded by a 1 s timeout). */
function connectionRefused(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const done = (v) => {
      s.destroy();
      resolve(v);
    };
    s.once('connect', () => done(false));
    s.once('error', (e) => done(e.code === 'ECONNREFUSED'));
    s.setTimeout(1000, () => done(false));
  });
}

describe('oidc-provider fixture', () => {
  let idp;

  before(async () => {
    idp = await startOidcProvider({
      resourceServers: { [OPAQUE_RESOURCE]: { accessTokenFormat: 'opaque' } },
      shortLivedTtl: 1,
    });
  });

  after(async () => {
    await idp?.stop();
  });

  it('serves OpenID discovery and RFC 8414 metadata', async () => {
    const oidc = await discover(idp.issuer, { refresh: true });
    assert.equal(idp.issuer, `http://127.0.0.1:${idp.port}`);
    assert.equal(oidc.issuer, idp.issuer);
    assert.equal(oidc.jwks_uri, idp.jwksUri);
    assert.equal(oidc.token_endpoint, `${idp.issuer}/token`);
    assert.equal(oidc.authorization_endpoint, `${idp.issuer}/auth`);
    assert.equal(oidc.introspection_endpoint, `${idp.issuer}/token/introspection`);
    assert.equal(oidc.registration_endpoint, `${idp.issuer}/reg`);
    assert.equal(oidc.userinfo_endpoint, `${idp.issuer}/me`);
    assert.equal(oidc.revocation_endpoint, `${idp.issuer}/token/revocation`);
    assert.deepEqual(oidc.code_challenge_methods_supported, ['S256']);
    assert.deepEqual(oidc.response_types_supported, ['code']);
    for (const s of ['openid', 'profile', 'offline_access', 'read:notes', 'write:notes', 'admin']) {
      assert.ok(oidc.scopes_supported.includes(s), `scopes_supported has ${s}`);
    }
    for (const g of ['authorization_code', 'refresh_token', 'client_credentials']) {
      assert.ok(oidc.grant_types_supported.includes(g), `grant_types_supported has ${g}`);
    }
    const res = await fetch(idp.asMetadataUrl, { signal: AbortSignal.timeout(3000) });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), oidc, 'RFC 8414 document equals the OIDC one');
  });

  it('auth code + PKCE with resource= yields an RFC 9068 JWT for that resource', async () => {
    const t = await getTokenViaAuthCode({ issuer: idp.issuer, resource: RESOURCE, scope: 'openid profile read:notes write:notes' });
    assert.equal(t.token_type, 'Bearer');
    assert.ok(t.id_token, 'id_token issued for openid');
    const header = jose.decodeProtectedHeader(t.access_token);
    assert.equal(header.typ, 'at+jwt');
    assert.equal(header.alg, 'RS256');
    assert.equal(header.kid, idp.currentKid);
    const { payload } = await verifyAt(t.access_token, idp);
    assert.equal(payload.aud, RESOURCE);
    assert.equal(payload.iss, idp.issuer);
    assert.equal(payload.sub, 'alice');
    assert.equal(payload.client_id, 'test-public');
    const scopes = payload.scope.split(' ');
    for (const s of ['read:notes', 'write:notes']) assert.ok(scopes.includes(s), `scope ${payload.scope} has ${s}`);
    assert.ok(!scopes.includes('admin'), 'only requested scopes are granted');
    assert.equal(t.scope, payload.scope);

    // The user is selectable (login_hint), and tokens for another resource carry that audience.
    const b = await getTokenViaAuthCode({ issuer: idp.issuer, resource: OTHER_RESOURCE, scope: 'read:notes', user: 'bob' });
    const pb = jose.decodeJwt(b.access_token);
    assert.equal(pb.sub, 'bob');
    assert.equal(pb.aud, OTHER_RESOURCE);
    assert.equal(pb.scope, 'read:notes');
    await assert.rejects(verifyAt(b.access_token, idp), { code: 'ERR_JWT_CLAIM_VALIDATION_FAILED', claim: 'aud' });
  });

  it('requires PKCE for public clients; login_hint=deny ends in access_denied', async () => {
    await assert.rejects(getTokenViaAuthCode({ issuer: idp.issuer, resource: RESOURCE, pkce: false }), (e) => {
      assert.equal(e.body?.error, 'invalid_request', JSON.stringify(e.body));
      assert.match(e.body.error_description, /PKCE/);
      return true;
    });
    await assert.rejects(getTokenViaAuthCode({ issuer: idp.issuer, resource: RESOURCE, user: 'deny' }), (e) => {
      assert.equal(e.body?.error, 'access_denied', JSON.stringify(e.body));
      return true;
    });
  });

  it('introspection: opaque resource tokens are active for mcpgate; JWTs are refused by oidc-provider', async () => {
    const secret = idp.clients.mcpgate.clientSecret;
    const o = await getTokenViaAuthCode({ issuer: idp.issuer, resource: OPAQUE_RESOURCE, scope: 'openid read:notes write:notes', user: 'carol' });
    assert.throws(() => jose.decodeProtectedHeader(o.access_token), 'opaque token is not a JWT');
    const r = await introspectToken({ issuer: idp.issuer, clientSecret: secret, token: o.access_token });
    assert.equal(r.status, 200);
    assert.equal(r.body.active, true, JSON.stringify(r.body));
    assert.equal(r.body.aud, OPAQUE_RESOURCE);
    assert.equal(r.body.sub, 'carol');
    assert.equal(r.body.client_id, 'test-public');
    assert.equal(r.body.iss, idp.issuer);
    assert.equal(r.body.token_type, 'Bearer');
    assert.deepEqual(r.body.scope.split(' ').sort(), ['openid', 'read:notes', 'write:notes']);
    assert.ok(r.body.exp > Date.now() / 1000);

    // Only introspectors (mcpgate) learn anything; a wrong secret is a client error.
    const bySvc = await introspectToken({ issuer: idp.issuer, clientId: 'svc', clientSecret: idp.clients.svc.clientSecret, token: o.access_token });
    assert.deepEqual(bySvc.body, { active: false });
    const badSecret = await introspectToken({ issuer: idp.issuer, clientSecret: 'nope', token: o.access_token });
    assert.equal(badSecret.status, 401);
    assert.equal(badSecret.body.error, 'invalid_client');

    // JWT access tokens are stateless in oidc-provider: introspection refuses them.
    const j = await getTokenViaAuthCode({ issuer: idp.issuer, resource: RESOURCE });
    const rj = await introspectToken({ issuer: idp.issuer, clientSecret: secret, token: j.access_token });
    assert.equal(rj.status, 400);
    assert.equal(rj.body.error, 'unsupported_token_type');

    // Revoked opaque tokens turn inactive.
    const rv = await revokeToken({ issuer: idp.issuer, clientId: 'test-public', token: o.access_token });
    assert.equal(rv.status, 200);
    const after = await introspectToken({ issuer: idp.issuer, clientSecret: secret, token: o.access_token });
    assert.deepEqual(after.body, { active: false });
  });

  it('userinfo works with an audience-less opaque token, not with resource-indicated tokens', async () => {
    const t = await getTokenViaAuthCode({ issuer: idp.issuer, resource: RESOURCE, tokenResource: null, scope: 'openid profile email offline_access read:notes' });
    assert.throws(() => jose.decodeProtectedHeader(t.access_token), 'userinfo token is opaque');
    assert.ok(t.refresh_token, 'offline_access -> refresh token');
    const ui = await fetchUserinfo({ issuer: idp.issuer, accessToken: t.access_token });
    assert.equal(ui.status, 200, JSON.stringify(ui.body));
    assert.equal(ui.body.sub, 'alice');
    assert.equal(ui.body.preferred_username, 'alice');
    assert.equal(ui.body.email, 'alice@example.test');

    // The resource granted at the authorization request is redeemable later.
    const r = await refreshAccessToken({ issuer: idp.issuer, refreshToken: t.refresh_token, resource: RESOURCE });
    const { payload } = await verifyAt(r.access_token, idp);
    assert.equal(payload.aud, RESOURCE);
    assert.ok(payload.scope.split(' ').includes('read:notes'));

    // Resource-indicated tokens are rejected at userinfo.
    const jwtUi = await fetchUserinfo({ issuer: idp.issuer, accessToken: r.access_token });
    assert.equal(jwtUi.status, 401);
    assert.equal(jwtUi.body.error, 'invalid_token');
    const o = await getTokenViaAuthCode({ issuer: idp.issuer, resource: OPAQUE_RESOURCE, scope: 'openid read:notes' });
    const opaqueUi = await fetchUserinfo({ issuer: idp.issuer, accessToken: o.access_token });
    assert.equal(opaqueUi.status, 401);
  });

  it('client_credentials yields a JWT for the resource', async () => {
    const t = await getTokenViaClientCredentials({
      issuer: idp.issuer,
      clientId: 'svc',
      clientSecret: idp.clients.svc.clientSecret,
      resource: RESOURCE,
      scope: 'read:notes admin',
    });
    const { payload, protectedHeader } = await verifyAt(t.access_token, idp);
    assert.equal(protectedHeader.typ, 'at+jwt');
    assert.equal(payload.sub, 'svc');
    assert.equal(payload.client_id, 'svc');
    assert.equal(payload.aud, RESOURCE);
    assert.equal(payload.scope, 'read:notes admin');
    const bad = await tokenRequest({
      issuer: idp.issuer,
      clientId: 'svc',
      clientSecret: 'wrong',
      params: { grant_type: 'client_credentials', resource: RESOURCE },
    });
    assert.equal(bad.status, 401);
    assert.equal(bad.body.error, 'invalid_client');
  });

  it('dynamic client registration works for public and confidential clients', async () => {
    const redirect = 'http://127.0.0.1:41234/cb';
    const pub = await registerClient({
      issuer: idp.issuer,
      metadata: { client_name: 'mcp-inspector', redirect_uris: [redirect], token_endpoint_auth_method: 'none', grant_types: ['authorization_code'] },
    });
    assert.equal(pub.status, 201, JSON.stringify(pub.body));
    assert.ok(pub.body.client_id);
    assert.equal(pub.body.client_secret, undefined);
    const t = await getTokenViaAuthCode({ issuer: idp.issuer, clientId: pub.body.client_id, redirectUri: redirect, resource: RESOURCE, scope: 'read:notes' });
    const { payload } = await verifyAt(t.access_token, idp);
    assert.equal(payload.client_id, pub.body.client_id);

    const conf = await registerClient({
      issuer: idp.issuer,
      metadata: { client_name: 'robot', grant_types: ['client_credentials'], response_types: [], redirect_uris: [] },
    });
    assert.equal(conf.status, 201, JSON.stringify(conf.body));
    assert.ok(conf.body.client_secret);
    const cc = await getTokenViaClientCredentials({
      issuer: idp.issuer,
      clientId: conf.body.client_id,
      clientSecret: conf.body.client_secret,
      resource: RESOURCE,
      scope: 'write:notes',
    });
    assert.equal(jose.decodeJwt(cc.access_token).scope, 'write:notes');
  });

  it('forgeToken kinds are rejected by a strict verifier for the intended reason', async () => {
    const jwks = await fetchJwks(idp.issuer);
    const base = { provider: idp, audience: RESOURCE };
    const expect = {
      expired: { code: 'ERR_JWT_EXPIRED' },
      'not-yet-valid': { code: 'ERR_JWT_CLAIM_VALIDATION_FAILED', claim: 'nbf' },
      'wrong-issuer': { code: 'ERR_JWT_CLAIM_VALIDATION_FAILED', claim: 'iss' },
      'wrong-audience': { code: 'ERR_JWT_CLAIM_VALIDATION_FAILED', claim: 'aud' },
      'wrong-typ': { code: 'ERR_JWT_CLAIM_VALIDATION_FAILED', claim: 'typ' },
      'bad-signature': { code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' },
      'same-kid-wrong-key': { code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' },
      'unknown-kid': { code: 'ERR_JWKS_NO_MATCHING_KEY' },
      'embedded-jwk': { code: 'ERR_JWKS_NO_MATCHING_KEY' },
      'alg-none': /./,
      'hs256-public-pem': /./,
      'hs256-jwk-n': /./,
    };
    for (const kind of FORGE_KINDS) {
      const tok = await forgeToken(kind, base);
      if (kind === 'valid' || kind === 'missing-scope') {
        const { payload } = await verifyAt(tok, idp, { jwks });
        if (kind === 'missing-scope') assert.equal(payload.scope, 'openid');
        continue;
      }
      await assert.rejects(verifyAt(tok, idp, { jwks }), expect[kind], `forged ${kind} must be rejected`);
    }
    // The alg-confusion tokens really are HMACs keyed with the public key material,
    // i.e. a verifier that lets the token pick HS256 would accept them.
    const pem = publicPemOf(idp.signingKey());
    const hsPem = await forgeToken('hs256-public-pem', base);
    await jose.jwtVerify(hsPem, new TextEncoder().encode(pem), { algorithms: ['HS256'] });
    const hsN = await forgeToken('hs256-jwk-n', base);
    await jose.jwtVerify(hsN, new Uint8Array(Buffer.from(idp.signingKey().n, 'base64url')), { algorithms: ['HS256'] });
    assert.equal(jose.decodeProtectedHeader(await forgeToken('alg-none', base)).alg, 'none');

    // Mutating a real provider token keeps its header and other claims.
    const real = await getTokenViaAuthCode({ issuer: idp.issuer, resource: RESOURCE });
    const wrongAud = await forgeToken('wrong-audience', { provider: idp, baseToken: real.access_token });
    assert.equal(jose.decodeJwt(wrongAud).jti, jose.decodeJwt(real.access_token).jti);
    await assert.rejects(verifyAt(wrongAud, idp, { jwks }), { claim: 'aud' });

    // A genuinely expired token from the provider (short-lived client, TTL 1 s).
    const short = await getTokenViaClientCredentials({
      issuer: idp.issuer,
      clientId: 'short-lived',
      clientSecret: idp.clients.shortLived.clientSecret,
      resource: RESOURCE,
      scope: 'read:notes',
    });
    assert.equal(short.expires_in, 1);
    const { exp } = jose.decodeJwt(short.access_token);
    await sleep(Math.max(0, exp * 1000 - Date.now()) + 50);
    await assert.rejects(verifyAt(short.access_token, idp, { jwks }), { code: 'ERR_JWT_EXPIRED' });
  });

  it('rotateKeys() switches the signing kid and keeps provider state', async () => {
    const before = await getTokenViaClientCredentials({ issuer: idp.issuer, clientSecret: idp.clients.svc.clientSecret, resource: RESOURCE, scope: 'read:notes' });
    const opaque = await getTokenViaAuthCode({ issuer: idp.issuer, resource: OPAQUE_RESOURCE, scope: 'read:notes' });
    const oldKid = jose.decodeProtectedHeader(before.access_token).kid;
    assert.equal(oldKid, idp.currentKid);

    const rot = await idp.rotateKeys();
    assert.equal(rot.previousKid, oldKid);
    assert.notEqual(rot.kid, oldKid);
    assert.equal(idp.currentKid, rot.kid);
    const jwks = await fetchJwks(idp.issuer);
    assert.deepEqual(jwks.keys.map((k) => k.kid), [rot.kid, oldKid]);
    assert.ok(jwks.keys.every((k) => k.d === undefined), 'only public keys published');

    const afterTok = await getTokenViaClientCredentials({ issuer: idp.issuer, clientSecret: idp.clients.svc.clientSecret, resource: RESOURCE, scope: 'read:notes' });
    assert.equal(jose.decodeProtectedHeader(afterTok.access_token).kid, rot.kid);
    await verifyAt(afterTok.access_token, idp, { jwks });
    await verifyAt(before.access_token, idp, { jwks }); // old key still published
    // A verifier holding only the pre-rotation JWKS sees an unknown kid.
    await assert.rejects(verifyAt(afterTok.access_token, idp, { jwks: { keys: jwks.keys.slice(1) } }), { code: 'ERR_JWKS_NO_MATCHING_KEY' });
    // State survived: the opaque token from before is still active.
    const intro = await introspectToken({ issuer: idp.issuer, clientSecret: idp.clients.mcpgate.clientSecret, token: opaque.access_token });
    assert.equal(intro.body.active, true);

    // Hard rotation (old key withdrawn), with a caller-supplied key.
    const key = generateSigningJwk();
    const hard = await idp.rotateKeys({ keepOld: false, key });
    assert.equal(hard.kid, key.kid);
    const jwks2 = await fetchJwks(idp.issuer);
    assert.deepEqual(jwks2.keys.map((k) => k.kid), [key.kid]);
    await assert.rejects(verifyAt(afterTok.access_token, idp, { jwks: jwks2 }), { code: 'ERR_JWKS_NO_MATCHING_KEY' });
  });

  it('suspend() makes the IdP hang; stop() refuses connections; restart() comes back on the same issuer', async () => {
    idp.suspend();
    await assert.rejects(fetch(idp.jwksUri, { signal: AbortSignal.timeout(400) }), { name: 'TimeoutError' });
    idp.resume();
    const ok = await fetch(idp.jwksUri, { signal: AbortSignal.timeout(3000) });
    assert.equal(ok.status, 200);

    const { port, issuer, currentKid } = idp;
    await idp.stop();
    assert.equal(idp.alive(), false);
    assert.equal(await connectionRefused(port), true, 'port refuses connections after stop()');
    await assert.rejects(fetch(idp.jwksUri, { signal: AbortSignal.timeout(2000) }));

    await idp.restart();
    assert.equal(idp.port, port);
    assert.equal(idp.issuer, issuer);
    const jwks = await fetchJwks(idp.issuer);
    assert.equal(jwks.keys[0].kid, currentKid, 'keys survive restart');
    const t = await getTokenViaAuthCode({ issuer: idp.issuer, resource: RESOURCE });
    await verifyAt(t.access_token, idp, { jwks });
  });
});
