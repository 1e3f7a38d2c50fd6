// Baseline (b), the straightforward implementation: one Fastify process that runs ONNX Runtime
// on its main thread. It encodes features with @ferry/core's compiled encoder (so the
// preprocessing work equals Ferry's; tensor-only contracts pass through it too), runs the session,
// and answers label + scores per row (a single score with two labels is P(labels[1]), as in Ferry).
// What it leaves out, on purpose: request schema validation (Ajv), worker threads, batching,
// metrics, request ids, problem+json errors.
import Fastify from 'fastify';
import * as ort from 'onnxruntime-node';
import { compileEncoder, InputError, type Encoder, type Instance, type TensorValue } from '@ferry/core';
import { encodedBatch, modelInfoAt } from '../workloads.js';
import { parseBaselineArgs } from './args.js';

interface Served {
  version: string;
  session: ort.InferenceSession;
  encoder: Encoder;
  output: string;
  labels: string[];
}

const args = parseBaselineArgs(process.argv.slice(2));
const models = new Map<string, Served>();

const toOrt = (feeds: Record<string, TensorValue>): Record<string, ort.Tensor> =>
  Object.fromEntries(
    Object.entries(feeds).map(([k, t]) => [k, new ort.Tensor(t.dtype as ort.Tensor.Type, t.data as never, t.dims)]),
  );

function predictions(
  m: Served,
  out: ort.InferenceSession.OnnxValueMapType,
  rows: number,
): Array<{ label: string; scores: Record<string, number> }> {
  const probs = out[m.output]!.data as Float32Array;
  const per = probs.length / rows;
  const result = [];
  for (let r = 0; r < rows; r++) {
    const scores: Record<string, number> = {};
    if (per === 1 && m.labels.length === 2) {
      // One score and two labels: the score is P(labels[1]), as Ferry's decoder reads it.
      const p = probs[r]!;
      scores[m.labels[0]!] = 1 - p;
      scores[m.labels[1]!] = p;
      result.push({ label: m.labels[p > 1 - p ? 1 : 0]!, scores });
      continue;
    }
    let best = 0;
    for (let i = 0; i < per; i++) {
      scores[m.labels[i]!] = probs[r * per + i]!;
      if (probs[r * per + i]! > probs[r * per + best]!) best = i;
    }
    result.push({ label: m.labels[best]!, scores });
  }
  return result;
}

for (const [name, dir] of args.models) {
  const info = modelInfoAt(name, dir);
  const manifest = info.manifest;
  const post = manifest.postprocess;
  if (
    post?.kind !== 'classification' ||
    (post.activation ?? 'none') !== 'none' ||
    post.threshold !== undefined ||
    post.topK !== undefined
  ) {
    throw new Error(`${name}: the minimal server only does classification with scores as-is`);
  }
  const session = await ort.InferenceSession.create(
    info.modelPath,
    (args.sessionOptions[name] ?? {}) as ort.InferenceSession.SessionOptions,
  );
  // Warm like Ferry does before it reports ready: a few real inferences.
  for (let i = 0; i < 3; i++) await session.run(toOrt(encodedBatch(info, 1)));
  models.set(name, {
    version: info.version,
    session,
    encoder: compileEncoder(manifest),
    output: post.output,
    labels: post.labels,
  });
}

const app = Fastify({ logger: false, bodyLimit: 8 * 1024 * 1024 });

app.post<{ Params: { model: string } }>('/v1/models/:model/predict', async (req, reply) => {
  const m = models.get(req.params.model);
  if (!m) return reply.code(404).send({ error: `no model ${req.params.model}` });
  const instances = (req.body as { instances?: unknown } | null)?.instances;
  if (!Array.isArray(instances) || instances.length === 0)
    return reply.code(400).send({ error: 'expected {"instances": [...]}' });
  let feeds: Record<string, TensorValue>;
  try {
    feeds = m.encoder.encode(instances as Instance[]);
  } catch (e) {
    if (e instanceof InputError) return reply.code(400).send({ error: 'invalid input', issues: e.issues });
    throw e;
  }
  const out = await m.session.run(toOrt(feeds));
  return { model: req.params.model, version: m.version, predictions: predictions(m, out, instances.length) };
});
app.get('/healthz', async () => ({ status: 'ok' }));
app.get('/readyz', async () => ({ ready: true }));

await app.listen({ port: args.port, host: args.host });
