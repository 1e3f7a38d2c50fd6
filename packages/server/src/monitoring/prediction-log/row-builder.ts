// Turns buffered log entries into table rows: checks each entry, encodes its input and output as
// JSON and drops what is too large. It runs where the rows are written — in the writer thread when
// the log has one (row-writer-worker.ts) — because encoding is most of a logged row's cost: a
// 256-float instance takes tens of microseconds to print as JSON, while posting the entry itself to
// the thread (structured clone) takes about one.
import type { ColumnCodec, NewPredictionLogRecord } from '../../store/index.js';
import type { PredictionLogEntry } from './prediction-log.js';

/** An entry waiting in the log's buffer, with the time it was recorded. */
export interface PendingEntry {
  entry: PredictionLogEntry;
  ts: number;
}

/** What became of a batch: the rows to insert and how many entries were dropped, by reason. */
export interface BuiltRows {
  rows: NewPredictionLogRecord[];
  invalid: number;
  tooLarge: number;
}

/**
 * A feature holding bytes (an image body) is logged as JSON prints a Buffer, whether it arrives as
 * one or as the plain Uint8Array a structured clone makes of it: the log's text is the same on
 * either side of the thread boundary. Only the instance's own features are looked at (no deep walk).
 */
function withBuffers(value: unknown): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  let copy: Record<string, unknown> | undefined;
  for (const [k, v] of Object.entries(value)) {
    if (v instanceof Uint8Array && !Buffer.isBuffer(v)) {
      copy ??= { ...(value as Record<string, unknown>) };
      copy[k] = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    }
  }
  return copy ?? value;
}

export function buildRows(batch: readonly PendingEntry[], codec: ColumnCodec, maxEntryBytes: number): BuiltRows {
  const out: BuiltRows = { rows: [], invalid: 0, tooLarge: 0 };
  for (const { entry: e, ts } of batch) {
    try {
      if (
        typeof e.model !== 'string' ||
        e.model === '' ||
        typeof e.version !== 'string' ||
        e.version === '' ||
        !Number.isFinite(e.latencyMs) ||
        !Number.isFinite(ts)
      ) {
        out.invalid++;
        continue;
      }
      const input = codec.json(withBuffers(e.input));
      const output = codec.json(e.output);
      if (input.length + output.length > maxEntryBytes) {
        out.tooLarge++;
        continue;
      }
      out.rows.push({
        ts: Math.round(ts),
        model: e.model,
        version: e.version,
        input,
        output,
        latency_ms: e.latencyMs,
        fallback_reason: e.fallbackReason ?? null,
        cache_hit: codec.bool(e.cacheHit === true),
        request_id: e.requestId ?? null,
      });
    } catch {
      // JSON cannot hold it (BigInt, a cycle): drop this entry, keep the batch.
      out.invalid++;
    }
  }
  return out;
}
