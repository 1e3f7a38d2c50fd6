// Prometheus metrics. One registry per server instance (tests run several in one process); names
// are `ferry_*` with base units, and labels never carry user input, so cardinality stays bounded.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { HistogramTallies } from './histogram-tally.js';
import { Tallies } from './tally.js';
import { TracedHistogram } from './traced-histogram.js';

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class Metrics {
  readonly registry = new Registry();
  /** Hot-path counts (requests, batch placement), added to their counters when the registry is read. */
  readonly tallies = new Tallies();
  /** Hot-path observations (request, inference and queue durations, batch sizes), added the same way. */
  readonly histogramTallies = new HistogramTallies();

  readonly requests = new Counter({
    name: 'ferry_requests_total',
    help: 'Inference requests by route, model, version and HTTP status',
    labelNames: ['route', 'model', 'version', 'status'] as const,
    registers: [this.registry],
    collect: this.tallies.flush,
  });

  /** With exemplars (trace ids) in the OpenMetrics exposition when tracing is on. */
  readonly requestDuration = new TracedHistogram(this.registry, {
    name: 'ferry_request_duration_seconds',
    help: 'Inference request latency, from body parsed to response ready',
    labelNames: ['route', 'model', 'version'] as const,
    buckets: LATENCY_BUCKETS,
    collect: this.histogramTallies.flush,
  });

  /** With exemplars (trace ids) in the OpenMetrics exposition when tracing is on. */
  readonly inferenceDuration = new TracedHistogram(this.registry, {
    name: 'ferry_inference_duration_seconds',
    help: 'Time inside ONNX Runtime session.run, per call',
    labelNames: ['model', 'version'] as const,
    buckets: LATENCY_BUCKETS,
    collect: this.histogramTallies.flush,
  });

  readonly modelLoad = new Gauge({
    name: 'ferry_model_load_seconds',
    help: 'Time to load and warm a model version',
    labelNames: ['model', 'version', 'phase'] as const,
    registers: [this.registry],
  });

  readonly modelReady = new Gauge({
    name: 'ferry_model_ready',
    help: '1 when the model version is loaded and warmed',
    labelNames: ['model', 'version'] as const,
    registers: [this.registry],
  });

  readonly queueDuration = new Histogram({
    name: 'ferry_queue_duration_seconds',
    help: "Time a request waited in its model's batching queue",
    labelNames: ['model', 'version'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
    collect: this.histogramTallies.flush,
  });

  readonly batchSize = new Histogram({
    name: 'ferry_batch_size',
    help: 'Rows per inference batch',
    labelNames: ['model', 'version'] as const,
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
    registers: [this.registry],
    collect: this.histogramTallies.flush,
  });

  /** Where batches ran: `inline` on the main thread (an idle `placement: auto` model, or `inline`), else `worker`. */
  readonly batchPlacement = new Counter({
    name: 'ferry_batches_total',
    help: 'Inference batches run, by where: placement="inline" on the main thread, "worker" in a worker thread',
    labelNames: ['model', 'version', 'placement'] as const,
    registers: [this.registry],
    collect: this.tallies.flush,
  });

  /** Ragged batches: tokens run (rows × padded length) and real tokens; their ratio is the padding overhead. */
  readonly batchTokens = new Counter({
    name: 'ferry_batch_tokens_total',
    help: 'Tokens in ragged (padded) batches: kind="padded" counts rows x padded length, kind="real" the real tokens',
    labelNames: ['model', 'version', 'kind'] as const,
    registers: [this.registry],
  });

  /** Read at scrape time (set by the model service), so the hot path writes nothing for this gauge. */
  queueDepthSource: (() => Iterable<readonly [{ model: string; version: string }, number]>) | undefined;

  readonly queueDepth: Gauge<'model' | 'version'> = new Gauge({
    name: 'ferry_queue_depth',
    help: "Requests waiting in a model's batching queue",
    labelNames: ['model', 'version'] as const,
    registers: [this.registry],
    collect: () => {
      for (const [labels, depth] of this.queueDepthSource?.() ?? []) this.queueDepth.set(labels, depth);
    },
  });

  readonly cacheRequests = new Counter({
    name: 'ferry_cache_requests_total',
    help: 'Prediction cache lookups per instance: hit, miss or error (cache unavailable, bypassed)',
    labelNames: ['model', 'version', 'result'] as const,
    registers: [this.registry],
  });

  readonly answerMemoHits = new Counter({
    name: 'ferry_answer_memo_hits_total',
    help: 'Requests answered whole from the answer memo (a body sent before to a caching model), per model and version',
    labelNames: ['model', 'version'] as const,
    registers: [this.registry],
  });

  readonly fallbacks = new Counter({
    name: 'ferry_fallbacks_total',
    help: 'Requests answered by a fallback, by reason (timeout, error, circuit-open) and policy',
    labelNames: ['model', 'version', 'reason', 'policy'] as const,
    registers: [this.registry],
  });

  readonly breakerState = new Gauge({
    name: 'ferry_breaker_state',
    help: 'Circuit breaker state per model version: 0 closed, 1 half-open, 2 open',
    labelNames: ['model', 'version'] as const,
    registers: [this.registry],
  });

  readonly shed = new Counter({
    name: 'ferry_shed_requests_total',
    help: "Requests refused at once with 503 because the model's queue was full or they waited too long",
    labelNames: ['model', 'version'] as const,
    registers: [this.registry],
  });

  readonly predictionLogEntries = new Counter({
    name: 'ferry_prediction_log_entries_total',
    help: 'Prediction log entries: written to the store, dropped (store slow or down, buffer full) or sampled out',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly driftScore = new Gauge({
    name: 'ferry_drift_score',
    help: 'Drift score per input feature and the prediction: the p-value or distance of the test Evidently would choose',
    labelNames: ['model', 'version', 'column', 'test'] as const,
    registers: [this.registry],
  });

  readonly driftDetected = new Gauge({
    name: 'ferry_drift_detected',
    help: '1 when the column drifted in the last evaluated window',
    labelNames: ['model', 'version', 'column'] as const,
    registers: [this.registry],
  });

  readonly datasetDrift = new Gauge({
    name: 'ferry_dataset_drift',
    help: '1 when the share of drifted columns reached monitoring.datasetDriftShare',
    labelNames: ['model', 'version'] as const,
    registers: [this.registry],
  });

  readonly alerts = new Counter({
    name: 'ferry_alerts_total',
    help: 'Alert notifications by rule and outcome (delivered, failed after retries, dropped: queue full)',
    labelNames: ['rule', 'status', 'result'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'ferry_', eventLoopMonitoringPrecision: 10 });
  }
}
