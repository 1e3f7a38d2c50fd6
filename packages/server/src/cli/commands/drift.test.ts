// `ferry drift` end to end through the CLI, in process: arguments, exit codes, table and JSON output, and the
// example from docs/drift.md (the flight-delay reference against a shifted copy), whose figures were
// cross-checked with SciPy while developing. Also holds docs/drift.md to the error codes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DRIFT_EXIT } from './drift.js';
import { runCli } from '../program.js';
import type { CliIo } from '../shared.js';
import { DRIFT_ERROR_CODES } from '../../monitoring/drift/errors.js';

const ROOT = fileURLToPath(new URL('../../../../../', import.meta.url));
const REFERENCE = join(ROOT, 'models/flight-delay/1.0.0/reference.jsonl');

let dir = '';
let shifted = '';
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ferry-drift-cli-'));
  // The docs example: distance × 1.5, and every fifth flight moved to ATL.
  const rows = (await readFile(REFERENCE, 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  shifted = join(dir, 'current.jsonl');
  await writeFile(
    shifted,
    rows
      .map((r, i) =>
        JSON.stringify({ ...r, distance: (r.distance as number) * 1.5, origin: i % 5 === 0 ? 'ATL' : r.origin }),
      )
      .join('\n'),
  );
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIo = {
    stdout: (t) => {
      out += t;
    },
    stderr: (t) => {
      err += t;
    },
  };
  const code = await runCli(['drift', ...argv], io);
  return { code, out, err };
}

test('the reference against itself: nothing drifts, exit 0', async () => {
  const r = await cli('--reference', REFERENCE, '--current', REFERENCE);
  assert.equal(r.code, DRIFT_EXIT.ok);
  assert.match(r.out, /dataset drift: not detected — 0 of 7 tested column\(s\) drifted/);
  assert.doesNotMatch(r.out, /DRIFT\b/);
});

test('the docs example: distance and origin drift, the dataset does not; exit 0 unless --fail-on-drift', async () => {
  const r = await cli('--reference', REFERENCE, '--current', shifted, '--json');
  assert.equal(r.code, DRIFT_EXIT.ok);
  const report = JSON.parse(r.out) as { columns: Array<Record<string, unknown>>; dataset: Record<string, unknown> };
  const col = (name: string): Record<string, unknown> => report.columns.find((c) => c.column === name)!;
  // SciPy 1.17.1 while developing: ks_2samp(ref.distance, cur.distance) → D = 0.209, p = 1.5839049278876935e-19;
  // chisquare(observed origin counts, reference counts × 1000/1000) → χ² = 791.6363641314427, p =
  // 3.0714499468479315e-94.
  assert.equal(col('distance').test, 'ks');
  assert.equal(col('distance').statistic, 0.209);
  assert.ok(Math.abs((col('distance').pValue as number) / 1.5839049278876935e-19 - 1) < 1e-9);
  assert.equal(col('origin').test, 'chisquare');
  assert.ok(Math.abs((col('origin').statistic as number) - 791.6363641314427) < 1e-9);
  assert.ok(Math.abs((col('origin').pValue as number) / 3.0714499468479315e-94 - 1) < 1e-9);
  assert.deepEqual(
    report.columns.filter((c) => c.drift).map((c) => c.column),
    ['distance', 'origin'],
  );
  assert.deepEqual(report.dataset, {
    testedColumns: 7,
    driftedColumns: 2,
    share: 2 / 7,
    driftShareThreshold: 0.5,
    datasetDrift: false,
  });
  assert.equal((await cli('--reference', REFERENCE, '--current', shifted, '--fail-on-drift')).code, DRIFT_EXIT.ok);
  const strict = await cli('--reference', REFERENCE, '--current', shifted, '--fail-on-drift', '--drift-share', '0.25');
  assert.equal(strict.code, DRIFT_EXIT.drift);
  assert.match(strict.out, /dataset drift: DETECTED — 2 of 7/);
});

test('table output: one row per column with test, statistic, p-value, threshold and verdict', async () => {
  const r = await cli('--reference', REFERENCE, '--current', shifted, '--columns', 'distance,origin,hour');
  assert.match(r.out, /^column\s+type\s+test\s+n ref\/cur\s+statistic\s+p-value\s+threshold\s+drift$/m);
  assert.match(r.out, /^distance\s+numerical\s+K-S p_value\s+1000\/1000\s+0\.209\s+1\.58e-19\s+0\.05\s+DRIFT$/m);
  assert.match(r.out, /^origin\s+categorical\s+chi-square p_value\s+1000\/1000\s+791\.6\s+3\.07e-94\s+0\.05\s+DRIFT$/m);
  assert.match(r.out, /^hour\s+numerical\s+K-S p_value\s+1000\/1000\s+0\s+1\s+0\.05\s+no$/m);
  assert.match(r.out, /2 of 3 tested column\(s\) drifted \(share 0\.6667 ≥ 0\.5\)/);
});

test('per-column tests and thresholds, type lists, CSV against JSON Lines', async () => {
  const csv = join(dir, 'ref.csv');
  await writeFile(csv, 'x,y\n1,a\n2,b\n3,a\n4,b\n5,a\n6,b\n');
  const jsonl = join(dir, 'cur.jsonl');
  await writeFile(jsonl, [1, 2, 3, 4, 5, 7].map((x, i) => JSON.stringify({ x, y: i % 2 ? 'b' : 'a' })).join('\n'));
  const r = await cli(
    '--reference',
    csv,
    '--current',
    jsonl,
    '--numerical',
    'x',
    '--test',
    'x=psi,y=jensenshannon',
    '--threshold',
    'x=0.5',
    '--json',
  );
  assert.equal(r.code, DRIFT_EXIT.ok, r.err);
  const report = JSON.parse(r.out) as { columns: Array<Record<string, unknown>> };
  assert.deepEqual(
    report.columns.map((c) => [c.column, c.type, c.test, c.threshold]),
    [
      ['x', 'numerical', 'psi', 0.5],
      ['y', 'categorical', 'jensenshannon', 0.1],
    ],
  );
  assert.equal(report.columns[1]!.distance, 0);
});

test('JSON keeps an infinite chi-squared statistic as "Infinity"', async () => {
  const a = join(dir, 'a.jsonl');
  const b = join(dir, 'b.jsonl');
  await writeFile(a, ['x', 'y', 'z'].map((c) => JSON.stringify({ c })).join('\n'));
  await writeFile(b, ['x', 'y', 'new'].map((c) => JSON.stringify({ c })).join('\n'));
  const report = JSON.parse((await cli('--reference', a, '--current', b, '--json')).out) as {
    columns: Array<Record<string, unknown>>;
  };
  assert.equal(report.columns[0]!.statistic, 'Infinity');
  assert.equal(report.columns[0]!.pValue, 0);
  assert.match(
    (await cli('--reference', a, '--current', b)).out,
    /^c\s+categorical\s+chi-square p_value\s+3\/3\s+inf\s+0\s+0\.05\s+DRIFT$/m,
  );
});

test('untestable columns are listed with their reason', async () => {
  const a = join(dir, 'u1.jsonl');
  const b = join(dir, 'u2.jsonl');
  await writeFile(a, [1.5, 2.5].map((x) => JSON.stringify({ x, gone: null })).join('\n'));
  await writeFile(b, [1.5, 2.5].map((x) => JSON.stringify({ x, gone: null })).join('\n'));
  const r = await cli('--reference', a, '--current', b);
  assert.equal(r.code, DRIFT_EXIT.ok);
  assert.match(r.out, /not tested:\n {2}gone: no values in either dataset/);
});

test('usage errors exit 2 with a message; --help exits 0', async () => {
  for (const argv of [
    ['--reference', REFERENCE],
    ['--reference', REFERENCE, '--current', shifted, '--columns', 'nope'],
    ['--reference', REFERENCE, '--current', shifted, '--test', 'origin=ks'],
    ['--reference', REFERENCE, '--current', shifted, '--test', 'origin'],
    ['--reference', REFERENCE, '--current', shifted, '--threshold', 'origin=-1'],
    ['--reference', REFERENCE, '--current', shifted, '--drift-share', '2'],
    ['--reference', REFERENCE, '--current', join(dir, 'absent.jsonl')],
    ['--reference', REFERENCE, '--current', shifted, 'extra'],
  ]) {
    const r = await cli(...argv);
    assert.equal(r.code, DRIFT_EXIT.error, argv.join(' '));
    assert.ok(r.err.length > 0, argv.join(' '));
  }
  const help = await cli('--help');
  assert.equal(help.code, DRIFT_EXIT.ok);
  assert.match(help.out, /--fail-on-drift/);
});

test('docs/drift.md lists every error code and exit code', () => {
  const doc = readFileSync(join(ROOT, 'docs/drift.md'), 'utf8');
  for (const code of DRIFT_ERROR_CODES) assert.ok(doc.includes(`\`${code}\``), `docs/drift.md does not list ${code}`);
  for (const [name, code] of Object.entries(DRIFT_EXIT))
    assert.match(doc, new RegExp(`\\| ${code} \\|`), `exit code ${code} (${name})`);
});
