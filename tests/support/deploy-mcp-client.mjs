// The real MCP SDK client (1.x) through the gateway of the locally wired sidecar pod
// (tests/integration/deploy.test.mjs), in a child process so that the test CA is trusted the
// way a user would do it: NODE_EXTRA_CA_CERTS=<ca.pem>.
//
// Usage: NODE_EXTRA_CA_CERTS=ca.pem node deploy-mcp-client.mjs '<json {url, token}>'
// Prints one JSON line: {sessionId, toolNames, echoText} or {error}.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const { url, token } = JSON.parse(process.argv[2]);
const result = {};
const client = new Client({ name: 'mcpgate-deploy-test', version: '1.0.0' }, { capabilities: {} });
const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: { Authorization: `Bearer ${token}` } },
});
try {
  await client.connect(transport);
  result.sessionId = transport.sessionId;
  result.toolNames = (await client.listTools()).tools.map((t) => t.name);
  const echo = await client.callTool({ name: 'echo', arguments: { message: 'hello from the pod layout' } });
  result.echoText = echo.content.filter((c) => c.type === 'text').map((c) => c.text).join('\n');
  await transport.terminateSession();
} catch (e) {
  result.error = `${e?.name}: ${e?.message}${e?.cause ? ` (cause: ${e.cause?.code ?? ''} ${e.cause?.message ?? e.cause})` : ''}`;
} finally {
  await client.close().catch(() => {});
}
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0);
