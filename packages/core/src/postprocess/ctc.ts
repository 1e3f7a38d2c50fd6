// Greedy CTC decoding: what a text-recognition model that emits one class distribution per time step
// (PaddleOCR's CRNN/SVTR recognisers, many speech models) needs to become a string. At each step take
// the most probable class, merge runs of the same class, drop the blank.
import type { TensorValue } from '../tensor.js';

export interface CtcOptions {
  /** Class index of the CTC blank. Default 0. */
  readonly blankIndex?: number;
  /** Merge consecutive repeats of a class into one symbol (standard CTC). Default true. */
  readonly mergeRepeats?: boolean;
  /**
   * Class index of the word separator (PaddleOCR appends a space class after its dictionary). With
   * `spaceThreshold`, a space is also written between two symbols when, somewhere in the blank steps
   * between them, the space class reached that probability even though the blank won the step.
   */
  readonly spaceIndex?: number;
  /**
   * See `spaceIndex`; 0 or absent = plain greedy decoding. Recognisers trained mostly on unspaced
   * scripts (PP-OCR's Chinese+English models) score an English word gap at 0.02–0.5 for the space and
   * the rest for the blank, so the greedy path drops every such space; inside words the space class stays
   * below 0.001. Not counted in `confidence` (no symbol won there).
   */
  readonly spaceThreshold?: number;
}

export interface CtcResult {
  readonly text: string;
  /** Mean of the winning probability over the kept symbols; 0 when nothing was kept. */
  readonly confidence: number;
  /** Class index of each kept symbol. */
  readonly indices: number[];
}

/**
 * Decodes one sequence: `scores` holds `steps` rows of `labels.length` class scores (probabilities
 * for a meaningful confidence), starting at `offset`. `labels[i]` is the text of class i; the blank's
 * label is never emitted.
 * @example ctcGreedyDecode(probs, 40, ['', 'a', 'b'])
 */
export function ctcGreedyDecode(
  scores: ArrayLike<number>,
  steps: number,
  labels: readonly string[],
  options: CtcOptions = {},
  offset = 0,
): CtcResult {
  const classes = labels.length;
  const blank = options.blankIndex ?? 0;
  const merge = options.mergeRepeats ?? true;
  if (offset + steps * classes > scores.length) {
    throw new RangeError(
      `${steps} steps of ${classes} classes need ${steps * classes} scores from offset ${offset}; only ${scores.length - offset} are there`,
    );
  }
  let text = '';
  const indices: number[] = [];
  let confSum = 0;
  let kept = 0;
  let previous = -1;
  const space = options.spaceThreshold && options.spaceThreshold > 0 ? options.spaceIndex : undefined;
  const threshold = options.spaceThreshold ?? 0;
  // The highest space probability in the blank steps since the last symbol written.
  let gapSpace = 0;
  for (let t = 0; t < steps; t++) {
    const row = offset + t * classes;
    let best = 0;
    let bestScore = scores[row]!;
    for (let c = 1; c < classes; c++) {
      const s = scores[row + c]!;
      if (s > bestScore) {
        bestScore = s;
        best = c;
      }
    }
    const repeat = merge && best === previous;
    previous = best;
    if (best === blank) {
      if (space !== undefined) gapSpace = Math.max(gapSpace, scores[row + space]!);
      continue;
    }
    if (repeat) continue;
    if (space !== undefined && best !== space && gapSpace >= threshold && text && !text.endsWith(labels[space]!)) {
      text += labels[space]!;
      indices.push(space);
    }
    gapSpace = 0;
    text += labels[best]!;
    indices.push(best);
    confSum += bestScore;
    kept++;
  }
  return { text, confidence: kept ? confSum / kept : 0, indices };
}

/**
 * Decodes every sequence of a `[batch, steps, classes]` tensor (float32 or float64).
 * The tensor's class count must equal `labels.length`.
 */
export function ctcGreedyDecodeBatch(t: TensorValue, labels: readonly string[], options: CtcOptions = {}): CtcResult[] {
  if (t.dims.length !== 3)
    throw new RangeError(`CTC input must be [batch, steps, classes], got [${t.dims.join(', ')}]`);
  if (!(t.data instanceof Float32Array || t.data instanceof Float64Array))
    throw new TypeError(`CTC input must be float32 or float64, got ${t.dtype}`);
  const [batch, steps, classes] = t.dims as [number, number, number];
  if (classes !== labels.length)
    throw new RangeError(`the model emits ${classes} classes but ${labels.length} labels are given`);
  return Array.from({ length: batch }, (_, b) =>
    ctcGreedyDecode(t.data as Float32Array, steps, labels, options, b * steps * classes),
  );
}

/**
 * The class labels of a PaddleOCR recogniser from its dictionary file (one symbol per line): the
 * blank at index 0, then the dictionary, then a space when the model was trained with
 * `use_space_char` (the PP-OCR models were).
 */
export function paddleOcrLabels(dictionary: string, options: { spaceChar?: boolean } = {}): string[] {
  const lines = dictionary.replace(/\r\n/g, '\n').split('\n');
  if (lines.at(-1) === '') lines.pop();
  return ['', ...lines, ...((options.spaceChar ?? true) ? [' '] : [])];
}
