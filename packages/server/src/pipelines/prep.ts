// The CPU-bound half of scoring a chunk, shared by the prep worker threads (and usable inline): map
// source rows to features, validate them against the contract, encode valid rows into input tensors
// batch by batch. Rejects carry their reason and the source row.
import { compileEncoder, InputError, type Manifest, type RequestLimits, type TensorValue } from '@ferry/core';
import { FerryError } from '../errors.js';
import { compileRequestValidator } from '../serving/predict/validation.js';
import type { PipelineConfig } from '../config/schemas/pipelines.js';
import { compileRowMapper, UNREADABLE, type SourceRow } from './mapping.js';
import type { RejectRow } from './run-store.js';

export interface PreparedBatch {
  feeds: Record<string, TensorValue>;
  keys: string[];
  rowNumbers: number[];
}
export interface PreparedChunk {
  batches: PreparedBatch[];
  rejects: RejectRow[];
}

/** JSON of a source row for the rejects table: BigInt and Date made representable, size capped. */
export function rowJson(row: SourceRow): string {
  const unreadable = (row as Record<string, unknown>)[UNREADABLE];
  const value = unreadable !== undefined ? { raw: (row as { raw?: string }).raw ?? '' } : row;
  const text = JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
  return text.length > 10_000 ? JSON.stringify({ truncated: text.slice(0, 10_000) }) : text;
}

export function compilePreparer(
  p: PipelineConfig,
  manifest: Manifest,
  limits: RequestLimits,
): (rows: SourceRow[], firstRow: number) => PreparedChunk {
  const mapper = compileRowMapper(p, manifest);
  const validator = compileRequestValidator(manifest, { ...limits, maxInstances: p.batchRows });
  const encoder = compileEncoder(manifest);

  const reasonOf = (inst: Record<string, unknown>): string | undefined => {
    try {
      validator.check([inst], '');
    } catch (e) {
      if (!(e instanceof FerryError)) throw e;
      const errors = (e.extra.errors as Array<{ pointer: string; reason: string }> | undefined) ?? [];
      return errors.length
        ? errors.map((x) => `${x.pointer.replace(/^\/0\/?/, '') || '/'}: ${x.reason}`).join('; ')
        : e.detail;
    }
    try {
      encoder.encode([inst], '');
      return undefined;
    } catch (e) {
      if (e instanceof InputError)
        return e.issues.map((x) => `${x.pointer.replace(/^\/0\/?/, '') || '/'}: ${x.reason}`).join('; ');
      throw e;
    }
  };

  return (rows, firstRow) => {
    const rejects: RejectRow[] = [];
    const batches: PreparedBatch[] = [];
    let instances: Record<string, unknown>[] = [];
    let keys: string[] = [];
    let rowNumbers: number[] = [];
    const flush = () => {
      if (instances.length === 0) return;
      let ok = true;
      try {
        validator.check(instances, '');
      } catch (e) {
        if (!(e instanceof FerryError)) throw e;
        ok = false;
      }
      let feeds: Record<string, TensorValue> | undefined;
      if (ok) {
        try {
          feeds = encoder.encode(instances, '');
        } catch (e) {
          if (!(e instanceof InputError)) throw e;
        }
      }
      if (!feeds) {
        // Some row is bad: find it (them) one by one, keep the rest. Rare, so the slow path is fine.
        const keep = instances.map((inst, i) => {
          const reason = reasonOf(inst);
          if (reason !== undefined)
            rejects.push({
              rowNumber: rowNumbers[i]!,
              key: keys[i]!,
              reason,
              row: rowJson(rows[rowNumbers[i]! - firstRow]!),
            });
          return reason === undefined;
        });
        instances = instances.filter((_, i) => keep[i]);
        keys = keys.filter((_, i) => keep[i]);
        rowNumbers = rowNumbers.filter((_, i) => keep[i]);
        if (instances.length) feeds = encoder.encode(instances, '');
      }
      if (feeds) batches.push({ feeds, keys, rowNumbers });
      instances = [];
      keys = [];
      rowNumbers = [];
    };
    for (let i = 0; i < rows.length; i++) {
      const m = mapper.map(rows[i]!, firstRow + i);
      if ('reject' in m)
        rejects.push({ rowNumber: firstRow + i, key: m.key, reason: m.reject, row: rowJson(rows[i]!) });
      else {
        instances.push(m.instance);
        keys.push(m.key);
        rowNumbers.push(firstRow + i);
        if (instances.length === p.batchRows) flush();
      }
    }
    flush();
    rejects.sort((a, b) => a.rowNumber - b.rowNumber);
    return { batches, rejects };
  };
}
