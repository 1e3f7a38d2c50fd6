// Scores a chunk of instances with the server's runtime: the contract's validator, encoder and
// decoder on this thread, inference in the worker-thread pool. A pipeline loads its model into every
// worker under its own key, and a chunk's batches are dispatched together, so all cores infer at once.
import { compileDecoder, compileEncoder, InputError, isBatchable, type Decoder, type Encoder, type Prediction } from '@ferry/core';
import type { FerryConfig } from '../config/index.js';
import { FerryError } from '../errors.js';
import type { ModelVersion } from '../repository/index.js';
import { compileRequestValidator, sessionOptionsFor, type RequestValidator, type WorkerPool } from '../runtime/index.js';

export interface Scored {
  /** One per input instance: the prediction, or why the instance was rejected. */
  results: Array<{ prediction: Prediction } | { reject: string }>;
  inferMs: number;
}

export interface Scorer {
  readonly version: ModelVersion;
  score(instances: Record<string, unknown>[]): Promise<Scored>;
  dispose(): Promise<void>;
}

let nextKey = 1;

export async function createScorer(cfg: FerryConfig, pool: WorkerPool, version: ModelVersion, batchRows: number): Promise<Scorer> {
  const m = version.manifest;
  if (m.pipeline) throw new Error(`${version.key} is a multi-model pipeline (${m.pipeline.kind}); batch pipelines score feature-form models`);
  if (!isBatchable(m)) throw new Error(`${version.key} has no batch dimension; batch pipelines need a batchable model`);
  const validator: RequestValidator = compileRequestValidator(m, { ...cfg.limits, maxInstances: batchRows });
  const encoder: Encoder = compileEncoder(m);
  const decoder: Decoder = compileDecoder(m);
  // Its own key: the server's copy of this version stays on its own worker(s) with its own batcher.
  const key = `pipeline#${nextKey++}:${version.key}`;
  await pool.load(key, version.modelPath, sessionOptionsFor(cfg, m), pool.size);

  /** Rows that fail validation one by one, so a bad row costs only itself. */
  const checkEach = (batch: Record<string, unknown>[]): Array<string | undefined> => batch.map((inst) => {
    try {
      validator.check([inst], '');
      return undefined;
    } catch (e) {
      if (e instanceof FerryError) {
        const errors = (e.extra.errors as Array<{ pointer: string; reason: string }> | undefined) ?? [];
        return errors.length ? errors.map((x) => `${x.pointer.replace(/^\/0\/?/, '') || '/'}: ${x.reason}`).join('; ') : e.detail;
      }
      throw e;
    }
  });

  async function scoreBatch(batch: Record<string, unknown>[]): Promise<Scored> {
    let reasons: Array<string | undefined>;
    try {
      validator.check(batch, '');
      reasons = batch.map(() => undefined);
    } catch (e) {
      if (!(e instanceof FerryError)) throw e;
      reasons = checkEach(batch);
    }
    const valid = batch.filter((_, i) => reasons[i] === undefined);
    let predictions: Prediction[] = [];
    let inferMs = 0;
    if (valid.length) {
      let feeds;
      try {
        feeds = encoder.encode(valid, '');
      } catch (e) {
        if (!(e instanceof InputError)) throw e;
        // An encoder-level failure on a batch that passed validation: find the rows by encoding them alone.
        const out: Scored = { results: [], inferMs: 0 };
        for (const inst of batch) {
          const one = await scoreBatch([inst]).catch((err: unknown) => ({ results: [{ reject: (err as Error).message }], inferMs: 0 }));
          out.results.push(...one.results);
          out.inferMs += one.inferMs;
        }
        return out;
      }
      const r = await pool.run(key, feeds);
      inferMs = r.inferMs;
      predictions = decoder.decode(r.outputs, valid.length);
    }
    let j = 0;
    return { results: reasons.map((reason) => (reason === undefined ? { prediction: predictions[j++]! } : { reject: reason })), inferMs };
  }

  return {
    version,
    async score(instances) {
      const parts: Promise<Scored>[] = [];
      for (let i = 0; i < instances.length; i += batchRows) parts.push(scoreBatch(instances.slice(i, i + batchRows)));
      const all = await Promise.all(parts);
      return { results: all.flatMap((s) => s.results), inferMs: all.reduce((s, x) => s + x.inferMs, 0) };
    },
    async dispose() {
      await pool.unload(key).catch(() => undefined);
    },
  };
}
