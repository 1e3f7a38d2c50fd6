#!/usr/bin/env node
// `npm run bench`: measures raw ONNX Runtime, a constant Fastify route, a minimal main-thread
// server and Ferry in one run; prints the tables and writes the JSON (bench/results/latest.json).
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseOptions, USAGE } from './options.js';
import { formatReport } from './report.js';
import { runSuite } from './suite.js';
import { formatGenerationReport, runGenerationBench } from './generation.js';

async function main(): Promise<number> {
  let opts;
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`bench: ${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (opts === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const report = await runSuite(opts, (line) => process.stderr.write(`${line}\n`));
  const generation = await runGenerationBench({ requests: 16, tokens: 96, concurrency: 4 }, (line) => process.stderr.write(`${line}\n`));
  mkdirSync(dirname(opts.out), { recursive: true });
  writeFileSync(opts.out, `${JSON.stringify({ ...report, generation }, null, 2)}\n`);
  process.stdout.write(`\n${formatReport(report)}\n${generation ? `\n${formatGenerationReport(generation)}\n` : ''}\nwrote ${opts.out}\n`);
  return 0;
}

main().then((code) => process.exit(code), (e: unknown) => {
  process.stderr.write(`bench failed: ${(e as Error)?.stack ?? String(e)}\n`);
  process.exit(1);
});
