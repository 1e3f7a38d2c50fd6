// Generation rows of `npm run bench`: time to first token and tokens/s of Ferry's OpenAI-compatible
// streaming endpoint (`ferry serve` in its own process, read by a plain node:http client here), against
// a baseline measured in the same run: the same model stepped with its KV cache by ONNX Runtime
// directly in this process (no HTTP, no worker, no tokenizer). The ratio is what serving costs per
// token. Runs on models/ham-chat (built by `npm run models`).
// Continuous batching rows: total tokens/s and time to first token p50 at 1, 4, 8 and 16 concurrent
// streams (ratios to one stream, same run), and the prefix cache: time to first token on a shared
// 200-token system prompt, hit (the prompt seen before) against miss (a fresh prompt of the same length),
// on models/ham-gpt (256-token context).
// Standalone: node bench/dist/generation.js [--requests 8] [--tokens 96] [--concurrency 4]
//   [--gpt-dir <ham-gpt version folder>] [--window 3]
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import * as ort from 'onnxruntime-node';
import { parse } from 'yaml';
import type { Generation } from '@ferry/core';
import { FERRY_CLI, MODELS_DIR } from './paths.js';
import { ferryServeArgs, freePort, startNode, waitReady } from './processes.js';
// Deep import on purpose: the decoder runtime and tokenizer are not part of @ferry/server's public face.
import { decoderLayout, KvSequence, argmax, TextCodec } from '../../packages/server/dist/generation/index.js';

export interface GenerationBenchOptions {
  requests: number;
  tokens: number;
  concurrency: number;
  /** The ham-gpt version directory the batching and prefix-cache rows serve (default: the committed one). */
  gptDir?: string;
  /** Length of the closed loop's measured window at each N, in seconds. */
  windowSeconds: number;
}

/** The committed ham-gpt: the model of the continuous-batching and prefix-cache rows. */
export const HAM_GPT_DIR = join(MODELS_DIR, 'ham-gpt', '3.0.0');

export interface GenerationBench {
  model: string;
  promptTokens: number;
  raw: { prefillMs: number; stepsPerS: number; tokens: number };
  ferry: {
    ttftP50Ms: number;
    ttftP90Ms: number;
    tokensPerS: number;
    tokens: number;
    requests: number;
    concurrent: { streams: number; aggregateTokensPerS: number; ttftP50Ms: number };
  };
  ratios: { tokensPerSVsRaw: number; ttftVsRawPrefill: number };
  /** Continuous batching: per number of concurrent streams, total tokens/s and TTFT p50, with ratios to 1 stream. */
  scalingModel: string;
  scaling: ScalingRow[];
  /**
   * The same streams as users make them: N clients in a closed loop (a client sends its next request when
   * its answer ends), started a fraction of one answer's time apart, prompts and lengths differing, so
   * requests arrive while others decode. TTFT here is what a user waits at that concurrency.
   */
  steady: ScalingRow[];
  /** Seconds of each closed-loop row's measured window. */
  steadyWindowSeconds: number;
  prefixCache?: {
    promptTokens: number;
    hitTtftP50Ms: number;
    missTtftP50Ms: number;
    cachedTokens: number;
    speedup: number;
  };
}

interface ScalingRow {
  streams: number;
  totalTokensPerS: number;
  ttftP50Ms: number;
  throughputVs1: number;
  ttftVs1: number;
}

const PROMPT = 'Subject: meeting notes from friday';
// Distinct prompts for the closed-loop rows (no two requests of a client in a row share one).
const SUBJECTS = [
  'meeting notes from friday',
  'problem with my linux install',
  'perl script question',
  'weekend plans',
  'new release of the spam filter',
  'lunch on tuesday',
  'the mail server is down again',
  'patch for the mailing list archive',
  'broken link on the download page',
];
const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};

/** A row of N streams: total tokens/s and TTFT p50, with ratios to `one` (the 1-stream row; itself when absent). */
function scalingRow(streams: number, tokensPerS: number, ttfts: number[], one: ScalingRow | undefined): ScalingRow {
  const ttftP50Ms = quantile(ttfts, 0.5);
  return {
    streams,
    totalTokensPerS: tokensPerS,
    ttftP50Ms,
    throughputVs1: tokensPerS / (one?.totalTokensPerS ?? tokensPerS),
    ttftVs1: ttftP50Ms / (one?.ttftP50Ms ?? ttftP50Ms),
  };
}

/** One streamed completion: client-side time to the first text chunk, and tokens/s after it. */
function streamOnce(
  port: number,
  model: string,
  maxTokens: number,
  prompt = PROMPT,
): Promise<{
  t0: number;
  ttftMs: number;
  tokens: number;
  decodeS: number;
  cachedTokens: number;
  /** Arrival time (performance.now) of each chunk that carried text. */
  chunkAt: number[];
}> {
  const t0 = performance.now();
  const body = JSON.stringify({
    model,
    prompt,
    max_tokens: maxTokens,
    temperature: 0,
    stream: true,
    stream_options: { include_usage: true },
  });
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/openai/v1/completions',
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        if (res.statusCode !== 200) {
          reject(new Error(`completion failed: ${res.statusCode}`));
          res.resume();
          return;
        }
        let first: number | undefined;
        let tokens = 0;
        let cachedTokens = 0;
        let buffer = '';
        const chunkAt: number[] = [];
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          buffer += d;
          let cut: number;
          while ((cut = buffer.indexOf('\n\n')) >= 0) {
            const ev = buffer.slice(6, cut);
            buffer = buffer.slice(cut + 2);
            if (ev === '[DONE]') continue;
            const c = JSON.parse(ev) as {
              error?: unknown;
              choices: { text?: string }[];
              usage?: { completion_tokens: number; prompt_tokens_details?: { cached_tokens: number } };
            };
            // The first chunk of the stream, text or not: a token was produced (max_tokens 1 has no later chunk).
            const now = performance.now();
            first ??= now;
            if (c.error) throw new Error(`the stream ended with an error: ${JSON.stringify(c.error)}`);
            if (c.choices[0]?.text) chunkAt.push(now);
            if (c.usage) {
              tokens = c.usage.completion_tokens;
              cachedTokens = c.usage.prompt_tokens_details?.cached_tokens ?? 0;
            }
          }
        });
        res.on('end', () => {
          const end = performance.now();
          const ttftMs = (first ?? end) - t0;
          resolve({ t0, ttftMs, tokens, decodeS: (end - (first ?? end)) / 1000, cachedTokens, chunkAt });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

export async function runGenerationBench(
  o: GenerationBenchOptions,
  log: (line: string) => void,
): Promise<GenerationBench | null> {
  const dir = join(MODELS_DIR, 'ham-chat', '1.0.0');
  if (!existsSync(join(dir, 'model.onnx'))) {
    log('generation: models/ham-chat is not built (npm run models); skipped');
    return null;
  }
  // Baseline: ONNX Runtime stepping the KV cache directly, greedy, same session options as Ferry's defaults.
  const session = await ort.InferenceSession.create(join(dir, 'model.onnx'), {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
  });
  const layout = decoderLayout(session);
  const repo = mkdtempSync(join(tmpdir(), 'ferry-bench-gen-'));
  cpSync(dir, join(repo, 'ham-chat', '1.0.0'), { recursive: true });
  const gptDir = o.gptDir ?? HAM_GPT_DIR;
  const withGpt = existsSync(join(gptDir, 'model.onnx'));
  if (withGpt) cpSync(gptDir, join(repo, 'ham-gpt', basename(gptDir)), { recursive: true });
  const port = await freePort();
  const child = startNode('ferry (generation)', FERRY_CLI, ferryServeArgs(repo, port), { cwd: repo });
  try {
    await waitReady(child, `http://127.0.0.1:${port}`, 60_000);
    const generation = (parse(readFileSync(join(dir, 'ferry.yaml'), 'utf8')) as { generation: Generation }).generation;
    const promptIds = new TextCodec(dir, generation).encode(PROMPT, true);
    const contextLength = generation.contextLength;
    const maxTokens = Math.min(o.tokens, contextLength - promptIds.length);
    const rawRuns: { prefillMs: number; stepsPerS: number }[] = [];
    // Five runs before Ferry is measured and five after, so a disturbance of the shared machine shows in both.
    const rawDecode = async (runs: number) => {
      for (let r = 0; r < runs; r++) {
        const seq = new KvSequence(session, layout);
        const t0 = performance.now();
        let logits = await seq.step(promptIds);
        const t1 = performance.now();
        for (let i = 1; i < maxTokens; i++) logits = await seq.step([argmax(logits)]);
        const t2 = performance.now();
        seq.dispose();
        rawRuns.push({ prefillMs: t1 - t0, stepsPerS: (maxTokens - 1) / ((t2 - t1) / 1000) });
      }
    };
    await rawDecode(5);
    const raw = {
      prefillMs: quantile(
        rawRuns.map((x) => x.prefillMs),
        0.5,
      ),
      stepsPerS: quantile(
        rawRuns.map((x) => x.stepsPerS),
        0.5,
      ),
      tokens: maxTokens,
    };
    await streamOnce(port, 'ham-chat', maxTokens); // warm the HTTP path
    const runs = [];
    for (let i = 0; i < o.requests; i++) runs.push(await streamOnce(port, 'ham-chat', maxTokens));
    const tokens = runs.reduce((a, r) => a + r.tokens, 0);
    const tokensPerS =
      runs.reduce((a, r) => a + Math.max(0, r.tokens - 1), 0) / runs.reduce((a, r) => a + r.decodeS, 0);
    const t0 = performance.now();
    const conc = await Promise.all(
      Array.from({ length: o.concurrency }, () => streamOnce(port, 'ham-chat', maxTokens)),
    );
    const concS = (performance.now() - t0) / 1000;
    await rawDecode(5);
    Object.assign(raw, {
      prefillMs: quantile(
        rawRuns.map((x) => x.prefillMs),
        0.5,
      ),
      stepsPerS: quantile(
        rawRuns.map((x) => x.stepsPerS),
        0.5,
      ),
    });
    log(
      `generation: raw ORT prefill ${raw.prefillMs.toFixed(2)} ms, ${raw.stepsPerS.toFixed(0)} decode steps/s (median of ${rawRuns.length} runs)`,
    );
    const ferry = {
      ttftP50Ms: quantile(
        runs.map((r) => r.ttftMs),
        0.5,
      ),
      ttftP90Ms: quantile(
        runs.map((r) => r.ttftMs),
        0.9,
      ),
      tokensPerS,
      tokens,
      requests: runs.length,
      concurrent: {
        streams: o.concurrency,
        aggregateTokensPerS: conc.reduce((a, r) => a + r.tokens, 0) / concS,
        ttftP50Ms: quantile(
          conc.map((r) => r.ttftMs),
          0.5,
        ),
      },
    };
    log(
      `generation: Ferry TTFT p50 ${ferry.ttftP50Ms.toFixed(2)} ms, ${ferry.tokensPerS.toFixed(0)} tokens/s per stream, ${ferry.concurrent.aggregateTokensPerS.toFixed(0)} tokens/s over ${o.concurrency} streams`,
    );
    // Continuous batching: waves of N concurrent streams, each the same prompt and length; the wave's total
    // tokens over its wall time, and the TTFT of each of its streams.
    // On ham-gpt when it is there: a model whose step costs more than ham-chat's 1 ms shows what batching saves.
    const scalingModel = withGpt ? 'ham-gpt' : 'ham-chat';
    const scaling: GenerationBench['scaling'] = [];
    for (const streams of [1, 4, 8, 16]) {
      const waves = Math.max(2, Math.ceil(16 / streams));
      let toks = 0;
      let secs = 0;
      const ttfts: number[] = [];
      for (let w = 0; w < waves; w++) {
        const t = performance.now();
        const got = await Promise.all(Array.from({ length: streams }, () => streamOnce(port, scalingModel, maxTokens)));
        secs += (performance.now() - t) / 1000;
        toks += got.reduce((a, r) => a + r.tokens, 0);
        ttfts.push(...got.map((r) => r.ttftMs));
      }
      const row = scalingRow(streams, toks / secs, ttfts, scaling[0]);
      scaling.push(row);
      log(
        `generation: ${scalingModel}, ${streams} streams: ${row.totalTokensPerS.toFixed(0)} tokens/s in all (${row.throughputVs1.toFixed(2)}x one stream), TTFT p50 ${row.ttftP50Ms.toFixed(2)} ms (${row.ttftVs1.toFixed(2)}x)`,
      );
    }
    // Closed loop: each client's requests one after the other, clients staggered by 1/N of one answer,
    // until the end of the window; measured over the steady window only (opening two one-stream answers'
    // time after the start, when every client has started, and closing before any stops), so ramp-up and
    // the tail of the last answers, when fewer than N clients are active, do not count. A request's tokens
    // are spread over its text chunks' arrival times, and those arriving in the window count.
    const steady: ScalingRow[] = [];
    const oneAnswerMs = 1000 * (maxTokens / (scaling[0]?.totalTokensPerS ?? 1000));
    const windowMs = o.windowSeconds * 1000;
    for (const streams of [1, 4, 8, 16]) {
      const start = performance.now();
      const from = start + 2 * oneAnswerMs;
      const to = from + windowMs;
      const done: Awaited<ReturnType<typeof streamOnce>>[] = [];
      await Promise.all(
        Array.from({ length: streams }, async (_, c) => {
          await new Promise((r) => setTimeout(r, (c * oneAnswerMs) / streams));
          for (let i = c * 1000; performance.now() < to; i++) {
            // Lengths from half to all of maxTokens, so the clients drift apart as real ones do.
            const len = Math.max(1, Math.round(maxTokens * (0.5 + ((i * 5) % 8) / 14)));
            done.push(await streamOnce(port, scalingModel, len, `Subject: ${SUBJECTS[i % SUBJECTS.length]}`));
          }
        }),
      );
      let toks = 0;
      for (const r of done) {
        const inWindow = r.chunkAt.filter((t) => t >= from && t < to).length;
        if (r.chunkAt.length) toks += (r.tokens * inWindow) / r.chunkAt.length;
      }
      const ttfts = done.filter((r) => r.t0 >= from && r.t0 < to).map((r) => r.ttftMs);
      const row = scalingRow(streams, toks / (windowMs / 1000), ttfts, steady[0]);
      steady.push(row);
      log(
        `generation: ${scalingModel}, ${streams} clients in a closed loop: ${row.totalTokensPerS.toFixed(0)} tokens/s (${row.throughputVs1.toFixed(2)}x), TTFT p50 ${row.ttftP50Ms.toFixed(2)} ms (${row.ttftVs1.toFixed(2)}x), ${ttfts.length} requests in the window`,
      );
    }
    let prefixCache: GenerationBench['prefixCache'];
    if (withGpt) {
      const g = (parse(readFileSync(join(gptDir, 'ferry.yaml'), 'utf8')) as { generation: Generation }).generation;
      const gptCodec = new TextCodec(gptDir, g);
      // A system prompt of 200 tokens: sentences added until the tokenizer counts 200, then cut there.
      const sentence = 'You are the mail assistant of the Ferry project. Answer politely, briefly and on topic. ';
      let system = '';
      while (gptCodec.encode(system, true).length < 200) system += sentence;
      system = gptCodec.decode(gptCodec.encode(system, true).slice(0, 200));
      const question = (i: number) => `Question ${i}: when is the next release?`;
      const hits: number[] = [];
      const misses: number[] = [];
      let cachedTokens = 0;
      await streamOnce(port, 'ham-gpt', 1, system + question(0)); // the system prompt enters the cache
      for (let i = 1; i <= 12; i++) {
        // Miss: the same length, but its first token differs, so no block of it is cached.
        const miss = await streamOnce(port, 'ham-gpt', 1, `${i % 10}${system.slice(1)}${question(i)}`);
        misses.push(miss.ttftMs);
        const hit = await streamOnce(port, 'ham-gpt', 1, system + question(i));
        hits.push(hit.ttftMs);
        cachedTokens = hit.cachedTokens;
      }
      prefixCache = {
        promptTokens: gptCodec.encode(system + question(1), true).length,
        hitTtftP50Ms: quantile(hits, 0.5),
        missTtftP50Ms: quantile(misses, 0.5),
        cachedTokens,
        speedup: quantile(misses, 0.5) / quantile(hits, 0.5),
      };
      log(
        `generation: prefix cache on ham-gpt: TTFT p50 hit ${prefixCache.hitTtftP50Ms.toFixed(2)} ms vs miss ${prefixCache.missTtftP50Ms.toFixed(2)} ms (${cachedTokens} cached tokens)`,
      );
    }
    return {
      model: 'ham-chat@1.0.0',
      promptTokens: promptIds.length,
      raw,
      ferry,
      ratios: { tokensPerSVsRaw: ferry.tokensPerS / raw.stepsPerS, ttftVsRawPrefill: ferry.ttftP50Ms / raw.prefillMs },
      scalingModel: withGpt ? `ham-gpt@${basename(gptDir)}` : scalingModel,
      scaling,
      steady,
      steadyWindowSeconds: o.windowSeconds,
      ...(prefixCache && { prefixCache }),
    };
  } finally {
    await child.stop();
    await session.release();
    rmSync(repo, { recursive: true, force: true });
  }
}

/** Issue 19's bars on the 8-stream rows, closed loop and bursts: tokens/s ≥ 3× one stream, TTFT p50 ≤ 2×. */
function issue19Bars(g: GenerationBench): string[] {
  const at8 = (rows: ScalingRow[]) => rows.find((r) => r.streams === 8);
  const mark = (ok: boolean) => (ok ? 'met' : 'not met');
  const lines: string[] = [];
  for (const [kind, row] of [
    ['closed loop', at8(g.steady)],
    ['bursts', at8(g.scaling)],
  ] as const) {
    if (!row) continue;
    lines.push(
      `  bars at 8 streams (${kind}): tokens/s ${row.throughputVs1.toFixed(2)}x one stream (>= 3x: ${mark(row.throughputVs1 >= 3)}), TTFT p50 ${row.ttftVs1.toFixed(2)}x (<= 2x: ${mark(row.ttftVs1 <= 2)})`,
    );
  }
  return lines;
}

export function formatGenerationReport(g: GenerationBench): string {
  const f = (x: number, d = 1) => x.toFixed(d);
  return [
    `Generation (${g.model}, ${g.promptTokens}-token prompt, greedy, up to ${g.raw.tokens} tokens; SSE on POST /openai/v1/completions)`,
    `  raw ORT in process, KV cache:   prefill ${f(g.raw.prefillMs, 2)} ms, ${f(g.raw.stepsPerS, 0)} decode steps/s`,
    `  Ferry, 1 stream at a time:      TTFT p50 ${f(g.ferry.ttftP50Ms, 2)} ms (p90 ${f(g.ferry.ttftP90Ms, 2)}), ${f(g.ferry.tokensPerS, 0)} tokens/s  (${g.ferry.requests} requests)`,
    `  Ferry, ${g.ferry.concurrent.streams} concurrent streams:    ${f(g.ferry.concurrent.aggregateTokensPerS, 0)} tokens/s in all, TTFT p50 ${f(g.ferry.concurrent.ttftP50Ms, 2)} ms`,
    `  ratios: Ferry tokens/s ÷ raw steps/s = ${f(g.ratios.tokensPerSVsRaw, 2)}; Ferry TTFT ÷ raw prefill = ${f(g.ratios.ttftVsRawPrefill, 1)}`,
    `  continuous batching on ${g.scalingModel}, N clients in a closed loop (distinct prompts and lengths, staggered starts), over a steady ${g.steadyWindowSeconds}-s window: total tokens/s and TTFT p50, ratios to 1 client:`,
    ...g.steady.map(
      (r) =>
        `    ${String(r.streams).padStart(2)} clients: ${f(r.totalTokensPerS, 0).padStart(6)} tokens/s (${f(r.throughputVs1, 2)}x)   TTFT p50 ${f(r.ttftP50Ms, 2)} ms (${f(r.ttftVs1, 2)}x)`,
    ),
    `  the same model, bursts of N identical requests sent at once (every prefill in the same instant):`,
    ...g.scaling.map(
      (r) =>
        `    ${String(r.streams).padStart(2)} streams: ${f(r.totalTokensPerS, 0).padStart(6)} tokens/s (${f(r.throughputVs1, 2)}x)   TTFT p50 ${f(r.ttftP50Ms, 2)} ms (${f(r.ttftVs1, 2)}x)`,
    ),
    ...issue19Bars(g),
    ...(g.prefixCache
      ? [
          `  prefix cache (ham-gpt, ${g.prefixCache.promptTokens}-token prompt with a shared 200-token system prompt): TTFT p50 hit ${f(g.prefixCache.hitTtftP50Ms, 2)} ms vs miss ${f(g.prefixCache.missTtftP50Ms, 2)} ms = ${f(g.prefixCache.speedup, 2)}x faster (${g.prefixCache.cachedTokens} tokens cached)`,
        ]
      : []),
  ].join('\n');
}

if (process.argv[1] && pathToFileURL(process.argv[1]).href === import.meta.url) {
  const { values } = parseArgs({
    options: {
      requests: { type: 'string', default: '8' },
      tokens: { type: 'string', default: '96' },
      concurrency: { type: 'string', default: '4' },
      'gpt-dir': { type: 'string' },
      window: { type: 'string', default: '3' },
    },
  });
  const r = await runGenerationBench(
    {
      requests: Number(values.requests),
      tokens: Number(values.tokens),
      concurrency: Number(values.concurrency),
      windowSeconds: Number(values.window),
      ...(values['gpt-dir'] && { gptDir: values['gpt-dir'] }),
    },
    (l) => process.stderr.write(`${l}\n`),
  );
  if (r) process.stdout.write(`${formatGenerationReport(r)}\n`);
  process.exit(0);
}
