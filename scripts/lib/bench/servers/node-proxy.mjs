// A Node (express) reverse proxy with bearer JWT middleware in front of the bench upstream:
//   node node-proxy.mjs mcp-auth   mcp-auth's bearerAuth('jwt') (JWKS fetched from jwks_uri)
//   node node-proxy.mjs sdk        the MCP SDK's requireBearerAuth, verifier = jose jwtVerify
//                                  against the local JWKS file
// Both check signature, iss, aud, exp and the route's scope, then stream the request to the
// upstream over a keep-alive agent and the answer back. 127.0.0.1 only.
// Env: PORT, UPSTREAM_PORT, ISSUER, AUDIENCE, JWKS_URI, JWKS_FILE, REQUIRED_SCOPE.
import fs from 'node:fs';
import http from 'node:http';
import express from 'express';

const mode = process.argv[2];
const { PORT, UPSTREAM_PORT, ISSUER, AUDIENCE, JWKS_URI, JWKS_FILE, REQUIRED_SCOPE } = process.env;
const agent = new http.Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 256 });
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te',
                            'trailer', 'upgrade', 'authorization', 'host']);

function forward(req, res) {
  const headers = {};
  for (const [k, v] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(k)) headers[k] = v;
  headers.host = `127.0.0.1:${UPSTREAM_PORT}`;
  const upstream = http.request({ host: '127.0.0.1', port: UPSTREAM_PORT, path: req.originalUrl, method: req.method,
                                  headers, agent }, (answer) => {
    const out = {};
    for (const [k, v] of Object.entries(answer.headers)) if (!HOP_BY_HOP.has(k)) out[k] = v;
    res.writeHead(answer.statusCode, out);
    answer.pipe(res);
  });
  upstream.on('error', () => { if (!res.headersSent) res.writeHead(502); res.end(); });
  req.pipe(upstream);
}

async function authMiddleware() {
  if (mode === 'mcp-auth') {
    const { MCPAuth } = await import('mcp-auth');
    const mcpAuth = new MCPAuth({
      protectedResources: [{
        metadata: {
          resource: AUDIENCE,
          authorizationServers: [{
            type: 'oauth',
            metadata: {
              issuer: ISSUER, jwksUri: JWKS_URI,
              authorizationEndpoint: `${ISSUER}/authorize`, tokenEndpoint: `${ISSUER}/token`,
              responseTypesSupported: ['code'], codeChallengeMethodsSupported: ['S256'],
              registrationEndpoint: `${ISSUER}/register`,
            },
          }],
          scopesSupported: [REQUIRED_SCOPE],
        },
      }],
    });
    return mcpAuth.bearerAuth('jwt', { resource: AUDIENCE, audience: AUDIENCE, requiredScopes: [REQUIRED_SCOPE] });
  }
  if (mode === 'sdk') {
    const { requireBearerAuth } = await import('@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js');
    const { InvalidTokenError } = await import('@modelcontextprotocol/sdk/server/auth/errors.js');
    const { createLocalJWKSet, jwtVerify } = await import('jose');
    const keys = createLocalJWKSet(JSON.parse(fs.readFileSync(JWKS_FILE, 'utf8')));
    const verifier = {
      async verifyAccessToken(token) {
        let payload;
        try {
          ({ payload } = await jwtVerify(token, keys, { issuer: ISSUER, audience: AUDIENCE, algorithms: ['RS256'] }));
        } catch (e) {
          throw new InvalidTokenError(e.message);  // a 401, not the 500 an unknown error becomes
        }
        return {
          token, clientId: String(payload.client_id ?? ''), scopes: String(payload.scope ?? '').split(' ').filter(Boolean),
          expiresAt: payload.exp, resource: new URL(AUDIENCE), extra: { sub: payload.sub },
        };
      },
    };
    return requireBearerAuth({ verifier, requiredScopes: [REQUIRED_SCOPE], expectedResource: new URL(AUDIENCE),
                               resourceMetadataUrl: `${AUDIENCE}/.well-known/oauth-protected-resource` });
  }
  throw new Error(`unknown mode '${mode}' (mcp-auth | sdk)`);
}

const app = express();
app.disable('x-powered-by');
app.disable('etag');
app.post('/mcp', await authMiddleware(), forward);
const server = http.createServer(app);
server.keepAliveTimeout = 300_000;
server.headersTimeout = 310_000;
server.listen(Number(PORT), '127.0.0.1', () => console.log(`${mode} proxy on 127.0.0.1:${PORT}`));
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0));
