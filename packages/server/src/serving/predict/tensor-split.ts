// Requests larger than one inference may take: a request whose tensors would exceed
// limits.maxTensorElements is encoded and run in groups of rows that each fit, so whether a request
// passes depends on its size only (never on which of its rows happen to be cached), and any request
// within limits.maxInstances succeeds unless a single row is itself over the limit.
import { FerryError } from '../../errors.js';
import type { TensorValue } from '@ferry/core';

type Feeds = Record<string, TensorValue>;

const elements = (t: TensorValue): number => t.dims.reduce((a, b) => a * b, 1);

/** The name and size of the largest tensor of `feeds`. */
function largest(feeds: Feeds): { name: string; n: number } {
  let best = { name: '', n: 0 };
  for (const [name, t] of Object.entries(feeds)) {
    const n = elements(t);
    if (n > best.n) best = { name, n };
  }
  return best;
}

export function tensorTooLarge(name: string, n: number, limit: number, oneRow: boolean): FerryError {
  return new FerryError('tensor-too-large', {
    detail: `input "${name}" has ${n} elements${oneRow ? ' for a single instance' : ''}; the limit (limits.maxTensorElements) is ${limit}`,
    extra: { limit },
  });
}

/**
 * Encodes `rows` (indices into the request) in groups whose every tensor has at most `limit`
 * elements. One encode when the whole request fits; otherwise the size per row of the first attempt
 * sets the group size, and a group that still does not fit (rows of varying length) is halved.
 */
export function encodeWithinLimit(
  rows: readonly number[],
  encode: (rows: readonly number[]) => Feeds,
  limit: number,
): Array<{ rows: readonly number[]; feeds: Feeds }> {
  const out: Array<{ rows: readonly number[]; feeds: Feeds }> = [];
  const go = (group: readonly number[], feeds = encode(group)): void => {
    const big = largest(feeds);
    if (big.n <= limit) {
      out.push({ rows: group, feeds });
      return;
    }
    if (group.length === 1) throw tensorTooLarge(big.name, big.n, limit, true);
    const perRow = big.n / group.length;
    const size = Math.max(1, Math.min(Math.ceil(group.length / 2), Math.floor(limit / perRow)));
    for (let i = 0; i < group.length; i += size) go(group.slice(i, i + size));
  };
  go(rows);
  return out;
}
