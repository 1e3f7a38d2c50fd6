// Writes a Hugging Face `tokenizer.json` for a byte-level tokenizer (GPT-2's byte-to-unicode scheme,
// BPE with no merges, so every UTF-8 byte is one token) with special tokens first. It is what Ferry's
// example generative model and test fixtures ship: a real tokenizer file that any HF tokenizer library loads.

/** GPT-2's reversible map from bytes to printable unicode characters. */
export function byteToUnicode(): string[] {
  const printable: number[] = [];
  for (let b = 33; b <= 126; b++) printable.push(b);
  for (let b = 161; b <= 172; b++) printable.push(b);
  for (let b = 174; b <= 255; b++) printable.push(b);
  const map: string[] = new Array<string>(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) map[b] = String.fromCodePoint(printable.includes(b) ? b : 256 + extra++);
  return map;
}

/** Token ids: the special tokens are 0..n-1, byte b is n + b. */
export function byteLevelTokenizerJson(specials: readonly string[]): object {
  const vocab: Record<string, number> = {};
  specials.forEach((s, i) => {
    vocab[s] = i;
  });
  byteToUnicode().forEach((c, b) => {
    vocab[c] = specials.length + b;
  });
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials.map((content, id) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: null,
    decoder: byteLevel,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: [],
    },
  };
}

/** The byte ids (without specials offset applied) of a text, as the tokenizer above encodes it. */
export function utf8Ids(text: string, specials: number): number[] {
  return [...new TextEncoder().encode(text)].map((b) => b + specials);
}
