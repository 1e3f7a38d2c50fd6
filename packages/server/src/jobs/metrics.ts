// The job metrics, registered on the server's registry by the jobs module itself.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { QueueLengths } from './queue-backend.js';

export class JobMetrics {
  private readonly jobs: Counter<'model' | 'result'>;
  private readonly duration: Histogram<'model' | 'state'>;

  constructor(registry: Registry, lengths: () => Promise<QueueLengths>) {
    this.jobs = new Counter({
      name: 'ferry_jobs_total',
      help: 'Asynchronous jobs by model and result: submitted, completed, failed, cancelled, retried, handed_back, duplicate_run',
      labelNames: ['model', 'result'] as const,
      registers: [registry],
    });
    this.duration = new Histogram({
      name: 'ferry_job_duration_seconds',
      help: 'Time of the run that finished a job (completed, failed or cancelled), from claim to end',
      labelNames: ['model', 'state'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900],
      registers: [registry],
    });
    new Gauge({
      name: 'ferry_job_queue_length',
      help: 'Jobs in the queue by state: waiting (runnable), delayed (retry backoff), active',
      labelNames: ['state'] as const,
      registers: [registry],
      async collect() {
        try {
          const l = await lengths();
          for (const [state, n] of Object.entries(l)) this.set({ state }, n);
        } catch {
          /* the store or Redis is down: keep the last values rather than fail the scrape */
        }
      },
    });
  }

  count(model: string, result: string): void {
    this.jobs.inc({ model, result });
  }

  finished(model: string, state: string, seconds: number): void {
    this.jobs.inc({ model, result: state });
    this.duration.observe({ model, state }, seconds);
  }
}
