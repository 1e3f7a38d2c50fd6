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

function firstJsonLine(file: string): Instance | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const buf = Buffer.alloc(HEAD_BYTES);
    const n = readSync(fd, buf, 0, HEAD_BYTES, 0);
    const line = buf.subarray(0, n).toString('utf8').split('\n')[0]!;
    if (line.length === n) return undefined;
    const row = JSON.parse(line) as unknown;
    return row && typeof row === 'object' && !Array.isArray(row) ? (row as Instance) : undefined;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
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
      const row = firstJsonLine(join(v.dir, m.reference));
      // Only the inputs: a reference row also holds the prediction it was logged with.
      if (row && m.inputs.every((f) => f.name in row || f.optional))
        out = Object.fromEntries(m.inputs.filter((f) => f.name in row).map((f) => [f.name, row[f.name]]));
    }
    out ??= syntheticInstance(m);
  }
  examples.set(v, out ?? null);
  return out;
}
