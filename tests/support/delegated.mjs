// Shared by the delegated-credential tests: the downstream client and credential config, the
// connect link in its three answer forms, and what a browser does with a link.
import assert from 'node:assert/strict';

import { CLIENTS } from './oidc-provider.mjs';
import { followAuthorizationRedirects, getTokenViaAuthCode } from './oauth-client.mjs';
import { toYaml } from './harness.mjs';

export const DOWNSTREAM_CLIENT = Object.freeze({ clientId: 'gw-web', clientSecret: 'gw-web-secret-4e8a1c6f0b2d4e6a8c0f2b4d6e8a0c1f' });
export const DOWNSTREAM_API = 'https://api.downstream.example';
export const TOKEN_TTL_S = 6;  // downstream access tokens: renewal is due after half of it

export const toolCall = (name, id = 1, params = {}) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: {}, ...params } });

// The downstream client the gateway uses for the connect flow, registered at the IdP.
export function downstreamClient(gatewayBase) {
  return {
    client_id: DOWNSTREAM_CLIENT.clientId,
    client_secret: DOWNSTREAM_CLIENT.clientSecret,
    redirect_uris: [`${gatewayBase}/oauth/callback`],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  };
}

// Config sections for a gateway whose callers authenticate at `idp` and whose delegated
// credential `user-api` holds tokens from the same provider's `gw-web` client.
// `downstream`: another provider for the delegated credential's server (default: `idp`).
export function credentialSections(idp, { tokenStore, downstream = idp } = {}) {
  return toYaml({
    authorization_servers: {
      idp: { issuer: idp.issuer, client: { id: CLIENTS.mcpgate.clientId, secret: CLIENTS.mcpgate.clientSecret } },
      down: { issuer: downstream.issuer, client: { id: DOWNSTREAM_CLIENT.clientId, secret: DOWNSTREAM_CLIENT.clientSecret } },
    },
    credentials: {
      'user-api': { type: 'delegated', server: 'down', scopes: ['offline_access', 'read:notes'], resource: DOWNSTREAM_API },
      exchanged: { type: 'token_exchange', server: 'idp', audience: DOWNSTREAM_API, scopes: ['read:notes'] },
    },
    ...(tokenStore ? { token_store: tokenStore } : {}),
  });
}

export function delegatedRoute(upstreamUrl) {
  return {
    name: 'user',
    path: '/user',
    upstream: upstreamUrl,
    auth: { type: 'jwt', server: 'idp' },
    upstream_credential: 'user-api',
    tools: { 'public-time': { credential: 'none' } },
  };
}

/** A caller's access token for the gateway's route `path` (alice unless `user`). */
export async function callerToken(idp, base, path = 'user', user) {
  const tokens = await getTokenViaAuthCode({ issuer: idp.issuer, resource: `${base}/${path}`, scope: 'openid read:notes', user });
  return tokens.access_token;
}

/** The link in any of the three answer forms (and which form it was). */
export function linkOf(message) {
  if (message.result?.resultType === 'input_required') {
    const [request] = Object.values(message.result.inputRequests);
    return { form: 'input_required', url: request.params.url, request };
  }
  if (message.error?.code === -32042) return { form: 'url_elicitation', url: message.error.data.elicitations[0].url };
  if (message.error) return { form: 'plain', url: message.error.data?.url, message: message.error.message };
  return { form: 'none' };
}

/** What a browser does with a connect link: open it, sign in at the AS, come back. */
// `cookieOverride` replaces the browser's cookie; `editCallback(url)` changes the callback URL
// before it reaches the gateway (a forged answer).
export async function openConnectLink(link, { idp, gatewayBase, cookieOverride, editCallback } = {}) {
  const start = await fetch(link, { redirect: 'manual' });
  if (start.status !== 302) return { status: start.status, text: await start.text() };
  const cookie = start.headers.get('set-cookie')?.split(';')[0];
  const location = start.headers.get('location');
  const { callback } = await followAuthorizationRedirects(location, { issuer: idp.issuer, redirectUri: `${gatewayBase}/oauth/callback` });
  if (editCallback) editCallback(callback);
  const done = await fetch(callback, { headers: { cookie: cookieOverride ?? cookie ?? '' } });
  return { status: done.status, text: await done.text(), location: new URL(location), callback, cookie };
}

/** The `whoami` report of the upstream: the downstream token's claims it validated. */
export function whoami(res) {
  assert.equal(res.status, 200, res.text);
  const message = res.messages[0];
  assert.ok(message.result?.content, `expected a tool result, got ${res.text}`);
  return JSON.parse(message.result.content[0].text);
}

