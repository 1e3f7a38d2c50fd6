// Request/reply over one worker thread, shared by every pool of worker threads in the server (the
// inference pool, the generation decode workers, the pipeline prep workers): request ids, the map of
// pending requests, transferable buffers, errors rebuilt from their reply, and a worker that exits
// failing only the requests it held. Pools keep their own policy (placement, replacement, shutdown).
import { Worker, type MessagePort, type ResourceLimits, type Transferable } from 'node:worker_threads';
import type { TensorValue } from '@ferry/core';

/** How every worker reports a failed request (see `answerRequests`). */
export interface RpcErrorReply {
  type: 'error';
  id: number;
  message: string;
  code?: string;
  /** Bad fields, for an `invalid-input` error raised in the worker (a handler's `ctx.invalid`). */
  issues?: Array<{ pointer: string; reason: string }>;
}

export interface RpcWorkerOptions<Reply> {
  /** Thread name (shown in diagnostics and heap snapshots). */
  name: string;
  workerData?: unknown;
  resourceLimits?: ResourceLimits;
  /**
   * Request ids. A pool that also posts messages with ids of its own (a generation's stream) passes
   * the counter it allocates those from, so a reply is never mistaken for the other.
   */
  nextId?: () => number;
  /** The error a request rejects with when its reply is an error. */
  toError: (reply: RpcErrorReply) => Error;
  /** The error the requests still pending reject with when the worker exits. */
  exitError: (code: number) => Error;
  /** A message that answers no pending request (e.g. a generation's tokens). */
  onMessage?: (msg: Reply) => void;
  /** An uncaught error in the worker; its exit follows. */
  onError?: (err: Error) => void;
  /** Rejects the pending requests with the worker's own error at once, rather than at its exit. */
  failOnError?: boolean;
  /** After the worker exited and its pending requests were rejected: a pool replaces it here. */
  onExit?: (code: number) => void;
}

interface Pending<Reply> {
  resolve(reply: Reply): void;
  reject(e: Error): void;
}

/** One worker thread spoken to by request and reply. */
export class RpcWorker<Req extends { id: number }, Reply extends { id: number; type?: string }> {
  readonly worker: Worker;
  readonly #pending = new Map<number, Pending<Reply>>();
  readonly #nextId: () => number;

  constructor(url: URL, opts: RpcWorkerOptions<Reply>) {
    let n = 1;
    this.#nextId = opts.nextId ?? (() => n++);
    this.worker = new Worker(url, {
      name: opts.name,
      ...(opts.workerData !== undefined && { workerData: opts.workerData }),
      ...(opts.resourceLimits && { resourceLimits: opts.resourceLimits }),
    });
    this.worker.on('message', (msg: Reply) => {
      const p = this.#pending.get(msg.id);
      if (!p) {
        opts.onMessage?.(msg);
        return;
      }
      this.#pending.delete(msg.id);
      if (msg.type === 'error') p.reject(opts.toError(msg as unknown as RpcErrorReply));
      else p.resolve(msg);
    });
    this.worker.on('error', (err) => {
      opts.onError?.(err);
      if (opts.failOnError) this.#failAll(err);
    });
    this.worker.on('exit', (code) => {
      this.#failAll(opts.exitError(code));
      opts.onExit?.(code);
    });
  }

  /** Requests waiting for their reply. */
  get pending(): number {
    return this.#pending.size;
  }

  /** Sends `msg` with a fresh id (its own `id` is replaced); resolves with the reply, rejects with its error. */
  request(msg: Req, transfer: readonly Transferable[] = []): Promise<Reply> {
    const id = this.#nextId();
    return new Promise<Reply>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      try {
        this.worker.postMessage({ ...msg, id }, transfer);
      } catch (e) {
        // The message could not be cloned (DataCloneError): nothing was sent, nothing will answer.
        this.#pending.delete(id);
        reject(e as Error);
      }
    });
  }

  /** Sends a message that expects no reply of its own (credit, cancel, a stream's start). */
  post(msg: Req, transfer: readonly Transferable[] = []): void {
    this.worker.postMessage(msg, transfer);
  }

  /** Stops the thread at once; requests still pending reject with `exitError`. */
  async terminate(): Promise<void> {
    await this.worker.terminate();
  }

  #failAll(e: Error): void {
    const waiting = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of waiting) p.reject(e);
  }
}

/**
 * The worker side: runs `handle` for each request and answers a throw (or rejection) with an
 * `RpcErrorReply` carrying the error's message and `code`. `handle` posts its own replies.
 */
export function answerRequests<Req extends { id: number }>(
  port: MessagePort,
  handle: (msg: Req) => void | Promise<void>,
): void {
  const fail = (id: number, e: unknown): void => {
    const err = e as Error & { code?: string; issues?: unknown };
    port.postMessage({
      type: 'error',
      id,
      message: err?.message ?? String(e),
      ...(err?.code && { code: err.code }),
      ...(Array.isArray(err?.issues) && {
        issues: (err.issues as Array<{ pointer?: unknown; reason?: unknown }>).map((i) => ({
          pointer: String(i?.pointer ?? ''),
          reason: String(i?.reason ?? 'invalid'),
        })),
      }),
    } satisfies RpcErrorReply);
  };
  port.on('message', (msg: Req) => {
    try {
      const r = handle(msg);
      if (r) r.catch((e: unknown) => fail(msg.id, e));
    } catch (e) {
      fail(msg.id, e);
    }
  });
}

/**
 * Below this size a tensor's buffer is copied by the message rather than moved: detaching a buffer
 * and adopting its memory on the other side cost more than copying a few kilobytes (a one-row request
 * of 256 floats and its answer: a round trip between two threads on one core took 69 µs moved, 61 µs
 * copied; at 64 Ki floats 101 µs moved, 240 µs copied: `node bench/dist/thread-hop.js`,
 * docs/benchmarks.md).
 */
export const TRANSFER_MIN_BYTES = 64 * 1024;

/**
 * Buffers of tensors that move to another thread: each whole buffer once, from TRANSFER_MIN_BYTES up
 * (a smaller one, and a view's buffer, is copied).
 */
export function transferList(tensors: Iterable<TensorValue>): ArrayBuffer[] {
  const out: ArrayBuffer[] = [];
  for (const t of tensors) {
    if (Array.isArray(t.data)) continue;
    const buf = t.data.buffer as ArrayBuffer;
    if (buf.byteLength < TRANSFER_MIN_BYTES) continue;
    if (t.data.byteOffset === 0 && t.data.byteLength === buf.byteLength && !out.includes(buf)) out.push(buf);
  }
  return out;
}
