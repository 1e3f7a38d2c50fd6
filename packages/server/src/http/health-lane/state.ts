// The state the health lane answers from: a heartbeat the serving thread writes on a short timer,
// and its readiness and draining flags. Shared memory, so the lane (another thread, or the cluster
// primary) reads it without waiting for the serving thread's event loop.

/** What a probe is answered from. Times are epoch milliseconds. */
export interface HealthSnapshot {
  /** When the serving event loop last ran its heartbeat timer. */
  heartbeatMs: number;
  /** Every model loaded and warmed (`service.ready()`). */
  ready: boolean;
  /** SIGTERM received: readiness is false from now on. */
  draining: boolean;
}

const HEARTBEAT = 0;
const READY = 1;
const DRAINING = 2;
const SLOTS = 3;

/** A SharedArrayBuffer-backed snapshot: `write` on the serving thread, `read` anywhere. */
export class SharedHealthState {
  readonly buffer: SharedArrayBuffer;
  readonly #view: BigInt64Array;

  constructor(buffer?: SharedArrayBuffer) {
    this.buffer = buffer ?? new SharedArrayBuffer(SLOTS * BigInt64Array.BYTES_PER_ELEMENT);
    this.#view = new BigInt64Array(this.buffer);
  }

  write(s: HealthSnapshot): void {
    Atomics.store(this.#view, READY, s.ready ? 1n : 0n);
    Atomics.store(this.#view, DRAINING, s.draining ? 1n : 0n);
    Atomics.store(this.#view, HEARTBEAT, BigInt(Math.round(s.heartbeatMs)));
  }

  read(): HealthSnapshot {
    return {
      heartbeatMs: Number(Atomics.load(this.#view, HEARTBEAT)),
      ready: Atomics.load(this.#view, READY) === 1n,
      draining: Atomics.load(this.#view, DRAINING) === 1n,
    };
  }
}

export interface ProbeAnswer {
  status: number;
  body: Record<string, unknown>;
}

/**
 * The answer to `/healthz` or `/readyz` from a snapshot. Liveness fails only when the serving loop has
 * not run its heartbeat for `maxStallMs` (a hung loop, which a restart fixes); a loop that is merely
 * busy serving stays live. Readiness is the models' state, false while draining or stalled.
 */
export function answerProbe(
  path: '/healthz' | '/readyz',
  s: HealthSnapshot,
  nowMs: number,
  maxStallMs: number,
): ProbeAnswer {
  const loopStallMs = Math.max(0, nowMs - s.heartbeatMs);
  const stalled = loopStallMs > maxStallMs;
  if (path === '/healthz')
    return stalled
      ? { status: 503, body: { status: 'stalled', loopStallMs, maxStallMs } }
      : { status: 200, body: { status: 'ok', loopStallMs } };
  const ready = s.ready && !s.draining && !stalled;
  return {
    status: ready ? 200 : 503,
    body: {
      ready,
      loopStallMs,
      ...(!ready && {
        reason: s.draining ? 'draining' : stalled ? 'event loop stalled' : 'models not loaded and warmed',
      }),
      ...(s.draining && { draining: true }),
    },
  };
}
