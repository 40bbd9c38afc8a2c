// Headless OAuth client helpers for the auth tests, used against the real
// oidc-provider fixture (tests/support/oidc-provider.mjs), plus `forgeToken`
// which builds hostile access tokens with `jose`.
//
// Every request goes to a loopback host only (asserted), carries a timeout,
// and every redirect chain is bounded.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';

import * as jose from 'jose';

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);
const DEFAULT_TIMEOUT_MS = 5000;
const MAX_REDIRECTS = 20;

function assertLoopback(u) {
  const url = u instanceof URL ? u : new URL(u);
  if (!LOOPBACK_HOSTS.has(url.hostname)) {
    throw new Error(`refusing to contact non-loopback URL ${url.href}`);
  }
  return url;
}

async function readBody(res) {
  const text = await res.text();
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function oauthError(what, status, body) {
  const desc = typeof body === 'object' && body ? `${body.error}${body.error_description ? `: ${body.error_description}` : ''}` : String(body).slice(0, 500);
  return Object.assign(new Error(`${what} failed (${status}): ${desc}`), { status, body });
}

/** application/x-www-form-urlencoded per RFC 6749 2.3.1 (for HTTP Basic credentials). */
function formEncode(s) {
  return encodeURIComponent(s).replace(/%20/g, '+');
}

function basicAuth(clientId, clientSecret) {
  return `Basic ${Buffer.from(`${formEncode(clientId)}:${formEncode(clientSecret)}`).toString('base64')}`;
}

/**
 * The parameters of a resource server's `WWW-Authenticate: Bearer ...`
 * challenge (RFC 6750 section 3: error, scope, resource_metadata, ...), asserting
 * that the header is present and is a Bearer challenge.
 */
export function parseBearerChallenge(header) {
  assert.ok(header, 'WWW-Authenticate present');
  assert.match(header, /^Bearer /);
  const params = {};
  for (const m of header.matchAll(/(\w+)="([^"]*)"/g)) params[m[1]] = m[2];
  return params;
}

const discoveryCache = new Map();
/** The provider's discovery document (GET <issuer>/.well-known/openid-configuration), cached per issuer. */
export async function discover(issuer, { refresh = false, timeoutMs = DEFAULT_TIMEOUT_MS } = {}) {
  if (!refresh && discoveryCache.has(issuer)) return discoveryCache.get(issuer);
  const url = assertLoopback(`${issuer}/.well-known/openid-configuration`);
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  const body = await readBody(res);
  if (res.status !== 200) throw oauthError('discovery', res.status, body);
  if (body.issuer !== issuer) throw new Error(`discovery issuer mismatch: ${body.issuer} != ${issuer}`);
  discoveryCache.set(issuer, body);
  return body;
}

/** A PKCE pair (S256). */
export function pkcePair() {
  const verifier = crypto.randomBytes(32).toString('base64url');
  const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
  return { verifier, challenge, method: 'S256' };
}

/**
 * POST a form to the token endpoint. clientSecret -> client_secret_basic
 * (or client_secret_post with authMethod 'client_secret_post'); without a
 * secret, client_id goes in the body (public client).
 * Resolves with {status, body, headers}; never throws on OAuth errors.
 */
export async function tokenRequest({ issuer, clientId, clientSecret, authMethod = 'client_secret_basic', params, timeoutMs = DEFAULT_TIMEOUT_MS }) {
  const meta = await discover(issuer);
  const body = new URLSearchParams();
  const headers = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
  if (clientSecret !== undefined && authMethod === 'client_secret_basic') {
    headers.authorization = basicAuth(clientId, clientSecret);
  } else {
    body.set('client_id', clientId);
    if (clientSecret !== undefined) body.set('client_secret', clientSecret);
  }
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null) continue;
    for (const one of Array.isArray(v) ? v : [v]) body.append(k, String(one));
  }
  const res = await fetch(assertLoopback(meta.token_endpoint), {
    method: 'POST',
    headers,
    body,
    signal: AbortSignal.timeout(timeoutMs),
  });
  return { status: res.status, headers: res.headers, body: await readBody(res) };
}

async function tokenOrThrow(what, args) {
  const r = await tokenRequest(args);
  if (r.status !== 200) throw oauthError(what, r.status, r.body);
  return r.body;
}

// Minimal cookie jar for one origin (oidc-provider's _interaction,
// _interaction_resume and _session cookies; paths are ignored, the newest
// value of a name wins, which is what the flow needs).
class CookieJar {
  #cookies = new Map();

  store(res) {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      let expired = value === '';
      for (const a of attrs) {
        const [k, v = ''] = a.split('=');
        const key = k.trim().toLowerCase();
        if (key === 'max-age' && Number(v) <= 0) expired = true;
        if (key === 'expires' && Date.parse(v) <= Date.now()) expired = true;
      }
      if (expired) this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
  }

  header() {
    return [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

/**
 * The headless "browser": request `authorizationUrl` and follow the
 * authorization server's redirects by hand (cookie jar; loopback hosts and the
 * issuer's origin only; at most MAX_REDIRECTS requests, each bounded by
 * `timeoutMs`, all within 4 * `timeoutMs`) until the redirect to
 * `redirectUri`, which is returned without being requested: its query carries
 * the authorization response (code, state, iss, or error).
 *
 * @param {string|URL} authorizationUrl  the authorization request
 * @param {object} o
 * @param {string} o.issuer               every hop must stay on the issuer's origin
 * @param {string} o.redirectUri          the client's redirect_uri (matched on origin + path)
 * @param {number} [o.timeoutMs]
 * @returns {Promise<{callback: URL, hops: {url: string, status: number}[]}>}
 *          the callback URL and every request made on the way
 * @throws an oauthError (with `status` and `body`) when a hop answers without
 *         a redirect; an Error when the flow leaves loopback or the issuer, or
 *         does not reach `redirectUri` within the bounds.
 */
export async function followAuthorizationRedirects(authorizationUrl, { issuer, redirectUri, timeoutMs = DEFAULT_TIMEOUT_MS } = {}) {
  const issuerOrigin = new URL(issuer).origin;
  const redirect = new URL(redirectUri);
  const deadline = Date.now() + 4 * timeoutMs;
  const jar = new CookieJar();
  const hops = [];
  let url = new URL(authorizationUrl);
  while (hops.length < MAX_REDIRECTS && Date.now() < deadline) {
    assertLoopback(url);
    if (url.origin !== issuerOrigin) throw new Error(`authorization flow left the issuer: ${url.href}`);
    const res = await fetch(url, {
      redirect: 'manual',
      headers: { cookie: jar.header(), accept: 'text/html,application/json' },
      signal: AbortSignal.timeout(timeoutMs),
    });
    jar.store(res);
    hops.push({ url: url.href, status: res.status });
    const location = res.headers.get('location');
    if (res.status < 300 || res.status >= 400 || !location) {
      throw oauthError(`authorization request (${url.pathname})`, res.status, await readBody(res));
    }
    await res.arrayBuffer().catch(() => {});
    const next = new URL(location, url);
    if (next.origin === redirect.origin && next.pathname === redirect.pathname) return { callback: next, hops };
    url = next;
  }
  throw new Error(`authorization flow did not reach ${redirectUri} within ${hops.length} redirects / ${4 * timeoutMs} ms`);
}

function randomLoopbackRedirect() {
  // Nothing listens there: the helper captures the code from the Location
  // header. oidc-provider accepts any port for native clients' loopback URIs.
  const port = 20000 + crypto.randomInt(40000);
  return `http://127.0.0.1:${port}/callback`;
}

/**
 * Run the authorization code flow with PKCE headlessly through the fixture's
 * auto-approving interaction and redeem the code.
 *
 * @param {object} o
 * @param {string} o.issuer
 * @param {string} [o.clientId='test-public']
 * @param {string} [o.clientSecret]          confidential clients (client_secret_basic)
 * @param {string|string[]} [o.resource]     resource indicator(s) for the authorization request
 * @param {string|null} [o.tokenResource]    resource sent to the token endpoint (default: `resource`;
 *                                           null = none -> opaque userinfo token if scope has openid)
 * @param {string} [o.scope='openid read:notes']
 * @param {string} [o.user]                  login_hint: the user to log in as (fixture default 'alice')
 * @param {string} [o.redirectUri]           default http://127.0.0.1:<random>/callback
 * @param {object} [o.extraParams]           extra authorization request parameters
 * @param {boolean} [o.pkce=true]            send code_challenge (false to test "PKCE required")
 * @returns token response JSON (access_token, token_type, expires_in, scope, id_token?, refresh_token?)
 *          with a non-enumerable `flow` property {code, state, redirects, codeVerifier}.
 */
export async function getTokenViaAuthCode({
  issuer,
  clientId = 'test-public',
  clientSecret,
  resource,
  tokenResource,
  scope = 'openid read:notes',
  user,
  redirectUri = randomLoopbackRedirect(),
  extraParams = {},
  pkce = true,
  timeoutMs = DEFAULT_TIMEOUT_MS,
} = {}) {
  const meta = await discover(issuer);
  const { verifier, challenge } = pkcePair();
  const state = crypto.randomBytes(12).toString('base64url');
  const auth = new URL(assertLoopback(meta.authorization_endpoint));
  const q = auth.searchParams;
  q.set('client_id', clientId);
  q.set('response_type', 'code');
  q.set('redirect_uri', redirectUri);
  q.set('scope', scope);
  q.set('state', state);
  if (pkce) {
    q.set('code_challenge', challenge);
    q.set('code_challenge_method', 'S256');
  }
  for (const r of resource === undefined ? [] : Array.isArray(resource) ? resource : [resource]) q.append('resource', r);
  if (user !== undefined) q.set('login_hint', user);
  // oidc-provider drops offline_access unless consent is prompted.
  if (scope.split(' ').includes('offline_access') && !('prompt' in extraParams)) q.set('prompt', 'consent');
  for (const [k, v] of Object.entries(extraParams)) q.set(k, v);

  const { callback, hops } = await followAuthorizationRedirects(auth, { issuer, redirectUri, timeoutMs });
  const cb = callback.searchParams;
  if (cb.get('error')) throw oauthError('authorization', 'redirect', { error: cb.get('error'), error_description: cb.get('error_description') });
  if (cb.get('state') !== state) throw new Error('state mismatch in authorization response');
  if (cb.get('iss') !== null && cb.get('iss') !== issuer) throw new Error(`iss mismatch in authorization response: ${cb.get('iss')}`);
  const code = cb.get('code');
  if (!code) throw new Error(`no code in ${callback.href}`);

  const tr = tokenResource === undefined ? resource : tokenResource;
  const tokens = await tokenOrThrow('token (authorization_code)', {
    issuer,
    clientId,
    clientSecret,
    timeoutMs,
    params: {
      grant_type: 'authorization_code',
      code,
      redirect_uri: redirectUri,
      code_verifier: pkce ? verifier : undefined,
      resource: tr === null ? undefined : tr,
    },
  });
  Object.defineProperty(tokens, 'flow', { value: { code, state, redirects: hops.length, codeVerifier: verifier, redirectUri } });
  return tokens;
}

/** client_credentials grant (client_secret_basic by default). Returns the token response JSON. */
export async function getTokenViaClientCredentials({ issuer, clientId = 'svc', clientSecret, resource, scope, authMethod, timeoutMs } = {}) {
  return tokenOrThrow('token (client_credentials)', {
    issuer,
    clientId,
    clientSecret,
    authMethod,
    timeoutMs,
    params: { grant_type: 'client_credentials', resource, scope },
  });
}

/** refresh_token grant; `resource` selects the resource the new access token is for. */
export async function refreshAccessToken({ issuer, clientId = 'test-public', clientSecret, refreshToken, resource, scope, timeoutMs } = {}) {
  return tokenOrThrow('token (refresh_token)', {
    issuer,
    clientId,
    clientSecret,
    timeoutMs,
    params: { grant_type: 'refresh_token', refresh_token: refreshToken, resource, scope },
  });
}

/** RFC 7662 introspection (client_secret_basic). Resolves with {status, body}. */
export async function introspectToken({ issuer, clientId = 'mcpgate', clientSecret, token, tokenTypeHint, timeoutMs = DEFAULT_TIMEOUT_MS } = {}) {
  const meta = await discover(issuer);
  const body = new URLSearchParams({ token });
  if (tokenTypeHint) body.set('token_type_hint', tokenTypeHint);
  const res = await fetch(assertLoopback(meta.introspection_endpoint), {
    method: 'POST',
    headers: { authorization: basicAuth(clientId, clientSecret), 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body,
    signal: AbortSignal.timeout(timeoutMs),
  });
  return { status: res.status, body: await readBody(res) };
}

/** RFC 7009 revocation (client_secret_basic, or client_id in body without secret). Resolves with {status, body}. */
export async function revokeToken({ issuer, clientId, clientSecret, token, tokenTypeHint, timeoutMs = DEFAULT_TIMEOUT_MS } = {}) {
  const meta = await discover(issuer);
  const body = new URLSearchParams({ token });
  if (tokenTypeHint) body.set('token_type_hint', tokenTypeHint);
  const headers = { 'content-type': 'application/x-www-form-urlencoded' };
  if (clientSecret !== undefined) headers.authorization = basicAuth(clientId, clientSecret);
  else body.set('client_id', clientId);
  const res = await fetch(assertLoopback(meta.revocation_endpoint), { method: 'POST', headers, body, signal: AbortSignal.timeout(timeoutMs) });
  return { status: res.status, body: await readBody(res) };
}

/** GET userinfo with a Bearer token. Resolves with {status, body, wwwAuthenticate}. */
export async function fetchUserinfo({ issuer, accessToken, timeoutMs = DEFAULT_TIMEOUT_MS } = {}) {
  const meta = await discover(issuer);
  const res = await fetch(assertLoopback(meta.userinfo_endpoint), {
    headers: { authorization: `Bearer ${accessToken}`, accept: 'application/json' },
    signal: AbortSignal.timeout(timeoutMs),
  });
  return { status: res.status, body: await readBody(res), wwwAuthenticate: res.headers.get('www-authenticate') };
}

/** RFC 7591 dynamic client registration. Resolves with {status, body}. */
export async function registerClient({ issuer, metadata, timeoutMs = DEFAULT_TIMEOUT_MS } = {}) {
  const meta = await discover(issuer);
  const res = await fetch(assertLoopback(meta.registration_endpoint), {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify(metadata),
    signal: AbortSignal.timeout(timeoutMs),
  });
  return { status: res.status, body: await readBody(res) };
}

/** The provider's JWKS (fetched from jwks_uri; not cached). */
export async function fetchJwks(issuer, { timeoutMs = DEFAULT_TIMEOUT_MS } = {}) {
  const meta = await discover(issuer);
  const res = await fetch(assertLoopback(meta.jwks_uri), { signal: AbortSignal.timeout(timeoutMs) });
  const body = await readBody(res);
  if (res.status !== 200) throw oauthError('jwks', res.status, body);
  return body;
}

// ---------------------------------------------------------------------------
// Hostile tokens
// ---------------------------------------------------------------------------

const b64u = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

/** Every kind forgeToken understands. */
export const FORGE_KINDS = Object.freeze([
  'valid', // control: signed with the provider's current key, sane claims
  'expired',
  'not-yet-valid',
  'wrong-issuer',
  'wrong-audience',
  'missing-scope',
  'wrong-typ',
  'bad-signature',
  'alg-none',
  'hs256-public-pem',
  'hs256-jwk-n',
  'unknown-kid',
  'same-kid-wrong-key',
  'embedded-jwk',
]);

/**
 * Build a hostile access token.
 *
 * Claim-level kinds (valid, expired, not-yet-valid, wrong-issuer,
 * wrong-audience, missing-scope, wrong-typ) are signed with the PROVIDER'S
 * real current signing key (the fixture owns it: pass `provider` or
 * `signingKey`), with the same header an oidc-provider JWT access token has
 * ({alg: RS256, typ: at+jwt, kid}), so the only thing wrong is the named claim.
 * With `baseToken` (a real token from the provider) its header/claims are the
 * starting point; otherwise an RFC 9068 claim set is synthesised.
 * Key-level kinds never need the private key:
 *   bad-signature        real/properly signed token with one signature byte flipped
 *   alg-none             {alg: none}, empty signature
 *   hs256-public-pem     HS256 keyed with the provider's RSA public key as SPKI PEM text
 *   hs256-jwk-n          HS256 keyed with the raw modulus bytes (base64url-decoded JWK n)
 *   unknown-kid          RS256 with a fresh key and a kid the provider never published
 *   same-kid-wrong-key   RS256 with a fresh key but the provider's real kid
 *   embedded-jwk         fresh key, its public JWK embedded in the header (`jwk`), unknown kid
 * For the alg-confusion kinds the provider's public key is taken from its
 * jwks_uri (or `provider`).
 *
 * @param {string} kind one of FORGE_KINDS
 * @param {object} o
 * @param {object} [o.provider]   handle from startOidcProvider() (gives issuer + signing key)
 * @param {string} [o.issuer]
 * @param {object} [o.signingKey] provider's private JWK (default provider.signingKey())
 * @param {string} [o.audience]   the resource (gateway route URL) the token should look issued for
 * @param {string} [o.scope='openid read:notes write:notes']
 * @param {string} [o.missingScopeValue='openid'] scope used for 'missing-scope'
 * @param {string} [o.sub='alice']
 * @param {string} [o.clientId='test-public']
 * @param {number} [o.ttl=300]
 * @param {string} [o.baseToken]  real access token to start from
 * @param {object} [o.claims]     extra claims merged last (before the kind's mutation)
 */
export async function forgeToken(kind, o = {}) {
  if (!FORGE_KINDS.includes(kind)) throw new Error(`unknown forge kind ${kind}; one of ${FORGE_KINDS.join(', ')}`);
  const issuer = o.issuer ?? o.provider?.issuer;
  if (!issuer) throw new Error('forgeToken needs issuer or provider');
  const signingKey = o.signingKey ?? o.provider?.signingKey();
  const now = Math.floor(Date.now() / 1000);
  const ttl = o.ttl ?? 300;

  let header;
  let payload;
  if (o.baseToken) {
    header = jose.decodeProtectedHeader(o.baseToken);
    payload = jose.decodeJwt(o.baseToken);
  } else {
    header = { alg: 'RS256', typ: 'at+jwt', kid: signingKey?.kid };
    payload = {
      jti: crypto.randomBytes(16).toString('base64url'),
      sub: o.sub ?? 'alice',
      iat: now,
      exp: now + ttl,
      scope: o.scope ?? 'openid read:notes write:notes',
      client_id: o.clientId ?? 'test-public',
      iss: issuer,
      aud: o.audience,
    };
  }
  if (o.audience !== undefined) payload.aud = o.audience;
  if (o.scope !== undefined) payload.scope = o.scope;
  payload = { ...payload, ...(o.claims || {}) };
  if (payload.aud === undefined) throw new Error('forgeToken needs audience (or a baseToken)');
  header = { ...header };

  const providerKey = async () => {
    if (!signingKey) throw new Error(`forge kind ${kind} needs the provider's signing key (pass provider or signingKey)`);
    return jose.importJWK(signingKey, 'RS256');
  };
  const signRs256 = async (key, hdr = header, pl = payload) => new jose.SignJWT(pl).setProtectedHeader(hdr).sign(key);
  const providerPublicJwk = async () => {
    if (signingKey) {
      const { d, p, q, dp, dq, qi, ...pub } = signingKey; // eslint-disable-line no-unused-vars
      return pub;
    }
    const jwks = await fetchJwks(issuer);
    const k = jwks.keys.find((x) => x.kid === header.kid) ?? jwks.keys.find((x) => x.kty === 'RSA');
    if (!k) throw new Error('no RSA key in provider JWKS');
    return k;
  };
  const fresh = async () => {
    const { privateKey, publicKey } = await jose.generateKeyPair('RS256', { extractable: true });
    return { privateKey, publicJwk: await jose.exportJWK(publicKey) };
  };

  switch (kind) {
    case 'valid':
      return signRs256(await providerKey());
    case 'expired':
      // Well past any sane leeway.
      return signRs256(await providerKey(), header, { ...payload, iat: now - 7200, exp: now - 3600 });
    case 'not-yet-valid':
      return signRs256(await providerKey(), header, { ...payload, iat: now, nbf: now + 3600, exp: now + 7200 });
    case 'wrong-issuer':
      return signRs256(await providerKey(), header, { ...payload, iss: o.wrongIssuer ?? 'http://127.0.0.1:1/evil-issuer' });
    case 'wrong-audience':
      return signRs256(await providerKey(), header, { ...payload, aud: o.wrongAudience ?? 'http://127.0.0.1:1/not-this-resource' });
    case 'missing-scope':
      return signRs256(await providerKey(), header, { ...payload, scope: o.missingScopeValue ?? 'openid' });
    case 'wrong-typ':
      // e.g. an ID token / generic JWT presented as an access token (RFC 9068 requires at+jwt).
      return signRs256(await providerKey(), { ...header, typ: 'JWT' });
    case 'bad-signature': {
      const good = o.baseToken ?? (await signRs256(await providerKey()));
      const [h, p, s] = good.split('.');
      const sig = Buffer.from(s, 'base64url');
      sig[Math.floor(sig.length / 2)] ^= 0x01;
      return `${h}.${p}.${sig.toString('base64url')}`;
    }
    case 'alg-none':
      return `${b64u({ ...header, alg: 'none' })}.${b64u(payload)}.`;
    case 'hs256-public-pem': {
      const pem = publicPemOf(await providerPublicJwk());
      return new jose.SignJWT(payload).setProtectedHeader({ ...header, alg: 'HS256' }).sign(new TextEncoder().encode(pem));
    }
    case 'hs256-jwk-n': {
      const n = Buffer.from((await providerPublicJwk()).n, 'base64url');
      return new jose.SignJWT(payload).setProtectedHeader({ ...header, alg: 'HS256' }).sign(new Uint8Array(n));
    }
    case 'unknown-kid': {
      const { privateKey } = await fresh();
      return signRs256(privateKey, { ...header, kid: `forged-${crypto.randomBytes(6).toString('hex')}` });
    }
    case 'same-kid-wrong-key': {
      const { privateKey } = await fresh();
      return signRs256(privateKey, header);
    }
    case 'embedded-jwk': {
      const { privateKey, publicJwk } = await fresh();
      return signRs256(privateKey, { ...header, kid: `embedded-${crypto.randomBytes(6).toString('hex')}`, jwk: publicJwk });
    }
    default:
      throw new Error(`unhandled forge kind ${kind}`);
  }
}

/** Provider's public key as SPKI PEM (what a naive verifier would feed to an HMAC in the alg-confusion attack). */
export function publicPemOf(jwk) {
  const { d, p, q, dp, dq, qi, ...pub } = jwk; // eslint-disable-line no-unused-vars
  return crypto.createPublicKey({ key: pub, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
}
