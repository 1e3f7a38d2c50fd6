// Seeded randomness for the example generators: the same seed must give the same model bytes on
// every machine, so nothing here may touch Math.random.

import { gaussian, seededRandom } from '@ferry/core';

/** mulberry32 (the generators' historical name for @ferry/core's seededRandom). */
export const mulberry32 = seededRandom;
export { gaussian };

/** A seeded Fisher-Yates permutation of 0..n-1. */
export function permutation(n: number, uniform: () => number): Uint32Array {
  const p = new Uint32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(uniform() * (i + 1));
    const t = p[i]!;
    p[i] = p[j]!;
    p[j] = t;
  }
  return p;
}
