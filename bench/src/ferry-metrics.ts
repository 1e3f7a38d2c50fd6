// Reads Ferry's own /metrics around a load row: how many instances its prediction cache answered,
// how many rows its dynamic batcher put in each inference, and how many batches ran on the main
// thread (`placement: auto` runs an idle model's batch there; docs/production.md). Absent series read as zero, so
// a server without a cache or batcher reports null rather than failing the bench.
export interface FerryCounters {
  cacheHits: number;
  cacheMisses: number;
  batchRows: number;
  batches: number;
  inlineBatches: number;
}

export interface FerryRowStats {
  cacheHits: number;
  cacheMisses: number;
  /** hits / (hits + misses); null when the model does not cache. */
  cacheHitRatio: number | null;
  batches: number;
  /** Mean rows per inference; null when nothing was counted. */
  meanBatchRows: number | null;
  /** Share of the batches run on the main thread (ferry_batches_total{placement="inline"}); null without batches. */
  inlineShare?: number | null;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})?\s+(\S+)/;

function labelsOf(text: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!text) return out;
  for (const m of text.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) out[m[1]!] = m[2]!;
  return out;
}

export async function scrapeFerry(url: string, model: string): Promise<FerryCounters | null> {
  try {
    const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000) });
    if (!res.ok) return null;
    const c: FerryCounters = { cacheHits: 0, cacheMisses: 0, batchRows: 0, batches: 0, inlineBatches: 0 };
    for (const line of (await res.text()).split('\n')) {
      const m = LINE.exec(line);
      if (!m) continue;
      const labels = labelsOf(m[2]);
      if (labels.model !== model) continue;
      const v = Number(m[3]);
      if (m[1] === 'ferry_cache_requests_total' && labels.result === 'hit') c.cacheHits += v;
      else if (m[1] === 'ferry_cache_requests_total' && labels.result === 'miss') c.cacheMisses += v;
      else if (m[1] === 'ferry_batch_size_sum') c.batchRows += v;
      else if (m[1] === 'ferry_batch_size_count') c.batches += v;
      else if (m[1] === 'ferry_batches_total' && labels.placement === 'inline') c.inlineBatches += v;
    }
    return c;
  } catch {
    return null;
  }
}

export function rowStats(before: FerryCounters | null, after: FerryCounters | null): FerryRowStats | null {
  if (!before || !after) return null;
  const hits = after.cacheHits - before.cacheHits;
  const misses = after.cacheMisses - before.cacheMisses;
  const batches = after.batches - before.batches;
  const rows = after.batchRows - before.batchRows;
  return {
    cacheHits: hits,
    cacheMisses: misses,
    cacheHitRatio: hits + misses > 0 ? hits / (hits + misses) : null,
    batches,
    meanBatchRows: batches > 0 ? rows / batches : null,
    inlineShare: batches > 0 ? (after.inlineBatches - before.inlineBatches) / batches : null,
  };
}
