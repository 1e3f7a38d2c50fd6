// The `web` section of the config: where the dashboard's build is, and how the monitoring time
// series behind its charts is sampled.
import { Type } from '@sinclair/typebox';

export const WebConfigSchema = Type.Object(
  {
    /** Serve the dashboard at `/` (its build folder must exist; otherwise `/` says how to build it). */
    dashboard: Type.Boolean({ default: true }),
    /** The dashboard's build folder; empty = `packages/dashboard/dist` beside the server package. */
    dashboardDir: Type.String({ default: '' }),
    /** Seconds between two samples of Ferry's own metrics for `/v1/metrics/timeseries`; 0 turns sampling off. */
    timeseriesIntervalSeconds: Type.Number({ minimum: 0, maximum: 3600, default: 5 }),
    /** Samples kept per series (ring buffer): 720 at 5 s is one hour. */
    timeseriesPoints: Type.Integer({ minimum: 2, maximum: 100_000, default: 720 }),
  },
  { additionalProperties: false, default: {} },
);
