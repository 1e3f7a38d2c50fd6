// Prompt token counts with the target model's tokenizer, and the history trimming that makes a prompt
// fit a route's maximum. OpenAI-style models are counted with `js-tiktoken` and the BPE ranks bundled in
// the npm package (o200k_base for the gpt-4o / o-series / gpt-4.1+ family, cl100k_base otherwise; nothing is
// downloaded); Anthropic and other hosted models have no public tokenizer, so cl100k_base is the estimate
// (their `usage` reconciles the spend afterwards). Ferry's own models are counted by their tokenizer.json
// (the gateway passes a counter in for them).
import { Tiktoken } from 'js-tiktoken/lite';
import { LRUCache } from 'lru-cache';
import o200k from 'js-tiktoken/ranks/o200k_base';
import cl100k from 'js-tiktoken/ranks/cl100k_base';
import type { ChatMessage } from './types.js';

let o200kEnc: Tiktoken | undefined;
let cl100kEnc: Tiktoken | undefined;

/** The encoding for an upstream model name (loaded once, on first use: building the rank table takes ~100 ms). */
export function encodingFor(model: string): Tiktoken {
  if (/^(gpt-4o|gpt-4\.1|gpt-5|o\d|chatgpt-4o)/.test(model)) return (o200kEnc ??= new Tiktoken(o200k));
  return (cl100kEnc ??= new Tiktoken(cl100k));
}

/** OpenAI's chat framing: about 3 tokens per message plus 3 that prime the reply. */
const PER_MESSAGE = 3;
const REPLY_PRIMER = 3;

export type MessageCounter = (messages: readonly ChatMessage[]) => number;

const memo = new WeakMap<Tiktoken, LRUCache<string, number>>();

/**
 * Counts a chat prompt as an OpenAI model sees it. js-tiktoken is pure JavaScript (about 0.5 ms for a
 * 400-character message), and chats resend their whole history every turn, so counts are memoised
 * per message text (an LRU of 20,000 texts per encoding).
 */
export function tiktokenCounter(model: string): MessageCounter {
  const enc = encodingFor(model);
  let counts = memo.get(enc);
  if (!counts) memo.set(enc, (counts = new LRUCache<string, number>({ max: 20_000 })));
  const c = counts;
  const one = (text: string) => {
    let n = c.get(text);
    if (n === undefined) c.set(text, (n = enc.encode(text).length));
    return n;
  };
  return (messages) => messages.reduce((n, m) => n + PER_MESSAGE + one(m.content) + 1, REPLY_PRIMER);
}

export interface TrimResult {
  messages: ChatMessage[];
  promptTokens: number;
  /** Messages dropped from the middle of the history. */
  dropped: number;
  /** Tokens of the whole history as sent, before anything was dropped. */
  fullTokens: number;
}

/**
 * Keeps every system/developer message and the newest other turns that fit in `maxTokens`; returns
 * undefined when even the system messages and the last turn do not fit (nothing can make it fit).
 */
export function trimHistory(messages: ChatMessage[], maxTokens: number, count: MessageCounter): TrimResult | undefined {
  const full = count(messages);
  if (full <= maxTokens) return { messages, promptTokens: full, dropped: 0, fullTokens: full };
  const keep = new Set<number>();
  messages.forEach((m, i) => {
    if (m.role === 'system' || m.role === 'developer') keep.add(i);
  });
  const pick = () => messages.filter((_, i) => keep.has(i));
  let last = -1;
  for (let i = messages.length - 1; i >= 0; i--) {
    if (keep.has(i)) continue;
    keep.add(i);
    const n = count(pick());
    if (n > maxTokens) {
      keep.delete(i);
      break;
    }
    last = i;
  }
  // The newest turn is what the user asked: without it there is nothing to answer.
  if (last === -1) return undefined;
  const kept = pick();
  return { messages: kept, promptTokens: count(kept), dropped: messages.length - kept.length, fullTokens: full };
}
