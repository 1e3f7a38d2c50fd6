// Held-out metrics of a binary classifier with `spam` as the positive class, computed here rather
// than trusted from a library.

export interface Confusion {
  /** Spam called spam. */
  truePositives: number;
  /** Ham called spam: the costly mistake for a mail filter. */
  falsePositives: number;
  /** Spam let through. */
  falseNegatives: number;
  trueNegatives: number;
}

export interface BinaryMetrics extends Confusion {
  rows: number;
  accuracy: number;
  precision: number;
  recall: number;
  f1: number;
  /** Mean cross-entropy in nats. */
  logLoss: number;
}

/** `probabilities[i]` is P(positive); row i is called positive when that exceeds `threshold`. */
export function binaryMetrics(
  probabilities: ArrayLike<number>,
  positive: ArrayLike<boolean>,
  threshold = 0.5,
): BinaryMetrics {
  const c: Confusion = { truePositives: 0, falsePositives: 0, falseNegatives: 0, trueNegatives: 0 };
  let loss = 0;
  for (let i = 0; i < probabilities.length; i++) {
    const p = probabilities[i]!;
    const called = p > threshold;
    if (positive[i]) {
      if (called) c.truePositives++;
      else c.falseNegatives++;
    } else if (called) c.falsePositives++;
    else c.trueNegatives++;
    const q = Math.min(1 - 1e-12, Math.max(1e-12, p));
    loss -= positive[i] ? Math.log(q) : Math.log(1 - q);
  }
  const rows = probabilities.length;
  const precision = c.truePositives / (c.truePositives + c.falsePositives || 1);
  const recall = c.truePositives / (c.truePositives + c.falseNegatives || 1);
  return {
    ...c,
    rows,
    accuracy: (c.truePositives + c.trueNegatives) / (rows || 1),
    precision,
    recall,
    f1: precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0,
    logLoss: loss / (rows || 1),
  };
}
