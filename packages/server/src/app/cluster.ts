// `ferry serve --processes N` (`server.processes`): N serving processes share the port through
// node:cluster, so HTTP parsing, validation and replies use more than one core. The primary serves no
// request: it forks the children, restarts one that dies after it was ready, forwards SIGTERM, and
// answers the health port from the children's heartbeats (its own loop is idle, so probes stay fast).
// Each child is a whole Ferry server with its own model workers; `runtime.workers`, when unset, is
// split between them. docs/production.md#several-processes.
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import type { Server } from 'node:http';
import type { Logger } from 'pino';
import { coreCount, type FerryConfig } from '../config/index.js';
import { createStore, storeOptionsFromConfig } from '../store/index.js';
import { HEARTBEAT_MS, startHealthListener, type HealthSnapshot } from '../http/health-lane/index.js';

/** The message a child sends the primary every HEARTBEAT_MS. */
interface HeartbeatMessage {
  type: 'ferry-health';
  ready: boolean;
  draining: boolean;
}

interface ChildState {
  worker: Worker;
  /** Unset until the child's first heartbeat (its start-up, module loading included, is not a stall). */
  lastBeatMs: number | undefined;
  ready: boolean;
  draining: boolean;
  everReady: boolean;
}

/** This process is a child of `ferry serve --processes N`. */
export function isClusterChild(): boolean {
  return cluster.isWorker;
}

/** The child's index, 0 to N-1 (stable across restarts): child 0 alone runs the singletons (job workers, schedules). */
export function clusterIndex(): number {
  return Number(process.env.FERRY_CLUSTER_INDEX ?? 0);
}

/** Model worker threads per child when `runtime.workers` is unset: the cores split between the children. */
export function workersPerChild(processes: number, cores = availableParallelism()): number {
  return Math.max(1, Math.floor(cores / processes));
}

/**
 * The health snapshot of the whole cluster: ready when every child is, live while every child's loop
 * beats (the oldest heartbeat counts; a child still starting counts as beating now), draining when the
 * primary or any child is.
 */
export function clusterSnapshot(
  children: ReadonlyArray<Pick<ChildState, 'lastBeatMs' | 'ready' | 'draining'>>,
  expected: number,
  shuttingDown: boolean,
  nowMs = Date.now(),
): HealthSnapshot {
  const heartbeatMs = Math.min(nowMs, ...children.map((c) => c.lastBeatMs ?? nowMs));
  return {
    heartbeatMs,
    ready: children.length === expected && children.every((c) => c.ready),
    draining: shuttingDown || children.some((c) => c.draining),
  };
}

/** In a child: reports readiness and draining to the primary on a short timer (the loop's heartbeat). */
export function reportToPrimary(state: () => { ready: boolean; draining: boolean }): { beat(): void; stop(): void } {
  const beat = () => {
    if (process.connected) process.send?.({ type: 'ferry-health', ...state() } satisfies HeartbeatMessage);
  };
  beat();
  const timer = setInterval(beat, HEARTBEAT_MS);
  timer.unref();
  return { beat, stop: () => clearInterval(timer) };
}

/** Runs the primary until every child has exited after SIGTERM/SIGINT; resolves with the exit code. */
export async function runClusterPrimary(config: FerryConfig, log: Logger): Promise<number> {
  const n = config.server.processes;
  const children = new Map<number, ChildState>();
  let shuttingDown = false;
  let exitCode = 0;
  const env = (index: number): NodeJS.ProcessEnv => ({
    FERRY_CLUSTER_INDEX: String(index),
    // Each child plans for its share of the cores (a share of one runs its batches on its main thread).
    ...(config.runtime.workers === 0 && { FERRY_RUNTIME_WORKERS: String(workersPerChild(n, coreCount(config))) }),
    ...(config.runtime.cores === 0 && { FERRY_RUNTIME_CORES: String(workersPerChild(n, coreCount(config))) }),
  });
  let done: (code: number) => void = () => undefined;
  const finished = new Promise<number>((resolve) => {
    done = resolve;
  });
  let health: Server | undefined;
  const stopAll = () => {
    if (shuttingDown) return;
    shuttingDown = true;
    for (const c of children.values()) c.worker.process.kill('SIGTERM');
    if (children.size === 0) done(exitCode);
  };
  const fork = (index: number) => {
    const worker = cluster.fork(env(index));
    const state: ChildState = { worker, lastBeatMs: undefined, ready: false, draining: false, everReady: false };
    children.set(index, state);
    worker.on('message', (m: HeartbeatMessage) => {
      if (m?.type !== 'ferry-health') return;
      state.lastBeatMs = Date.now();
      state.ready = m.ready;
      state.draining = m.draining;
      if (m.ready && !state.everReady) {
        state.everReady = true;
        log.info({ child: index, pid: worker.process.pid }, 'cluster: child ready');
      }
    });
    worker.on('exit', (code, signal) => {
      if (children.get(index) === state) children.delete(index);
      if (shuttingDown) {
        if (code !== 0) exitCode = 1;
        if (children.size === 0) done(exitCode);
        return;
      }
      if (!state.everReady) {
        // It never served: a configuration or model error that a restart would only repeat.
        log.fatal({ child: index, code, signal }, 'cluster: a child exited before it was ready; stopping');
        exitCode = 1;
        stopAll();
        return;
      }
      log.error({ child: index, code, signal }, 'cluster: a child exited; starting another');
      fork(index);
    });
  };
  // Migrated once here, before any child opens the store: N children migrating one SQLite file at once would
  // contend for its write lock at start. A store that cannot be reached refuses the start, as without a cluster.
  const store = createStore(storeOptionsFromConfig(config.store, { log: log.child({ component: 'store' }) }));
  try {
    await store.migrate();
  } finally {
    await store.close();
  }
  log.info(
    { processes: n, workersPerChild: config.runtime.workers || workersPerChild(n, coreCount(config)) },
    'cluster: starting',
  );
  for (let i = 0; i < n; i++) fork(i);
  const onSignal = (signal: NodeJS.Signals) => {
    if (shuttingDown) {
      // A second signal means "now", as in a single process.
      log.warn({ signal }, 'cluster: second signal, killing every child');
      for (const c of children.values()) c.worker.process.kill('SIGKILL');
      process.exit(1);
    }
    log.info({ signal }, 'cluster: draining every child');
    stopAll();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('SIGHUP', () => {
    for (const c of children.values()) c.worker.process.kill('SIGHUP');
  });
  if (config.server.healthPort >= 0) {
    const lane = await startHealthListener({
      host: config.server.host,
      port: config.server.healthPort,
      maxStallMs: config.server.livenessMaxStallMs,
      read: () => clusterSnapshot([...children.values()], n, shuttingDown),
    });
    health = lane.server;
    log.info({ healthPort: lane.port }, 'cluster: health port');
  }
  const code = await finished;
  health?.closeAllConnections();
  health?.close();
  return code;
}
