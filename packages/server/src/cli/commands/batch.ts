// `ferry batch run NAME` and `ferry batch runs NAME`. Registered with one line in cli/main.ts.
// A run shows a progress bar on a terminal (rows, rows/s, ETA) or a log line every few seconds
// otherwise (CI, Kubernetes), and ends with a summary. SIGINT/SIGTERM stop after the chunk being
// written, leaving a run that `--resume` continues; SIGKILL at any point is also safe to resume.
import { Command, Option } from 'commander';
import cliProgress from 'cli-progress';
import { pino, destination } from 'pino';
import { loadConfig, ConfigError, type FerryConfig } from '../../config/index.js';
import { openBatchScoring, openJobQueue, openRunStore } from '../../app/batch-services.js';
import { Repository } from '../../serving/repository/index.js';
import { newRunId, PipelineRunError, runPipeline, type RunProgress, type ShardSpec } from '../../pipelines/runner.js';
import { SourceError } from '../../pipelines/sources.js';
import { validatePipelines } from '../../pipelines/validate.js';
import { pipelineWithDefaults } from '../../config/schemas/pipelines.js';
import type { Logger } from 'pino';
import { enqueuePipelineShards, MAX_SHARDS, RUN_ID } from '../../pipelines/queue-shards.js';
import type { CliContext } from '../shared.js';

interface BatchOpts {
  config?: string;
  models?: string;
  workers?: string;
  logLevel?: string;
  json?: boolean;
}
interface RunOpts extends BatchOpts {
  shard?: string;
  resume?: string;
  runId?: string;
  limit?: string;
  progress?: 'auto' | 'bar' | 'log' | 'none';
  copyOnly?: boolean;
  shards?: string;
  queue?: boolean;
}

function configFrom(o: BatchOpts): FerryConfig {
  return loadConfig({
    ...(o.config !== undefined && { file: o.config }),
    overrides: { 'models.dir': o.models, 'runtime.workers': o.workers, 'log.level': o.logLevel },
  });
}

export function parseShard(s: string | undefined): ShardSpec {
  if (s === undefined) return { index: 0, count: 1 };
  const m = /^(\d+)\/(\d+)$/.exec(s.trim());
  if (!m) throw new ConfigError(`--shard "${s}": expected i/n, e.g. 0/4`);
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1 || index >= count) throw new ConfigError(`--shard "${s}": need 0 ≤ i < n`);
  return { index, count };
}

function pipelineFrom(cfg: FerryConfig, name: string) {
  const p = Object.hasOwn(cfg.pipelines, name) ? pipelineWithDefaults(cfg.pipelines[name]!) : undefined;
  if (!p)
    throw new ConfigError(
      `no pipeline "${name}" in the config; defined: ${Object.keys(cfg.pipelines).join(', ') || '(none)'}`,
    );
  return p;
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

function progressReporter(
  mode: RunOpts['progress'],
  log: (line: string) => void,
): { update(p: RunProgress): void; stop(): void } {
  const tty = Boolean(process.stderr.isTTY);
  const use = mode === 'auto' || mode === undefined ? (tty ? 'bar' : 'log') : mode;
  if (use === 'none') return { update() {}, stop() {} };
  if (use === 'bar') {
    const bar = new cliProgress.SingleBar(
      {
        format: '{bar} {percentage}% | {value}/{total} rows | {rate} rows/s | ETA {eta_formatted} | rejects {rejects}',
        stream: process.stderr,
        etaBuffer: 20,
        hideCursor: true,
      },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    return {
      update(p) {
        const payload = { rate: fmt((p.rowsDone * 1000) / Math.max(1, p.elapsedMs)), rejects: fmt(p.rowsRejected) };
        if (!started) {
          bar.start(p.rowsTotal ?? p.rowsDone, 0, payload);
          started = true;
        }
        if (p.rowsTotal === undefined) bar.setTotal(p.rowsDone);
        bar.update(p.rowsDone, payload);
      },
      stop() {
        if (started) bar.stop();
      },
    };
  }
  let last = 0;
  return {
    update(p) {
      const now = Date.now();
      if (now - last < 5000 && p.rowsDone !== p.rowsTotal) return;
      last = now;
      const rate = (p.rowsDone * 1000) / Math.max(1, p.elapsedMs);
      const eta = p.rowsTotal !== undefined && rate > 0 ? ` ETA ${Math.round((p.rowsTotal - p.rowsDone) / rate)}s` : '';
      log(
        `batch ${p.runId}: ${fmt(p.rowsDone)}${p.rowsTotal !== undefined ? `/${fmt(p.rowsTotal)}` : ''} rows, ${fmt(rate)} rows/s, ${fmt(p.rowsRejected)} rejected${eta}`,
      );
    },
    stop() {},
  };
}

async function batchRun(name: string, o: RunOpts): Promise<number> {
  const cfg = configFrom({ ...o, logLevel: o.logLevel ?? 'warn' });
  const p = pipelineFrom(cfg, name);
  const shard = parseShard(o.shard);
  const limit = o.limit === undefined ? undefined : Number(o.limit);
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 0))
    throw new ConfigError(`--limit "${o.limit}": expected a whole number of rows`);
  if (o.resume && o.runId) throw new ConfigError('give --resume RUN_ID or --run-id ID, not both');
  const log = pino({ level: cfg.log.level }, destination(2));
  const modelName = p.model.split('@')[0]!;
  const repository = Repository.load(cfg.models.dir, [modelName]);
  validatePipelines({ [name]: cfg.pipelines[name]! }, repository);
  if (o.queue) return queueShards(name, o, cfg, repository, log);
  const { store, pool, close } = await openBatchScoring(cfg, log);
  const abort = new AbortController();
  const stop = (signal: string) => {
    process.stderr.write(`\n${signal}: stopping after the chunk being written; continue with --resume\n`);
    abort.abort();
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
  const progress = progressReporter(o.json ? 'none' : o.progress, (line) => process.stderr.write(`${line}\n`));
  try {
    const s = await runPipeline({
      name,
      pipeline: p,
      config: cfg,
      store,
      pool,
      repository,
      log,
      shard,
      trigger: 'cli',
      signal: abort.signal,
      ...(o.resume && { resume: o.resume }),
      ...(o.runId && { runId: o.runId }),
      ...(limit !== undefined && { limit }),
      ...(o.copyOnly && { copyOnly: true }),
      onProgress: (x) => progress.update(x),
    });
    progress.stop();
    if (o.json) process.stdout.write(`${JSON.stringify(s)}\n`);
    else {
      process.stdout.write(
        [
          `run        ${s.runId} (shard ${s.shard.index}/${s.shard.count}) — ${s.status}`,
          `model      ${s.model}@${s.version}`,
          `scored     ${fmt(s.rowsScored)} rows`,
          `rejected   ${fmt(s.rowsRejected)} rows${s.rowsRejected ? ` (see GET /v1/pipelines/${name}/runs or the rejects table/files)` : ''}`,
          `chunks     ${s.chunksCommitted} committed${s.chunksSkipped ? `, ${s.chunksSkipped} already committed (resumed)` : ''}`,
          `time       ${(s.durationMs / 1000).toFixed(1)} s, ${fmt(s.rowsPerSecond)} rows/s`,
          ...(s.status === 'running'
            ? [`            other shards of ${s.runId} are still running; the run completes when all have`]
            : []),
          ...(s.status === 'interrupted'
            ? [
                `resume     ferry batch run ${name} --resume ${s.runId}${shard.count > 1 ? ` --shard ${shard.index}/${shard.count}` : ''}`,
              ]
            : []),
        ].join('\n') + '\n',
      );
    }
    return s.status === 'interrupted' ? 130 : 0;
  } finally {
    progress.stop();
    await close();
  }
}

/**
 * `--shards N --queue`: one job per shard on the job queue (BullMQ with redis.url, the SQL queue
 * otherwise); `ferry worker` processes run them. A shard whose worker dies is run again by another
 * worker from the shard's last committed chunk; a worker that stops hands its shard back after the
 * chunk being written. Prints the run id and the job ids, and exits.
 */
async function queueShards(
  name: string,
  o: RunOpts,
  cfg: FerryConfig,
  repository: Repository,
  log: Logger,
): Promise<number> {
  const n = o.shards === undefined ? 1 : Number(o.shards);
  if (!Number.isInteger(n) || n < 1 || n > MAX_SHARDS)
    throw new ConfigError(`--shards "${o.shards}": expected a whole number from 1 to ${MAX_SHARDS}`);
  if (o.runId !== undefined && !RUN_ID.test(o.runId))
    throw new ConfigError(
      `--run-id "${o.runId.slice(0, 100)}": expected 1-128 letters, digits, _ . : - (starting with a letter or digit)`,
    );
  if (o.shard || o.resume || o.limit !== undefined || o.copyOnly)
    throw new ConfigError('--queue takes --shards N and --run-id only (workers resume a shard by themselves)');
  const p = pipelineFrom(cfg, name);
  const v = repository.resolve(p.model);
  const runId = o.runId ?? newRunId(name);
  const { jobs, backend, close } = await openJobQueue(cfg, log);
  try {
    const { jobs: ids } = await enqueuePipelineShards(jobs, backend, {
      pipeline: name,
      runId,
      shards: n,
      model: v,
      attempts: cfg.jobs.attempts,
    });
    if (o.json)
      process.stdout.write(`${JSON.stringify({ runId, pipeline: name, shards: n, queue: backend.kind, jobs: ids })}
`);
    else
      process.stdout.write(`run        ${runId}: ${n} shard job(s) queued (${backend.kind}) for ferry worker
jobs       ${ids.join(' ')}
progress   ferry batch runs ${name}
`);
    return 0;
  } finally {
    await close();
  }
}

async function batchRuns(name: string, o: BatchOpts & { limit?: string }): Promise<number> {
  const cfg = configFrom({ ...o, logLevel: o.logLevel ?? 'warn' });
  pipelineFrom(cfg, name);
  const { runs: runStore, close } = await openRunStore(cfg);
  try {
    const runs = await runStore.runs(name, Number(o.limit ?? 20) || 20);
    if (o.json) {
      process.stdout.write(`${JSON.stringify(runs, null, 2)}\n`);
      return 0;
    }
    for (const r of runs) {
      process.stdout.write(
        `${r.runId}\t${r.status}\t${r.model}@${r.version}\tshards ${r.shardsCompleted}/${r.shards}\tscored ${r.rowsScored}\trejected ${r.rowsRejected}\tstarted ${new Date(r.startedAt).toISOString()}${r.error ? `\t${r.error}` : ''}\n`,
      );
    }
    return 0;
  } finally {
    await close();
  }
}

/** Adds `ferry batch run` and `ferry batch runs` to the CLI. */
export function registerBatchCommand(program: Command, ctx: CliContext): void {
  const batch = program.command('batch').description('batch prediction pipelines (pipelines: in ferry.config.yaml)');
  const common = (c: Command) =>
    c
      .option('-c, --config <file>', 'ferry.config.yaml to read')
      .option('-m, --models <dir>', 'model repository folder')
      .addOption(
        new Option('--log-level <level>', 'log level (default warn)').choices([
          'fatal',
          'error',
          'warn',
          'info',
          'debug',
          'trace',
          'silent',
        ]),
      )
      .option('--json', 'print JSON');
  common(batch.command('run <name>').description("score the pipeline's source with its model and store the results"))
    .option('--workers <n>', 'inference worker threads (0 = one per core)')
    .option(
      '--shard <i/n>',
      'score only shard i of n (deterministic: chunk c belongs to shard c mod n); give every shard the same --run-id',
    )
    .option('--run-id <id>', 'start or join the run with this id (for shards)')
    .option('--resume <runId>', 'continue an interrupted run from its last committed chunk')
    .option('--limit <rows>', 'read at most this many source rows')
    .option('--shards <n>', 'with --queue: split the run into n shards')
    .option('--queue', "queue the run's shards as jobs for `ferry worker` processes instead of scoring here")
    .addOption(
      new Option('--progress <mode>', 'progress display').choices(['auto', 'bar', 'log', 'none']).default('auto'),
    )
    .addOption(new Option('--copy-only', 'benchmark baseline: write the mapped features without a model').hideHelp())
    .action(async (name: string, o: RunOpts) => {
      try {
        ctx.setExitCode(await batchRun(name, o));
      } catch (e) {
        // Expected failures (a bad --resume, a missing source file) print their message, not a stack.
        if (!(e instanceof PipelineRunError || e instanceof SourceError)) throw e;
        process.stderr.write(`ferry batch run: ${e.message}\n`);
        ctx.setExitCode(1);
      }
    });
  common(batch.command('runs <name>').description("list the pipeline's recent runs"))
    .option('--limit <n>', 'how many (default 20)')
    .action(async (name: string, o: BatchOpts & { limit?: string }) => {
      ctx.setExitCode(await batchRuns(name, o));
    });
}
