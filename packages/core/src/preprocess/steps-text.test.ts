import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileStep, isSparse, type SparseVector, type ValueShape } from './registry.js';
import { compileEncoder } from './encoder.js';
import { ContractError } from '../errors.js';
import type { Manifest } from '../contract/schema.js';
import { murmurHash3, murmurHash3Joined, MAX_BUCKETS } from './steps-text.js';
import './steps.js';

const textFeature = { name: 'text', type: 'string' } as const;

/** Compiles a chain of steps onto a string feature and returns a function applying all of them. */
function chain(...specs: Array<{ op: string; [k: string]: unknown }>): {
  apply: (v: unknown) => unknown;
  output: ValueShape;
} {
  let shape: ValueShape = { kind: 'string' };
  const steps = specs.map((s, i) => {
    const step = compileStep(s, shape, { feature: textFeature, path: `/preprocess/0/columns/0/steps/${i}` });
    shape = step.output;
    return step;
  });
  return { apply: (v) => steps.reduce((x, s) => s.apply(x), v), output: shape };
}

function sparse(v: unknown): { indices: number[]; values: number[]; width: number } {
  assert.ok(isSparse(v), 'expected a SparseVector');
  return { indices: Array.from(v.indices), values: Array.from(v.values), width: v.width };
}

function close(actual: readonly number[], expected: readonly number[], tol = 1e-6): void {
  assert.equal(actual.length, expected.length, `lengths ${actual.length} vs ${expected.length}`);
  actual.forEach((a, i) => assert.ok(Math.abs(a - expected[i]!) <= tol, `element ${i}: ${a} vs ${expected[i]}`));
}

// ---------------------------------------------------------------------------------------------
// The hash. If any of these change, every hashed model ever trained silently breaks.

test('murmurHash3 matches the published MurmurHash3_x86_32 test vectors', () => {
  assert.equal(murmurHash3('', 0), 0);
  assert.equal(murmurHash3('', 1), 0x514e28b7);
  assert.equal(murmurHash3('', 0xffffffff), 0x81f16f39);
  assert.equal(murmurHash3('Hello, world!', 1234), 0xfaf6cdb3);
  assert.equal(murmurHash3('a', 0x9747b28c), 0x7fa09ea6);
  assert.equal(murmurHash3('abcd', 0x9747b28c), 0xf0478627);
  assert.equal(murmurHash3('The quick brown fox jumps over the lazy dog', 0x9747b28c), 0x2fa826cd);
  // Multi-byte UTF-8: eight two-byte characters.
  assert.equal(murmurHash3('ππππππππ', 0x9747b28c), 0xd58063c1);
});

test('murmurHash3 agrees with an independent implementation for words, n-grams and non-ASCII text', () => {
  // Values computed separately with a from-the-spec Python implementation over str.encode('utf-8').
  assert.equal(murmurHash3('free'), 0x513e646e);
  assert.equal(murmurHash3('money'), 0xd47e2946);
  assert.equal(murmurHash3('free money'), 0xca0a1f48);
  assert.equal(murmurHash3('café'), 0x241c0f08);
  assert.equal(murmurHash3('😀'), 0xbeb42efa);
  // A lone surrogate hashes as U+FFFD, which is what TextEncoder would produce.
  assert.equal(murmurHash3('\ud800'), 0xb69ca6c1);
  assert.equal(murmurHash3('\ufffd'), 0xb69ca6c1);
  // Joining tokens on the fly is the same as hashing the joined string.
  assert.equal(murmurHash3Joined(['free', 'money'], 0, 2), 0xca0a1f48);
  assert.equal(murmurHash3Joined(['x', 'free', 'money', 'y'], 1, 2, 7), murmurHash3('free money', 7));
});

/** The hash written the plain way, over TextEncoder's bytes, to check the streaming encoder. */
function referenceHash(text: string, seed: number): number {
  const bytes = new TextEncoder().encode(text);
  const mix = (k: number): number =>
    Math.imul((Math.imul(k, 0xcc9e2d51) << 15) | (Math.imul(k, 0xcc9e2d51) >>> 17), 0x1b873593);
  let h = seed | 0;
  const blocks = bytes.length >> 2;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let b = 0; b < blocks; b++) {
    h ^= mix(view.getUint32(b * 4, true));
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  let tail = 0;
  for (let i = bytes.length - 1; i >= blocks * 4; i--) tail = (tail << 8) | bytes[i]!;
  if (bytes.length & 3) h ^= mix(tail);
  h ^= bytes.length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

test('murmurHash3 equals the reference over TextEncoder bytes on 2,000 pseudo-random strings', () => {
  // Characters from every UTF-8 length class, plus stray surrogates.
  const alphabet = [
    'a',
    'Z',
    ' ',
    '0',
    '\n',
    'é',
    'ß',
    'Ω',
    'ж',
    '中',
    '文',
    '€',
    '\u2028',
    '😀',
    '🚀',
    '\ud800',
    '\udc00',
    '\uffff',
    '\u0080',
    '\u07ff',
    '\u0800',
  ];
  let state = 42;
  const next = (): number => (state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32;
  for (let n = 0; n < 2000; n++) {
    const len = Math.floor(next() * 40);
    let s = '';
    for (let i = 0; i < len; i++) s += alphabet[Math.floor(next() * alphabet.length)]!;
    const seed = Math.floor(next() * 2 ** 32);
    assert.equal(murmurHash3(s, seed), referenceHash(s, seed), `string ${JSON.stringify(s)} seed ${seed}`);
  }
});

// ---------------------------------------------------------------------------------------------

test('text-normalize folds case and compatibility forms, collapses whitespace', () => {
  const { apply, output } = chain({ op: 'text-normalize' });
  assert.deepEqual(output, { kind: 'string' });
  assert.equal(apply('  Hello\t\tWORLD \n\n again  '), 'hello world again');
  // NFKC: full-width letters, the ﬁ ligature and a non-breaking space.
  assert.equal(apply('ＦＲＥＥ\u00a0ﬁnance'), 'free finance');
  assert.equal(apply('Café ΣΠΑΜ Ковбой'), 'café σπαμ ковбой');
  assert.equal(apply(''), '');
  assert.equal(apply(null), '');
  assert.equal(apply(undefined), '');
  assert.equal(apply(42), '42');
});

test('text-normalize options: no lower-casing, accents, no collapsing, truncation', () => {
  assert.equal(chain({ op: 'text-normalize', lowercase: false }).apply(' Hi  There '), 'Hi There');
  assert.equal(chain({ op: 'text-normalize', stripAccents: true }).apply('Café Über naïve'), 'cafe uber naive');
  assert.equal(chain({ op: 'text-normalize', collapseWhitespace: false }).apply(' A  B '), ' a  b ');
  assert.equal(chain({ op: 'text-normalize', unicode: 'none' }).apply('ＡＢ'), 'ａｂ');
  assert.equal(chain({ op: 'text-normalize', maxLength: 5 }).apply('abcdefgh'), 'abcde');
  // Truncation never leaves half a surrogate pair behind.
  assert.equal(chain({ op: 'text-normalize', maxLength: 2 }).apply('a😀b'), 'a');
});

test('text-normalize replaces emails, URLs and numbers by placeholder tokens', () => {
  const { apply } = chain({
    op: 'text-normalize',
    replace: { emails: '__email__', urls: '__url__', numbers: '__number__' },
  });
  assert.equal(
    apply('Write to Sales@Example.COM or visit http://example.com/a?b=1. Only $1,000.50 for 3 days!'),
    'write to __email__ or visit __url__ . only $ __number__ for __number__ days!',
  );
  assert.equal(apply('see www.example.org, then https://x.y/z)'), 'see __url__ , then __url__ )');
  // Digits inside words are not numbers.
  assert.equal(apply('mp3 player v2 for 2 people'), 'mp3 player v2 for __number__ people');
  // Only the replacements asked for happen.
  assert.equal(chain({ op: 'text-normalize', replace: { numbers: '#' } }).apply('a@b.com 7'), 'a@b.com #');
});

test('tokenize: default words, apostrophes, Unicode, length limits, stop words, maxTokens', () => {
  const tok = chain({ op: 'tokenize' });
  assert.deepEqual(tok.output, { kind: 'tokens' });
  assert.deepEqual(tok.apply("don't stop-me now, __url__ 2nd! l’été"), [
    "don't",
    'stop',
    'me',
    'now',
    '__url__',
    '2nd',
    'l’été',
  ]);
  assert.deepEqual(tok.apply('σπαμ 中文 ковбой'), ['σπαμ', '中文', 'ковбой']);
  assert.deepEqual(tok.apply(''), []);
  assert.deepEqual(tok.apply('!!! ... ??? --- $$$'), []);
  assert.deepEqual(tok.apply(undefined), []);
  assert.deepEqual(chain({ op: 'tokenize', minLength: 2, maxLength: 4 }).apply('a bb ccc dddd eeeee 中文'), [
    'bb',
    'ccc',
    'dddd',
    '中文',
  ]);
  assert.deepEqual(chain({ op: 'tokenize', stopWords: ['the', 'a'] }).apply('the cat a dog'), ['cat', 'dog']);
  assert.deepEqual(chain({ op: 'tokenize', maxTokens: 2 }).apply('one two three'), ['one', 'two']);
  // A custom pattern: keep runs of $ and ! as tokens, and emoji (code points, not UTF-16 units, for lengths).
  assert.deepEqual(
    chain({ op: 'tokenize', pattern: '[\\p{L}\\p{N}]+|[$!]+|\\p{Extended_Pictographic}' }).apply('WIN $$$ now!!! 😀'),
    ['WIN', '$$$', 'now', '!!!', '😀'],
  );
  assert.deepEqual(chain({ op: 'tokenize', pattern: '\\S+', minLength: 2 }).apply('😀 😀😀'), ['😀😀']);
  // A pattern that can match the empty string still terminates.
  assert.deepEqual(chain({ op: 'tokenize', pattern: '\\w*' }).apply('ab 😀 cd'), ['ab', 'cd']);
});

test('char-ngrams over a string and within padded tokens, by code point', () => {
  assert.deepEqual(chain({ op: 'char-ngrams', ngrams: [2, 3] }).apply('abcd'), ['ab', 'bc', 'cd', 'abc', 'bcd']);
  assert.deepEqual(chain({ op: 'char-ngrams', ngrams: [2, 2] }).apply('😀a'), ['😀a']);
  assert.deepEqual(chain({ op: 'char-ngrams', ngrams: [5, 5] }).apply('abc'), []);
  assert.deepEqual(chain({ op: 'tokenize' }, { op: 'char-ngrams', ngrams: [3, 3] }).apply('hi you'), [
    ' hi',
    'hi ',
    ' yo',
    'you',
    'ou ',
  ]);
  const hashed = chain({ op: 'char-ngrams', ngrams: [3, 3] }, { op: 'hash-ngrams', buckets: 1024 });
  assert.deepEqual(
    sparse(hashed.apply('free')).indices,
    [murmurHash3('fre') % 1024, murmurHash3('ree') % 1024].sort((a, b) => a - b),
  );
});

// ---------------------------------------------------------------------------------------------

test('hash-ngrams: buckets of unigrams and bigrams, exact indices', () => {
  const { apply, output } = chain({ op: 'tokenize' }, { op: 'hash-ngrams', buckets: 16, ngrams: [1, 2] });
  assert.deepEqual(output, { kind: 'vector', width: 16 });
  // free → 0x513e646e % 16 = 14, money → 0xd47e2946 % 16 = 6, "free money" → 0xca0a1f48 % 16 = 8.
  assert.deepEqual(sparse(apply('free money')), { width: 16, indices: [6, 8, 14], values: [1, 1, 1] });
  // win → 10, cash → 5, now → 3, "win cash" → 6, "cash now" → 11.
  assert.deepEqual(sparse(apply('win cash now')).indices, [3, 5, 6, 10, 11]);
  const unigrams = chain({ op: 'tokenize' }, { op: 'hash-ngrams', buckets: 16 });
  assert.deepEqual(sparse(unigrams.apply('free money')).indices, [6, 14]);
  const bigramsOnly = chain({ op: 'tokenize' }, { op: 'hash-ngrams', buckets: 16, ngrams: [2, 2] });
  assert.deepEqual(sparse(bigramsOnly.apply('free money')).indices, [8]);
  assert.deepEqual(sparse(bigramsOnly.apply('free')).indices, []);
});

test("hash-ngrams: the sign trick takes the hash's top bit and lets collisions cancel", () => {
  const signed = chain({ op: 'tokenize' }, { op: 'hash-ngrams', buckets: 16, ngrams: [1, 2], signed: true });
  // Top bits: free 0, money 1, "free money" 1.
  assert.deepEqual(sparse(signed.apply('free money')), { width: 16, indices: [6, 8, 14], values: [-1, -1, 1] });
  // In 8 buckets free and money collide in bucket 6 with opposite signs.
  assert.deepEqual(sparse(chain({ op: 'tokenize' }, { op: 'hash-ngrams', buckets: 8 }).apply('free money')), {
    width: 8,
    indices: [6],
    values: [2],
  });
  assert.deepEqual(
    sparse(chain({ op: 'tokenize' }, { op: 'hash-ngrams', buckets: 8, signed: true }).apply('free money')).indices,
    [],
  );
});

test('hash-ngrams: count, binary and tf-log weighting, l2 norm', () => {
  const text = 'spam spam spam eggs'; // spam → bucket 8, eggs → bucket 1 (of 16)
  const run = (p: Record<string, unknown>): ReturnType<typeof sparse> =>
    sparse(chain({ op: 'tokenize' }, { op: 'hash-ngrams', buckets: 16, ...p }).apply(text));
  assert.deepEqual(run({}), { width: 16, indices: [1, 8], values: [1, 3] });
  assert.deepEqual(run({ weighting: 'binary' }).values, [1, 1]);
  close(run({ weighting: 'tf-log' }).values, [1, 1 + Math.log(3)]);
  close(run({ norm: 'l2' }).values, [1 / Math.sqrt(10), 3 / Math.sqrt(10)]);
  close(run({ weighting: 'binary', norm: 'l2' }).values, [Math.SQRT1_2, Math.SQRT1_2]);
  close(run({ weighting: 'tf-log', signed: true }).values, [1, -(1 + Math.log(3))]);
  // A different seed moves the buckets.
  assert.notDeepEqual(run({ seed: 1 }).indices, [1, 8]);
});

test('hash-ngrams edge cases: empty, punctuation only, non-ASCII, very long text', () => {
  const steps = [
    { op: 'text-normalize', replace: { urls: '__url__' } },
    { op: 'tokenize', maxTokens: 100_000 },
    { op: 'hash-ngrams', buckets: 1 << 18, ngrams: [1, 2], weighting: 'tf-log', norm: 'l2' },
  ];
  const { apply } = chain(...steps);
  for (const empty of ['', '   ', '!!! ??? ...', '😀😀', null, undefined]) {
    const v = sparse(apply(empty));
    assert.deepEqual([v.indices, v.values, v.width], [[], [], 1 << 18], `input ${JSON.stringify(empty)}`);
  }
  // Full-width and case variants land in the same buckets as the plain word.
  assert.deepEqual(sparse(apply('ＦＲＥＥ Ｍｏｎｅｙ')), sparse(apply('free money')));
  const greek = sparse(apply('Καλημέρα κόσμε'));
  assert.equal(greek.indices.length, 3);
  assert.ok(greek.indices.includes(murmurHash3('καλημέρα') % (1 << 18)));

  // 200,000 characters (the spam model's string limit) in well under a second, bounded by maxTokens.
  const words = ['lorem', 'ipsum', 'dolor', 'sit', 'amet', 'ünïcödé', '中文', 'x'];
  let long = '';
  for (let i = 0; long.length < 200_000; i++) long += `${words[i % words.length]}${i % 97} `;
  const started = performance.now();
  const v = sparse(apply(long));
  assert.ok(performance.now() - started < 2000, 'hashing 200k characters took too long');
  assert.ok(v.indices.length > 1000);
  assert.ok(
    v.indices.every((x, i) => x >= 0 && x < 1 << 18 && (i === 0 || x > v.indices[i - 1]!)),
    'indices sorted, unique, in range',
  );
  close([Math.hypot(...v.values)], [1], 1e-5);
  // Same input, same output: nothing depends on state left by an earlier call.
  assert.deepEqual(sparse(apply(long)), v);
  const capped = chain({ op: 'tokenize', maxTokens: 10 }, { op: 'hash-ngrams', buckets: 64 });
  assert.equal(
    sparse(capped.apply(long)).values.reduce((a, b) => a + b, 0),
    10,
  );
});

test('bad step parameters are refused with the path of the bad key', () => {
  const path = '/preprocess/0/columns/0/steps/';
  const refuses = (fn: () => unknown, where: string, message: RegExp): void => {
    assert.throws(fn, (e: unknown) => e instanceof ContractError && e.path === where && message.test(e.message));
  };
  refuses(() => chain({ op: 'tokenize', pattern: '([a-z' }), `${path}0/pattern`, /not a valid regular expression/);
  refuses(
    () => chain({ op: 'tokenize' }, { op: 'hash-ngrams', buckets: 16, ngrams: [2, 1] }),
    `${path}1/ngrams`,
    /range \[2, 1\] is empty/,
  );
  refuses(
    () => chain({ op: 'tokenize' }, { op: 'hash-ngrams', buckets: 16, ngram: [1, 2] }),
    `${path}1/ngram`,
    /bad parameters/,
  );
  refuses(
    () => chain({ op: 'tokenize' }, { op: 'hash-ngrams', buckets: MAX_BUCKETS + 1 }),
    `${path}1/buckets`,
    /bad parameters/,
  );
  refuses(() => chain({ op: 'tokenize' }, { op: 'hash-ngrams' }), `${path}1/buckets`, /required/);
  refuses(
    () => chain({ op: 'tokenize' }, { op: 'hash-ngrams', buckets: 16, weighting: 'tfidf' }),
    `${path}1/weighting`,
    /bad parameters/,
  );
  refuses(() => chain({ op: 'tokenize', minLength: 3, maxLength: 2 }), `${path}0/maxLength`, /at least minLength/);
  refuses(
    () => chain({ op: 'text-normalize', replace: { urls: 'two words' } }),
    `${path}0/replace/urls`,
    /bad parameters/,
  );
  refuses(() => chain({ op: 'hash-ngrams', buckets: 16 }), `${path}0`, /takes tokens input, but receives string/);
});

test('the encoder turns a string feature into a dense float32 row through the text steps', () => {
  const steps = [
    { op: 'text-normalize' },
    { op: 'tokenize' },
    { op: 'hash-ngrams', buckets: 16, ngrams: [1, 2], signed: true },
  ];
  const manifest: Manifest = {
    inputs: [
      { name: 'text', type: 'string', maxLength: 200000 },
      { name: 'length', type: 'number' },
    ],
    preprocess: [{ input: 'features', columns: [{ feature: 'text', steps }, { feature: 'length' }] }],
    outputs: [{ name: 'probabilities' }],
  };
  const encoder = compileEncoder(manifest);
  const { features } = encoder.encode([
    { text: 'FREE   Money', length: 2 },
    { text: '', length: 0 },
  ]);
  assert.deepEqual(features!.dims, [2, 17]);
  const row0 = new Array(17).fill(0);
  row0[6] = -1;
  row0[8] = -1;
  row0[14] = 1;
  row0[16] = 2;
  assert.deepEqual(Array.from(features!.data as Float32Array), [...row0, ...new Array(17).fill(0)]);

  // Steps that stop at tokens cannot feed a tensor.
  const bad: Manifest = {
    ...manifest,
    preprocess: [
      { input: 'features', columns: [{ feature: 'text', steps: [{ op: 'tokenize' }] }, { feature: 'length' }] },
    ],
  };
  assert.throws(
    () => compileEncoder(bad),
    (e: unknown) => e instanceof ContractError && /end in a tokens/.test(e.message),
  );
});

test('sparse output shares nothing between calls', () => {
  const { apply } = chain({ op: 'tokenize' }, { op: 'hash-ngrams', buckets: 16 });
  const a = apply('free') as SparseVector;
  const b = apply('money') as SparseVector;
  assert.deepEqual(Array.from(a.indices), [14]);
  assert.deepEqual(Array.from(b.indices), [6]);
});
