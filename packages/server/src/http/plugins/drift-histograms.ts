// Reference vs current histograms per feature for the dashboard's drift page, binned the way the
// drift tests bin them (Sturges edges over both samples, or one bin per value), so the picture shows
// what the test measured.
import type { FastifyInstance } from 'fastify';
import { json, ModelParams, problem, route, WindowQuery } from '../schemas.js';
import { FerryError } from '../../errors.js';
import type { ServerDeps } from '../deps.js';
import { windowSeconds } from './v1.js';
import { binnedShares } from '../../monitoring/drift/index.js';
import { cleanCategorical, cleanNumerical } from '../../monitoring/drift/values.js';
import { countValues, unionKeys } from '../../monitoring/drift/counts.js';
import type { Column } from '../../monitoring/drift/index.js';

export interface FeatureHistogram {
  column: string;
  type: 'numerical' | 'categorical';
  /** Bin labels: `[a, b)` ranges, or category values. */
  labels: string[];
  /** Shares (0..1) of each sample in each bin. */
  reference: number[];
  current: number[];
  nReference: number;
  nCurrent: number;
}

const round = (x: number) => Number(x.toPrecision(4));
const MAX_CATEGORIES = 30;

export function histograms(
  numerical: string[],
  categorical: string[],
  reference: Column[],
  current: Column[],
): FeatureHistogram[] {
  const out: FeatureHistogram[] = [];
  for (const name of [...numerical, ...categorical]) {
    const ref = reference.find((c) => c.name === name);
    const cur = current.find((c) => c.name === name);
    if (!ref || !cur || ref.values.length === 0 || cur.values.length === 0) continue;
    const type = numerical.includes(name) ? 'numerical' : 'categorical';
    const clean = type === 'numerical' ? cleanNumerical : cleanCategorical;
    const r = clean(ref.values);
    const c = clean(cur.values);
    if (!r.ok || !c.ok || r.sample.values.length === 0 || c.sample.values.length === 0) continue;
    const b = binnedShares(r.sample, c.sample, false);
    let labels: string[];
    if (b.edges) {
      labels = Array.from(
        { length: b.edges.length - 1 },
        (_, i) => `${round(b.edges![i]!)}–${round(b.edges![i + 1]!)}`,
      );
    } else {
      // Per-value bins come in the order binnedShares builds them: reference values first, then new ones.
      const values = (x: typeof r.sample) => Array.from(x.values as ArrayLike<number | string>);
      labels = unionKeys(countValues(values(r.sample)), countValues(values(c.sample))).map(String);
    }
    let refShares = Array.from(b.reference);
    let curShares = Array.from(b.current);
    if (labels.length !== refShares.length) continue;
    if (labels.length > MAX_CATEGORIES) {
      // Keep the categories that matter most to either sample.
      const order = labels
        .map((_, i) => i)
        .sort((i, j) => Math.max(refShares[j]!, curShares[j]!) - Math.max(refShares[i]!, curShares[i]!))
        .slice(0, MAX_CATEGORIES);
      labels = order.map((i) => labels[i]!);
      refShares = order.map((i) => refShares[i]!);
      curShares = order.map((i) => curShares[i]!);
    }
    out.push({
      column: name,
      type,
      labels,
      reference: refShares,
      current: curShares,
      nReference: r.sample.values.length,
      nCurrent: c.sample.values.length,
    });
  }
  return out;
}

/** GET /v1/models/{model}/drift/histograms, registered by the web plugin (the dashboard's drift page). */
export function driftHistogramRoute(
  app: FastifyInstance,
  deps: Pick<ServerDeps, 'repository' | 'drift' | 'config'>,
): void {
  const schema = route('monitoring', "Reference and current histograms per feature (the dashboard's drift page)", {
    params: ModelParams,
    querystring: WindowQuery,
    response: {
      200: json('Histograms per column'),
      400: problem('No reference data or a bad window'),
      404: problem('Unknown model'),
    },
  });
  app.get<{ Params: { model: string }; Querystring: { window?: string } }>(
    '/v1/models/:model/drift/histograms',
    { schema },
    async (req) => {
      const v = deps.repository.resolve(req.params.model);
      if (v.manifest.reference === undefined) {
        throw new FerryError('invalid-request', {
          detail: `${v.key} ships no reference data (the \`reference\` key of its ferry.yaml), so there is nothing to compare with`,
        });
      }
      const seconds = windowSeconds(req.query.window, deps.config.monitoring.driftWindowSeconds);
      const s = await deps.drift.samples(v, seconds);
      return {
        model: v.name,
        version: v.version,
        windowSeconds: seconds,
        columns: histograms(s.numerical, s.categorical, s.reference, s.current),
      };
    },
  );
}
