// Plugins through the real gateway: the example plugins (<build>/plugins/libmcpgate_*.so) and the
// test-only ones (<build>/tests/plugins/libtest_*.so, sources in tests/plugins/), loaded by the
// real binary and driven by the real SDK client (@modelcontextprotocol/sdk Client +
// StreamableHTTPClientTransport) against a real SDK upstream (tests/support/plugin-upstream.mjs);
// raw fetch where the exact HTTP status and headers matter.
//
// The plugin files are found next to the binary under test (dirname($MCPGATE_BIN)); a missing one
// fails the test that needs it, with the path, never skips it.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import * as jose from 'jose';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import { startOidcProvider } from '../support/oidc-provider.mjs';
import { getTokenViaAuthCode, parseBearerChallenge } from '../support/oauth-client.mjs';
import { startPluginUpstream } from '../support/plugin-upstream.mjs';
import {
  GATEWAY_BIN,
  TIME_SCALE,
  buildGatewayConfig,
  freePort,
  makeTempDir,
  mcpPost,
  raceTimeout,
  runGatewayCli,
  sleep,
  startGateway,
  startProcess,
  toYaml,
  waitFor,
} from '../support/harness.mjs';

// ---------------------------------------------------------------------------
// Plugin files
// ---------------------------------------------------------------------------
const BUILD_DIR = path.dirname(GATEWAY_BIN);
const examplePath = (name) => path.join(BUILD_DIR, 'plugins', `libmcpgate_${name}.so`);
const testPluginPath = (name) => path.join(BUILD_DIR, 'tests', 'plugins', `libtest_${name}.so`);

/** The path, after checking the file is there (a clear failure, never a silent skip). */
function built(file) {
  assert.ok(
    fs.existsSync(file),
    `plugin not built: ${file} does not exist. Build every target of the gateway's build dir ` +
      `(cmake --build ${BUILD_DIR}); plugins are looked up next to MCPGATE_BIN=${GATEWAY_BIN}`,
  );
  return file;
}
const example = (name) => built(examplePath(name));
const testPlugin = (name) => built(testPluginPath(name));

// ---------------------------------------------------------------------------
// API keys: the file holds only SHA-256 hashes
// ---------------------------------------------------------------------------
const sha256 = (s) => crypto.createHash('sha256').update(s).digest('hex');
const newKey = (label) => `mk_${label}_${crypto.randomBytes(24).toString('base64url')}`;

/** Write a keys file: one `<sha256> <subject> [attrs]` line per entry; `extra` lines appended verbatim. */
function writeKeys(file, entries, extra = []) {
  const lines = ['# mcpgate apikey test keys: sha256(key) subject attributes'];
  for (const e of entries) lines.push(`${sha256(e.key)} ${e.subject}${e.attrs ? ` ${e.attrs}` : ''}`);
  fs.writeFileSync(file, [...lines, ...extra].join('\n') + '\n');
}

const bearer = (key) => ({ authorization: `Bearer ${key}` });
const toolsList = (id = 1) => ({ jsonrpc: '2.0', id, method: 'tools/list' });
const toolCall = (name, args = {}, id = 2) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });

async function connectClient(url, headers = {}) {
  const client = new Client({ name: 'mcpgate-plugins-test', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } });
  await client.connect(transport);
  return client;
}

/** The headers the upstream received for one whoami-headers call made through `client`. */
async function headersSeenVia(client) {
  const r = await client.callTool({ name: 'whoami-headers', arguments: {} });
  assert.ok(!r.isError, JSON.stringify(r));
  return JSON.parse(r.content[0].text);
}

/** The text a caller can read about a refusal: the challenge and the body. */
const refusalText = (res) => `${res.headers.get('www-authenticate') ?? ''}\n${res.text}`;

function assertPolicyDenied(res, id, reasonText) {
  assert.equal(res.status, 403, res.text);
  assert.ok(res.json, `a JSON-RPC body: ${res.text}`);
  assert.equal(res.json.id, id, 'the request id is echoed');
  assert.equal(res.json.error?.data?.reason, 'policy_denied', res.text);
  assert.ok(
    String(res.json.error?.message ?? '').includes(reasonText),
    `error.message carries the plugin's reason "${reasonText}": ${res.text}`,
  );
}

// ===========================================================================
// 1. apikey: authentication by a plugin
// ===========================================================================
describe('apikey plugin: authentication', () => {
  let up;
  let gw;
  let notesUrl;
  let keysFile;
  const keys = {
    reader: newKey('reader'),
    noscope: newKey('noscope'),
    admin: newKey('admin'),
    dave: newKey('dave'),
    erin: newKey('erin'),
  };
  const entries = () => [
    { key: keys.reader, subject: 'alice', attrs: 'scopes=read:notes,write:notes client_id=cli-alice tenant=acme' },
    { key: keys.noscope, subject: 'bob', attrs: 'scopes=write:notes' },
    { key: keys.admin, subject: 'carol', attrs: 'scopes=read:notes,admin' },
  ];

  before(async () => {
    const apikey = example('apikey');
    up = await startPluginUpstream();
    keysFile = path.join(makeTempDir('itest-keys-'), 'keys.txt');
    writeKeys(keysFile, [...entries(), { key: keys.dave, subject: 'dave', attrs: 'scopes=read:notes' }]);
    const port = await freePort();
    notesUrl = `http://127.0.0.1:${port}/notes`;
    gw = await startGateway({
      port,
      routes: [
        {
          name: 'notes',
          path: '/notes',
          upstream: up.url,
          auth: { type: 'plugin', plugin: 'keys', required_scopes: ['read:notes'], scopes_supported: ['read:notes', 'write:notes', 'admin'] },
          tools: { delete_note: { scopes: ['admin'] } },
        },
      ],
      extraYaml: toYaml({ plugins: [{ name: 'keys', path: apikey, config: { keys_file: keysFile } }] }),
    });
  });

  after(async () => {
    try {
      await gw?.stopCleanly();
    } finally {
      await up?.close();
    }
  });

  it('a good key: the real SDK client lists tools and calls one; the key never reaches the upstream or the logs', async () => {
    const client = await connectClient(notesUrl, { Authorization: `Bearer ${keys.reader}` });
    try {
      const { tools } = await client.listTools();
      assert.deepEqual(tools.map((t) => t.name).sort(), ['create_note', 'delete_note', 'read_file', 'whoami-headers']);
      const r = await client.callTool({ name: 'create_note', arguments: { tenant: 'acme', text: 'hello' } });
      assert.equal(JSON.parse(r.content[0].text).tenant, 'acme');
      const seen = await headersSeenVia(client);
      assert.equal(seen.authorization, undefined, 'the caller\'s API key is not forwarded');
      assert.ok(!JSON.stringify(up.seen).includes(keys.reader), 'the key appears nowhere in what the upstream saw');
    } finally {
      await client.close();
    }
    assert.ok(!gw.logs().includes(keys.reader), 'the key never appears in the gateway\'s logs');
  });

  it('an unknown key: 401 invalid_token with the plugin\'s reason, nothing forwarded', async () => {
    const before = up.seen.length;
    const res = await mcpPost(notesUrl, toolsList(7), { headers: bearer(newKey('unknown')) });
    assert.equal(res.status, 401, res.text);
    const challenge = parseBearerChallenge(res.headers.get('www-authenticate'));
    assert.equal(challenge.error, 'invalid_token');
    assert.equal(challenge.resource_metadata, `${gw.url}/.well-known/oauth-protected-resource/notes`);
    assert.ok(refusalText(res).includes('unknown API key'), `the plugin's reason reaches the caller: ${refusalText(res)}`);
    assert.equal(res.json?.id, 7, res.text);
    assert.equal(up.seen.length, before, 'nothing reached the upstream');
    // The SDK client gives up on a 401 it cannot answer (no auth provider).
    const client = new Client({ name: 'mcpgate-plugins-test', version: '1.0.0' });
    await assert.rejects(
      client.connect(new StreamableHTTPClientTransport(new URL(notesUrl), { requestInit: { headers: bearer('not-a-key') } })),
      (e) => e.code === 401,
    );
    await client.close().catch(() => {});
  });

  it('no Authorization header: 401 with resource_metadata and no error code; the metadata document exists', async () => {
    const res = await mcpPost(notesUrl, toolsList(8));
    assert.equal(res.status, 401, res.text);
    const challenge = parseBearerChallenge(res.headers.get('www-authenticate'));
    assert.equal(challenge.resource_metadata, `${gw.url}/.well-known/oauth-protected-resource/notes`);
    assert.equal(challenge.error, undefined, 'no error code when no token was sent (RFC 6750 3.1)');
    assert.equal(res.json?.id, 8, res.text);
    const meta = await fetch(challenge.resource_metadata);
    assert.equal(meta.status, 200);
    const doc = await meta.json();
    assert.equal(doc.resource, notesUrl);
    assert.ok(doc.scopes_supported?.includes('read:notes'), JSON.stringify(doc));
  });

  it('scopes from the plugin are checked like JWT scopes: required_scopes and tools.<name>.scopes give 403 insufficient_scope', async () => {
    const before = up.seen.length;
    const res = await mcpPost(notesUrl, toolsList(9), { headers: bearer(keys.noscope) });
    assert.equal(res.status, 403, res.text);
    const challenge = parseBearerChallenge(res.headers.get('www-authenticate'));
    assert.equal(challenge.error, 'insufficient_scope');
    assert.ok(challenge.scope.split(' ').includes('read:notes'), challenge.scope);
    assert.equal(res.json?.id, 9);

    const del = await mcpPost(notesUrl, toolCall('delete_note', { id: 'n-1' }, 10), { headers: bearer(keys.reader) });
    assert.equal(del.status, 403, del.text);
    const tool = parseBearerChallenge(del.headers.get('www-authenticate'));
    assert.equal(tool.error, 'insufficient_scope');
    assert.ok(tool.scope.split(' ').includes('admin'), tool.scope);
    assert.equal(del.json?.id, 10);
    assert.equal(up.seen.length, before, 'refused calls never reach the upstream');

    const ok = await mcpPost(notesUrl, toolCall('delete_note', { id: 'n-1' }, 11), { headers: bearer(keys.admin) });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.messages[0]?.result?.content?.[0]?.text, 'deleted n-1');
  });

  it('the keys file holds hashes only, no key in plain text', () => {
    const text = fs.readFileSync(keysFile, 'utf8');
    for (const [name, key] of Object.entries(keys)) assert.ok(!text.includes(key), `key ${name} is not in the file`);
    for (const line of text.split('\n').filter((l) => l && !l.startsWith('#'))) assert.match(line, /^[0-9a-f]{64} \S+/);
  });

  it('SIGHUP re-runs init: a new key works, a removed key is refused; a broken keys file keeps the old keys', async () => {
    assert.equal((await mcpPost(notesUrl, toolsList(20), { headers: bearer(keys.dave) })).status, 200, 'dave works before');
    assert.equal((await mcpPost(notesUrl, toolsList(21), { headers: bearer(keys.erin) })).status, 401, 'erin unknown before');

    // dave out, erin in.
    writeKeys(keysFile, [...entries(), { key: keys.erin, subject: 'erin', attrs: 'scopes=read:notes' }]);
    gw.kill('SIGHUP');
    await waitFor(async () => (await mcpPost(notesUrl, toolsList(22), { headers: bearer(keys.erin) })).status === 200, {
      timeoutMs: 8000 * TIME_SCALE,
      what: 'the key added to the keys file to work after SIGHUP',
    });
    const dave = await mcpPost(notesUrl, toolsList(23), { headers: bearer(keys.dave) });
    assert.equal(dave.status, 401, `a removed key is refused after the reload: ${dave.text}`);
    assert.equal((await mcpPost(notesUrl, toolsList(24), { headers: bearer(keys.reader) })).status, 200, 'kept keys still work');

    // A broken file (a line that is not a hash; erin left out): the reload is refused, erin keeps working.
    const logsBefore = gw.jsonLogs().length;
    const stderrBefore = gw.proc.stderr().length;
    writeKeys(keysFile, entries(), ['not-a-hash mallory scopes=read:notes']);
    gw.kill('SIGHUP');
    const complaint = await waitFor(
      () => {
        const json = gw
          .jsonLogs()
          .slice(logsBefore)
          .find((l) => /^(warn|warning|error|critical)$/i.test(String(l.level)) && JSON.stringify(l).includes('expected 64 hex'));
        if (json) return JSON.stringify(json);
        const err = gw.proc.stderr().slice(stderrBefore);
        return err.includes('expected 64 hex') ? err : false;
      },
      { timeoutMs: 8000 * TIME_SCALE, what: 'a log line rejecting the reload with the plugin\'s message' },
    );
    assert.ok(complaint);
    await sleep(200);
    assert.ok(gw.proc.alive(), 'the gateway keeps running');
    const erin = await mcpPost(notesUrl, toolsList(25), { headers: bearer(keys.erin) });
    assert.equal(erin.status, 200, `the last good keys stay live after a refused reload: ${erin.text}`);
    assert.equal((await mcpPost(notesUrl, toolsList(26), { headers: bearer(keys.reader) })).status, 200);
    const ready = await fetch(`${gw.adminUrl}/readyz`);
    assert.equal(ready.status, 200);
    await ready.arrayBuffer();

    // Restore a valid file so nothing later trips on it.
    writeKeys(keysFile, [...entries(), { key: keys.erin, subject: 'erin', attrs: 'scopes=read:notes' }]);
  });
});

// ===========================================================================
// 2. claims-headers: identity headers for the upstream
// ===========================================================================
describe('claims-headers plugin: headers from the identity', () => {
  let up;
  let gw;
  let url;
  const keys = { acme: newKey('acme'), plain: newKey('plain'), dirty: newKey('dirty') };
  const longValue = 'x'.repeat(400);

  before(async () => {
    const [apikey, headers] = [example('apikey'), example('claims_headers')];
    up = await startPluginUpstream();
    const keysFile = path.join(makeTempDir('itest-keys-'), 'keys.txt');
    writeKeys(keysFile, [
      { key: keys.acme, subject: 'alice', attrs: 'scopes=read:notes tenant=acme' },
      { key: keys.plain, subject: 'bob', attrs: 'scopes=read:notes' },
      // Control characters inside a claim value (not whitespace: the file splits on space and tab).
      { key: keys.dirty, subject: 'eve', attrs: `scopes=read:notes tenant=ac\x01m\x1b\x7fe\r long=${longValue}` },
    ]);
    const port = await freePort();
    url = `http://127.0.0.1:${port}/notes`;
    gw = await startGateway({
      port,
      routes: [
        {
          name: 'notes',
          path: '/notes',
          upstream: up.url,
          auth: { type: 'plugin', plugin: 'keys', required_scopes: ['read:notes'] },
          request_plugins: ['headers'],
        },
      ],
      extraYaml: toYaml({
        plugins: [
          { name: 'keys', path: apikey, config: { keys_file: keysFile } },
          { name: 'headers', path: headers, config: { headers: { 'X-User-Id': 'sub', 'X-Tenant': 'tenant', 'X-Long': 'long' } } },
        ],
      }),
    });
  });

  after(async () => {
    try {
      await gw?.stopCleanly();
    } finally {
      await up?.close();
    }
  });

  it('the upstream sees X-User-Id and X-Tenant from the identity on every request; client-sent values are replaced', async () => {
    const from = up.seen.length;
    const client = await connectClient(url, { Authorization: `Bearer ${keys.acme}`, 'X-Tenant': 'globex', 'X-User-Id': 'mallory' });
    try {
      const seen = await headersSeenVia(client);
      assert.equal(seen['x-user-id'], 'alice');
      assert.equal(seen['x-tenant'], 'acme');
      await client.listTools();
    } finally {
      await client.close();
    }
    const records = up.seen.slice(from);
    assert.ok(records.length >= 3, `initialize, initialized, calls: saw ${records.length}`);
    for (const r of records) {
      assert.equal(r.headers['x-tenant'], 'acme', `${r.httpMethod} ${r.rpcMethods.join(',')}`);
      assert.equal(r.headers['x-user-id'], 'alice', `${r.httpMethod} ${r.rpcMethods.join(',')}`);
      assert.equal(r.headers['x-long'], undefined, 'a claim the caller lacks gives no header');
    }
  });

  it('a claim the caller lacks: the client-sent header is removed, not passed through', async () => {
    const res = await mcpPost(url, toolCall('whoami-headers', {}, 31), {
      headers: { ...bearer(keys.plain), 'x-tenant': 'globex', 'x-long': 'client-made' },
    });
    assert.equal(res.status, 200, res.text);
    const seen = JSON.parse(res.messages[0].result.content[0].text);
    assert.equal(seen['x-user-id'], 'bob');
    assert.equal(seen['x-tenant'], undefined, 'client-sent X-Tenant removed');
    assert.equal(seen['x-long'], undefined, 'client-sent X-Long removed');
  });

  it('a claim with control characters arrives sanitised; a long one is capped at 256 bytes', async () => {
    const res = await mcpPost(url, toolCall('whoami-headers', {}, 32), { headers: bearer(keys.dirty) });
    assert.equal(res.status, 200, res.text);
    const seen = JSON.parse(res.messages[0].result.content[0].text);
    assert.equal(seen['x-user-id'], 'eve');
    assert.equal(seen['x-tenant'], 'acme', 'control characters dropped');
    assert.equal(seen['x-long'], 'x'.repeat(256), 'value capped at 256 bytes');
  });
});

// ===========================================================================
// 3. tool-guard: argument rules against the caller's claims
// ===========================================================================
describe('tool-guard plugin: per-call policy', () => {
  let up;
  let gw;
  let url;
  const keys = { acme: newKey('acme'), noTenant: newKey('notenant') };

  before(async () => {
    const [apikey, guard] = [example('apikey'), example('tool_guard')];
    up = await startPluginUpstream();
    const keysFile = path.join(makeTempDir('itest-keys-'), 'keys.txt');
    writeKeys(keysFile, [
      { key: keys.acme, subject: 'alice', attrs: 'scopes=read:notes tenant=acme' },
      { key: keys.noTenant, subject: 'bob', attrs: 'scopes=read:notes' },
    ]);
    const port = await freePort();
    url = `http://127.0.0.1:${port}/notes`;
    gw = await startGateway({
      port,
      routes: [
        {
          name: 'notes',
          path: '/notes',
          upstream: up.url,
          auth: { type: 'plugin', plugin: 'keys', required_scopes: ['read:notes'] },
          policy_plugins: ['guard'],
        },
      ],
      extraYaml: toYaml({
        plugins: [
          { name: 'keys', path: apikey, config: { keys_file: keysFile } },
          {
            name: 'guard',
            path: guard,
            config: {
              rules: [
                { tool: 'create_note', argument: 'tenant', equals_claim: 'tenant' },
                { tool: '*', argument: 'id', deny_prefix: 'system-' },
                { tool: '*', argument: 'path', deny_values: ['/etc/passwd'] },
              ],
            },
          },
        ],
      }),
    });
  });

  after(async () => {
    try {
      await gw?.stopCleanly();
    } finally {
      await up?.close();
    }
  });

  const upstreamSaw = (pred) => up.toolCalls().some(pred);

  it('create_note for the caller\'s own tenant is allowed and reaches the upstream (real SDK client)', async () => {
    const client = await connectClient(url, { Authorization: `Bearer ${keys.acme}` });
    try {
      const r = await client.callTool({ name: 'create_note', arguments: { tenant: 'acme', text: 'mine' } });
      const note = JSON.parse(r.content[0].text);
      assert.equal(note.tenant, 'acme');
      assert.equal(note.text, 'mine');
      assert.ok(upstreamSaw((c) => c.name === 'create_note' && c.arguments?.text === 'mine'));
      // Other methods pass the policy untouched.
      assert.ok((await client.listTools()).tools.length > 0);
    } finally {
      await client.close();
    }
  });

  it('create_note for another tenant: 403 policy_denied with the reason; the upstream never saw it', async () => {
    const res = await mcpPost(url, toolCall('create_note', { tenant: 'globex', text: 'theirs' }, 41), { headers: bearer(keys.acme) });
    assertPolicyDenied(res, 41, "argument 'tenant' must equal your 'tenant' claim");
    // The SDK client sees the refusal as an error too.
    const client = await connectClient(url, { Authorization: `Bearer ${keys.acme}` });
    try {
      await assert.rejects(client.callTool({ name: 'create_note', arguments: { tenant: 'globex', text: 'theirs-sdk' } }), (e) => e.code === 403);
    } finally {
      await client.close();
    }
    assert.ok(!upstreamSaw((c) => c.arguments?.tenant === 'globex'), 'no globex note reached the upstream');
  });

  it('equals_claim: a missing argument, or a caller without the claim, is denied', async () => {
    const missing = await mcpPost(url, toolCall('create_note', { text: 'no tenant' }, 42), { headers: bearer(keys.acme) });
    assertPolicyDenied(missing, 42, "argument 'tenant' is required");
    const noClaim = await mcpPost(url, toolCall('create_note', { tenant: 'acme', text: 'claimless' }, 43), { headers: bearer(keys.noTenant) });
    assertPolicyDenied(noClaim, 43, "no 'tenant' claim");
    assert.ok(!upstreamSaw((c) => ['no tenant', 'claimless'].includes(c.arguments?.text)));
  });

  it('deny_prefix and deny_values: system-* ids and /etc/passwd are refused, others pass', async () => {
    const sys = await mcpPost(url, toolCall('delete_note', { id: 'system-root' }, 44), { headers: bearer(keys.acme) });
    assertPolicyDenied(sys, 44, "argument 'id' has a denied prefix");
    const ok = await mcpPost(url, toolCall('delete_note', { id: 'n-7' }, 45), { headers: bearer(keys.acme) });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.messages[0]?.result?.content?.[0]?.text, 'deleted n-7');
    const passwd = await mcpPost(url, toolCall('read_file', { path: '/etc/passwd' }, 46), { headers: bearer(keys.acme) });
    assertPolicyDenied(passwd, 46, "argument 'path' has a denied value");
    const other = await mcpPost(url, toolCall('read_file', { path: '/tmp/notes.txt' }, 47), { headers: bearer(keys.acme) });
    assert.equal(other.status, 200, other.text);
    assert.ok(!upstreamSaw((c) => c.arguments?.id === 'system-root' || c.arguments?.path === '/etc/passwd'));
  });

  it('a batch: authorize runs per message; a denied message never reaches the upstream', async () => {
    const res = await mcpPost(url, [toolCall('delete_note', { id: 'n-8' }, 48), toolCall('delete_note', { id: 'system-batch' }, 49)], {
      headers: bearer(keys.acme),
    });
    assert.equal(res.status, 403, res.text);
    assert.ok(!upstreamSaw((c) => c.arguments?.id === 'system-batch'), 'the denied element was not forwarded');
  });
});

// ===========================================================================
// 4. The asynchronous test plugin: answers from its own thread
// ===========================================================================
describe('asynchronous plugin hooks (tests/plugins/async.c)', () => {
  let up;
  let gw;
  let url;
  const good = bearer('async-good');

  before(async () => {
    const asyncPlugin = testPlugin('async');
    up = await startPluginUpstream();
    const port = await freePort();
    url = `http://127.0.0.1:${port}/slow`;
    gw = await startGateway({
      port,
      routes: [
        {
          name: 'slow',
          path: '/slow',
          upstream: up.url,
          auth: { type: 'plugin', plugin: 'slowpoke', required_scopes: ['read'] },
          policy_plugins: ['slowpoke'],
        },
      ],
      extraYaml: toYaml({ plugins: [{ name: 'slowpoke', path: asyncPlugin }] }),
    });
  });

  after(async () => {
    try {
      await gw?.stopCleanly();
    } finally {
      await up?.close();
    }
  });

  it('the plugin\'s log line reaches the gateway log, tagged with its name', () => {
    const line = gw.logs().split('\n').find((l) => l.includes('test-async ready'));
    assert.ok(line, 'host->log from init is in the gateway output');
    assert.ok(line.includes('slowpoke'), `tagged with the plugin's config name: ${line}`);
  });

  it('async-good: the real SDK client is let through (verify and authorize both answered later)', async () => {
    const client = await connectClient(url, { Authorization: 'Bearer async-good' });
    try {
      const { tools } = await client.listTools();
      assert.ok(tools.some((t) => t.name === 'whoami-headers'));
      const seen = await headersSeenVia(client);
      assert.equal(seen.authorization, undefined);
    } finally {
      await client.close();
    }
  });

  it('an unknown token: 401 invalid_token with the plugin\'s reason', async () => {
    const res = await mcpPost(url, toolsList(51), { headers: bearer('who-knows') });
    assert.equal(res.status, 401, res.text);
    assert.equal(parseBearerChallenge(res.headers.get('www-authenticate')).error, 'invalid_token');
    assert.ok(refusalText(res).includes('async: unknown token'), refusalText(res));
    assert.equal(res.json?.id, 51);
  });

  it('verify ERROR: 503 with Retry-After and the plugin\'s reason, never 401', async () => {
    const before = up.seen.length;
    const res = await mcpPost(url, toolsList(52), { headers: bearer('async-error') });
    assert.equal(res.status, 503, res.text);
    assert.ok(Number(res.headers.get('retry-after')) >= 1, `Retry-After: ${res.headers.get('retry-after')}`);
    assert.ok(res.text.includes('async: backend down'), res.text);
    assert.equal(res.json?.id, 52);
    assert.equal(up.seen.length, before);
  });

  it('authorize DENY: 403 policy_denied for the forbidden tool', async () => {
    const res = await mcpPost(url, toolCall('forbidden', {}, 53), { headers: good });
    assertPolicyDenied(res, 53, 'async: forbidden tool');
    assert.ok(!up.toolCalls().some((c) => c.name === 'forbidden'));
  });

  it('authorize DENY with step_up_scopes: 403 insufficient_scope naming them', async () => {
    const res = await mcpPost(url, toolCall('needs-admin', {}, 54), { headers: good });
    assert.equal(res.status, 403, res.text);
    const challenge = parseBearerChallenge(res.headers.get('www-authenticate'));
    assert.equal(challenge.error, 'insufficient_scope');
    assert.ok(challenge.scope?.split(' ').includes('admin'), `scope="${challenge.scope}"`);
    assert.equal(res.json?.id, 54);
    assert.ok(!up.toolCalls().some((c) => c.name === 'needs-admin'));
  });

  it('20 concurrent calls of every kind are each answered with their own result', async () => {
    const kinds = [
      { headers: good, body: (id) => toolCall('whoami-headers', {}, id), status: 200 },
      { headers: bearer('nobody'), body: (id) => toolsList(id), status: 401, text: 'async: unknown token' },
      { headers: bearer('async-error'), body: (id) => toolsList(id), status: 503, text: 'async: backend down' },
      { headers: good, body: (id) => toolCall('forbidden', {}, id), status: 403, text: 'async: forbidden tool' },
      { headers: good, body: (id) => toolCall('needs-admin', {}, id), status: 403, challenge: 'insufficient_scope' },
    ];
    const started = Date.now();
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => {
        const k = kinds[i % kinds.length];
        const id = 1000 + i;
        return mcpPost(url, k.body(id), { headers: k.headers, timeoutMs: 15000 * TIME_SCALE }).then((res) => ({ res, k, id }));
      }),
    );
    for (const { res, k, id } of results) {
      assert.equal(res.status, k.status, `call ${id}: ${res.text}`);
      const msg = res.json ?? res.messages[0];
      assert.equal(msg?.id, id, `call ${id} answered with its own id: ${res.text}`);
      if (k.text) assert.ok(refusalText(res).includes(k.text), `call ${id}: ${refusalText(res)}`);
      if (k.challenge) assert.equal(parseBearerChallenge(res.headers.get('www-authenticate')).error, k.challenge);
      if (k.status === 200) assert.ok(msg.result?.content?.[0]?.text, res.text);
    }
    // ~20 ms per hook, two hooks per allowed call: concurrent calls must not be serialised (20 x 40 ms).
    assert.ok(Date.now() - started < 5000 * TIME_SCALE, `took ${Date.now() - started} ms`);
  });

  it('a client that goes away while its hook is pending: the late completion is harmless', async () => {
    for (let i = 0; i < 10; i++) {
      const ac = new AbortController();
      const p = fetch(url, {
        method: 'POST',
        headers: { ...good, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: JSON.stringify(toolCall('whoami-headers', {}, 70 + i)),
        signal: ac.signal,
      }).then((r) => r.arrayBuffer(), () => null);
      await sleep(i % 2 ? 2 : 25); // gone during verify_token, or during authorize
      ac.abort();
      await p.catch(() => {});
    }
    await sleep(200); // every late completion has arrived
    assert.ok(gw.proc.alive(), 'the gateway survived');
    const res = await mcpPost(url, toolCall('whoami-headers', {}, 80), { headers: good });
    assert.equal(res.status, 200, res.text);
  });

  it('SIGHUP while calls are pending: every call is answered, the new instance serves afterwards', async () => {
    const logsBefore = gw.logs().split('test-async ready').length;
    const pending = Array.from({ length: 10 }, (_, i) => mcpPost(url, toolCall('whoami-headers', {}, 90 + i), { headers: good, timeoutMs: 15000 * TIME_SCALE }));
    await sleep(5);
    gw.kill('SIGHUP');
    const results = await Promise.all(pending);
    results.forEach((res, i) => {
      assert.equal(res.status, 200, res.text);
      assert.equal((res.json ?? res.messages[0])?.id, 90 + i);
    });
    await waitFor(() => gw.logs().split('test-async ready').length > logsBefore, {
      timeoutMs: 8000 * TIME_SCALE,
      what: 'init to run again after SIGHUP',
    });
    const after = await mcpPost(url, toolCall('forbidden', {}, 100), { headers: good });
    assertPolicyDenied(after, 100, 'async: forbidden tool');
    assert.ok(gw.proc.alive());
  });
});

// ===========================================================================
// 4b. JWT authentication with plugins for policy and upstream headers
// ===========================================================================
describe('plugins on a JWT route', () => {
  let idp;
  let up;
  let gw;
  let url;

  before(async () => {
    const [headers, guard] = [example('claims_headers'), example('tool_guard')];
    [idp, up] = await Promise.all([startOidcProvider(), startPluginUpstream()]);
    const port = await freePort();
    url = `http://127.0.0.1:${port}/notes`;
    gw = await startGateway({
      port,
      routes: [
        {
          name: 'notes',
          path: '/notes',
          upstream: up.url,
          auth: { type: 'jwt', server: 'idp', required_scopes: ['read:notes'] },
          request_plugins: ['headers'],
          policy_plugins: ['guard'],
        },
      ],
      extraYaml: toYaml({
        authorization_servers: { idp: { issuer: idp.issuer, type: 'oidc' } },
        plugins: [
          { name: 'headers', path: headers, config: { headers: { 'X-User-Id': 'sub', 'X-Client': 'client_id' } } },
          { name: 'guard', path: guard, config: { rules: [{ tool: '*', argument: 'id', deny_prefix: 'system-' }] } },
        ],
      }),
    });
  });

  after(async () => {
    try {
      await gw?.stopCleanly();
    } finally {
      await Promise.all([idp?.stop(), up?.close()]);
    }
  });

  it('claims_json is the token payload: the upstream gets sub and client_id; the policy plugin decides per call', async () => {
    const token = (await getTokenViaAuthCode({ issuer: idp.issuer, resource: url, scope: 'openid read:notes' })).access_token;
    const claims = jose.decodeJwt(token);
    const client = await connectClient(url, { Authorization: `Bearer ${token}`, 'X-User-Id': 'mallory' });
    try {
      const seen = await headersSeenVia(client);
      assert.equal(seen['x-user-id'], claims.sub);
      assert.equal(seen['x-client'], claims.client_id);
      const r = await client.callTool({ name: 'delete_note', arguments: { id: 'n-1' } });
      assert.equal(r.content[0].text, 'deleted n-1');
    } finally {
      await client.close();
    }
    const denied = await mcpPost(url, toolCall('delete_note', { id: 'system-x' }, 61), { headers: bearer(token) });
    assertPolicyDenied(denied, 61, "argument 'id' has a denied prefix");
    assert.ok(!up.toolCalls().some((c) => c.arguments?.id === 'system-x'));
  });
});

// ===========================================================================
// 5. Load errors: `mcpgate check` and `mcpgate run` refuse, naming the plugin and the problem
// ===========================================================================
describe('plugin load errors', () => {
  let dir;
  let keysFile;

  before(() => {
    dir = makeTempDir('itest-plugin-load-');
    keysFile = path.join(dir, 'keys.txt');
    writeKeys(keysFile, [{ key: newKey('k'), subject: 'k', attrs: 'scopes=read' }]);
  });

  let n = 0;
  async function writeConfig({ plugins, route = {} }) {
    const cfg = buildGatewayConfig({
      port: await freePort(),
      adminPort: await freePort(),
      routes: [{ name: 'r', path: '/r', upstream: 'http://127.0.0.1:9/mcp', ...route }],
    });
    const file = path.join(dir, `config-${++n}.yaml`);
    fs.writeFileSync(file, toYaml({ ...cfg, plugins }));
    return file;
  }

  const keysAuth = { type: 'plugin', plugin: 'keys' };
  // plugins() runs inside the test, so a missing build output fails that test with its path.
  const cases = [
    {
      title: 'a plugin file that does not exist',
      plugins: () => [{ name: 'ghost', path: '/nonexistent/mcpgate/libghost.so' }],
      expect: ["cannot load plugin 'ghost' from '/nonexistent/mcpgate/libghost.so'"],
    },
    {
      title: 'a shared object without mcpgate_plugin_entry',
      plugins: () => [{ name: 'noentry', path: testPlugin('no_entry') }],
      expect: ["'noentry'", 'has no mcpgate_plugin_entry'],
    },
    {
      title: 'a plugin built for another ABI',
      plugins: () => [{ name: 'oldabi', path: testPlugin('wrong_abi') }],
      expect: ["'oldabi'", 'built for plugin ABI 999, this gateway speaks 1'],
    },
    {
      title: 'an init that fails',
      plugins: () => [{ name: 'db', path: testPlugin('init_fails') }],
      expect: ["'db'", "database 'x' unreachable"],
    },
    {
      title: 'an example plugin whose init refuses its config',
      plugins: () => [{ name: 'keys', path: example('apikey'), config: { keys_file: path.join(dir, 'no-such-keys.txt') } }],
      expect: ["'keys'", 'no-such-keys.txt'],
    },
    {
      title: 'auth through a plugin without verify_token',
      plugins: () => [{ name: 'nover', path: testPlugin('no_verify') }],
      route: { auth: { type: 'plugin', plugin: 'nover' } },
      expect: ["plugin 'nover' has no verify_token hook"],
    },
    {
      title: 'a policy plugin without authorize',
      plugins: () => [{ name: 'keys', path: example('apikey'), config: { keys_file: keysFile } }],
      route: { auth: keysAuth, policy_plugins: ['keys'] },
      expect: ["plugin 'keys' has no authorize hook"],
    },
    {
      title: 'a request plugin without on_upstream_request',
      plugins: () => [{ name: 'keys', path: example('apikey'), config: { keys_file: keysFile } }],
      route: { auth: keysAuth, request_plugins: ['keys'] },
      expect: ["plugin 'keys' has no on_upstream_request hook"],
    },
    {
      title: 'auth naming an unknown plugin',
      plugins: () => [{ name: 'keys', path: example('apikey'), config: { keys_file: keysFile } }],
      route: { auth: { type: 'plugin', plugin: 'nosuchplugin' } },
      expect: ['nosuchplugin'],
    },
    {
      title: 'policy_plugins naming an unknown plugin',
      plugins: () => [{ name: 'keys', path: example('apikey'), config: { keys_file: keysFile } }],
      route: { auth: keysAuth, policy_plugins: ['nosuchguard'] },
      expect: ['nosuchguard'],
    },
    {
      title: 'request_plugins naming an unknown plugin',
      plugins: () => [{ name: 'keys', path: example('apikey'), config: { keys_file: keysFile } }],
      route: { auth: keysAuth, request_plugins: ['nosuchheaders'] },
      expect: ['nosuchheaders'],
    },
    {
      title: 'an init that crashes (SIGSEGV)',
      plugins: () => [{ name: 'crashy', path: testPlugin('init_crashes') }],
      expect: ["plugin 'crashy' crashed in init"],
      crash: true,
    },
  ];

  const describeExit = (r) => `status ${r.status ?? r.code} signal ${r.signal}`;

  for (const c of cases) {
    it(`${c.title}: \`mcpgate check\` exits ${c.crash ? 'non-zero' : '1'} naming the plugin and the problem`, async () => {
      const file = await writeConfig({ plugins: c.plugins(), route: c.route });
      const r = runGatewayCli(['check', '--config', file]);
      assert.equal(r.error, undefined, `check ran to completion: ${r.error}`);
      if (c.crash) assert.ok(r.status !== 0, `check must fail: ${describeExit(r)}`);
      else assert.equal(r.status, 1, `${describeExit(r)}\nstderr: ${r.stderr}`);
      for (const text of c.expect) assert.ok(r.stderr.includes(text), `stderr names "${text}":\n${r.stderr}`);
    });

    it(`${c.title}: \`mcpgate run\` exits non-zero at start with the same message`, async () => {
      const file = await writeConfig({ plugins: c.plugins(), route: c.route });
      const proc = startProcess(GATEWAY_BIN, ['run', '--config', file], {
        env: { ASAN_OPTIONS: process.env.ASAN_OPTIONS ?? 'detect_leaks=1:halt_on_error=1:abort_on_error=0' },
        name: 'mcpgate',
      });
      const exit = await raceTimeout(proc.exited, 15000 * TIME_SCALE, 'timeout');
      if (exit === 'timeout') {
        await proc.stop('SIGKILL');
        assert.fail(`the gateway kept running with a broken plugin:\n${proc.output().slice(-2000)}`);
      }
      assert.ok(exit.code !== 0, `exit ${JSON.stringify(exit)}`);
      if (!c.crash) assert.equal(exit.signal, null, `an orderly exit, not a signal: ${JSON.stringify(exit)}\n${proc.stderr()}`);
      for (const text of c.expect) assert.ok(proc.stderr().includes(text), `stderr names "${text}":\n${proc.stderr()}`);
    });
  }

  it('a valid config with every example plugin passes check; plugin paths (and apikey\'s keys_file) are relative to the config file', async () => {
    // A relative path is taken from the config file's directory, not from the gateway's cwd.
    fs.mkdirSync(path.join(dir, 'lib'), { recursive: true });
    fs.copyFileSync(example('apikey'), path.join(dir, 'lib', 'libmcpgate_apikey.so'));
    const file = await writeConfig({
      plugins: [
        // apikey resolves a relative keys_file against the config's directory too (host->config_dir).
        { name: 'keys', path: 'lib/libmcpgate_apikey.so', config: { keys_file: path.basename(keysFile) } },
        { name: 'headers', path: example('claims_headers'), config: { headers: { 'X-User-Id': 'sub' } } },
        { name: 'guard', path: example('tool_guard'), config: { rules: [{ tool: '*', argument: 'id', deny_prefix: 'system-' }] } },
        { name: 'hello', path: example('hello'), config: { deny_prefix: 'admin_' } },
      ],
      route: {
        auth: { type: 'plugin', plugin: 'keys', required_scopes: ['read'] },
        policy_plugins: ['guard', 'hello'],
        request_plugins: ['headers'],
      },
    });
    assert.ok(!fs.existsSync(path.resolve(process.cwd(), 'lib/libmcpgate_apikey.so')), 'not found from the cwd');
    assert.ok(!fs.existsSync(path.resolve(process.cwd(), path.basename(keysFile))), 'the keys file is not found from the cwd');
    const r = runGatewayCli(['check', '--config', file]);
    assert.equal(r.status, 0, `${describeExit(r)}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  });
});
