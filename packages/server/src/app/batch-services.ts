// Services for the processes that run without an HTTP server: `ferry batch run` (score a dataset in
// this process), `ferry batch run --queue` (put shard jobs on the queue) and `ferry batch runs` (read
// run records). Built here so that app/ stays the one place services are constructed; each opener
// migrates the store first and returns a `close` that releases everything it opened.
import type { Logger } from 'pino';
import { workerCount, type FerryConfig } from '../config/index.js';
import { WorkerPool } from '../serving/index.js';
import { createStore, storeOptionsFromConfig, type Store } from '../store/index.js';
import { JobStore } from '../jobs/job-store.js';
import { createQueueBackend } from '../jobs/runtime.js';
import type { QueueBackend } from '../jobs/queue-backend.js';
import { RunStore } from '../pipelines/run-store.js';

/** How long worker threads get to finish when a batch process closes. */
const POOL_CLOSE_MS = 5000;

async function openStore(cfg: FerryConfig, log?: Logger): Promise<Store> {
  const store = createStore(storeOptionsFromConfig(cfg.store, log ? { log: log.child({ component: 'store' }) } : {}));
  // A store that cannot be reached or migrated is a configuration error: close what was opened.
  await store.migrate().catch(async (e: unknown) => {
    await store.close();
    throw e;
  });
  return store;
}

/** The store and a worker pool, for scoring a pipeline in this process. */
export async function openBatchScoring(
  cfg: FerryConfig,
  log: Logger,
): Promise<{ store: Store; pool: WorkerPool; close(): Promise<void> }> {
  const store = await openStore(cfg, log);
  const pool = new WorkerPool(workerCount(cfg), log.child({ component: 'pool' }));
  return {
    store,
    pool,
    async close() {
      await pool.dispose(POOL_CLOSE_MS);
      await store.close();
    },
  };
}

/** The job store and the queue backend (BullMQ with redis.url, the SQL queue otherwise). */
export async function openJobQueue(
  cfg: FerryConfig,
  log: Logger,
): Promise<{ jobs: JobStore; backend: QueueBackend; close(): Promise<void> }> {
  const store = await openStore(cfg, log);
  const jobs = new JobStore(store);
  let backend: QueueBackend;
  try {
    backend = createQueueBackend(cfg, jobs, log.child({ component: 'jobs' }));
  } catch (e) {
    await store.close();
    throw e;
  }
  return {
    jobs,
    backend,
    async close() {
      await backend.close();
      await store.close();
    },
  };
}

/** The pipelines' run records. */
export async function openRunStore(cfg: FerryConfig): Promise<{ runs: RunStore; close(): Promise<void> }> {
  const store = await openStore(cfg);
  return { runs: new RunStore(store), close: () => store.close() };
}
