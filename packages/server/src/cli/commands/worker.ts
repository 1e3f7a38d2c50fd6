// `ferry worker`: a process that only runs jobs. It loads the model repository like `ferry serve`
// and takes jobs from the queue (BullMQ with REDIS_URL: any number of workers on any machine; the
// SQL queue otherwise: workers sharing the store, e.g. one PostgreSQL database). It serves HTTP only
// with --port (health and /metrics for the orchestrator).
//
// SIGTERM/SIGINT go through the same lifecycle as `ferry serve` (lifecycle/signals.ts): the workers
// stop claiming at once, active jobs get jobs.shutdownGraceMs (capped below the deadline) and are
// then handed back to the queue without using an attempt, connections close, and the process exits
// 0 before server.shutdownGraceMs — or kills itself at that deadline with work unfinished.
import { loadConfig } from '../../config/index.js';
import { installSignalHandlers } from '../../lifecycle/index.js';
import type { Command } from 'commander';
import { createServer } from '../../app/create-server.js';
import { commonOptions, type CliContext, type CommonOpts } from '../shared.js';

export interface WorkerCliOptions {
  config?: string;
  models?: string;
  workers?: string;
  logLevel?: string;
  concurrency?: string;
  port?: string;
}

export async function runWorkerCli(o: WorkerCliOptions): Promise<void> {
  const cfg = loadConfig({
    ...(o.config !== undefined && { file: o.config }),
    overrides: {
      'models.dir': o.models,
      'runtime.workers': o.workers,
      'log.level': o.logLevel,
      'jobs.concurrency': o.concurrency,
      ...(o.port !== undefined && { 'server.port': o.port }),
    },
  });
  const server = await createServer(cfg, { jobWorkers: false });
  const log = server.log.child({ component: 'worker' });
  server.lifecycle.on('draining', (reason) => {
    log.info(
      { signal: reason, graceMs: cfg.jobs.shutdownGraceMs, deadlineMs: cfg.server.shutdownGraceMs },
      'worker stopping: no new jobs; active jobs get their grace, the rest go back to the queue',
    );
  });
  installSignalHandlers(server);
  if (o.port !== undefined) await server.listen();
  try {
    await server.loaded;
  } catch (e) {
    log.fatal({ err: e }, 'a model failed to load; models.onLoadFailure is exit, so this worker runs no jobs');
    await server.close();
    process.exit(1);
  }
  const failed = server.service.states().filter((st) => st.state === 'failed');
  // Jobs of a failed version fail with its reason (model-not-ready); the other models' jobs run.
  if (failed.length) log.error({ failed }, 'running jobs without the failed model versions');
  // Only once every model is warm: a job taken earlier would wait for its model anyway, holding a lock.
  // (Does nothing if a signal already began the shutdown.)
  server.jobs.startWorkers();
  log.info(
    {
      backend: server.jobs.backend.kind,
      queue: cfg.jobs.queueName,
      concurrency: cfg.jobs.concurrency,
      worker: server.jobs.workerId,
    },
    'worker ready',
  );
}

export function registerWorkerCommand(program: Command, _ctx: CliContext): void {
  commonOptions(
    program
      .command('worker')
      .description('run job workers only (BullMQ with REDIS_URL; otherwise the SQL queue in the shared store)'),
  )
    .option('--concurrency <n>', 'jobs this process runs at once (jobs.concurrency)')
    .option('-p, --port <port>', 'also serve health and /metrics on this port')
    .action((o: CommonOpts & { concurrency?: string }) => runWorkerCli(o));
}
