// Runs the real SDK client flows against HTTPS URLs in a CHILD process, so the
// test CA can be trusted the way a user would do it: NODE_EXTRA_CA_CERTS=<ca.pem>
// (Node's built-in fetch, which both SDK generations use, reads it at startup).
//
// Usage: NODE_EXTRA_CA_CERTS=ca.pem node tls-client.mjs '<json {everythingUrl, modernUrl}>'
// Prints one JSON line: {sdk1, sdk2Everything, sdk2Modern} or {error}.
import { sdk1StreamableFlow, sdk2StreamableFlow } from './mcp-flows.mjs';

const strip = (o) => {
  const { records, ...rest } = o;
  return {
    ...rest,
    statuses: records.map((r) => `${r.method} ${r.status}`),
    schemes: [...new Set(records.map((r) => new URL(r.url).protocol))],
  };
};

const { everythingUrl, modernUrl } = JSON.parse(process.argv[2]);
const result = {};
try {
  result.sdk1 = strip(await sdk1StreamableFlow(everythingUrl, { long: false }));
  result.sdk2Everything = strip(await sdk2StreamableFlow(everythingUrl, {}));
  result.sdk2Modern = strip(await sdk2StreamableFlow(modernUrl, { pin: '2026-07-28', sum: false }));
} catch (e) {
  result.error = `${e?.name}: ${e?.message}\n${e?.cause ? `cause: ${e.cause?.code ?? ''} ${e.cause?.message ?? e.cause}` : ''}`;
}
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0);
