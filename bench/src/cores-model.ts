// A capacity model for Ferry on more cores than this machine has (issue 20, item 5), calibrated with
// the CPU per request measured in the scaling rows. P serving processes on C cores, each with one HTTP
// thread and W model workers; a request costs `httpUs` of CPU on its HTTP thread and `inferUs` on a
// worker. Throughput is the least of three limits:
//   HTTP threads:  X·httpUs ≤ P cores (a thread runs on one core at a time)
//   workers:       X·inferUs ≤ P·W cores
//   the machine:   X·(httpUs + inferUs) ≤ C cores
// It ignores what more processes cost besides CPU (batches filling N times slower, N copies of the
// weights, the primary's accept loop), so it is an upper bound; the 2-core rows measure the real gap.

export interface CoresModelInput {
  /** CPU microseconds per request on the HTTP thread (parse, validate, encode, reply). */
  httpUs: number;
  /** CPU microseconds per request in the model workers (batched inference). */
  inferUs: number;
}

/** Requests per second the model predicts for `processes` on `cores`, with the default worker split. */
export function predictedRps(m: CoresModelInput, cores: number, processes: number): number {
  const workersEach = Math.max(1, Math.floor(cores / processes));
  return Math.min(
    (processes * 1e6) / m.httpUs,
    (processes * workersEach * 1e6) / m.inferUs,
    (cores * 1e6) / (m.httpUs + m.inferUs),
  );
}

/** The process count (a power of two up to `cores`) with the highest predicted req/s, the fewest on ties. */
export function bestProcesses(m: CoresModelInput, cores: number): { processes: number; rps: number } {
  let best = { processes: 1, rps: predictedRps(m, cores, 1) };
  for (let p = 2; p <= cores; p *= 2) {
    const rps = predictedRps(m, cores, p);
    if (rps > best.rps * 1.02) best = { processes: p, rps };
  }
  return best;
}
