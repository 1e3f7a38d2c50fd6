// Continuous (iteration-level) batching for one decoder-only model in the Hugging Face layout. Every
// running sequence of the model advances in ONE session.run per step: the batch's KV cache is a
// left-padded tensor per layer ([rows, heads, past, headDim]), each row's padding masked out by the
// attention mask and its position ids counted from its own first token, so sequences of different
// lengths share a run. A sequence joins at the step after its prefill and leaves the step it stops;
// the batch is rebuilt (rows copied into a fresh, compact tensor) only when its membership changes,
// otherwise each step's `present.*` is fed back as the next `past_key_values.*` without a copy.
//
// Prefill runs apart from the decode step, batched across the sequences that are waiting for it and
// cut into chunks of `prefillChunkTokens`, one chunk run between two decode steps, so a long prompt
// does not stall the streams already decoding. A prefix cache (prefix-cache.ts) gives a prompt the
// keys and values of a prefix already computed. The engine is transport-free: the decode worker
// drives it from messages, and tests drive it directly.
import { performance } from 'node:perf_hooks';
import * as ort from 'onnxruntime-node';
import type { DecoderLayout, FinishReason } from './protocol.js';
import { sampleToken, seededRandom, type SamplingParams } from './sampler.js';
import type { PrefixCache } from './prefix-cache.js';

export interface EngineOptions {
  /** Most sequences in one decode run; more wait (in arrival order) for a row. */
  maxBatchSize: number;
  /** Most prompt tokens in one prefill run (one chunk per waiting sequence, in arrival order). */
  prefillChunkTokens: number;
  prefixCache?: PrefixCache;
}

export interface SequenceSpec extends SamplingParams {
  id: number;
  promptIds: readonly number[];
  maxTokens: number;
  seed: number;
  eosIds: readonly number[];
  /** Tokens the sequence may produce before waiting for more credit. */
  credit: number;
  /** Report each token's log-probability, with this many most likely alternatives (0: the chosen token's only). */
  topLogprobs?: number;
}

export interface TokenEvent {
  id: number;
  token: number;
  sinceStartMs: number;
  logprob?: number;
  /** [token, logprob] of the most likely tokens at this step, most likely first. */
  top?: [number, number][];
}

export interface DoneEvent {
  id: number;
  reason: FinishReason;
  completionTokens: number;
  /** Prompt tokens whose keys and values came from the prefix cache. */
  cachedPromptTokens: number;
  prefillMs: number;
  decodeMs: number;
}

export interface EngineEvents {
  token(e: TokenEvent): void;
  done(e: DoneEvent): void;
  error(id: number, message: string): void;
  /** After each run's events: a transport may send what it gathered since the last one in one message. */
  step?(): void;
}

/** Counters for tests, the bench and metrics. */
export interface EngineStats {
  decodeRuns: number;
  /** Sum over decode runs of their rows: decodeRows / decodeRuns is the mean batch size. */
  decodeRows: number;
  maxRows: number;
  prefillRuns: number;
  prefillTokens: number;
  rebuilds: number;
}

type Phase = 'prefill' | 'decode' | 'finished';

/** A sequence's keys and values when it is not in the batch tensor: per layer, [heads, length, headDim]. */
interface OwnKv {
  keys: Float32Array[];
  values: Float32Array[];
}

class Sequence {
  phase: Phase = 'prefill';
  /** Prompt tokens whose keys and values are computed (or came from the cache). */
  prefilled = 0;
  cachedPromptTokens = 0;
  /** Tokens in its cache: prompt and completion. */
  length = 0;
  own: OwnKv | undefined;
  produced = 0;
  lastToken = -1;
  cancelled = false;
  prefillMs = 0;
  readonly t0 = performance.now();
  readonly random: () => number;
  readonly eos: Set<number>;

  constructor(
    readonly spec: SequenceSpec,
    public credit: number,
    readonly order: number,
    /** Ids (and seeds) of further choices that share this one's prefill (`n` > 1). */
    readonly forks: { id: number; seed: number }[] = [],
  ) {
    this.random = seededRandom(spec.seed);
    this.eos = new Set(spec.eosIds);
  }
}

export class BatchEngine {
  readonly stats: EngineStats = {
    decodeRuns: 0,
    decodeRows: 0,
    maxRows: 0,
    prefillRuns: 0,
    prefillTokens: 0,
    rebuilds: 0,
  };
  readonly #seqs = new Map<number, Sequence>();
  /** Rows of the batch tensors, in row order. */
  #rows: Sequence[] = [];
  /** The batch's cache: past_key_values.* feeds, [rows, heads, past, headDim]. */
  #past: Record<string, ort.Tensor> = {};
  #pastLength = 0;
  #order = 0;
  #running = false;
  #wake: (() => void) | undefined;
  #idle: (() => void)[] = [];

  constructor(
    readonly session: ort.InferenceSession,
    readonly layout: DecoderLayout,
    readonly options: EngineOptions,
    private readonly events: EngineEvents,
  ) {}

  /** Sequences not finished (prefilling, decoding or paused without credit). */
  get size(): number {
    return this.#seqs.size;
  }

  /** Starts a sequence; `forks` start further choices from the same prompt after one shared prefill. */
  add(spec: SequenceSpec, forks: { id: number; seed: number }[] = []): void {
    if (spec.promptIds.length === 0) throw new Error('the prompt has no tokens');
    this.#seqs.set(spec.id, new Sequence(spec, spec.credit, this.#order++, forks));
    this.#kick();
  }

  credit(id: number, tokens: number): void {
    const s = this.#seqs.get(id);
    if (!s) return;
    s.credit += tokens;
    this.#kick();
  }

  /** Ends the sequence at the next step boundary; its rows and cache are freed then. */
  cancel(id: number): void {
    const s = this.#seqs.get(id);
    if (!s) return;
    s.cancelled = true;
    this.#kick();
  }

  /** Resolves when no sequence is left (after `cancelAll`, at the next step boundary). */
  idle(): Promise<void> {
    if (this.#seqs.size === 0 && !this.#running) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  cancelAll(): void {
    for (const s of this.#seqs.values()) s.cancelled = true;
    this.#kick();
  }

  #kick(): void {
    if (this.#wake) {
      const w = this.#wake;
      this.#wake = undefined;
      w();
    }
    if (this.#running) return;
    this.#running = true;
    // Started on the next turn of the event loop, so that requests arriving together share the first prefill.
    void new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.#loop())
      .catch((e: unknown) => {
        // A fault outside a run (a bug, memory): end every sequence with it rather than leave them hanging.
        for (const s of [...this.#seqs.values()]) this.#fail(s, e);
        this.#dropBatch();
      })
      .finally(() => {
        this.#running = false;
        if (this.#seqs.size === 0) for (const r of this.#idle.splice(0)) r();
        else this.#kick(); // work arrived as the loop was ending
      });
  }

  async #loop(): Promise<void> {
    for (;;) {
      for (const s of [...this.#seqs.values()]) if (s.cancelled) this.#finish(s, 'cancelled');
      if (this.#seqs.size === 0) {
        this.#dropBatch();
        this.events.step?.();
        return;
      }
      const prefilled = await this.#prefillStep();
      this.events.step?.();
      const decoded = await this.#decodeStep();
      this.events.step?.();
      if (!prefilled && !decoded) {
        // Every sequence waits for credit: release the batch's rows (each keeps its own cache) and sleep.
        if (this.#rows.length) this.#rebuild([]);
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
        });
      }
    }
  }

  // ---- prefill ----------------------------------------------------------------------------------

  async #prefillStep(): Promise<boolean> {
    const waiting = [...this.#seqs.values()].filter((s) => s.phase === 'prefill').sort((a, b) => a.order - b.order);
    if (waiting.length === 0) return false;
    const group: { s: Sequence; chunk: number[] }[] = [];
    let budget = this.options.prefillChunkTokens;
    for (const s of waiting) {
      if (budget <= 0 || group.length >= this.options.maxBatchSize) break;
      if (s.prefilled === 0 && this.options.prefixCache) {
        const hit = this.options.prefixCache.lookup(s.spec.promptIds);
        if (hit) {
          s.own = hit.kv;
          s.prefilled = s.length = s.cachedPromptTokens = hit.length;
        }
      }
      const chunk = s.spec.promptIds.slice(s.prefilled, s.prefilled + budget);
      budget -= chunk.length;
      group.push({ s, chunk });
    }
    let out: ort.InferenceSession.OnnxValueMapType;
    const pastLen = Math.max(...group.map((g) => g.s.length));
    const seqLen = Math.max(...group.map((g) => g.chunk.length));
    const rows = group.length;
    const { heads, headDim, layers } = this.layout;
    try {
      const total = pastLen + seqLen;
      const ids = new BigInt64Array(rows * seqLen);
      const pos = new BigInt64Array(rows * seqLen);
      const mask = new BigInt64Array(rows * total);
      group.forEach(({ s, chunk }, r) => {
        const padIn = seqLen - chunk.length;
        chunk.forEach((t, j) => {
          ids[r * seqLen + padIn + j] = BigInt(t);
          pos[r * seqLen + padIn + j] = BigInt(s.length + j);
        });
        for (let j = pastLen - s.length; j < pastLen; j++) mask[r * total + j] = 1n;
        for (let j = pastLen + padIn; j < total; j++) mask[r * total + j] = 1n;
      });
      const feeds: Record<string, ort.Tensor> = {
        input_ids: new ort.Tensor('int64', ids, [rows, seqLen]),
        attention_mask: new ort.Tensor('int64', mask, [rows, total]),
      };
      if (this.layout.positionIds) feeds.position_ids = new ort.Tensor('int64', pos, [rows, seqLen]);
      for (let l = 0; l < layers; l++) {
        for (const kind of ['key', 'value'] as const) {
          const data = new Float32Array(rows * heads * pastLen * headDim);
          group.forEach(({ s }, r) => {
            const own = s.own && (kind === 'key' ? s.own.keys[l]! : s.own.values[l]!);
            if (own) placeRow(data, own, r, heads, pastLen, s.length, headDim);
          });
          feeds[`past_key_values.${l}.${kind}`] = new ort.Tensor('float32', data, [rows, heads, pastLen, headDim]);
        }
      }
      out = await this.session.run(feeds);
    } catch (e) {
      for (const { s } of group) this.#fail(s, e);
      return true;
    }
    this.stats.prefillRuns++;
    this.stats.prefillTokens += group.reduce((a, g) => a + g.chunk.length, 0);
    const logits = out.logits!.data as Float32Array;
    const vocab = out.logits!.dims[2]!;
    const total = pastLen + seqLen;
    group.forEach(({ s, chunk }, r) => {
      if (s.cancelled) return;
      const padIn = seqLen - chunk.length;
      const own: OwnKv = { keys: [], values: [] };
      for (let l = 0; l < layers; l++) {
        for (const kind of ['key', 'value'] as const) {
          const present = out[`present.${l}.${kind}`]!.data as Float32Array;
          const kv = new Float32Array(heads * (s.length + chunk.length) * headDim);
          for (let h = 0; h < heads; h++) {
            const src = (r * heads + h) * total * headDim;
            const dst = h * (s.length + chunk.length) * headDim;
            kv.set(present.subarray(src + (pastLen - s.length) * headDim, src + pastLen * headDim), dst);
            kv.set(
              present.subarray(src + (pastLen + padIn) * headDim, src + total * headDim),
              dst + s.length * headDim,
            );
          }
          (kind === 'key' ? own.keys : own.values).push(kv);
        }
      }
      s.own = own;
      s.length += chunk.length;
      s.prefilled += chunk.length;
      if (s.prefilled < s.spec.promptIds.length) return;
      this.options.prefixCache?.insert(s.spec.promptIds, own, s.length);
      const row = logits.slice((r * seqLen + seqLen - 1) * vocab, (r * seqLen + seqLen) * vocab);
      s.prefillMs = performance.now() - s.t0;
      s.phase = 'decode';
      // Further choices (`n` > 1) start here from a copy of the prompt's cache, each with its own seed.
      for (const f of s.forks) {
        const twin = new Sequence({ ...s.spec, id: f.id, seed: f.seed }, s.spec.credit, s.order);
        twin.own = { keys: own.keys.map((k) => k.slice()), values: own.values.map((v) => v.slice()) };
        twin.length = twin.prefilled = s.length;
        twin.cachedPromptTokens = s.cachedPromptTokens;
        twin.prefillMs = s.prefillMs;
        twin.phase = 'decode';
        this.#seqs.set(f.id, twin);
        this.#emit(twin, row);
      }
      this.#emit(s, row);
    });
    for (const t of Object.values(out)) t.dispose();
    return true;
  }

  // ---- decode -----------------------------------------------------------------------------------

  async #decodeStep(): Promise<boolean> {
    const ready = [...this.#seqs.values()]
      .filter((s) => s.phase === 'decode' && s.credit > 0 && !s.cancelled)
      .sort((a, b) => a.order - b.order)
      .slice(0, this.options.maxBatchSize);
    if (ready.length === 0) return false;
    const same = ready.length === this.#rows.length && ready.every((s, i) => this.#rows[i] === s);
    if (!same) this.#rebuild(ready);
    const rows = this.#rows.length;
    const past = this.#pastLength;
    const total = past + 1;
    let out: ort.InferenceSession.OnnxValueMapType;
    try {
      const ids = new BigInt64Array(rows);
      const pos = new BigInt64Array(rows);
      const mask = new BigInt64Array(rows * total);
      this.#rows.forEach((s, r) => {
        ids[r] = BigInt(s.lastToken);
        pos[r] = BigInt(s.length);
        for (let j = total - 1 - s.length; j < total; j++) mask[r * total + j] = 1n;
      });
      const feeds: Record<string, ort.Tensor> = {
        input_ids: new ort.Tensor('int64', ids, [rows, 1]),
        attention_mask: new ort.Tensor('int64', mask, [rows, total]),
        ...this.#past,
      };
      if (this.layout.positionIds) feeds.position_ids = new ort.Tensor('int64', pos, [rows, 1]);
      out = await this.session.run(feeds);
    } catch (e) {
      for (const s of [...this.#rows]) this.#fail(s, e);
      this.#dropBatch();
      return true;
    }
    this.stats.decodeRuns++;
    this.stats.decodeRows += rows;
    this.stats.maxRows = Math.max(this.stats.maxRows, rows);
    this.#disposePast();
    const next: Record<string, ort.Tensor> = {};
    for (let l = 0; l < this.layout.layers; l++) {
      next[`past_key_values.${l}.key`] = out[`present.${l}.key`]!;
      next[`past_key_values.${l}.value`] = out[`present.${l}.value`]!;
    }
    this.#past = next;
    this.#pastLength = total;
    const logits = out.logits!.data as Float32Array;
    const vocab = out.logits!.dims[2]!;
    out.logits!.dispose();
    for (const [r, s] of [...this.#rows].entries()) {
      s.length++;
      if (s.cancelled) continue; // leaves at the next step boundary
      this.#emit(s, logits.subarray(r * vocab, (r + 1) * vocab));
    }
    return true;
  }

  /** Samples the next token from `row`, reports it, and ends the sequence on eos or its length limit. */
  #emit(s: Sequence, row: Float32Array): void {
    const token = sampleToken(row, s.spec, s.random);
    if (s.eos.has(token)) {
      this.#finish(s, 'stop');
      return;
    }
    s.produced++;
    s.credit--;
    s.lastToken = token;
    const e: TokenEvent = { id: s.spec.id, token, sinceStartMs: performance.now() - s.t0 };
    if (s.spec.topLogprobs !== undefined) Object.assign(e, logprobsOf(row, token, s.spec.topLogprobs));
    this.events.token(e);
    if (s.produced >= s.spec.maxTokens) this.#finish(s, 'length');
  }

  /**
   * Makes `members` the batch's rows, in that order: every current row's keys and values are copied
   * out (kept by the sequences that pause), then the members' caches are laid right-aligned into
   * fresh tensors as long as the longest of them.
   */
  #rebuild(members: Sequence[]): void {
    this.stats.rebuilds++;
    const { heads, headDim, layers } = this.layout;
    const P = this.#pastLength;
    const keep = new Set(members);
    this.#rows.forEach((s, r) => {
      if (s.phase === 'finished') return;
      if (keep.has(s) || s.phase === 'decode') {
        const own: OwnKv = { keys: [], values: [] };
        for (let l = 0; l < layers; l++) {
          own.keys.push(
            takeRow(this.#past[`past_key_values.${l}.key`]!.data as Float32Array, r, heads, P, s.length, headDim),
          );
          own.values.push(
            takeRow(this.#past[`past_key_values.${l}.value`]!.data as Float32Array, r, heads, P, s.length, headDim),
          );
        }
        s.own = own;
      }
    });
    this.#disposePast();
    const rows = members.length;
    const len = rows ? Math.max(...members.map((s) => s.length)) : 0;
    const past: Record<string, ort.Tensor> = {};
    for (let l = 0; l < layers; l++) {
      for (const kind of ['key', 'value'] as const) {
        const data = new Float32Array(rows * heads * len * headDim);
        members.forEach((s, r) =>
          placeRow(data, kind === 'key' ? s.own!.keys[l]! : s.own!.values[l]!, r, heads, len, s.length, headDim),
        );
        past[`past_key_values.${l}.${kind}`] = new ort.Tensor('float32', data, [rows, heads, len, headDim]);
      }
    }
    // In the batch, a member's cache lives in the batch tensors only.
    for (const s of members) s.own = undefined;
    this.#rows = members;
    this.#past = past;
    this.#pastLength = len;
  }

  #disposePast(): void {
    for (const t of Object.values(this.#past)) t.dispose();
    this.#past = {};
  }

  #dropBatch(): void {
    this.#disposePast();
    this.#rows = [];
    this.#pastLength = 0;
  }

  #finish(s: Sequence, reason: FinishReason): void {
    if (s.phase === 'finished') return;
    s.phase = 'finished';
    s.own = undefined;
    this.#seqs.delete(s.spec.id);
    // Choices that were to fork from a prompt never prefilled end with it.
    for (const f of s.prefilled < s.spec.promptIds.length ? s.forks : [])
      this.events.done({
        id: f.id,
        reason,
        completionTokens: 0,
        cachedPromptTokens: 0,
        prefillMs: 0,
        decodeMs: 0,
      });
    const elapsed = performance.now() - s.t0;
    this.events.done({
      id: s.spec.id,
      reason,
      completionTokens: s.produced,
      cachedPromptTokens: s.cachedPromptTokens,
      prefillMs: s.prefillMs,
      decodeMs: Math.max(0, elapsed - s.prefillMs),
    });
  }

  #fail(s: Sequence, e: unknown): void {
    if (s.phase === 'finished') return;
    s.phase = 'finished';
    s.own = undefined;
    this.#seqs.delete(s.spec.id);
    const message = (e as Error)?.message ?? String(e);
    for (const f of s.prefilled < s.spec.promptIds.length ? s.forks : []) this.events.error(f.id, message);
    this.events.error(s.spec.id, message);
  }
}

/** Copies a [heads, len, headDim] cache into row `r` of a [rows, heads, P, headDim] tensor, right-aligned. */
function placeRow(
  data: Float32Array,
  own: Float32Array,
  r: number,
  heads: number,
  P: number,
  len: number,
  headDim: number,
): void {
  for (let h = 0; h < heads; h++)
    data.set(own.subarray(h * len * headDim, (h + 1) * len * headDim), ((r * heads + h) * P + (P - len)) * headDim);
}

/** The last `len` positions of row `r` of a [rows, heads, P, headDim] tensor, as [heads, len, headDim]. */
function takeRow(data: Float32Array, r: number, heads: number, P: number, len: number, headDim: number): Float32Array {
  const out = new Float32Array(heads * len * headDim);
  for (let h = 0; h < heads; h++) {
    const src = ((r * heads + h) * P + (P - len)) * headDim;
    out.set(data.subarray(src, src + len * headDim), h * len * headDim);
  }
  return out;
}

/** Log-softmax of the model's logits at the chosen token and its `k` most likely alternatives. */
export function logprobsOf(
  row: ArrayLike<number>,
  token: number,
  k: number,
): { logprob: number; top: [number, number][] } {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i]! > max) max = row[i]!;
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += Math.exp(row[i]! - max);
  const norm = max + Math.log(sum);
  const top: [number, number][] = [];
  if (k > 0) {
    // k is small (OpenAI allows 20): keep a sorted list of the k best.
    for (let i = 0; i < row.length; i++) {
      const v = row[i]!;
      if (top.length < k || v > top[top.length - 1]![1]) {
        let at = top.findIndex(([, w]) => v > w);
        if (at < 0) at = top.length;
        top.splice(at, 0, [i, v]);
        if (top.length > k) top.pop();
      }
    }
  }
  return { logprob: row[token]! - norm, top: top.map(([i, v]) => [i, v - norm]) };
}
