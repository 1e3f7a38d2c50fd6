// The answer memo: whole answers of caching models, by the request's own bytes. The prediction cache
// answers instance by instance after the body is parsed, validated and each instance hashed; a body
// sent again (a page that asks the same question on every load, a retry) can skip all of it. An
// entry lives no longer than the cache entries of its rows would (the earliest of their TTLs), is
// keyed by the version's content as well as its name, so a reload with other weights never answers
// from it, and the memo is bounded in bytes (least recently used first out).
import { hash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Prediction } from '@ferry/core';
import type { ModelVersion } from '../repository/index.js';

export interface MemoAnswer {
  /** The version that answered. */
  version: ModelVersion;
  /** The transport's serialised answer, sent again as it is. */
  payload: string;
  /** The answer's predictions, for the prediction log's sampled rows. */
  predictions: readonly Prediction[];
}

export class AnswerMemo {
  readonly #lru: LRUCache<string, MemoAnswer> | undefined;

  constructor(maxBytes: number) {
    this.#lru =
      maxBytes > 0
        ? new LRUCache<string, MemoAnswer>({
            maxSize: maxBytes,
            // UTF-16: two bytes a character for the payload; the predictions are shared with the payload's
            // source objects (the prediction cache holds the same ones), so counted as a fixed overhead.
            sizeCalculation: (v) => 2 * v.payload.length + 256,
            ttlAutopurge: false,
          })
        : undefined;
  }

  get enabled(): boolean {
    return this.#lru !== undefined;
  }

  /** The key of a body sent to one version (its content key and its name: both appear in the answer). */
  key(versionKey: string, contentKey: string, body: Buffer): string {
    return `${versionKey}\0${contentKey}\0${hash('sha256', body, 'base64')}`;
  }

  get(key: string): MemoAnswer | undefined {
    return this.#lru?.get(key);
  }

  /** Keeps an answer until `freshUntil` (epoch ms); one already past it is not kept. */
  set(key: string, answer: MemoAnswer, freshUntil: number): void {
    const ttl = Math.floor(freshUntil - Date.now());
    if (this.#lru && ttl > 0) this.#lru.set(key, answer, { ttl });
  }
}
