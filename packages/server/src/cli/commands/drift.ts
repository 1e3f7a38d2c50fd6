// `ferry drift --reference REF --current CUR [...]`: compares two dataset files column by column with
// Evidently's default tests and prints a table and the dataset verdict (or JSON). Returns an exit code
// through the CLI context, so tests run it in process.
import type { Command } from 'commander';
import { argumentErrorsExitWith, CliUsageError, type CliContext, type CliIo } from '../shared.js';
import { detectDrift } from '../../monitoring/drift/detect-drift.js';
import { DriftError } from '../../monitoring/drift/errors.js';
import { formatReport, reportJson } from '../../monitoring/drift/format-report.js';
import { readTable } from '../../monitoring/drift/read-table.js';
import {
  STAT_TEST_NAMES,
  type Column,
  type ColumnTestOptions,
  type DriftOptions,
  type StatTestName,
} from '../../monitoring/drift/types.js';

/** Exit codes of `ferry drift`. */
export const DRIFT_EXIT = Object.freeze({
  /** The report was produced — whether or not drift was found (unless --fail-on-drift). */
  ok: 0,
  /** --fail-on-drift was given and the dataset drifted. */
  drift: 1,
  /** Bad arguments, unreadable files, options that do not fit the data. */
  error: 2,
});

interface Flags {
  reference: string;
  current: string;
  numerical?: string;
  categorical?: string;
  columns?: string;
  test?: string[];
  threshold?: string[];
  driftShare?: string;
  json?: boolean;
  failOnDrift?: boolean;
}

/** A flag that does not fit the data: `ferry drift: message`, exit 2. */
const usage = (message: string): CliUsageError => new CliUsageError(message, DRIFT_EXIT.error, 'ferry drift');

const list = (v: string | undefined): string[] =>
  (v ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
const collect = (v: string, prev: string[] = []): string[] => [...prev, ...list(v)];

function pairs(flag: string, items: string[] | undefined): Array<[string, string]> {
  return (items ?? []).map((item) => {
    const at = item.lastIndexOf('=');
    if (at <= 0 || at === item.length - 1) throw usage(`${flag} expects column=value, got "${item}"`);
    return [item.slice(0, at), item.slice(at + 1)];
  });
}

function optionsFrom(f: Flags, known: Set<string>): { options: DriftOptions; only: string[] } {
  const check = (flag: string, names: string[]): string[] => {
    const unknown = names.filter((n) => !known.has(n));
    if (unknown.length)
      throw usage(`${flag}: no column named ${unknown.map((n) => `"${n}"`).join(', ')} in either file`);
    return names;
  };
  const columns: Record<string, ColumnTestOptions> = {};
  for (const [col, test] of pairs('--test', f.test)) {
    check('--test', [col]);
    if (!(STAT_TEST_NAMES as readonly string[]).includes(test))
      throw usage(`--test ${col}=${test}: unknown test (known: ${STAT_TEST_NAMES.join(', ')})`);
    columns[col] = { ...columns[col], test: test as StatTestName };
  }
  for (const [col, value] of pairs('--threshold', f.threshold)) {
    check('--threshold', [col]);
    const x = Number(value);
    if (!Number.isFinite(x) || x < 0) throw usage(`--threshold ${col}=${value}: expected a number ≥ 0`);
    columns[col] = { ...columns[col], threshold: x };
  }
  let datasetDriftShare: number | undefined;
  if (f.driftShare !== undefined) {
    datasetDriftShare = Number(f.driftShare);
    if (!(datasetDriftShare >= 0 && datasetDriftShare <= 1))
      throw usage(`--drift-share must be between 0 and 1, got "${f.driftShare}"`);
  }
  return {
    options: {
      columns,
      numerical: check('--numerical', list(f.numerical)),
      categorical: check('--categorical', list(f.categorical)),
      ...(datasetDriftShare !== undefined && { datasetDriftShare }),
    },
    only: check('--columns', list(f.columns)),
  };
}

async function run(f: Flags, io: CliIo): Promise<number> {
  const [reference, current] = await Promise.all([readTable(f.reference), readTable(f.current)]);
  const known = new Set([...reference, ...current].map((c) => c.name));
  const { options, only } = optionsFrom(f, known);
  const pick = (cols: Column[]): Column[] => (only.length ? cols.filter((c) => only.includes(c.name)) : cols);
  const report = detectDrift(pick(reference), pick(current), options);
  if (f.json) {
    io.stdout(`${reportJson({ reference: f.reference, current: f.current, ...report })}\n`);
  } else {
    const rows = (cols: Column[]): number => Math.max(0, ...cols.map((c) => c.values.length));
    io.stdout(
      `drift of ${f.current} (${rows(current)} rows) against ${f.reference} (${rows(reference)} rows)\n\n${formatReport(report)}`,
    );
  }
  return f.failOnDrift && report.dataset.datasetDrift ? DRIFT_EXIT.drift : DRIFT_EXIT.ok;
}

export function registerDriftCommand(program: Command, ctx: CliContext): void {
  const cmd = program
    .command('drift')
    .summary(
      'detect data drift between a reference and a current dataset: ferry drift --reference REF --current CUR [--json] [--fail-on-drift] (see ferry drift --help)',
    )
    .description(
      'Detect data drift between a reference and a current dataset (CSV, TSV, JSON Lines, JSON or Parquet), ' +
        "column by column, with Evidently's default tests. Exits 0 whether or not drift is found, unless --fail-on-drift.",
    )
    .requiredOption('--reference <file>', 'reference dataset (what the model was trained or validated on)')
    .requiredOption('--current <file>', 'current dataset (e.g. recent inputs)')
    .option('--numerical <cols>', 'comma-separated columns to treat as numerical')
    .option('--categorical <cols>', 'comma-separated columns to treat as categorical')
    .option('--columns <cols>', 'comma-separated columns to test (default: every column)')
    .option(
      '--test <col=test>',
      `test for a column, repeatable or comma-separated (${STAT_TEST_NAMES.join(', ')})`,
      collect,
    )
    .option('--threshold <col=x>', 'threshold for a column, repeatable or comma-separated', collect)
    .option('--drift-share <x>', 'share of drifted columns from which the dataset drifts (default 0.5)')
    .option('--json', 'print the report as JSON')
    .option('--fail-on-drift', 'exit 1 when the dataset drifts (for CI)')
    .allowExcessArguments(false)
    .action(async (f: Flags) => {
      try {
        ctx.setExitCode(await run(f, ctx.io));
      } catch (e) {
        if (e instanceof DriftError) throw usage(e.message);
        throw e;
      }
    });
  argumentErrorsExitWith(cmd, DRIFT_EXIT.error);
}
