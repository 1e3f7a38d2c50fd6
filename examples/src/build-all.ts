// Builds every example model of models/ that is missing or stale. `npm run models` runs this, and
// npm runs that on every `npm ci` (the root `prepare` script), so the no-change path only hashes the
// generators' sources and data and returns. `--force` rebuilds everything; `--only NAME` picks models.
// Usage: node examples/dist/build-all.js [--force] [--only flight-delay] [--models-dir DIR]
import { parseArgs } from 'node:util';
import { staleReason, writeExample, type ExampleModel } from './lib/example-model.js';
import { isMain } from './lib/main.js';
import { MODELS_DIR } from './lib/paths.js';
import { flightDelay } from './flight-delay/train.js';
import { mlpBench } from './mlp-bench/build.js';
import { spam } from './spam/train.js';
import { sileroVad } from './silero-vad/build.js';
import { ocr } from './ocr/build.js';
import { hamChat } from './ham-chat/train.js';

export const EXAMPLES: readonly ExampleModel[] = [flightDelay, mlpBench, spam, sileroVad, ocr, hamChat];

export interface BuildAllOptions {
  force?: boolean;
  modelsDir?: string;
  log?: (line: string) => void;
}

export interface BuildOutcome {
  model: string;
  /** `fresh` when skipped as up to date. */
  action: 'built' | 'fresh';
  reason?: string;
  ms: number;
}

export async function buildAll(
  examples: readonly ExampleModel[],
  options: BuildAllOptions = {},
): Promise<BuildOutcome[]> {
  const log = options.log ?? (() => {});
  const outcomes: BuildOutcome[] = [];
  // One at a time: the generators are CPU-bound and the machines running npm ci are small.
  for (const example of examples) {
    const t0 = performance.now();
    const key = `${example.name}@${example.version}`;
    const reason = options.force ? '--force' : staleReason(example, options.modelsDir);
    if (reason === undefined) {
      outcomes.push({ model: key, action: 'fresh', ms: performance.now() - t0 });
      log(`${key}: up to date`);
      continue;
    }
    await writeExample(example, options.modelsDir);
    const ms = performance.now() - t0;
    outcomes.push({ model: key, action: 'built', reason, ms });
    log(`${key}: built (${reason}) in ${(ms / 1000).toFixed(1)} s`);
  }
  return outcomes;
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      force: { type: 'boolean', default: false },
      only: { type: 'string', multiple: true },
      'models-dir': { type: 'string', default: MODELS_DIR },
    },
  });
  const only = values.only ?? [];
  const unknown = only.filter((n) => !EXAMPLES.some((e) => e.name === n));
  if (unknown.length) {
    console.error(`unknown example model(s): ${unknown.join(', ')}; known: ${EXAMPLES.map((e) => e.name).join(', ')}`);
    process.exit(2);
  }
  const chosen = only.length ? EXAMPLES.filter((e) => only.includes(e.name)) : EXAMPLES;
  await buildAll(chosen, { force: values.force, modelsDir: values['models-dir'], log: (line) => console.log(line) });
}
