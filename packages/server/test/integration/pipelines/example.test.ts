// The shipped example: examples/pipelines/ferry.config.yaml validates against the real model
// repository, and its batch predictions for the first flights of vega-datasets' flights-3m.parquet
// equal what the real-time endpoint answers for the same flights.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { asyncBufferFromFile, parquetReadObjects } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { loadConfig } from '../../config/index.js';
import { createServer } from '../../app/create-server.js';
import { runPipeline } from '../../pipelines/runner.js';
import { pipelineWithDefaults, type PipelineInput } from '../../config/schemas/pipelines.js';
import { compileRowMapper } from '../../pipelines/mapping.js';
import { silentLog } from '@ferry/test-kit';

const ROOT = fileURLToPath(new URL('../../../../../', import.meta.url));
const FLIGHTS = join(
  dirname(createRequire(join(ROOT, 'examples/package.json')).resolve('vega-datasets')),
  '..',
  'data',
  'flights-3m.parquet',
);

test('flight-delay-daily: the example config is valid and batch scores equal real-time scores', async () => {
  const example = parse(readFileSync(join(ROOT, 'examples/pipelines/ferry.config.yaml'), 'utf8')) as {
    pipelines: Record<string, PipelineInput>;
  };
  const p = pipelineWithDefaults({
    ...example.pipelines['flight-delay-daily']!,
    source: { kind: 'parquet', path: FLIGHTS },
    chunkRows: 500,
  });
  const cfg = loadConfig({
    env: {},
    cwd: ROOT,
    overrides: {
      'models.dir': join(ROOT, 'models'),
      'models.only': ['flight-delay'],
      'runtime.workers': 2,
      'runtime.warmupRuns': 1,
      'log.level': 'silent',
      'store.url': 'sqlite::memory:',
      'predictionLog.enabled': false,
      pipelines: { 'flight-delay-daily': p },
    },
  });
  const server = await createServer(cfg, { logger: false });
  try {
    await server.loaded;
    const s = await runPipeline({
      name: 'flight-delay-daily',
      pipeline: p,
      config: cfg,
      store: server.store,
      pool: server.service.pool,
      repository: server.repository,
      log: silentLog,
      limit: 1200,
    });
    assert.equal(s.rowsScored + s.rowsRejected, 1200);
    // Airports outside the model's list are ignored by its contract (unknown: ignore), so nothing is rejected.
    assert.equal(s.rowsRejected, 0);

    const rows = (await parquetReadObjects({
      file: await asyncBufferFromFile(FLIGHTS),
      rowStart: 0,
      rowEnd: 1200,
      compressors,
    })) as Array<Record<string, unknown>>;
    const v = server.repository.resolve('flight-delay@1');
    const mapper = compileRowMapper(p, v.manifest);
    const instances = rows.map((r, i) => {
      const m = mapper.map(r, i);
      assert.ok(!('reject' in m));
      return m.instance;
    });
    // The date column is a wall-clock timestamp; its parts are read as written, not shifted by a time zone.
    const d0 = rows[0]!.date as Date;
    assert.deepEqual(
      [instances[0]!.month, instances[0]!.dayOfWeek, instances[0]!.hour],
      [d0.getUTCMonth() + 1, d0.getUTCDay(), d0.getUTCHours() + d0.getUTCMinutes() / 60],
    );
    const stored = await server.store.db
      .selectFrom('pipeline_predictions')
      .select(['key', 'output'])
      .where('run_id', '=', s.runId)
      .execute();
    const byKey = new Map(
      stored.map((r) => [
        r.key,
        server.store.codec.parseJson(r.output) as { label: string; scores: Record<string, number> },
      ]),
    );
    for (let i = 0; i < 1200; i += 200) {
      const live = await server.service.predict(v, instances.slice(i, i + 200));
      live.predictions.forEach((pred, j) => {
        const batch = byKey.get(String(i + j))!;
        const want = pred as { label: string; scores: Record<string, number> };
        assert.equal(batch.label, want.label);
        assert.ok(Math.abs(batch.scores.delayed! - want.scores.delayed!) < 1e-6, `row ${i + j}`);
      });
    }
  } finally {
    await server.close();
  }
});
