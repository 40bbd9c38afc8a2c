// Helpers for tests/integration/deploy.test.mjs: render the Kustomize overlays under
// deploy/kubernetes, validate objects against the Kubernetes schemas, lay out a pod's mounted
// files the way the kubelet does, and read deploy/docker/Dockerfile. Nothing here needs a
// cluster or a container engine.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';

import YAML from 'yaml';

import { REPO_ROOT } from './harness.mjs';

export const K8S_DIR = path.join(REPO_ROOT, 'deploy', 'kubernetes');
export const DOCKERFILE = path.join(REPO_ROOT, 'deploy', 'docker', 'Dockerfile');

// ---------------------------------------------------------------------------
// YAML and kustomize
// ---------------------------------------------------------------------------

/** Every document of a YAML text as plain JS (empty documents dropped); a parse error throws. */
export function parseYamlDocs(text, what = 'YAML') {
  return YAML.parseAllDocuments(text)
    .map((doc) => {
      if (doc.errors.length) throw new Error(`${what}: ${doc.errors.map((e) => e.message).join('; ')}`);
      return doc.toJS();
    })
    .filter((d) => d !== null && d !== undefined);
}

/**
 * The kubectl to render with: $MCPGATE_KUBECTL, else the Debian 12 kubectl that scripts/test
 * unpacks into build-tools/, else `kubectl` on PATH. Returns {bin, version} or null.
 */
export function findKubectl() {
  const unpacked = path.join(REPO_ROOT, 'build-tools', 'kubernetes-client', 'usr', 'bin', 'kubectl');
  const candidates = [process.env.MCPGATE_KUBECTL, fs.existsSync(unpacked) ? unpacked : undefined, 'kubectl'];
  for (const bin of candidates.filter(Boolean)) {
    const r = spawnSync(bin, ['version', '--client'], { encoding: 'utf8', timeout: 10000 });
    if (r.status === 0) return { bin, version: r.stdout.trim().split('\n').join(' ') };
  }
  return null;
}

/** `kubectl kustomize <dir>` as parsed objects. */
export function renderKustomization(kubectl, dir) {
  const r = spawnSync(kubectl.bin, ['kustomize', dir], { encoding: 'utf8', timeout: 20000 });
  if (r.status !== 0) throw new Error(`kubectl kustomize ${dir} failed (${r.status}): ${r.stderr || r.error}`);
  return parseYamlDocs(r.stdout, `kubectl kustomize ${dir}`);
}

/** The kustomization.yaml of `dir`, parsed. */
export function readKustomization(dir) {
  return YAML.parse(fs.readFileSync(path.join(dir, 'kustomization.yaml'), 'utf8'));
}

/** Every directory under deploy/kubernetes holding a kustomization.yaml. */
export function kustomizationDirs() {
  const out = [];
  const walk = (dir) => {
    if (fs.existsSync(path.join(dir, 'kustomization.yaml'))) out.push(dir);
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) walk(path.join(dir, e.name));
  };
  walk(K8S_DIR);
  return out.sort();
}

/** The one object of `kind` named `name` in `docs` (throws when there is not exactly one). */
export function objectOf(docs, kind, name) {
  const found = docs.filter((d) => d.kind === kind && (name === undefined || d.metadata?.name === name));
  if (found.length !== 1) throw new Error(`expected one ${kind}${name ? ` '${name}'` : ''}, found ${found.length}`);
  return found[0];
}

/** The pod templates of the workload objects in `docs`: [{owner: 'Kind/name', spec}]. */
export function podTemplates(docs) {
  return docs
    .filter((d) => ['Deployment', 'StatefulSet', 'DaemonSet', 'Job'].includes(d.kind))
    .map((d) => ({ owner: `${d.kind}/${d.metadata.name}`, spec: d.spec.template.spec }));
}

// ---------------------------------------------------------------------------
// Schema validation (kubernetes-models: the Kubernetes OpenAPI schemas, compiled for ajv)
// ---------------------------------------------------------------------------

const models = new Map();
async function modelClass(apiVersion, kind) {
  const key = `${apiVersion}/${kind}`;
  if (!models.has(key)) {
    let cls;
    try {
      // kubernetes-models/<group>/<version>/<Kind>, the core group as v1/<Kind>.
      cls = (await import(`kubernetes-models/${apiVersion}/${kind}`))[kind];
    } catch {
      cls = undefined;
    }
    models.set(key, cls);
  }
  return models.get(key);
}

function validationErrors(model) {
  try {
    model.validate();
    return [];
  } catch (e) {
    if (!Array.isArray(e.errors)) throw e;
    return e.errors;
  }
}

const escapePointer = (k) => k.replace(/~/g, '~0').replace(/\//g, '~1');
const PROBE = Symbol('unknown-field probe');

/**
 * The fields of `model` its schema does not declare. The OpenAPI schemas allow additional
 * properties (the API server prunes or rejects them), so a misspelt field (readOnlyRootFileSystem)
 * would pass a plain validation. Each field is probed instead: its value is replaced by a value
 * no JSON type matches, and a field whose replacement the schema does not complain about is one
 * it does not know. (Free-form fields would look unknown too; none of our kinds has any.)
 */
function unknownFields(model) {
  const unknown = [];
  const walk = (node, pointer) => {
    if (Array.isArray(node)) {
      node.forEach((v, i) => walk(v, `${pointer}/${i}`));
      return;
    }
    if (node === null || typeof node !== 'object') return;
    for (const key of Object.keys(node)) {
      const at = `${pointer}/${escapePointer(key)}`;
      const saved = node[key];
      node[key] = PROBE;
      const known = validationErrors(model).some((e) => e.instancePath === at);
      node[key] = saved;
      if (known) walk(saved, at);
      else unknown.push(`${at}: unknown field`);
    }
  };
  walk(model, '');
  return unknown;
}

/**
 * Problems of one Kubernetes object against its schema, as "<pointer>: <message>" strings:
 * schema errors (types, required fields, enums, formats) and fields the schema does not know.
 * An apiVersion/kind without a schema is a problem too.
 */
export async function schemaProblems(obj) {
  const cls = await modelClass(obj.apiVersion, obj.kind);
  if (!cls) return [`${obj.apiVersion} ${obj.kind}: no schema (unknown apiVersion or kind)`];
  const model = new cls(structuredClone(obj));
  const errors = validationErrors(model).map((e) => `${e.instancePath || '/'}: ${e.message}`);
  return [...errors, ...unknownFields(model)];
}

// ---------------------------------------------------------------------------
// A pod's mounted files, laid out as the kubelet does
// ---------------------------------------------------------------------------

/**
 * A configMap, secret or projected volume in a local directory, written like the kubelet's
 * AtomicWriter: the files in `..<version>/`, `..data -> ..<version>`, and each top-level name
 * (config.yaml, tls, ...) a symlink through `..data`. publish() swaps ..data atomically.
 */
export class KubeletVolume {
  constructor(dir, { mode = 0o644, gid } = {}) {
    this.dir = dir;
    this.mode = mode;
    this.gid = gid;
    this.version = 0;
    this.names = new Set();
  }

  /** Writes `files` ({relative path: content}) as the volume's new content. */
  publish(files) {
    this.version += 1;
    const versionDir = `..${new Date().toISOString().replace(/[-:.]/g, '_')}.${this.version}`;
    for (const [rel, content] of Object.entries(files)) {
      const file = path.join(this.dir, versionDir, rel);
      fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
      fs.writeFileSync(file, content);
      fs.chmodSync(file, this.mode);
      if (this.gid !== undefined) fs.chownSync(file, 0, this.gid);
    }
    const previous = fs.existsSync(path.join(this.dir, '..data')) ? fs.readlinkSync(path.join(this.dir, '..data')) : null;
    fs.symlinkSync(versionDir, path.join(this.dir, '..data_tmp'));
    fs.renameSync(path.join(this.dir, '..data_tmp'), path.join(this.dir, '..data'));
    const names = new Set(Object.keys(files).map((rel) => rel.split('/')[0]));
    for (const name of names) {
      if (!this.names.has(name)) fs.symlinkSync(path.join('..data', name), path.join(this.dir, name));
    }
    for (const name of this.names) if (!names.has(name)) fs.rmSync(path.join(this.dir, name));
    this.names = names;
    if (previous) fs.rmSync(path.join(this.dir, previous), { recursive: true, force: true });
  }
}

/**
 * The files a volume of `podSpec` holds, from the rendered objects (ConfigMaps) and
 * `secrets` ({secretName: {key: content}}): {relative path: content}. Handles configMap,
 * secret and projected volumes with explicit `items` (the manifests always list them).
 */
export function volumeFiles(docs, podSpec, volumeName, secrets) {
  const volume = podSpec.volumes.find((v) => v.name === volumeName);
  if (!volume) throw new Error(`no volume '${volumeName}'`);
  const sources = volume.projected ? volume.projected.sources : [volume];
  const files = {};
  for (const source of sources) {
    let data;
    let ref;
    if (source.configMap) {
      ref = source.configMap;
      data = objectOf(docs, 'ConfigMap', ref.name).data;
    } else if (source.secret) {
      ref = { name: source.secret.secretName ?? source.secret.name, items: source.secret.items };
      data = secrets[ref.name];
      if (!data) throw new Error(`the test has no content for Secret '${ref.name}'`);
    } else {
      throw new Error(`volume '${volumeName}': unsupported source ${Object.keys(source).join(',')}`);
    }
    if (!ref.items) throw new Error(`volume '${volumeName}': ${ref.name} without items`);
    for (const item of ref.items) {
      if (data[item.key] === undefined) throw new Error(`${ref.name} has no key '${item.key}'`);
      files[item.path] = data[item.key];
    }
  }
  return { files, mode: volume.projected?.defaultMode ?? volume.secret?.defaultMode ?? volume.configMap?.defaultMode ?? 0o644 };
}

/** The environment a container's `env` gives it, with secretKeyRef values from `secrets`. */
export function containerEnv(container, secrets) {
  const env = {};
  for (const e of container.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.secretKeyRef) {
      const { name, key } = e.valueFrom.secretKeyRef;
      if (secrets[name]?.[key] === undefined) throw new Error(`the test has no content for Secret ${name} key ${key}`);
      env[e.name] = secrets[name][key];
    } else throw new Error(`env ${e.name}: unsupported source`);
  }
  return env;
}

/** The port number a probe or Service points at (a number, or a container port's name). */
export function resolvePort(container, port) {
  if (typeof port === 'number') return port;
  const p = (container.ports ?? []).find((cp) => cp.name === port);
  if (!p) throw new Error(`container ${container.name} has no port named '${port}'`);
  return p.containerPort;
}

/** host and port of "host:port" / "[v6]:port". */
export function splitHostPort(listen) {
  const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(listen);
  if (!m) throw new Error(`not host:port: ${listen}`);
  return { host: m[1], port: Number(m[2]) };
}

// ---------------------------------------------------------------------------
// Dockerfile
// ---------------------------------------------------------------------------

/**
 * The stages of a Dockerfile: [{from, name, instructions: [{keyword, args, line}]}]. Continuation
 * lines are joined and comment lines dropped, as Docker's parser does (no heredocs: the file
 * uses none).
 */
export function parseDockerfile(text) {
  const instructions = [];
  let pending = null;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line.startsWith('#') || (!pending && line === '')) return;
    const continued = line.endsWith('\\');
    const part = continued ? line.slice(0, -1).trim() : line;
    if (pending) pending.text += ` ${part}`;
    else pending = { text: part, line: i + 1 };
    if (!continued) {
      const m = /^(\S+)\s*(.*)$/s.exec(pending.text);
      instructions.push({ keyword: m[1].toUpperCase(), args: m[2].trim(), line: pending.line });
      pending = null;
    }
  });
  const stages = [];
  for (const ins of instructions) {
    if (ins.keyword === 'FROM') {
      const m = /^(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      stages.push({ from: m[1], name: m[2], instructions: [] });
    } else if (stages.length) stages.at(-1).instructions.push(ins);
  }
  return stages;
}

/** The arguments of an exec-form instruction (`["a", "b"]`); throws on shell form. */
export function execForm(args) {
  const parsed = JSON.parse(args);
  if (!Array.isArray(parsed) || !parsed.every((a) => typeof a === 'string')) throw new Error(`not exec form: ${args}`);
  return parsed;
}

/** The packages named by `apt-get install` in a stage's RUN instructions. */
export function aptInstalled(stage) {
  const packages = [];
  for (const ins of stage.instructions.filter((i) => i.keyword === 'RUN')) {
    for (const command of ins.args.split(/&&|;/)) {
      const words = command.trim().split(/\s+/);
      const at = words.findIndex((w, i) => w === 'install' && words[i - 1]?.endsWith('apt-get'));
      if (at >= 0) packages.push(...words.slice(at + 1).filter((w) => !w.startsWith('-')));
    }
  }
  return packages;
}

// ---------------------------------------------------------------------------
// Debian packages
// ---------------------------------------------------------------------------

/** Of `packages`, those apt-cache does not know (in this machine's Debian release). */
export function unknownDebianPackages(packages) {
  const r = spawnSync('apt-cache', ['show', '--no-all-versions', ...packages], { encoding: 'utf8', timeout: 30000 });
  if (r.error) throw r.error;
  const known = new Set([...r.stdout.matchAll(/^Package: (\S+)$/gm)].map((m) => m[1]));
  return packages.filter((p) => !known.has(p));
}

/** The shared libraries `ldd file` lists (resolved paths) and the DT_NEEDED names of `file`. */
export function linkedLibraries(file) {
  const ldd = spawnSync('ldd', [file], { encoding: 'utf8', timeout: 10000 });
  if (ldd.status !== 0) throw new Error(`ldd ${file}: ${ldd.stderr}`);
  const libs = [];
  for (const line of ldd.stdout.split('\n')) {
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m) libs.push(m[1]);
    else if (/=> not found/.test(line)) throw new Error(`ldd ${file}: ${line.trim()}`);
  }
  const readelf = spawnSync('readelf', ['-d', file], { encoding: 'utf8', timeout: 10000 });
  if (readelf.status !== 0) throw new Error(`readelf -d ${file}: ${readelf.stderr}`);
  const needed = [...readelf.stdout.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
  return { libs, needed };
}

/**
 * {library path: Debian package} for each path, from one `dpkg -S` over the paths and their
 * real paths (with merged /usr, dpkg may know a library under either). Unowned paths are absent.
 */
export function packagesOwning(paths) {
  const candidates = [...new Set(paths.flatMap((p) => [p, fs.realpathSync(p)]))];
  // Exit status 1 when some path belongs to no package: the lines for the others still come.
  const r = spawnSync('dpkg', ['-S', ...candidates], { encoding: 'utf8', timeout: 30000 });
  if (r.error) throw r.error;
  const byPath = {};
  for (const line of r.stdout.split('\n')) {
    const m = /^(.+?): (\/.*)$/.exec(line);  // "libssl3:amd64: /usr/lib/x86_64-linux-gnu/libssl.so.3"
    if (m) byPath[m[2]] = m[1].split(', ')[0].replace(/:[^:]+$/, '');
  }
  const owner = {};
  for (const p of paths) {
    const pkg = byPath[p] ?? byPath[fs.realpathSync(p)];
    if (pkg) owner[p] = pkg;
  }
  return owner;
}

/**
 * `packages` and everything they depend on (Depends, Pre-Depends, every alternative), from
 * this machine's dpkg database. That is what apt installs with them, as far as these packages
 * are installed here (the gateway was built here, so the libraries it links are).
 */
export function dependencyClosure(packages) {
  const r = spawnSync('dpkg-query', ['-W', '-f', '${Package}\t${Pre-Depends}, ${Depends}\n'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`dpkg-query: ${r.stderr}`);
  const deps = new Map();
  for (const line of r.stdout.split('\n')) {
    const [name, list = ''] = line.split('\t');
    if (!name) continue;
    const names = list
      .split(/[,|]/)
      .map((d) => d.trim().replace(/\s*\(.*\)$/, '').replace(/:\S+$/, ''))
      .filter(Boolean);
    deps.set(name, names);
  }
  const closure = new Set();
  const queue = [...packages];
  while (queue.length) {
    const p = queue.pop();
    if (closure.has(p)) continue;
    closure.add(p);
    queue.push(...(deps.get(p) ?? []));
  }
  return closure;
}

// ---------------------------------------------------------------------------
// HTTPS with a private CA, from the test process
// ---------------------------------------------------------------------------

/** One HTTPS request trusting `ca`; resolves {status, headers, body}. */
export function httpsRequest(url, { method = 'GET', headers = {}, body, ca, timeoutMs = 5000 } = {}) {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method, headers, ca, timeout: timeoutMs }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms: ${method} ${url}`)));
    req.on('error', reject);
    req.end(body);
  });
}
