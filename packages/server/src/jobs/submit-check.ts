// What a job submission is checked against before it is accepted: every row against the contract
// (types, ranges, categories, lengths, tensor shapes), checked in chunks so that a job may exceed the
// synchronous row limit, with pointers into the whole submission; then the preprocessing — one row
// always (its tensor size must fit limits.maxTensorElements on its own: any group of rows is split to
// fit, see serving/predict/tensor-split.ts), every row when the job's tensors are small enough to
// build at submission (`encodeBudget` elements). Used inline for small jobs and in the submission
// worker thread (submit-worker.ts) for large ones.
import { InputError, type Encoder, type Instance } from '@ferry/core';
import { FerryError, invalidInput } from '../errors.js';
import type { RequestValidator } from '../serving/predict/validation.js';
import { encodeWithinLimit } from '../serving/predict/tensor-split.js';

export interface SubmitCheckLimits {
  /** Rows validated per call (the synchronous limit, limits.maxInstances). */
  step: number;
  maxTensorElements: number;
  /** Tensor elements the whole job may have for every row to be preprocessed at submission. */
  encodeBudget: number;
}

export function checkJobRows(
  validator: RequestValidator,
  encoder: Encoder,
  instances: unknown[],
  base: string,
  limits: SubmitCheckLimits,
): void {
  const rows: Instance[] = [];
  for (let off = 0; off < instances.length; off += limits.step) {
    const chunk = instances.slice(off, off + limits.step);
    try {
      rows.push(...validator.check(chunk, base));
    } catch (e) {
      if (e instanceof FerryError && Array.isArray(e.extra.errors)) {
        throw invalidInput(
          (e.extra.errors as Array<{ pointer: string; reason: string }>).map((iss) => ({
            ...iss,
            pointer: shift(iss.pointer, base, (k) => k + off),
          })),
        );
      }
      throw e;
    }
  }
  if (!encoder.batchable) {
    encode(encoder, rows, base, [0]);
    return;
  }
  const first = encode(encoder, rows, base, [0]);
  const perRow = Math.max(0, ...Object.values(first).map((t) => t.dims.reduce((a, b) => a * b, 1)));
  const all = rows.map((_, i) => i);
  encodeWithinLimit(
    perRow * rows.length <= limits.encodeBudget ? all : [0],
    (idx) => encode(encoder, rows, base, idx),
    limits.maxTensorElements,
  );
}

function shift(pointer: string, base: string, to: (k: number) => number): string {
  return pointer.replace(
    new RegExp(`^${base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/(\\d+)`),
    (_, k: string) => `${base}/${to(Number(k))}`,
  );
}

function encode(encoder: Encoder, rows: Instance[], base: string, idx: readonly number[]) {
  try {
    return encoder.encode(
      idx.map((i) => rows[i]!),
      base,
    );
  } catch (e) {
    if (e instanceof InputError)
      throw invalidInput(e.issues.map((iss) => ({ ...iss, pointer: shift(iss.pointer, base, (k) => idx[k]!) })));
    throw e;
  }
}
