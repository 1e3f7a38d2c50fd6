// Batching defaults chosen from the model itself. A contract that leaves `batching.maxBatchSize`
// unset gets a size measured on the model: one run at each power of two from 1 row up, timed, and
// the largest size that still makes a row cheaper and keeps a batch short is chosen. `ferry serve`
// measures at warm-up (in the worker that will run the model); `ferry init` measures the same way
// and writes the result into the ferry.yaml it creates, so the values are visible and editable.
//
// The rule (docs/production.md, "Batching is on by default", repeats it):
// - sizes 1, 2, 4, … up to MAX_PROBE_ROWS are timed (the fastest of PROBE_REPEATS runs each, one
//   run when a run is slow); the probe stops at the first size whose run takes longer than the
//   latency budget, or once it has run PROBE_MAX_MS (so a model whose one-row run takes more than
//   PROBE_MAX_MS keeps one row a batch unless its contract sets a size);
// - the latency budget of one batch is max(MIN_BUDGET_MS, BUDGET_FACTOR × the one-row time);
// - `maxBatchSize` is the largest probed size within the budget whose rows are no dearer than the
//   cheapest rows of the smaller sizes (per-row time at most NO_WORSE × the best so far); a dearer
//   size (the batch spilled out of a cache, or its run was disturbed) is passed over, not the end;
//   A model whose rows cost the same at any batch size still gets batches (up to the budget): under
//   load they save one message and one dispatch per row, and an idle model never waits for them;
// - `maxQueueDelayUs` is the one-row time, capped at MAX_DELAY_US: the scheduler only ever waits
//   while another batch of the model is already running (an idle model answers at once), and then
//   waiting about one single-row inference for company costs no more than running alone would.
//
// Why not a fixed number: a 14 µs logistic regression runs 128 rows in the time of a few, a 200 ms
// vision model must not make a request wait for 127 others; one constant is wrong for one of them.
// Why the rule leans on the budget rather than on per-row gains: on a loaded machine timings are
// noisy, and a gain threshold would turn batching off by accident; a budget errs only a little.
// The times are the inference's own (`run` returns how long the session ran, measured in the
// thread that ran it), so a busy event loop during start-up does not count; `ferry serve` also
// probes one version at a time, so versions warming up together do not time each other's runs.

export interface BatchingChoice {
  maxBatchSize: number;
  maxQueueDelayUs: number;
}

/** One timed run: `rows` rows took `ms` milliseconds (fastest of the repeats). */
export interface ProbeTiming {
  rows: number;
  ms: number;
}

export const MAX_PROBE_ROWS = 128;
export const PROBE_REPEATS = 3;
export const MIN_BUDGET_MS = 5;
export const BUDGET_FACTOR = 8;
/** A size whose per-row time is more than this × the best so far ends the choice (timing noise is below it). */
export const NO_WORSE = 1.25;
export const MAX_DELAY_US = 2000;
/** The size used when nothing could be measured (warm-up turned off with runtime.warmupRuns: 0). */
export const UNMEASURED_MAX_BATCH_SIZE = 32;
/** The probe ends once it has run this long (a slow model keeps its warm-up short). */
export const PROBE_MAX_MS = 500;
/** A size is timed again only while its runs so far took less than this. */
export const REPEAT_WITHIN_MS = 50;

/** The choice from timings at 1, 2, 4, … rows (ascending, starting at 1 row). */
export function chooseBatching(timings: readonly ProbeTiming[]): BatchingChoice {
  const one = timings.find((t) => t.rows === 1);
  if (!one) return { maxBatchSize: 1, maxQueueDelayUs: 0 };
  const budgetMs = Math.max(MIN_BUDGET_MS, BUDGET_FACTOR * one.ms);
  let best = one;
  let bestPerRow = one.ms;
  for (const t of [...timings].sort((a, b) => a.rows - b.rows)) {
    if (t.rows <= best.rows) continue;
    if (t.ms > budgetMs) break;
    if (t.ms / t.rows > bestPerRow * NO_WORSE) continue;
    bestPerRow = Math.min(bestPerRow, t.ms / t.rows);
    best = t;
  }
  return {
    maxBatchSize: best.rows,
    maxQueueDelayUs: Math.min(MAX_DELAY_US, Math.max(0, Math.round(one.ms * 1000))),
  };
}

/**
 * Times `run(rows)` at 1, 2, 4, … rows (each the fastest of `PROBE_REPEATS`) until a run passes the
 * latency budget or `maxRows` is reached, and returns the choice with the timings it rests on.
 * `run` does one real inference of that many rows and may return how long it ran (ms), measured
 * where it ran; otherwise the probe times the call itself.
 */
export async function probeBatching(
  run: (rows: number) => Promise<number | void>,
  maxRows = MAX_PROBE_ROWS,
  now: () => number = () => performance.now(),
): Promise<BatchingChoice & { timings: ProbeTiming[] }> {
  const timings: ProbeTiming[] = [];
  let budgetMs = Infinity;
  const start = now();
  for (let rows = 1; rows <= maxRows; rows *= 2) {
    let ms = Infinity;
    const sizeStart = now();
    // Repeats only while they are cheap: a slow run is timed once.
    for (let r = 0; r < PROBE_REPEATS && (r === 0 || now() - sizeStart < REPEAT_WITHIN_MS); r++) {
      const t0 = now();
      const ran = await run(rows);
      ms = Math.min(ms, typeof ran === 'number' ? ran : now() - t0);
    }
    timings.push({ rows, ms });
    if (rows === 1) budgetMs = Math.max(MIN_BUDGET_MS, BUDGET_FACTOR * ms);
    else if (ms > budgetMs) break;
    if (now() - start > PROBE_MAX_MS) break;
  }
  return { ...chooseBatching(timings), timings };
}

/**
 * On one core, the size that keeps a loaded model's batches on the main thread (placement's
 * `loadedMaxRows`, runtime/placement.ts), or undefined to keep `maxBatchSize`. A worker thread there
 * only shares the core, so a larger batch sent to it saves rows' cost but pays the hop; the cut is
 * taken when the probe's rows at that size (the largest probed size up to it) cost no more than
 * NO_WORSE × its cheapest rows at any size up to `maxBatchSize`: both from the same timings, taken the
 * same way in the same thread. It leaves at least 2 rows.
 */
export function capForInline(
  maxBatchSize: number,
  timings: readonly ProbeTiming[],
  loadedRows: number,
): number | undefined {
  if (loadedRows < 2 || loadedRows >= maxBatchSize) return undefined;
  const perRow = (t: ProbeTiming) => t.ms / t.rows;
  const within = timings.filter((t) => t.rows > 0 && t.rows <= maxBatchSize);
  const at = within.filter((t) => t.rows <= loadedRows).sort((a, b) => b.rows - a.rows)[0];
  if (at === undefined || at.rows < 2) return undefined;
  return perRow(at) <= NO_WORSE * Math.min(...within.map(perRow)) ? loadedRows : undefined;
}
