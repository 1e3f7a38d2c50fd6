// Graceful-shutdown settings, for the server's one config schema (`lifecycle:` in config/schema.ts).
// The overall deadline is `server.shutdownGraceMs`: the process exits before it, whatever is left.
import { Type, type Static } from '@sinclair/typebox';

export const LifecycleConfigSchema = Type.Object(
  {
    /**
     * After SIGTERM, keep serving this long with /readyz already 503, so load balancers (Kubernetes
     * endpoints, nginx health checks) stop routing here before the listener closes. Milliseconds.
     */
    drainDelayMs: Type.Integer({ minimum: 0, default: 0 }),
    /** How long open streams (SSE, WebSocket) may run on after drain starts before they are closed with a reason.
     * Milliseconds.
     */
    streamGraceMs: Type.Integer({ minimum: 0, default: 5_000 }),
  },
  { additionalProperties: false, default: {} },
);

export type LifecycleConfig = Static<typeof LifecycleConfigSchema>;
