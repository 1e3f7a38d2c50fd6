// Stateful sequence batching: frames of concurrent sessions of one model version wait up to
// maxQueueDelayUs for each other and run as one inference, the frames stacked on axis 0 and each
// session's state on its batch axis; the answer is split back per session. A session has at most one
// frame in flight (its next frame needs this one's state), so a batch never holds two of one session.
import { allocate, elementCount, type TensorData, type TensorValue } from '@ferry/core';
import { BatchQueue } from './batch-queue.js';

type Typed = Exclude<TensorData, string[] | boolean[]> & {
  set(a: ArrayLike<number | bigint>, offset?: number): void;
  subarray(a: number, b: number): Typed;
  length: number;
};

/**
 * What the batcher needs of a streaming mode (streaming/'s StreamSpec satisfies it): the frame input
 * and score output, the recurrent state tensors with their batch axis, constant feeds, batch limits.
 */
export interface SequenceSpec {
  frameSamples: number;
  input: string;
  output: string;
  state: ReadonlyArray<{ input: string; output: string; batchAxis: number }>;
  constants: Record<string, TensorValue>;
  maxBatchSize: number;
  maxQueueDelayUs: number;
  /** Largest number of queued frames; past it `submit` fails with 503 (default: unbounded). */
  maxQueueDepth?: number;
}

export interface FrameResult {
  score: number;
  state: TensorValue[];
}

interface Pending {
  frame: Float32Array;
  state: TensorValue[];
  resolve(r: FrameResult): void;
  reject(e: unknown): void;
}

export type RunFeeds = (feeds: Record<string, TensorValue>) => Promise<Record<string, TensorValue>>;

/** Stacks B tensors of dims `d` (d[axis] = 1) along `axis`. */
export function stack(parts: TensorValue[], axis: number): TensorValue {
  const d = parts[0]!.dims;
  const outer = elementCount(d.slice(0, axis));
  const inner = elementCount(d.slice(axis + 1));
  const b = parts.length;
  const data = allocate(parts[0]!.dtype, outer * b * inner) as Typed;
  parts.forEach((p, j) => {
    const src = p.data as Typed;
    for (let o = 0; o < outer; o++) data.set(src.subarray(o * inner, (o + 1) * inner), (o * b + j) * inner);
  });
  return { dtype: parts[0]!.dtype, dims: d.map((x, i) => (i === axis ? b : x)), data };
}

/** Takes row `j` of `t` along `axis` (keeping the axis, of size 1). */
export function unstack(t: TensorValue, axis: number, j: number): TensorValue {
  const b = t.dims[axis]!;
  const outer = elementCount(t.dims.slice(0, axis));
  const inner = elementCount(t.dims.slice(axis + 1));
  const src = t.data as Typed;
  const data = allocate(t.dtype, outer * inner) as Typed;
  for (let o = 0; o < outer; o++) data.set(src.subarray((o * b + j) * inner, (o * b + j + 1) * inner), o * inner);
  return { dtype: t.dtype, dims: t.dims.map((x, i) => (i === axis ? 1 : x)), data };
}

function copyAll(ts: Record<string, TensorValue>): Record<string, TensorValue> {
  return Object.fromEntries(
    Object.entries(ts).map(([k, t]) => [
      k,
      { ...t, data: (t.data as Typed).slice(0, (t.data as Typed).length) as TensorData },
    ]),
  );
}

export class SequenceBatcher extends BatchQueue<Pending> {
  private inFlight = 0;
  /** Batch sizes run so far (for tests, metrics and the bench). */
  readonly batchSizes = new Map<number, number>();

  constructor(
    private readonly spec: SequenceSpec,
    private readonly run: RunFeeds,
    private readonly onBatch?: (rows: number) => void,
  ) {
    // As before the batchers shared a base: a sub-millisecond delay waits a (1 ms) timer.
    super(spec.maxQueueDepth ?? Infinity, 'timer');
  }

  /** Runs one frame of a session with its state; resolves with the score and the next state. */
  submit(frame: Float32Array, state: TensorValue[]): Promise<FrameResult> {
    return new Promise((resolve, reject) => {
      this.admit();
      this.queue.push({ frame, state, resolve, reject });
      // Even with no delay, wait one turn of the event loop so frames that arrive together batch.
      if (this.queue.length >= this.spec.maxBatchSize) this.flush();
      else this.arm(this.spec.maxQueueDelayUs, () => this.flush());
    });
  }

  private flush(): void {
    this.disarm();
    while (this.queue.length) {
      const batch = this.queue.splice(0, this.spec.maxBatchSize);
      void this.runBatch(batch);
    }
  }

  private async runBatch(batch: Pending[]): Promise<void> {
    const s = this.spec;
    const b = batch.length;
    this.inFlight++;
    this.batchSizes.set(b, (this.batchSizes.get(b) ?? 0) + 1);
    this.onBatch?.(b);
    try {
      const input = new Float32Array(b * s.frameSamples);
      batch.forEach((p, j) => input.set(p.frame, j * s.frameSamples));
      // Feeds travel to the worker as transferred buffers, so constants are copied for every call.
      const feeds: Record<string, TensorValue> = {
        ...copyAll(s.constants),
        [s.input]: { dtype: 'float32', dims: [b, s.frameSamples], data: input },
      };
      s.state.forEach((st, k) => {
        feeds[st.input] =
          b === 1
            ? batch[0]!.state[k]!
            : stack(
                batch.map((p) => p.state[k]!),
                st.batchAxis,
              );
      });
      const out = await this.run(feeds);
      const scores = out[s.output]!;
      const perRow = elementCount(scores.dims) / b;
      batch.forEach((p, j) => {
        p.resolve({
          score: Number((scores.data as Typed)[j * perRow]),
          state: s.state.map((st) => (b === 1 ? out[st.output]! : unstack(out[st.output]!, st.batchAxis, j))),
        });
      });
    } catch (e) {
      for (const p of batch) p.reject(e);
    } finally {
      this.inFlight--;
    }
  }
}
