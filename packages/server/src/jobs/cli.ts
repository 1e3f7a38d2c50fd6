// `ferry worker`: a process that only runs jobs. It loads the model repository like `ferry serve`
// and takes jobs from the queue (BullMQ with REDIS_URL: any number of workers on any machine; the
// SQL queue otherwise: workers sharing the store, e.g. one PostgreSQL database). It serves HTTP only
// with --port (health and /metrics for the orchestrator).
import { loadConfig } from '../config/index.js';
import { createServer } from '../server.js';

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
      'models.dir': o.models, 'runtime.workers': o.workers, 'log.level': o.logLevel, 'jobs.concurrency': o.concurrency,
      ...(o.port !== undefined && { 'server.port': o.port }),
    },
  });
  const server = await createServer(cfg, { jobWorkers: false });
  const log = server.log.child({ component: 'worker' });
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal, graceMs: cfg.jobs.shutdownGraceMs }, 'worker stopping: active jobs get their grace, the rest go back to the queue');
    const timer = setTimeout(() => process.exit(1), cfg.jobs.shutdownGraceMs + cfg.server.shutdownGraceMs).unref();
    await server.close();
    clearTimeout(timer);
    process.exit(0);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
  if (o.port !== undefined) await server.listen();
  try {
    await server.loaded;
  } catch (e) {
    log.fatal({ err: e }, 'a model failed to load; a worker will not run jobs on a partial repository');
    await server.close();
    process.exit(1);
  }
  // Only once every model is warm: a job taken earlier would wait for its model anyway, holding a lock.
  server.jobs.startWorkers();
  log.info({ backend: server.jobs.backend.kind, queue: cfg.jobs.queueName, concurrency: cfg.jobs.concurrency }, 'worker ready');
}
