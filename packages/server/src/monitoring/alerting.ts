// Alerts: rules over per-version observations (drift, p99 latency over the SLA, error rate,
// fallback rate) with hysteresis — one `firing` notification when a condition starts, one
// `resolved` when it ends — posted as JSON to a webhook, signed by Standard Webhooks, retried with
// exponential backoff. Delivery runs in the background from a bounded queue: evaluating never waits.
// With tracing on, each notification's delivery is a trace of its own (an alert belongs to no request),
// and its webhook carries that trace's `traceparent`, as job callbacks carry theirs.
import { createHash } from 'node:crypto';
import { endClientSpan, startClientSpan, traceHeaders } from '../telemetry/index.js';
import { webhookSigner, type WebhookSigner } from '../webhooks/index.js';
import type { AlertRule, AlertsConfig } from '../config/schemas/alerts.js';
import type { Logger } from 'pino';

export { AlertRuleSchema, AlertsConfigSchema, type AlertRule, type AlertsConfig } from '../config/schemas/alerts.js';

export interface AlertObservation {
  model: string;
  version: string;
  drift?: { datasetDrift: boolean; share: number; driftedColumns: string[] };
  p99Ms?: number;
  slaP99Ms?: number;
  errorRate?: number;
  fallbackRate?: number;
}

export interface AlertNotification {
  status: 'firing' | 'resolved';
  rule: string;
  kind: AlertRule['kind'];
  model: string;
  version: string;
  value: number | string[] | null;
  threshold: number | null;
  startsAt: string;
  endsAt?: string;
  /** Stable per rule and model version: pairs a `resolved` with its `firing`. */
  fingerprint: string;
}

export interface AlertHooks {
  onDelivered?(n: AlertNotification): void;
  onFailed?(n: AlertNotification, reason: string): void;
  onDropped?(n: AlertNotification): void;
}

interface Episode {
  since: number;
  firing: boolean;
}

/** What a rule sees for one version: the value, the threshold, and whether the condition holds. */
function check(
  rule: AlertRule,
  o: AlertObservation,
): { holds: boolean; value: number | string[] | null; threshold: number | null } | undefined {
  switch (rule.kind) {
    case 'drift':
      return o.drift ? { holds: o.drift.datasetDrift, value: o.drift.driftedColumns, threshold: null } : undefined;
    case 'latency': {
      const t = rule.threshold ?? o.slaP99Ms;
      return o.p99Ms !== undefined && t !== undefined
        ? { holds: o.p99Ms > t, value: o.p99Ms, threshold: t }
        : undefined;
    }
    case 'error-rate':
      return o.errorRate !== undefined
        ? { holds: o.errorRate > (rule.threshold ?? 0.05), value: o.errorRate, threshold: rule.threshold ?? 0.05 }
        : undefined;
    case 'fallback-rate':
      return o.fallbackRate !== undefined
        ? { holds: o.fallbackRate > (rule.threshold ?? 0.05), value: o.fallbackRate, threshold: rule.threshold ?? 0.05 }
        : undefined;
  }
}

export class AlertManager {
  private readonly episodes = new Map<string, Episode>();
  private readonly queue: AlertNotification[] = [];
  private delivering = false;
  private closed = false;
  private readonly timers = new Set<NodeJS.Timeout>();

  private readonly signer: WebhookSigner | undefined;

  constructor(
    private readonly cfg: AlertsConfig,
    private readonly hooks: AlertHooks = {},
    private readonly log?: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.signer = webhookSigner([cfg.secret, ...(cfg.previousSecrets ?? [])]);
  }

  get pending(): number {
    return this.queue.length;
  }

  /** Applies every rule to the observations; queues firing/resolved notifications. Never waits for delivery. */
  evaluate(observations: readonly AlertObservation[]): AlertNotification[] {
    const sent: AlertNotification[] = [];
    const t = this.now();
    for (const rule of this.cfg.rules) {
      for (const o of observations) {
        if (rule.model !== undefined && rule.model !== o.model) continue;
        const c = check(rule, o);
        if (!c) continue;
        const fingerprint = `${rule.name}|${o.model}@${o.version}`;
        const ep = this.episodes.get(fingerprint);
        const base = {
          rule: rule.name,
          kind: rule.kind,
          model: o.model,
          version: o.version,
          value: c.value,
          threshold: c.threshold,
          fingerprint,
        };
        if (c.holds) {
          const episode = ep ?? { since: t, firing: false };
          this.episodes.set(fingerprint, episode);
          if (!episode.firing && t - episode.since >= (rule.forSeconds ?? 0) * 1000) {
            episode.firing = true;
            sent.push({ ...base, status: 'firing', startsAt: new Date(episode.since).toISOString() });
          }
        } else if (ep) {
          this.episodes.delete(fingerprint);
          if (ep.firing)
            sent.push({
              ...base,
              status: 'resolved',
              startsAt: new Date(ep.since).toISOString(),
              endsAt: new Date(t).toISOString(),
            });
        }
      }
    }
    for (const n of sent) this.enqueue(n);
    return sent;
  }

  private enqueue(n: AlertNotification): void {
    if (!this.cfg.webhookUrl) return;
    if (this.queue.length >= this.cfg.maxQueue) {
      this.hooks.onDropped?.(n);
      return;
    }
    this.queue.push(n);
    void this.drain();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        resolve();
      }, ms);
      timer.unref();
      this.timers.add(timer);
    });
  }

  /** Delivers queued notifications in order, one at a time, each with retries. */
  private async drain(): Promise<void> {
    if (this.delivering) return;
    this.delivering = true;
    try {
      while (this.queue.length && !this.closed) {
        const n = this.queue.shift()!;
        await this.deliver(n);
      }
    } finally {
      this.delivering = false;
    }
  }

  private async deliver(n: AlertNotification): Promise<void> {
    const body = JSON.stringify(n);
    // One message id for every attempt of this notification: receivers drop the duplicates of a retry.
    const id = `alert_${createHash('sha256').update(`${n.fingerprint}|${n.status}|${n.startsAt}`).digest('hex').slice(0, 32)}`;
    // One span for the notification, every attempt inside it (undefined with tracing off).
    const span = startClientSpan(
      'ferry.alert.deliver',
      {
        'ferry.alert.rule': n.rule,
        'ferry.alert.kind': n.kind,
        'ferry.alert.status': n.status,
        'ferry.model': n.model,
        'ferry.model_version': n.version,
        'ferry.alert.webhook_id': id,
      },
      { root: true },
    );
    const traceparent = traceHeaders(span?.context);
    let reason = '';
    let attempts = 0;
    let status: number | undefined;
    for (let attempt = 1; attempt <= this.cfg.maxAttempts && !this.closed; attempt++) {
      attempts = attempt;
      try {
        const res = await fetch(this.cfg.webhookUrl, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            ...this.signer?.(id, body),
            ...traceparent,
          },
          body,
          signal: AbortSignal.timeout(this.cfg.timeoutMs),
        });
        await res.arrayBuffer().catch(() => undefined);
        status = res.status;
        if (res.ok) {
          endClientSpan(span?.span, { 'ferry.alert.attempts': attempt, 'http.response.status_code': res.status });
          this.hooks.onDelivered?.(n);
          return;
        }
        reason = `HTTP ${res.status}`;
        // A 4xx will not improve with retries (bad URL, signature refused): give up at once.
        if (res.status < 500 && res.status !== 429) break;
      } catch (e) {
        reason = (e as Error).message;
      }
      if (attempt < this.cfg.maxAttempts) await this.sleep(this.cfg.backoffMs * 2 ** (attempt - 1));
    }
    endClientSpan(
      span?.span,
      { 'ferry.alert.attempts': attempts, ...(status !== undefined && { 'http.response.status_code': status }) },
      new Error(`alert not delivered: ${reason || 'closed'}`),
    );
    this.log?.warn({ rule: n.rule, model: n.model, reason }, 'alert not delivered');
    this.hooks.onFailed?.(n, reason);
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}
