// Generation metrics, registered on the server's registry from here (labels never carry user input).
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export class GenerationMetrics {
  readonly timeToFirstToken: Histogram<'model' | 'version'>;
  readonly tokensPerSecond: Histogram<'model' | 'version'>;
  readonly tokens: Counter<'model' | 'version' | 'kind'>;
  readonly finished: Counter<'model' | 'version' | 'reason'>;
  readonly active: Gauge;

  constructor(registry: Registry) {
    const registers = [registry];
    this.timeToFirstToken = new Histogram({
      name: 'ferry_generation_time_to_first_token_seconds',
      help: 'From a generation request accepted to its first token produced (tokenisation, queueing and prefill)',
      labelNames: ['model', 'version'],
      registers,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    });
    this.tokensPerSecond = new Histogram({
      name: 'ferry_generation_tokens_per_second',
      help: 'Decode rate of each finished generation (completion tokens after the first, over the time they took)',
      labelNames: ['model', 'version'],
      registers,
      buckets: [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000],
    });
    this.tokens = new Counter({
      name: 'ferry_generation_tokens_total',
      help: 'Tokens processed by generative models, by kind (prompt or completion)',
      labelNames: ['model', 'version', 'kind'],
      registers,
    });
    this.finished = new Counter({
      name: 'ferry_generation_finished_total',
      help: 'Generations ended, by reason: stop, length, disconnected (client went away), stalled (client stopped reading), error',
      labelNames: ['model', 'version', 'reason'],
      registers,
    });
    this.active = new Gauge({
      name: 'ferry_generation_active',
      help: 'Generations running now (including paused ones)',
      registers,
    });
  }
}
