#!/usr/bin/env node
// `npm run bench`: measures raw ONNX Runtime, a constant Fastify route, a minimal main-thread
// server and Ferry in one run; prints the tables and writes the JSON (bench/results/latest.json).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname } from 'node:path';
import { parseOptions, USAGE } from './options.js';
import { formatReport } from './report.js';
import { runSuite } from './suite.js';
import { formatJobsBench, runJobsBench } from './jobs.js';
import { formatStreaming, runStreamingBench } from './streaming.js';
import { BENCH_MODELS } from './workloads.js';
import { formatGenerationReport, runGenerationBench } from './generation.js';
import { formatTransformerBench, runTransformerBench } from './transformer.js';
import { formatProtocols, runProtocolsBench } from './protocols.js';
import { formatLlmBench, runLlmBench } from './llm-gateway.js';
import { formatScaling, runScalingBench, SCALING_MODELS } from './scaling.js';
import { formatCacheKeyBench, runCacheKeyBench } from './cache-key.js';
import { formatThreadHopBench, runThreadHopBench } from './thread-hop.js';

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
  // The asynchronous job path (issue 6): jobs/s with two workers against the sync rate of the same run.
  // Not in --quick runs (it starts three more processes) unless FERRY_BENCH_JOBS=1; FERRY_BENCH_JOBS=0 skips it.
  const wantJobs = process.env.FERRY_BENCH_JOBS === '1' || (!opts.quick && process.env.FERRY_BENCH_JOBS !== '0');
  const jobs =
    opts.only.includes('flight-delay') && wantJobs
      ? await runJobsBench(opts, (line) => process.stderr.write(`${line}\n`))
      : undefined;
  if (jobs) Object.assign(report, { jobs });
  // gRPC vs REST JSON vs REST binary tensors, and the cost of tracing (issue 22): mlp-bench at 64 clients.
  const protocols =
    opts.only.includes('mlp-bench') && process.env.FERRY_BENCH_PROTOCOLS !== '0'
      ? await runProtocolsBench({ quick: opts.quick }, (line) => process.stderr.write(`${line}\n`))
      : undefined;
  if (protocols) Object.assign(report, { protocols });
  // Cores and peers (issue 20): Ferry pinned vs unpinned vs --processes 2, and the FastAPI + uvicorn peer.
  // FERRY_BENCH_SCALING=0 skips it.
  const scaling =
    SCALING_MODELS.some((m) => opts.only.includes(m)) && process.env.FERRY_BENCH_SCALING !== '0'
      ? await runScalingBench(opts, (line) => process.stderr.write(`${line}\n`))
      : undefined;
  if (scaling) Object.assign(report, { scaling });
  mkdirSync(dirname(opts.out), { recursive: true });
  // Concurrent real-time audio sessions (silero-vad), against raw ONNX Runtime in the same run;
  // part of full runs, left out when --only picks a subset of models.
  const streaming =
    opts.only.length === BENCH_MODELS.length
      ? await runStreamingBench({ quick: opts.quick, log: (line) => process.stderr.write(`${line}\n`) })
      : undefined;
  // Generation rows (issue 19): one stream vs raw ORT, continuous batching, the prefix cache.
  // FERRY_BENCH_GENERATION=0 skips it.
  const generation =
    process.env.FERRY_BENCH_GENERATION === '0'
      ? undefined
      : await runGenerationBench({ requests: 16, tokens: 96, concurrency: 4, windowSeconds: 3 }, (line) =>
          process.stderr.write(`${line}\n`),
        );
  // Transformer rows (issue 17): ragged batching on/off, padding overhead, INT8 vs FP32 on spam-transformer.
  const transformer =
    process.env.FERRY_BENCH_TRANSFORMER === '0'
      ? undefined
      : await runTransformerBench({ seconds: opts.quick ? 4 : 10 }, (line) => process.stderr.write(`${line}\n`));
  // Batch pipelines (issue 7): 3M flights scored vs copied, and peak RSS 3M vs 300k rows, in its own
  // processes (it measures their RSS). Full runs only: it takes minutes. FERRY_BENCH_PIPELINES=0 skips it.
  let pipelines: unknown;
  if (!opts.quick && opts.only.length === BENCH_MODELS.length && process.env.FERRY_BENCH_PIPELINES !== '0') {
    const script = fileURLToPath(new URL('./pipelines.js', import.meta.url));
    const r = spawnSync(process.execPath, [script, '--out', `${opts.out}.pipelines.json`], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    pipelines =
      r.status === 0 ? JSON.parse(readFileSync(`${opts.out}.pipelines.json`, 'utf8')) : { failed: `exit ${r.status}` };
  }
  // The LLM gateway (issue 18): the cost controls on a 10,000-request replay and the gateway's overhead.
  // FERRY_BENCH_LLM=0 skips it; --quick runs replay 2,000 requests.
  const llm =
    process.env.FERRY_BENCH_LLM === '0'
      ? undefined
      : await runLlmBench({ requests: opts.quick ? 2000 : 10_000 }, (line) => process.stderr.write(`${line}\n`));
  // The prediction cache's key per instance (issue 20): the float64 digest vs the JSON text key. A second.
  const cacheKey = runCacheKeyBench(opts.quick ? 100 : 400);
  // A model worker's round trip, tensors moved or copied (issue 20). A few seconds.
  const threadHop = await runThreadHopBench(opts.quick ? 500 : 3000);
  writeFileSync(
    opts.out,
    `${JSON.stringify({ ...report, cacheKey, threadHop, ...(streaming && { streaming }), ...(generation && { generation }), ...(transformer && { transformer }), ...(pipelines !== undefined && { pipelines }), ...(llm && { llm }) }, null, 2)}\n`,
  );
  process.stdout.write(
    `\n${formatReport(report)}\n${jobs ? `\n${formatJobsBench(jobs)}\n` : ''}${protocols ? `\n${formatProtocols(protocols)}\n` : ''}${scaling ? `\n${formatScaling(scaling)}\n` : ''}${streaming ? `\n${formatStreaming(streaming)}\n` : ''}${generation ? `\n${formatGenerationReport(generation)}\n` : ''}${transformer ? `\n${formatTransformerBench(transformer)}\n` : ''}${llm ? `\n${formatLlmBench(llm)}\n` : ''}\n${formatCacheKeyBench(cacheKey)}\n\n${formatThreadHopBench(threadHop)}\n\nwrote ${opts.out}\n`,
  );
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`bench failed: ${(e as Error)?.stack ?? String(e)}\n`);
    process.exit(1);
  },
);
