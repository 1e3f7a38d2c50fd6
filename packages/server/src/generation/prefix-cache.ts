// The prefix cache of one decoder model: the keys and values of prompt prefixes already computed, so
// a prompt that starts like an earlier one (a route's system prompt, the turns of a conversation so
// far) prefills only what is new. Keys and values at a position depend only on the tokens up to it,
// so a prefix's cache is valid for every prompt that starts with it. Stored in blocks of
// `blockTokens` tokens, each keyed by a hash chained over every token up to its end (so a block is
// found only behind the same whole prefix); bounded by `maxTokens`, least recently used first out.
// A hit touches its blocks last-to-first, so a chain's first blocks are always the last evicted.
import { createHash } from 'node:crypto';

export interface PrefixKv {
  /** Per layer, [heads, length, headDim]. */
  keys: Float32Array[];
  values: Float32Array[];
}

export interface PrefixCacheStats {
  lookups: number;
  hits: number;
  /** Prompt tokens served from the cache. */
  hitTokens: number;
  /** Tokens held now. */
  tokens: number;
  evictedBlocks: number;
}

interface Block {
  /** Per layer, [heads, blockTokens, headDim]. */
  keys: Float32Array[];
  values: Float32Array[];
}

export class PrefixCache {
  readonly stats: PrefixCacheStats = { lookups: 0, hits: 0, hitTokens: 0, tokens: 0, evictedBlocks: 0 };
  // A Map keeps insertion order: re-inserting on use makes its first entry the least recently used.
  readonly #blocks = new Map<string, Block>();

  constructor(
    readonly heads: number,
    readonly headDim: number,
    readonly layers: number,
    readonly maxTokens: number,
    readonly blockTokens = 16,
  ) {
    if (blockTokens < 1) throw new Error('blockTokens must be at least 1');
  }

  #keys(ids: readonly number[], blocks: number): string[] {
    const out: string[] = [];
    let prev = '';
    for (let b = 0; b < blocks; b++) {
      const h = createHash('sha256').update(prev);
      h.update(Int32Array.from(ids.slice(b * this.blockTokens, (b + 1) * this.blockTokens)));
      prev = h.digest('base64');
      out.push(prev);
    }
    return out;
  }

  /**
   * The cache of the longest cached prefix of `ids` that leaves at least one token to run (the
   * model must see the prompt's last token to give the next one's logits), or undefined.
   */
  lookup(ids: readonly number[]): { length: number; kv: PrefixKv } | undefined {
    this.stats.lookups++;
    const most = Math.floor((ids.length - 1) / this.blockTokens);
    if (most === 0 || this.maxTokens === 0) return undefined;
    const found: Block[] = [];
    const keys = this.#keys(ids, most);
    for (const k of keys) {
      const b = this.#blocks.get(k);
      if (!b) break;
      found.push(b);
    }
    if (found.length === 0) return undefined;
    for (let i = found.length - 1; i >= 0; i--) {
      this.#blocks.delete(keys[i]!);
      this.#blocks.set(keys[i]!, found[i]!);
    }
    const length = found.length * this.blockTokens;
    const join = (pick: (b: Block) => Float32Array[], l: number): Float32Array => {
      const out = new Float32Array(this.heads * length * this.headDim);
      const bt = this.blockTokens * this.headDim;
      found.forEach((b, i) => {
        const src = pick(b)[l]!;
        for (let h = 0; h < this.heads; h++)
          out.set(src.subarray(h * bt, (h + 1) * bt), (h * length + i * this.blockTokens) * this.headDim);
      });
      return out;
    };
    const kv: PrefixKv = { keys: [], values: [] };
    for (let l = 0; l < this.layers; l++) {
      kv.keys.push(join((b) => b.keys, l));
      kv.values.push(join((b) => b.values, l));
    }
    this.stats.hits++;
    this.stats.hitTokens += length;
    return { length, kv };
  }

  /** Stores the whole blocks of a prompt whose cache (`kv`, `length` ≥ its tokens so far) is computed. */
  insert(ids: readonly number[], kv: PrefixKv, length: number): void {
    const blocks = Math.min(Math.floor(ids.length / this.blockTokens), Math.floor(length / this.blockTokens));
    if (blocks === 0 || this.maxTokens < this.blockTokens) return;
    const keys = this.#keys(ids, blocks);
    const bt = this.blockTokens * this.headDim;
    // Last to first, as a lookup touches them: the chain's head ends most recently used.
    for (let i = blocks - 1; i >= 0; i--) {
      const key = keys[i]!;
      const old = this.#blocks.get(key);
      if (old) {
        this.#blocks.delete(key);
        this.#blocks.set(key, old);
        continue;
      }
      const slice = (src: Float32Array): Float32Array => {
        const out = new Float32Array(this.heads * bt);
        for (let h = 0; h < this.heads; h++) {
          const from = (h * length + i * this.blockTokens) * this.headDim;
          out.set(src.subarray(from, from + bt), h * bt);
        }
        return out;
      };
      this.#blocks.set(key, { keys: kv.keys.map(slice), values: kv.values.map(slice) });
      this.stats.tokens += this.blockTokens;
    }
    while (this.stats.tokens > this.maxTokens) {
      const first = this.#blocks.keys().next().value as string;
      this.#blocks.delete(first);
      this.stats.tokens -= this.blockTokens;
      this.stats.evictedBlocks++;
    }
  }

  clear(): void {
    this.#blocks.clear();
    this.stats.tokens = 0;
  }
}
