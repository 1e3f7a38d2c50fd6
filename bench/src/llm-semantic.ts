#!/usr/bin/env node
// `npm run bench:llm-semantic`: how often would the gateway's semantic cache answer a prompt with the
// answer to a different question? Measured on a labelled set of prompt pairs that this script builds
// (nothing is downloaded):
// - paraphrases (should hit): support questions with the same intent and facts, phrased by two different
//   templates ("Where is my order 48213?" / "Has order 48213 shipped yet?"), and re-typed prompts;
// - near pairs that mean something else (must not hit): the same template with one fact changed (an order
//   number, a weekday, a plan, a city, a product), the same words around another intent ("cancel" /
//   "upgrade"), and a negation.
// Embeddings compared: every one this repository can serve without a download —
// - `spam-transformer`, the example transformer, served by Ferry with `postprocess: embedding` (mean pooled
//   `last_hidden_state`, L2-normalised) through the same predict path the gateway's Ferry embedding source
//   uses, and checked end to end: the gateway's semantic hits on a sample must match the offline cosines
//   (one server, threshold 0.95);
// - the provider emulator's embedding (hashed character trigrams, purely lexical) as the baseline.
// Reported per embedding: false-hit rate and paraphrase hit rate at several thresholds, the threshold at
// which false hits fall to ≤ 1 % (and the hit rate left there), and the false-hit rate by kind of pair.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { createServer, loadConfig, type FerryServer } from '@ferry/server';
// Deep import on purpose: the emulator lives in the private test kit.
import { emulatorEmbedding, startLlmEmulator } from '../../packages/test-kit/dist/llm-emulator.js';
import { mulberry32 } from './prng.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const THRESHOLDS = [0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99];

export type PairKind = 'paraphrase' | 'retyped' | 'fact-changed' | 'other-intent' | 'negation';
export interface Pair {
  a: string;
  b: string;
  kind: PairKind;
  /** Whether one answer serves both (the label). */
  same: boolean;
}

interface Intent {
  name: string;
  slot: string[];
  templates: string[];
  /** Same words, another request: the template with the verb swapped (`{x}` is the slot). */
  contrasts: string[];
  /** The template negated (a different request). */
  negations: string[];
}

// Slot values that differ in one fact: order numbers differ by a transposition or one digit.
const INTENTS: Intent[] = [
  {
    name: 'track',
    slot: ['48213', '48231', '51907', '51970', '30466', '30467', '77120', '77210'],
    templates: [
      'Where is my order {x}?',
      'Can you tell me the status of order {x}?',
      "I'm still waiting for order {x}, where is it?",
      'Has order {x} shipped yet?',
      'Please track order number {x} for me.',
    ],
    contrasts: ['Where is the invoice for order {x}?', 'Can you cancel order {x}?'],
    negations: ["Order {x} hasn't arrived, where is it?"],
  },
  {
    name: 'cancel',
    slot: ['premium', 'basic', 'family', 'student', 'business'],
    templates: [
      'How do I cancel my {x} subscription?',
      'I want to cancel the {x} plan.',
      'Please stop my {x} subscription.',
      'How can I end my {x} membership?',
      "What's the way to unsubscribe from {x}?",
    ],
    contrasts: ['How do I upgrade my {x} subscription?', 'I want to pause the {x} plan.'],
    negations: ["I don't want to cancel the {x} plan."],
  },
  {
    name: 'password',
    slot: ['email', 'banking app', 'router', 'work laptop', 'tablet'],
    templates: [
      'How do I reset my password for the {x}?',
      'I forgot my {x} password.',
      "I can't log in to the {x}, I need a new password.",
      'How can I change a forgotten {x} password?',
      'Help me recover the password of my {x}.',
    ],
    contrasts: ['How do I reset my username for the {x}?', 'How do I turn off the password for the {x}?'],
    negations: ["I didn't forget my {x} password."],
  },
  {
    name: 'delivery-day',
    slot: ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'],
    templates: [
      'Can you deliver on {x} instead?',
      'Please move my delivery to {x}.',
      "I'd like the parcel to arrive on {x}.",
      'Is delivery on {x} possible?',
      'Could the courier come on {x}?',
    ],
    contrasts: ['Can you pick up the return on {x} instead?', 'Please move my appointment to {x}.'],
    negations: ['Please do not deliver on {x}.'],
  },
  {
    name: 'refund',
    slot: ['laptop', 'headphones', 'jacket', 'coffee machine', 'phone case'],
    templates: [
      'I want a refund for the {x}.',
      'How do I get my money back for the {x}?',
      'Please refund the {x} I returned.',
      'Can I return the {x} for a refund?',
      'I would like to be reimbursed for the {x}.',
    ],
    contrasts: ['I want an exchange for the {x}.', 'How do I get a repair for the {x}?'],
    negations: ["I don't want a refund for the {x}."],
  },
  {
    name: 'hours',
    slot: ['Paris', 'Berlin', 'Madrid', 'Oslo', 'Lisbon', 'Vienna'],
    templates: [
      'What time does the {x} store open?',
      'When is your {x} shop open?',
      'What are the opening hours of the {x} branch?',
      'Is the store in {x} open today, and when?',
      'Tell me when the {x} shop opens.',
    ],
    contrasts: ['What time does the {x} store close?', 'What is the phone number of the {x} store?'],
    negations: ['Is the {x} store not open today?'],
  },
];

const fill = (t: string, x: string) => t.replace('{x}', x);
const retype = (s: string) =>
  s
    .toLowerCase()
    .replace(/[.,!?;:']/g, '')
    .replace(/\s+/g, ' ')
    .trim();

/** The labelled pairs: the same seed gives the same set. */
export function labelledPairs(seed = 18): Pair[] {
  const rnd = mulberry32(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)]!;
  const out: Pair[] = [];
  for (const it of INTENTS)
    for (const x of it.slot) {
      // Paraphrases: every pair of templates with the same fact.
      for (let i = 0; i < it.templates.length; i++)
        for (let j = i + 1; j < it.templates.length; j++)
          out.push({ a: fill(it.templates[i]!, x), b: fill(it.templates[j]!, x), kind: 'paraphrase', same: true });
      for (const t of it.templates) out.push({ a: fill(t, x), b: retype(fill(t, x)), kind: 'retyped', same: true });
      // One fact changed: the same template, another slot value.
      for (const y of it.slot)
        if (y !== x) {
          const t = pick(it.templates);
          out.push({ a: fill(t, x), b: fill(t, y), kind: 'fact-changed', same: false });
        }
      for (const [i, c] of it.contrasts.entries())
        out.push({ a: fill(it.templates[i]!, x), b: fill(c, x), kind: 'other-intent', same: false });
      for (const n of it.negations)
        out.push({ a: fill(it.templates[1]!, x), b: fill(n, x), kind: 'negation', same: false });
    }
  return out;
}

export interface ThresholdRow {
  threshold: number;
  falseHitRate: number;
  hitRate: number;
}
export interface EmbeddingReport {
  embedding: string;
  dims: number;
  rows: ThresholdRow[];
  /** The smallest threshold with false hits ≤ 1 %, and the paraphrase hit rate left at it. */
  safe: { threshold: number; falseHitRate: number; hitRate: number; retypedHitRate: number };
  /** Mean cosine per kind of pair. */
  meanCosine: Record<PairKind, number>;
  /** False hits by kind at the safe threshold and at 0.95. */
  falseHitsByKind: Record<string, Record<string, number>>;
}

const dot = (a: readonly number[], b: readonly number[]) => {
  let s = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    s += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return s / Math.sqrt(na * nb || 1);
};

export function report(name: string, pairs: Pair[], vec: Map<string, number[]>): EmbeddingReport {
  const sims = pairs.map((p) => ({ ...p, cos: dot(vec.get(p.a)!, vec.get(p.b)!) }));
  const diff = sims.filter((p) => !p.same);
  const para = sims.filter((p) => p.kind === 'paraphrase');
  const retyped = sims.filter((p) => p.kind === 'retyped');
  const rate = (xs: typeof sims, t: number) => xs.filter((p) => p.cos >= t).length / xs.length;
  const rows = THRESHOLDS.map((t) => ({ threshold: t, falseHitRate: rate(diff, t), hitRate: rate(para, t) }));
  // Smallest threshold (on a 0.001 grid) with false hits ≤ 1 %.
  const sortedDiff = diff.map((p) => p.cos).sort((a, b) => b - a);
  const allowed = Math.floor(diff.length * 0.01);
  const safeT = Math.min(1, Math.ceil(((sortedDiff[allowed] ?? 0) + 1e-9) * 1000) / 1000);
  const kinds: PairKind[] = ['paraphrase', 'retyped', 'fact-changed', 'other-intent', 'negation'];
  const meanCosine = Object.fromEntries(
    kinds.map((k) => {
      const xs = sims.filter((p) => p.kind === k);
      return [k, xs.reduce((s, p) => s + p.cos, 0) / xs.length];
    }),
  ) as Record<PairKind, number>;
  const byKind = (t: number) =>
    Object.fromEntries(
      (['fact-changed', 'other-intent', 'negation'] as const).map((k) => [
        k,
        rate(
          sims.filter((p) => p.kind === k),
          t,
        ),
      ]),
    );
  return {
    embedding: name,
    dims: vec.values().next().value?.length ?? 0,
    rows,
    safe: {
      threshold: safeT,
      falseHitRate: rate(diff, safeT),
      hitRate: rate(para, safeT),
      retypedHitRate: rate(retyped, safeT),
    },
    meanCosine,
    falseHitsByKind: { [`at ${safeT}`]: byKind(safeT), 'at 0.95': byKind(0.95) },
  };
}

/** A model repository holding spam-transformer served as an embedding model (`postprocess: embedding`). */
function embeddingRepo(dir: string): string {
  const src = join(ROOT, 'models/spam-transformer/1.0.0');
  const dst = join(dir, 'spam-embed/1.0.0');
  mkdirSync(dst, { recursive: true });
  for (const f of ['model.onnx', 'tokenizer.json', 'config.json']) copyFileSync(join(src, f), join(dst, f));
  const m = parseYaml(readFileSync(join(src, 'ferry.yaml'), 'utf8')) as Record<string, unknown>;
  m.name = 'spam-embed';
  m.description = 'spam-transformer served as a sentence embedding (mean-pooled last_hidden_state)';
  m.postprocess = { kind: 'embedding', output: 'last_hidden_state', pooling: 'mean', normalize: true };
  writeFileSync(join(dst, 'ferry.yaml'), toYaml(m));
  return dir;
}

async function startFerry(models: string, emuUrl: string, threshold: number): Promise<FerryServer> {
  const cfg = loadConfig({
    env: {},
    overrides: {
      'models.dir': models,
      'log.level': 'silent',
      'store.url': 'sqlite::memory:',
      'server.port': 0,
      'server.host': '127.0.0.1',
      'runtime.workers': 1,
      'llm.providers': { up: { kind: 'openai', baseUrl: emuUrl, maxConcurrent: 64 } },
      // A Ferry embedding model: provider empty, the gateway calls this server's predict path.
      'llm.embeddings.model': 'spam-embed',
      'llm.routes': {
        chat: {
          tiers: { main: [{ provider: 'up', model: 'm' }] },
          cache: { exact: false, semanticThreshold: threshold },
        },
      },
    },
  });
  const s = await createServer(cfg, { logger: false });
  await s.loaded;
  await s.listen();
  return s;
}

async function post(url: string, body: unknown): Promise<{ json: unknown; headers: Headers }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const json = (await res.json()) as unknown;
  if (!res.ok) throw new Error(`${res.status} ${JSON.stringify(json).slice(0, 300)}`);
  return { json, headers: res.headers };
}

export async function runSemanticBench(log: (s: string) => void) {
  const pairs = labelledPairs();
  const texts = [...new Set(pairs.flatMap((p) => [p.a, p.b]))];
  const counts = pairs.reduce<Record<string, number>>((c, p) => ({ ...c, [p.kind]: (c[p.kind] ?? 0) + 1 }), {});
  log(`llm-semantic bench: ${pairs.length} labelled pairs ${JSON.stringify(counts)}, ${texts.length} distinct prompts`);

  const lexical = new Map(texts.map((t) => [t, emulatorEmbedding(t)]));
  const reports = [report('emulator trigram (lexical baseline)', pairs, lexical)];

  const dir = mkdtempSync(join(tmpdir(), 'ferry-llm-semantic-'));
  const emu = await startLlmEmulator();
  let server: FerryServer | undefined;
  let endToEnd: { threshold: number; pairs: number; agree: number; hits: number } | undefined;
  try {
    const models = embeddingRepo(join(dir, 'models'));
    server = await startFerry(models, emu.url, 0.95);
    const base = `http://127.0.0.1:${(server.app.server.address() as { port: number }).port}`;
    const vec = new Map<string, number[]>();
    for (let i = 0; i < texts.length; i += 32) {
      const batch = texts.slice(i, i + 32);
      const { json } = await post(`${base}/v1/models/spam-embed/predict`, {
        instances: batch.map((text) => ({ text })),
      });
      const preds = (json as { predictions: unknown[] }).predictions;
      preds.forEach((p, j) => {
        const v = Array.isArray(p) ? p : Object.values(p as Record<string, unknown>).find(Array.isArray);
        vec.set(batch[j]!, v as number[]);
      });
    }
    reports.push(report('spam-transformer mean-pooled (Ferry postprocess: embedding)', pairs, vec));

    // End to end through the gateway at 0.95 (where this model both hits and misses, so agreement
    // means something): a's answer is cached, then b asks.
    const t = 0.95;
    const gw = `${base}/openai/v1/chat/completions`;
    const rnd = mulberry32(5);
    const sample = pairs.filter(() => rnd() < 0.25);
    let agree = 0;
    let hits = 0;
    for (const [i, p] of sample.entries()) {
      // A tenant per pair: each pair has its own scope, so only a's answer can match b.
      const user = `pair-${i}`;
      await post(gw, { model: 'chat', user, temperature: 0, messages: [{ role: 'user', content: p.a }] });
      const { headers } = await post(gw, {
        model: 'chat',
        user,
        temperature: 0,
        messages: [{ role: 'user', content: p.b }],
      });
      const hit = headers.get('ferry-llm-cache') === 'semantic';
      const expected = dot(vec.get(p.a)!, vec.get(p.b)!) >= t;
      if (hit) hits++;
      if (hit === expected) agree++;
    }
    endToEnd = { threshold: t, pairs: sample.length, agree, hits };
    log(
      `llm-semantic bench: end to end at ${t}: ${agree}/${sample.length} gateway decisions match the offline cosines`,
    );
  } finally {
    await server?.close();
    await emu.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return { pairs: pairs.length, counts, reports, endToEnd };
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

export function formatSemanticBench(r: Awaited<ReturnType<typeof runSemanticBench>>): string {
  const lines = [`Semantic cache on ${r.pairs} labelled prompt pairs ${JSON.stringify(r.counts)}`];
  for (const e of r.reports) {
    lines.push(`\n${e.embedding} (${e.dims} dims)`);
    lines.push('  threshold  false hits (different meaning)  paraphrase hits');
    for (const x of e.rows)
      lines.push(
        `  ${x.threshold.toFixed(2).padEnd(9)}  ${pct(x.falseHitRate).padStart(30)}  ${pct(x.hitRate).padStart(15)}`,
      );
    lines.push(
      `  false hits ≤ 1% from threshold ${e.safe.threshold}: false ${pct(e.safe.falseHitRate)}, paraphrases hit ${pct(e.safe.hitRate)}, re-typed hit ${pct(e.safe.retypedHitRate)}`,
    );
    lines.push(
      `  mean cosine: ${Object.entries(e.meanCosine)
        .map(([k, v]) => `${k} ${v.toFixed(3)}`)
        .join(', ')}`,
    );
    for (const [at, by] of Object.entries(e.falseHitsByKind))
      lines.push(
        `  false hits by kind ${at}: ${Object.entries(by)
          .map(([k, v]) => `${k} ${pct(v)}`)
          .join(', ')}`,
      );
  }
  if (r.endToEnd)
    lines.push(
      `\nEnd to end through the gateway (Ferry embedding source, threshold ${r.endToEnd.threshold}): ${r.endToEnd.agree}/${r.endToEnd.pairs} semantic-cache decisions match the offline cosines (${r.endToEnd.hits} hits)`,
    );
  return lines.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  runSemanticBench((l) => process.stderr.write(`${l}\n`)).then(
    (r) => {
      const out = process.env.FERRY_BENCH_LLM_SEMANTIC_OUT ?? 'bench/results/llm-semantic.json';
      mkdirSync(dirname(out), { recursive: true });
      writeFileSync(out, `${JSON.stringify(r, null, 2)}\n`);
      process.stdout.write(`${formatSemanticBench(r)}\nwrote ${out}\n`);
      process.exit(0);
    },
    (e: unknown) => {
      process.stderr.write(`llm-semantic bench failed: ${(e as Error).stack}\n`);
      process.exit(1);
    },
  );
}
