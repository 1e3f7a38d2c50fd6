// Drift of live traffic against each version's reference data: the logged inputs of a recent window
// and the predictions made for them, compared column by column with Evidently's default tests.
// Reports are served at /v1/models/{model}/drift, evaluated on a schedule, and exported as gauges.
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Feature } from '@ferry/core';
import type { FerryConfig } from '../config/index.js';
import type { ModelVersion, Repository } from '../serving/repository/index.js';
import {
  columnsFromRecords,
  detectDrift,
  readTable,
  type Column,
  type DriftOptions,
  type DriftReport,
} from './drift/index.js';
import type { Metrics } from '../metrics/metrics.js';
import type { PredictionLog } from './prediction-log/index.js';

/** The column holding the model's answer: its label for classifiers, its value for regressions. */
export const PREDICTION_COLUMN = 'prediction';

export interface DriftReportDocument {
  model: string;
  version: string;
  window: { seconds: number; since: string; until: string };
  reference: { file: string; rows: number };
  current: { rows: number };
  /** `ok` with a verdict, or `insufficient-data` when the window holds too few predictions. */
  status: 'ok' | 'insufficient-data';
  detail?: string;
  columns: DriftReport['columns'];
  dataset: DriftReport['dataset'] | null;
  evaluatedAt: string;
}

interface Schema {
  numerical: string[];
  categorical: string[];
}

/** Which columns are tested, and how, from the contract: numbers numerically, categories and booleans by counts. */
function schemaOf(v: ModelVersion): Schema {
  const numerical: string[] = [];
  const categorical: string[] = [];
  for (const f of v.manifest.inputs as Feature[]) {
    if (f.type === 'number' || f.type === 'integer') numerical.push(f.name);
    else if (f.type === 'category' || f.type === 'boolean') categorical.push(f.name);
  }
  const post = v.manifest.postprocess;
  if (post?.kind === 'classification') categorical.push(PREDICTION_COLUMN);
  else if (post?.kind === 'regression') numerical.push(PREDICTION_COLUMN);
  return { numerical, categorical };
}

function predictionValue(output: unknown): unknown {
  if (output && typeof output === 'object') {
    const o = output as { label?: unknown; value?: unknown };
    if (o.label !== undefined) return o.label;
    if (typeof o.value === 'number') return o.value;
  }
  return null;
}

export class DriftMonitor {
  private readonly references = new Map<string, Promise<Column[]>>();
  /** The last verdict per version key, for the alert rules. */
  readonly latest = new Map<string, DriftReportDocument>();
  private timer: NodeJS.Timeout | undefined;
  private running = false;

  constructor(
    private readonly cfg: FerryConfig,
    private readonly repository: Repository,
    private readonly predictionLog: PredictionLog | undefined,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  /** Versions that ship reference data (the only ones drift can be measured for). */
  monitored(): ModelVersion[] {
    return this.repository.allVersions().filter((v) => v.manifest.reference !== undefined && !v.manifest.pipeline);
  }

  private reference(v: ModelVersion): Promise<Column[]> {
    let r = this.references.get(v.key);
    if (!r) {
      r = readTable(join(v.dir, v.manifest.reference!));
      r.catch(() => this.references.delete(v.key));
      this.references.set(v.key, r);
    }
    return r;
  }

  async report(v: ModelVersion, windowSeconds = this.cfg.monitoring.driftWindowSeconds): Promise<DriftReportDocument> {
    const until = Date.now();
    const since = until - windowSeconds * 1000;
    const base = {
      model: v.name,
      version: v.version,
      window: { seconds: windowSeconds, since: new Date(since).toISOString(), until: new Date(until).toISOString() },
      evaluatedAt: new Date(until).toISOString(),
    };
    const schema = schemaOf(v);
    const fields = [...schema.numerical, ...schema.categorical];
    const refColumns = (await this.reference(v)).filter((c) => fields.includes(c.name));
    const reference = { file: v.manifest.reference!, rows: refColumns[0]?.values.length ?? 0 };
    if (!this.predictionLog) {
      return {
        ...base,
        reference,
        current: { rows: 0 },
        status: 'insufficient-data',
        detail: 'the prediction log is disabled (predictionLog.enabled)',
        columns: [],
        dataset: null,
      };
    }
    await this.predictionLog.flush();
    // The newest 20,000 predictions of the window: plenty for the tests, and a bounded read (SQLite
    // reads run on the main thread).
    const rows = await this.predictionLog.query({
      model: v.name,
      version: v.version,
      since,
      until: until + 1,
      limit: 20_000,
    });
    const records = rows.map((r) => ({
      ...(r.input as Record<string, unknown>),
      [PREDICTION_COLUMN]: predictionValue(r.output),
    }));
    if (records.length < this.cfg.monitoring.driftMinSamples) {
      return {
        ...base,
        reference,
        current: { rows: records.length },
        status: 'insufficient-data',
        detail: `${records.length} logged predictions in the window; at least ${this.cfg.monitoring.driftMinSamples} are needed (monitoring.driftMinSamples)`,
        columns: [],
        dataset: null,
      };
    }
    const overrides = v.manifest.monitoring?.drift;
    const result = detectDrift(refColumns, columnsFromRecords(records, fields), {
      numerical: schema.numerical,
      categorical: schema.categorical,
      datasetDriftShare: overrides?.datasetDriftShare ?? this.cfg.monitoring.datasetDriftShare,
      ...(overrides?.columns && { columns: overrides.columns as DriftOptions['columns'] }),
    });
    this.export(v, result);
    const doc: DriftReportDocument = {
      ...base,
      reference,
      current: { rows: records.length },
      status: 'ok',
      columns: result.columns,
      dataset: result.dataset,
    };
    this.latest.set(v.key, doc);
    return doc;
  }

  /** The reference and current columns of a window, for charts beside the report (the dashboard's histograms). */
  async samples(
    v: ModelVersion,
    windowSeconds = this.cfg.monitoring.driftWindowSeconds,
  ): Promise<{ numerical: string[]; categorical: string[]; reference: Column[]; current: Column[] }> {
    const schema = schemaOf(v);
    const fields = [...schema.numerical, ...schema.categorical];
    const reference =
      v.manifest.reference === undefined ? [] : (await this.reference(v)).filter((c) => fields.includes(c.name));
    if (!this.predictionLog) return { ...schema, reference, current: [] };
    await this.predictionLog.flush();
    const until = Date.now();
    const rows = await this.predictionLog.query({
      model: v.name,
      version: v.version,
      since: until - windowSeconds * 1000,
      until: until + 1,
      limit: 20_000,
    });
    const records = rows.map((r) => ({
      ...(r.input as Record<string, unknown>),
      [PREDICTION_COLUMN]: predictionValue(r.output),
    }));
    return { ...schema, reference, current: columnsFromRecords(records, fields) };
  }

  private export(v: ModelVersion, r: DriftReport): void {
    for (const c of r.columns) {
      if (!c.testable) continue;
      this.metrics.driftScore.set({ model: v.name, version: v.version, column: c.column, test: c.test }, c.score);
      this.metrics.driftDetected.set({ model: v.name, version: v.version, column: c.column }, c.drift ? 1 : 0);
    }
    this.metrics.datasetDrift.set({ model: v.name, version: v.version }, r.dataset.datasetDrift ? 1 : 0);
  }

  /** Evaluates every monitored version once (the scheduler's tick). */
  async evaluateAll(): Promise<DriftReportDocument[]> {
    const out: DriftReportDocument[] = [];
    for (const v of this.monitored()) {
      try {
        out.push(await this.report(v));
      } catch (err) {
        this.log.warn({ err, model: v.key }, 'drift evaluation failed');
      }
    }
    return out;
  }

  start(): void {
    const every = this.cfg.monitoring.driftIntervalSeconds;
    if (every === 0 || this.timer) return;
    this.timer = setInterval(() => {
      if (this.running) return; // one evaluation at a time
      this.running = true;
      void this.evaluateAll().finally(() => {
        this.running = false;
      });
    }, every * 1000);
    this.timer.unref();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
