// Text steps: turn a free-text feature into a fixed-width sparse vector by normalising, tokenising
// and hashing n-grams into buckets (the "hashing trick"), so a text model needs no vocabulary file.
// Pure TypeScript with a self-contained hash: the browser must produce the very same vector as the
// server and as the training script, bit for bit.
import { Type } from '@sinclair/typebox';
import { ContractError } from '../errors.js';
import { defineStep, type SparseVector } from './registry.js';

const tokensShape = { kind: 'tokens' } as const;
const stringShape = { kind: 'string' } as const;

// ---------------------------------------------------------------------------------------------
// MurmurHash3 (x86, 32-bit) over UTF-8. Chosen because it is small, well known and has published
// test vectors; the bytes are produced on the fly, so hashing an n-gram allocates nothing.

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

/**
 * MurmurHash3_x86_32 of the UTF-8 bytes of `parts[start] + ' ' + ... + parts[start + count - 1]`,
 * as an unsigned 32-bit integer. A lone surrogate is encoded as U+FFFD, as `TextEncoder` does.
 */
export function murmurHash3Joined(parts: ArrayLike<string>, start: number, count: number, seed = 0): number {
  let h = seed | 0;
  let k = 0;
  let length = 0;
  const push = (byte: number): void => {
    k |= byte << ((length & 3) << 3);
    length++;
    if ((length & 3) === 0) {
      k = Math.imul(k, C1);
      k = (k << 15) | (k >>> 17);
      k = Math.imul(k, C2);
      h ^= k;
      h = (h << 13) | (h >>> 19);
      h = (Math.imul(h, 5) + 0xe6546b64) | 0;
      k = 0;
    }
  };
  for (let p = start; p < start + count; p++) {
    if (p > start) push(0x20);
    const s = parts[p]!;
    for (let i = 0; i < s.length; i++) {
      let c = s.charCodeAt(i);
      if (c < 0x80) {
        push(c);
      } else if (c < 0x800) {
        push(0xc0 | (c >> 6));
        push(0x80 | (c & 0x3f));
      } else {
        if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
          const d = s.charCodeAt(i + 1);
          if (d >= 0xdc00 && d <= 0xdfff) {
            const cp = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
            push(0xf0 | (cp >> 18));
            push(0x80 | ((cp >> 12) & 0x3f));
            push(0x80 | ((cp >> 6) & 0x3f));
            push(0x80 | (cp & 0x3f));
            i++;
            continue;
          }
        }
        if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd;
        push(0xe0 | (c >> 12));
        push(0x80 | ((c >> 6) & 0x3f));
        push(0x80 | (c & 0x3f));
      }
    }
  }
  if ((length & 3) !== 0) {
    k = Math.imul(k, C1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, C2);
    h ^= k;
  }
  h ^= length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * MurmurHash3_x86_32 of a string's UTF-8 bytes, unsigned.
 * @example murmurHash3('Hello, world!', 1234) // 0xfaf6cdb3
 */
export function murmurHash3(text: string, seed = 0): number {
  return murmurHash3Joined([text], 0, 1, seed);
}

// ---------------------------------------------------------------------------------------------

function asText(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v === null || v === undefined) return '';
  return String(v);
}

/** Cuts `s` to at most `max` UTF-16 units without splitting a surrogate pair. */
function truncate(s: string, max: number): string {
  if (s.length <= max) return s;
  const c = s.charCodeAt(max - 1);
  return s.slice(0, c >= 0xd800 && c <= 0xdbff ? max - 1 : max);
}

// Emails go first: otherwise the URL pattern could take the domain part of an address.
const EMAIL = /[\p{L}\p{N}._%+-]+@[\p{L}\p{N}-]+(?:\.[\p{L}\p{N}-]+)*\.\p{L}{2,}/gu;
// A URL starts with a scheme or `www.`; trailing sentence punctuation is not part of it.
const URL_PATTERN = /(?:(?:https?|ftp):\/\/|www\.)[^\s<>"']*[^\s<>"'.,;:!?)\]}]/giu;
// A standalone number (digits with inner `.`/`,` groups), not digits inside a word such as `mp3`.
const NUMBER = /(?<![\p{L}\p{N}_])\p{Nd}+(?:[.,]\p{Nd}+)*(?![\p{L}\p{N}_])/gu;
const COMBINING = /\p{M}+/gu;
const WHITESPACE = /\s+/gu;

const Placeholder = Type.String({ minLength: 1, pattern: '^\\S+$', description: 'token put in place of each match' });

export const textNormalize = defineStep({
  op: 'text-normalize',
  description:
    'Normalises text: truncates to `maxLength` UTF-16 units, applies Unicode normalisation (NFKC by default), ' +
    'optionally strips accents, lower-cases, replaces emails/URLs/numbers by placeholder tokens, and collapses ' +
    'runs of whitespace into one space (trimming the ends).',
  params: Type.Object(
    {
      /** Default true (locale-independent `toLowerCase`). */
      lowercase: Type.Optional(Type.Boolean()),
      /** Default `NFKC`, which also folds full-width and compatibility forms (`ｆｒｅｅ` → `free`). */
      unicode: Type.Optional(Type.Union([Type.Literal('NFKC'), Type.Literal('NFC'), Type.Literal('none')])),
      /** Default false. Decomposes and removes combining marks (`café` → `cafe`). */
      stripAccents: Type.Optional(Type.Boolean()),
      /** Default true. */
      collapseWhitespace: Type.Optional(Type.Boolean()),
      /** Placeholder tokens for matches, e.g. `{ urls: __url__, emails: __email__, numbers: __number__ }`. */
      replace: Type.Optional(
        Type.Object(
          {
            emails: Type.Optional(Placeholder),
            urls: Type.Optional(Placeholder),
            numbers: Type.Optional(Placeholder),
          },
          { additionalProperties: false },
        ),
      ),
      /** Input beyond this many UTF-16 units is ignored, bounding the work per value. */
      maxLength: Type.Optional(Type.Integer({ minimum: 1 })),
    },
    { additionalProperties: false },
  ),
  accepts: ['string', 'category', 'any'],
  compile: (p) => {
    const form = p.unicode ?? 'NFKC';
    const lowercase = p.lowercase ?? true;
    const collapse = p.collapseWhitespace ?? true;
    const replacements: Array<[RegExp, string]> = [];
    if (p.replace?.emails) replacements.push([EMAIL, ` ${p.replace.emails} `]);
    if (p.replace?.urls) replacements.push([URL_PATTERN, ` ${p.replace.urls} `]);
    if (p.replace?.numbers) replacements.push([NUMBER, ` ${p.replace.numbers} `]);
    return {
      output: stringShape,
      apply: (v) => {
        let s = asText(v);
        if (p.maxLength !== undefined) s = truncate(s, p.maxLength);
        if (form !== 'none') s = s.normalize(form);
        if (p.stripAccents) s = s.normalize('NFD').replace(COMBINING, '').normalize('NFC');
        if (lowercase) s = s.toLowerCase();
        for (const [re, token] of replacements) s = s.replace(re, token);
        if (collapse) s = s.replace(WHITESPACE, ' ').trim();
        return s;
      },
    };
  },
});

/** Words of letters, marks, digits and `_`, with inner apostrophes kept (`don't`, `l'homme`). */
export const DEFAULT_TOKEN_PATTERN = "[\\p{L}\\p{M}\\p{N}_]+(?:['’][\\p{L}\\p{M}\\p{N}_]+)*";

const SURROGATE = /[\ud800-\udfff]/;

function codePointLength(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

export const tokenize = defineStep({
  op: 'tokenize',
  description:
    'Splits a string into tokens: every match of `pattern` (a JavaScript regular expression in Unicode mode; ' +
    'default: words of letters, digits and `_` with inner apostrophes). Tokens shorter than `minLength` or longer ' +
    'than `maxLength` code points, or listed in `stopWords`, are dropped; at most `maxTokens` are kept.',
  params: Type.Object(
    {
      pattern: Type.Optional(Type.String({ minLength: 1 })),
      /** Default 1. */
      minLength: Type.Optional(Type.Integer({ minimum: 1 })),
      maxLength: Type.Optional(Type.Integer({ minimum: 1 })),
      stopWords: Type.Optional(Type.Array(Type.String())),
      maxTokens: Type.Optional(Type.Integer({ minimum: 1 })),
    },
    { additionalProperties: false },
  ),
  accepts: ['string', 'category', 'any'],
  compile: (p, _in, ctx) => {
    let re: RegExp;
    try {
      re = new RegExp(p.pattern ?? DEFAULT_TOKEN_PATTERN, 'gu');
    } catch (e) {
      throw new ContractError(`${ctx.path}/pattern`, `not a valid regular expression: ${(e as Error).message}`);
    }
    const minLength = p.minLength ?? 1;
    const maxLength = p.maxLength ?? Infinity;
    if (maxLength < minLength) throw new ContractError(`${ctx.path}/maxLength`, 'maxLength must be at least minLength');
    const maxTokens = p.maxTokens ?? Infinity;
    const stop = new Set(p.stopWords ?? []);
    return {
      output: tokensShape,
      apply: (v) => {
        const s = asText(v);
        const out: string[] = [];
        re.lastIndex = 0;
        for (let m = re.exec(s); m !== null && out.length < maxTokens; m = re.exec(s)) {
          const t = m[0];
          if (t.length === 0) {
            // A pattern that can match nothing must still move on (by a whole code point).
            re.lastIndex += (s.codePointAt(re.lastIndex) ?? 0) > 0xffff ? 2 : 1;
            continue;
          }
          const n = SURROGATE.test(t) ? codePointLength(t) : t.length;
          if (n < minLength || n > maxLength || stop.has(t)) continue;
          out.push(t);
        }
        return out;
      },
    };
  },
});

const NgramRange = (max: number) =>
  Type.Array(Type.Integer({ minimum: 1, maximum: max }), { minItems: 2, maxItems: 2 });

function ngramRange(range: readonly number[] | undefined, fallback: [number, number], path: string): [number, number] {
  const [lo, hi] = range ?? fallback;
  if (lo! > hi!)
    throw new ContractError(`${path}/ngrams`, `the n-gram range [${lo}, ${hi}] is empty: write [min, max]`);
  return [lo!, hi!];
}

export const charNgrams = defineStep({
  op: 'char-ngrams',
  description:
    'Character n-grams (by code point) as tokens, for n from `ngrams[0]` to `ngrams[1]`. On a string, over the whole ' +
    'string; on tokens, within each token padded with one space on each side (so n-grams mark word edges). ' +
    'A text shorter than n yields no n-gram of that length. Feed the result to `hash-ngrams` with `ngrams: [1, 1]`.',
  params: Type.Object(
    {
      /** Inclusive range [min, max]; default [3, 5]. */
      ngrams: Type.Optional(NgramRange(16)),
    },
    { additionalProperties: false },
  ),
  accepts: ['string', 'tokens', 'category', 'any'],
  compile: (p, input, ctx) => {
    const [lo, hi] = ngramRange(p.ngrams, [3, 5], ctx.path);
    const emit = (chars: string[], out: string[]): void => {
      for (let n = lo; n <= hi; n++) {
        for (let i = 0; i + n <= chars.length; i++) out.push(chars.slice(i, i + n).join(''));
      }
    };
    return {
      output: tokensShape,
      apply: (v) => {
        const out: string[] = [];
        if (input.kind === 'tokens' || Array.isArray(v)) {
          for (const t of (Array.isArray(v) ? v : []) as unknown[]) emit(Array.from(` ${asText(t)} `), out);
        } else {
          emit(Array.from(asText(v)), out);
        }
        return out;
      },
    };
  },
});

/** Largest bucket count: 2^24 columns already make a 64 MiB float32 row. */
export const MAX_BUCKETS = 1 << 24;

export const hashNgrams = defineStep({
  op: 'hash-ngrams',
  description:
    'Hashes word n-grams (n from `ngrams[0]` to `ngrams[1]`; an n-gram is its tokens joined by one space) into a ' +
    'sparse vector of width `buckets`: bucket = MurmurHash3_x86_32(UTF-8 of the n-gram, `seed`) mod `buckets`. ' +
    "With `signed`, the hash's top bit gives the n-gram a sign of -1 (set) or +1, so collisions tend to cancel. " +
    "Each bucket's signed count c becomes c (`count`), sign(c) (`binary`) or sign(c)·(1 + ln|c|) (`tf-log`); " +
    '`norm: l2` then scales the vector to unit length.',
  params: Type.Object(
    {
      buckets: Type.Integer({ minimum: 1, maximum: MAX_BUCKETS }),
      /** Inclusive range [min, max]; default [1, 1]. */
      ngrams: Type.Optional(NgramRange(8)),
      /** Default `count`. */
      weighting: Type.Optional(Type.Union([Type.Literal('count'), Type.Literal('binary'), Type.Literal('tf-log')])),
      /** Default `none`. */
      norm: Type.Optional(Type.Union([Type.Literal('none'), Type.Literal('l2')])),
      /** Default false. */
      signed: Type.Optional(Type.Boolean()),
      /** Hash seed, default 0. */
      seed: Type.Optional(Type.Integer({ minimum: 0, maximum: 0xffffffff })),
    },
    { additionalProperties: false },
  ),
  accepts: ['tokens'],
  compile: (p, _in, ctx) => {
    const [lo, hi] = ngramRange(p.ngrams, [1, 1], ctx.path);
    const { buckets } = p;
    const weighting = p.weighting ?? 'count';
    const l2 = (p.norm ?? 'none') === 'l2';
    const signed = p.signed ?? false;
    const seed = p.seed ?? 0;
    return {
      output: { kind: 'vector', width: buckets },
      apply: (v): SparseVector => {
        const tokens = (Array.isArray(v) ? v : []) as string[];
        const counts = new Map<number, number>();
        for (let n = lo; n <= hi; n++) {
          for (let i = 0; i + n <= tokens.length; i++) {
            const h = murmurHash3Joined(tokens, i, n, seed);
            const bucket = h % buckets;
            counts.set(bucket, (counts.get(bucket) ?? 0) + (signed && h >>> 31 ? -1 : 1));
          }
        }
        const indices = Int32Array.from(counts.keys()).sort();
        let kept = 0;
        const values = new Float64Array(indices.length);
        let squares = 0;
        for (let j = 0; j < indices.length; j++) {
          const c = counts.get(indices[j]!)!;
          if (c === 0) continue; // signed n-grams that cancelled out
          const w =
            weighting === 'count'
              ? c
              : weighting === 'binary'
                ? Math.sign(c)
                : Math.sign(c) * (1 + Math.log(Math.abs(c)));
          indices[kept] = indices[j]!;
          values[kept++] = w;
          squares += w * w;
        }
        const scale = l2 && squares > 0 ? 1 / Math.sqrt(squares) : 1;
        const out = new Float32Array(kept);
        for (let j = 0; j < kept; j++) out[j] = values[j]! * scale;
        return { sparse: true, width: buckets, indices: indices.slice(0, kept), values: out };
      },
    };
  },
});
