// `ferry quantize IN.onnx OUT.onnx [--validate DATA] [--max-delta 0.01] ...`: quantise a model file,
// optionally measure what it cost on validation data, and refuse to write it when the cost is too high.
// The command's options are declared in the server's cli/commands/quantize.ts; this is what it runs.
// Resolves to an exit code instead of exiting, so the CLI (and tests) decide what to do with it.
import { existsSync } from 'node:fs';
import { readFile, rename, writeFile, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Manifest } from '@ferry/core';
import { encoderResources, readManifest, ManifestError } from '@ferry/server';
import { QUANTIZE_EXIT, type CliIo, type QuantizeFlags } from '@ferry/server/cli';
import { QuantizeError } from './errors.js';
import { quantizeModel, type QuantizeOptions, type QuantizeReport } from './quantize-model.js';
import { validate, gatedFigure, type ClassifierSpec, type ValidationReport } from './validate.js';
import { loadValidationData } from './validation-data.js';

export { QUANTIZE_EXIT };

class UsageError extends Error {}

function number(flag: string, v: string | undefined, integer: boolean, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min) {
    throw new UsageError(`${flag} must be ${integer ? 'an integer' : 'a number'} ≥ ${min}, got "${v}"`);
  }
  return n;
}

const pct = (x: number): string => `${(x * 100).toFixed(2)}%`;
const mb = (n: number): string => (n >= 1e6 ? `${(n / 1e6).toFixed(2)} MB` : `${(n / 1e3).toFixed(1)} kB`);

function describeQuantization(r: QuantizeReport): string {
  const lines: string[] = [];
  const scheme = `${r.perChannel ? 'per-channel' : 'per-tensor'} ${r.symmetric ? 'int8' : 'uint8'}${r.reduceRange ? ' (7-bit)' : ''} weights, ${r.format}`;
  if (r.quantized.length === 0) lines.push('nothing to quantise: the model is written unchanged');
  else lines.push(`quantised ${r.quantized.length} node(s) (${scheme}):`);
  for (const q of r.quantized)
    lines.push(`  ${q.name}  ${q.opType} ${q.weight} ${q.shape.join('×')}  weight error ${pct(q.relRmsError)} RMS`);
  if (r.skipped.length) {
    lines.push('left in float:');
    for (const s of r.skipped) lines.push(`  ${s.name}  ${s.opType}: ${s.reason}`);
  }
  lines.push(`size ${mb(r.bytesBefore)} → ${mb(r.bytesAfter)} (${r.sizeRatio.toFixed(2)}× smaller)`);
  return `${lines.join('\n')}\n`;
}

function describeValidation(v: ValidationReport): string {
  const lines = [`validation on ${v.rows} rows, ${v.batchSize} per run:`];
  for (const o of v.outputs)
    lines.push(
      `  output ${o.name}: max |Δ| ${o.maxAbsDiff.toPrecision(3)} (largest |value| ${o.maxAbsValue.toPrecision(3)}), mean |Δ| ${o.meanAbsDiff.toPrecision(3)}`,
    );
  const c = v.classification;
  if (c) {
    lines.push(`  top-1 agreement on ${c.output}: ${pct(c.agreement)} (${c.disagreements} row(s) differ)`);
    if (c.accuracyDelta !== undefined) {
      lines.push(
        `  accuracy: fp32 ${pct(c.fp32Accuracy!)}, int8 ${pct(c.int8Accuracy!)}, delta ${(c.accuracyDelta * 100).toFixed(2)} points`,
      );
    }
  } else {
    lines.push('  not treated as a classifier (no class labels, no ferry.yaml classification, no probability output)');
  }
  return `${lines.join('\n')}\n`;
}

function classifierFrom(manifest: Manifest | null, flag: string | undefined): ClassifierSpec | null | undefined {
  if (flag) return { output: flag };
  const p = manifest?.postprocess;
  if (p?.kind === 'classification') {
    const t = p.threshold ?? 0.5;
    // A single-score output the contract passes through a sigmoid is a logit: compare against logit(t).
    return { output: p.output, threshold: p.activation === 'sigmoid' ? Math.log(t / (1 - t)) : t };
  }
  if (p?.kind === 'regression') return null;
  return undefined;
}

async function writeAtomically(file: string, bytes: Uint8Array): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    await writeFile(tmp, bytes);
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

async function run(inPath: string, outPath: string, f: QuantizeFlags, io: CliIo): Promise<number> {
  if (f.perChannel && f.perTensor) throw new UsageError('--per-channel and --per-tensor contradict each other');
  const maxDelta = number('--max-delta', f.maxDelta, false, 0);
  if (maxDelta !== undefined && !f.validate) {
    throw new UsageError('--max-delta needs --validate DATA: measure the accuracy delta before shipping');
  }
  const minElements = number('--min-elements', f.minElements, true, 0);
  const batchSize = number('--batch-size', f.batchSize, true, 1);
  const limit = number('--limit', f.limit, true, 1);

  let input: Uint8Array;
  try {
    input = new Uint8Array(await readFile(inPath));
  } catch (e) {
    throw new UsageError(`cannot read ${inPath}: ${(e as Error).message}`);
  }
  const options: QuantizeOptions = {
    perChannel: !f.perTensor,
    ...(f.format && { format: f.format }),
    ...(minElements !== undefined && { minElements }),
    ...(f.asymmetric && { symmetric: false }),
    ...(f.reduceRange && { reduceRange: true }),
    ...(f.exclude && {
      exclude: f.exclude
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    }),
  };
  const { bytes, report } = quantizeModel(input, options);
  if (!f.json) io.stdout(describeQuantization(report));

  let validation: ValidationReport | null = null;
  let verdict: { passed: boolean; figure: string; value: number; maxDelta: number } | null = null;
  if (f.validate) {
    const manifestPath = f.manifest ?? join(dirname(inPath), 'ferry.yaml');
    const manifest = f.manifest || existsSync(manifestPath) ? readManifest(manifestPath) : null;
    const source = await loadValidationData(f.validate, {
      model: input,
      manifest,
      ...(manifest && { resources: encoderResources(dirname(manifestPath), manifest, manifestPath) }),
      ...(f.labelKey && { labelKey: f.labelKey }),
      ...(limit !== undefined && { limit }),
    });
    const classifier = classifierFrom(manifest, f.classifierOutput);
    // Default to the largest batch the contract lets the server form: one activation scale spans a batch.
    const rowsPerRun = batchSize ?? manifest?.batching?.maxBatchSize;
    validation = await validate(input, bytes, source, {
      ...(rowsPerRun !== undefined && { batchSize: rowsPerRun }),
      ...(classifier !== undefined && { classifier }),
    });
    if (!f.json) io.stdout(describeValidation(validation));
    if (maxDelta !== undefined) {
      const g = gatedFigure(validation);
      verdict = { passed: g.value <= maxDelta, figure: g.name, value: g.value, maxDelta };
    }
  }

  if (f.json) io.stdout(`${JSON.stringify({ quantization: report, validation, verdict }, null, 2)}\n`);
  if (verdict && !verdict.passed) {
    io.stderr(
      `ferry quantize: FAIL: ${verdict.figure} ${verdict.value.toPrecision(3)} exceeds --max-delta ${verdict.maxDelta}; ${outPath} was not written.\n` +
        'Quantisation costs this model too much. Try per-channel weights, --exclude the most sensitive layers (often the last), ' +
        'or serve the float model: measure the accuracy delta before shipping.\n',
    );
    return QUANTIZE_EXIT.deltaExceeded;
  }
  await writeAtomically(outPath, bytes);
  if (!f.json) {
    if (verdict)
      io.stdout(`PASS: ${verdict.figure} ${verdict.value.toPrecision(3)} ≤ --max-delta ${verdict.maxDelta}\n`);
    else if (!f.validate && report.quantized.length > 0)
      io.stdout('not validated: measure the accuracy delta before shipping (--validate DATA --max-delta 0.01)\n');
    io.stdout(`wrote ${outPath}\n`);
  }
  return QUANTIZE_EXIT.ok;
}

/**
 * Runs `ferry quantize` on parsed arguments and resolves to the exit code: 0 written, 1 the delta exceeded
 * --max-delta (nothing written), 2 bad input. Never throws and never calls process.exit.
 */
export async function runQuantize(inPath: string, outPath: string, flags: QuantizeFlags, io: CliIo): Promise<number> {
  try {
    return await run(inPath, outPath, flags, io);
  } catch (e) {
    if (e instanceof UsageError || e instanceof QuantizeError || e instanceof ManifestError) {
      const code = e instanceof QuantizeError ? ` [${e.code}]` : '';
      io.stderr(`ferry quantize: ${e.message}${code}\n`);
      return QUANTIZE_EXIT.error;
    }
    io.stderr(`ferry quantize: ${(e as Error)?.stack ?? String(e)}\n`);
    return QUANTIZE_EXIT.error;
  }
}
