// Where the prediction log's rows are built and inserted. In the server they go to a worker thread
// with its own connection to the same store (`ThreadRowWriter`): the HTTP thread only posts the
// buffered entries as they are (a structured clone), the thread encodes them as rows
// (row-builder.ts) and inserts them, so neither JSON encoding nor SQLite's synchronous inserts
// (better-sqlite3 runs them on the calling thread) hold the event loop. Without a worker (an
// in-memory SQLite store, which another connection cannot see, or tests) the rows go through the
// caller's own store (`storeRowWriter`).
import type { Logger } from 'pino';
import type { Store, StoreOptions } from '../../store/index.js';
import { RpcWorker } from '../../serving/runtime/rpc.js';
import { buildRows, type PendingEntry } from './row-builder.js';

/** What one write did: rows written, entries dropped before writing (invalid, too large). */
export interface WriteOutcome {
  written: number;
  invalid: number;
  tooLarge: number;
}

/** Builds rows from entries (row-builder.ts) and inserts them, returning what became of each entry. */
export async function writeEntries(
  store: Store,
  batch: readonly PendingEntry[],
  maxEntryBytes: number,
): Promise<WriteOutcome> {
  const { rows, invalid, tooLarge } = buildRows(batch, store.codec, maxEntryBytes);
  if (rows.length > 0) await store.db.insertInto('prediction_log').values(rows).execute();
  return { written: rows.length, invalid, tooLarge };
}

export interface RowWriter {
  /**
   * Builds the entries' rows and inserts them; rejects when the store refuses them (the log counts
   * the batch as write-failed).
   */
  insert(batch: PendingEntry[], maxEntryBytes: number): Promise<WriteOutcome>;
  /** Releases what the writer holds (its thread and connection); the store itself is the caller's. */
  close(): Promise<void>;
}

/** Inserts on the calling thread through `store`. */
export function storeRowWriter(store: Store): RowWriter {
  return {
    insert: (batch, maxEntryBytes) => writeEntries(store, batch, maxEntryBytes),
    async close() {},
  };
}

/** Messages to the writer thread. */
export type ToRowWriter =
  { type: 'insert'; id: number; batch: PendingEntry[]; maxEntryBytes: number } | { type: 'close'; id: number };
export type FromRowWriter =
  { type: 'done'; id: number; outcome?: WriteOutcome } | { type: 'error'; id: number; message: string };

/** Store options a thread can open the same store with: no logger, nothing that does not clone. */
export type ThreadStoreOptions = Omit<StoreOptions, 'log'>;

const WORKER_URL = new URL('./row-writer-worker.js', import.meta.url);

/**
 * Inserts in a worker thread over its own connection (SQLite file in WAL mode, or a small
 * PostgreSQL pool). If the thread dies, later batches fall back to `fallback` on the calling
 * thread, so the log keeps working (the crash is logged once).
 */
export class ThreadRowWriter implements RowWriter {
  readonly #rpc: RpcWorker<ToRowWriter, FromRowWriter>;
  #dead = false;
  #closed = false;

  constructor(
    options: ThreadStoreOptions,
    private readonly fallback: RowWriter,
    private readonly log?: Logger,
  ) {
    this.#rpc = new RpcWorker<ToRowWriter, FromRowWriter>(WORKER_URL, {
      name: 'ferry-prediction-log',
      workerData: { store: options },
      toError: (reply) => new Error(reply.message),
      exitError: (code) => new Error(`prediction log writer exited (code ${code})`),
      onError: (err) => this.log?.error({ err }, 'prediction log writer failed'),
      onExit: (code) => {
        this.#dead = true;
        if (!this.#closed)
          this.log?.warn({ code }, 'prediction log writer exited; writing on the main thread from now on');
      },
    });
    // An idle writer does not keep the process up (the log's own timers do not either); one with
    // a batch in flight does, until the batch is answered.
    this.#rpc.worker.unref();
  }

  #inFlight = 0;

  async insert(batch: PendingEntry[], maxEntryBytes: number): Promise<WriteOutcome> {
    if (this.#dead || this.#closed) return this.fallback.insert(batch, maxEntryBytes);
    if (this.#inFlight++ === 0) this.#rpc.worker.ref();
    try {
      let reply: FromRowWriter;
      try {
        reply = await this.#rpc.request({ type: 'insert', id: 0, batch, maxEntryBytes });
      } catch (e) {
        // An entry the structured clone refuses (a function in an instance handed to the log by
        // code of one's own): this batch is built and written here instead.
        if ((e as Error).name === 'DataCloneError') return await this.fallback.insert(batch, maxEntryBytes);
        throw e;
      }
      return (reply as Extract<FromRowWriter, { type: 'done' }>).outcome ?? { written: 0, invalid: 0, tooLarge: 0 };
    } finally {
      if (--this.#inFlight === 0) this.#rpc.worker.unref();
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (!this.#dead) {
      this.#rpc.worker.ref();
      await this.#rpc.request({ type: 'close', id: 0 }).catch(() => undefined);
    }
    await this.#rpc.terminate();
  }
}
