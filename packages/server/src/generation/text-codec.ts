// A generative model's text side, read from its version folder: the Hugging Face `tokenizer.json`
// (loaded by @huggingface/tokenizers), the eos tokens, and the Jinja chat template (rendered by
// @huggingface/jinja, the engine transformers.js uses, so templates written for HF models work as-is).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { Template } from '@huggingface/jinja';
import type { Generation } from '@ferry/core';

export interface ChatMessage {
  role: string;
  content: string;
}

export class TextCodec {
  readonly eosIds: number[];
  readonly #tokenizer: Tokenizer;
  readonly #template: Template | undefined;
  readonly #special: Record<string, string>;

  constructor(dir: string, g: Generation) {
    const tokenizerFile = join(dir, g.tokenizer ?? 'tokenizer.json');
    if (!existsSync(tokenizerFile)) throw new Error(`${tokenizerFile} does not exist (generation.tokenizer)`);
    const configFile = join(dir, g.tokenizerConfig ?? 'tokenizer_config.json');
    const config = existsSync(configFile)
      ? (JSON.parse(readFileSync(configFile, 'utf8')) as Record<string, unknown>)
      : {};
    this.#tokenizer = new Tokenizer(JSON.parse(readFileSync(tokenizerFile, 'utf8')) as object, config);
    const tokenText = (v: unknown): string | undefined =>
      typeof v === 'string'
        ? v
        : v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string'
          ? (v as { content: string }).content
          : undefined;
    this.#special = Object.fromEntries(
      ['bos_token', 'eos_token', 'unk_token', 'pad_token'].flatMap((k) => {
        const t = tokenText(config[k]);
        return t ? [[k, t]] : [];
      }),
    );
    const eosNames = g.eosTokens ?? (this.#special.eos_token ? [this.#special.eos_token] : []);
    this.eosIds = eosNames.map((t) => {
      const id = this.#tokenizer.token_to_id(t);
      if (id === undefined) throw new Error(`eos token "${t}" is not in ${tokenizerFile}`);
      return id;
    });
    const templateFile = g.chatTemplate ? join(dir, g.chatTemplate) : join(dir, 'chat_template.jinja');
    let source: string | undefined;
    if (existsSync(templateFile)) source = readFileSync(templateFile, 'utf8');
    else if (g.chatTemplate) throw new Error(`${templateFile} does not exist (generation.chatTemplate)`);
    else if (typeof config.chat_template === 'string') source = config.chat_template;
    this.#template = source === undefined ? undefined : new Template(source);
  }

  get hasChatTemplate(): boolean {
    return this.#template !== undefined;
  }

  /** The prompt text for a conversation, ending with the assistant's turn opened. */
  renderChat(messages: readonly ChatMessage[]): string {
    if (!this.#template) throw new Error('this model has no chat template');
    // @huggingface/jinja provides raise_exception, how Hugging Face templates refuse a conversation.
    return this.#template.render({ messages, add_generation_prompt: true, ...this.#special });
  }

  /** Token ids of a prompt. Chat prompts already carry their special tokens, so none are added. */
  encode(text: string, addSpecialTokens: boolean): number[] {
    return this.#tokenizer.encode(text, { add_special_tokens: addSpecialTokens }).ids;
  }

  decode(ids: readonly number[]): string {
    return this.#tokenizer.decode([...ids], { skip_special_tokens: true });
  }

  /** One token's own text, special tokens included (for log-probabilities). */
  tokenText(id: number): string {
    return this.#tokenizer.decode([id], { skip_special_tokens: false });
  }
}

/**
 * Turns generated token ids into text deltas. Byte-level tokenizers can split a character across
 * tokens, so text is taken only once it no longer ends in U+FFFD (the next token completes it); and a
 * tail that could be the start of a stop sequence is held back until it is known not to be one.
 * Detokenisation is incremental: each token decodes a window of the last few ids twice (from the last
 * complete point, with and without the new ones) and takes the difference, so a token costs the same
 * at the 2,000th as at the first, and decoders that drop a leading space at the start of a sequence
 * (Metaspace) drop it from both and lose nothing.
 */
export class TextStream {
  readonly #ids: number[] = [];
  /** Ids before `#prefix` are in `#full`; ids from `#prefix` to `#read` are the window's settled part. */
  #prefix = 0;
  #read = 0;
  #full = '';
  #emitted = 0;
  #stopped = false;
  readonly #hold: number;

  constructor(
    private readonly codec: TextCodec,
    private readonly stops: readonly string[],
  ) {
    this.#hold = Math.max(0, ...stops.map((s) => s.length - 1));
  }

  /** Decodes what the ids after `#read` add to the text; `force` takes it even if it ends mid-character. */
  #advance(force: boolean): void {
    // The tokenizer refuses to decode no ids: nothing after the settled point (a generation that ended
    // before its first token, eos at once) adds nothing.
    if (this.#prefix >= this.#ids.length) return;
    const settled = this.#read > this.#prefix ? this.codec.decode(this.#ids.slice(this.#prefix, this.#read)) : '';
    const now = this.codec.decode(this.#ids.slice(this.#prefix));
    if (now.length > settled.length && (force || !now.endsWith('\uFFFD'))) {
      this.#full += now.slice(settled.length);
      this.#prefix = this.#read;
      this.#read = this.#ids.length;
    }
  }

  /** Adds a token; returns the new text safe to send and whether a stop sequence was reached. */
  push(token: number): { delta: string; stopped: boolean } {
    if (this.#stopped) return { delta: '', stopped: true }; // tokens already in flight after the stop
    this.#ids.push(token);
    this.#advance(false);
    const from = Math.max(0, this.#emitted - this.#hold - 1);
    let cut = -1;
    for (const s of this.stops) {
      const at = this.#full.indexOf(s, from);
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    if (cut >= 0) {
      const delta = this.#full.slice(this.#emitted, Math.max(cut, this.#emitted));
      this.#emitted = Math.max(cut, this.#emitted);
      this.#full = this.#full.slice(0, this.#emitted);
      this.#stopped = true;
      return { delta, stopped: true };
    }
    const end = this.#full.length - this.#hold;
    if (end <= this.#emitted) return { delta: '', stopped: false };
    const delta = this.#full.slice(this.#emitted, end);
    this.#emitted = end;
    return { delta, stopped: false };
  }

  /** The rest of the text once generation has ended. */
  flush(): string {
    if (!this.#stopped) this.#advance(true);
    const delta = this.#full.slice(this.#emitted);
    this.#emitted = this.#full.length;
    return delta;
  }

  get text(): string {
    return this.#full.slice(0, this.#emitted);
  }
}
