// Held-out metrics for a binary classifier, computed here rather than trusted from a library.

/**
 * ROC AUC by the rank statistic (Mann-Whitney U): the probability that a random positive scores
 * above a random negative, ties counting one half (tied scores share their average rank).
 */
export function rocAuc(scores: ArrayLike<number>, labels: ArrayLike<boolean>): number {
  const n = scores.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a]! - scores[b]!);
  let positives = 0;
  let rankSum = 0;
  for (let i = 0; i < n;) {
    let j = i;
    while (j + 1 < n && scores[order[j + 1]!] === scores[order[i]!]) j++;
    const averageRank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) {
      if (labels[order[k]!]) {
        positives++;
        rankSum += averageRank;
      }
    }
    i = j + 1;
  }
  const negatives = n - positives;
  if (positives === 0 || negatives === 0) return Number.NaN;
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

export function accuracy(scores: ArrayLike<number>, labels: ArrayLike<boolean>, threshold = 0.5): number {
  let right = 0;
  for (let i = 0; i < scores.length; i++) if (scores[i]! > threshold === labels[i]) right++;
  return right / scores.length;
}

/** Mean binary cross-entropy in nats; scores are clamped away from 0 and 1. */
export function logLoss(scores: ArrayLike<number>, labels: ArrayLike<boolean>): number {
  let sum = 0;
  for (let i = 0; i < scores.length; i++) {
    const p = Math.min(1 - 1e-12, Math.max(1e-12, scores[i]!));
    sum -= labels[i] ? Math.log(p) : Math.log(1 - p);
  }
  return sum / scores.length;
}
