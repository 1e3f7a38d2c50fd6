// The generation service on the main thread: loads generative model versions (their tokenizer and
// template here, their ONNX session in the decode workers), starts generations, and turns the worker's
// token ids into text. Flow control is by credit: the worker may run `creditTokens` ahead of what the
// caller has acknowledged (written to its socket), so a slow reader pauses the model itself.
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { FerryConfig } from '../config/index.js';
import { FerryError } from '../errors.js';
import { ManifestError, type Repository, type ModelVersion } from '../serving/repository/index.js';
import { sessionOptionsFor } from '../serving/runtime/session-options.js';
import { RpcWorker } from '../serving/runtime/rpc.js';
import type { GenerationConfig } from '../config/schemas/generation.js';
import type { GenerationMetrics } from './metrics.js';
import type { DecoderLayout, DecoderStats, FromDecoder, ToDecoder } from './protocol.js';
import { TextCodec, TextStream, type ChatMessage } from './text-codec.js';

const WORKER_URL = new URL('./decode-worker.js', import.meta.url);

export interface GenerationParams {
  maxTokens: number;
  temperature: number;
  topP: number;
  /** Same seed, same prompt and parameters: same completion. Random when absent. */
  seed?: number;
  stop: readonly string[];
  /** Report each token's log-probability with this many alternatives (0: the chosen token's only). */
  topLogprobs?: number;
}

/** One generated token's log-probability and the most likely alternatives at its step. */
export interface TokenLogprob {
  token: number;
  logprob: number;
  top: { token: number; logprob: number }[];
}

/** Why a generation ended. `stop` and `length` are OpenAI's finish reasons; the others end it early. */
export type EndReason = 'stop' | 'length' | 'disconnected' | 'stalled';

export interface GenerationResult {
  text: string;
  reason: EndReason;
  promptTokens: number;
  completionTokens: number;
  /** Prompt tokens whose keys and values came from the prefix cache. */
  cachedPromptTokens: number;
  timeToFirstTokenMs?: number;
  /** When `topLogprobs` was asked for: one entry per completion token produced. */
  logprobs?: TokenLogprob[];
}

export interface GenerativeVersion {
  readonly version: ModelVersion;
  readonly codec: TextCodec;
  readonly contextLength: number;
  layout?: DecoderLayout;
}

interface Slot {
  rpc: RpcWorker<ToDecoder, FromDecoder>;
  index: number;
  active: number;
  /** KV-cache bytes reserved by its running generations. */
  kvBytes: number;
  keys: Set<string>;
  /** Credit granted in the current task, per generation id: sent as one `credits` message at its end. */
  credits: Map<number, number>;
}

/** One running generation. Set `onDelta` before the first await; call `ack` as deltas are written. */
export class Generation {
  onDelta: (delta: string) => void = () => {};
  /** Log-probabilities of the tokens so far, when they were asked for. */
  readonly logprobs: TokenLogprob[] | undefined;
  /** Which choice of its request this is (`n` > 1). */
  index = 0;
  readonly done: Promise<GenerationResult>;
  #resolve!: (r: GenerationResult) => void;
  #reject!: (e: Error) => void;
  #ended = false;
  #completion = 0;
  #cancelReason: EndReason | undefined;
  #firstTokenAt: number | undefined;

  constructor(
    private readonly send: (msg: ToDecoder) => void,
    readonly id: number,
    readonly promptTokens: number,
    private readonly stream: TextStream,
    private readonly startedAt: number,
    private readonly onEnd: (g: Generation, r: GenerationResult | undefined, firstTokenAt: number | undefined) => void,
    withLogprobs = false,
  ) {
    this.logprobs = withLogprobs ? [] : undefined;
    this.done = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    // Nobody may be awaiting yet when a failure arrives; the caller observes it through `done` later.
    this.done.catch(() => undefined);
  }

  /** Completion tokens produced so far (including any the client has not read). */
  get completionTokens(): number {
    return this.#completion;
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** The caller has written `tokens` more tokens' deltas out: the worker may produce as many more. */
  ack(tokens = 1): void {
    if (!this.#ended && tokens > 0) this.send({ type: 'credit', id: this.id, tokens });
  }

  /** Ends the generation early; the worker frees its cache at the next step boundary. */
  cancel(reason: 'disconnected' | 'stalled'): void {
    if (this.#ended || this.#cancelReason) return;
    this.#cancelReason = reason;
    this.send({ type: 'cancel', id: this.id });
  }

  /** @internal */
  handle(msg: FromDecoder): void {
    if (this.#ended) return;
    if (msg.type === 'token') {
      this.#completion++;
      this.#firstTokenAt ??= performance.now();
      if (this.logprobs && msg.logprob !== undefined)
        this.logprobs.push({
          token: msg.token,
          logprob: msg.logprob,
          top: (msg.top ?? []).map(([token, logprob]) => ({ token, logprob })),
        });
      const { delta, stopped } = this.stream.push(msg.token);
      if (delta) this.onDelta(delta);
      else this.ack(1); // nothing to write, so nothing to wait for
      if (stopped && !this.#cancelReason) {
        this.#cancelReason = 'stop';
        this.send({ type: 'cancel', id: this.id });
      }
    } else if (msg.type === 'done') {
      if (msg.reason !== 'cancelled') {
        const rest = this.stream.flush();
        if (rest) this.onDelta(rest);
      }
      const reason: EndReason = msg.reason === 'cancelled' ? (this.#cancelReason ?? 'disconnected') : msg.reason;
      this.#finish({
        text: this.stream.text,
        reason,
        promptTokens: this.promptTokens,
        completionTokens: this.#completion,
        cachedPromptTokens: msg.cachedPromptTokens,
        ...(this.#firstTokenAt !== undefined && { timeToFirstTokenMs: this.#firstTokenAt - this.startedAt }),
        ...(this.logprobs && { logprobs: this.logprobs }),
      });
    } else if (msg.type === 'error') {
      this.fail(
        new FerryError(msg.code === 'model-not-ready' ? 'model-not-ready' : 'inference-failed', {
          detail: msg.message,
        }),
      );
    }
  }

  /** @internal */
  fail(e: Error): void {
    if (this.#ended) return;
    this.#ended = true;
    this.onEnd(this, undefined, this.#firstTokenAt);
    this.#reject(e);
  }

  #finish(r: GenerationResult): void {
    this.#ended = true;
    this.onEnd(this, r, this.#firstTokenAt);
    this.#resolve(r);
  }
}

export class GenerationService {
  readonly #versions = new Map<string, GenerativeVersion>();
  readonly #slots: Slot[] = [];
  readonly #generations = new Map<number, Generation>();
  #nextId = 1;
  #disposed = false;

  constructor(
    private readonly config: FerryConfig,
    private readonly gcfg: GenerationConfig,
    private readonly repository: Repository,
    private readonly metrics: GenerationMetrics,
    private readonly log: Logger,
  ) {
    for (const v of repository.allVersions()) {
      const g = v.manifest.generation;
      if (!g) continue;
      let codec: TextCodec;
      // A tokenizer or template that cannot be read is a bad model folder: refuse to start, naming it.
      try {
        codec = new TextCodec(v.dir, g);
      } catch (e) {
        throw new ManifestError(`${v.dir}/ferry.yaml`, '/generation', (e as Error).message);
      }
      this.#versions.set(v.key, { version: v, codec, contextLength: g.contextLength });
    }
  }

  /** Generative versions in the repository. */
  versions(): GenerativeVersion[] {
    return [...this.#versions.values()];
  }

  /** Running generations. */
  get active(): number {
    return this.#generations.size;
  }

  /** Completion tokens produced so far by each running generation (paused ones included). */
  progress(): { id: number; completionTokens: number }[] {
    return [...this.#generations.values()].map((g) => ({ id: g.id, completionTokens: g.completionTokens }));
  }

  /** Resolves a request's model reference (`name`, `name@1`, `name@stable`) to a loaded generative version. */
  resolve(model: string): GenerativeVersion {
    return this.forVersion(this.repository.resolve(model));
  }

  /** The loaded generative version of a resolved model version (after canary routing). */
  forVersion(v: ModelVersion): GenerativeVersion {
    const gv = this.#versions.get(v.key);
    if (!gv)
      throw new FerryError('model-not-generative', {
        detail: `model "${v.key}" is not a generative model; call it at /v1/models/${v.name}/predict`,
        extra: { errors: [{ pointer: '/model', reason: 'not a generative model' }] },
      });
    if (!gv.layout) throw new FerryError('model-not-ready', { detail: `model ${v.key} is still loading` });
    return gv;
  }

  #spawn(index: number): Slot {
    const slot: Slot = {
      index,
      active: 0,
      kvBytes: 0,
      keys: new Set(),
      credits: new Map(),
      rpc: new RpcWorker<ToDecoder, FromDecoder>(WORKER_URL, {
        name: `ferry-decode-${index}`,
        // One counter for requests and generations: a generation's messages carry its id.
        nextId: () => this.#nextId++,
        toError: (reply) => new Error(reply.message),
        exitError: (code) => new Error(`decode worker ${index} exited (code ${code})`),
        onMessage: (msg) => {
          if (msg.type === 'batch') for (const m of msg.messages) this.#deliver(m);
          else this.#deliver(msg);
        },
        onError: (err) => this.log.error({ err, worker: index }, 'decode worker failed'),
        onExit: (code) => this.#replace(slot, code),
      }),
    };
    return slot;
  }

  /**
   * Credit for the worker, gathered over the current task: a step's tokens reach the main thread in one
   * message and are written out together, so their acknowledgements go back as one message too, not one
   * per token. A cancel sent in the same task goes first; credit for an ended generation is ignored there.
   */
  #grant(slot: Slot, id: number, tokens: number): void {
    if (slot.credits.size === 0)
      queueMicrotask(() => {
        const grants = [...slot.credits];
        slot.credits.clear();
        if (this.#disposed) return;
        if (grants.length === 1) slot.rpc.post({ type: 'credit', id: grants[0]![0], tokens: grants[0]![1] });
        else slot.rpc.post({ type: 'credits', id: 0, grants });
      });
    slot.credits.set(id, (slot.credits.get(id) ?? 0) + tokens);
  }

  /** A worker message to its generation. A fault turning it into text ends that generation, not the process. */
  #deliver(msg: FromDecoder): void {
    const g = this.#generations.get(msg.id);
    if (!g) return;
    try {
      g.handle(msg);
    } catch (err) {
      this.log.error({ err }, 'handling a generated token failed');
      g.cancel('disconnected');
      g.fail(new FerryError('inference-failed', { detail: 'turning the generated tokens into text failed' }));
    }
  }

  /** A decode worker that died fails its generations and is replaced, its models loaded again. */
  #replace(slot: Slot, code: number): void {
    const index = slot.index;
    for (const g of this.#generations.values())
      if ((g as Generation & { slot?: Slot }).slot === slot)
        g.fail(new FerryError('inference-failed', { detail: `decode worker ${index} exited` }));
    if (this.#disposed) return;
    this.log.warn({ worker: index, code }, 'decode worker exited; replacing it');
    const fresh = this.#spawn(index);
    this.#slots[index] = fresh;
    for (const key of slot.keys) {
      const gv = this.#versions.get(key);
      if (gv)
        void this.#loadInto(fresh, gv).catch((err: unknown) =>
          this.log.error({ err, key }, 'reloading a generative model failed'),
        );
    }
  }

  #request(slot: Slot, msg: ToDecoder): Promise<FromDecoder> {
    return slot.rpc.request(msg);
  }

  async #loadInto(slot: Slot, gv: GenerativeVersion): Promise<Extract<FromDecoder, { type: 'loaded' }>> {
    const v = gv.version;
    const reply = await this.#request(slot, {
      type: 'load',
      id: 0,
      key: v.key,
      modelPath: v.modelPath,
      options: sessionOptionsFor(this.config, v.manifest),
      scheduler: {
        maxBatchSize: this.gcfg.maxBatchSize,
        prefillChunkTokens: this.gcfg.prefillChunkTokens,
        prefixCacheTokens: this.gcfg.prefixCacheTokens,
        prefixBlockTokens: this.gcfg.prefixBlockTokens,
      },
    });
    slot.keys.add(v.key);
    return reply as Extract<FromDecoder, { type: 'loaded' }>;
  }

  /** Loads a generative version into every decode worker and warms it with a short real generation. */
  async load(v: ModelVersion): Promise<{ loadMs: number; warmupMs: number }> {
    const gv = this.#versions.get(v.key);
    if (!gv) throw new Error(`${v.key} is not a generative model`);
    if (this.#slots.length === 0) for (let i = 0; i < this.gcfg.workers; i++) this.#slots.push(this.#spawn(i));
    const replies = await Promise.all(this.#slots.map((s) => this.#loadInto(s, gv)));
    const layout = replies[0]!.layout;
    if (layout.vocabSize > 0 && gv.codec.eosIds.some((id) => id >= layout.vocabSize))
      throw new Error(`${v.key}: an eos token id is outside the model's vocabulary of ${layout.vocabSize}`);
    gv.layout = layout;
    const t0 = performance.now();
    for (const slot of this.#slots) {
      const [g] = this.#start(
        slot,
        gv,
        gv.codec.encode('warm up', true).slice(0, Math.max(1, gv.contextLength - 4)),
        { maxTokens: 2, temperature: 0, topP: 1, stop: [] },
        performance.now(),
        false,
        1,
      );
      g!.ack(2);
      await g!.done;
    }
    return { loadMs: Math.max(...replies.map((r) => r.loadMs)), warmupMs: performance.now() - t0 };
  }

  /** The prompt's token ids for a chat conversation or a plain completion prompt. */
  encodePrompt(gv: GenerativeVersion, prompt: { messages: ChatMessage[] } | { text: string }): number[] {
    if ('messages' in prompt) {
      if (!gv.codec.hasChatTemplate)
        throw new FerryError('invalid-request', {
          detail: `model ${gv.version.key} has no chat template; use /openai/v1/completions`,
          extra: { errors: [{ pointer: '/messages', reason: 'the model has no chat template' }] },
        });
      let text: string;
      try {
        text = gv.codec.renderChat(prompt.messages);
      } catch (e) {
        // Templates refuse conversations they do not support (raise_exception), e.g. a system message.
        throw new FerryError('invalid-request', {
          detail: `the chat template of ${gv.version.key} refused the messages: ${(e as Error).message.slice(0, 300)}`,
          extra: { errors: [{ pointer: '/messages', reason: 'refused by the chat template' }] },
        });
      }
      return gv.codec.encode(text, false);
    }
    return gv.codec.encode(prompt.text, true);
  }

  /** Batching and prefix-cache counters of a model in each decode worker (tests, bench). */
  async stats(gv: GenerativeVersion): Promise<DecoderStats[]> {
    const replies = await Promise.all(
      this.#slots.map((s) => this.#request(s, { type: 'stats', id: 0, key: gv.version.key })),
    );
    return replies.flatMap((r) => (r.type === 'stats' && r.stats ? [r.stats] : []));
  }

  /**
   * Starts a generation. `startedAt` (performance.now() when the request arrived) anchors time to first
   * token. Refuses with 503 when `maxConcurrent` generations are running or the KV memory is reserved.
   */
  start(gv: GenerativeVersion, promptIds: number[], params: GenerationParams, startedAt: number): Generation {
    return this.startChoices(gv, promptIds, params, startedAt, 1)[0]!;
  }

  /**
   * Starts `n` generations of one prompt (OpenAI's `n`): the prompt is prefilled once and each choice
   * continues from a copy of its cache, with seeds `seed`, `seed + 1`, ...
   */
  startChoices(
    gv: GenerativeVersion,
    promptIds: number[],
    params: GenerationParams,
    startedAt: number,
    n: number,
  ): Generation[] {
    if (this.#disposed) throw new FerryError('shutting-down');
    if (this.#generations.size + n > this.gcfg.maxConcurrent) {
      throw new FerryError('server-overloaded', {
        detail: `${this.#generations.size} generations are running (generation.maxConcurrent is ${this.gcfg.maxConcurrent}); retry shortly`,
        headers: { 'retry-after': '1' },
      });
    }
    const slot = this.#slots.reduce((a, b) => (b.kvBytes < a.kvBytes ? b : a));
    const need = this.#kvBytes(gv, promptIds.length, params.maxTokens) * n;
    const cap = this.gcfg.maxKvMiB * 2 ** 20;
    if (need > cap)
      throw new FerryError('invalid-request', {
        detail: `the prompt and max_tokens need ${(need / 2 ** 20).toFixed(1)} MiB of KV cache; at most ${this.gcfg.maxKvMiB} MiB (generation.maxKvMiB)`,
        extra: { errors: [{ pointer: '/max_tokens', reason: 'the KV cache it needs exceeds generation.maxKvMiB' }] },
      });
    if (slot.kvBytes + need > cap)
      throw new FerryError('server-overloaded', {
        detail: `running generations hold ${(slot.kvBytes / 2 ** 20).toFixed(1)} MiB of KV cache (generation.maxKvMiB is ${this.gcfg.maxKvMiB}); retry shortly`,
        headers: { 'retry-after': '1' },
      });
    return this.#start(slot, gv, promptIds, params, startedAt, true, n);
  }

  /** KV-cache bytes of one sequence of `prompt + maxTokens` tokens (float32 keys and values, every layer). */
  #kvBytes(gv: GenerativeVersion, prompt: number, maxTokens: number): number {
    const l = gv.layout;
    if (!l) return 0;
    return (prompt + maxTokens) * l.layers * 2 * l.heads * l.headDim * 4;
  }

  #start(
    slot: Slot,
    gv: GenerativeVersion,
    promptIds: number[],
    params: GenerationParams,
    startedAt: number,
    observe: boolean,
    n: number,
  ): Generation[] {
    const labels = { model: gv.version.name, version: gv.version.version };
    const seed = params.seed ?? Math.floor(Math.random() * 2 ** 32);
    const kv = this.#kvBytes(gv, promptIds.length, params.maxTokens);
    const gens = Array.from({ length: n }, (_, index) => {
      const g = this.#generation(slot, gv, promptIds, params, startedAt, observe, labels, kv);
      g.index = index;
      return g;
    });
    slot.rpc.post({
      type: 'generate',
      id: gens[0]!.id,
      request: {
        key: gv.version.key,
        promptIds,
        maxTokens: params.maxTokens,
        temperature: params.temperature,
        topP: params.topP,
        seed,
        eosIds: gv.codec.eosIds,
        credit: this.gcfg.creditTokens,
        ...(params.topLogprobs !== undefined && { topLogprobs: params.topLogprobs }),
        ...(n > 1 && { forks: gens.slice(1).map((g, i) => ({ id: g.id, seed: (seed + i + 1) % 2 ** 32 })) }),
      },
    } satisfies ToDecoder);
    return gens;
  }

  #generation(
    slot: Slot,
    gv: GenerativeVersion,
    promptIds: number[],
    params: GenerationParams,
    startedAt: number,
    observe: boolean,
    labels: { model: string; version: string },
    kv: number,
  ): Generation {
    const id = this.#nextId++;
    const gen: Generation = new Generation(
      (msg) => {
        if (this.#disposed) return;
        if (msg.type === 'credit') this.#grant(slot, msg.id, msg.tokens);
        else slot.rpc.post(msg);
      },
      id,
      promptIds.length,
      new TextStream(gv.codec, params.stop),
      startedAt,
      (g, r, firstAt) => {
        this.#generations.delete(g.id);
        slot.active--;
        slot.kvBytes -= kv;
        this.metrics.active.set(this.#generations.size);
        if (!observe) return;
        this.metrics.tokens.inc({ ...labels, kind: 'prompt' }, g.promptTokens);
        this.metrics.tokens.inc({ ...labels, kind: 'completion' }, g.completionTokens);
        if (r?.cachedPromptTokens) this.metrics.tokens.inc({ ...labels, kind: 'cached_prompt' }, r.cachedPromptTokens);
        this.metrics.finished.inc({ ...labels, reason: r?.reason ?? 'error' });
        if (firstAt !== undefined) this.metrics.timeToFirstToken.observe(labels, (firstAt - startedAt) / 1000);
        if (firstAt !== undefined && g.completionTokens > 1) {
          const s = (performance.now() - firstAt) / 1000;
          if (s > 0) this.metrics.tokensPerSecond.observe(labels, (g.completionTokens - 1) / s);
        }
      },
      params.topLogprobs !== undefined,
    );
    (gen as Generation & { slot?: Slot }).slot = slot;
    this.#generations.set(id, gen);
    slot.active++;
    slot.kvBytes += kv;
    this.metrics.active.set(this.#generations.size);
    return gen;
  }

  async dispose(): Promise<void> {
    if (this.#disposed) return;
    // Streams still open learn why they end (an error event), rather than stopping silently.
    for (const g of [...this.#generations.values()]) {
      g.cancel('disconnected');
      g.fail(new FerryError('shutting-down'));
    }
    await Promise.all(
      this.#slots.map(async (s) => {
        await Promise.race([
          this.#request(s, { type: 'shutdown', id: 0 }).catch(() => undefined),
          new Promise((r) => setTimeout(r, 5000).unref()),
        ]);
      }),
    );
    this.#disposed = true;
    for (const g of this.#generations.values()) g.fail(new FerryError('shutting-down'));
    await Promise.all(this.#slots.map((s) => s.rpc.terminate()));
  }
}
