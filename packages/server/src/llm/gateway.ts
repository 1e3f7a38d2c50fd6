// The LLM gateway: an app calls a route name (`model: "support-reply"`) and the route decides who
// answers. Path of one request: tier choice (rules, classifier) → prompt trimming → exact cache →
// semantic cache → budget reservation (estimate) → the tier's providers in order (fallback on failure)
// → cascade check (escalate to the next tier) → budget reconciliation (usage) → caches, ledger, metrics.
// Transport-free: the HTTP plugin translates OpenAI JSON to a GatewayRequest and the answer back.
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { FerryError } from '../errors.js';
import type { LlmConfig, LlmPrice, LlmProviderConfig, LlmRouteConfig } from '../config/schemas/llm.js';
import {
  deterministic,
  exactKey,
  semanticScope,
  semanticText,
  type AnswerCacheBackend,
  type CachedAnswer,
} from './answer-cache.js';
import { countersFor, type Amount, type CounterBackend } from './budgets.js';
import { planCompression, summaryRequest, withSummary, type CompressionPlan } from './compress.js';
import { cascadeCheck, compileSchema, type CascadeChecks, type SchemaCheck } from './cascade.js';
import type { Ledger } from './ledger.js';
import type { LlmMetrics } from './metrics.js';
import type { ResilientProvider } from './resilience.js';
import { tiktokenCounter, trimHistory, type MessageCounter } from './tokens.js';
import type { ChatAnswer, ChatMessage, ChatRequest, EmbeddingSource, Usage } from './types.js';
import { UpstreamError } from './upstream-error.js';

export type CacheKind = 'none' | 'exact' | 'semantic';

export interface GatewayRequest {
  route: string;
  messages: ChatMessage[];
  /** Undefined: the route's defaultMaxTokens. */
  maxTokens?: number;
  temperature?: number;
  topP?: number;
  stop: string[];
  seed?: number;
  stream: boolean;
  keyId?: string;
  tenant?: string;
  metadata?: Record<string, string>;
  requestId?: string;
  /**
   * OpenAI's `response_format` (`{type: "json_object"}` or `{type: "json_schema", json_schema: {schema}}`):
   * passed to OpenAI-compatible upstreams, and checked by the route's cascade when it has one.
   */
  responseFormat?: Record<string, unknown>;
}

/** Who answered and why: sent as response fields (`ferry`) and headers (`Ferry-LLM-*`). */
export interface AnswerMeta {
  route: string;
  tier: string;
  provider: string;
  model: string;
  cache: CacheKind;
  /**
   * Why this tier and provider, in words: `rule 0`, `classifier label "hard"`, `default tier`,
   * `fallback after p1 http 500`, `escalated from cheap: json`.
   */
  reason: string;
  /** Cosine similarity of a semantic hit. */
  similarity?: number;
}

export interface GatewayAnswer {
  meta: AnswerMeta;
  answer: ChatAnswer;
  promptTokensTrimmed: number;
  costUsd: number;
}

export interface StreamHooks {
  /** Before the first delta: who is answering (the HTTP layer sends headers then). */
  onStart(meta: AnswerMeta): void;
  onDelta(text: string): void;
}

export interface GatewayDeps {
  config: LlmConfig;
  providers: ReadonlyMap<string, ResilientProvider>;
  providerConfigs: Readonly<Record<string, LlmProviderConfig>>;
  cache: AnswerCacheBackend;
  counters: CounterBackend;
  ledger: Ledger;
  metrics: LlmMetrics;
  log: Logger;
  keyPrefix: string;
  embeddings?: EmbeddingSource;
  /** Counts a prompt with a Ferry model's own tokenizer (undefined: not a Ferry model). */
  localCounter?: (model: string) => MessageCounter | undefined;
  /** A Ferry classifier's label for a text (tiering by classifier). */
  classify?: (model: string, field: string, text: string) => Promise<string | undefined>;
}

interface Target {
  provider: string;
  model: string;
  weight?: number;
}

/** What each control saved on one request, in USD (the ledger's saved_* columns). */
interface Savings {
  /** A cache hit: what the cached answer cost upstream when it was made. */
  cache?: number;
  /** A cheaper tier answered: the route's dearest tier's price for the same usage, minus what was paid. */
  tiering?: number;
  /** Trimmed or summarised history: the dropped prompt tokens at the answering model's input price. */
  prompt?: number;
}
const NO_SAVINGS: Savings = {};

interface CallCost {
  provider: string;
  model: string;
  usage: Usage;
  costUsd: number;
}

/** Sends a whole answer (a cached one, or one the cascade held back to check) as a stream, a word at a time. */
function replay(hooks: StreamHooks, meta: AnswerMeta, text: string): void {
  hooks.onStart(meta);
  for (const piece of text.match(/\s*\S+\s*/g) ?? [text]) hooks.onDelta(piece);
}

const ZERO_PRICE: LlmPrice = { inputPerMTok: 0, cachedInputPerMTok: 0, outputPerMTok: 0 };

export class LlmGateway {
  readonly #routes: ReadonlyMap<string, LlmRouteConfig>;
  readonly #counters = new Map<string, MessageCounter>();
  readonly #refusals = new Map<string, RegExp[]>();
  readonly #schemas = new Map<string, SchemaCheck>();

  constructor(private readonly d: GatewayDeps) {
    this.#routes = new Map(Object.entries(d.config.routes));
    for (const [name, r] of this.#routes) {
      this.#refusals.set(
        name,
        r.cascade.refusalPatterns.map((p) => new RegExp(p, 'i')),
      );
      if (r.cascade.schema !== undefined) {
        try {
          this.#schemas.set(name, compileSchema(r.cascade.schema));
        } catch (e) {
          throw new Error(`llm.routes.${name}.cascade.schema: ${(e as Error).message}`);
        }
      }
    }
  }

  has(route: string): boolean {
    return this.#routes.has(route);
  }
  routeNames(): string[] {
    return [...this.#routes.keys()];
  }

  price(provider: string, model: string): Required<LlmPrice> {
    const p = this.d.providerConfigs[provider]?.prices[model] ?? ZERO_PRICE;
    return {
      inputPerMTok: p.inputPerMTok ?? 0,
      cachedInputPerMTok: p.cachedInputPerMTok ?? 0,
      outputPerMTok: p.outputPerMTok ?? 0,
    };
  }

  costOf(provider: string, model: string, u: Usage): number {
    const p = this.price(provider, model);
    const fresh = Math.max(0, u.promptTokens - u.cachedPromptTokens);
    return (
      (fresh * p.inputPerMTok + u.cachedPromptTokens * p.cachedInputPerMTok + u.completionTokens * p.outputPerMTok) /
      1e6
    );
  }

  #counter(t: Target): MessageCounter {
    const id = `${t.provider}/${t.model}`;
    let c = this.#counters.get(id);
    if (!c) {
      const local = this.d.providers.get(t.provider)?.kind === 'ferry' ? this.d.localCounter?.(t.model) : undefined;
      c = local ?? tiktokenCounter(t.model);
      this.#counters.set(id, c);
    }
    return c;
  }

  async #chooseTier(
    name: string,
    route: LlmRouteConfig,
    req: GatewayRequest,
  ): Promise<{ tier: string; reason: string }> {
    const tiers = Object.keys(route.tiers);
    const fallback = route.defaultTier || tiers[0]!;
    const needTokens = route.rules.some((r) => r.minPromptTokens !== undefined || r.maxPromptTokens !== undefined);
    const promptTokens = needTokens ? this.#counter(route.tiers[fallback]![0]!)(req.messages) : 0;
    const turns = req.messages.filter((m) => m.role !== 'system' && m.role !== 'developer').length;
    for (const [i, r] of route.rules.entries()) {
      if (r.minPromptTokens !== undefined && promptTokens < r.minPromptTokens) continue;
      if (r.maxPromptTokens !== undefined && promptTokens > r.maxPromptTokens) continue;
      if (r.minMessages !== undefined && turns < r.minMessages) continue;
      if (r.maxMessages !== undefined && turns > r.maxMessages) continue;
      if (r.keys && !(req.keyId && r.keys.includes(req.keyId))) continue;
      if (r.tenants && !(req.tenant && r.tenants.includes(req.tenant))) continue;
      if (r.metadata && !Object.entries(r.metadata).every(([k, v]) => req.metadata?.[k] === v)) continue;
      return { tier: r.tier, reason: `rule ${i}` };
    }
    if (route.classifier.model && this.d.classify) {
      const label = await this.d
        .classify(route.classifier.model, route.classifier.field, semanticText(req.messages))
        .catch((err: unknown) => {
          this.d.log.warn({ err, route: name }, 'tier classifier failed; using the default tier');
          return undefined;
        });
      const tier = label === undefined ? undefined : route.classifier.tiers[label];
      if (tier) return { tier, reason: `classifier label "${label}"` };
    }
    return { tier: fallback, reason: 'default tier' };
  }

  /**
   * The tier's targets in call order: as listed, unless some set a `weight` (A/B): then one is picked by
   * weight first (targets without a weight count as 0: fallbacks only) and the rest follow as listed.
   */
  #order(targets: readonly Target[]): Target[] {
    if (!targets.some((t) => t.weight !== undefined)) return [...targets];
    const w = (t: Target) => t.weight ?? 0;
    const total = targets.reduce((s, t) => s + w(t), 0);
    if (total <= 0) return [...targets];
    let r = Math.random() * total;
    const first = targets.find((t) => w(t) > 0 && (r -= w(t)) < 0) ?? targets.find((t) => w(t) > 0)!;
    return [first, ...targets.filter((t) => t !== first)];
  }

  #estimate(route: LlmRouteConfig, tier: string, promptTokens: number, maxTokens: number): Amount {
    let usd = 0;
    const tiers = Object.keys(route.tiers);
    // A cascade may pay for this tier and every later one.
    const reach = route.cascade.enabled ? tiers.slice(tiers.indexOf(tier)) : [tier];
    for (const name of reach) usd += this.#tierEstimate(route.tiers[name]!, promptTokens, maxTokens).usd;
    return { tokens: (promptTokens + maxTokens) * reach.length, usd };
  }

  /** The worst case of one call to a tier: its dearest target. */
  #tierEstimate(targets: readonly Target[], promptTokens: number, maxTokens: number): Amount {
    let dearest = 0;
    for (const t of targets) {
      const p = this.price(t.provider, t.model);
      dearest = Math.max(dearest, (promptTokens * p.inputPerMTok + maxTokens * p.outputPerMTok) / 1e6);
    }
    return { tokens: promptTokens + maxTokens, usd: dearest };
  }

  /**
   * Summarises the older turns with the route's `compress.tier` and puts the summary in front of the
   * newest turns. A summary that fails (or does not fit) leaves the plainly trimmed prompt: compression
   * is a saving, never a reason for a request to fail.
   */
  async #summarise(
    name: string,
    route: LlmRouteConfig,
    plan: CompressionPlan,
    sumReq: ChatRequest,
    trimmed: ChatMessage[],
    signal: AbortSignal,
    calls: CallCost[],
    count: MessageCounter,
  ): Promise<{ messages: ChatMessage[]; note: string }> {
    const m = this.d.metrics;
    const tier = route.compress.tier;
    try {
      const r = await this.#callTier(name, tier, 'summary', route.tiers[tier]!, sumReq, signal, undefined, calls);
      const fitted = r.answer.text.trim()
        ? trimHistory(withSummary(plan.kept, r.answer.text), route.maxPromptTokens, count)
        : undefined;
      if (fitted) {
        m.compressed.inc({ route: name, outcome: 'ok' });
        if (fitted.dropped > 0) m.trimmed.inc({ route: name });
        return { messages: fitted.messages, note: `; ${plan.older.length} older turns summarised by ${tier}` };
      }
    } catch (err) {
      if (signal.aborted) throw err;
      this.d.log.warn({ err, route: name }, 'history summary failed; older turns trimmed instead');
    }
    m.compressed.inc({ route: name, outcome: 'failed' });
    m.trimmed.inc({ route: name });
    return { messages: trimmed, note: '; summary failed, older turns trimmed' };
  }

  /** Answers a request through its route; throws FerryError (4xx/429/502) or, mid-stream, UpstreamError. */
  // eslint-disable-next-line max-lines-per-function -- the request path, read top to bottom
  async chat(req: GatewayRequest, signal: AbortSignal, hooks?: StreamHooks): Promise<GatewayAnswer> {
    const t0 = performance.now();
    const route = this.#routes.get(req.route);
    if (!route) throw new FerryError('model-not-found', { detail: `no LLM route ${req.route}` });
    const { tier, reason: tierReason } = await this.#chooseTier(req.route, route, req);
    const targets = route.tiers[tier];
    if (!targets) throw new FerryError('internal', { detail: `route ${req.route} names an unknown tier ${tier}` });

    // Prompt budget: keep the system prompt and the newest turns that fit. Tokens are counted only when
    // a control needs them (a prompt maximum, a budget's estimate): counting is the gateway's main cost.
    // Lazy: building a BPE rank table takes ~250 ms once, and a route that never counts should not pay it.
    const count: MessageCounter = (ms) => this.#counter(targets[0]!)(ms);
    const counters = countersFor(
      this.d.config.budgets,
      { key: req.keyId, tenant: req.tenant, route: req.route },
      this.d.keyPrefix,
    );
    let messages = req.messages;
    let promptTokens = 0;
    // Set when history was trimmed or summarised: the prompt's tokens before that (for the savings).
    let fullTokens = 0;
    // With `compress`, the older turns that do not fit are summarised (after the caches and the budget).
    let plan: CompressionPlan | undefined;
    if (route.maxPromptTokens > 0) {
      const fitted = route.trim === 'refuse' ? undefined : trimHistory(messages, route.maxPromptTokens, count);
      const full = fitted ? fitted.promptTokens : count(messages);
      if (!fitted && full > route.maxPromptTokens) {
        throw new FerryError('prompt-too-large', {
          detail: `the prompt is ${full} tokens; route ${req.route} takes at most ${route.maxPromptTokens} (llm.routes.${req.route}.maxPromptTokens)${route.trim === 'refuse' ? '' : ', even with only the system prompt and the newest turn'}`,
          extra: {
            errors: [{ pointer: '/messages', reason: 'too many tokens' }],
            limit: route.maxPromptTokens,
            promptTokens: full,
          },
        });
      }
      messages = fitted?.messages ?? messages;
      promptTokens = fitted?.promptTokens ?? full;
      if (fitted && fitted.dropped > 0) fullTokens = fitted.fullTokens;
      if (fitted && fitted.dropped > 0 && route.compress.tier)
        plan = planCompression(req.messages, route.maxPromptTokens, route.compress.maxSummaryTokens, count);
      if (fitted && fitted.dropped > 0 && !plan) this.d.metrics.trimmed.inc({ route: req.route });
    } else if (counters.length > 0) promptTokens = count(messages);

    const checks = this.#checksFor(req, route);
    const chatReq: ChatRequest = {
      messages,
      maxTokens: req.maxTokens ?? route.defaultMaxTokens,
      stop: req.stop,
      stream: req.stream,
      ...(route.cascade.enabled && route.cascade.minConfidence > 0 && { logprobs: true }),
      ...(req.responseFormat && { responseFormat: req.responseFormat }),
      ...(req.temperature !== undefined && { temperature: req.temperature }),
      ...(req.topP !== undefined && { topP: req.topP }),
      ...(req.seed !== undefined && { seed: req.seed }),
    };
    const m = this.d.metrics;
    const ttlMs = route.cache.ttlSeconds * 1000;
    const base = { route: req.route, tier };

    // Exact cache.
    const useExact = route.cache.exact && (route.cache.includeSampled || deterministic(chatReq));
    // A compressed prompt is keyed by the conversation as sent: a hit then costs no summary call.
    const xKey = useExact
      ? exactKey(req.route, req.tenant, plan ? { ...chatReq, messages: req.messages } : chatReq)
      : undefined;
    if (xKey) {
      const hit = await this.#cacheGet(() => this.d.cache.get(xKey));
      m.cache.inc({ route: req.route, kind: 'exact', result: hit ? 'hit' : 'miss' });
      if (hit) return this.#fromCache(req, base, hit, 'exact', undefined, t0, hooks);
    }
    // Semantic cache.
    let vector: number[] | undefined;
    // The scope hashes the whole context: only computed when the semantic cache is on (it costs ~1% of a request).
    const semanticOn = route.cache.semanticThreshold > 0 && this.d.embeddings !== undefined;
    const sScope = semanticOn ? semanticScope(req.route, req.tenant, plan ? req.messages : messages) : '';
    if (semanticOn && this.d.embeddings) {
      try {
        vector = (await this.d.embeddings.embed([semanticText(messages)], signal))[0];
      } catch (err) {
        this.d.log.warn({ err, route: req.route }, 'embedding failed; semantic cache skipped');
      }
      if (vector) {
        const v = vector;
        const hit = await this.#cacheGet(() => this.d.cache.nearest(sScope, v, route.cache.semanticThreshold));
        m.cache.inc({ route: req.route, kind: 'semantic', result: hit ? 'hit' : 'miss' });
        if (hit) return this.#fromCache(req, base, hit.entry, 'semantic', hit.similarity, t0, hooks);
      }
    }

    // Budgets: reserve the worst case now, reconcile with usage after.
    // A compressed prompt is at most maxPromptTokens; the summary call is reserved for too.
    const estimate = this.#estimate(route, tier, plan ? route.maxPromptTokens : promptTokens, chatReq.maxTokens);
    const sumReq = plan && summaryRequest(route.compress, plan.older);
    if (sumReq && counters.length > 0) {
      const targets = route.tiers[route.compress.tier]!;
      const s = this.#tierEstimate(targets, this.#counter(targets[0]!)(sumReq.messages), sumReq.maxTokens);
      estimate.tokens += s.tokens;
      estimate.usd += s.usd;
    }
    const reserved = await this.d.counters.reserve(counters, estimate);
    if (!reserved.ok) {
      const c = reserved.counter;
      const retryAfterS = Math.max(1, Math.ceil((c.windowEndsAt - Date.now()) / 1000));
      m.budgetRejections.inc({ scope: c.budget.scope, window: c.budget.window });
      m.requests.inc({ ...base, provider: '', cache: 'none', outcome: 'budget' });
      this.#ledger(req, base, '', '', 'none', 'budget', [], 0, 0, NO_SAVINGS, t0);
      throw new FerryError('budget-exceeded', {
        detail: `the ${c.budget.window} budget of ${c.budget.scope}${c.budget.match ? ` ${c.budget.match}` : ''} (${[
          c.tokensLimit > 0 && `${c.tokensLimit} tokens`,
          c.usdLimit > 0 && `$${c.usdLimit}`,
        ]
          .filter(Boolean)
          .join(', ')}) cannot take this request's estimate of ${estimate.tokens} tokens / $${estimate.usd.toFixed(6)}`,
        headers: { 'retry-after': String(retryAfterS) },
        extra: {
          budget: { scope: c.budget.scope, window: c.budget.window, tokens: c.tokensLimit, usd: c.usdLimit },
          estimate,
        },
      });
    }

    const calls: CallCost[] = [];
    let upstreamMs = 0;
    let result: { answer: ChatAnswer; meta: AnswerMeta } | undefined;
    let fallbacks = 0;
    let escalated = false;
    let summaryCalls = 0;
    try {
      const tiers = Object.keys(route.tiers);
      let current = tier;
      let why = tierReason;
      if (plan && sumReq) {
        const c = await this.#summarise(req.route, route, plan, sumReq, messages, signal, calls, count);
        chatReq.messages = c.messages;
        why += c.note;
        summaryCalls = calls.length;
      }
      for (;;) {
        const next = tiers[tiers.indexOf(current) + 1];
        // A tier the cascade may still overrule answers into a buffer; a stream gets it once it passed.
        const checking =
          route.cascade.enabled && next !== undefined && (!req.stream || route.cascade.stream === 'buffer');
        const u0 = performance.now();
        const r = await this.#callTier(
          req.route,
          current,
          why,
          route.tiers[current]!,
          chatReq,
          signal,
          checking ? undefined : hooks,
          calls,
        );
        upstreamMs += performance.now() - u0;
        fallbacks += r.fallbacks;
        result = r;
        const failed = checking ? cascadeCheck(checks, r.answer) : undefined;
        if (!failed || !next) {
          if (checking && hooks) replay(hooks, r.meta, r.answer.text);
          break;
        }
        m.escalations.inc({ route: req.route, from: current, to: next, reason: failed.failure });
        escalated = true;
        why = `escalated from ${current}: ${failed.failure}${failed.detail ? ` (${failed.detail})` : ''}`;
        current = next;
      }
    } catch (e) {
      const spent = calls.reduce((s, c) => s + c.costUsd, 0);
      const tokens = calls.reduce((s, c) => s + c.usage.promptTokens + c.usage.completionTokens, 0);
      await this.d.counters
        .adjust(counters, { tokens: tokens - estimate.tokens, usd: spent - estimate.usd })
        .catch(() => undefined);
      m.requests.inc({ ...base, provider: '', cache: 'none', outcome: 'error' });
      this.#ledger(req, base, '', '', 'none', 'error', calls, fallbacks, escalated ? 1 : 0, NO_SAVINGS, t0);
      throw e;
    }

    const { answer, meta } = result;
    const cost = calls.reduce((s, c) => s + c.costUsd, 0);
    const tokens = calls.reduce((s, c) => s + c.usage.promptTokens + c.usage.completionTokens, 0);
    await this.d.counters
      .adjust(counters, { tokens: tokens - estimate.tokens, usd: cost - estimate.usd })
      .catch((err: unknown) => this.d.log.warn({ err }, 'budget reconciliation failed'));
    const entry: CachedAnswer = { answer, provider: meta.provider, tier: meta.tier, costUsd: cost, at: Date.now() };
    if (xKey) void this.#cacheSet(() => this.d.cache.set(xKey, entry, ttlMs));
    if (vector) {
      const v = vector;
      void this.#cacheSet(() => this.d.cache.addVector(sScope, v, entry, ttlMs));
    }
    const saved = this.#savings(req.route, route, meta, answer.usage, calls, summaryCalls, fullTokens, count, chatReq);
    m.requests.inc({ route: req.route, tier: meta.tier, provider: meta.provider, cache: 'none', outcome: 'ok' });
    m.overhead.observe({ route: req.route }, Math.max(0, performance.now() - t0 - upstreamMs) / 1000);
    this.#ledger(
      req,
      { route: req.route, tier: meta.tier },
      meta.provider,
      meta.model,
      'none',
      'ok',
      calls,
      fallbacks,
      escalated ? 1 : 0,
      saved,
      t0,
    );
    return { meta, answer, promptTokensTrimmed: promptTokens, costUsd: cost };
  }

  /**
   * What tiering and prompt trimming saved on an answered request. Tiering: the route's dearest tier's
   * price for the answer's usage minus what the answering calls cost. Prompt: the tokens trimmed or
   * summarised away at the answering model's input price, minus what the summary call cost.
   */
  #savings(
    name: string,
    route: LlmRouteConfig,
    meta: AnswerMeta,
    usage: Usage,
    calls: readonly CallCost[],
    summaryCalls: number,
    fullTokens: number,
    count: MessageCounter,
    sent: ChatRequest,
  ): Savings {
    const m = this.d.metrics;
    const out: Savings = {};
    const sum = (cs: readonly CallCost[]) => cs.reduce((s, c) => s + c.costUsd, 0);
    const tiers = Object.keys(route.tiers);
    const top = route.tiers[tiers.at(-1)!]![0]!;
    if (meta.tier !== tiers.at(-1)) {
      const saved = this.costOf(top.provider, top.model, usage) - sum(calls.slice(summaryCalls));
      if (saved > 0) {
        out.tiering = saved;
        m.saved.inc({ route: name, control: 'tiering' }, saved);
      }
    }
    if (fullTokens > 0) {
      const dropped = fullTokens - count(sent.messages);
      const saved =
        (dropped * this.price(meta.provider, meta.model).inputPerMTok) / 1e6 - sum(calls.slice(0, summaryCalls));
      if (saved > 0) {
        out.prompt = saved;
        m.saved.inc({ route: name, control: summaryCalls > 0 ? 'compression' : 'trimming' }, saved);
      }
    }
    return out;
  }

  /** The cascade's checks for one request: the route's, plus the request's `response_format`. */
  #checksFor(req: GatewayRequest, route: LlmRouteConfig): CascadeChecks {
    const c: CascadeChecks = { route: route.cascade, refusals: this.#refusals.get(req.route) ?? [] };
    const rs = this.#schemas.get(req.route);
    if (rs) c.routeSchema = rs;
    const rf = req.responseFormat;
    if (!rf) return c;
    const bad = (pointer: string, reason: string) =>
      new FerryError('invalid-request', {
        detail: `${pointer}: ${reason}`,
        extra: { errors: [{ pointer, reason }] },
      });
    if (rf.type === 'json_object') c.requestJson = true;
    else if (rf.type === 'json_schema') {
      const js = rf.json_schema as Record<string, unknown> | undefined;
      if (!js || typeof js !== 'object' || Array.isArray(js))
        throw bad('/response_format/json_schema', 'must be an object with a `schema`');
      if (js.schema !== undefined) {
        if (JSON.stringify(js.schema).length > 65_536)
          throw bad('/response_format/json_schema/schema', 'at most 64 KiB of JSON');
        try {
          c.requestSchema = compileSchema(js.schema);
        } catch (e) {
          throw bad('/response_format/json_schema/schema', `not a valid JSON Schema: ${(e as Error).message}`);
        }
      } else c.requestJson = true;
    } else if (rf.type !== 'text') throw bad('/response_format/type', 'must be "text", "json_object" or "json_schema"');
    return c;
  }

  async #callTier(
    route: string,
    tier: string,
    reason: string,
    targets: readonly Target[],
    req: ChatRequest,
    signal: AbortSignal,
    hooks: StreamHooks | undefined,
    calls: CallCost[],
  ): Promise<{ answer: ChatAnswer; meta: AnswerMeta; fallbacks: number }> {
    const m = this.d.metrics;
    const failures: { provider: string; failure: string; status?: number }[] = [];
    const order = this.#order(targets);
    for (const [i, t] of order.entries()) {
      const provider = this.d.providers.get(t.provider)!;
      const meta: AnswerMeta = {
        route,
        tier,
        provider: t.provider,
        model: t.model,
        cache: 'none',
        reason: failures.length
          ? `${reason}; fallback after ${failures.map((f) => `${f.provider} ${f.failure}${f.status ? ` ${f.status}` : ''}`).join(', ')}`
          : reason,
      };
      // An open breaker is skipped without a call, unless it is the last hope.
      if (!provider.available && i < order.length - 1) {
        failures.push({ provider: t.provider, failure: 'breaker-open' });
        m.fallbacks.inc({ route, from: t.provider });
        continue;
      }
      const c0 = performance.now();
      let first: number | undefined;
      let started = false;
      const sink = hooks
        ? (text: string) => {
            if (!started) {
              started = true;
              first = performance.now();
              hooks.onStart(meta);
            }
            hooks.onDelta(text);
          }
        : undefined;
      try {
        const answer = await provider.chat(t.model, req, signal, sink);
        if (hooks && !started) hooks.onStart(meta);
        const usage = this.#saneUsage(t, req, answer);
        answer.usage = usage;
        const costUsd = this.costOf(t.provider, t.model, usage);
        calls.push({ provider: t.provider, model: t.model, usage, costUsd });
        this.#observe(route, t, usage, costUsd, c0, first);
        return { answer, meta: { ...meta, model: answer.model || t.model }, fallbacks: failures.length };
      } catch (e) {
        const fatal = !(e instanceof UpstreamError) ? !(e instanceof FerryError && e.status >= 500) : e.delivered;
        if (fatal) throw e;
        const ue = e instanceof UpstreamError ? e : undefined;
        failures.push({
          provider: t.provider,
          failure: ue?.failure ?? 'error',
          ...(ue?.status !== undefined && { status: ue.status }),
        });
        if (i < order.length - 1) m.fallbacks.inc({ route, from: t.provider });
      }
    }
    const retryable = failures.some((f) => f.failure !== 'http' || (f.status ?? 500) >= 500 || f.status === 429);
    throw new FerryError('upstream-failed', {
      detail: `every provider of tier ${tier} of route ${route} failed: ${failures.map((f) => `${f.provider} ${f.failure}${f.status ? ` ${f.status}` : ''}`).join(', ')}`,
      retryable,
      extra: { attempts: failures },
      ...(retryable && { headers: { 'retry-after': '1' } }),
    });
  }

  /**
   * A provider that reports no usage, or one that cannot be true (0 completion tokens for a text,
   * prompt tokens of 0), is counted by the gateway instead, so the ledger and the budgets stay sane.
   */
  #saneUsage(t: Target, req: ChatRequest, a: ChatAnswer): Usage {
    const u = a.usage;
    const count = this.#counter(t);
    const prompt = u.promptTokens > 0 ? u.promptTokens : count(req.messages);
    let completion = u.completionTokens;
    if ((completion === 0 && a.text.length > 0) || completion > req.maxTokens) {
      completion = Math.min(req.maxTokens, Math.max(1, count([{ role: 'assistant', content: a.text }]) - 7));
      this.d.log.warn(
        { provider: t.provider, model: t.model, reported: u.completionTokens, counted: completion },
        'upstream usage replaced by a count',
      );
    }
    return {
      promptTokens: prompt,
      completionTokens: completion,
      cachedPromptTokens: Math.min(u.cachedPromptTokens, prompt),
    };
  }

  #observe(route: string, t: Target, u: Usage, cost: number, c0: number, first: number | undefined): void {
    const m = this.d.metrics;
    const labels = { route, provider: t.provider, model: t.model };
    m.tokens.inc({ ...labels, kind: 'prompt' }, u.promptTokens - u.cachedPromptTokens);
    if (u.cachedPromptTokens) m.tokens.inc({ ...labels, kind: 'cached_prompt' }, u.cachedPromptTokens);
    m.tokens.inc({ ...labels, kind: 'completion' }, u.completionTokens);
    if (cost > 0) m.spend.inc(labels, cost);
    const now = performance.now();
    if (first !== undefined) m.timeToFirstToken.observe({ route, provider: t.provider }, (first - c0) / 1000);
    const decodeS = (now - (first ?? c0)) / 1000;
    if (u.completionTokens > 1 && decodeS > 0)
      m.tokensPerSecond.observe({ route, provider: t.provider }, u.completionTokens / decodeS);
  }

  #fromCache(
    req: GatewayRequest,
    base: { route: string; tier: string },
    hit: CachedAnswer,
    kind: 'exact' | 'semantic',
    similarity: number | undefined,
    t0: number,
    hooks: StreamHooks | undefined,
  ): GatewayAnswer {
    const meta: AnswerMeta = {
      route: req.route,
      tier: hit.tier,
      provider: hit.provider,
      model: hit.answer.model,
      cache: kind,
      reason: kind === 'exact' ? 'exact cache hit' : `semantic cache hit (similarity ${similarity!.toFixed(3)})`,
      ...(similarity !== undefined && { similarity }),
    };
    // A cached answer to a streaming request is replayed as a stream, a word at a time.
    if (hooks) replay(hooks, meta, hit.answer.text);
    const m = this.d.metrics;
    m.requests.inc({ route: req.route, tier: hit.tier, provider: hit.provider, cache: kind, outcome: 'ok' });
    if (hit.costUsd > 0) m.saved.inc({ route: req.route, control: `${kind}_cache` }, hit.costUsd);
    m.overhead.observe({ route: req.route }, (performance.now() - t0) / 1000);
    this.#ledger(
      req,
      { route: req.route, tier: hit.tier },
      hit.provider,
      hit.answer.model,
      kind,
      'ok',
      [],
      0,
      0,
      { cache: hit.costUsd },
      t0,
    );
    return { meta, answer: { ...hit.answer }, promptTokensTrimmed: 0, costUsd: 0 };
  }

  async #cacheGet<T>(fn: () => Promise<T>): Promise<T | undefined> {
    try {
      return await fn();
    } catch (err) {
      // A cache that fails is a miss, never a failed request.
      this.d.log.warn({ err }, 'LLM cache read failed');
      return undefined;
    }
  }
  async #cacheSet(fn: () => Promise<void>): Promise<void> {
    await fn().catch((err: unknown) => this.d.log.warn({ err }, 'LLM cache write failed'));
  }

  #ledger(
    req: GatewayRequest,
    base: { route: string; tier: string },
    provider: string,
    model: string,
    cache: CacheKind,
    outcome: 'ok' | 'error' | 'budget',
    calls: CallCost[],
    fallbacks: number,
    escalated: number,
    saved: Savings,
    t0: number,
  ): void {
    this.d.ledger.record({
      ts: Date.now(),
      request_id: req.requestId ?? null,
      route: base.route,
      tier: base.tier,
      provider,
      model,
      key_id: req.keyId ?? null,
      tenant: req.tenant ?? null,
      cache,
      outcome,
      upstream_calls: calls.length,
      fallbacks,
      escalated,
      prompt_tokens: calls.reduce((s, c) => s + c.usage.promptTokens, 0),
      cached_prompt_tokens: calls.reduce((s, c) => s + c.usage.cachedPromptTokens, 0),
      completion_tokens: calls.reduce((s, c) => s + c.usage.completionTokens, 0),
      cost_usd: calls.reduce((s, c) => s + c.costUsd, 0),
      saved_usd: (saved.cache ?? 0) + (saved.tiering ?? 0) + (saved.prompt ?? 0),
      saved_tiering_usd: saved.tiering ?? 0,
      saved_prompt_usd: saved.prompt ?? 0,
      latency_ms: performance.now() - t0,
    });
  }

  /** Drops cached answers of a route (and tenant). */
  invalidate(route: string, tenant?: string): Promise<number> {
    if (!this.#routes.has(route)) throw new FerryError('model-not-found', { detail: `no LLM route ${route}` });
    return this.d.cache.invalidate(route, tenant);
  }

  ledgerSummary(since?: number) {
    return this.d.ledger.summary(since);
  }

  async close(): Promise<void> {
    await this.d.ledger.flush();
  }
}
