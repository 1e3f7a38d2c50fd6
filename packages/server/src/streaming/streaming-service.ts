// The WebSocket sessions' shared state, built once by app/: session limits, open sessions, and one
// sequence batcher per streaming version. Transport-free; http/plugins/stream.ts speaks WebSocket over it.
import type { Registry } from 'prom-client';
import type { ModelVersion, Repository } from '../serving/repository/index.js';
import type { ModelService } from '../serving/index.js';
import type { FerryConfig } from '../config/index.js';
import type { AudioSession } from './audio-session.js';
import { SequenceBatcher } from '../serving/batching/sequence-batcher.js';
import { SessionLimits } from './session-limits.js';
import { streamMetrics, type StreamMetrics } from './stream-metrics.js';
import { streamSpecOf, type StreamSpec } from './stream-spec.js';

export interface StreamingService {
  readonly limits: SessionLimits;
  /** Open sessions, for tests and diagnostics. */
  readonly sessions: Set<AudioSession>;
  batcherFor(key: string): SequenceBatcher | undefined;
  /** The version's streaming mode (undefined: none); versions added by a reload are read on first use. */
  specOf(v: ModelVersion): StreamSpec | undefined;
  /** The sequence batcher of a version, created on first use. */
  batcherOf(v: ModelVersion, spec: StreamSpec): SequenceBatcher;
  readonly metrics: StreamMetrics;
  readonly config: FerryConfig['streaming'];
}

export interface StreamingServiceDeps {
  config: FerryConfig['streaming'];
  repository: Repository;
  service: ModelService;
  registry: Registry;
}

/**
 * The WebSocket sessions' shared state: session limits, the open sessions and one sequence batcher
 * per version. Every version's streaming block is checked here, at start (a bad block refuses to start).
 */
export function createStreamingService(deps: StreamingServiceDeps): StreamingService {
  const cfg = deps.config;
  const specs = new Map<string, StreamSpec | undefined>();
  for (const v of deps.repository.allVersions()) specs.set(v.key, streamSpecOf(v, cfg));
  const metrics = streamMetrics(deps.registry);
  const batchers = new Map<string, SequenceBatcher>();
  return {
    limits: new SessionLimits(cfg.maxSessions, cfg.maxSessionsPerModel),
    sessions: new Set(),
    metrics,
    config: cfg,
    batcherFor: (k) => batchers.get(k),
    specOf(v) {
      if (!specs.has(v.key)) specs.set(v.key, streamSpecOf(v, cfg));
      return specs.get(v.key);
    },
    batcherOf(v, spec) {
      let b = batchers.get(v.key);
      if (!b) {
        const labels = { model: v.name, version: v.version };
        b = new SequenceBatcher(
          spec,
          async (feeds) => (await deps.service.runTensors(v, feeds, undefined, { shadow: false })).outputs,
          (rows) => {
            metrics.batchSize.observe(labels, rows);
            metrics.frames.inc(labels, rows);
          },
        );
        batchers.set(v.key, b);
      }
      return b;
    },
  };
}
