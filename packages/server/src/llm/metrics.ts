// ferry_llm_* metrics, registered on the server's registry. Labels are configured names only (routes,
// tiers, providers, upstream models from the config), never request content, keys or tenants.
import { Counter, Histogram, type Registry } from 'prom-client';

export class LlmMetrics {
  readonly requests: Counter<'route' | 'tier' | 'provider' | 'cache' | 'outcome'>;
  readonly tokens: Counter<'route' | 'provider' | 'model' | 'kind'>;
  readonly spend: Counter<'route' | 'provider' | 'model'>;
  readonly saved: Counter<'route' | 'control'>;
  readonly cache: Counter<'route' | 'kind' | 'result'>;
  readonly escalations: Counter<'route' | 'from' | 'to' | 'reason'>;
  readonly fallbacks: Counter<'route' | 'from'>;
  readonly upstreamErrors: Counter<'provider' | 'failure' | 'status'>;
  readonly retries: Counter<'provider'>;
  readonly budgetRejections: Counter<'scope' | 'window'>;
  readonly trimmed: Counter<'route'>;
  readonly compressed: Counter<'route' | 'outcome'>;
  readonly timeToFirstToken: Histogram<'route' | 'provider'>;
  readonly tokensPerSecond: Histogram<'route' | 'provider'>;
  readonly overhead: Histogram<'route'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.requests = new Counter({
      name: 'ferry_llm_requests_total',
      help: 'Gateway requests by route, tier, answering provider, cache (none, exact, semantic) and outcome (ok, error, budget)',
      labelNames: ['route', 'tier', 'provider', 'cache', 'outcome'],
      registers,
    });
    this.tokens = new Counter({
      name: 'ferry_llm_tokens_total',
      help: 'Tokens billed by upstreams, by kind (prompt, cached_prompt, completion)',
      labelNames: ['route', 'provider', 'model', 'kind'],
      registers,
    });
    this.spend = new Counter({
      name: 'ferry_llm_spend_usd_total',
      help: "Money spent upstream (USD, from the configured prices and the providers' usage)",
      labelNames: ['route', 'provider', 'model'],
      registers,
    });
    this.saved = new Counter({
      name: 'ferry_llm_saved_usd_total',
      help: 'Money not spent thanks to a control (exact_cache, semantic_cache, tiering), estimated at the price of the answer reused or the tier avoided',
      labelNames: ['route', 'control'],
      registers,
    });
    this.cache = new Counter({
      name: 'ferry_llm_cache_requests_total',
      help: 'Cache lookups by kind (exact, semantic) and result (hit, miss)',
      labelNames: ['route', 'kind', 'result'],
      registers,
    });
    this.escalations = new Counter({
      name: 'ferry_llm_escalations_total',
      help: 'Cascade escalations from one tier to the next, by the check that failed (json, refusal)',
      labelNames: ['route', 'from', 'to', 'reason'],
      registers,
    });
    this.fallbacks = new Counter({
      name: 'ferry_llm_fallbacks_total',
      help: 'Requests moved to the next provider of a tier after this provider failed',
      labelNames: ['route', 'from'],
      registers,
    });
    this.upstreamErrors = new Counter({
      name: 'ferry_llm_upstream_errors_total',
      help: 'Failed upstream attempts by provider, failure (http, connect, first-token-timeout, total-timeout, stream-cut, malformed, breaker-open, queue-timeout) and HTTP status',
      labelNames: ['provider', 'failure', 'status'],
      registers,
    });
    this.retries = new Counter({
      name: 'ferry_llm_retries_total',
      help: 'Upstream attempts retried after a retryable failure',
      labelNames: ['provider'],
      registers,
    });
    this.budgetRejections = new Counter({
      name: 'ferry_llm_budget_rejections_total',
      help: 'Requests refused with 429 budget-exceeded, by budget scope and window',
      labelNames: ['scope', 'window'],
      registers,
    });
    this.trimmed = new Counter({
      name: 'ferry_llm_prompts_trimmed_total',
      help: "Prompts whose older turns were dropped to fit the route's maxPromptTokens",
      labelNames: ['route'],
      registers,
    });
    this.compressed = new Counter({
      name: 'ferry_llm_prompts_compressed_total',
      help: 'Prompts whose older turns were summarised by a cheap tier (outcome ok), or only trimmed because the summary failed',
      labelNames: ['route', 'outcome'],
      registers,
    });
    this.timeToFirstToken = new Histogram({
      name: 'ferry_llm_time_to_first_token_seconds',
      help: 'From the upstream call to the first streamed token',
      labelNames: ['route', 'provider'],
      registers,
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16],
    });
    this.tokensPerSecond = new Histogram({
      name: 'ferry_llm_tokens_per_second',
      help: 'Completion tokens per second of each upstream answer',
      labelNames: ['route', 'provider'],
      registers,
      buckets: [1, 5, 10, 25, 50, 100, 250, 500, 1000, 5000],
    });
    this.overhead = new Histogram({
      name: 'ferry_llm_gateway_overhead_seconds',
      help: 'Time the gateway itself adds to a request (total minus upstream time)',
      labelNames: ['route'],
      registers,
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1],
    });
  }
}
