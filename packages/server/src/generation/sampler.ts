// Picks the next token from a row of logits: greedy at temperature 0, otherwise softmax at the
// temperature restricted to the top-p nucleus, drawn with a seeded generator so that the same seed
// and the same request give the same completion.

import { seededRandom } from '@ferry/core';

// One seeded generator for the whole project (packages/core/src/random.ts).
export { seededRandom };

export interface SamplingParams {
  /** 0 = greedy. */
  temperature: number;
  /** Nucleus mass in (0, 1]. */
  topP: number;
}

export function argmax(logits: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
  return best;
}

export function sampleToken(logits: ArrayLike<number>, p: SamplingParams, random: () => number): number {
  if (p.temperature <= 0) return argmax(logits);
  const n = logits.length;
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (logits[i]! > max) max = logits[i]!;
  const probs = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += probs[i] = Math.exp((logits[i]! - max) / p.temperature);
  // Sorted by probability, ties by token id, so the order (and the draw) is deterministic.
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => probs[b]! - probs[a]! || a - b);
  let kept = n;
  if (p.topP < 1) {
    let mass = 0;
    for (let r = 0; r < n; r++) {
      mass += probs[order[r]!]! / sum;
      if (mass >= p.topP) {
        kept = r + 1;
        break;
      }
    }
  }
  let keptSum = 0;
  for (let r = 0; r < kept; r++) keptSum += probs[order[r]!]!;
  let u = random() * keptSum;
  for (let r = 0; r < kept; r++) {
    u -= probs[order[r]!]!;
    if (u <= 0) return order[r]!;
  }
  return order[kept - 1]!;
}
