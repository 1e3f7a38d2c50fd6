#!/usr/bin/env node
// The `ferry` command line: serve, predict, models, init, config.
import { existsSync, readFileSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { stringify } from 'yaml';
import { loadConfig, configLeaves, ConfigError, type ConfigSources, type FerryConfig } from '../config/index.js';
import { RepositoryError, ManifestError, Repository } from '../serving/repository/index.js';
import { createServer } from '../app/create-server.js';
import { FerryError, toProblem } from '../errors.js';
import { SERVER_VERSION } from '../version.js';
import { initModel } from '../serving/repository/init-model.js';
import { instancesFromBody } from '../http/plugins/v1.js';
import { runQuantizeCli } from '../quantize/index.js';
import { runDriftCli } from '../monitoring/drift/index.js';
import { runChatCli } from './commands/chat.js';
import { installSignalHandlers } from '../lifecycle/index.js';
import { registerCapacityCommands, BenchError, CostError, PricesError, ProfileError } from '../capacity/index.js';
import { registerClientCommand } from './commands/client.js';
import { runWorkerCli } from './commands/worker.js';
import { watchRepository } from '../rollout/index.js';
import { registerKeysCommand } from './commands/keys.js';
import { ApiKeyError } from '../auth/keys.js';
import { registerBatchCommand } from './commands/batch.js';
import { runStreamCli } from './commands/stream.js';

interface CommonOpts { config?: string; models?: string; port?: string; host?: string; workers?: string; logLevel?: string }

function sourcesFrom(o: CommonOpts): ConfigSources {
  // The file loadConfig would pick by itself, named here so that a reload reads the same one.
  const file = o.config ?? process.env.FERRY_CONFIG ?? (existsSync('ferry.config.yaml') ? 'ferry.config.yaml' : undefined);
  return {
    ...(file !== undefined && { file }),
    overrides: {
      'models.dir': o.models,
      'server.port': o.port,
      'server.host': o.host,
      'runtime.workers': o.workers,
      'log.level': o.logLevel,
    },
  };
}

function configFrom(o: CommonOpts): FerryConfig {
  return loadConfig(sourcesFrom(o));
}

const common = (c: Command): Command => c
  .option('-c, --config <file>', 'ferry.config.yaml to read')
  .option('-m, --models <dir>', 'model repository folder')
  .option('--workers <n>', 'inference worker threads (0 = one per core)')
  .addOption(new Option('--log-level <level>', 'log level').choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']));

function readData(data: string): unknown {
  const text = data.startsWith('@') ? readFileSync(data.slice(1), 'utf8') : data;
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`--data is not valid JSON: ${(e as Error).message}`);
  }
}

const program = new Command('ferry').version(SERVER_VERSION).description('Ferry: serve ONNX models to web apps');
registerKeysCommand(program);

common(program.command('serve').description('start the server with the model repository'))
  .option('-p, --port <port>', 'port (default 8080)')
  .option('-H, --host <host>', 'address to bind (default 0.0.0.0)')
  .option('--no-workers', 'API-only node: accept jobs, run none (workers are `ferry worker` processes)')
  .option('-w, --watch', 'load, reload and unload model versions as the repository folder changes')
  .action(async (o: Omit<CommonOpts, 'workers'> & { workers?: string | boolean; watch?: boolean }) => {
    // commander's --no-workers sets `workers: false`, sharing the name with --workers <n>.
    const noJobWorkers = o.workers === false;
    const sources = sourcesFrom({ ...o, workers: typeof o.workers === 'string' ? o.workers : undefined });
    const cfg = loadConfig(sources);
    const server = await createServer(cfg, { ...(noJobWorkers && { jobWorkers: false }), configSources: sources });
    const watcher = o.watch ? watchRepository(cfg.models.dir, server.manager, server.log.child({ component: 'watch' })) : undefined;
    if (watcher) server.lifecycle.onDrain('watch', () => watcher.close());
    // --watch also follows ferry.config.yaml (rollout blocks, keys) and auth.keysFile.
    const configWatcher = o.watch ? server.configReloader.watch(cfg) : undefined;
    if (configWatcher) server.lifecycle.onDrain('config-watch', () => configWatcher.close());
    installSignalHandlers(server);
    // SIGHUP: re-read API keys and rollout blocks (key rotation without a restart), then reload the repository.
    process.on('SIGHUP', () => {
      server.log.info('SIGHUP: re-reading the configuration');
      server.reloadConfig().catch((err: unknown) => server.log.error({ err }, 'reload after SIGHUP failed'));
    });
    const addr = await server.listen();
    server.log.info({ url: addr.url, models: server.repository.models().map((m) => m.name) }, 'listening; loading models');
    try {
      await server.loaded;
      server.log.info({ url: addr.url }, 'ready');
    } catch (e) {
      server.log.fatal({ err: e }, 'a model failed to load; refusing to serve a partial repository');
      await server.close();
      process.exit(1);
    }
  });

common(program.command('predict <model>').description('run one prediction, in process (or against --url)'))
  .requiredOption('-d, --data <json>', 'JSON body: {"instances": [...]} or a bare instance or array; @file reads a file')
  .option('--url <url>', 'a running Ferry server to call instead of loading the model here')
  .action(async (model: string, o: CommonOpts & { data: string; url?: string }) => {
    let body = readData(o.data);
    if (Array.isArray(body)) body = { instances: body };
    else if (body && typeof body === 'object' && !('instances' in body) && !('inputs' in body)) body = { instances: [body] };
    if (o.url) {
      const res = await fetch(`${o.url.replace(/\/$/, '')}/v1/models/${encodeURIComponent(model)}/predict`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
      });
      process.stdout.write(`${JSON.stringify(await res.json(), null, 2)}\n`);
      if (!res.ok) process.exitCode = 1;
      return;
    }
    const cfg = configFrom({ ...o, logLevel: o.logLevel ?? 'warn' });
    const name = model.split('@')[0]!;
    const server = await createServer(loadConfig({ ...(o.config !== undefined && { file: o.config }), overrides: { 'models.dir': cfg.models.dir, 'models.only': [name], 'runtime.workers': 1, 'log.level': cfg.log.level } }));
    try {
      await server.loaded;
      const v = server.repository.resolve(model);
      const { instances, base } = instancesFromBody(body);
      const r = await server.service.predict(v, instances, base);
      process.stdout.write(`${JSON.stringify({ model: v.name, version: v.version, predictions: r.predictions }, null, 2)}\n`);
    } finally {
      await server.close();
    }
  });

common(program.command('worker').description('run job workers only (BullMQ with REDIS_URL; otherwise the SQL queue in the shared store)'))
  .option('--concurrency <n>', 'jobs this process runs at once (jobs.concurrency)')
  .option('-p, --port <port>', 'also serve health and /metrics on this port')
  .action((o: CommonOpts & { concurrency?: string }) => runWorkerCli(o));

common(program.command('models').description('list the models in the repository'))
  .option('--json', 'print JSON')
  .action((o: CommonOpts & { json?: boolean }) => {
    const cfg = configFrom(o);
    const repo = Repository.load(cfg.models.dir, cfg.models.only);
    const rows = repo.models().map((m) => ({
      name: m.name,
      default: repo.resolve(m.name).version,
      versions: m.versions.map((v) => v.version),
      aliases: m.aliases,
    }));
    if (o.json) { process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`); return; }
    for (const r of rows) {
      const aliases = Object.entries(r.aliases).map(([a, v]) => `${a}=${v}`).join(' ');
      process.stdout.write(`${r.name}\tdefault ${r.default}\tversions ${r.versions.join(', ')}${aliases ? `\taliases ${aliases}` : ''}\n`);
    }
  });

program.command('init <onnx>')
  .description('add an ONNX file to the repository with a ferry.yaml written from its own inputs and outputs')
  .option('-n, --name <name>', 'model name (default: the file name)')
  .option('-V, --model-version <version>', 'semantic version (default 1.0.0)')
  .option('-r, --repo <dir>', 'model repository folder', 'models')
  .option('-f, --force', 'overwrite an existing ferry.yaml')
  .option('--contract-from <name@version>', 'reuse the contract of an existing version (e.g. for its quantised build)')
  .action(async (onnx: string, o: { name?: string; modelVersion?: string; repo: string; force?: boolean; contractFrom?: string }) => {
    const { dir } = await initModel({ onnxPath: onnx, repo: o.repo, ...(o.name && { name: o.name }), ...(o.modelVersion && { version: o.modelVersion }), ...(o.force && { force: true }), ...(o.contractFrom && { contractFrom: o.contractFrom }) });
    process.stdout.write(`wrote ${dir}/model.onnx and ${dir}/ferry.yaml\n`);
  });

common(program.command('config').description('print the effective configuration (defaults < file < FERRY_* env < flags)'))
  .option('-p, --port <port>', 'port')
  .option('-H, --host <host>', 'address')
  .option('--env', 'list the environment variable of every setting')
  .option('--json', 'print JSON instead of YAML')
  .action((o: CommonOpts & { env?: boolean; json?: boolean }) => {
    if (o.env) {
      for (const l of configLeaves()) process.stdout.write(`${l.env}\t${l.path.join('.')}\n`);
      return;
    }
    const cfg = configFrom(o);
    process.stdout.write(o.json ? `${JSON.stringify(cfg, null, 2)}\n` : stringify(cfg));
  });

program.command('quantize')
  .description('INT8-quantise a model: ferry quantize IN.onnx OUT.onnx [--validate DATA] [--max-delta 0.01] (see ferry quantize --help)')
  .helpOption(false).allowUnknownOption().allowExcessArguments()
  .argument('[args...]')
  .action(async (args: string[]) => { process.exitCode = await runQuantizeCli(args); });

program.command('drift')
  .description('detect data drift between a reference and a current dataset: ferry drift --reference REF --current CUR [--json] [--fail-on-drift] (see ferry drift --help)')
  .helpOption(false).allowUnknownOption().allowExcessArguments()
  .argument('[args...]')
  .action(async (args: string[]) => { process.exitCode = await runDriftCli(args); });

registerClientCommand(program);
registerBatchCommand(program);
program.command('stream')
  .description('stream a WAV file to a streaming model and print speech segments: ferry stream silero-vad --wav FILE [--url URL] [--realtime] (see ferry stream --help)')
  .helpOption(false).allowUnknownOption().allowExcessArguments()
  .argument('[args...]')
  .action(async (args: string[]) => { process.exitCode = await runStreamCli(args); });
program.command('chat')
  .description('chat with a generative model, streamed token by token: ferry chat MODEL [--url URL] [--message TEXT] (see ferry chat --help)')
  .helpOption(false).allowUnknownOption().allowExcessArguments()
  .argument('[args...]')
  .action(async (args: string[]) => { process.exitCode = await runChatCli(args); });
registerCapacityCommands(program);

// `ferry init model.onnx --version 1.2.0` reads naturally; commander reserves --version for itself.
const argv = process.argv.map((a, i) => (a === '--version' && process.argv[2] === 'init' && i > 2 ? '--model-version' : a));

program.parseAsync(argv).catch((e: unknown) => {
  if (e instanceof FerryError) process.stderr.write(`${JSON.stringify(toProblem(e), null, 2)}\n`);
  else if (e instanceof ConfigError || e instanceof ApiKeyError || e instanceof RepositoryError || e instanceof ManifestError || e instanceof BenchError || e instanceof CostError || e instanceof PricesError || e instanceof ProfileError || e instanceof InvalidArgumentError) process.stderr.write(`ferry: ${e.message}\n`);
  else process.stderr.write(`ferry: ${(e as Error)?.stack ?? String(e)}\n`);
  process.exit(1);
});
