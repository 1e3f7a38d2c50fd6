// Generation rows of `npm run bench`: time to first token and tokens/s of Ferry's OpenAI-compatible
// streaming endpoint (`ferry serve` in its own process, read by a plain node:http client here), against
// a baseline measured in the same run: the same model stepped with its KV cache by ONNX Runtime
// directly in this process (no HTTP, no worker, no tokenizer). The ratio is what serving costs per
// token. Runs on models/ham-chat (built by `npm run models`).
// Standalone: node bench/dist/generation.js [--requests 8] [--tokens 96] [--concurrency 4]
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import * as ort from 'onnxruntime-node';
import { parse } from 'yaml';
import type { Generation } from '@ferry/core';
import { FERRY_CLI, MODELS_DIR } from './paths.js';
import { freePort, startNode, waitReady } from './processes.js';
// Deep import on purpose: the decoder runtime and tokenizer are not part of @ferry/server's public face.
import { decoderLayout, KvSequence, argmax, TextCodec } from '../../packages/server/dist/generation/index.js';

export interface GenerationBenchOptions {
  requests: number;
  tokens: number;
  concurrency: number;
}

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
}

const PROMPT = 'Subject: meeting notes from friday';
const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};

/** One streamed completion: client-side time to the first text chunk, and tokens/s after it. */
function streamOnce(
  port: number,
  model: string,
  maxTokens: number,
): Promise<{ ttftMs: number; tokens: number; decodeS: number }> {
  const t0 = performance.now();
  const body = JSON.stringify({
    model,
    prompt: PROMPT,
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
        let buffer = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          buffer += d;
          let cut: number;
          while ((cut = buffer.indexOf('\n\n')) >= 0) {
            const ev = buffer.slice(6, cut);
            buffer = buffer.slice(cut + 2);
            if (ev === '[DONE]') continue;
            const c = JSON.parse(ev) as { choices: { text?: string }[]; usage?: { completion_tokens: number } };
            if (c.choices[0]?.text) first ??= performance.now();
            if (c.usage) tokens = c.usage.completion_tokens;
          }
        });
        res.on('end', () => {
          const end = performance.now();
          resolve({ ttftMs: (first ?? end) - t0, tokens, decodeS: (end - (first ?? end)) / 1000 });
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
  const port = await freePort();
  const child = startNode(
    'ferry (generation)',
    FERRY_CLI,
    ['serve', '--models', repo, '--port', String(port), '--host', '127.0.0.1', '--log-level', 'warn'],
    { cwd: repo },
  );
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
    return {
      model: 'ham-chat@1.0.0',
      promptTokens: promptIds.length,
      raw,
      ferry,
      ratios: { tokensPerSVsRaw: ferry.tokensPerS / raw.stepsPerS, ttftVsRawPrefill: ferry.ttftP50Ms / raw.prefillMs },
    };
  } finally {
    await child.stop();
    await session.release();
    rmSync(repo, { recursive: true, force: true });
  }
}

export function formatGenerationReport(g: GenerationBench): string {
  const f = (x: number, d = 1) => x.toFixed(d);
  return [
    `Generation (${g.model}, ${g.promptTokens}-token prompt, greedy, up to ${g.raw.tokens} tokens; SSE on POST /openai/v1/completions)`,
    `  raw ORT in process, KV cache:   prefill ${f(g.raw.prefillMs, 2)} ms, ${f(g.raw.stepsPerS, 0)} decode steps/s`,
    `  Ferry, 1 stream at a time:      TTFT p50 ${f(g.ferry.ttftP50Ms, 2)} ms (p90 ${f(g.ferry.ttftP90Ms, 2)}), ${f(g.ferry.tokensPerS, 0)} tokens/s  (${g.ferry.requests} requests)`,
    `  Ferry, ${g.ferry.concurrent.streams} concurrent streams:    ${f(g.ferry.concurrent.aggregateTokensPerS, 0)} tokens/s in all, TTFT p50 ${f(g.ferry.concurrent.ttftP50Ms, 2)} ms`,
    `  ratios: Ferry tokens/s ÷ raw steps/s = ${f(g.ratios.tokensPerSVsRaw, 2)}; Ferry TTFT ÷ raw prefill = ${f(g.ratios.ttftVsRawPrefill, 1)}`,
  ].join('\n');
}

if (process.argv[1] && pathToFileURL(process.argv[1]).href === import.meta.url) {
  const { values } = parseArgs({
    options: {
      requests: { type: 'string', default: '8' },
      tokens: { type: 'string', default: '96' },
      concurrency: { type: 'string', default: '4' },
    },
  });
  const r = await runGenerationBench(
    { requests: Number(values.requests), tokens: Number(values.tokens), concurrency: Number(values.concurrency) },
    (l) => process.stderr.write(`${l}\n`),
  );
  if (r) process.stdout.write(`${formatGenerationReport(r)}\n`);
  process.exit(0);
}
