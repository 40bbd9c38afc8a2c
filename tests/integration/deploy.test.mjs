// The deployment artefacts under deploy/, checked without a cluster or a container engine:
//
// - Kubernetes: every manifest, and every overlay as `kubectl kustomize` renders it, against the
//   Kubernetes schemas (npm kubernetes-models; strict: an unknown field is an error), plus the
//   rules the README promises (non-root, read-only root, no capabilities, limits, only the
//   gateway port exposed, ...). yamllint over deploy/ with the project's .yamllint.
// - Each overlay's gateway config (its ConfigMap) through `mcpgate check`, with the pod's
//   mounted files laid out as the kubelet does.
// - The sidecar pod wired up locally: the real gateway binary run with the Dockerfile's
//   ENTRYPOINT arguments, as the pod's user, with the root filesystem read-only, on the pod's
//   file layout; the real server-everything on loopback as the sidecar; the real oidc-provider
//   as the IdP. Probes as the manifest writes them, an SDK client through the gateway port,
//   the 401 challenge, and a ConfigMap update (a ..data swap) taken without a signal.
// - The Dockerfile: stages, USER, HEALTHCHECK, ENTRYPOINT, that its apt packages exist in
//   Debian 12, and that they provide every library the built binary and plugins link.
//
// The manifests' fixed ports and host names are replaced by free loopback ports and the local
// IdP; /etc/mcpgate (the volume's mount path) by the local layout. Nothing else is changed.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';

import YAML from 'yaml';

import { startOidcProvider } from '../support/oidc-provider.mjs';
import { getTokenViaAuthCode, parseBearerChallenge } from '../support/oauth-client.mjs';
import {
  DOCKERFILE,
  K8S_DIR,
  KubeletVolume,
  aptInstalled,
  containerEnv,
  dependencyClosure,
  execForm,
  findKubectl,
  httpsRequest,
  kustomizationDirs,
  linkedLibraries,
  objectOf,
  packagesOwning,
  parseDockerfile,
  parseYamlDocs,
  podTemplates,
  readKustomization,
  renderKustomization,
  resolvePort,
  schemaProblems,
  splitHostPort,
  unknownDebianPackages,
  volumeFiles,
} from '../support/deploy.mjs';
import {
  GATEWAY_BIN,
  REPO_ROOT,
  SUPPORT_DIR,
  TIME_SCALE,
  freePort,
  initializeBody,
  isSanitizerBuild,
  makeTempDir,
  makeTlsCa,
  parseJsonLines,
  sanitizerFindings,
  startEverything,
  startProcess,
  waitFor,
  waitForUrl,
} from '../support/harness.mjs';

const execFileP = promisify(execFile);

const OVERLAYS_DIR = path.join(K8S_DIR, 'overlays');
const OVERLAYS = fs.readdirSync(OVERLAYS_DIR).filter((n) => fs.existsSync(path.join(OVERLAYS_DIR, n, 'kustomization.yaml')));
const README = fs.readFileSync(path.join(REPO_ROOT, 'deploy', 'README.md'), 'utf8');
const GATEWAY = 'mcpgate';  // the gateway's Deployment, container, Service and NetworkPolicy
const RUNTIME = parseDockerfile(fs.readFileSync(DOCKERFILE, 'utf8')).at(-1);

const kubectl = findKubectl();
const rendered = {};  // overlay name -> objects
function render(overlay) {
  assert.ok(kubectl, 'no kubectl: scripts/test unpacks Debian 12\'s kubernetes-client into build-tools/, or set MCPGATE_KUBECTL');
  rendered[overlay] ??= renderKustomization(kubectl, path.join(OVERLAYS_DIR, overlay));
  return rendered[overlay];
}

/** The gateway's Deployment, pod spec and container in an overlay. */
function gatewayOf(overlay) {
  const docs = render(overlay);
  const deployment = objectOf(docs, 'Deployment', GATEWAY);
  const pod = deployment.spec.template.spec;
  const container = pod.containers.find((c) => c.name === GATEWAY);
  assert.ok(container, `${overlay}: no '${GATEWAY}' container`);
  return { docs, deployment, pod, container };
}

/** The gateway config inside an overlay's ConfigMap (its `config.yaml` key as the pod mounts it). */
function gatewayConfigText(overlay) {
  const { docs, pod, container } = gatewayOf(overlay);
  const mount = container.volumeMounts.find((m) => ENTRYPOINT_CONFIG.startsWith(`${m.mountPath}/`));
  assert.ok(mount, `${overlay}: nothing is mounted where the ENTRYPOINT reads its config`);
  const volume = pod.volumes.find((v) => v.name === mount.name);
  const relative = path.relative(mount.mountPath, ENTRYPOINT_CONFIG);
  for (const source of volume.projected?.sources ?? [volume]) {
    const item = source.configMap?.items?.find((i) => i.path === relative);
    if (item) return objectOf(docs, 'ConfigMap', source.configMap.name).data[item.key];
  }
  throw new Error(`${overlay}: no ConfigMap provides ${ENTRYPOINT_CONFIG}`);
}

const ENTRYPOINT = (() => {
  const ins = RUNTIME.instructions.filter((i) => i.keyword === 'ENTRYPOINT');
  assert.equal(ins.length, 1, 'one ENTRYPOINT in the runtime stage');
  return execForm(ins[0].args);
})();
const ENTRYPOINT_CONFIG = ENTRYPOINT[ENTRYPOINT.indexOf('--config') + 1];

// What the README's `kubectl create secret` commands put into the Secrets, made the same way.
function makeSecrets(cert) {
  const random = (n, enc) => crypto.randomBytes(n).toString(enc);
  return {
    'mcpgate-tls': { 'tls.crt': fs.readFileSync(cert.certFile, 'utf8'), 'tls.key': fs.readFileSync(cert.keyFile, 'utf8') },
    'mcpgate-secrets': {
      'admin-token': random(32, 'hex'),
      'client-secret': random(24, 'hex'),
      'redis-password': random(24, 'hex'),
      'store.key': `${random(32, 'base64')}\n`,    // openssl rand -base64 32
      'session.key': `${random(32, 'base64')}\n`,
    },
  };
}

let tlsCa;
const ca = () => (tlsCa ??= makeTlsCa());

/** uid and gid the pod's processes run as (runAsUser/runAsGroup), and the volume files' group (fsGroup). */
function podIdentity(pod, container) {
  const sc = { ...pod.securityContext, ...container.securityContext };
  return { uid: sc.runAsUser, gid: sc.runAsGroup ?? sc.runAsUser, fsGroup: pod.securityContext?.fsGroup };
}

/**
 * The gateway container's mounted volumes laid out under a temp dir as the kubelet writes them.
 * Returns {mounts: [{mountPath, dir, volume (KubeletVolume), files}], secrets, env}.
 */
function layOutPod(overlay) {
  const { docs, pod, container } = gatewayOf(overlay);
  const secrets = makeSecrets(ca());
  const root = makeTempDir('itest-pod-');
  fs.chmodSync(root, 0o755);  // the pod's uid must reach the files
  const { fsGroup } = podIdentity(pod, container);
  const asRoot = process.getuid() === 0;
  const mounts = container.volumeMounts.map((m, i) => {
    const { files, mode } = volumeFiles(docs, pod, m.name, secrets);
    const dir = path.join(root, `volume-${i}`);
    fs.mkdirSync(dir, { mode: 0o755 });
    const volume = new KubeletVolume(dir, { mode, gid: asRoot ? fsGroup : undefined });
    volume.publish(files);
    return { mountPath: m.mountPath, dir, volume, files };
  });
  return { mounts, secrets, env: containerEnv(container, secrets) };
}

/** `value` with the first mount path it starts with replaced by that mount's local dir. */
function mapMountedPath(value, mounts) {
  for (const m of mounts) {
    if (value === m.mountPath || value.startsWith(`${m.mountPath}/`)) return m.dir + value.slice(m.mountPath.length);
  }
  return value;
}

/**
 * A gateway config as the pod reads it, changed for a local run: mounted paths to the layout,
 * and whatever `changes` sets ([[key path], value] pairs, e.g. the listen addresses).
 */
function localConfig(text, mounts, changes = []) {
  const doc = YAML.parseDocument(text);
  assert.equal(doc.errors.length, 0, doc.errors.join('; '));
  YAML.visit(doc, {
    Scalar(_, node) {
      if (typeof node.value === 'string') node.value = mapMountedPath(node.value, mounts);
    },
  });
  for (const [keyPath, value] of changes) doc.setIn(keyPath, value);
  return doc.toString();
}

// ---------------------------------------------------------------------------

describe('Kubernetes manifests', () => {
  before(() => {
    if (kubectl) process.stderr.write(`# deploy.test: rendering with ${kubectl.bin} (${kubectl.version})\n`);
  });

  it('every YAML file under deploy/kubernetes is used by its kustomization (resource, patch or config file)', () => {
    for (const dir of kustomizationDirs()) {
      const k = readKustomization(dir);
      const used = new Set(['kustomization.yaml', ...(k.resources ?? []), ...(k.patchesStrategicMerge ?? [])]);
      for (const g of k.configMapGenerator ?? []) for (const f of g.files ?? []) used.add(f);
      const files = fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f));
      assert.deepEqual(files.filter((f) => !used.has(f)), [], `${path.relative(REPO_ROOT, dir)}: files no kustomization uses`);
    }
  });

  it('every manifest file (the kustomizations\' resources) is valid against the Kubernetes schemas', async () => {
    let count = 0;
    for (const dir of kustomizationDirs()) {
      for (const file of readKustomization(dir).resources ?? []) {
        const where = path.relative(REPO_ROOT, path.join(dir, file));
        for (const obj of parseYamlDocs(fs.readFileSync(path.join(dir, file), 'utf8'), where)) {
          assert.deepEqual(await schemaProblems(obj), [], `${where}: ${obj.kind}/${obj.metadata?.name}`);
          count += 1;
        }
      }
    }
    assert.ok(count >= 9, `only ${count} objects found`);
  });

  for (const overlay of OVERLAYS) {
    it(`overlays/${overlay} renders, and every object is valid against the Kubernetes schemas`, async () => {
      const docs = render(overlay);
      for (const obj of docs) assert.deepEqual(await schemaProblems(obj), [], `${overlay}: ${obj.kind}/${obj.metadata.name}`);
      const namespaces = new Set(docs.map((d) => d.metadata.namespace));
      assert.equal(namespaces.size, 1, `${overlay}: one namespace for every object, got ${[...namespaces]}`);
      assert.ok([...namespaces][0], `${overlay}: objects have a namespace`);
    });
  }

  it('the validator rejects real mistakes: a string replica count, an unknown container field, a misspelt securityContext field', async () => {
    const deployment = structuredClone(gatewayOf('sidecar').deployment);
    assert.deepEqual(await schemaProblems(deployment), []);
    const container = deployment.spec.template.spec.containers.find((c) => c.name === GATEWAY);
    deployment.spec.replicas = 'three';
    container.imagePullPolicyy = 'Always';
    container.securityContext.readOnlyRootFileSystem = true;
    const problems = await schemaProblems(deployment);
    const index = deployment.spec.template.spec.containers.indexOf(container);
    assert.ok(problems.includes('/spec/replicas: must be integer'), problems.join('\n'));
    assert.ok(problems.includes(`/spec/template/spec/containers/${index}/imagePullPolicyy: unknown field`), problems.join('\n'));
    assert.ok(problems.includes(`/spec/template/spec/containers/${index}/securityContext/readOnlyRootFileSystem: unknown field`), problems.join('\n'));
    assert.deepEqual(await schemaProblems({ apiVersion: 'apps/v1', kind: 'Deploymnet', metadata: { name: 'x' } }), [
      'apps/v1 Deploymnet: no schema (unknown apiVersion or kind)',
    ]);
  });

  for (const overlay of OVERLAYS) {
    it(`overlays/${overlay}: every pod runs non-root, read-only, without capabilities, with requests and limits`, () => {
      for (const { owner, spec } of podTemplates(render(overlay))) {
        const where = `${overlay} ${owner}`;
        assert.equal(spec.automountServiceAccountToken, false, `${where}: automountServiceAccountToken`);
        assert.equal(spec.securityContext?.runAsNonRoot, true, `${where}: runAsNonRoot`);
        assert.equal(spec.securityContext?.seccompProfile?.type, 'RuntimeDefault', `${where}: seccompProfile`);
        for (const c of spec.containers) {
          const sc = c.securityContext ?? {};
          const uid = sc.runAsUser ?? spec.securityContext.runAsUser;
          assert.ok(Number.isInteger(uid) && uid > 0, `${where} ${c.name}: a numeric non-root runAsUser`);
          assert.equal(sc.readOnlyRootFilesystem, true, `${where} ${c.name}: readOnlyRootFilesystem`);
          assert.equal(sc.allowPrivilegeEscalation, false, `${where} ${c.name}: allowPrivilegeEscalation`);
          assert.deepEqual(sc.capabilities?.drop, ['ALL'], `${where} ${c.name}: capabilities.drop`);
          assert.equal(sc.capabilities?.add, undefined, `${where} ${c.name}: capabilities.add`);
          assert.notEqual(sc.privileged, true, `${where} ${c.name}: privileged`);
          for (const kind of ['requests', 'limits']) {
            for (const r of ['cpu', 'memory']) assert.ok(c.resources?.[kind]?.[r], `${where} ${c.name}: resources.${kind}.${r}`);
          }
        }
      }
    });
  }

  for (const overlay of OVERLAYS) {
    it(`overlays/${overlay}: the gateway's probes, ports and Service agree with its config`, () => {
      const { docs, container } = gatewayOf(overlay);
      const config = YAML.parse(gatewayConfigText(overlay));
      const gatewayPort = resolvePort(container, 'gateway');
      const adminPort = resolvePort(container, 'admin');
      assert.equal(splitHostPort(config.server.listen).port, gatewayPort, 'server.listen is the `gateway` port');
      // The kubelet probes the pod IP: admin must listen on all interfaces, and then needs a token.
      assert.deepEqual(splitHostPort(config.admin.listen), { host: '0.0.0.0', port: adminPort }, 'admin.listen');
      assert.match(String(config.admin.token ?? ''), /\S/, 'admin.token is set (the admin port is reachable in the cluster)');
      for (const probe of ['livenessProbe', 'readinessProbe']) {
        assert.equal(resolvePort(container, container[probe].httpGet.port), adminPort, `${probe} on the admin port`);
      }
      assert.equal(container.livenessProbe.httpGet.path, '/healthz');
      assert.equal(container.readinessProbe.httpGet.path, '/readyz');
      assert.equal(container.command, undefined, 'no command: the image\'s ENTRYPOINT runs');
      assert.equal(container.args, undefined, 'no args: the image\'s ENTRYPOINT runs');
      const service = objectOf(docs, 'Service', GATEWAY);
      assert.ok(service.spec.ports.length >= 1);
      for (const p of service.spec.ports) assert.equal(resolvePort(container, p.targetPort), gatewayPort, 'the Service exposes the gateway port only');
      if (config.server.tls) assert.match(service.spec.ports[0].name, /^https/);
    });
  }

  for (const overlay of OVERLAYS) {
    it(`overlays/${overlay}: the NetworkPolicy admits the gateway port, and the admin port only from a namespace`, () => {
      const { docs, deployment, container } = gatewayOf(overlay);
      const labels = deployment.spec.template.metadata.labels;
      const policy = docs.find(
        (d) => d.kind === 'NetworkPolicy' && Object.entries(d.spec.podSelector.matchLabels ?? {}).every(([k, v]) => labels[k] === v),
      );
      assert.ok(policy, 'a NetworkPolicy selects the gateway pods');
      assert.deepEqual(policy.spec.policyTypes, ['Ingress']);
      const gatewayPort = resolvePort(container, 'gateway');
      const adminPort = resolvePort(container, 'admin');
      const open = policy.spec.ingress.filter((r) => !r.from).flatMap((r) => r.ports.map((p) => resolvePort(container, p.port)));
      assert.deepEqual(open, [gatewayPort], 'only the gateway port is open to every source');
      const restricted = policy.spec.ingress.filter((r) => r.from).flatMap((r) => r.ports.map((p) => resolvePort(container, p.port)));
      assert.deepEqual(restricted, [adminPort]);
      for (const rule of policy.spec.ingress) assert.ok(rule.ports?.length, 'every rule names its ports');
    });
  }

  for (const overlay of OVERLAYS.filter((o) => o.startsWith('sidecar'))) {
    it(`overlays/${overlay}: the MCP server shares the gateway's pod on loopback and exposes no port`, () => {
      const { pod } = gatewayOf(overlay);
      const config = YAML.parse(gatewayConfigText(overlay));
      const others = pod.containers.filter((c) => c.name !== GATEWAY);
      assert.equal(others.length, 1, 'one MCP server container');
      assert.equal(others[0].ports, undefined, 'the MCP server declares no container port');
      const upstream = new URL(config.routes[0].upstream);
      assert.equal(upstream.hostname, '127.0.0.1', 'the route goes to the sidecar over loopback');
      assert.equal(upstream.port, others[0].env.find((e) => e.name === 'PORT').value, 'the route\'s port is the server\'s PORT');
    });
  }

  it('overlays/multi-replica: 3 replicas with a PodDisruptionBudget, one Redis store, the upstream list is the StatefulSet\'s pods', () => {
    const { docs, deployment } = gatewayOf('multi-replica');
    const config = YAML.parse(gatewayConfigText('multi-replica'));
    assert.equal(deployment.spec.replicas, 3);
    const pdb = objectOf(docs, 'PodDisruptionBudget', GATEWAY);
    assert.deepEqual(pdb.spec.selector.matchLabels, deployment.spec.selector.matchLabels);
    assert.ok(pdb.spec.minAvailable < deployment.spec.replicas);
    assert.equal(config.token_store.backend, 'redis');
    const redisHost = new URL(config.token_store.redis_url).hostname;
    assert.ok(objectOf(docs, 'Service', redisHost), 'redis_url names the Redis Service');
    assert.ok(config.token_store.encryption_key_file && config.session_envelope?.key_file && config.session_envelope?.key_id);
    const sts = objectOf(docs, 'StatefulSet');
    const expected = Array.from({ length: sts.spec.replicas }, (_, i) => `${sts.metadata.name}-${i}.${sts.spec.serviceName}`);
    assert.deepEqual(config.routes[0].upstream.map((u) => new URL(u).hostname), expected);
    assert.equal(objectOf(docs, 'Service', sts.spec.serviceName).spec.clusterIP, 'None', 'a headless Service names the pods');
  });

  it('deploy/README.md creates every Secret and key the manifests reference', () => {
    const refs = new Map();  // secret name -> keys
    const add = (name, key) => refs.set(name, new Set([...(refs.get(name) ?? []), key]));
    for (const overlay of OVERLAYS) {
      for (const { spec } of podTemplates(render(overlay))) {
        for (const c of spec.containers) for (const e of c.env ?? []) if (e.valueFrom?.secretKeyRef) add(e.valueFrom.secretKeyRef.name, e.valueFrom.secretKeyRef.key);
        for (const v of spec.volumes ?? []) {
          for (const s of v.projected?.sources ?? []) if (s.secret) for (const i of s.secret.items) add(s.secret.name, i.key);
        }
      }
    }
    assert.deepEqual([...refs.keys()].sort(), ['mcpgate-secrets', 'mcpgate-tls']);
    assert.match(README, /kubectl [^\n]*create secret tls mcpgate-tls /);
    assert.deepEqual([...refs.get('mcpgate-tls')].sort(), ['tls.crt', 'tls.key']);
    for (const key of refs.get('mcpgate-secrets')) {
      assert.match(README, new RegExp(`--from-(file|literal)=${key.replace('.', '\\.')}=`), `README creates mcpgate-secrets key ${key}`);
    }
  });
});

// ---------------------------------------------------------------------------

describe('yamllint over deploy/', () => {
  const yamllint = (args) => spawnSync('yamllint', ['-c', path.join(REPO_ROOT, '.yamllint'), '-f', 'parsable', ...args], { encoding: 'utf8', timeout: 30000 });

  it('finds nothing in deploy/ (the project\'s .yamllint)', () => {
    const r = yamllint([path.join(REPO_ROOT, 'deploy')]);
    assert.ok(!r.error, `yamllint not runnable (apt-get install yamllint): ${r.error?.message}`);
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });

  it('control: the same configuration rejects a duplicate key and an implicit octal', () => {
    const file = path.join(makeTempDir('itest-yamllint-'), 'bad.yaml');
    fs.writeFileSync(file, 'a: 1\na: 2\nmode: 0440\n');
    const r = yamllint([file]);
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /key-duplicates/);
    assert.match(r.stdout, /octal-values/);
  });
});

// ---------------------------------------------------------------------------

describe('each overlay\'s gateway config passes `mcpgate check` on the pod\'s file layout', () => {
  for (const overlay of OVERLAYS) {
    it(`overlays/${overlay}`, () => {
      const { mounts, env } = layOutPod(overlay);
      const config = mapMountedPath(ENTRYPOINT_CONFIG, mounts);
      // The ConfigMap as the pod sees it, only the mounted paths mapped to the layout.
      const text = localConfig(gatewayConfigText(overlay), mounts);
      const mount = mounts.find((m) => config.startsWith(`${m.dir}/`));
      mount.volume.publish({ ...mount.files, [path.relative(mount.dir, config)]: text });
      // The container's environment: the Secret's values for its secretKeyRefs.
      const r = spawnSync(GATEWAY_BIN, ['check', '--config', config], {
        encoding: 'utf8',
        timeout: 15000 * TIME_SCALE,
        env: { ...process.env, ASAN_OPTIONS: process.env.ASAN_OPTIONS ?? 'detect_leaks=1', ...env },
      });
      assert.equal(r.status, 0, `mcpgate check failed:\n${r.stdout}${r.stderr}\nconfig:\n${text}`);
      assert.match(r.stdout, /config OK/);
    });
  }
});

// ---------------------------------------------------------------------------

describe('the sidecar pod, wired up locally', () => {
  const overlay = 'sidecar';
  let everything;
  let idp;
  let gw;         // the gateway process
  let layout;     // mounted volumes
  let configPath; // the ENTRYPOINT's --config, mapped
  let configText; // the ConfigMap's config as the pod mounts it
  let local;      // {port, adminPort}
  let resource;   // the protected route's resource (public_url + path)
  let token;
  let sandboxed;  // whether the gateway ran with / read-only as the pod's uid

  const configMount = () => layout.mounts.find((m) => configPath.startsWith(`${m.dir}/`));
  /** A kubelet update of the config volume: the files as they are, with `changes` ({path: content}). */
  const publish = (changes) => {
    const mount = configMount();
    Object.assign(mount.files, changes);
    mount.volume.publish(mount.files);
  };
  const configKey = () => path.relative(configMount().dir, configPath);
  /** The config for this run: the manifest's, with loopback ports, the local upstream and IdP. */
  const runConfig = (text, extra = []) =>
    localConfig(text, layout.mounts, [
      [['server', 'listen'], `127.0.0.1:${local.port}`],
      [['admin', 'listen'], `127.0.0.1:${local.adminPort}`],
      [['routes', 0, 'upstream'], everything.url],
      [['authorization_servers', 'corp', 'issuer'], idp.issuer],
      ...extra,
    ]);

  before(async () => {
    const { pod, container } = gatewayOf(overlay);
    configText = gatewayConfigText(overlay);
    const config = YAML.parse(configText);
    const scopes = config.routes[0].auth.required_scopes;
    [everything, idp] = await Promise.all([startEverything('streamableHttp'), startOidcProvider({ extraScopes: scopes })]);
    local = { port: await freePort(), adminPort: await freePort() };
    layout = layOutPod(overlay);
    configPath = mapMountedPath(ENTRYPOINT_CONFIG, layout.mounts);
    publish({ [configKey()]: runConfig(configText) });
    resource = `${config.server.public_url}${config.routes[0].path}`;
    token = (await getTokenViaAuthCode({ issuer: idp.issuer, resource, scope: `openid ${scopes.join(' ')}` })).access_token;

    // The ENTRYPOINT's arguments, the config path mapped to the layout.
    const args = ENTRYPOINT.slice(1).map((a) => mapMountedPath(a, layout.mounts));
    const { uid, gid } = podIdentity(pod, container);
    // As root: a private mount namespace with the root filesystem read-only (readOnlyRootFilesystem),
    // the process as the pod's uid/gid (runAsUser/runAsGroup), so a write or a file the pod's
    // user cannot read fails here as it would in the pod.
    const probe = path.join(makeTempDir('itest-ro-'), 'probe');
    sandboxed =
      process.getuid() === 0 &&
      spawnSync('unshare', ['-m', '--propagation', 'private', '--', 'sh', '-c', 'mount --rbind / / && mount -o remount,bind,ro / && ! touch "$0" 2>/dev/null', probe]).status === 0;
    if (!sandboxed) process.stderr.write('# deploy.test: not root or no unshare: the gateway runs without a read-only root and as this user\n');
    const [cmd, cmdArgs] = sandboxed
      ? ['unshare', ['-m', '--propagation', 'private', '--', 'sh', '-c',
        'uid=$0; gid=$1; shift; mount --rbind / / && mount -o remount,bind,ro / && exec setpriv --reuid="$uid" --regid="$gid" --clear-groups -- "$@"',
        String(uid), String(gid), GATEWAY_BIN, ...args]]
      : [GATEWAY_BIN, args];
    gw = startProcess(cmd, cmdArgs, {
      name: 'mcpgate',
      env: {
        ...layout.env,
        ASAN_OPTIONS: process.env.ASAN_OPTIONS ?? 'detect_leaks=1:halt_on_error=1:abort_on_error=0',
        UBSAN_OPTIONS: process.env.UBSAN_OPTIONS ?? 'print_stacktrace=1:halt_on_error=1',
      },
    });
    await waitForUrl(probeUrl('readinessProbe'), { proc: gw, timeoutMs: 15000 });
  });

  after(async () => {
    await gw?.stop('SIGKILL');
    await Promise.all([everything?.stop(), idp?.stop()]);
  });

  const probeUrl = (probe) => {
    const { container } = gatewayOf(overlay);
    const { path: p, port } = container[probe].httpGet;
    // The manifest's admin port is the config's admin.listen port; the local run moved it.
    assert.equal(resolvePort(container, port), splitHostPort(YAML.parse(configText).admin.listen).port);
    return `http://127.0.0.1:${local.adminPort}${p}`;
  };

  it('the readiness and liveness probes answer 200 on the admin port, as the manifest writes them', async () => {
    const ready = await fetch(probeUrl('readinessProbe'), { signal: AbortSignal.timeout(5000) });
    assert.equal(ready.status, 200);
    assert.deepEqual(await ready.json(), { status: 'ready' });
    const live = await fetch(probeUrl('livenessProbe'), { signal: AbortSignal.timeout(5000) });
    assert.equal(live.status, 200);
    assert.deepEqual(await live.json(), { status: 'ok' });
    if (sandboxed) {
      const status = fs.readFileSync(`/proc/${gw.pid}/status`, 'utf8');
      const { uid } = podIdentity(gatewayOf(overlay).pod, gatewayOf(overlay).container);
      assert.match(status, new RegExp(`^Uid:\\s+${uid}\\s`, 'm'), 'the gateway runs as the pod\'s uid');
    }
  });

  it('/metrics on the admin port needs the admin token from the Secret', async () => {
    const metrics = `http://127.0.0.1:${local.adminPort}/metrics`;
    assert.equal((await fetch(metrics, { signal: AbortSignal.timeout(5000) })).status, 401);
    const ok = await fetch(metrics, {
      headers: { authorization: `Bearer ${layout.secrets['mcpgate-secrets']['admin-token']}` },
      signal: AbortSignal.timeout(5000),
    });
    assert.equal(ok.status, 200);
    await ok.text();
  });

  it('the Dockerfile\'s HEALTHCHECK command succeeds against the running gateway', () => {
    const healthcheck = RUNTIME.instructions.find((i) => i.keyword === 'HEALTHCHECK');
    const command = execForm(healthcheck.args.slice(healthcheck.args.indexOf('CMD') + 3).trim());
    const adminPort = splitHostPort(YAML.parse(configText).admin.listen).port;
    const local127 = command.map((a) => a.replace(`//127.0.0.1:${adminPort}/`, `//127.0.0.1:${local.adminPort}/`));
    assert.notDeepEqual(local127, command, 'HEALTHCHECK targets 127.0.0.1 on the config\'s admin port');
    const r = spawnSync(local127[0], local127.slice(1), { encoding: 'utf8', timeout: 10000 });
    assert.equal(r.status, 0, `${local127.join(' ')}: ${r.stderr}`);
  });

  it('without a token the protected route answers 401 with a Bearer challenge naming the public URL', async () => {
    const r = await httpsRequest(`https://127.0.0.1:${local.port}${YAML.parse(configText).routes[0].path}`, {
      method: 'POST',
      ca: ca().caPem,
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify(initializeBody()),
    });
    assert.equal(r.status, 401);
    const challenge = parseBearerChallenge(r.headers['www-authenticate']);
    const url = new URL(resource);
    assert.equal(challenge.resource_metadata, `${url.origin}/.well-known/oauth-protected-resource${url.pathname}`);
    assert.equal(challenge.scope, YAML.parse(configText).routes[0].auth.required_scopes.join(' '));
  });

  it('an MCP SDK client with a token from the IdP reaches the sidecar\'s tools through the gateway port (HTTPS)', async () => {
    const url = `https://127.0.0.1:${local.port}${YAML.parse(configText).routes[0].path}`;
    const { stdout } = await execFileP(process.execPath, [path.join(SUPPORT_DIR, 'deploy-mcp-client.mjs'), JSON.stringify({ url, token })], {
      env: { ...process.env, NODE_EXTRA_CA_CERTS: ca().caFile },
      timeout: 30000,
      encoding: 'utf8',
    });
    const r = JSON.parse(stdout.trim().split('\n').pop());
    assert.equal(r.error, undefined, r.error);
    assert.ok(r.sessionId, 'a session through the gateway');
    assert.ok(r.toolNames.includes('echo') && r.toolNames.includes('get-sum'), r.toolNames.join(','));
    assert.equal(r.echoText, 'Echo: hello from the pod layout');
  });

  it('a ConfigMap update (the kubelet swaps ..data) is in force without a signal', async () => {
    const before = parseJsonLines(gw.stdout()).length;
    const route = YAML.parse(configText).routes[0];
    const stricter = [...route.auth.required_scopes, 'mcp:admin'];
    publish({ [configKey()]: runConfig(configText, [[['routes', 0, 'auth', 'required_scopes'], stricter]]) });
    const line = await waitFor(() => parseJsonLines(gw.stdout()).slice(before).find((l) => l.msg === 'config reloaded'), {
      timeoutMs: 5000 * TIME_SCALE,
      what: 'the gateway to log "config reloaded"',
    });
    assert.equal(line.trigger, 'file');
    const r = await httpsRequest(`https://127.0.0.1:${local.port}${route.path}`, {
      method: 'POST',
      ca: ca().caPem,
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${token}` },
      body: JSON.stringify(initializeBody()),
    });
    assert.equal(r.status, 403, 'the token lacks the scope the new config requires');
    assert.match(r.headers['www-authenticate'], /error="insufficient_scope"/);
    assert.match(r.headers['www-authenticate'], /mcp:admin/);
  });

  it('a renewed certificate in the TLS Secret (another ..data swap) is served to new connections without a signal', async () => {
    const { container } = gatewayOf(overlay);
    const tlsConfig = YAML.parse(configText).server.tls;
    const mountOf = (file) => path.relative(container.volumeMounts.find((m) => file.startsWith(`${m.mountPath}/`)).mountPath, file);
    const served = () =>
      new Promise((resolve, reject) => {
        const socket = tls.connect({ host: '127.0.0.1', port: local.port, ca: ca().caPem, servername: 'localhost' }, () => {
          resolve(socket.getPeerCertificate().fingerprint256);
          socket.end();
        });
        socket.on('error', reject);
      });
    const renewed = ca().issue('renewed');
    assert.notEqual(await served(), renewed.fingerprint);
    publish({
      [mountOf(tlsConfig.cert_file)]: fs.readFileSync(renewed.certFile, 'utf8'),
      [mountOf(tlsConfig.key_file)]: fs.readFileSync(renewed.keyFile, 'utf8'),
    });
    await waitFor(async () => (await served()) === renewed.fingerprint, {
      timeoutMs: 5000 * TIME_SCALE,
      what: 'the renewed certificate to be served',
    });
  });

  it('SIGTERM: the gateway exits 0 with nothing written outside stdout (read-only root)', async () => {
    const exit = await gw.stop('SIGTERM', 15000 * TIME_SCALE);
    assert.equal(sanitizerFindings(gw.stderr()), '');
    assert.equal(exit.code, 0, `exit ${JSON.stringify(exit)}\n${gw.output().slice(-3000)}`);
    assert.doesNotMatch(gw.output(), /Read-only file system|Permission denied/);
  });
});

// ---------------------------------------------------------------------------

describe('deploy/docker/Dockerfile (not built here: no container engine)', () => {
  const stages = parseDockerfile(fs.readFileSync(DOCKERFILE, 'utf8'));
  const debian12 = fs.existsSync('/etc/debian_version') && fs.readFileSync('/etc/debian_version', 'utf8').startsWith('12');
  const onDebian12 = debian12 ? {} : { skip: 'the package checks need a Debian 12 machine' };

  it('a builder on debian:bookworm and a runtime on debian:bookworm-slim', () => {
    assert.equal(stages.length, 2);
    assert.equal(stages[0].from, 'debian:bookworm');
    assert.equal(RUNTIME.from, 'debian:bookworm-slim');
  });

  it('the runtime stage runs as a numeric non-root USER, the uid the manifests run as', () => {
    const users = RUNTIME.instructions.filter((i) => i.keyword === 'USER');
    assert.equal(users.length, 1);
    const [uid, gid] = users[0].args.split(':').map(Number);
    assert.ok(Number.isInteger(uid) && uid > 0, `USER ${users[0].args}`);
    for (const overlay of OVERLAYS) {
      const { pod, container } = gatewayOf(overlay);
      assert.deepEqual(podIdentity(pod, container), { uid, gid, fsGroup: gid }, overlay);
    }
  });

  it('HEALTHCHECK runs curl on /healthz at the admin port on loopback; curl is installed', () => {
    const healthchecks = RUNTIME.instructions.filter((i) => i.keyword === 'HEALTHCHECK');
    assert.equal(healthchecks.length, 1);
    const command = execForm(healthchecks[0].args.slice(healthchecks[0].args.indexOf('CMD') + 3).trim());
    assert.equal(command[0], 'curl');
    assert.ok(command.includes('-f') || command.some((a) => /^-[a-zA-Z]*f/.test(a)), 'curl fails on an HTTP error');
    const adminPort = splitHostPort(YAML.parse(gatewayConfigText('sidecar')).admin.listen).port;
    assert.ok(command.includes(`http://127.0.0.1:${adminPort}/healthz`), command.join(' '));
    assert.ok(aptInstalled(RUNTIME).includes('curl'));
  });

  it('ENTRYPOINT is `mcpgate run --config <the file the pod mounts>` (what the sidecar test runs)', () => {
    assert.equal(path.basename(ENTRYPOINT[0]), 'mcpgate');
    assert.deepEqual(ENTRYPOINT.slice(1), ['run', '--config', ENTRYPOINT_CONFIG]);
    for (const overlay of OVERLAYS) assert.match(gatewayConfigText(overlay), /routes:/, `${overlay}: the ConfigMap is mounted at ${ENTRYPOINT_CONFIG}`);
    const copies = RUNTIME.instructions.filter((i) => i.keyword === 'COPY').map((i) => i.args);
    assert.ok(copies.some((c) => c.endsWith(` ${ENTRYPOINT[0]}`)), 'the binary is copied to the ENTRYPOINT path');
    assert.ok(copies.some((c) => /\/usr\/lib\/mcpgate\/plugins\/$/.test(c)), 'the example plugins go to /usr/lib/mcpgate/plugins');
  });

  it('the builder installs every -dev package scripts/lib/common.sh builds with', () => {
    const common = fs.readFileSync(path.join(REPO_ROOT, 'scripts', 'lib', 'common.sh'), 'utf8');
    const buildDeps = /BUILD_DEPS=\(([^)]*)\)/.exec(common)[1].split(/\s+/).filter((p) => p.endsWith('-dev'));
    assert.ok(buildDeps.length >= 5);
    assert.deepEqual(buildDeps.filter((p) => !aptInstalled(stages[0]).includes(p)), []);
  });

  it('every apt package both stages name exists in Debian 12 (apt-cache show)', onDebian12, () => {
    const packages = [...new Set([...aptInstalled(stages[0]), ...aptInstalled(RUNTIME)])];
    assert.ok(packages.length > 20);
    assert.deepEqual(unknownDebianPackages([...packages, 'libmcpgate-no-such-package0']), ['libmcpgate-no-such-package0']);
  });

  it('the runtime packages provide every library the built mcpgate and plugins link (ldd, dpkg -S)', {
    ...onDebian12,
    ...(isSanitizerBuild() ? { skip: 'a sanitizer build links the sanitizer runtimes, which the Release image does not' } : {}),
  }, () => {
    const plugins = path.join(path.dirname(GATEWAY_BIN), 'plugins');
    const files = [GATEWAY_BIN, ...fs.readdirSync(plugins).filter((f) => /^libmcpgate_.*\.so$/.test(f)).map((f) => path.join(plugins, f))];
    assert.ok(files.length >= 4, `the binary and the example plugins: ${files.join(', ')}`);
    const runtime = aptInstalled(RUNTIME);
    const links = files.map((file) => ({ file, ...linkedLibraries(file) }));
    const owner = packagesOwning([...new Set(links.flatMap((l) => l.libs))]);
    const missing = (packages, closed) => {
      const problems = [];
      for (const { file, libs, needed } of links) {
        for (const lib of libs) {
          if (!owner[lib]) problems.push(`${path.basename(file)}: ${lib} belongs to no package`);
          else if (!closed.has(owner[lib])) problems.push(`${path.basename(file)}: ${lib} (${owner[lib]}) is not installed`);
        }
        // What the binary names itself must come from a package the Dockerfile names itself.
        for (const soname of needed) {
          const lib = libs.find((l) => path.basename(l) === soname);
          if (!lib || !packages.includes(owner[lib])) problems.push(`${path.basename(file)}: ${soname} (${owner[lib]}) is not named by the Dockerfile`);
        }
      }
      return [...new Set(problems)];
    };
    assert.deepEqual(missing(runtime, dependencyClosure(runtime)), []);
    // Control: without libhiredis0.14 in the list, the check names it.
    const without = runtime.filter((p) => p !== 'libhiredis0.14');
    assert.ok(missing(without, dependencyClosure(without)).some((p) => p.includes('libhiredis')), 'the check can fail');
  });
});
