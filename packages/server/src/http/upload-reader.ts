// Reads a multipart job upload off the HTTP thread: the body's chunks go, as they arrive, to one
// worker thread (upload-worker.ts) that parses the parts, holds them to the limits while they stream
// and encodes the files; this side only counts bytes (the whole-body limit is enforced here, so a body
// over it is refused at the chunk that crosses it) and pauses the body while the worker is behind.
import { Worker } from 'node:worker_threads';
import type { Readable } from 'node:stream';
import { FerryError, type ErrorCode } from '../errors.js';
import { tooLarge, type UploadFromWorker, type UploadLimits, type UploadToWorker } from './upload-worker.js';

export type { UploadLimits } from './upload-worker.js';

const WORKER_URL = new URL('./upload-worker.js', import.meta.url);

/** Chunks sent and not yet acknowledged before the body is paused (and resumed at half). */
const MAX_CHUNKS_IN_FLIGHT = 16;

export interface Upload {
  /** One instance per file, `{ [imageField]: bytes }`, in upload order. */
  instances: Array<Record<string, Buffer>>;
  /** The same instances as JSON text, made by the worker: stored as is. */
  json: string;
  /** The form fields (only the names the limits allow). */
  fields: Record<string, string>;
  /** Body bytes read. */
  bytes: number;
}

interface Pending {
  ack(): void;
  done(msg: Extract<UploadFromWorker, { type: 'done' }>): void;
  fail(e: Error): void;
}

export class UploadReader {
  #worker: Worker | undefined;
  #next = 1;
  readonly #pending = new Map<number, Pending>();
  #closed = false;

  /** Uploads being read now. */
  get active(): number {
    return this.#pending.size;
  }

  #thread(): Worker {
    if (this.#worker) return this.#worker;
    const w = new Worker(WORKER_URL, { name: 'ferry-job-upload' });
    w.on('message', (msg: UploadFromWorker) => {
      const p = this.#pending.get(msg.id);
      if (!p) return;
      if (msg.type === 'ack') p.ack();
      else if (msg.type === 'done') p.done(msg);
      else {
        const { code, detail, extra } = msg.problem;
        p.fail(new FerryError(code as ErrorCode, { detail, extra }));
      }
    });
    w.on('error', () => undefined); // its exit follows and fails what it held
    w.on('exit', (code) => {
      if (this.#worker === w) this.#worker = undefined;
      for (const p of [...this.#pending.values()])
        p.fail(new Error(`the job upload worker exited (code ${code}) while reading an upload`));
    });
    // An idle upload thread does not keep the process alive (one reading an upload does).
    w.unref();
    this.#worker = w;
    return w;
  }

  /**
   * Streams `body` (a multipart/form-data request body) to the upload thread. Rejects with a
   * FerryError (413 body-too-large, 400 too-many-instances / invalid-input / invalid-request) as soon as
   * the bytes read break a limit, without reading the rest of the body.
   */
  read(body: Readable, contentType: string, limits: UploadLimits): Promise<Upload> {
    if (this.#closed) return Promise.reject(new FerryError('shutting-down', { detail: 'the server is shutting down' }));
    const w = this.#thread();
    const id = this.#next++;
    const post = (m: UploadToWorker, transfer: ArrayBuffer[] = []) => w.postMessage(m, transfer);
    return new Promise<Upload>((resolve, reject) => {
      let bytes = 0;
      let inFlight = 0;
      let settled = false;
      const settle = (fn: () => void) => {
        if (settled) return;
        settled = true;
        this.#pending.delete(id);
        if (this.#pending.size === 0) w.unref();
        body.off('data', onData);
        body.off('end', onEnd);
        body.off('error', onError);
        body.off('close', onClose);
        fn();
      };
      const abort = (e: Error) => {
        post({ type: 'abort', id });
        settle(() => reject(e));
      };
      const onData = (chunk: Buffer) => {
        bytes += chunk.length;
        if (bytes > limits.maxBytes) {
          abort(tooLarge(limits.maxBytes));
          return;
        }
        // A copy of its own (socket chunks may share a pooled buffer), moved to the thread, not cloned.
        const data = new Uint8Array(chunk);
        post({ type: 'chunk', id, data }, [data.buffer as ArrayBuffer]);
        if (++inFlight >= MAX_CHUNKS_IN_FLIGHT) body.pause();
      };
      const onEnd = () => post({ type: 'end', id });
      const onError = (e: Error) =>
        abort(new FerryError('invalid-request', { detail: `the upload was cut off (${e.message.slice(0, 100)})` }));
      const onClose = () => {
        if (!body.readableEnded) abort(new FerryError('invalid-request', { detail: 'the upload was cut off' }));
      };
      this.#pending.set(id, {
        ack: () => {
          if (--inFlight <= MAX_CHUNKS_IN_FLIGHT / 2 && body.isPaused()) body.resume();
        },
        done: (msg) => {
          const instances = msg.files.map((f) => ({
            [limits.imageField]: Buffer.from(f.buffer, f.byteOffset, f.byteLength),
          }));
          settle(() => resolve({ instances, json: msg.json, fields: msg.fields, bytes }));
        },
        fail: (e) => settle(() => reject(e)),
      });
      w.ref();
      post({ type: 'start', id, contentType, limits });
      body.on('data', onData);
      body.on('end', onEnd);
      body.on('error', onError);
      body.on('close', onClose);
    });
  }

  /** Stops the upload thread; uploads being read fail. */
  async close(): Promise<void> {
    this.#closed = true;
    const w = this.#worker;
    this.#worker = undefined;
    if (w) await w.terminate();
  }
}
