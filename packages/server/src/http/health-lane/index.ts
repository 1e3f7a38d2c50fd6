// The health lane (issue 20): /healthz and /readyz on their own port (`server.healthPort`), answered
// by a worker thread from a heartbeat the serving loop writes every `HEARTBEAT_MS`. A saturated
// serving loop delays the heartbeat by its loop lag, not the probe: the probe is answered at once
// and reports that lag (`loopStallMs`); only a loop stalled past `server.livenessMaxStallMs` fails
// liveness. docs/production.md#health-probes.
import { Worker } from 'node:worker_threads';
import { SharedHealthState, type HealthSnapshot } from './state.js';
import type { HealthWorkerData, HealthWorkerMessage } from './worker.js';

export { answerProbe, SharedHealthState, type HealthSnapshot, type ProbeAnswer } from './state.js';
export { startHealthListener, type HealthListenerOptions } from './listener.js';

/** How often the serving loop writes its heartbeat; a probe's `loopStallMs` is at least this coarse. */
export const HEARTBEAT_MS = 50;

export interface HealthLaneOptions {
  host: string;
  port: number;
  maxStallMs: number;
  /** Read on the serving thread at every heartbeat. */
  ready(): boolean;
  draining(): boolean;
}

export interface HealthLane {
  readonly port: number;
  /** The lane thread's scheduling priority, as it could be set (for the start-up log). */
  readonly priority: string;
  /** Writes the flags now (a drain turns readiness false before the next heartbeat). */
  beat(): void;
  close(): Promise<void>;
}

/** Starts the heartbeat and the lane's thread; resolves once the port is bound (rejects if it cannot be). */
export async function startHealthLane(opts: HealthLaneOptions): Promise<HealthLane> {
  const state = new SharedHealthState();
  const snapshot = (): HealthSnapshot => ({ heartbeatMs: Date.now(), ready: opts.ready(), draining: opts.draining() });
  const beat = () => state.write(snapshot());
  beat();
  const timer = setInterval(beat, HEARTBEAT_MS);
  timer.unref();
  const worker = new Worker(new URL('./worker.js', import.meta.url), {
    name: 'ferry-health',
    workerData: {
      buffer: state.buffer,
      host: opts.host,
      port: opts.port,
      maxStallMs: opts.maxStallMs,
    } satisfies HealthWorkerData,
    resourceLimits: { maxOldGenerationSizeMb: 32 },
  });
  let port: number;
  let priority = '';
  try {
    port = await new Promise<number>((resolve, reject) => {
      worker.once('message', (m: HealthWorkerMessage) => {
        if (m.type === 'listening') {
          priority = m.priority;
          resolve(m.port);
        } else
          reject(Object.assign(new Error(`health port ${opts.host}:${opts.port}: ${m.message}`), { code: m.code }));
      });
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`the health lane thread exited (${code}) before listening`)));
    });
  } catch (e) {
    clearInterval(timer);
    await worker.terminate();
    throw e;
  }
  worker.removeAllListeners('exit');
  worker.unref();
  let closed: Promise<void> | undefined;
  return {
    port,
    priority,
    beat,
    close() {
      closed ??= (async () => {
        clearInterval(timer);
        const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
        worker.postMessage({ type: 'close' });
        // A lane that does not close in time is ended; probes have no state worth a wait.
        const t = setTimeout(() => void worker.terminate(), 2000);
        await exited;
        clearTimeout(t);
      })();
      return closed;
    },
  };
}
