// Where a model's batches run. `placement: auto` (the default) keeps the sessions in the worker threads
// and, for a model measured at warm-up to run one row within `runtime.inlineMaxRunUs`, also on the main
// thread: a batch runs there when the model is otherwise idle (nothing of it running or queued, and none
// of the batch's requests waited behind an earlier batch: RunBatch in batching/batcher.ts) and its
// rows × the measured one-row run stay within the bound. An idle request then pays no thread hop (two
// messages and two thread wake-ups, more than the run itself for a small model), while under load the
// batches go to the workers and the HTTP thread stays free. The bound is also the longest the HTTP
// thread can be held by one such run: other requests wait at most that long.
//
// On one core (the process may run on one CPU only: a cpuset, `taskset`, a pinned container) a worker
// thread runs only while the HTTP thread does not, so a batch sent there buys no parallelism and still
// pays the hop. There the main-thread copy is also timed in batches (2, 4, 8, … rows) and every batch
// within the bound runs on the main thread, idle or loaded (`loadedMaxRows`); the batching rule then
// cuts batches to that size when its rows are about as cheap as larger batches' (batching/defaults.ts,
// `capForInline`). The bound on how long one run holds the HTTP thread is the same.

/** The placement in force for one load, as /v1/models shows it. */
export interface PlacementInForce {
  /** The contract's `runtime.placement` (unset = `auto`). */
  mode: 'auto' | 'worker' | 'inline';
  /** `auto`: the largest batch that runs on the main thread while the model is idle; 0 = never there. */
  inlineMaxRows: number;
  /** `auto`: one row's run on the main thread, measured at warm-up (median), µs. */
  inlineRunUs?: number;
  /**
   * `auto` on one core: the largest batch that runs on the main thread whether the model is idle or
   * loaded, timed there in batches at warm-up; absent on more cores, where a loaded model's batches go
   * to the workers.
   */
  loadedMaxRows?: number;
  /** `auto` on one core: the run of a `loadedMaxRows` batch on the main thread, µs. */
  loadedRunUs?: number;
  /** `auto` with `inlineMaxRows` 0: why the model stays in the worker threads. */
  reason?: string;
}

/** One batch size timed on the main thread: `runsUs` are its runs, µs each. */
export interface SizeRuns {
  rows: number;
  runsUs: readonly number[];
}

/**
 * Models larger than this (the ONNX file and its external data files) are never loaded a second time
 * on the main thread (memory, load time).
 */
export const INLINE_MAX_MODEL_BYTES = 64 * 1024 * 1024;

/** A worker's warm-up run per row past this many times the bound: not worth measuring on the main thread. */
export const WORKER_FILTER_FACTOR = 20;

/** Timed one-row runs on the main thread (after one untimed): their median decides. */
export const INLINE_PROBE_RUNS = 7;

/** On one core, timed runs of each batch size on the main thread (their lower quartile counts). */
export const LOADED_PROBE_RUNS = 5;

/**
 * Whether an `auto` model is worth a main-thread session, from what is known before loading one: the
 * warm-up's runs in the workers (ms per run of `warmRows` rows; empty when warm-up is off) and the
 * model's size on disk, external data included. Returns why not, or undefined to go on and measure on the main thread.
 */
export function inlineRefusal(
  limitUs: number,
  workerRunsMs: readonly number[],
  warmRows: number,
  modelBytes: number,
): string | undefined {
  if (limitUs <= 0) return 'runtime.inlineMaxRunUs is 0';
  if (workerRunsMs.length === 0) return 'warm-up is off (runtime.warmupRuns: 0), so nothing was measured';
  if (modelBytes > INLINE_MAX_MODEL_BYTES)
    return `the model's files (${Math.round(modelBytes / 2 ** 20)} MiB with external data) are over ${INLINE_MAX_MODEL_BYTES / 2 ** 20} MiB`;
  return workerFilter(limitUs, workerRunsMs, warmRows);
}

/**
 * The coarse filter alone: why a worker's runs (ms per run of `warmRows` rows) say the model is far too
 * slow to measure on the main thread, or undefined. Warm-up runs are cold, and versions warm up side by
 * side and time each other, so a worker's figure may be many times the real one (a 280 µs row read
 * 25 ms while eight versions loaded on one pinned core): a refusal made while other versions loaded is
 * timed again later (ModelService), and the main-thread measurement decides.
 */
export function workerFilter(limitUs: number, workerRunsMs: readonly number[], warmRows: number): string | undefined {
  if (workerRunsMs.length === 0) return undefined;
  const perRowUs = (Math.min(...workerRunsMs) * 1000) / Math.max(1, warmRows);
  if (perRowUs > WORKER_FILTER_FACTOR * limitUs)
    return `a row ran ${Math.round(perRowUs)} µs in a worker at warm-up, over ${WORKER_FILTER_FACTOR} × runtime.inlineMaxRunUs (${limitUs})`;
  return undefined;
}

/**
 * Why a model's run time may follow the request beyond its rows, so that one row timed at warm-up bounds
 * nothing (a hostile request could hold the HTTP thread for as long as its input allows): an input padded
 * per batch (token sequences), or a tensor input with a dynamic axis besides the batch. Undefined: the
 * shapes are fixed but for the rows.
 */
export function variableCost(
  inputs: readonly { name: string; type: string; shape?: readonly number[] }[],
  padded: readonly string[],
): string | undefined {
  if (padded.length > 0)
    return `input "${padded[0]}" is padded per batch, so a run's time follows the request's length`;
  const dynamic = inputs.find((i) => i.type === 'tensor' && (i.shape ?? []).slice(1).some((d) => d < 0));
  if (dynamic)
    return `input "${dynamic.name}" has a dynamic axis besides the batch, so a run's time follows the request's shape`;
  return undefined;
}

/** The middle value (the upper of the two middle ones for an even count); undefined when empty. */
function median(values: readonly number[]): number | undefined {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
}

/**
 * A fixed-shape model's own run time from several timed runs: the lower quartile (the second fastest of
 * 7). Its work is the same every run, and whatever else the machine does (other threads on the core,
 * a collection, another process) only adds to a run, so the fast end is the model and the slow end is
 * the machine; the median of a probe on a busy host read a 450 µs model as 570 µs. Not the fastest
 * alone: one run's figure is not trusted to bound the rest.
 */
export function ownRunUs(values: readonly number[]): number | undefined {
  return [...values].sort((a, b) => a - b)[Math.floor((values.length - 1) / 4)];
}

/**
 * The placement from the one-row runs measured on the main thread (µs each) and, on one core, the
 * batch sizes timed there after them (ascending; `sizes` absent on more cores).
 */
export function placeFromRuns(
  limitUs: number,
  runsUs: readonly number[],
  sizes?: readonly SizeRuns[],
): PlacementInForce {
  const placed = placeFromOneRow(limitUs, runsUs);
  if (sizes === undefined || placed.inlineMaxRows === 0) return placed;
  // The largest size whose run stayed within the bound, counting up until one did not.
  let loaded = { rows: 1, runUs: placed.inlineRunUs! };
  for (const s of [...sizes].sort((a, b) => a.rows - b.rows)) {
    if (s.rows <= loaded.rows) continue;
    const runUs = ownRunUs(s.runsUs) ?? Infinity;
    if (!(runUs <= limitUs)) break;
    loaded = { rows: s.rows, runUs: Math.round(runUs * 10) / 10 };
  }
  // Never fewer rows than the one-row figure already allows (rows × one row's run is an upper bound).
  if (loaded.rows < placed.inlineMaxRows)
    loaded = { rows: placed.inlineMaxRows, runUs: Math.round(placed.inlineMaxRows * placed.inlineRunUs! * 10) / 10 };
  return { ...placed, loadedMaxRows: loaded.rows, loadedRunUs: loaded.runUs };
}

/**
 * Whether the batch sizes are worth timing after the one-row runs: on one core, when a row is within
 * the bound.
 */
export function timesBatches(oneCore: boolean, limitUs: number, runsUs: readonly number[]): boolean {
  return oneCore && placeFromOneRow(limitUs, runsUs).inlineMaxRows > 0;
}

function placeFromOneRow(limitUs: number, runsUs: readonly number[]): PlacementInForce {
  const runUs = ownRunUs(runsUs) ?? Infinity;
  const rounded = Math.round(runUs * 10) / 10;
  if (!(runUs <= limitUs))
    return {
      mode: 'auto',
      inlineMaxRows: 0,
      inlineRunUs: rounded,
      reason: `a row ran ${Math.round(runUs)} µs on the main thread, over runtime.inlineMaxRunUs (${limitUs})`,
    };
  // A batch's run is at most rows × one row's (batching only amortises), so this many rows stay in bound.
  return { mode: 'auto', inlineMaxRows: Math.max(1, Math.floor(limitUs / Math.max(runUs, 1))), inlineRunUs: rounded };
}

/**
 * Times again later (ms after the previous probe) when a probe was inconclusive: a busy machine (other
 * versions or processes starting) slows the runs it times, so one slow median must not keep a small model
 * off the main thread for good.
 */
export const REPROBE_AFTER_MS: readonly number[] = [5_000, 30_000, 120_000];

/**
 * Why a probe proves nothing (undefined when it does). Whatever it placed: the worker threads had
 * other work while it ran (versions loading or warming up, batches of other models), on the cores the
 * rows were timed on, so every row may read slow and the version gets fewer main-thread rows than it
 * should, or none. Then, when it placed the version in the workers: the event loop was busy (the
 * median bare turn, timed before each row, was itself over the bound: other work ran between a row's
 * start and its end), or the fastest row was within the bound (the machine, not the model, was slow).
 */
export function inconclusive(
  limitUs: number,
  runsUs: readonly number[],
  turnsUs: readonly number[],
  placed: PlacementInForce,
  /** Versions were loading, or the worker threads were running batches, while the rows were timed. */
  workersBusy = false,
): string | undefined {
  if (limitUs <= 0 || runsUs.length === 0) return undefined;
  if (workersBusy) return 'the worker threads had other work while it was timed';
  if (placed.inlineMaxRows !== 0) return undefined;
  const turn = median(turnsUs);
  if (turn !== undefined && turn > limitUs) return `the event loop was busy (a bare turn took ${Math.round(turn)} µs)`;
  const fastest = Math.min(...runsUs);
  if (fastest <= limitUs) return `its fastest row (${Math.round(fastest)} µs) was within it`;
  return undefined;
}
