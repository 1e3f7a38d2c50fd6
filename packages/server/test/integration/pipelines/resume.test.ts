// Crash safety with a real process: `ferry batch run` is SIGKILLed mid-run, then `--resume` finishes
// the run. Checked on SQLite and on the running PostgreSQL: every key exactly once, chunks committed
// before the kill are neither re-scored nor rewritten, and the run completes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { createStore, type Store } from '../../store/index.js';
import {
  DIALECTS,
  TEST_DATABASE_URL,
  uniqueSchemaName,
  withAdminClient,
  fixtureRows,
  workspace,
  writeJsonl,
  type Workspace,
} from '@ferry/test-kit';

const CLI = fileURLToPath(new URL('../../cli/main.js', import.meta.url));
const N = 60_000;
const CHUNK = 1000;
let ws: Workspace;

before(async () => {
  ws = await workspace();
  writeJsonl(join(ws.dir, 'rows.jsonl'), fixtureRows(N));
});
after(() => ws.remove());

function ferry(args: string[], cwd: string) {
  const child = spawn(process.execPath, [CLI, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>(
    (res) => {
      child.on('exit', (code, signal) => res({ code, signal, stdout, stderr }));
    },
  );
  return { child, done };
}

const count = async (store: Store, table: 'pipeline_chunks' | 'pipeline_predictions') =>
  Number(
    (
      await store.db
        .selectFrom(table)
        .select((eb) => eb.fn.countAll().as('n'))
        .executeTakeFirstOrThrow()
    ).n,
  );

for (const dialect of DIALECTS) {
  test(`SIGKILL mid-run, then --resume: no duplicated or missing rows [${dialect}]`, async () => {
    const schema = uniqueSchemaName('ferry_resume');
    const storeCfg =
      dialect === 'sqlite'
        ? { url: `sqlite:${join(ws.dir, `resume-${Date.now()}.db`)}` }
        : { url: TEST_DATABASE_URL, schema };
    const cfgFile = join(ws.dir, `ferry-${dialect}.yaml`);
    writeFileSync(
      cfgFile,
      stringify({
        models: { dir: ws.repoDir },
        runtime: { workers: 1 },
        log: { level: 'silent' },
        store: storeCfg,
        pipelines: {
          accounts: { source: { kind: 'jsonl', path: 'rows.jsonl' }, model: 'cls@1', key: 'id', chunkRows: CHUNK },
        },
      }),
    );
    const store = createStore(storeCfg);
    try {
      await store.migrate();
      const first = ferry(['batch', 'run', 'accounts', '-c', cfgFile, '--progress', 'none'], ws.dir);
      // Kill once a few chunks are committed: a real crash at an arbitrary point after some progress.
      let committed = 0;
      for (let i = 0; i < 3000 && committed < 5; i++) {
        await new Promise((r) => setTimeout(r, 20));
        committed = await count(store, 'pipeline_chunks').catch(() => 0);
      }
      first.child.kill('SIGKILL');
      const killed = await first.done;
      assert.equal(
        killed.signal,
        'SIGKILL',
        `the run ended before it could be killed: ${killed.stdout}${killed.stderr}`,
      );

      const run = await store.db.selectFrom('pipeline_runs').selectAll().executeTakeFirstOrThrow();
      assert.equal(run.status, 'running', 'a killed run is left running (resumable), not completed');
      const before = await store.db.selectFrom('pipeline_chunks').select(['chunk', 'committed_at']).execute();
      assert.ok(before.length >= 5 && before.length < N / CHUNK, `killed after ${before.length} chunks`);
      const committedRows = before.length * CHUNK;
      assert.equal(
        await count(store, 'pipeline_predictions'),
        committedRows,
        'predictions exist only for committed chunks',
      );
      const sample = await store.db
        .selectFrom('pipeline_predictions')
        .select(['key', 'scored_at'])
        .where('key', 'in', ['r0', 'r999'])
        .execute();

      const resumed = ferry(
        ['batch', 'run', 'accounts', '-c', cfgFile, '--resume', run.run_id, '--progress', 'none', '--json'],
        ws.dir,
      );
      const r = await resumed.done;
      assert.equal(r.code, 0, r.stderr);
      const summary = JSON.parse(r.stdout) as {
        status: string;
        rowsScored: number;
        chunksSkipped: number;
        chunksCommitted: number;
      };
      assert.equal(summary.status, 'completed');
      assert.equal(summary.chunksSkipped, before.length);
      assert.equal(
        summary.rowsScored,
        N - committedRows,
        'the resumed process scored only the rows not committed before the kill',
      );
      assert.equal(summary.chunksCommitted + summary.chunksSkipped, N / CHUNK);

      assert.equal(await count(store, 'pipeline_predictions'), N);
      const keys = await store.db.selectFrom('pipeline_predictions').select('key').execute();
      const want = new Set(fixtureRows(N).map((x) => x.id));
      assert.equal(new Set(keys.map((k) => k.key)).size, N);
      for (const k of keys) assert.ok(want.has(k.key), `unexpected key ${k.key}`);
      const chunks = await store.db.selectFrom('pipeline_chunks').select('chunk').execute();
      assert.deepEqual(
        chunks.map((c) => Number(c.chunk)).sort((a, b) => a - b),
        Array.from({ length: N / CHUNK }, (_, i) => i),
      );
      const after = await store.db
        .selectFrom('pipeline_predictions')
        .select(['key', 'scored_at'])
        .where('key', 'in', ['r0', 'r999'])
        .execute();
      assert.deepEqual(
        after.sort((a, b) => a.key.localeCompare(b.key)),
        sample.sort((a, b) => a.key.localeCompare(b.key)),
        'rows of chunks committed before the kill were not rewritten',
      );
      const final = await store.db.selectFrom('pipeline_runs').select('status').executeTakeFirstOrThrow();
      assert.equal(final.status, 'completed');

      // A completed run cannot be resumed again.
      const again = await ferry(
        ['batch', 'run', 'accounts', '-c', cfgFile, '--resume', run.run_id, '--progress', 'none'],
        ws.dir,
      ).done;
      assert.equal(again.code, 1);
      assert.match(again.stderr, /already completed/);
    } finally {
      await store.close();
      if (dialect === 'postgres') await withAdminClient((c) => c.query(`drop schema if exists "${schema}" cascade`));
    }
  });
}
