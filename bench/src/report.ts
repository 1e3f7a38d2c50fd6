// Ratios and bars from one run's numbers, and the text tables `npm run bench` prints.
// Bars come from the project's issue; the bench reports them and never fails on them.
import type { FerryRowStats } from './ferry-metrics.js';
import type { BenchOptions } from './options.js';
import type { RawResult } from './raw-ort.js';
import type { BenchReport, HealthzRow, LoadRow, Series, TargetId } from './suite.js';
import { REPEAT_SET, type ModelInfo } from './workloads.js';

export interface Ratio {
  name: string;
  value: number | null;
  unit: 'x' | 'ms';
}

export interface Bar {
  name: string;
  measured: number | null;
  comparator: '>=' | '<=';
  threshold: number;
  unit: 'x' | 'ms';
  /** null when the run did not measure it (e.g. --only left the model out). */
  met: boolean | null;
  /**
   * A req/s row the ratio divides was paced by the load generator (its client at or past
   * CLIENT_BOUND_CORES), so a missed bar says nothing about the servers: reported as undecided.
   */
  clientBound?: boolean;
  /**
   * With --rounds > 1: the ratio within each round (the two rows of one round ran minutes apart at
   * most, so a machine that drifts between rounds moves both alike), in round order.
   */
  rounds?: number[];
  /**
   * The ratio of the median rounds (`measured`) and the median of the rounds' own ratios fall on
   * different sides of the threshold: the rounds disagree, so the run does not decide the bar.
   */
  split?: boolean;
}

/** A load generator this busy (cores) set the pace of its row rather than the server. */
export const CLIENT_BOUND_CORES = 0.9;

interface Measured {
  raw: RawResult[];
  load: LoadRow[];
  healthz: HealthzRow[];
}

const find = (
  m: Measured,
  model: string,
  target: TargetId,
  connections: number,
  series: Series = 'main',
): LoadRow | undefined =>
  m.load.find((r) => r.model === model && r.target === target && r.connections === connections && r.series === series);

const div = (a: number | undefined, b: number | undefined): number | null =>
  a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0 ? null : a / b;

/** How a row's target reads in logs and tables. */
export function rowLabel(r: { target: TargetId; series: Series; model: string; served: string }): string {
  if (r.series === 'batching-off') return 'ferry, batching off';
  if (r.series === 'defaults') return 'ferry, defaults';
  if (r.series === 'log-off') return 'ferry, defaults, log off';
  if (r.series === 'repeated' && r.target === 'ferry') return 'ferry, cache on';
  return r.target;
}

export function computeRatios(m: Measured, opts: BenchOptions, infos: readonly ModelInfo[]): Ratio[] {
  const out: Ratio[] = [];
  const top = Math.max(...opts.connections);
  for (const info of infos) {
    const model = info.name;
    for (const c of opts.connections) {
      const f = find(m, model, 'ferry', c)?.rps;
      out.push({
        name: `${model} @${c} conns: Ferry / minimal req/s`,
        value: div(f, find(m, model, 'minimal', c)?.rps),
        unit: 'x',
      });
      out.push({
        name: `${model} @${c} conns: Ferry / constant route req/s`,
        value: div(f, find(m, model, 'constant', c)?.rps),
        unit: 'x',
      });
      const dflt = find(m, model, 'ferry', c, 'defaults');
      if (dflt) {
        out.push({
          name: `${model} @${c} conns: Ferry defaults (no batching block) / minimal req/s`,
          value: div(dflt.rps, find(m, model, 'minimal', c)?.rps),
          unit: 'x',
        });
        out.push({
          name: `${model} @${c} conns: Ferry defaults / constant route req/s`,
          value: div(dflt.rps, find(m, model, 'constant', c)?.rps),
          unit: 'x',
        });
      }
      const logOff = find(m, model, 'ferry', c, 'log-off');
      if (dflt && logOff)
        out.push({
          name: `${model} @${c} conns: Ferry defaults, prediction log on / off req/s`,
          value: div(dflt.rps, logOff.rps),
          unit: 'x',
        });
      const off = find(m, model, 'ferry', c, 'batching-off');
      if (off)
        out.push({ name: `${model} @${c} conns: Ferry batching on / off req/s`, value: div(f, off.rps), unit: 'x' });
      const hits = find(m, model, 'ferry', c, 'repeated');
      if (hits) {
        out.push({
          name: `${model} @${c} conns: Ferry cache hits / constant route req/s (same ${REPEAT_SET} bodies)`,
          value: div(hits.rps, find(m, model, 'constant', c, 'repeated')?.rps),
          unit: 'x',
        });
        out.push({
          name: `${model} @${c} conns: Ferry cache hits / Ferry distinct bodies req/s`,
          value: div(hits.rps, f),
          unit: 'x',
        });
      }
    }
    const raw1 = m.raw.find((r) => r.model === model && r.batch === 1);
    const rawN = m.raw.find((r) => r.model === model && r.batch === info.maxBatch);
    const ferryTop = find(m, model, 'ferry', top)?.rps;
    const minimalTop = find(m, model, 'minimal', top)?.rps;
    out.push({
      name: `${model}: Ferry req/s @${top} / raw ORT calls/s (batch 1)`,
      value: div(ferryTop, raw1?.callsPerS),
      unit: 'x',
    });
    out.push({
      name: `${model}: minimal req/s @${top} / raw ORT calls/s (batch 1)`,
      value: div(minimalTop, raw1?.callsPerS),
      unit: 'x',
    });
    if (info.maxBatch > 1)
      out.push({
        name: `${model}: Ferry rows/s @${top} / raw ORT rows/s (batch ${info.maxBatch})`,
        value: div(ferryTop, rawN?.rowsPerS),
        unit: 'x',
      });
    if (opts.connections.includes(1)) {
      out.push({
        name: `${model} @1 conn: Ferry p50 / minimal p50`,
        value: div(find(m, model, 'ferry', 1)?.p50Ms, find(m, model, 'minimal', 1)?.p50Ms),
        unit: 'x',
      });
    }
  }
  for (const h of m.healthz)
    out.push({
      name: `/healthz p99 while ${h.model} @${h.main.connections} conns: ${h.target} (${h.probe ?? 'serving port'})`,
      value: h.healthz.p99Ms,
      unit: 'ms',
    });
  return out;
}

/** a[i] ÷ b[i] for every round, when both rows have the same rounds. */
function perRound(a: readonly number[] | undefined, b: readonly number[] | undefined): number[] | undefined {
  if (!a || !b || a.length !== b.length || a.length < 2) return undefined;
  const out = a.map((x, i) => div(x, b[i]));
  return out.every((v): v is number => v !== null) ? out : undefined;
}

/** The middle value (the mean of the two middle ones for an even count). */
function medianOf(values: readonly number[]): number {
  const s = [...values].sort((x, y) => x - y);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function bar(
  name: string,
  measured: number | null,
  comparator: Bar['comparator'],
  threshold: number,
  unit: Bar['unit'],
  rows: ReadonlyArray<LoadRow | undefined> = [],
  rounds?: number[],
): Bar {
  const clientBound = rows.some((r) => r !== undefined && r.clientCpu >= CLIENT_BOUND_CORES);
  const meets = (v: number) => (comparator === '>=' ? v >= threshold : v <= threshold);
  const met = measured === null ? null : meets(measured);
  const split = met !== null && rounds !== undefined && meets(medianOf(rounds)) !== met;
  return {
    name,
    measured,
    comparator,
    threshold,
    unit,
    met,
    ...(clientBound && { clientBound }),
    ...(rounds && { rounds }),
    ...(split && { split }),
  };
}

/**
 * Issue 20's bars ("fast by default"): Ferry as `ferry init` leaves a model (no batching block, the
 * prediction log on) against the minimal server and the constant route, in the same run. (Ferry
 * ÷ FastAPI, the last of them, is the scaling bench's: `node bench/dist/scaling.js`.)
 */
export function computeBars(m: Measured): Bar[] {
  const dflt = (model: string, c: number) => find(m, model, 'ferry', c, 'defaults');
  const row = (model: string, t: TargetId, c: number, series: Series = 'main') => find(m, model, t, c, series);
  // The bar is for the probe Kubernetes should use: Ferry's health port (the serving port's row is printed too).
  const ferryHealthz =
    m.healthz.find((h) => h.target === 'ferry' && h.probe === 'health port') ??
    m.healthz.find((h) => h.target === 'ferry');
  // A req/s ratio of two rows, and whether either was paced by its load generator.
  const rpsBar = (name: string, a: LoadRow | undefined, b: LoadRow | undefined, threshold: number) =>
    bar(name, div(a?.rps, b?.rps), '>=', threshold, 'x', [a, b], perRound(a?.rpsRounds, b?.rpsRounds));
  const logOnOff = (model: string) =>
    rpsBar(
      `${model} @64 conns: Ferry defaults, prediction log on / off req/s`,
      dflt(model, 64),
      row(model, 'ferry', 64, 'log-off'),
      0.95,
    );
  return [
    rpsBar(
      'mlp-bench @64 conns: Ferry defaults req/s vs minimal',
      dflt('mlp-bench', 64),
      row('mlp-bench', 'minimal', 64),
      2,
    ),
    rpsBar(
      'mlp-bench @64 conns: Ferry defaults req/s vs constant route',
      dflt('mlp-bench', 64),
      row('mlp-bench', 'constant', 64),
      0.65,
    ),
    rpsBar('tiny-lr @64 conns: Ferry defaults req/s vs minimal', dflt('tiny-lr', 64), row('tiny-lr', 'minimal', 64), 1),
    rpsBar(
      `mlp-bench @64 conns: Ferry cache-hit req/s vs constant route (same ${REPEAT_SET} bodies)`,
      row('mlp-bench', 'ferry', 64, 'repeated'),
      row('mlp-bench', 'constant', 64, 'repeated'),
      0.8,
    ),
    bar(
      'mlp-bench @1 conn: Ferry defaults p50 vs minimal p50',
      div(dflt('mlp-bench', 1)?.p50Ms, find(m, 'mlp-bench', 'minimal', 1)?.p50Ms),
      '<=',
      1.2,
      'x',
      [],
      perRound(dflt('mlp-bench', 1)?.p50Rounds, find(m, 'mlp-bench', 'minimal', 1)?.p50Rounds),
    ),
    bar(
      `Ferry /healthz p99 (${ferryHealthz?.probe ?? 'health port'}) while mlp-bench saturated (64 conns)`,
      ferryHealthz?.healthz.p99Ms ?? null,
      '<=',
      5,
      'ms',
    ),
    // A cost of at most 5%: with the log on, at least 0.95× the req/s of the same model unlogged.
    logOnOff('mlp-bench'),
    logOnOff('tiny-lr'),
  ];
}

// ---- text output ----

function table(headers: string[], rows: string[][], rightAlign: boolean[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (rightAlign[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

const n0 = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '-');
const cores = (x: number | null) => (x === null || !Number.isFinite(x) ? '-' : x.toFixed(2));
const ms = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '-');
const fmt = (v: number | null, unit: 'x' | 'ms') =>
  v === null ? 'n/a' : unit === 'x' ? `${v >= 0.1 ? v.toFixed(2) : v.toPrecision(2)}x` : `${v.toFixed(2)} ms`;

function ferryCells(f: FerryRowStats | null | undefined): [string, string, string] {
  if (!f) return ['', '', ''];
  return [
    f.meanBatchRows === null ? '-' : f.meanBatchRows.toFixed(1),
    f.inlineShare === null || f.inlineShare === undefined ? '-' : `${(f.inlineShare * 100).toFixed(0)}%`,
    f.cacheHitRatio === null ? 'off' : `${(f.cacheHitRatio * 100).toFixed(0)}%`,
  ];
}

export function formatReport(r: BenchReport): string {
  const out: string[] = [];
  const pin = r.pinning.enabled
    ? `pinned: servers + raw ORT on CPU ${r.pinning.serverCpus}, load generators on CPU ${r.pinning.loadCpus}`
    : `unpinned (${r.pinning.reason})`;
  out.push(
    `Ferry bench  ${r.startedAt}  ${r.machine.cpus} CPUs (${r.machine.cpuModel}), node ${r.machine.node}, onnxruntime-node ${r.machine.onnxruntime}`,
  );
  out.push(
    `${pin}; Ferry workers: ${r.ferryWorkers}; ${r.options.durationS}s measured after ${r.options.warmupS}s warm-up per row`,
  );
  out.push(
    `one instance per request; main rows: ${r.options.repeatBodies ? 'fixed bodies cycled (repeats can hit a cache)' : 'every request distinct (no cache hits possible)'}; "N cycled" rows: the same N bodies over and over`,
  );
  out.push('');
  out.push('Raw ONNX Runtime, in process (Ferry session options), input pre-encoded');
  out.push(
    table(
      ['model', 'batch', 'calls/s', 'rows/s', 'p50 call ms', 'p99 call ms', 'other CPU'],
      r.raw.map((x) => [
        x.model,
        String(x.batch),
        n0(x.callsPerS),
        n0(x.rowsPerS),
        ms(x.p50CallMs),
        ms(x.p99CallMs),
        cores(x.otherCpu),
      ]),
      [false, true, true, true, true, true, true],
    ),
  );
  out.push('');
  const engines = [...new Set(r.load.map((x) => x.engine ?? 'autocannon'))].join(' and ');
  out.push(`Served over HTTP (POST /v1/models/{model}/predict, ${engines || 'the load generator'} in its own process)`);
  const ranged = r.load.some((x) => x.rpsRounds);
  out.push(
    table(
      [
        'model',
        'target',
        'bodies',
        'conns',
        'req/s',
        ...(ranged ? ['req/s range'] : []),
        'p50 ms',
        'p99 ms',
        'non-2xx',
        'errors',
        'server CPU',
        'client CPU',
        'other CPU',
        'rows/batch',
        'inline',
        'cache hits',
      ],
      r.load.map((x) => [
        x.model,
        rowLabel(x),
        x.bodies,
        String(x.connections),
        n0(x.rps),
        ...(ranged ? [x.rpsRounds ? `${n0(Math.min(...x.rpsRounds))}-${n0(Math.max(...x.rpsRounds))}` : ''] : []),
        ms(x.p50Ms),
        ms(x.p99Ms),
        String(x.non2xx),
        String(x.errors + x.timeouts),
        cores(x.serverCpu),
        cores(x.clientCpu),
        cores(x.otherCpu),
        ...ferryCells(x.ferry),
      ]),
      [
        false,
        false,
        false,
        true,
        true,
        ...(ranged ? [true] : []),
        true,
        true,
        true,
        true,
        true,
        true,
        true,
        true,
        true,
        true,
      ],
    ),
  );
  out.push(
    "inline: the share of Ferry's batches run on the main thread (placement: auto runs an idle model's batch there, and on one core any batch within its bound);\nserver/client CPU: cores busy during the measured run (1.00 = one full core); client near 1.00 means the load generator, not the server, set the pace;\nother CPU: everything else on the machine meanwhile (other processes, kernel); well above 0 means the row was disturbed",
  );
  if (r.ferryVersions?.length) {
    out.push('');
    out.push("Ferry's batching and placement at the end of the load rows (GET /v1/models)");
    out.push(
      table(
        [
          'version',
          'max batch',
          'source',
          'measured size',
          'placement',
          'inline rows idle',
          'inline rows loaded',
          'one row µs',
        ],
        r.ferryVersions.map((v) => [
          `${v.name}@${v.version}`,
          v.batching ? String(v.batching.maxBatchSize) : '-',
          v.batching?.source ?? '-',
          v.batching?.measuredMaxBatchSize === undefined ? '-' : String(v.batching.measuredMaxBatchSize),
          v.placement?.mode ?? '-',
          v.placement ? String(v.placement.inlineMaxRows) : '-',
          v.placement?.loadedMaxRows === undefined ? '-' : String(v.placement.loadedMaxRows),
          v.placement?.inlineRunUs === undefined ? '-' : String(v.placement.inlineRunUs),
        ]),
        [false, true, false, true, false, true, true, true],
      ),
    );
  }
  if (r.healthz.length) {
    out.push('');
    out.push('/healthz (1 connection) while mlp-bench is saturated');
    out.push(
      table(
        [
          'target',
          'probe',
          'mlp-bench conns',
          'mlp-bench req/s',
          'healthz req/s',
          'healthz p50 ms',
          'healthz p99 ms',
          'healthz max ms',
          'non-2xx',
        ],
        r.healthz.map((h) => [
          h.target,
          h.probe ?? 'serving port',
          String(h.main.connections),
          n0(h.main.rps),
          n0(h.healthz.rps),
          ms(h.healthz.p50Ms),
          ms(h.healthz.p99Ms),
          ms(h.healthz.maxMs),
          String(h.healthz.non2xx + h.main.non2xx),
        ]),
        [false, false, true, true, true, true, true, true, true],
      ),
    );
  }
  out.push('');
  out.push('Ratios');
  out.push(
    table(
      ['ratio', 'value'],
      r.ratios.map((x) => [x.name, fmt(x.value, x.unit)]),
      [false, true],
    ),
  );
  out.push('');
  out.push('Bars (from the issue; reported, not asserted)');
  out.push(formatBars(r.bars));
  for (const n of r.notes) out.push(`note: ${n}`);
  return out.join('\n');
}

/**
 * The bars table: a bar whose rounds disagree, or a missed bar whose rows a load generator paced,
 * reads "undecided".
 */
export function formatBars(bars: Bar[]): string {
  const verdict = (b: Bar) =>
    b.met === null
      ? 'not measured'
      : b.split
        ? 'undecided (the rounds disagree)'
        : b.met
          ? 'yes'
          : b.clientBound
            ? 'undecided (a load generator set the pace)'
            : 'NO';
  return table(
    ['bar', 'measured', 'each round', 'needed', 'met'],
    bars.map((b) => [
      b.name,
      fmt(b.measured, b.unit),
      b.rounds ? b.rounds.map((v) => v.toFixed(2)).join(' ') : '',
      `${b.comparator} ${b.unit === 'x' ? `${b.threshold}x` : `${b.threshold} ms`}`,
      verdict(b),
    ]),
    [false, true, true, true, false],
  );
}
