// A transformer exported from PyTorch (models/spam-transformer, Hugging Face input names) added with
// `ferry init` and nothing else: texts of 1–126 word pieces in one request and as concurrent requests must
// equal PyTorch run on each text alone (outputs saved by train.py, so no Python here); token ids in tensor
// form are padded and batched too; hostile text is a 4xx naming the field.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { InjectOptions } from 'fastify';
import { initModel, type FerryServer } from '@ferry/server';
import { startServerOn } from '@ferry/test-kit';

const ROOT = fileURLToPath(new URL('../../../../../', import.meta.url));
const MODEL_DIR = join(ROOT, 'models/spam-transformer/1.0.0');
interface RefCase {
  text: string;
  inputIds: number[];
  logits: number[];
  probabilities: number[];
  meanEmbedding: number[];
}
const REF = JSON.parse(readFileSync(join(ROOT, 'examples/src/spam-transformer/pytorch-reference.json'), 'utf8')) as {
  cases: RefCase[];
  parity: RefCase[];
};

const post = (url: string, payload: unknown): InjectOptions => ({ method: 'POST', url, payload: payload as object });
const maxAbs = (a: readonly number[], b: readonly number[]) => Math.max(...a.map((x, i) => Math.abs(x - b[i]!)));

function metric(text: string, name: string, labels: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('a PyTorch transformer added with ferry init', () => {
  let server: FerryServer;
  let work: string;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'ferry-transformer-'));
    // What a data scientist has after torch.onnx.export: the ONNX file, tokenizer.json and config.json.
    const exported = join(work, 'export');
    mkdirSync(exported);
    for (const f of ['model.onnx', 'tokenizer.json', 'config.json'])
      copyFileSync(join(MODEL_DIR, f), join(exported, f));
    // The same export without its tokenizer: token ids in tensor form.
    const idsOnly = join(work, 'ids-only');
    mkdirSync(idsOnly);
    for (const f of ['model.onnx', 'config.json']) copyFileSync(join(MODEL_DIR, f), join(idsOnly, f));
    const repo = join(work, 'models');
    await initModel({ onnxPath: join(exported, 'model.onnx'), name: 'tf', repo });
    await initModel({ onnxPath: join(idsOnly, 'model.onnx'), name: 'tf-ids', repo });
    // The same export as an embedding model: mean of last_hidden_state over each text's real tokens.
    await initModel({ onnxPath: join(exported, 'model.onnx'), name: 'tf-embed', repo });
    const yamlPath = join(repo, 'tf-embed/1.0.0/ferry.yaml');
    const m = parse(readFileSync(yamlPath, 'utf8')) as Record<string, unknown>;
    m.postprocess = { kind: 'embedding', output: 'last_hidden_state', pooling: 'mean' };
    writeFileSync(yamlPath, stringify(m));
    server = await startServerOn(repo, { 'runtime.workers': 1 });
  });

  after(async () => {
    await server?.close();
    rmSync(work, { recursive: true, force: true });
  });

  test('init wrote a text contract with the tokenizer, padding and the labels of config.json', async () => {
    const r = await server.app.inject({ method: 'GET', url: '/v1/models/tf' });
    assert.equal(r.statusCode, 200);
    const yaml = readFileSync(join(work, 'models/tf/1.0.0/ferry.yaml'), 'utf8');
    assert.match(yaml, /tokenizer:\n\s+file: tokenizer.json\n\s+text: text/);
    assert.match(yaml, /labels:\n\s+- ham\n\s+- spam/);
    assert.match(yaml, /padding:\n\s+values:\n\s+input_ids: 0/);
    // A padded model's run follows the request's length: one timed row bounds nothing, so it never runs
    // on the main thread (placement auto).
    const placement = r.json().placement;
    assert.equal(placement.inlineMaxRows, 0);
    assert.match(placement.reason, /is padded per batch/);
  });

  test('12 texts of 3–128 tokens in one request equal PyTorch on each text alone', async () => {
    assert.equal(REF.cases.length, 12);
    const lengths = REF.cases.map((c) => c.inputIds.length);
    assert.ok(Math.min(...lengths) <= 3 && Math.max(...lengths) === 128, `lengths ${lengths.join(', ')}`);
    const r = await server.app.inject(
      post('/v1/models/tf/predict', { instances: REF.cases.map((c) => ({ text: c.text })) }),
    );
    assert.equal(r.statusCode, 200, r.body);
    const preds = r.json<{ predictions: Array<{ label: string; scores: Record<string, number> }> }>().predictions;
    preds.forEach((p, i) => {
      const want = REF.cases[i]!.probabilities;
      const d = maxAbs([p.scores.ham!, p.scores.spam!], want);
      assert.ok(d <= 1e-4, `case ${i} (${lengths[i]} tokens): |Δ| = ${d}`);
      assert.equal(p.label, want[1]! > want[0]! ? 'spam' : 'ham');
    });
  });

  test('the same 12 texts as 12 concurrent requests are batched together and each equals PyTorch', async () => {
    const metricsBefore = (await server.app.inject({ method: 'GET', url: '/metrics' })).body;
    const label = 'model="tf"';
    const countBefore = metric(metricsBefore, 'ferry_batch_size_count', label);
    const sumBefore = metric(metricsBefore, 'ferry_batch_size_sum', label);
    const replies = await Promise.all(
      REF.cases.map((c) => server.app.inject(post('/v1/models/tf/predict', { instances: [{ text: c.text }] }))),
    );
    replies.forEach((r, i) => {
      assert.equal(r.statusCode, 200, r.body);
      const p = r.json<{ predictions: Array<{ scores: Record<string, number> }> }>().predictions[0]!;
      const d = maxAbs([p.scores.ham!, p.scores.spam!], REF.cases[i]!.probabilities);
      assert.ok(d <= 1e-4, `case ${i}: |Δ| = ${d}`);
    });
    const metricsAfter = (await server.app.inject({ method: 'GET', url: '/metrics' })).body;
    const batches = metric(metricsAfter, 'ferry_batch_size_count', label) - countBefore;
    const rows = metric(metricsAfter, 'ferry_batch_size_sum', label) - sumBefore;
    assert.equal(rows, 12);
    assert.ok(batches < 12, `12 requests of different lengths ran in ${batches} batches (expected some to share one)`);
  });

  test('mean embeddings of 12 texts padded into one batch equal PyTorch on each text alone', async () => {
    const r = await server.app.inject(
      post('/v1/models/tf-embed/predict', { instances: REF.cases.map((c) => ({ text: c.text })) }),
    );
    assert.equal(r.statusCode, 200, r.body);
    const preds = r.json<{ predictions: Array<{ embedding: number[] }> }>().predictions;
    preds.forEach((p, i) => {
      assert.equal(p.embedding.length, REF.cases[i]!.meanEmbedding.length);
      const d = maxAbs(p.embedding, REF.cases[i]!.meanEmbedding);
      assert.ok(d <= 1e-4, `case ${i}: |Δ| = ${d}`);
    });
  });

  test('token ids in tensor form (no tokenizer) are padded and batched, and equal PyTorch', async () => {
    const instances = REF.cases.slice(0, 6).map((c) => ({
      input_ids: c.inputIds,
      attention_mask: c.inputIds.map(() => 1),
      token_type_ids: c.inputIds.map(() => 0),
    }));
    const r = await server.app.inject(post('/v1/models/tf-ids/predict', { instances }));
    assert.equal(r.statusCode, 200, r.body);
    const preds = r.json<{ predictions: Array<{ scores: Record<string, number> }> }>().predictions;
    preds.forEach((p, i) => {
      const d = maxAbs([p.scores.ham!, p.scores.spam!], REF.cases[i]!.probabilities);
      assert.ok(d <= 1e-4, `case ${i}: |Δ| = ${d}`);
    });
  });

  test('hostile inputs are 4xx problem+json naming the field, never a 5xx', async () => {
    const lone = 'spam \ud800 offer';
    const cases: Array<{ model: string; instance: Record<string, unknown>; pointer: string; status?: number }> = [
      { model: 'tf', instance: { text: '' }, pointer: '/instances/0/text' },
      { model: 'tf', instance: { text: '\u0000\u0001\u0002\u200b' }, pointer: '/instances/0/text' },
      { model: 'tf', instance: { text: 'x'.repeat(1_000_000) }, pointer: '/instances/0/text' },
      { model: 'tf', instance: { text: lone }, pointer: '/instances/0/text' },
      { model: 'tf', instance: {}, pointer: '/instances/0/text' },
      { model: 'tf', instance: { text: 'hi', text_pair: 'there' }, pointer: '/instances/0/text_pair' },
      {
        model: 'tf-ids',
        instance: { input_ids: [2, 999_999, 3], attention_mask: [1, 1, 1], token_type_ids: [0, 0, 0] },
        pointer: '/instances/0/input_ids/1',
      },
      {
        model: 'tf-ids',
        instance: { input_ids: [2, -1, 3], attention_mask: [1, 1, 1], token_type_ids: [0, 0, 0] },
        pointer: '/instances/0/input_ids/1',
      },
      {
        model: 'tf-ids',
        instance: { input_ids: [2, 5, 3], attention_mask: [1, 1], token_type_ids: [0, 0, 0] },
        pointer: '/instances/0/attention_mask',
      },
      {
        model: 'tf-ids',
        instance: { input_ids: [], attention_mask: [], token_type_ids: [] },
        pointer: '/instances/0/input_ids',
      },
    ];
    for (const c of cases) {
      const r = await server.app.inject(post(`/v1/models/${c.model}/predict`, { instances: [c.instance] }));
      assert.ok(
        r.statusCode >= 400 && r.statusCode < 500,
        `${JSON.stringify(c.instance).slice(0, 80)} → ${r.statusCode}`,
      );
      assert.match(String(r.headers['content-type']), /application\/problem\+json/);
      const body = r.json<{ errors?: Array<{ pointer: string }> }>();
      assert.ok(
        body.errors?.some((e) => e.pointer === c.pointer),
        `${JSON.stringify(c.instance).slice(0, 80)}: expected ${c.pointer}, got ${JSON.stringify(body).slice(0, 300)}`,
      );
    }
    // Control characters inside real text are normalised away (BertNormalizer's clean_text), not refused.
    const ok = await server.app.inject(
      post('/v1/models/tf/predict', { instances: [{ text: `${REF.cases[5]!.text}\u0007\u0000` }] }),
    );
    assert.equal(ok.statusCode, 200, ok.body);
    const p = ok.json<{ predictions: Array<{ scores: Record<string, number> }> }>().predictions[0]!;
    assert.ok(maxAbs([p.scores.ham!, p.scores.spam!], REF.cases[5]!.probabilities) <= 1e-4);
  });
});
