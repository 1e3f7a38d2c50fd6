// The alert rules' settings (`alerts:` in ferry.config.yaml); monitoring/alerting.ts evaluates them.
import { Type, type Static } from '@sinclair/typebox';

export const AlertRuleSchema = Type.Object(
  {
    name: Type.String({ minLength: 1 }),
    kind: Type.Union([
      Type.Literal('drift'),
      Type.Literal('latency'),
      Type.Literal('error-rate'),
      Type.Literal('fallback-rate'),
    ]),
    /** Only this model (all models when absent). */
    model: Type.Optional(Type.String()),
    /** latency: ms (default: the model's sla.p99Ms); error-rate, fallback-rate: a share 0..1. Unused for drift. */
    threshold: Type.Optional(Type.Number({ minimum: 0 })),
    /** The condition must hold this long before the alert fires. */
    forSeconds: Type.Optional(Type.Number({ minimum: 0 })),
  },
  { additionalProperties: false },
);

export const AlertsConfigSchema = Type.Object(
  {
    /** Where alerts are posted; empty = alerts off. */
    webhookUrl: Type.String({ default: '' }),
    /** Standard Webhooks secret (`whsec_<base64>`, or raw key text) signing each alert; empty = unsigned. */
    secret: Type.String({ default: '' }),
    /** Secrets being rotated out: each also signs every alert until removed (docs/webhooks.md). */
    previousSecrets: Type.Array(Type.String({ minLength: 1 }), { default: [] }),
    intervalSeconds: Type.Number({ exclusiveMinimum: 0, default: 60 }),
    timeoutMs: Type.Integer({ minimum: 1, default: 5000 }),
    maxAttempts: Type.Integer({ minimum: 1, default: 5 }),
    backoffMs: Type.Integer({ minimum: 1, default: 500 }),
    /** Notifications waiting for delivery at most; beyond, new ones are dropped and counted. */
    maxQueue: Type.Integer({ minimum: 1, default: 1000 }),
    rules: Type.Array(AlertRuleSchema, { default: [] }),
  },
  { additionalProperties: false, default: {} },
);

export type AlertsConfig = Static<typeof AlertsConfigSchema>;
export type AlertRule = Static<typeof AlertRuleSchema>;
