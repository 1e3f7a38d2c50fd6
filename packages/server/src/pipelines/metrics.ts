// Pipeline metrics, registered on the server's registry from here (not inside the Metrics class).
// Rows and durations count the runs this process makes; the last-success gauge is read from the
// store at scrape time, so runs made by `ferry batch run` (a CronJob, another host) show up too.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { RunStore } from './run-store.js';

export interface PipelineMetrics {
  rows: Counter<'pipeline' | 'result'>;
  runDuration: Histogram<'pipeline' | 'status'>;
  lastSuccess: Gauge<'pipeline'>;
}

export function registerPipelineMetrics(registry: Registry, names: readonly string[], runs: RunStore): PipelineMetrics {
  return {
    rows: new Counter({
      name: 'ferry_pipeline_rows_total',
      help: 'Rows handled by batch pipeline runs in this process, by result (scored, rejected)',
      labelNames: ['pipeline', 'result'] as const,
      registers: [registry],
    }),
    runDuration: new Histogram({
      name: 'ferry_pipeline_run_duration_seconds',
      help: 'Duration of batch pipeline runs made by this process, by final status',
      labelNames: ['pipeline', 'status'] as const,
      buckets: [1, 10, 60, 300, 900, 1800, 3600, 7200, 14_400, 43_200],
      registers: [registry],
    }),
    lastSuccess: new Gauge({
      name: 'ferry_pipeline_last_success_timestamp_seconds',
      help: 'When the latest completed run of each pipeline finished (Unix seconds; absent before the first)',
      labelNames: ['pipeline'] as const,
      registers: [registry],
      async collect() {
        for (const name of names) {
          const run = await runs.latestCompleted(name).catch(() => undefined);
          if (run?.finishedAt) this.set({ pipeline: name }, run.finishedAt / 1000);
        }
      },
    }),
  };
}
