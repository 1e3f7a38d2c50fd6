#!/usr/bin/env node
// `npm run bench:pipelines`: the batch pipeline bars of issue #7, measured in one run.
// - Scoring flights-3m.parquet end to end (read, map, infer, write) vs copying the same rows and
//   columns to the same sink with no model (`--copy-only`, the I/O limit): ratio ≥ 0.6 wanted.
// - The model's raw in-process rows/s at batch 4096 (ONNX Runtime on this thread, preprocessing
//   excluded and included), so the reader sees where the time goes.
// - Peak RSS scoring 3M rows vs 300k rows (≤ 1.2× wanted): each run is a child `ferry batch run`
//   process, and its peak RSS (all threads) is reported by the process itself at exit.
// - The same for PostgreSQL as the sink (a fresh schema, dropped afterwards).
// Usage: node bench/dist/pipelines.js [--rows N] [--small N] [--no-postgres] [--out FILE]
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import pg from 'pg';
import * as ort from 'onnxruntime-node';
import { asyncBufferFromFile, parquetReadObjects } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { compileEncoder, type Instance } from '@ferry/core';
import { Repository } from '@ferry/server';
import { FERRY_CLI, MODELS_DIR, REPO_ROOT } from './paths.js';

const FLIGHTS = join(REPO_ROOT, 'node_modules/vega-datasets/data/flights-3m.parquet');
const PG_URL = process.env.FERRY_BENCH_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
// Reports the whole process's peak RSS (main thread and workers) on the way out.
const PEAK_RSS_HOOK = `data:text/javascript,process.on('exit',()=>process.stderr.write('PEAK_RSS_KB '+process.resourceUsage().maxRSS+'\\n'))`;

interface Measured {
  label: string;
  rows: number;
  seconds: number;
  rowsPerSecond: number;
  peakRssMb: number;
}

function pipelineConfig(dir: string, store: Record<string, string>): string {
  const file = join(
    dir,
    `ferry-${Object.values(store)
      .join('-')
      .replace(/[^a-z0-9]/gi, '_')
      .slice(-40)}.yaml`,
  );
  writeFileSync(
    file,
    stringify({
      models: { dir: MODELS_DIR, only: ['flight-delay'] },
      log: { level: 'warn' },
      store,
      pipelines: {
        'flight-delay-daily': {
          source: { kind: 'parquet', path: FLIGHTS },
          model: 'flight-delay@1',
          key: '$row',
          select: [
            { feature: 'month', column: 'date', transform: 'month' },
            { feature: 'dayOfWeek', column: 'date', transform: 'dayOfWeek' },
            { feature: 'hour', column: 'date', transform: 'hour' },
          ],
          chunkRows: 50_000,
          batchRows: 4096,
        },
      },
    }),
  );
  return file;
}

function runBatch(
  label: string,
  cfg: string,
  rows: number,
  extra: string[],
  log: (s: string) => void,
): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(
      process.execPath,
      [
        '--import',
        PEAK_RSS_HOOK,
        FERRY_CLI,
        'batch',
        'run',
        'flight-delay-daily',
        '-c',
        cfg,
        '--json',
        '--limit',
        String(rows),
        ...extra,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.on('exit', (code) => {
      if (code !== 0) {
        reject(new Error(`${label}: exit ${code}\n${err}`));
        return;
      }
      const s = JSON.parse(out) as { rowsScored: number; rowsRejected: number; durationMs: number };
      const rss = Number(/PEAK_RSS_KB (\d+)/.exec(err)?.[1] ?? NaN) / 1024;
      const m: Measured = {
        label,
        rows: s.rowsScored + s.rowsRejected,
        seconds: s.durationMs / 1000,
        rowsPerSecond: ((s.rowsScored + s.rowsRejected) * 1000) / s.durationMs,
        peakRssMb: rss,
      };
      log(
        `${label}: ${m.rows.toLocaleString('en-US')} rows in ${m.seconds.toFixed(1)} s (process ${((performance.now() - t0) / 1000).toFixed(1)} s), ${Math.round(m.rowsPerSecond).toLocaleString('en-US')} rows/s, peak RSS ${m.peakRssMb.toFixed(0)} MB`,
      );
      resolve(m);
    });
  });
}

/** The flight-delay model alone, in process, at batch 4096: inference only, and preprocessing + inference. */
async function rawModel(
  log: (s: string) => void,
): Promise<{ inferRowsPerSecond: number; encodeAndInferRowsPerSecond: number }> {
  const v = Repository.load(MODELS_DIR, ['flight-delay']).resolve('flight-delay@1');
  const encoder = compileEncoder(v.manifest);
  const rows = (await parquetReadObjects({
    file: await asyncBufferFromFile(FLIGHTS),
    rowStart: 0,
    rowEnd: 4096,
    compressors,
  })) as Array<{ date: Date; distance: bigint | number; origin: string; destination: string }>;
  const instances: Instance[] = rows.map((r) => ({
    month: r.date.getUTCMonth() + 1,
    dayOfWeek: r.date.getUTCDay(),
    hour: r.date.getUTCHours() + r.date.getUTCMinutes() / 60,
    distance: Number(r.distance),
    origin: r.origin,
    destination: r.destination,
  }));
  const session = await ort.InferenceSession.create(v.modelPath, {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
  });
  const toOrt = (feeds: ReturnType<typeof encoder.encode>) =>
    Object.fromEntries(
      Object.entries(feeds).map(([k, t]) => [k, new ort.Tensor(t.dtype as 'float32', t.data as Float32Array, t.dims)]),
    );
  const feeds = toOrt(encoder.encode(instances));
  for (let i = 0; i < 5; i++) await session.run(feeds);
  const reps = 50;
  let t0 = performance.now();
  for (let i = 0; i < reps; i++) await session.run(feeds);
  const inferRowsPerSecond = (reps * 4096 * 1000) / (performance.now() - t0);
  t0 = performance.now();
  for (let i = 0; i < reps; i++) await session.run(toOrt(encoder.encode(instances)));
  const encodeAndInferRowsPerSecond = (reps * 4096 * 1000) / (performance.now() - t0);
  await session.release();
  log(
    `raw model, batch 4096, one thread: ${Math.round(inferRowsPerSecond).toLocaleString('en-US')} rows/s inference only, ${Math.round(encodeAndInferRowsPerSecond).toLocaleString('en-US')} rows/s with preprocessing`,
  );
  return { inferRowsPerSecond, encodeAndInferRowsPerSecond };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rows: { type: 'string', default: '3000000' },
      small: { type: 'string', default: '300000' },
      'no-postgres': { type: 'boolean', default: false },
      out: { type: 'string', default: join(REPO_ROOT, 'bench/results/pipelines.json') },
    },
  });
  const big = Number(values.rows);
  const small = Number(values.small);
  const log = (s: string) => process.stderr.write(`${s}\n`);
  const dir = mkdtempSync(join(tmpdir(), 'ferry-bench-pipelines-'));
  const report: Record<string, unknown> = {
    rows: big,
    smallRows: small,
    cores: (await import('node:os')).availableParallelism(),
  };
  try {
    report.rawModel = await rawModel(log);
    const sinks: Array<[string, Record<string, string>, () => Promise<void>]> = [
      ['sqlite', { url: `sqlite:${join(dir, 'bench.db')}` }, async () => {}],
    ];
    const schema = `ferry_bench_${process.pid}`;
    if (!values['no-postgres'])
      sinks.push([
        'postgres',
        { url: PG_URL, schema },
        async () => {
          const c = new pg.Client({ connectionString: PG_URL });
          await c.connect();
          await c.query(`drop schema if exists "${schema}" cascade`);
          await c.end();
        },
      ]);
    for (const [name, store, cleanup] of sinks) {
      // A fresh database per measurement, so every run inserts into an empty table.
      const fresh = async (tag: string) => {
        await cleanup();
        const s = name === 'sqlite' ? { url: `sqlite:${join(dir, `${tag}.db`)}` } : store;
        return pipelineConfig(dir, s);
      };
      const copy = await runBatch(`${name} copy-only ${big}`, await fresh('copy'), big, ['--copy-only'], log);
      const score = await runBatch(`${name} score ${big}`, await fresh('score'), big, [], log);
      const scoreSmall = await runBatch(`${name} score ${small}`, await fresh('small'), small, [], log);
      await cleanup();
      const ratio = score.rowsPerSecond / copy.rowsPerSecond;
      const rssRatio = score.peakRssMb / scoreSmall.peakRssMb;
      log(
        `${name}: scoring/copy rows/s = ${ratio.toFixed(2)} (bar ≥ 0.6); peak RSS ${big}/${small} rows = ${rssRatio.toFixed(2)} (bar ≤ 1.2)`,
      );
      report[name] = { copy, score, scoreSmall, scoreOverCopy: ratio, rssBigOverSmall: rssRatio };
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  mkdirSync(dirname(values.out), { recursive: true });
  writeFileSync(values.out, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify(report, null, 2)}\nwrote ${values.out}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench failed: ${(e as Error)?.stack ?? String(e)}\n`);
  process.exit(1);
});
