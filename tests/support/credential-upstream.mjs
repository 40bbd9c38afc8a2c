// A REAL MCP resource server for the credential tests: @modelcontextprotocol/sdk
// 1.32.2 McpServer + StreamableHTTPServerTransport (stateless: a fresh server
// and transport per POST, sessionIdGenerator undefined, enableJsonResponse)
// behind node:http on 127.0.0.1, protected like a real OAuth resource server:
// `Authorization: Bearer <JWT>` is verified with jose against the issuer's
// JWKS (jwks_uri from its discovery document), issuer and (optionally)
// audience checked.
//
//   const up = await startCredentialUpstream({ issuer: idp.issuer, audience: apiResource });
//   up.url      // "http://127.0.0.1:<port>/mcp"   (the MCP endpoint; any path works)
//   up.origin   // "http://127.0.0.1:<port>"
//   up.seen     // [{authorization, apiKey, status, httpMethod, rpcMethods, tools, at}] every request, in order
//   await up.close();
//
// Authentication rules (checked BEFORE the request reaches the SDK transport;
// the JSON body is parsed first to see what is asked):
// - PROTECTED: tools/list, and tools/call of any tool except `public-time`
//   (also inside a JSON array batch). Needs a valid Bearer JWT or, with
//   `acceptApiKey`, a matching `X-Api-Key`.
// - PUBLIC: everything else (initialize, notifications, ping, tools/call
//   public-time, ...) passes WITHOUT credentials. But a credential that IS
//   sent is always validated: an invalid/expired Bearer token (or a wrong
//   X-Api-Key when no Bearer is sent) is a 401 on any request, as a real
//   resource server does.
// - 401 answers: `WWW-Authenticate: Bearer realm="credential-upstream",
//   error="invalid_token", error_description="..."` plus a JSON body
//   {error, error_description}; a missing credential gets the challenge without
//   an error code (RFC 6750 3.1) and body {error: 'unauthorized', ...}.
// - GET / DELETE: 405 (stateless server: no standalone SSE stream, no
//   sessions), as the SDK's stateless example does. Body not JSON: 400
//   JSON-RPC parse error.
//
// Tools:
//   whoami       (protected) text = JSON {sub, aud, client_id, scope, act,
//                iss, exp, token_sha256} of the validated token (sha256 hex of
//                the raw token); for an API key: {api_key: true,
//                api_key_sha256, sub: null, ...}
//   public-time  (public) text = JSON {now: ISO time, epoch_ms}
//
// @param {object}   o
// @param {string}   [o.issuer]        expected `iss`; without it no Bearer token is ever valid
// @param {string|string[]} [o.audience] expected `aud` (checked only when given)
// @param {string|string[]} [o.acceptApiKey] X-Api-Key value(s) accepted instead of a Bearer token
// @param {string}   [o.jwksUri]       override (default: discovery's jwks_uri, fallback <issuer>/jwks)
// @param {string}   [o.requiredScope] space-separated scopes a Bearer token must all carry (403 insufficient_scope otherwise)
// @param {number}   [o.clockTolerance=0] seconds of exp/nbf leeway
import crypto from 'node:crypto';
import http from 'node:http';

import * as jose from 'jose';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';

import { serveFixture, readRequestBody } from './listen.mjs';

const PUBLIC_TOOLS = new Set(['public-time']);
const REALM = 'credential-upstream';

const sha256 = (s) => crypto.createHash('sha256').update(s).digest('hex');

function isProtected(msg) {
  if (!msg || typeof msg !== 'object') return false;
  if (msg.method === 'tools/list') return true;
  if (msg.method === 'tools/call') return !PUBLIC_TOOLS.has(msg.params?.name);
  return false;
}

function quote(s) {
  return String(s).replace(/[\\"]/g, "'").replace(/[^\x20-\x7e]/g, '?');
}


function sendJson(res, status, body, headers = {}) {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function buildServer(auth) {
  const server = new McpServer({ name: 'credential-upstream', version: '1.0.0' });
  server.registerTool(
    'whoami',
    { title: 'Who am I', description: 'The identity of the credential this request carried (validated token claims).' },
    async () => {
      let who;
      if (auth?.kind === 'bearer') {
        const c = auth.claims;
        who = {
          sub: c.sub ?? null,
          aud: c.aud ?? null,
          client_id: c.client_id ?? null,
          scope: c.scope ?? null,
          act: c.act ?? null,
          iss: c.iss ?? null,
          exp: c.exp ?? null,
          token_sha256: sha256(auth.token),
        };
      } else if (auth?.kind === 'apikey') {
        who = { sub: null, aud: null, client_id: null, scope: null, act: null, api_key: true, api_key_sha256: sha256(auth.apiKey), token_sha256: null };
      } else {
        who = { sub: null, anonymous: true };
      }
      return { content: [{ type: 'text', text: JSON.stringify(who) }] };
    },
  );
  server.registerTool('public-time', { title: 'Public time', description: 'The current time (no credential needed).' }, async () => {
    const now = new Date();
    return { content: [{ type: 'text', text: JSON.stringify({ now: now.toISOString(), epoch_ms: now.getTime() }) }] };
  });
  return server;
}

/**
 * Start the upstream (see the header comment). Resolves with
 * {url, origin, port, seen, close()}.
 */
export async function startCredentialUpstream({ issuer, audience, acceptApiKey, jwksUri, requiredScope, clockTolerance = 0 } = {}) {
  const seen = [];
  const apiKeys = new Set(acceptApiKey === undefined || acceptApiKey === null ? [] : [].concat(acceptApiKey));
  const needScopes = requiredScope ? requiredScope.split(' ').filter(Boolean) : [];

  let jwks = null;
  async function keySet() {
    if (jwks) return jwks;
    let uri = jwksUri;
    if (!uri) {
      try {
        const r = await fetch(`${issuer}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(3000) });
        if (r.ok) uri = (await r.json()).jwks_uri;
      } catch {
        /* IdP down: fall back, retry discovery next time */
      }
    }
    const set = jose.createRemoteJWKSet(new URL(uri || `${issuer}/jwks`), { cooldownDuration: 0, timeoutDuration: 3000 });
    if (uri) jwks = set; // only cache once discovery (or the override) answered
    return set;
  }

  // -> {ok: true, auth} | {ok: false, status, error, description}
  async function authenticate(req) {
    const authorization = req.headers.authorization;
    const apiKey = req.headers['x-api-key'];
    if (authorization !== undefined) {
      const m = /^Bearer[ ]+([A-Za-z0-9\-._~+/]+=*)\s*$/i.exec(authorization);
      if (!m) return { ok: false, status: 401, error: 'invalid_token', description: 'Authorization is not a Bearer token' };
      const token = m[1];
      if (!issuer) return { ok: false, status: 401, error: 'invalid_token', description: 'no issuer configured' };
      try {
        const { payload } = await jose.jwtVerify(token, await keySet(), {
          issuer,
          audience,
          algorithms: ['RS256', 'PS256', 'ES256', 'EdDSA'],
          clockTolerance,
        });
        const have = new Set(typeof payload.scope === 'string' ? payload.scope.split(' ') : []);
        const missing = needScopes.filter((s) => !have.has(s));
        if (missing.length) return { ok: false, status: 403, error: 'insufficient_scope', description: `missing scope ${missing.join(' ')}`, scope: needScopes.join(' ') };
        return { ok: true, auth: { kind: 'bearer', token, claims: payload } };
      } catch (e) {
        return { ok: false, status: 401, error: 'invalid_token', description: `${e.code || e.name}: ${e.message}` };
      }
    }
    if (apiKey !== undefined) {
      if (apiKeys.has(apiKey)) return { ok: true, auth: { kind: 'apikey', apiKey } };
      return { ok: false, status: 401, error: 'invalid_token', description: 'X-Api-Key not accepted' };
    }
    return { ok: true, auth: null };
  }

  function challenge(result) {
    let h = `Bearer realm="${REALM}"`;
    if (result.error) h += `, error="${result.error}", error_description="${quote(result.description)}"`;
    if (result.scope) h += `, scope="${quote(result.scope)}"`;
    return h;
  }

  async function handle(req, res, record) {
    const done = (status) => {
      record.status = status;
    };
    if (req.method !== 'POST') {
      req.resume();
      // Still a protected resource: a bad credential is a 401 first.
      const a = await authenticate(req);
      if (!a.ok) {
        done(a.status);
        return sendJson(res, a.status, { error: a.error, error_description: a.description }, { 'www-authenticate': challenge(a) });
      }
      done(405);
      return sendJson(res, 405, { jsonrpc: '2.0', error: { code: -32000, message: 'Method not allowed.' }, id: null }, { allow: 'POST' });
    }
    let parsed;
    try {
      const text = await readRequestBody(req);
      parsed = JSON.parse(text);
    } catch (e) {
      done(e.status || 400);
      return sendJson(res, e.status || 400, { jsonrpc: '2.0', error: { code: -32700, message: `Parse error: ${e.message}` }, id: null });
    }
    const messages = Array.isArray(parsed) ? parsed : [parsed];
    record.rpcMethods = messages.map((m) => m?.method ?? (m && 'result' in m ? '(result)' : '(invalid)'));
    record.tools = messages.filter((m) => m?.method === 'tools/call').map((m) => m.params?.name);
    const needsAuth = messages.some(isProtected);

    const a = await authenticate(req);
    if (!a.ok) {
      done(a.status);
      return sendJson(res, a.status, { error: a.error, error_description: a.description }, { 'www-authenticate': challenge(a) });
    }
    if (needsAuth && !a.auth) {
      done(401);
      return sendJson(
        res,
        401,
        { error: 'unauthorized', error_description: 'this request needs a Bearer token' + (apiKeys.size ? ' or X-Api-Key' : '') },
        { 'www-authenticate': challenge({}) },
      );
    }
    if (a.auth?.kind === 'bearer') {
      // What the SDK's own requireBearerAuth middleware would set.
      req.auth = {
        token: a.auth.token,
        clientId: a.auth.claims.client_id ?? '',
        scopes: typeof a.auth.claims.scope === 'string' ? a.auth.claims.scope.split(' ') : [],
        expiresAt: a.auth.claims.exp,
        extra: { claims: a.auth.claims },
      };
    }

    const server = buildServer(a.auth);
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => {
      transport.close().catch(() => {});
      server.close().catch(() => {});
    });
    await server.connect(transport);
    // A session id on initialize, as a stateful 2025-era server hands out (the server stays
    // stateless: later requests carrying it are served like any other). The gateway keys what
    // the session declared in its initialize by this id.
    if (messages.some((m) => m?.method === 'initialize')) res.setHeader('mcp-session-id', crypto.randomUUID());
    await transport.handleRequest(req, res, parsed);
    done(res.statusCode);
    return undefined;
  }

  const httpServer = http.createServer((req, res) => {
    const record = {
      authorization: req.headers.authorization,
      apiKey: req.headers['x-api-key'],
      status: null,
      httpMethod: req.method,
      url: req.url,
      rpcMethods: [],
      tools: [],
      at: Date.now(),
    };
    if (seen.length < 10000) seen.push(record);
    // The final status once the response is out (JSON mode: one response per POST).
    res.on('finish', () => {
      record.status = res.statusCode;
    });
    handle(req, res, record).catch((err) => {
      record.status = 500;
      sendJson(res, 500, { jsonrpc: '2.0', error: { code: -32603, message: `upstream error: ${err?.message || err}` }, id: null });
    });
  });
  httpServer.keepAliveTimeout = 5000;

  const fixture = await serveFixture(httpServer, { fields: { seen } });
  return { ...fixture, url: `${fixture.origin}/mcp` };
}
