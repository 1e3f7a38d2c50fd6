// The main-thread side of a call through a version's handler: the instances were validated against
// the contract before, the handler ran in a worker, and its predictions are held against the contract's
// prediction schema here, so custom code cannot answer outside the published response schema.
import { Ajv, type ValidateFunction } from 'ajv';
import { predictionSchema, type Instance, type Manifest, type Prediction } from '@ferry/core';
import { FerryError } from '../../errors.js';
import type { WorkerPool } from '../runtime/pool.js';

const ajv = new Ajv({ allErrors: false, strict: false });

/** Checks one handler answer: one prediction per instance, each valid for the contract. */
export function compilePredictionCheck(m: Manifest): (predictions: unknown, rows: number, key: string) => Prediction[] {
  const validate: ValidateFunction = ajv.compile(predictionSchema(m));
  return (predictions, rows, key) => {
    if (!Array.isArray(predictions) || predictions.length !== rows)
      throw new FerryError('inference-failed', {
        detail: `${key}: the handler returned ${Array.isArray(predictions) ? predictions.length : typeof predictions} predictions for ${rows} instances`,
      });
    predictions.forEach((p, i) => {
      if (!validate(p)) {
        const e = validate.errors?.[0];
        throw new FerryError('inference-failed', {
          detail: `${key}: the handler's prediction ${i} does not match the contract: ${e?.instancePath || '/'} ${e?.message ?? 'invalid'}`,
        });
      }
    });
    return predictions as Prediction[];
  };
}

/**
 * Runs instances through the handler and rewrites the pointers of a refusal (`/1/text`, relative to what
 * the handler was given) to the request's own (`/instances/4/text`).
 */
export async function callHandler(
  pool: WorkerPool,
  sessionKey: string,
  instances: Instance[],
  positions: readonly number[],
  base: string,
): Promise<{ predictions: unknown; inferMs: number }> {
  try {
    return await pool.handle(sessionKey, instances);
  } catch (e) {
    if (e instanceof FerryError && e.code === 'invalid-input') {
      const issues = (e.extra?.errors ?? []) as Array<{ pointer: string; reason: string }>;
      const mapped = issues.map((iss) => ({
        ...iss,
        pointer: iss.pointer.replace(/^\/(\d+)/, (_, k: string) => `/${positions[Number(k)] ?? k}`).replace(/^/, base),
      }));
      const first = mapped[0];
      throw new FerryError('invalid-input', {
        detail: first ? `${first.pointer}: ${first.reason}` : 'the handler refused the input',
        extra: { errors: mapped },
      });
    }
    throw e;
  }
}
