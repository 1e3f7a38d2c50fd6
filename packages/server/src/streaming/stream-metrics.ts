// Streaming's Prometheus series, registered on the server's registry from here so the Metrics class
// stays shared and small.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export interface StreamMetrics {
  sessions: Gauge<'model' | 'version'>;
  closed: Counter<'model' | 'version' | 'code'>;
  frames: Counter<'model' | 'version'>;
  batchSize: Histogram<'model' | 'version'>;
}

export function streamMetrics(registry: Registry): StreamMetrics {
  return {
    sessions: new Gauge({
      name: 'ferry_stream_sessions',
      help: 'Open streaming sessions',
      labelNames: ['model', 'version'],
      registers: [registry],
    }),
    closed: new Counter({
      name: 'ferry_stream_sessions_closed_total',
      help: 'Streaming sessions closed, by WebSocket close code',
      labelNames: ['model', 'version', 'code'],
      registers: [registry],
    }),
    frames: new Counter({
      name: 'ferry_stream_frames_total',
      help: 'Frames run for streaming sessions',
      labelNames: ['model', 'version'],
      registers: [registry],
    }),
    batchSize: new Histogram({
      name: 'ferry_stream_batch_size',
      help: 'Sessions whose frames ran in one inference (stateful sequence batching)',
      labelNames: ['model', 'version'],
      buckets: [1, 2, 4, 8, 16, 32, 64, 128],
      registers: [registry],
    }),
  };
}
