// Traffic decisions for a model's rollout: which version an unpinned request gets (stable or the
// sticky canary), the deprecation headers or 410 of the version it resolved to, and the shadow copy
// of sampled requests, compared off the request path so it never adds latency or fails an answer.
import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Counter, Histogram, type Registry } from 'prom-client';
import type { Logger } from 'pino';
import { FerryError } from '../errors.js';
import { MODEL_NAME, type ModelVersion, type Repository } from '../repository/index.js';
import type { ModelService, PredictResult } from '../runtime/index.js';
import { deprecationOf } from './policy.js';
import { ShadowStats } from './shadow-stats.js';

const CLIENT_ID = /^[\x21-\x7e]{1,200}$/;

/** Stable bucket 0..9999 of a client for a model: the same client lands on the same arm every time. */
export function canaryBucket(model: string, client: string): number {
  return createHash('sha256').update(`${model}\0${client}`).digest().readUInt32BE(0) % 10_000;
}

export interface RolloutOptions {
  /** Shadow copies waiting or running at once; beyond it copies are dropped (counted), never queued. */
  maxPendingShadows?: number;
  now?: () => number;
}

export class RolloutManager {
  private readonly shadows = new Map<string, ShadowStats>();
  private readonly canaryCounts = new Map<string, { stable: number; canary: number; version: string }>();
  private pending = 0;
  private readonly maxPending: number;
  private readonly now: () => number;
  private readonly canaryRequests: Counter<'model' | 'version' | 'arm'>;
  private readonly shadowRequests: Counter<'model' | 'version' | 'result'>;
  private readonly shadowAgreement: Counter<'model' | 'version' | 'agree'>;
  private readonly shadowDiff: Histogram<'model' | 'version'>;
  private readonly shadowLatency: Histogram<'model' | 'version' | 'role'>;
  private closed = false;

  constructor(private readonly repository: Repository, private readonly service: ModelService, registry: Registry, private readonly log: Logger, opts: RolloutOptions = {}) {
    this.maxPending = opts.maxPendingShadows ?? 64;
    this.now = opts.now ?? Date.now;
    const registers = [registry];
    this.canaryRequests = new Counter({ name: 'ferry_rollout_requests_total', help: 'Unpinned requests of models with a canary, by the arm they were routed to', labelNames: ['model', 'version', 'arm'], registers });
    this.shadowRequests = new Counter({ name: 'ferry_shadow_requests_total', help: 'Requests copied to a shadow version, by outcome (compared, error, dropped)', labelNames: ['model', 'version', 'result'], registers });
    this.shadowAgreement = new Counter({ name: 'ferry_shadow_label_agreement_total', help: 'Shadow instances whose label agreed (or not) with the served label', labelNames: ['model', 'version', 'agree'], registers });
    this.shadowDiff = new Histogram({ name: 'ferry_shadow_score_difference', help: 'Largest absolute score (or value) difference between shadow and served answer, per instance', labelNames: ['model', 'version'], buckets: [0.0001, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1], registers });
    this.shadowLatency = new Histogram({ name: 'ferry_shadow_latency_seconds', help: 'Prediction latency of shadow copies and of the served answers they shadow', labelNames: ['model', 'version', 'role'], buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers });
  }

  /**
   * Resolves the version a request is served by. Unpinned requests (`/v1/models/m/predict`) of a
   * model with a canary go to the canary for `weight`% of clients, chosen by a hash of the client
   * (Ferry-Client-Id, else the API key, else the address). Pinned requests are never re-routed.
   */
  resolve(req: FastifyRequest, reply: FastifyReply, model: string, ref?: string): ModelVersion {
    const pinned = ref !== undefined || model.includes('@');
    const entry = !pinned && MODEL_NAME.test(model) ? this.repository.get(model) : undefined;
    const canary = entry?.rollout.canary;
    let v: ModelVersion | undefined;
    if (entry && canary && canary.weight > 0) {
      const header = req.headers['ferry-client-id'];
      const raw = Array.isArray(header) ? header[0] : header;
      if (raw !== undefined && !CLIENT_ID.test(raw)) {
        throw new FerryError('invalid-request', { detail: 'Ferry-Client-Id must be 1 to 200 visible ASCII characters', extra: { errors: [{ pointer: '/headers/ferry-client-id', reason: 'invalid client id' }] } });
      }
      const client = raw ?? (req.ferryPrincipal ? `key:${req.ferryPrincipal.id}` : `ip:${req.ip}`);
      const toCanary = canaryBucket(model, client) < canary.weight * 100;
      v = toCanary ? entry.versions.find((x) => x.version === canary.version) : undefined;
      v ??= this.repository.resolve(model);
      const arm = v.version === canary.version ? 'canary' : 'stable';
      this.canaryRequests.inc({ model, version: v.version, arm });
      const c = this.canaryCounts.get(model);
      const counts = c && c.version === canary.version ? c : { stable: 0, canary: 0, version: canary.version };
      counts[arm]++;
      this.canaryCounts.set(model, counts);
      reply.header('ferry-rollout', arm);
    }
    v ??= this.repository.resolve(model, ref);
    this.applyDeprecation(v, reply);
    return v;
  }

  /** Deprecation, Sunset and Link headers while a deprecated version serves; 410 after its sunset. */
  applyDeprecation(v: ModelVersion, reply: FastifyReply): void {
    const entry = this.repository.get(v.name);
    const dep = entry ? deprecationOf(entry.rollout, v.version) : undefined;
    if (!dep) return;
    const link = `</v1/models/${v.name}/versions/${dep.successor}>; rel="successor-version"`;
    if (dep.sunset && this.now() >= dep.sunset.getTime()) {
      throw new FerryError('version-retired', {
        detail: `${v.key} was retired on ${dep.sunset.toISOString()}; use ${v.name}@${dep.successor}${dep.match.includes('.') ? '' : ` (major ${dep.match} is retired)`}`,
        extra: { successor: dep.successor, sunset: dep.sunset.toISOString() },
        headers: { link },
      });
    }
    // RFC 9745: a structured date (@epoch-seconds); `true` when no start date is configured.
    reply.header('deprecation', dep.since ? `@${Math.floor(dep.since.getTime() / 1000)}` : 'true');
    if (dep.sunset) reply.header('sunset', dep.sunset.toUTCString());
    reply.header('link', link);
  }

  private statsFor(model: string, version: string): ShadowStats {
    const cur = this.shadows.get(model);
    if (cur && cur.version === version) return cur;
    const fresh = new ShadowStats(version);
    this.shadows.set(model, fresh);
    return fresh;
  }

  /**
   * After an answer is ready: copies a sample of requests to the model's shadow version. Returns at
   * once; the copy runs after the response is on its way and its outcome only feeds the comparison.
   */
  shadow(served: PredictResult, instances: unknown, base: string, servedMs: number): void {
    if (this.closed || served.fallback) return;
    const name = served.version.name;
    const policy = this.repository.get(name)?.rollout.shadow;
    if (!policy || policy.version === served.version.version || policy.sample <= 0) return;
    if (policy.sample < 1 && Math.random() >= policy.sample) return;
    const stats = this.statsFor(name, policy.version);
    const labels = { model: name, version: policy.version };
    stats.sampled++;
    if (this.pending >= this.maxPending) {
      stats.dropped++;
      this.shadowRequests.inc({ ...labels, result: 'dropped' });
      return;
    }
    this.pending++;
    setImmediate(() => {
      void this.runShadow(name, policy.version, served, instances, base, servedMs, stats).finally(() => { this.pending--; });
    });
  }

  private async runShadow(name: string, version: string, served: PredictResult, instances: unknown, base: string, servedMs: number, stats: ShadowStats): Promise<void> {
    const labels = { model: name, version };
    const sv = this.repository.get(name)?.versions.find((x) => x.version === version);
    if (this.closed || !sv) return;
    const t0 = performance.now();
    try {
      // noFallback: a shadow answers as itself or fails, and is kept out of the prediction log.
      const r = await this.service.predict(sv, instances, base, { noFallback: true });
      const shadowMs = performance.now() - t0;
      for (const o of stats.record(served.predictions, r.predictions, servedMs, shadowMs)) {
        if (o.agree !== undefined) this.shadowAgreement.inc({ ...labels, agree: String(o.agree) });
        if (o.diff !== undefined && Number.isFinite(o.diff)) this.shadowDiff.observe(labels, o.diff);
      }
      this.shadowLatency.observe({ ...labels, role: 'served' }, servedMs / 1000);
      this.shadowLatency.observe({ ...labels, role: 'shadow' }, shadowMs / 1000);
      this.shadowRequests.inc({ ...labels, result: 'compared' });
    } catch (e) {
      stats.errors++;
      stats.lastError = e instanceof FerryError ? `${e.code}: ${e.detail}`.slice(0, 300) : 'internal error';
      this.shadowRequests.inc({ ...labels, result: 'error' });
      this.log.debug({ model: `${name}@${version}`, err: stats.lastError }, 'shadow prediction failed');
    }
  }

  /** GET /v1/models/{model}/rollout */
  status(model: string) {
    const entry = this.repository.get(model);
    if (!entry) this.repository.resolve(model); // throws the usual 404 with the available models
    const e = entry!;
    const p = e.rollout;
    const now = this.now();
    const counts = this.canaryCounts.get(model);
    const shadow = p.shadow ? this.shadows.get(model) : undefined;
    return {
      model,
      defaultVersion: this.repository.resolve(model).version,
      aliases: e.aliases,
      canary: p.canary ? {
        version: p.canary.version, weight: p.canary.weight,
        requests: counts && counts.version === p.canary.version ? { stable: counts.stable, canary: counts.canary } : { stable: 0, canary: 0 },
      } : null,
      shadow: p.shadow ? { sample: p.shadow.sample, ...(shadow && shadow.version === p.shadow.version ? shadow.toJSON() : new ShadowStats(p.shadow.version).toJSON()) } : null,
      deprecated: p.deprecated.map((d) => ({
        match: d.match, successor: d.successor,
        ...(d.since && { since: d.since.toISOString() }),
        ...(d.sunset && { sunset: d.sunset.toISOString() }),
        retired: d.sunset !== undefined && now >= d.sunset.getTime(),
      })),
    };
  }

  /** Waits (bounded) for shadow copies in progress, so shutdown does not cut them mid-run. */
  async close(graceMs = 5_000): Promise<void> {
    this.closed = true;
    const until = performance.now() + graceMs;
    while (this.pending > 0 && performance.now() < until) await new Promise((r) => setTimeout(r, 10));
  }
}
