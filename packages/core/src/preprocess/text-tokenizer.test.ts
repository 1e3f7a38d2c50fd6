import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TextTokenizer } from './text-tokenizer.js';
import { compileEncoder } from './encoder.js';
import { InputError } from '../errors.js';
import type { Manifest } from '../contract/schema.js';

// Small tokenizer.json files in the three model families, written by hand in Hugging Face's format.
const SPECIAL = ['[PAD]', '[UNK]', '[CLS]', '[SEP]'];
const WORDS = ['hello', 'world', 'un', '##believ', '##able', ',', '!', 'is', 'it', 'true', '?', 'caf', '##e'];
const wpVocab = Object.fromEntries([...SPECIAL, ...WORDS].map((t, i) => [t, i]));
export const wordPieceJson = {
  version: '1.0',
  added_tokens: SPECIAL.map((content, id) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  })),
  normalizer: {
    type: 'BertNormalizer',
    clean_text: true,
    handle_chinese_chars: true,
    strip_accents: null,
    lowercase: true,
  },
  pre_tokenizer: { type: 'BertPreTokenizer' },
  post_processor: {
    type: 'TemplateProcessing',
    single: [
      { SpecialToken: { id: '[CLS]', type_id: 0 } },
      { Sequence: { id: 'A', type_id: 0 } },
      { SpecialToken: { id: '[SEP]', type_id: 0 } },
    ],
    pair: [
      { SpecialToken: { id: '[CLS]', type_id: 0 } },
      { Sequence: { id: 'A', type_id: 0 } },
      { SpecialToken: { id: '[SEP]', type_id: 0 } },
      { Sequence: { id: 'B', type_id: 1 } },
      { SpecialToken: { id: '[SEP]', type_id: 1 } },
    ],
    special_tokens: {
      '[CLS]': { id: '[CLS]', ids: [2], tokens: ['[CLS]'] },
      '[SEP]': { id: '[SEP]', ids: [3], tokens: ['[SEP]'] },
    },
  },
  decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
  model: {
    type: 'WordPiece',
    unk_token: '[UNK]',
    continuing_subword_prefix: '##',
    max_input_chars_per_word: 100,
    vocab: wpVocab,
  },
};

const id = (t: string) => wpVocab[t]!;

describe('TextTokenizer (WordPiece)', () => {
  const tok = new TextTokenizer(wordPieceJson, { maxLength: 16, offsets: true });

  test('encodes with the template, lower-cases, strips accents and maps unknown words to [UNK]', () => {
    const r = tok.encode('Hello, Wörld! Unbelievable CAFÉ zzz');
    assert.deepEqual(r.ids, [
      2,
      id('hello'),
      id(','),
      id('world'),
      id('!'),
      id('un'),
      id('##believ'),
      id('##able'),
      id('caf'),
      id('##e'),
      1,
      3,
    ]);
    assert.deepEqual(r.typeIds, new Array(12).fill(0));
    assert.equal(tok.padId, 0);
    assert.equal(tok.vocabSize, SPECIAL.length + WORDS.length);
  });

  test('offsets point into the original text (accents, case and sub-words included)', () => {
    const text = 'Hello, Wörld! Unbelievable CAFÉ';
    const r = tok.encode(text);
    const spans = r.offsets!.map((o) => (o ? text.slice(o.start, o.end) : null));
    assert.deepEqual(spans, [null, 'Hello', ',', 'Wörld', '!', 'Un', 'believ', 'able', 'CAF', 'É', null]);
  });

  test('pairs get segment ids from the template and offsets per side', () => {
    const r = tok.encode('is it true?', 'hello world');
    assert.deepEqual(r.ids, [2, id('is'), id('it'), id('true'), id('?'), 3, id('hello'), id('world'), 3]);
    assert.deepEqual(r.typeIds, [0, 0, 0, 0, 0, 0, 1, 1, 1]);
    assert.deepEqual(r.offsets![6], { sequence: 1, start: 0, end: 5 });
  });

  test('truncation strategies cut the side they name, and `none` refuses', () => {
    const a = 'hello world hello world hello world'; // 6 pieces
    const b = 'is it'; // 2 pieces
    const make = (truncation: 'longest_first' | 'only_first' | 'only_second' | 'none', maxLength = 7) =>
      new TextTokenizer(wordPieceJson, { maxLength, truncation });
    // 7 - 3 specials = 4 pieces kept.
    assert.deepEqual(make('longest_first').encode(a, b).pieces, [6, 2]);
    assert.deepEqual(make('longest_first').encode(a, b).ids, [2, id('hello'), id('world'), 3, id('is'), id('it'), 3]);
    assert.deepEqual(make('only_first').encode(a, b).ids, [2, id('hello'), id('world'), 3, id('is'), id('it'), 3]);
    assert.deepEqual(make('longest_first', 6).encode('is it true', 'hello world').ids, [
      2,
      id('is'),
      id('it'),
      3,
      id('hello'),
      3,
    ]);
    assert.throws(() => make('only_second').encode(a, b), /first text alone/);
    const hw = [id('hello'), id('world')];
    assert.deepEqual(make('only_second', 10).encode(a, 'is it true').ids, [2, ...hw, ...hw, ...hw, 3, id('is'), 3]);
    assert.throws(() => make('none').encode(a, b), /at most 7/);
    assert.deepEqual(make('longest_first', 5).encode(a).ids, [2, id('hello'), id('world'), id('hello'), 3]);
  });

  test('a long text costs a prefix: the ids equal those of tokenizing it whole', () => {
    const long = Array.from({ length: 40_000 }, (_, i) => (i % 3 ? 'hello' : 'World!')).join(' ');
    const t = new TextTokenizer(wordPieceJson, { maxLength: 32 });
    const whole = t.encode(long.slice(0, 400));
    assert.deepEqual(t.encode(long).ids, whole.ids);
  });
});

describe('TextTokenizer (byte-level BPE and Unigram)', () => {
  test('byte-level BPE with merges and offsets', () => {
    const chars = ['h', 'e', 'l', 'o', 'w', 'r', 'd', 'Ġ', 'Ã', '©'];
    const merged = ['he', 'll', 'hell', 'hello', 'Ġw', 'or', 'Ġwor', 'ld', 'Ġworld'];
    const vocab = Object.fromEntries(['<s>', '</s>', '<pad>', ...chars, ...merged].map((t, i) => [t, i]));
    const json = {
      added_tokens: ['<s>', '</s>', '<pad>'].map((content, i) => ({
        id: i,
        content,
        special: true,
        normalized: false,
      })),
      normalizer: null,
      pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
      post_processor: {
        type: 'RobertaProcessing',
        sep: ['</s>', 1],
        cls: ['<s>', 0],
        trim_offsets: true,
        add_prefix_space: false,
      },
      decoder: { type: 'ByteLevel' },
      model: {
        type: 'BPE',
        vocab,
        merges: ['h e', 'l l', 'he ll', 'hell o', 'Ġ w', 'o r', 'Ġw or', 'l d', 'Ġwor ld'],
        unk_token: null,
      },
    };
    const tok = new TextTokenizer(json, { maxLength: 16, offsets: true });
    const text = 'hello world hé';
    const r = tok.encode(text);
    assert.equal(r.ids[0], vocab['<s>']);
    assert.equal(r.ids.at(-1), vocab['</s>']);
    assert.deepEqual(r.ids.slice(1, 3), [vocab.hello, vocab['Ġworld']]);
    assert.equal(tok.padId, 2);
    const spans = r.offsets!.map((o) => (o ? text.slice(o.start, o.end) : null));
    assert.deepEqual(spans.slice(0, 3), [null, 'hello', 'world']);
  });

  test('Unigram with Metaspace', () => {
    const pieces: Array<[string, number]> = [
      ['<unk>', 0],
      ['<pad>', 0],
      ['</s>', 0],
      ['▁hello', -1],
      ['▁wor', -3],
      ['ld', -3],
      ['▁world', -2],
      ['▁', -5],
      ['h', -6],
      ['i', -6],
    ];
    const json = {
      added_tokens: [
        { id: 1, content: '<pad>', special: true },
        { id: 2, content: '</s>', special: true },
      ],
      normalizer: null,
      pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true },
      post_processor: {
        type: 'TemplateProcessing',
        single: [{ Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 0 } }],
        pair: [
          { Sequence: { id: 'A', type_id: 0 } },
          { SpecialToken: { id: '</s>', type_id: 0 } },
          { Sequence: { id: 'B', type_id: 0 } },
          { SpecialToken: { id: '</s>', type_id: 0 } },
        ],
        special_tokens: { '</s>': { id: '</s>', ids: [2], tokens: ['</s>'] } },
      },
      decoder: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true },
      model: { type: 'Unigram', unk_id: 0, vocab: pieces },
    };
    const tok = new TextTokenizer(json, { maxLength: 8, offsets: true });
    const text = 'hello world';
    const r = tok.encode(text);
    assert.deepEqual(r.ids, [3, 6, 2]);
    assert.deepEqual(
      r.offsets!.map((o) => (o ? text.slice(o.start, o.end) : null)),
      ['hello', 'world', null],
    );
  });
});

describe('the tokenizer step in the encoder', () => {
  const manifest: Manifest = {
    inputs: [
      { name: 'text', type: 'string' },
      { name: 'question', type: 'string', optional: true },
    ],
    tokenizer: {
      text: 'text',
      textPair: 'question',
      maxLength: 8,
      inputIds: 'input_ids',
      attentionMask: 'attention_mask',
      tokenTypeIds: 'token_type_ids',
    },
    outputs: [{ name: 'logits', shape: [-1, 2] }],
    batching: { padding: { values: { input_ids: 0, attention_mask: 0, token_type_ids: 0 } } },
  };

  test('rows of one request are padded to the longest with the pad values, and row lengths are kept', () => {
    const enc = compileEncoder(manifest, { tokenizer: wordPieceJson });
    assert.deepEqual(enc.padValues, { input_ids: 0, attention_mask: 0, token_type_ids: 0 });
    const { feeds, rows } = enc.encodeBatch([{ text: 'hello' }, { text: 'is it', question: 'true' }]);
    assert.deepEqual(feeds.input_ids!.dims, [2, 6]);
    assert.deepEqual(Array.from(feeds.input_ids!.data as BigInt64Array, Number), [
      2,
      id('hello'),
      3,
      0,
      0,
      0,
      2,
      id('is'),
      id('it'),
      3,
      id('true'),
      3,
    ]);
    assert.deepEqual(
      Array.from(feeds.attention_mask!.data as BigInt64Array, Number),
      [1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1],
    );
    assert.deepEqual(
      Array.from(feeds.token_type_ids!.data as BigInt64Array, Number),
      [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1],
    );
    assert.deepEqual(
      rows!.map((r) => r.length),
      [3, 6],
    );
  });

  test('position ids, when the model takes them, count each row from 0 and take the pad value after it', () => {
    const m: Manifest = {
      ...manifest,
      tokenizer: { ...manifest.tokenizer!, positionIds: 'position_ids' },
      batching: { padding: { values: { ...manifest.batching!.padding!.values, position_ids: 1 } } },
    };
    const enc = compileEncoder(m, { tokenizer: wordPieceJson });
    assert.equal(enc.padValues.position_ids, 1);
    const { feeds } = enc.encodeBatch([{ text: 'hello' }, { text: 'is it', question: 'true' }]);
    assert.deepEqual(feeds.position_ids!.dims, [2, 6]);
    assert.deepEqual(
      Array.from(feeds.position_ids!.data as BigInt64Array, Number),
      [0, 1, 2, 1, 1, 1, 0, 1, 2, 3, 4, 5],
    );
    // Without the section's positionIds the model gets no such input.
    assert.equal(
      compileEncoder(manifest, { tokenizer: wordPieceJson }).encodeBatch([{ text: 'hello' }]).feeds.position_ids,
      undefined,
    );
  });

  test('empty text, an empty side of a pair, lone surrogates and too-long text (truncation none) name the field', () => {
    const enc = compileEncoder(
      { ...manifest, tokenizer: { ...manifest.tokenizer!, truncation: 'none' } },
      { tokenizer: wordPieceJson },
    );
    const pointerOf = (inst: Record<string, unknown>) => {
      try {
        enc.encode([{ text: 'hello' }, inst]);
      } catch (e) {
        assert.ok(e instanceof InputError);
        return e.issues.map((i) => i.pointer);
      }
      return [];
    };
    assert.deepEqual(pointerOf({ text: '' }), ['/instances/1/text']);
    assert.deepEqual(pointerOf({ text: ' \u0000\u0007 ' }), ['/instances/1/text']);
    assert.deepEqual(pointerOf({ text: 'hello', question: '   ' }), ['/instances/1/question']);
    assert.deepEqual(pointerOf({ text: 'hello \ud800' }), ['/instances/1/text']);
    assert.deepEqual(pointerOf({ text: 'hello world hello world hello world hello' }), ['/instances/1/text']);
  });

  test('a contract with a tokenizer section needs the tokenizer.json', () => {
    assert.throws(() => compileEncoder(manifest), /tokenizer/);
    assert.throws(() => compileEncoder(manifest, { tokenizer: { nope: 1 } }), /tokenizer\.json/);
  });

  test('token ids in tensor form with a padded axis: per-row lengths, pad values, and a shape check', () => {
    const m: Manifest = {
      inputs: [
        { name: 'input_ids', type: 'tensor', dtype: 'int64', shape: [-1, -1], min: 0, max: 99 },
        { name: 'attention_mask', type: 'tensor', dtype: 'int64', shape: [-1, -1] },
      ],
      outputs: [{ name: 'logits', shape: [-1, 2] }],
      batching: { padding: { values: { input_ids: 7, attention_mask: 0 } } },
    };
    const enc = compileEncoder(m);
    const { feeds, rows } = enc.encodeBatch([
      { input_ids: [1, 2, 3], attention_mask: [1, 1, 1] },
      { input_ids: [4], attention_mask: [1] },
    ]);
    assert.deepEqual(Array.from(feeds.input_ids!.data as BigInt64Array, Number), [1, 2, 3, 4, 7, 7]);
    assert.deepEqual(Array.from(feeds.attention_mask!.data as BigInt64Array, Number), [1, 1, 1, 1, 0, 0]);
    assert.deepEqual(
      rows!.map((r) => r.length),
      [3, 1],
    );
    assert.throws(
      () => enc.encode([{ input_ids: [1, 2], attention_mask: [1] }]),
      (e: unknown) => e instanceof InputError && e.issues[0]!.pointer === '/instances/0/attention_mask',
    );
  });
});
