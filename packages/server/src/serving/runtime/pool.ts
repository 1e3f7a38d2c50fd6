// A pool of inference worker threads. Each model version is loaded into `instances` workers;
// a run goes to the least busy worker holding that version. A worker that dies is replaced and
// its models reloaded; only the requests it was running fail.
import type { Instance, Prediction, TensorValue } from '@ferry/core';
import type { Logger } from 'pino';
import { FerryError, invalidInput } from '../../errors.js';
import type { FromWorker, HandlerSpec, IoMeta, PipelineSpec, RawImage, ToWorker } from './protocol.js';
import type { HandlerShape } from './handler-module.js';
import type { OrtSessionOptions } from './session-options.js';
import { RpcWorker, transferList } from './rpc.js';

interface Slot {
  rpc: RpcWorker<ToWorker, FromWorker>;
  index: number;
  inFlight: number;
  models: Set<string>;
  /** Versions placed on this worker, counted when the load starts so concurrent loads spread out. */
  assigned: number;
}

export interface LoadedModel {
  key: string;
  inputs: IoMeta[];
  outputs: IoMeta[];
  loadMs: number;
  workers: number[];
  /** What the version's handler replaces, when it has one. */
  handler?: HandlerShape;
}

export interface RunResult {
  outputs: Record<string, TensorValue>;
  inferMs: number;
}

const WORKER_URL = new URL('./worker.js', import.meta.url);

export class WorkerPool {
  private readonly slots: Slot[] = [];
  private readonly loads = new Map<
    string,
    {
      modelPath: string;
      options: OrtSessionOptions;
      instances: number;
      pipeline?: PipelineSpec;
      handler?: HandlerSpec;
    }
  >();
  /**
   * Answers a handler's `ctx.predict(model, instances)` (the model service's predict path); without it,
   * such calls fail.
   */
  handlerCalls: ((model: string, instances: Instance[]) => Promise<Prediction[]>) | undefined;
  private disposed = false;
  private readonly log: Logger | undefined;

  constructor(size: number, log?: Logger) {
    this.log = log;
    for (let i = 0; i < size; i++) this.slots.push(this.spawn(i));
  }

  get size(): number {
    return this.slots.length;
  }

  private spawn(index: number): Slot {
    const slot: Slot = {
      index,
      inFlight: 0,
      models: new Set(),
      assigned: 0,
      rpc: new RpcWorker<ToWorker, FromWorker>(WORKER_URL, {
        name: `ferry-inference-${index}`,
        toError: (reply) =>
          reply.code === 'invalid-input' && reply.issues
            ? invalidInput(reply.issues)
            : new FerryError(reply.code === 'model-not-ready' ? 'model-not-ready' : 'inference-failed', {
                detail: reply.message,
              }),
        onMessage: (msg) => {
          if (msg.type === 'call') this.answerCall(slot, msg);
        },
        exitError: (code) =>
          new FerryError('inference-failed', { detail: `inference worker ${index} exited (code ${code})` }),
        onError: (e) => this.log?.error({ err: e, worker: index }, 'inference worker failed'),
        onExit: (code) => this.replace(slot, code),
      }),
    };
    return slot;
  }

  /** A handler's call to another model, answered on the worker that asked. */
  private answerCall(slot: Slot, msg: Extract<FromWorker, { type: 'call' }>): void {
    const reply = (r: Omit<Extract<ToWorker, { type: 'call-result' }>, 'type' | 'id'>) =>
      slot.rpc.post({ type: 'call-result', id: msg.id, ...r });
    if (!this.handlerCalls) {
      reply({ error: { message: 'calls to other models are not available here' } });
      return;
    }
    this.handlerCalls(msg.model, msg.instances).then(
      (predictions) => reply({ predictions }),
      (e: unknown) => {
        const err = e as FerryError;
        reply({ error: { message: err.detail ?? err.message, ...(err.code && { code: err.code }) } });
      },
    );
  }

  /** A worker that died is replaced, and the models it held are loaded into the new one. */
  private replace(slot: Slot, code: number): void {
    if (this.disposed) return;
    const index = slot.index;
    this.log?.warn({ worker: index, code }, 'inference worker exited; replacing it');
    const fresh = this.spawn(index);
    fresh.assigned = slot.assigned;
    this.slots[index] = fresh;
    for (const key of slot.models) {
      const l = this.loads.get(key);
      if (l)
        void this.send(fresh, {
          type: 'load',
          id: 0,
          key,
          modelPath: l.modelPath,
          options: l.options,
          ...(l.pipeline && { pipeline: l.pipeline }),
          ...(l.handler && { handler: l.handler }),
        })
          .then(() => fresh.models.add(key))
          .catch((err: unknown) => this.log?.error({ err, key }, 'reloading model into replacement worker failed'));
    }
  }

  private send(slot: Slot, msg: ToWorker, transfer: ArrayBuffer[] = []): Promise<FromWorker> {
    return slot.rpc.request(msg, transfer);
  }

  /** Loads a model version into the `instances` least-loaded workers (all of them if instances ≥ size). */
  async load(
    key: string,
    modelPath: string,
    options: OrtSessionOptions,
    instances = 1,
    pipeline?: PipelineSpec,
    handler?: HandlerSpec,
  ): Promise<LoadedModel> {
    const n = Math.min(Math.max(1, instances), this.slots.length);
    const chosen = [...this.slots].sort((a, b) => a.assigned - b.assigned || a.index - b.index).slice(0, n);
    chosen.forEach((s) => s.assigned++);
    this.loads.set(key, {
      modelPath,
      options,
      instances: n,
      ...(pipeline && { pipeline }),
      ...(handler && { handler }),
    });
    const settled = await Promise.allSettled(
      chosen.map((s) =>
        this.send(s, {
          type: 'load',
          id: 0,
          key,
          modelPath,
          options,
          ...(pipeline && { pipeline }),
          ...(handler && { handler }),
        }),
      ),
    );
    chosen.forEach((s) => s.models.add(key));
    const failure = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failure) {
      // A load that failed in one worker is taken out of all, so no worker keeps a session nobody serves.
      await this.unload(key).catch(() => undefined);
      throw failure.reason;
    }
    const replies = settled.map((r) => (r as PromiseFulfilledResult<FromWorker>).value);
    const first = replies[0] as Extract<FromWorker, { type: 'loaded' }>;
    return {
      key,
      inputs: first.inputs,
      outputs: first.outputs,
      loadMs: Math.max(...replies.map((r) => (r as typeof first).loadMs)),
      workers: chosen.map((s) => s.index),
      ...(first.handler && { handler: first.handler }),
    };
  }

  async unload(key: string): Promise<void> {
    this.loads.delete(key);
    await Promise.all(
      this.slots
        .filter((s) => s.models.has(key))
        .map(async (s) => {
          s.models.delete(key);
          s.assigned--;
          await this.send(s, { type: 'unload', id: 0, key });
        }),
    );
  }

  /** Runs a pipeline (e.g. OCR) on one image, on the least busy worker holding it. */
  async runPipeline(key: string, image: RawImage): Promise<{ result: unknown; inferMs: number }> {
    const best = this.leastBusy(key);
    best.inFlight++;
    try {
      const reply = await this.send(best, { type: 'pipeline', id: 0, key, image }, [image.data.buffer as ArrayBuffer]);
      const r = reply as Extract<FromWorker, { type: 'pipeline-result' }>;
      return { result: r.result, inferMs: r.inferMs };
    } finally {
      best.inFlight--;
    }
  }

  private leastBusy(key: string): Slot {
    let best: Slot | undefined;
    for (const s of this.slots) if (s.models.has(key) && (!best || s.inFlight < best.inFlight)) best = s;
    if (!best) throw new FerryError('model-not-ready', { detail: `model ${key} is not loaded` });
    return best;
  }

  /** Runs validated instances through the version's handler, on the least busy worker holding it. */
  async handle(key: string, instances: Instance[]): Promise<{ predictions: Prediction[]; inferMs: number }> {
    const best = this.leastBusy(key);
    best.inFlight++;
    try {
      const reply = await this.send(best, { type: 'handle', id: 0, key, instances });
      const r = reply as Extract<FromWorker, { type: 'handled' }>;
      return { predictions: r.predictions, inferMs: r.inferMs };
    } finally {
      best.inFlight--;
    }
  }

  /** Runs one inference on the least busy worker holding `key`. */
  async run(key: string, feeds: Record<string, TensorValue>, outputs?: string[]): Promise<RunResult> {
    const best = this.leastBusy(key);
    best.inFlight++;
    try {
      const reply = await this.send(
        best,
        { type: 'run', id: 0, key, feeds, ...(outputs && { outputs }) },
        transferList(Object.values(feeds)),
      );
      const r = reply as Extract<FromWorker, { type: 'result' }>;
      return { outputs: r.outputs, inferMs: r.inferMs };
    } finally {
      best.inFlight--;
    }
  }

  /** Runs the same feeds once on every worker holding `key` (warm-up); feeds are copied per worker. */
  async runOnEach(key: string, makeFeeds: () => Record<string, TensorValue>): Promise<number[]> {
    const holders = this.slots.filter((s) => s.models.has(key));
    return Promise.all(
      holders.map(async (s) => {
        const feeds = makeFeeds();
        const reply = await this.send(s, { type: 'run', id: 0, key, feeds }, transferList(Object.values(feeds)));
        return (reply as Extract<FromWorker, { type: 'result' }>).inferMs;
      }),
    );
  }

  inFlight(): number {
    return this.slots.reduce((a, s) => a + s.inFlight, 0);
  }

  /**
   * Stops the workers. Each first finishes what it is running and releases its sessions (a thread
   * terminated inside session.run takes the process down with it); `graceMs` bounds the wait.
   */
  async dispose(graceMs = 30_000): Promise<void> {
    this.disposed = true;
    await Promise.all(
      this.slots.map(async (s) => {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          this.send(s, { type: 'shutdown', id: 0 }).catch(() => undefined),
          new Promise((r) => {
            timer = setTimeout(r, graceMs);
          }),
        ]);
        clearTimeout(timer);
        await s.rpc.terminate();
      }),
    );
  }
}
