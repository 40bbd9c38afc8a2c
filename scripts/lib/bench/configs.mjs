// Configuration files of the systems under test. Everything listens on 127.0.0.1 only.
// Same work for every proxy: POST /mcp (mcpgate: /bench, mapped to /mcp) with a bearer
// token, forwarded over keep-alive connections to the upstream nginx.

export const RESULT_BODY = '{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"ok"}]}}';
export const REQUIRED_SCOPE = 'mcp:tools';
export const TOOL_SCOPE = 'echo:call';
export const TOKEN_SCOPE = `${REQUIRED_SCOPE} ${TOOL_SCOPE}`;

function nginxCommon(dir, name, workerConnections) {
  return `worker_processes 1;
daemon off;
pid ${dir}/${name}.pid;
error_log ${dir}/${name}-error.log warn;
events { worker_connections ${workerConnections}; }
http {
  access_log off;
  client_body_temp_path ${dir}/${name}-tmp/body;
  proxy_temp_path ${dir}/${name}-tmp/proxy;
  fastcgi_temp_path ${dir}/${name}-tmp/fastcgi;
  uwsgi_temp_path ${dir}/${name}-tmp/uwsgi;
  scgi_temp_path ${dir}/${name}-tmp/scgi;
  keepalive_requests 1000000000;
  keepalive_timeout 300s;
  client_max_body_size 2m;
  client_body_buffer_size 2m;  # bodies up to the 1 MiB cells stay in memory
`;
}

/**
 * The static upstream (and the authorization server's JWKS on a second port).
 * POST anything -> the fixed tools/call result; POST /tools -> a fixed 500-tool tools/list
 * result (a static file: error_page turns the static module's 405 for POST into the file).
 */
export function upstreamNginx({ dir, port, jwksPort, connections }) {
  return `${nginxCommon(dir, 'upstream', connections)}
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location / {
      default_type application/json;
      return 200 '${RESULT_BODY}';
    }
    location = /tools {
      root ${dir}/static;
      default_type application/json;
      error_page 405 =200 $uri;
    }
  }
  server {
    listen 127.0.0.1:${jwksPort};
    location = /jwks.json { root ${dir}/static; default_type application/json; }
  }
}
`;
}

/** nginx as a plain reverse proxy: no auth, upstream keep-alive. */
export function proxyNginx({ dir, port, upstreamPort }) {
  return `${nginxCommon(dir, 'nginx-proxy', 4096)}
  upstream mcp {
    server 127.0.0.1:${upstreamPort};
    keepalive 128;
    keepalive_requests 1000000000;
    keepalive_timeout 300s;
  }
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location / {
      proxy_pass http://mcp;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`;
}

/**
 * HAProxy 2.6 verifying the JWT: alg RS256, signature (public key PEM), iss, aud, exp (with
 * the date converter) and the route's scope, then forwarding over reused connections.
 */
export function haproxy({ port, upstreamPort, pubPem, issuer, audience }) {
  return `global
  nbthread 1
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 300s
  timeout server 300s
  timeout http-keep-alive 300s
  option http-keep-alive
  http-reuse always
frontend bench
  bind 127.0.0.1:${port}
  http-request set-var(txn.bearer) http_auth_bearer
  http-request set-var(txn.jwt_alg) var(txn.bearer),jwt_header_query('$.alg')
  http-request deny deny_status 401 unless { var(txn.jwt_alg) -m str RS256 }
  http-request deny deny_status 401 unless { var(txn.bearer),jwt_verify(txn.jwt_alg,"${pubPem}") -m int 1 }
  http-request deny deny_status 401 unless { var(txn.bearer),jwt_payload_query('$.iss') -m str "${issuer}" }
  http-request deny deny_status 401 unless { var(txn.bearer),jwt_payload_query('$.aud') -m str "${audience}" }
  http-request set-var(txn.exp) var(txn.bearer),jwt_payload_query('$.exp','int')
  http-request set-var(txn.now) date()
  http-request deny deny_status 401 unless { var(txn.exp),sub(txn.now) -m int gt 0 }
  http-request deny deny_status 403 unless { var(txn.bearer),jwt_payload_query('$.scope') -m reg '(^| )${REQUIRED_SCOPE}( |$)' }
  default_backend upstream
backend upstream
  server up1 127.0.0.1:${upstreamPort}
`;
}

function yamlString(s) {
  return JSON.stringify(s);
}

/**
 * mcpgate: `routes` routes (the first, /bench, is the one measured; the others /r001...),
 * each JWT-protected with a per-tool policy; the JWKS from manual metadata (no discovery
 * fetch). `extraRoutes` is appended as raw YAML route items.
 */
export function mcpgate({ port, adminPort, upstreamPort, issuer, jwksUri, audience, routes = 1,
                          audit = false, workers = 1, maxConnections, extraRoutes = '',
                          name = 'bench', path = '/bench' }) {
  const route = (name, path) => `  - name: ${name}
    path: ${path}
    upstream: "http://127.0.0.1:${upstreamPort}/mcp"
    resource: ${yamlString(audience)}
    auth:
      type: jwt
      server: bench
      audience: ${yamlString(audience)}
      required_scopes: [${REQUIRED_SCOPE}]
    tools:
      echo: { scopes: [${TOOL_SCOPE}] }
`;
  let text = `server:
  listen: "127.0.0.1:${port}"
  workers: ${workers}
${maxConnections ? `  limits: { max_connections: ${maxConnections} }\n` : ''}admin:
  listen: "127.0.0.1:${adminPort}"
log: { level: warn, access_log: false, audit_log: ${audit} }
authorization_servers:
  bench:
    issuer: ${yamlString(issuer)}
    discovery: eager
    metadata:
      issuer: ${yamlString(issuer)}
      jwks_uri: ${yamlString(jwksUri)}
routes:
`;
  text += route(name, path);
  for (let i = 1; i < routes; i++) {
    const id = String(i).padStart(3, '0');
    text += route(`r${id}`, `/r${id}`);
  }
  return text + extraRoutes;
}

/** Two tools/list routes over the 500-tool upstream: filtered and not; every tool has a rule. */
export function toolsListRoutes({ upstreamPort, audience, tools }) {
  const rules = tools.map((t, i) => `      ${t}: { scopes: [${i % 2 === 0 ? TOOL_SCOPE : 'admin:all'}] }`).join('\n');
  const route = (name, filter) => `  - name: ${name}
    path: /${name}
    upstream: "http://127.0.0.1:${upstreamPort}/tools"
    resource: ${yamlString(audience)}
    auth:
      type: jwt
      server: bench
      audience: ${yamlString(audience)}
      required_scopes: [${REQUIRED_SCOPE}]
    filter_tools_list: ${filter}
    tools:
${rules}
`;
  return route('tools-filtered', true) + route('tools-unfiltered', false);
}

/** A route whose upstream holds GET event streams open (servers/sse-upstream.mjs). */
export function sseRoute({ upstreamPort, audience }) {
  return `  - name: streams
    path: /streams
    upstream: "http://127.0.0.1:${upstreamPort}/mcp"
    resource: ${yamlString(audience)}
    auth:
      type: jwt
      server: bench
      audience: ${yamlString(audience)}
      required_scopes: [${REQUIRED_SCOPE}]
`;
}

/**
 * The soak's 2025-era route: server-everything's Streamable HTTP endpoint (sessions, GET
 * streams) behind JWT auth, with tools/list filtered (get-sum needs a scope no token has).
 */
export function everythingRoute({ upstreamPort, audience }) {
  return `  - name: everything
    path: /everything
    upstream: "http://127.0.0.1:${upstreamPort}/mcp"
    resource: ${yamlString(audience)}
    auth:
      type: jwt
      server: bench
      audience: ${yamlString(audience)}
      required_scopes: [${REQUIRED_SCOPE}]
    filter_tools_list: true
    tools:
      echo: { scopes: [${TOOL_SCOPE}] }
      get-sum: { scopes: [admin:all] }
`;
}

/** The 500-tool tools/list result the upstream returns. */
export function toolsListResult(count = 500) {
  const tools = [];
  for (let i = 0; i < count; i++) {
    const name = `tool-${String(i).padStart(3, '0')}`;
    tools.push({
      name,
      description: `Bench tool ${i}: takes a string and returns it.`,
      inputSchema: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] },
    });
  }
  return { names: tools.map((t) => t.name), json: JSON.stringify({ jsonrpc: '2.0', id: 1, result: { tools } }) };
}

/** A tools/call body of exactly `bytes` bytes (the argument text is padded). */
export function toolsCallBody(bytes) {
  const head = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"';
  const tail = '"}}}';
  const pad = Math.max(2, bytes - head.length - tail.length);
  return head + 'x'.repeat(pad) + tail;
}

export const TOOLS_CALL = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}';
export const TOOLS_LIST = '{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}';
