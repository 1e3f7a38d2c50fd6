// Drift reports for people (an aligned table and a verdict) and for machines (JSON that keeps an
// infinite chi-squared statistic as the string "Infinity" instead of JSON.stringify's null).
import type { ColumnDrift, DriftReport, UntestedColumn } from './types.js';

/** A number in at most 4 significant digits; tiny values in exponent form. */
export function formatNumber(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (x === Infinity) return 'inf';
  if (x === -Infinity) return '-inf';
  if (x === 0) return '0';
  if (Math.abs(x) < 1e-4) return x.toExponential(2);
  return String(Number(x.toPrecision(4)));
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r) =>
      r
        .map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** The report as a table, the untested columns with their reasons, and the dataset verdict. */
export function formatReport(report: DriftReport): string {
  const tested = report.columns.filter((c): c is ColumnDrift => c.testable);
  const untested = report.columns.filter((c): c is UntestedColumn => !c.testable);
  const lines: string[] = [];
  if (tested.length) {
    const rows = [['column', 'type', 'test', 'n ref/cur', 'statistic', 'p-value', 'threshold', 'drift']];
    for (const c of tested) {
      rows.push([
        c.column,
        c.type,
        c.testLabel,
        `${c.nReference}/${c.nCurrent}`,
        formatNumber(c.statistic),
        c.pValue === undefined ? '-' : formatNumber(c.pValue),
        formatNumber(c.threshold),
        c.drift ? 'DRIFT' : 'no',
      ]);
    }
    lines.push(table(rows));
  }
  if (untested.length) {
    lines.push('', 'not tested:');
    for (const c of untested) lines.push(`  ${c.column}: ${c.reason}`);
  }
  const d = report.dataset;
  lines.push(
    '',
    `dataset drift: ${d.datasetDrift ? 'DETECTED' : 'not detected'} — ${d.driftedColumns} of ${d.testedColumns} tested column(s) drifted` +
      ` (share ${formatNumber(d.share)} ${d.share >= d.driftShareThreshold ? '≥' : '<'} ${formatNumber(d.driftShareThreshold)})`,
  );
  return `${lines.join('\n').replace(/^\n/, '')}\n`;
}

/** JSON of any value holding reports: non-finite numbers become the strings "Infinity", "-Infinity", "NaN". */
export function reportJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v), 2);
}
