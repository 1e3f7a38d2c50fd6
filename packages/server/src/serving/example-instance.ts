// One instance to show a person what a model takes: the playground's starting values and the example in
// a model's description. Real data first: the contract's warm-up instance, else the first row of its
// reference data (the drift baseline, a real input), else one built from the contract.
import { closeSync, openSync, readSync } from 'node:fs';
import { extname, join } from 'node:path';
import type { ModelVersion } from './repository/index.js';
import { syntheticInstance } from './model-service.js';

type Instance = Record<string, unknown>;

const examples = new WeakMap<ModelVersion, Instance | null>();
/** Enough bytes for any first row worth showing; a longer first line falls back to the contract. */
const HEAD_BYTES = 256 * 1024;

/** The complete JSON-object lines at the head of a file. */
function headRows(file: string): Instance[] {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const buf = Buffer.alloc(HEAD_BYTES);
    const n = readSync(fd, buf, 0, HEAD_BYTES, 0);
    const lines = buf.subarray(0, n).toString('utf8').split('\n');
    if (n === HEAD_BYTES) lines.pop(); // cut off mid-line
    const rows: Instance[] = [];
    for (const line of lines) {
      try {
        const row = JSON.parse(line) as unknown;
        if (row && typeof row === 'object' && !Array.isArray(row)) rows.push(row as Instance);
      } catch {
        // not a JSON line: skip it
      }
    }
    return rows;
  } catch {
    return [];
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** The row's inputs, if it has every required one within the contract's categories and ranges. */
function inputsOf(m: ModelVersion['manifest'], row: Instance): Instance | undefined {
  const out: Instance = {};
  for (const f of m.inputs) {
    const v = row[f.name];
    if (v === undefined || v === null) {
      if (f.optional) continue;
      return undefined;
    }
    if (f.type === 'category' && !(f.values as unknown[]).includes(v)) return undefined;
    if ((f.type === 'number' || f.type === 'integer') && typeof v === 'number') {
      if ((f.min !== undefined && v < f.min) || (f.max !== undefined && v > f.max)) return undefined;
    }
    out[f.name] = v;
  }
  return out;
}

/** The example instance of a version, or undefined for pipelines and generative models (no instances). */
export function exampleInstance(v: ModelVersion): Instance | undefined {
  const known = examples.get(v);
  if (known !== undefined) return known ?? undefined;
  const m = v.manifest;
  let out: Instance | undefined;
  if (!m.pipeline && !m.generation) {
    out = m.warmup?.instances?.[0] as Instance | undefined;
    if (!out && m.reference && ['.jsonl', '.ndjson'].includes(extname(m.reference))) {
      // The first row a person would recognise as valid (a category the contract lists, a value in range),
      // and only its inputs: a reference row also holds the prediction it was logged with.
      for (const row of headRows(join(v.dir, m.reference))) {
        out = inputsOf(m, row);
        if (out) break;
      }
    }
    out ??= syntheticInstance(m);
  }
  examples.set(v, out ?? null);
  return out;
}
