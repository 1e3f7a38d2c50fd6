// Traffic decisions for a model's rollout: which version an unpinned request gets (stable or the
// sticky canary), the deprecation headers or 410 of the version it resolved to, and the shadow copy
// of sampled requests, compared off the request path so it never adds latency or fails an answer.
import { createHash } from 'node:crypto';
import { Counter, Histogram, type Registry } from 'prom-client';
import type { Logger } from 'pino';
import { FerryError } from '../errors.js';
import { MODEL_NAME, type ModelVersion, type Repository } from '../serving/repository/index.js';
import type { ModelService } from '../serving/index.js';
import type {
  ClientIdentity,
  DeprecationNotice,
  ModelRef,
  PredictRouter,
  Routed,
  ShadowCopy,
} from '../serving/predict/routing.js';
import { deprecationOf } from '../serving/repository/rollout-policy.js';
import { ShadowStats, tensorRows, type InstanceComparison, type ShadowSource } from './shadow-stats.js';

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

export class RolloutManager implements PredictRouter {
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

  constructor(
    private readonly repository: Repository,
    private readonly service: ModelService,
    registry: Registry,
    private readonly log: Logger,
    opts: RolloutOptions = {},
  ) {
    this.maxPending = opts.maxPendingShadows ?? 64;
    this.now = opts.now ?? Date.now;
    const registers = [registry];
    this.canaryRequests = new Counter({
      name: 'ferry_rollout_requests_total',
      help: 'Unpinned requests of models with a canary, by the arm they were routed to',
      labelNames: ['model', 'version', 'arm'],
      registers,
    });
    this.shadowRequests = new Counter({
      name: 'ferry_shadow_requests_total',
      help: 'Requests copied to a shadow version, by outcome (compared, error, dropped)',
      labelNames: ['model', 'version', 'result'],
      registers,
    });
    this.shadowAgreement = new Counter({
      name: 'ferry_shadow_label_agreement_total',
      help: 'Shadow instances whose label agreed (or not) with the served label',
      labelNames: ['model', 'version', 'agree'],
      registers,
    });
    this.shadowDiff = new Histogram({
      name: 'ferry_shadow_score_difference',
      help: 'Largest absolute score (or value) difference between shadow and served answer, per instance',
      labelNames: ['model', 'version'],
      buckets: [0.0001, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers,
    });
    this.shadowLatency = new Histogram({
      name: 'ferry_shadow_latency_seconds',
      help: 'Prediction latency of shadow copies and of the served answers they shadow',
      labelNames: ['model', 'version', 'role'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
  }

  /**
   * Resolves the version a request is served by. Unpinned requests (`/v1/models/m/predict`) of a
   * model with a canary go to the canary for `weight`% of clients, chosen by a hash of the client
   * (Ferry-Client-Id, else the API key, else the address). Pinned requests are never re-routed.
   */
  route(ref: ModelRef, client: ClientIdentity): Routed {
    const { model, version: ref_ } = ref;
    const pinned = ref_ !== undefined || model.includes('@');
    const entry = !pinned && MODEL_NAME.test(model) ? this.repository.get(model) : undefined;
    const canary = entry?.rollout.canary;
    let v: ModelVersion | undefined;
    let arm: 'stable' | 'canary' | undefined;
    if (entry && canary && canary.weight > 0) {
      const fromHeader = client.clientIdHeader;
      const raw = fromHeader ?? client.clientIdQuery;
      if (raw !== undefined && !CLIENT_ID.test(raw)) {
        const pointer = fromHeader !== undefined ? '/headers/ferry-client-id' : '/query/clientId';
        throw new FerryError('invalid-request', {
          detail: `${fromHeader !== undefined ? 'Ferry-Client-Id' : 'clientId'} must be 1 to 200 visible ASCII characters`,
          extra: { errors: [{ pointer, reason: 'invalid client id' }] },
        });
      }
      const id = raw ?? (client.principalId !== undefined ? `key:${client.principalId}` : `ip:${client.ip}`);
      const toCanary = canaryBucket(model, id) < canary.weight * 100;
      v = toCanary ? entry.versions.find((x) => x.version === canary.version) : undefined;
      v ??= this.repository.resolve(model);
      arm = v.version === canary.version ? 'canary' : 'stable';
      this.canaryRequests.inc({ model, version: v.version, arm });
      const c = this.canaryCounts.get(model);
      const counts = c && c.version === canary.version ? c : { stable: 0, canary: 0, version: canary.version };
      counts[arm]++;
      this.canaryCounts.set(model, counts);
    }
    v ??= this.repository.resolve(model, ref_);
    const deprecation = this.deprecationNotice(v, arm);
    return { version: v, ...(arm && { arm }), ...(deprecation && { deprecation }) };
  }

  /** Deprecation, Sunset and Link while a deprecated version serves; 410 after its sunset. */
  private deprecationNotice(v: ModelVersion, arm: 'stable' | 'canary' | undefined): DeprecationNotice | undefined {
    const entry = this.repository.get(v.name);
    const dep = entry ? deprecationOf(entry.rollout, v.version) : undefined;
    if (!dep) return undefined;
    const link = `</v1/models/${v.name}/versions/${dep.successor}>; rel="successor-version"`;
    if (dep.sunset && this.now() >= dep.sunset.getTime()) {
      throw new FerryError('version-retired', {
        detail: `${v.key} was retired on ${dep.sunset.toISOString()}; use ${v.name}@${dep.successor}${dep.match.includes('.') ? '' : ` (major ${dep.match} is retired)`}`,
        extra: { successor: dep.successor, sunset: dep.sunset.toISOString() },
        // The arm a client landed on is still told on the 410, as on any answer of a canaried model.
        headers: { ...(arm && { 'ferry-rollout': arm }), link },
      });
    }
    // RFC 9745: a structured date (@epoch-seconds); `true` when no start date is configured.
    return {
      deprecation: dep.since ? `@${Math.floor(dep.since.getTime() / 1000)}` : 'true',
      ...(dep.sunset && { sunset: dep.sunset.toUTCString() }),
      link,
    };
  }

  private statsFor(model: string, version: string): ShadowStats {
    const cur = this.shadows.get(model);
    if (cur && cur.version === version) return cur;
    const fresh = new ShadowStats(version);
    this.shadows.set(model, fresh);
    return fresh;
  }

  /**
   * Copies an answer the predict path sampled (`sampleShadow`) to the model's shadow version. Returns
   * at once; the copy runs after the response is on its way and its outcome only feeds the comparison.
   * Instances (v1 predict, SSE rows, completed jobs) are compared per prediction; v2 tensors row by
   * row: the largest absolute difference over the shared outputs, and argmax agreement on the output
   * a classification contract reads its labels from.
   */
  shadow(copy: ShadowCopy): void {
    if (copy.kind === 'instances') {
      const { served, instances, base, servedMs } = copy;
      if (served.fallback) return; // an answer from a fallback is not compared
      this.copy(served.version, servedMs, copy.source, async (sv) => {
        // noFallback: a shadow answers as itself or fails, and is kept out of the prediction log.
        const r = await this.service.predict(sv, instances, base, { noFallback: true });
        return (stats, shadowMs) => stats.record(served.predictions, r.predictions, servedMs, shadowMs);
      });
      return;
    }
    const { served, feeds, outputs, requested, servedMs } = copy;
    const post = served.manifest.postprocess as { kind?: string; output?: string } | undefined;
    const labelOutput = post?.kind === 'classification' ? post.output : undefined;
    this.copy(served, servedMs, 'infer', async (sv) => {
      const r = await this.service.runTensors(sv, feeds, requested, { shadow: false });
      return (stats, shadowMs) => stats.recordRows(tensorRows(outputs, r.outputs, labelOutput), servedMs, shadowMs);
    });
  }

  /** Whether this request of `served` is to be copied to a shadow (decided once, before it runs). */
  sampleShadow(served: ModelVersion): boolean {
    const policy = this.closed ? undefined : this.repository.get(served.name)?.rollout.shadow;
    if (!policy || policy.version === served.version || policy.sample <= 0) return false;
    return policy.sample >= 1 || Math.random() < policy.sample;
  }

  /** Counts and starts a copy that `sampleShadow` picked (the policy is read again: it may have changed since). */
  private copy(
    served: ModelVersion,
    servedMs: number,
    source: ShadowSource,
    run: (sv: ModelVersion) => Promise<(stats: ShadowStats, shadowMs: number) => InstanceComparison[]>,
  ): void {
    if (this.closed) return;
    const name = served.name;
    const policy = this.repository.get(name)?.rollout.shadow;
    if (!policy || policy.version === served.version || policy.sample <= 0) return;
    const stats = this.statsFor(name, policy.version);
    const labels = { model: name, version: policy.version };
    stats.sampled++;
    stats.bySource[source]++;
    if (this.pending >= this.maxPending) {
      stats.dropped++;
      this.shadowRequests.inc({ ...labels, result: 'dropped' });
      return;
    }
    this.pending++;
    setImmediate(() => {
      void this.runShadow(name, policy.version, servedMs, stats, run).finally(() => {
        this.pending--;
      });
    });
  }

  private async runShadow(
    name: string,
    version: string,
    servedMs: number,
    stats: ShadowStats,
    run: (sv: ModelVersion) => Promise<(stats: ShadowStats, shadowMs: number) => InstanceComparison[]>,
  ): Promise<void> {
    const labels = { model: name, version };
    const sv = this.repository.get(name)?.versions.find((x) => x.version === version);
    if (this.closed || !sv) return;
    const t0 = performance.now();
    try {
      const record = await run(sv);
      const shadowMs = performance.now() - t0;
      for (const o of record(stats, shadowMs)) {
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
      canary: p.canary
        ? {
            version: p.canary.version,
            weight: p.canary.weight,
            requests:
              counts && counts.version === p.canary.version
                ? { stable: counts.stable, canary: counts.canary }
                : { stable: 0, canary: 0 },
          }
        : null,
      shadow: p.shadow
        ? {
            sample: p.shadow.sample,
            ...(shadow && shadow.version === p.shadow.version
              ? shadow.toJSON()
              : new ShadowStats(p.shadow.version).toJSON()),
          }
        : null,
      deprecated: p.deprecated.map((d) => ({
        match: d.match,
        successor: d.successor,
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
