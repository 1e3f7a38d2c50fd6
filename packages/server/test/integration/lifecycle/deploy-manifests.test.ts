// The deployment files (Dockerfile, docker-compose.yml, deploy/kubernetes, deploy/nginx) checked
// against the code: config keys against ConfigSchema, environment variables against the FERRY_*
// mapping, commands and flags against the built CLI's --help, probe paths and ports against the
// server, metric names against a real /metrics. Docker and Kubernetes are not on this machine, so
// this is what keeps the files from drifting.
//
// Parts written by other issues (jobs: `ferry worker`, `serve --no-workers`, the `jobs:` config;
// pipelines: `ferry batch`, the pipeline Jobs; auth: FERRY_API_KEYS) are checked strictly once
// the code is in this tree, and listed as pending until then.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { ConfigSchema, type FerryConfig } from '../../config/schema.js';
import { configLeaves, loadConfig } from '../../config/load.js';
import { startTestServer, tinyClassifier, CLI_PATH } from '@ferry/test-kit';

const ROOT = fileURLToPath(new URL('../../../../../', import.meta.url));
const file = (p: string) => join(ROOT, p);
const read = (p: string) => readFileSync(file(p), 'utf8');

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Config sections, env variables and commands that other issues add; allowed (and reported) only while their code is
 * absent.
 */
const PENDING_SECTIONS: Record<string, string> = {
  jobs: 'issue 6 (jobs)',
  pipelines: 'issue 7 (pipelines)',
  auth: 'issue 9 (auth)',
};
const PENDING_ENV: Record<string, string> = { FERRY_API_KEYS: 'auth' };
const PENDING_COMMANDS: Record<string, string> = { worker: 'jobs', batch: 'pipelines' };
const PENDING_FLAGS: Record<string, string> = { 'serve --no-workers': 'jobs' };
const pending = new Set<string>();

const sections = Object.keys(ConfigSchema.properties);
const leafEnv = new Set(configLeaves().map((l) => l.env));
/** Read by config/load.ts below their FERRY_* names, or by the CLI entry point. */
const CONVENTIONAL_ENV = new Set(['REDIS_URL', 'DATABASE_URL', 'FERRY_CONFIG', 'NODE_ENV']);
const defaultPort = (ConfigSchema.properties.server.properties.port as { default: number }).default;

function checkEnvName(name: string, where: string): void {
  if (CONVENTIONAL_ENV.has(name) || leafEnv.has(name)) return;
  const owner = PENDING_ENV[name];
  if (owner && !sections.includes(owner)) {
    pending.add(`${name} (${owner})`);
    return;
  }
  if (owner === 'auth' && sections.includes('auth')) {
    // Once auth is merged, load.ts must read it.
    assert.match(
      read('packages/server/src/config/load.ts'),
      new RegExp(name),
      `${where}: ${name} is read by config/load.ts`,
    );
    return;
  }
  assert.fail(`${where}: ${name} is not a Ferry setting (see \`ferry config --env\`)`);
}

/** Validates a ferry.config.yaml text with the real loader; sections of issues not merged yet are set aside. */
function checkConfigText(text: string, where: string, env: NodeJS.ProcessEnv = {}): FerryConfig {
  const doc = parse(text) as Json;
  for (const key of Object.keys(doc)) {
    if (sections.includes(key)) continue;
    assert.ok(PENDING_SECTIONS[key], `${where}: "${key}" is not a config section`);
    pending.add(`config section ${key}: (${PENDING_SECTIONS[key]})`);
    delete doc[key];
  }
  const dir = mkdtempSync(join(tmpdir(), 'ferry-cfg-'));
  try {
    writeFileSync(join(dir, 'ferry.config.yaml'), stringify(doc));
    return loadConfig({ file: join(dir, 'ferry.config.yaml'), env, cwd: dir });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const helpCache = new Map<string, string>();
function help(cmd: string[]): string {
  const key = cmd.join(' ');
  if (!helpCache.has(key))
    helpCache.set(key, execFileSync(process.execPath, [CLI_PATH, ...cmd, '--help'], { encoding: 'utf8' }));
  return helpCache.get(key)!;
}
const commands = () => [...help([]).matchAll(/^ {2}([a-z][a-z-]*) /gm)].map((m) => m[1]!);

/** `["serve", "--no-workers"]` → the command exists and accepts every flag (as the built CLI's --help says). */
function checkArgs(args: string[], where: string): void {
  const [cmd, ...rest] = args;
  assert.ok(cmd, `${where}: a command`);
  if (!commands().includes(cmd!)) {
    assert.ok(PENDING_COMMANDS[cmd!], `${where}: "ferry ${cmd}" is not a command of the CLI`);
    pending.add(`ferry ${cmd} (${PENDING_COMMANDS[cmd!]})`);
    return;
  }
  // Subcommands (e.g. `batch run`): words before the first flag.
  const path = [cmd!];
  for (const a of rest) {
    if (a.startsWith('-')) break;
    if (/^[a-z-]+$/.test(a) && help(path).includes(`  ${a} `)) path.push(a);
    else break;
  }
  const text = help(path);
  for (const a of rest.filter((x) => x.startsWith('--'))) {
    const flag = a.split('=')[0]!;
    if (text.includes(`${flag} `) || text.includes(`${flag},`) || text.includes(`${flag}\n`)) continue;
    const key = `${path.join(' ')} ${flag}`;
    assert.ok(PENDING_FLAGS[key], `${where}: ferry ${path.join(' ')} has no ${flag}`);
    pending.add(`${key} (${PENDING_FLAGS[key]})`);
  }
}

// ---------------------------------------------------------------------------------------------

interface Instr {
  op: string;
  args: string;
  stage: number;
}

function dockerfile(): { instrs: Instr[]; stages: Array<{ from: string; name?: string }> } {
  const lines = read('Dockerfile')
    .split('\n')
    .filter((l) => !/^\s*#/.test(l));
  const joined = lines.join('\n').replace(/\\\n/g, ' ');
  const stages: Array<{ from: string; name?: string }> = [];
  const instrs: Instr[] = [];
  const args = new Map<string, string>();
  for (const raw of joined.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    const m = /^([A-Z]+)\s+(.*)$/.exec(line);
    assert.ok(m, `Dockerfile: cannot read "${line}"`);
    // A global ARG's default is what production builds FROM (`ARG NODE_IMAGE=node:22-bookworm-slim`).
    const arg = /^ARG\s+(\w+)=(\S+)$/.exec(line);
    if (arg && stages.length === 0) args.set(arg[1]!, arg[2]!);
    if (m![1] === 'FROM') {
      const f = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(m![2]!)!;
      const from = f[1]!.replace(/\$\{(\w+)\}/g, (_, name: string) => args.get(name) ?? '');
      stages.push({ from, ...(f[2] && { name: f[2] }) });
    }
    instrs.push({ op: m![1]!, args: m![2]!, stage: stages.length - 1 });
  }
  return { instrs, stages };
}

test('Dockerfile: multi-stage, non-root, HEALTHCHECK on /healthz at the real port, real env settings, entry point and command', () => {
  const { instrs, stages } = dockerfile();
  assert.ok(stages.length >= 2, 'multi-stage');
  const runtime = stages.findIndex((s) => s.name === 'runtime');
  assert.ok(runtime > 0, 'a runtime stage after the build stage');
  assert.match(stages[runtime]!.from, /-slim|distroless/, 'a small base image for the runtime');
  const inStage = (i: number, op: string) => instrs.filter((x) => x.stage === i && x.op === op);
  // Non-root in the runtime stage and every stage built from it.
  for (let i = runtime; i < stages.length; i++) {
    const users = instrs.filter((x) => x.stage <= i && x.stage >= runtime && x.op === 'USER');
    assert.ok(
      users.length > 0 && !/^(root|0)(:|$)/.test(users.at(-1)!.args),
      `stage ${stages[i]!.name}: runs as a non-root user`,
    );
  }
  // Nothing from the build stage's dev tooling: only COPY --from=build of what runs.
  for (const c of inStage(runtime, 'COPY')) assert.match(c.args, /--from=build/);
  const env = Object.fromEntries(
    inStage(runtime, 'ENV').flatMap((e) => [...e.args.matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1]!, m[2]!])),
  );
  for (const k of Object.keys(env)) checkEnvName(k, 'Dockerfile ENV');
  const cfg = loadConfig({ env, cwd: tmpdir() });
  assert.equal(cfg.models.dir, '/models');
  const port = cfg.server.port;
  assert.deepEqual(
    inStage(runtime, 'EXPOSE').map((e) => e.args),
    [String(port)],
  );
  const hc = inStage(runtime, 'HEALTHCHECK')[0];
  assert.ok(hc, 'HEALTHCHECK');
  assert.match(hc!.args, /\/healthz/);
  assert.match(hc!.args, new RegExp(`FERRY_SERVER_PORT\\|\\|${port}`), 'the health check uses the configured port');
  assert.equal(inStage(runtime, 'STOPSIGNAL')[0]?.args, 'SIGTERM');
  const entry = JSON.parse(inStage(runtime, 'ENTRYPOINT')[0]!.args) as string[];
  assert.equal(entry[0], 'node');
  assert.ok(entry[1]!.startsWith('/app/'), 'entry point inside WORKDIR /app');
  assert.ok(existsSync(file(entry[1]!.slice('/app/'.length))), `${entry[1]} is what the build produces`);
  checkArgs(JSON.parse(inStage(runtime, 'CMD')[0]!.args) as string[], 'Dockerfile CMD');
  // The build stage's COPY sources exist, and .dockerignore does not drop them.
  const ignore = read('.dockerignore')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  assert.ok(ignore.includes('**/node_modules'), '.dockerignore keeps the host node_modules out');
  for (const c of instrs.filter((x) => x.op === 'COPY' && !x.args.includes('--from='))) {
    const parts = c.args.replace(/--chown=\S+\s*/, '').split(/\s+/);
    for (const src of parts.slice(0, -1)) {
      assert.ok(existsSync(file(src)), `COPY ${src}: exists in the repository`);
      assert.ok(
        !ignore.some((g) => g === src || g === src.split('/')[0]),
        `COPY ${src}: not excluded by .dockerignore`,
      );
    }
  }
  // The price table `ferry cost` reads ships inside packages/tools, which the image copies.
  assert.ok(existsSync(file('packages/tools/prices.yaml')));
  assert.ok(
    inStage(runtime, 'COPY').some((c) => /\/app\/packages\/tools(\/dist)? /.test(c.args)) &&
      inStage(runtime, 'COPY').some((c) => /\/app\/packages\/tools\/prices\.yaml /.test(c.args)),
    'the image has @ferry/tools',
  );
  assert.ok(
    instrs.some((x) => x.stage === 0 && x.op === 'RUN' && /tsc -b packages\/core packages\/server/.test(x.args)),
    'the build compiles core and server',
  );
  const baked = stages.findIndex((s) => s.name === 'with-models');
  assert.ok(baked > runtime && stages[baked]!.from === 'runtime', 'a target with the models baked in');
});

function compose(): Json {
  return parse(read('docker-compose.yml'), { merge: true }) as Json;
}

function checkFerryContainerEnv(env: Record<string, string>, where: string): void {
  for (const name of Object.keys(env)) checkEnvName(name, where);
}

test('docker-compose.yml: 2 API replicas and 2 workers on real commands, Redis with AOF, PostgreSQL, proxy, Prometheus and Grafana wired to real files, ports and paths', () => {
  const c = compose();
  const s = c.services as Record<string, Json>;
  const apis = Object.keys(s).filter((k) => (s[k]!.command as string[] | undefined)?.[0] === 'serve');
  const workers = Object.keys(s).filter((k) => (s[k]!.command as string[] | undefined)?.[0] === 'worker');
  assert.equal(apis.length, 2, 'two API replicas');
  assert.equal(workers.length, 2, 'two workers');
  const configMount = '/etc/ferry/ferry.config.yaml';
  let cfg: FerryConfig | undefined;
  for (const name of [...apis, ...workers]) {
    const svc = s[name]!;
    checkArgs(svc.command as string[], `compose ${name}`);
    checkFerryContainerEnv(svc.environment as Record<string, string>, `compose ${name}`);
    assert.equal(svc.environment.FERRY_CONFIG, configMount);
    // `${MODELS_DIR:-./models}`: checked at its default.
    const mounts = (svc.volumes as string[]).map((v) => v.replace(/\$\{\w+:-([^}]*)\}/g, '$1').split(':'));
    for (const [host] of mounts) assert.ok(existsSync(resolve(ROOT, host!)), `compose ${name}: ${host} exists`);
    const cfgHost = mounts.find((m) => m[1] === configMount)![0]!;
    cfg = checkConfigText(readFileSync(resolve(ROOT, cfgHost), 'utf8'), cfgHost);
    assert.equal(mounts.find((m) => m[1] === cfg!.models.dir)?.[2], 'ro', 'models mounted read-only at models.dir');
    assert.ok(
      Number.parseInt(svc.stop_grace_period, 10) * 1000 > cfg.server.shutdownGraceMs,
      `${name}: Docker waits longer than Ferry's own deadline`,
    );
    const redis = new URL(svc.environment.REDIS_URL);
    assert.ok(s[redis.hostname], 'REDIS_URL names the redis service');
    const pg = new URL(svc.environment.DATABASE_URL.replace(/\$\{[^}]+\}/g, 'x'));
    assert.ok(s[pg.hostname], 'DATABASE_URL names the postgres service');
    assert.equal(pg.username, s[pg.hostname]!.environment.POSTGRES_USER);
    assert.equal(pg.pathname.slice(1), s[pg.hostname]!.environment.POSTGRES_DB);
    assert.deepEqual(Object.keys(svc.depends_on).sort(), [redis.hostname, pg.hostname].sort());
  }
  // Each API replica serves gRPC on the port its --grpc-port flag names, and exposes it.
  const grpcPortOf = (name: string) => {
    const cmd = s[name]!.command as string[];
    const i = cmd.indexOf('--grpc-port');
    assert.ok(i > 0, `${name}: serves gRPC (--grpc-port)`);
    return cmd[i + 1]!;
  };
  for (const name of apis) assert.deepEqual(s[name]!.expose, [String(cfg!.server.port), grpcPortOf(name)]);
  // The image compose builds is a stage of the Dockerfile.
  const stages = dockerfile().stages.map((st) => st.name);
  for (const name of [...apis, ...workers])
    assert.ok(stages.includes(s[name]!.build.target), `${name}: builds Dockerfile stage ${s[name]!.build.target}`);
  // Redis persists (append-only file on a named volume).
  const redisCmd = (s.redis!.command as string[]).join(' ');
  assert.match(redisCmd, /--appendonly yes/);
  assert.match((s.redis!.volumes as string[])[0]!, /^[\w-]+:\/data$/);
  assert.ok(c.volumes[(s.redis!.volumes as string[])[0]!.split(':')[0]!] !== undefined);
  // Proxy: nginx with the repository's config, upstreams = the API services on the real port.
  const proxy = s.proxy!;
  const nginxMount = (proxy.volumes as string[])[0]!.split(':');
  assert.equal(nginxMount[0], './deploy/nginx/nginx.conf');
  const upstreamBlock = (name: string) =>
    [...read('deploy/nginx/nginx.conf').matchAll(/upstream\s+(\w+)\s*\{([^}]*)\}/g)].find((m) => m[1] === name)?.[2] ??
    '';
  const upstreams = (name: string) =>
    [...upstreamBlock(name).matchAll(/^\s*server\s+([\w.-]+):(\d+)/gm)].map((m) => `${m[1]}:${m[2]}`);
  assert.deepEqual(upstreams('ferry_api').sort(), apis.map((a) => `${a}:${cfg!.server.port}`).sort());
  assert.deepEqual(upstreams('ferry_grpc').sort(), apis.map((a) => `${a}:${grpcPortOf(a)}`).sort());
  // Prometheus: scrapes every API replica and worker at their real ports; alerts file mounted.
  const promMounts = Object.fromEntries(
    (s.prometheus!.volumes as string[])
      .map((v) => v.split(':'))
      .filter((m) => m[0]!.startsWith('./'))
      .map((m) => [m[1]!, m[0]!]),
  );
  const prom = parse(read(promMounts['/etc/prometheus/prometheus.yml']!)) as Json;
  assert.ok(promMounts[`/etc/prometheus/${prom.rule_files[0]}`], 'the rule file Prometheus loads is mounted');
  const targets = (prom.scrape_configs[0].static_configs as Json[]).flatMap((sc) => sc.targets as string[]);
  const workerPort = (n: string) => (s[n]!.command as string[])[(s[n]!.command as string[]).indexOf('--port') + 1];
  assert.deepEqual(
    targets.sort(),
    [...apis.map((a) => `${a}:${cfg!.server.port}`), ...workers.map((w) => `${w}:${workerPort(w)}`)].sort(),
  );
  assert.equal(prom.scrape_configs[0].metrics_path, '/metrics');
  // Grafana: provisioning and the dashboard where the provider looks for it.
  const gMounts = (s.grafana!.volumes as string[]).map((v) => v.split(':'));
  for (const [host] of gMounts) assert.ok(existsSync(resolve(ROOT, host!)));
  const provider = parse(read('deploy/grafana/provisioning/dashboards/ferry.yml')) as Json;
  const dashPath = provider.providers[0].options.path as string;
  assert.ok(
    gMounts.some(
      ([host, inContainer]) => host!.endsWith('ferry-dashboard.json') && inContainer!.startsWith(`${dashPath}/`),
    ),
  );
  assert.ok(gMounts.some(([, inContainer]) => inContainer === '/etc/grafana/provisioning'));
  const ds = parse(read('deploy/grafana/provisioning/datasources/prometheus.yml')) as Json;
  assert.ok(s[new URL(ds.datasources[0].url).hostname], 'Grafana datasource points at the prometheus service');
});

function k8sDocs(): Array<{ file: string; doc: Json }> {
  const dir = file('deploy/kubernetes');
  return readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml')
    .flatMap((f) =>
      parseAllDocuments(readFileSync(join(dir, f), 'utf8'))
        .map((d) => ({ file: f, doc: d.toJS() as Json }))
        .filter((d) => d.doc),
    );
}

function find(docs: Array<{ file: string; doc: Json }>, kind: string, name?: string): Json | undefined {
  return docs.find((d) => d.doc.kind === kind && (name === undefined || d.doc.metadata?.name === name))?.doc;
}

test(
  'Kubernetes: API Deployment probes /readyz and /healthz on the real port, HPA on CPU and a real Ferry metric, PDB, KEDA on the BullMQ wait list, ConfigMap and Secrets',
  { timeout: 60_000 },
  async () => {
    const docs = k8sDocs();
    for (const d of docs)
      assert.ok(d.doc.apiVersion && d.doc.kind && d.doc.metadata?.name, `${d.file}: a Kubernetes object`);
    const kust = parse(read('deploy/kubernetes/kustomization.yaml')) as Json;
    const listed = kust.resources as string[];
    for (const f of readdirSync(file('deploy/kubernetes')).filter(
      (x) => /\.ya?ml$/.test(x) && x !== 'kustomization.yaml',
    ))
      assert.ok(listed.includes(f), `kustomization lists ${f}`);
    for (const r of listed) {
      if (existsSync(file(`deploy/kubernetes/${r}`))) continue;
      assert.ok(/^pipeline-/.test(r) && !sections.includes('pipelines'), `kustomization: ${r} exists`);
      pending.add(`deploy/kubernetes/${r} (pipelines)`);
    }

    const cm = find(docs, 'ConfigMap', 'ferry-config')!;
    const cfgText = cm.data['ferry.config.yaml'] as string;
    const cfg = checkConfigText(cfgText, 'ConfigMap ferry-config');
    const secret = find(docs, 'Secret', 'ferry-secrets')!;
    const secretKeys = Object.keys(secret.stringData ?? secret.data);
    assert.ok(secretKeys.includes('REDIS_URL') && secretKeys.includes('DATABASE_URL'), 'URLs are Secrets');
    assert.ok(secretKeys.includes('FERRY_API_KEYS'), 'API keys are a Secret');
    assert.ok(
      !/REDIS_URL|DATABASE_URL|API_KEYS|password/i.test(cfgText.replace(/^\s*#.*$/gm, '')),
      'no secret in the ConfigMap',
    );

    const podSpec = (name: string) => find(docs, 'Deployment', name)!.spec.template.spec as Json;
    /** Environment a Ferry container sees, with its checks: env names real, FERRY_CONFIG = the mounted ConfigMap. */
    const checkFerryPod = (name: string) => {
      const spec = podSpec(name);
      const c = spec.containers[0] as Json;
      checkArgs(c.args as string[], `Deployment ${name}`);
      const env = Object.fromEntries((c.env as Json[]).map((e) => [e.name as string, e.value as string]));
      for (const k of Object.keys(env)) checkEnvName(k, `Deployment ${name} env`);
      const fromSecret = (c.envFrom as Json[]).map((e) => e.secretRef?.name);
      assert.deepEqual(fromSecret, ['ferry-secrets']);
      // Every key of the secret becomes an env variable of this pod: each must be a Ferry setting, or one KEDA alone
      // reads.
      for (const k of secretKeys.filter((x) => !/^REDIS_(ADDRESS|PASSWORD)$/.test(x)))
        checkEnvName(k, `Secret ferry-secrets → ${name}`);
      const cfgVol = (spec.volumes as Json[]).find((v) => v.configMap?.name === 'ferry-config')!;
      const mount = (c.volumeMounts as Json[]).find((m) => m.name === cfgVol.name)!;
      assert.equal(env.FERRY_CONFIG, `${mount.mountPath}/ferry.config.yaml`);
      const models = (c.volumeMounts as Json[]).find((m) => m.mountPath === cfg.models.dir);
      assert.ok(models?.readOnly, `${name}: models.dir is a read-only mount`);
      assert.ok(spec.securityContext.runAsNonRoot && spec.securityContext.runAsUser !== 0);
      assert.ok(
        spec.terminationGracePeriodSeconds * 1000 > cfg.server.shutdownGraceMs,
        `${name}: the kubelet waits longer than Ferry's deadline`,
      );
      return { spec, c, env };
    };

    const api = find(docs, 'Deployment', 'ferry-api')!;
    const { c: apiC } = checkFerryPod('ferry-api');
    const http = (apiC.ports as Json[]).find((p) => p.name === 'http')!;
    assert.equal(http.containerPort, cfg.server.port);
    // Probes go to the health port (`--health-port`), answered off the serving loop.
    const healthPort = (apiC.ports as Json[]).find((p) => p.name === 'health')!;
    const args = apiC.args as string[];
    assert.equal(String(healthPort.containerPort), args[args.indexOf('--health-port') + 1]);
    assert.deepEqual(apiC.readinessProbe.httpGet, { path: '/readyz', port: 'health' });
    assert.deepEqual(apiC.livenessProbe.httpGet, { path: '/healthz', port: 'health' });
    assert.deepEqual(apiC.startupProbe.httpGet, { path: '/healthz', port: 'health' });
    assert.ok(
      cfg.lifecycle.drainDelayMs >= apiC.readinessProbe.periodSeconds * apiC.readinessProbe.failureThreshold * 1000,
      'the drain delay outlasts one failed readiness probe',
    );
    assert.ok(api.spec.replicas >= 1);
    const svc = find(docs, 'Service', 'ferry-api')!;
    assert.equal(svc.spec.ports[0].targetPort, 'http');
    assert.deepEqual(svc.spec.selector, api.spec.selector.matchLabels);

    // The HPA scales the API on CPU and on a metric that a real Ferry server exposes.
    const hpa = find(docs, 'HorizontalPodAutoscaler', 'ferry-api')!;
    assert.deepEqual(hpa.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: 'ferry-api' });
    assert.ok(hpa.spec.minReplicas >= 1, 'minReplicas ≥ 1: no cold start');
    assert.ok(hpa.spec.maxReplicas > hpa.spec.minReplicas);
    assert.ok((hpa.spec.metrics as Json[]).some((m) => m.type === 'Resource' && m.resource.name === 'cpu'));
    const ferryMetric = (hpa.spec.metrics as Json[]).find((m) => m.type === 'Pods')!.pods.metric.name as string;
    const t = await startTestServer([{ name: 'cls', version: '1.0.0', files: tinyClassifier() }]);
    try {
      const text = (await t.server.app.inject({ url: '/metrics' })).body;
      assert.match(
        text,
        new RegExp(`^# TYPE ${ferryMetric} gauge$`, 'm'),
        `the HPA metric ${ferryMetric} is a gauge Ferry exports`,
      );
    } finally {
      await t.close();
    }
    const pdb = find(docs, 'PodDisruptionBudget', 'ferry-api')!;
    assert.deepEqual(pdb.spec.selector.matchLabels, api.spec.selector.matchLabels);
    assert.ok(
      pdb.spec.minAvailable >= 1 && pdb.spec.minAvailable < hpa.spec.minReplicas,
      'a PDB that still lets nodes drain',
    );

    // Workers and KEDA on the BullMQ wait list `<prefix>:<queueName>:wait` of the configured queue.
    checkFerryPod('ferry-worker');
    const so = find(docs, 'ScaledObject', 'ferry-worker')!;
    assert.equal(so.spec.scaleTargetRef.name, 'ferry-worker');
    assert.ok(so.spec.minReplicaCount >= 1);
    const trigger = (so.spec.triggers as Json[]).find((x) => x.type === 'redis')!;
    const jobs =
      (cfg as unknown as { jobs?: { prefix: string; queueName: string } }).jobs ??
      ((parse(cfgText) as Json).jobs as { prefix: string; queueName: string });
    assert.equal(trigger.metadata.listName, `${jobs.prefix}:${jobs.queueName}:wait`);
    assert.ok(secretKeys.includes(trigger.metadata.addressFromEnv));
    const auth = find(docs, 'TriggerAuthentication', trigger.authenticationRef.name)!;
    for (const ref of auth.spec.secretTargetRef as Json[])
      assert.ok(ref.name === 'ferry-secrets' && secretKeys.includes(ref.key));
    const workerPort = podSpec('ferry-worker').containers[0].args.at(-1);
    assert.equal(String(podSpec('ferry-worker').containers[0].ports[0].containerPort), workerPort);

    // The batch pipeline CronJob and Indexed Job (issue 7), when present.
    const cron = docs.find((d) => d.doc.kind === 'CronJob');
    const indexed = docs.find((d) => d.doc.kind === 'Job' && d.doc.spec?.completionMode === 'Indexed');
    if (!cron || !indexed) pending.add('pipeline CronJob / Indexed Job manifests (pipelines)');
    for (const d of [cron, indexed].filter(Boolean) as Array<{ file: string; doc: Json }>) {
      const tmpl = d.doc.kind === 'CronJob' ? d.doc.spec.jobTemplate.spec.template.spec : d.doc.spec.template.spec;
      const c = tmpl.containers[0] as Json;
      checkArgs(c.args as string[], `${d.file}`);
      const args = (c.args as string[]).join(' ');
      for (const e of (c.env ?? []) as Json[]) {
        // A downward-API variable used only to build the arguments ($(JOB_NAME)) is Kubernetes', not Ferry's.
        if (e.valueFrom?.fieldRef && args.includes(`$(${e.name})`)) continue;
        checkEnvName(e.name, d.file);
        // Secret and ConfigMap references resolve to objects (and keys) defined in deploy/kubernetes.
        const ref = e.valueFrom?.secretKeyRef ?? e.valueFrom?.configMapKeyRef;
        if (ref) {
          const target = find(docs, e.valueFrom.secretKeyRef ? 'Secret' : 'ConfigMap', ref.name);
          assert.ok(target, `${d.file}: ${e.name} refers to ${ref.name}, which deploy/kubernetes does not define`);
          assert.ok(
            Object.keys(target!.stringData ?? target!.data ?? {}).includes(ref.key),
            `${d.file}: ${ref.name} has no key ${ref.key}`,
          );
        }
      }
      for (const v of (tmpl.volumes ?? []) as Json[])
        if (v.configMap)
          assert.ok(find(docs, 'ConfigMap', v.configMap.name), `${d.file}: ConfigMap ${v.configMap.name} is defined`);
      assert.ok(['Never', 'OnFailure'].includes(tmpl.restartPolicy));
    }
    if (indexed)
      assert.ok(
        indexed.doc.spec.completions >= 2 && indexed.doc.spec.parallelism >= 1,
        'a sharded run has several completions',
      );
  },
);

test("nginx.conf: retries a refused connection on the other replica, no upstream keepalive, body limit ≥ Ferry's, streams unbuffered", () => {
  const text = read('deploy/nginx/nginx.conf');
  const directive = (name: string) =>
    [...text.matchAll(new RegExp(`^\\s*${name}\\s+([^;]+);`, 'gm'))].map((m) => m[1]!.trim());
  const nextUpstream = directive('proxy_next_upstream')[0]!.split(/\s+/);
  assert.ok(nextUpstream.includes('error'));
  // A POST reset by a stopping replica is retried by nginx; safe only while the replicas key job
  // submissions by nginx's request id, which must be set on what nginx forwards.
  if (nextUpstream.includes('non_idempotent')) {
    assert.ok(directive('proxy_set_header').includes('X-Request-Id $request_id'), 'nginx sets X-Request-Id');
    const composeCfg = loadConfig({ file: file('deploy/compose/ferry.config.yaml'), env: {}, cwd: ROOT });
    assert.equal(
      composeCfg.jobs.proxyRequestIdempotency,
      true,
      'the compose replicas behind this nginx key job POSTs by X-Request-Id',
    );
  }
  assert.ok(Number(directive('proxy_next_upstream_tries')[0]) >= 2);
  assert.deepEqual(directive('keepalive'), [], 'no upstream keepalive (see the comment in the file)');
  const body = directive('client_max_body_size')[0]!;
  const bytes = Number.parseInt(body, 10) * (body.endsWith('m') ? 1024 * 1024 : body.endsWith('k') ? 1024 : 1);
  const limit = (ConfigSchema.properties.server.properties.bodyLimitBytes as { default: number }).default;
  assert.ok(bytes > limit, 'Ferry, not nginx, answers an oversized body (as problem+json)');
  assert.ok(directive('proxy_buffering').includes('off'));
  assert.equal(defaultPort, 8080);
});

// Prints what the checks set aside until jobs, pipelines and auth are merged.
after(() => {
  if (pending.size) console.log(`# deploy manifests: checked only once merged: ${[...pending].sort().join('; ')}`);
});
