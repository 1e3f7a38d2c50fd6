import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ctcGreedyDecode, ctcGreedyDecodeBatch, paddleOcrLabels } from './ctc.js';

const LABELS = ['', 'a', 'b'];

/** Rows of class probabilities: for each step the winning class and its probability (the rest shared). */
function steps(...wins: Array<[number, number]>): number[] {
  return wins.flatMap(([cls, p]) => LABELS.map((_, c) => (c === cls ? p : (1 - p) / (LABELS.length - 1))));
}

test('greedy CTC: best class per step, repeats merged, blanks dropped, blank separates a double letter', () => {
  // a a _ a b b → a _ a b → "aab".
  const probs = steps([1, 0.9], [1, 0.8], [0, 0.7], [1, 0.6], [2, 0.5], [2, 0.9]);
  const r = ctcGreedyDecode(probs, 6, LABELS);
  assert.equal(r.text, 'aab');
  assert.deepEqual(r.indices, [1, 1, 2]);
  // Confidence: mean of the winning probability at the first step of each kept symbol.
  assert.ok(Math.abs(r.confidence - (0.9 + 0.6 + 0.5) / 3) < 1e-12, String(r.confidence));
});

test('greedy CTC options: no merging; the blank at another index', () => {
  const probs = steps([1, 0.9], [1, 0.8], [0, 0.7], [2, 0.6]);
  assert.equal(ctcGreedyDecode(probs, 4, LABELS, { mergeRepeats: false }).text, 'aab');
  // With class 2 as the blank, class 0 ('' here) is a symbol whose label happens to be empty.
  const r = ctcGreedyDecode(probs, 4, ['x', 'a', 'b'], { blankIndex: 2 });
  assert.equal(r.text, 'ax');
});

test('greedy CTC with a space threshold: a word gap the blank won still writes one space', () => {
  const L = ['', 'a', 'b', ' '];
  // Rows [blank, a, b, space].
  const rows = [
    [0.01, 0.98, 0.005, 0.005], // a
    [0.99, 0.005, 0.004, 0.001], // blank, space 0.001: inside a word
    [0.01, 0.005, 0.98, 0.005], // b
    [0.6, 0.01, 0.01, 0.38], // blank wins, but the space is strong: a word gap
    [0.9, 0.01, 0.01, 0.08], // still the gap: one space, not two
    [0.01, 0.98, 0.005, 0.005], // a
    [0.02, 0.01, 0.02, 0.95], // the space wins outright: written once, no extra
    [0.01, 0.005, 0.98, 0.005], // b
  ].flat();
  assert.equal(ctcGreedyDecode(rows, 8, L).text, 'aba b', 'plain greedy drops the gap the blank won');
  const r = ctcGreedyDecode(rows, 8, L, { spaceIndex: 3, spaceThreshold: 0.005 });
  assert.equal(r.text, 'ab a b');
  assert.deepEqual(r.indices, [1, 2, 3, 1, 3, 2]);
  // The inserted space won no step: confidence is the mean over the five symbols that did.
  assert.ok(Math.abs(r.confidence - (0.98 * 4 + 0.95) / 5) < 1e-12, String(r.confidence));
  // Never a leading space, and a threshold above the gap's probability keeps plain greedy.
  assert.equal(ctcGreedyDecode(rows.slice(12), 5, L, { spaceIndex: 3, spaceThreshold: 0.005 }).text, 'a b');
  assert.equal(ctcGreedyDecode(rows, 8, L, { spaceIndex: 3, spaceThreshold: 0.5 }).text, 'aba b');
});

test('greedy CTC: nothing but blanks is an empty text with confidence 0', () => {
  const r = ctcGreedyDecode(steps([0, 0.99], [0, 0.98]), 2, LABELS);
  assert.deepEqual([r.text, r.confidence, r.indices], ['', 0, []]);
  assert.throws(() => ctcGreedyDecode([0.5, 0.5], 1, LABELS), /need 3 scores/);
});

test('batch decode of a [batch, steps, classes] tensor', () => {
  const data = Float32Array.from([...steps([1, 0.9], [0, 0.9]), ...steps([2, 0.8], [1, 0.7])]);
  const out = ctcGreedyDecodeBatch({ dtype: 'float32', dims: [2, 2, 3], data }, LABELS);
  assert.deepEqual(
    out.map((r) => r.text),
    ['a', 'ba'],
  );
  assert.ok(Math.abs(out[1]!.confidence - 0.75) < 1e-6);
  assert.throws(
    () => ctcGreedyDecodeBatch({ dtype: 'float32', dims: [2, 2, 3], data }, ['', 'a']),
    /emits 3 classes but 2 labels/,
  );
  assert.throws(
    () => ctcGreedyDecodeBatch({ dtype: 'float32', dims: [6, 2], data }, LABELS),
    /\[batch, steps, classes\]/,
  );
  assert.throws(
    () => ctcGreedyDecodeBatch({ dtype: 'int32', dims: [1, 1, 3], data: new Int32Array(3) }, LABELS),
    /float32 or float64/,
  );
});

test('paddleOcrLabels: blank first, one symbol a line, a space last', () => {
  assert.deepEqual(paddleOcrLabels('a\nb\n'), ['', 'a', 'b', ' ']);
  assert.deepEqual(paddleOcrLabels('a\r\nb'), ['', 'a', 'b', ' ']);
  assert.deepEqual(paddleOcrLabels('a\nb', { spaceChar: false }), ['', 'a', 'b']);
  // A symbol may itself be a space-like character; only line ends are separators.
  assert.deepEqual(paddleOcrLabels('\u3000\n!'), ['', '\u3000', '!', ' ']);
});
