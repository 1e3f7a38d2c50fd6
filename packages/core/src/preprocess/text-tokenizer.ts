// Text → token ids for transformer models, from a Hugging Face `tokenizer.json`. The tokenization itself
// (normalizers, pre-tokenizers, WordPiece / BPE / byte-level BPE / Unigram, post-processor templates) is
// @huggingface/tokenizers, the pure-JS port behind transformers.js: it runs unchanged in Node and in the
// browser and reads tokenizer.json as written by Python's `tokenizers`. What it does not do, and this module
// adds: truncation strategies for single texts and pairs, a hard length limit, and character offsets.
import { Tokenizer } from '@huggingface/tokenizers';
import type { TokenizerSection } from '../contract/schema.js';
import { ContractError } from '../errors.js';

export type Truncation = NonNullable<TokenizerSection['truncation']>;

export interface TokenizedText {
  ids: number[];
  /** 0 for the first text (and its special tokens), 1 for the second of a pair, as the template says. */
  typeIds: number[];
  /** Tokens kept from each text (without special tokens): [first, second]. */
  pieces: [number, number];
  /**
   * Character span [start, end) of each token in its own text (UTF-16 indices), `sequence` 0 or 1 naming which
   * text of a pair; null for special tokens and tokens that could not be placed (e.g. `[UNK]`).
   */
  offsets?: Array<{ sequence: 0 | 1; start: number; end: number } | null>;
}

/** Raised when a text does not fit and truncation is `none`, or the pair cannot be cut as asked. */
export class TooLongError extends Error {
  constructor(
    readonly side: 0 | 1,
    message: string,
  ) {
    super(message);
    this.name = 'TooLongError';
  }
}

// GPT-2's byte ↔ printable-character table, used to read byte-level BPE tokens back as text for offsets.
const BYTE_OF_CHAR = (() => {
  const keep: number[] = [];
  for (let b = 33; b <= 126; b++) keep.push(b);
  for (let b = 161; b <= 172; b++) keep.push(b);
  for (let b = 174; b <= 255; b++) keep.push(b);
  const map = new Map<string, number>();
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    if (keep.includes(b)) map.set(String.fromCharCode(b), b);
    else map.set(String.fromCharCode(256 + extra++), b);
  }
  return map;
})();

const utf8 = new TextDecoder('utf-8', { fatal: false });

/** Case-, accent- and compatibility-folded form, to find a normalised token in the original text. */
function fold(s: string): string {
  return s
    .normalize('NFKD')
    .replace(/\p{Mn}/gu, '')
    .toLowerCase();
}

interface TokenizerJson {
  model?: { type?: string; continuing_subword_prefix?: string; unk_token?: string; vocab?: unknown };
  pre_tokenizer?: { type?: string; pretokenizers?: Array<{ type?: string }> } | null;
  decoder?: { type?: string } | null;
  added_tokens?: Array<{ id: number; content: string; special?: boolean }>;
}

export interface TextTokenizerOptions {
  maxLength: number;
  truncation?: Truncation;
  /** Compute character offsets (token classification needs them; classification does not). */
  offsets?: boolean;
}

/**
 * A compiled tokenizer: built once per model version from the parsed tokenizer.json.
 * @example
 * const t = new TextTokenizer(JSON.parse(readFileSync('tokenizer.json', 'utf8')), { maxLength: 128 });
 * t.encode('Hello world').ids; // [2, ..., 3]
 */
export class TextTokenizer {
  readonly #tok: Tokenizer;
  readonly #idOf: Map<string, number>;
  readonly #special: Set<string>;
  readonly #unkId: number;
  readonly #prefix: string | undefined;
  readonly #byteLevel: boolean;
  readonly #specialsSingle: number;
  readonly #specialsPair: number;
  readonly maxLength: number;
  readonly truncation: Truncation;
  readonly wantOffsets: boolean;
  /** Size of the vocabulary (largest id + 1), for checking ids sent in tensor form. */
  readonly vocabSize: number;
  /** The pad token's id when the tokenizer names one (`[PAD]`, `<pad>`), else undefined. */
  readonly padId: number | undefined;

  constructor(json: unknown, o: TextTokenizerOptions) {
    const j = json as TokenizerJson;
    if (!j || typeof j !== 'object' || !j.model || typeof j.model !== 'object')
      throw new ContractError('/tokenizer/file', 'not a Hugging Face tokenizer.json (no "model" section)');
    try {
      this.#tok = new Tokenizer(json as object, {});
    } catch (e) {
      throw new ContractError('/tokenizer/file', `tokenizer.json cannot be loaded: ${(e as Error).message}`);
    }
    this.maxLength = o.maxLength;
    this.truncation = o.truncation ?? 'longest_first';
    this.wantOffsets = o.offsets === true;
    this.#idOf = new Map(this.#tok.get_vocab(true));
    for (const [id, t] of this.#tok.get_added_tokens_decoder()) this.#idOf.set(t.content, id);
    this.#special = new Set((j.added_tokens ?? []).filter((t) => t.special).map((t) => t.content));
    const unk = j.model.unk_token;
    this.#unkId = (unk !== undefined ? this.#idOf.get(unk) : undefined) ?? -1;
    this.#prefix = j.model.continuing_subword_prefix ?? (j.model.type === 'WordPiece' ? '##' : undefined);
    const pre = j.pre_tokenizer;
    this.#byteLevel =
      pre?.type === 'ByteLevel' ||
      (pre?.pretokenizers ?? []).some((p) => p.type === 'ByteLevel') ||
      j.decoder?.type === 'ByteLevel';
    const pp = this.#tok.post_processor;
    this.#specialsSingle = pp ? pp([], null, true).tokens.length : 0;
    this.#specialsPair = pp ? pp([], [], true).tokens.length : 0;
    this.vocabSize = Math.max(...this.#idOf.values()) + 1;
    this.padId = ['[PAD]', '<pad>', '<|pad|>', '<PAD>'].map((t) => this.#idOf.get(t)).find((id) => id !== undefined);
    if (this.#specialsPair + 2 > this.maxLength && this.#specialsSingle + 1 > this.maxLength)
      throw new ContractError('/tokenizer/maxLength', `maxLength ${this.maxLength} leaves no room for text`);
  }

  /**
   * Tokens of one text without special tokens, and how much of the text they cover. A long text is tokenized
   * from a prefix cut at whitespace when that prefix already holds more tokens than can be kept (tokens never
   * span whitespace before a word in these pre-tokenizers), so a 1 MB text costs about as much as a short one.
   */
  #pieces(text: string, keep: number): { tokens: string[]; covered: number } {
    let cut = Math.max(512, keep * 8);
    while (this.truncation !== 'none' && cut * 2 < text.length) {
      while (cut < text.length && !/\s/.test(text[cut]!)) cut++;
      if (cut >= text.length) break;
      const head = this.#tok.tokenize(text.slice(0, cut), { add_special_tokens: false });
      if (head.length > keep + 1) return { tokens: head, covered: cut };
      cut *= 4;
    }
    return { tokens: this.#tok.tokenize(text, { add_special_tokens: false }), covered: text.length };
  }

  /** Token ids, type ids and (when asked) offsets of a text or a pair, truncated as configured. */
  encode(text: string, pair?: string): TokenizedText {
    const isPair = pair !== undefined;
    const budget = this.maxLength - (isPair ? this.#specialsPair : this.#specialsSingle);
    const pa = this.#pieces(text, budget);
    const pb = isPair ? this.#pieces(pair, budget) : { tokens: [], covered: 0 };
    let a = pa.tokens;
    let b = pb.tokens;
    const over = a.length + b.length - budget;
    if (over > 0) {
      switch (this.truncation) {
        case 'none':
          throw new TooLongError(
            a.length >= b.length ? 0 : 1,
            `${a.length + b.length + (isPair ? this.#specialsPair : this.#specialsSingle)} tokens; the model takes at most ${this.maxLength} (tokenizer.truncation is none)`,
          );
        case 'only_first':
          if (a.length - over < 1 && !(isPair && a.length === over))
            throw new TooLongError(
              1,
              `the second text alone fills the ${this.maxLength} tokens (truncation only_first)`,
            );
          a = a.slice(0, Math.max(0, a.length - over));
          break;
        case 'only_second':
          if (!isPair || b.length < over)
            throw new TooLongError(
              0,
              isPair
                ? `the first text alone fills the ${this.maxLength} tokens (truncation only_second)`
                : `a single text cannot be cut with truncation only_second`,
            );
          b = b.slice(0, b.length - over);
          break;
        default: {
          // longest_first: remove one token at a time from the longer side (the second on a tie, as transformers).
          let la = a.length;
          let lb = b.length;
          for (let n = over; n > 0; n--) {
            if (la > lb) la--;
            else lb--;
          }
          a = a.slice(0, la);
          b = b.slice(0, lb);
        }
      }
    }
    const pp = this.#tok.post_processor;
    const processed = pp
      ? pp(a, isPair ? b : null, true)
      : { tokens: [...a, ...b], token_type_ids: [...a.map(() => 0), ...b.map(() => 1)] };
    const tokens = processed.tokens;
    const ids = tokens.map((t: string) => this.#idOf.get(t) ?? this.#unkId);
    const typeIds = processed.token_type_ids ?? tokens.map(() => 0);
    const out: TokenizedText = { ids, typeIds, pieces: [pa.tokens.length, pb.tokens.length] };
    if (this.wantOffsets)
      out.offsets = this.#offsets(tokens, text.slice(0, pa.covered), a, pair?.slice(0, pb.covered), b);
    return out;
  }

  /** Readable surface of a token, for finding it in the text. */
  #surface(token: string): string {
    let t = token;
    if (this.#byteLevel) {
      const bytes: number[] = [];
      for (const ch of t) {
        const byte = BYTE_OF_CHAR.get(ch);
        if (byte === undefined) return fold(t);
        bytes.push(byte);
      }
      t = utf8.decode(new Uint8Array(bytes)).replace(/\uFFFD/g, '');
    } else if (this.#prefix && t.startsWith(this.#prefix)) t = t.slice(this.#prefix.length);
    return fold(t.replace(/\u2581/g, ' ')).trim();
  }

  /** Places each side's tokens in order in its text; a token that cannot be found gets null. */
  #offsets(
    tokens: readonly string[],
    text: string,
    a: readonly string[],
    pair: string | undefined,
    b: readonly string[],
  ): TokenizedText['offsets'] {
    const place = (side: readonly string[], src: string, sequence: 0 | 1) => {
      // Folded text with the original index of each folded character.
      let folded = '';
      const origin: number[] = [];
      for (let i = 0; i < src.length;) {
        const cp = src.codePointAt(i)!;
        const width = cp > 0xffff ? 2 : 1;
        const f = fold(String.fromCodePoint(cp));
        for (let k = 0; k < f.length; k++) origin.push(i);
        folded += f;
        i += width;
      }
      origin.push(src.length);
      let cursor = 0;
      return side.map((tok) => {
        if (this.#special.has(tok) && this.#idOf.get(tok) === this.#unkId) return null;
        const s = this.#surface(tok);
        if (!s) return null;
        const at = folded.indexOf(s, cursor);
        if (at < 0 || at - cursor > 64 + s.length * 4) return null;
        cursor = at + s.length;
        const start = origin[at]!;
        let end = origin[cursor]!;
        if (end === start) end = start + 1;
        return { sequence, start, end };
      });
    };
    const placedA = place(a, text, 0);
    const placedB = pair !== undefined ? place(b, pair, 1) : [];
    // Walk the template's tokens: the text tokens appear in order among the special ones.
    const out: NonNullable<TokenizedText['offsets']> = [];
    let ia = 0;
    let ib = 0;
    for (const tok of tokens) {
      if (ia < a.length && tok === a[ia]) out.push(placedA[ia++] ?? null);
      else if (ib < b.length && ia >= a.length && tok === b[ib]) out.push(placedB[ib++] ?? null);
      else out.push(null);
    }
    return out;
  }
}
