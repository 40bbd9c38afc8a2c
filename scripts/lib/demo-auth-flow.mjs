// scripts/quickstart's auth demo: what an MCP client does against a protected route,
// step by step, with the local OIDC provider approving the login automatically.
// Usage: node scripts/lib/demo-auth-flow.mjs <route URL>
import { getTokenViaAuthCode } from '../../tests/support/oauth-client.mjs';

const routeUrl = process.argv[2];
const say = (text) => console.log(`  ${text}`);
const rpc = (method, params = {}) => JSON.stringify({ jsonrpc: '2.0', id: 1, method, params });
const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

const unauthenticated = await fetch(routeUrl, { method: 'POST', headers, body: rpc('tools/list') });
say(`1. POST ${routeUrl} without a token -> ${unauthenticated.status}`);
const challenge = unauthenticated.headers.get('www-authenticate');
say(`   WWW-Authenticate: ${challenge}`);
const metadataUrl = /resource_metadata="([^"]+)"/.exec(challenge ?? '')?.[1];
if (!metadataUrl) throw new Error('no resource_metadata in the challenge');

const resource = await (await fetch(metadataUrl)).json();
say(`2. GET ${metadataUrl}`);
say(`   resource=${resource.resource} authorization_servers=${JSON.stringify(resource.authorization_servers)}`);

const issuer = resource.authorization_servers[0];
const scope = ['openid', ...resource.scopes_supported.filter((s) => s !== 'admin')].join(' ');
const tokens = await getTokenViaAuthCode({ issuer, resource: resource.resource, scope });
say(`3. authorization code + PKCE at ${issuer} for resource=${resource.resource}, scope="${scope}"`);
say(`   got a ${tokens.token_type} access token (${tokens.access_token.length} bytes, expires in ${tokens.expires_in} s)`);

const session = await fetch(routeUrl, {
  method: 'POST',
  headers: { ...headers, authorization: `Bearer ${tokens.access_token}` },
  body: rpc('initialize', { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'demo', version: '1' } }),
});
const sessionId = session.headers.get('mcp-session-id');
await session.text();
say(`4. initialize with the token -> ${session.status} (Mcp-Session-Id ${sessionId ? 'received' : 'missing'})`);
const listed = await fetch(routeUrl, {
  method: 'POST',
  headers: { ...headers, authorization: `Bearer ${tokens.access_token}`, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' },
  body: rpc('tools/list'),
});
// The answer is an event stream; its data line carries the JSON-RPC result.
const text = await listed.text();
const data = text.split('\n').filter((line) => line.startsWith('data: {')).map((line) => JSON.parse(line.slice(6)));
const names = data.find((message) => message.result?.tools)?.result.tools.map((tool) => tool.name) ?? [];
say(`5. tools/list -> ${listed.status}: ${names.length} tools visible to this user; get-sum (needs the admin scope) ${names.includes('get-sum') ? 'visible' : 'hidden'}`);
