// Provides examples/data/flights-3m.parquet for the `flight-delay-daily` batch pipeline: the
// 3,000,000-flight Parquet file that the vega-datasets npm package ships (US domestic flights,
// columns date, delay, distance, origin, destination). Nothing is downloaded: the file comes with
// `npm ci`; this checks it is the file the pipeline expects and copies it next to the example config.
// Usage: node examples/dist/flight-delay/flights-3m.js [--dest PATH]
import { copyFileSync, mkdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { asyncBufferFromFile, parquetMetadataAsync } from 'hyparquet';
import { isMain } from '../lib/main.js';
import { REPO_ROOT } from '../lib/paths.js';

export const FLIGHTS_3M_DEST = join(REPO_ROOT, 'examples/data/flights-3m.parquet');
export const FLIGHTS_3M_COLUMNS = ['date', 'delay', 'distance', 'origin', 'destination'] as const;

/** Path of flights-3m.parquet inside the installed vega-datasets package. */
export function flights3mSource(): string {
  // vega-datasets exports only its JS entry; walk up from it to the package folder.
  let dir = dirname(createRequire(import.meta.url).resolve('vega-datasets'));
  for (;;) {
    try {
      statSync(join(dir, 'package.json'));
      return join(dir, 'data', 'flights-3m.parquet');
    } catch {
      const up = dirname(dir);
      if (up === dir) throw new Error('cannot find the vega-datasets package folder');
      dir = up;
    }
  }
}

/** Checks the file's schema and row count; returns the row count. */
export async function checkFlights3m(path: string): Promise<number> {
  const md = await parquetMetadataAsync(await asyncBufferFromFile(path));
  const names = md.schema.slice(1).map((s) => s.name);
  for (const c of FLIGHTS_3M_COLUMNS)
    if (!names.includes(c)) throw new Error(`${path}: no column "${c}" (has ${names.join(', ')})`);
  return Number(md.num_rows);
}

/** Copies the file to `dest` unless an identical-size copy is there already. */
export async function prepareFlights3m(
  dest = FLIGHTS_3M_DEST,
): Promise<{ path: string; rows: number; copied: boolean }> {
  const src = flights3mSource();
  const rows = await checkFlights3m(src);
  let copied = false;
  let same = false;
  try {
    same = statSync(dest).size === statSync(src).size;
  } catch {
    /* not there yet */
  }
  if (!same) {
    mkdirSync(dirname(dest), { recursive: true });
    copyFileSync(src, dest);
    copied = true;
  }
  return { path: dest, rows, copied };
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: { dest: { type: 'string', default: FLIGHTS_3M_DEST } } });
  const r = await prepareFlights3m(values.dest);
  process.stdout.write(
    `${r.path}: ${r.rows.toLocaleString('en-US')} flights${r.copied ? ' (copied from vega-datasets)' : ' (already there)'}\n`,
  );
}
