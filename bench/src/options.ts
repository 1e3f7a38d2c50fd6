// Command-line options of `npm run bench` (node bench/dist/run.js).
import { parseArgs } from 'node:util';
import { BENCH_MODELS, type BenchModel } from './workloads.js';
import { DEFAULT_OUT } from './paths.js';

export interface BenchOptions {
  quick: boolean;
  only: BenchModel[];
  /** Measured seconds per load row. */
  durationS: number;
  /** Unmeasured seconds of the same load before each row. */
  warmupS: number;
  /** Seconds per raw ONNX Runtime measurement. */
  rawSeconds: number;
  connections: number[];
  /** Pin servers to one CPU and load generators to the others (taskset). */
  pin: boolean;
  /** `--workers` passed to `ferry serve`; undefined keeps Ferry's default (one per usable CPU). */
  ferryWorkers?: number;
  /** Runs of every load row; the median round (by req/s) is reported. */
  rounds: number;
  /** Cycle a fixed set of bodies (cache-friendly) instead of making every request distinct. */
  repeatBodies: boolean;
  out: string;
  readyTimeoutMs: number;
}

export const USAGE = `usage: npm run bench -- [options]    (or: node bench/dist/run.js [options])
  --quick                 short durations (smoke run)
  --only a,b              models to measure (default: ${BENCH_MODELS.join(',')})
  --duration S            measured seconds per load row (default 6, quick 2)
  --warmup S              warm-up seconds before each row (default 2, quick 0.5)
  --raw-seconds S         seconds per raw ONNX Runtime measurement (default 3, quick 0.5)
  --connections 1,16,64   connection counts per target (default 1,16,64)
  --rounds N              run every load row N times, report the median (default 1)
  --pin / --no-pin        taskset: servers on one CPU, load on the others (default on)
  --workers N             ferry serve --workers N (default: Ferry's own default)
  --repeat-bodies         cycle fixed bodies, so Ferry's prediction cache can answer repeats
                          (default: every request distinct, no cache hits anywhere)
  --out FILE              JSON output (default bench/results/latest.json)`;

function positive(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number, got ${v}`);
  return n;
}

export function parseOptions(argv: readonly string[]): BenchOptions | 'help' {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      'raw-seconds': { type: 'string' },
      connections: { type: 'string' },
      pin: { type: 'boolean' },
      'no-pin': { type: 'boolean' },
      workers: { type: 'string' },
      'repeat-bodies': { type: 'boolean', default: false },
      rounds: { type: 'string' },
      out: { type: 'string' },
      'ready-timeout': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) return 'help';
  const quick = values.quick ?? false;
  const only = (values.only ?? BENCH_MODELS.join(','))
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const m of only) {
    if (!(BENCH_MODELS as readonly string[]).includes(m))
      throw new Error(`--only: unknown model ${m} (known: ${BENCH_MODELS.join(', ')})`);
  }
  const connections = (values.connections ?? '1,16,64').split(',').map((s) => positive('connections', s, 1));
  if (values.pin && values['no-pin']) throw new Error('--pin and --no-pin together');
  return {
    quick,
    only: only as BenchModel[],
    durationS: positive('duration', values.duration, quick ? 2 : 6),
    warmupS: values.warmup === '0' ? 0 : positive('warmup', values.warmup, quick ? 0.5 : 2),
    rawSeconds: positive('raw-seconds', values['raw-seconds'], quick ? 0.5 : 3),
    connections: connections.map(Math.round),
    pin: !values['no-pin'],
    ...(values.workers !== undefined && { ferryWorkers: Math.round(positive('workers', values.workers, 1)) }),
    rounds: Math.round(positive('rounds', values.rounds, 1)),
    repeatBodies: values['repeat-bodies'] ?? false,
    out: values.out ?? DEFAULT_OUT,
    readyTimeoutMs: positive('ready-timeout', values['ready-timeout'], 120) * 1000,
  };
}
