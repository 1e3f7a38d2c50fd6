// Trains the `flight-delay` example model (will this flight arrive more than 15 minutes late?) from
// the vega-datasets flights sample and exports models/flight-delay/1.0.0/: model.onnx, ferry.yaml,
// card.md and reference.jsonl. Features go through @ferry/core's encoder compiled from the very
// manifest that ships with the model, so training and serving preprocess identically.
// Run: node examples/dist/flight-delay/train.js   (or `npm run models`, which skips it when fresh)
import { compileEncoder, type Manifest, type Step } from '@ferry/core';
import { BUILDER_SOURCES, writeExample, type ArtifactFiles, type ExampleModel } from '../lib/example-model.js';
import { isMain } from '../lib/main.js';
import { GraphBuilder } from '../lib/onnx.js';
import { mulberry32, permutation } from '../lib/random.js';
import { toYaml } from '../lib/yaml.js';
import { DELAY_THRESHOLD_MINUTES, flightsFile, loadFlights, type Flight } from './data.js';
import { accuracy, logLoss, rocAuc } from './metrics.js';

export const NAME = 'flight-delay';
export const VERSION = '1.0.0';
export const LABELS = ['on_time', 'delayed'] as const;

export interface TrainOptions {
  /** Seed of the train/test shuffle. Default 2001. */
  seed?: number;
  /** Train on the first `limit` flights only (for fast tests). */
  limit?: number;
  /** Full-batch Adam steps. Default 1000 (300 already reach the same AUC to three decimals). */
  iterations?: number;
  /** Adam step size. Default 0.05. */
  learningRate?: number;
  /** L2 penalty on the weights (not the bias), added to the mean log loss as l2/2·‖w‖². Default 1e-3. */
  l2?: number;
  /** Airports seen fewer times than this in the training split get no one-hot column. Default 20. */
  minAirportCount?: number;
  /** Held-out rows written to reference.jsonl. Default 1000. */
  referenceRows?: number;
}

export interface HeldOutMetrics {
  trainRows: number;
  testRows: number;
  features: number;
  trainDelayedRate: number;
  testDelayedRate: number;
  auc: number;
  accuracy: number;
  /** Accuracy of always answering the training split's majority class. */
  baselineAccuracy: number;
  logLoss: number;
  /** Log loss of always answering the training split's delayed rate. */
  baselineLogLoss: number;
  /** Share of held-out flights the model calls delayed at probability 0.5. */
  predictedDelayedRate: number;
  /** Delayed share among the tenth of held-out flights with the highest P(delayed). */
  topDecileDelayedRate: number;
}

export interface TrainResult {
  files: ArtifactFiles;
  manifest: Manifest;
  metrics: HeldOutMetrics;
  /** Held-out encoded features [testRows, features] and the model's P(delayed), for checking the ONNX file. */
  test: { features: Float32Array; probabilities: Float64Array };
}

const step = (op: string, params: Record<string, unknown> = {}): Step => ({ op, ...params });
const round = (x: number, digits: number): number => Number(x.toFixed(digits));

/** Airports seen at least `min` times, alphabetically (a stable order for the one-hot columns). */
function frequentValues(values: readonly string[], min: number): string[] {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return [...counts]
    .filter(([, c]) => c >= min)
    .map(([v]) => v)
    .sort();
}

function buildManifest(train: readonly Flight[], minAirportCount: number): Manifest {
  const distances = train.map((f) => f.instance.distance);
  const mean = distances.reduce((a, b) => a + b, 0) / distances.length;
  const std = Math.sqrt(distances.reduce((a, d) => a + (d - mean) ** 2, 0) / distances.length);
  const origins = frequentValues(
    train.map((f) => f.instance.origin),
    minAirportCount,
  );
  const destinations = frequentValues(
    train.map((f) => f.instance.destination),
    minAirportCount,
  );
  return {
    name: NAME,
    version: VERSION,
    description: `Probability that a US domestic flight is more than ${DELAY_THRESHOLD_MINUTES} minutes late, from its schedule and route (logistic regression on a 2001 sample).`,
    inputs: [
      { name: 'month', type: 'integer', min: 1, max: 12 },
      { name: 'dayOfWeek', type: 'integer', min: 0, max: 6, description: '0 = Sunday' },
      { name: 'hour', type: 'number', min: 0, max: 24, description: 'scheduled departure hour' },
      { name: 'distance', type: 'number', min: 0, max: 6000, description: 'miles' },
      { name: 'origin', type: 'category', values: origins, unknown: 'ignore' },
      { name: 'destination', type: 'category', values: destinations, unknown: 'ignore' },
    ],
    preprocess: [
      {
        input: 'features',
        dtype: 'float32',
        columns: [
          { feature: 'distance', steps: [step('standardize', { mean: round(mean, 1), std: round(std, 1) })] },
          { feature: 'hour', steps: [step('cyclic', { period: 24 })] },
          { feature: 'month', steps: [step('one-hot', { values: Array.from({ length: 12 }, (_, i) => i + 1) })] },
          { feature: 'dayOfWeek', steps: [step('one-hot', { values: Array.from({ length: 7 }, (_, i) => i) })] },
          { feature: 'origin', steps: [step('one-hot')] },
          { feature: 'destination', steps: [step('one-hot')] },
        ],
      },
    ],
    outputs: [{ name: 'probabilities', dtype: 'float32', shape: [-1, 2] }],
    postprocess: { kind: 'classification', output: 'probabilities', labels: [...LABELS] },
    batching: { maxBatchSize: 64, maxQueueDelayUs: 500 },
    cache: { enabled: true, ttlSeconds: 300 },
    timeoutMs: 1000,
    sla: { p99Ms: 50 },
    reference: 'reference.jsonl',
  };
}

/** Row-compressed copy of a dense matrix: one-hot columns make each row about 7 non-zeros out of ~250. */
interface Sparse {
  rows: number;
  cols: number;
  start: Uint32Array;
  index: Uint32Array;
  value: Float64Array;
}

function sparse(dense: Float32Array, rows: number, cols: number): Sparse {
  const start = new Uint32Array(rows + 1);
  const index: number[] = [];
  const value: number[] = [];
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const v = dense[r * cols + c]!;
      if (v !== 0) {
        index.push(c);
        value.push(v);
      }
    }
    start[r + 1] = index.length;
  }
  return { rows, cols, start, index: Uint32Array.from(index), value: Float64Array.from(value) };
}

const sigmoid = (z: number): number => 1 / (1 + Math.exp(-z));

function predict(x: Sparse, w: ArrayLike<number>, b: number): Float64Array {
  const p = new Float64Array(x.rows);
  for (let r = 0; r < x.rows; r++) {
    let z = b;
    for (let k = x.start[r]!; k < x.start[r + 1]!; k++) z += w[x.index[k]!]! * x.value[k]!;
    p[r] = sigmoid(z);
  }
  return p;
}

/**
 * L2-regularised logistic regression by full-batch Adam, in float64. Full batch and a fixed number
 * of steps keep it deterministic; the problem is convex, so the step count only needs to be enough.
 */
function fitLogistic(
  x: Sparse,
  y: Uint8Array,
  o: Required<Pick<TrainOptions, 'iterations' | 'learningRate' | 'l2'>>,
): { w: Float64Array; b: number } {
  const d = x.cols;
  const params = new Float64Array(d + 1); // weights, then the bias
  const grad = new Float64Array(d + 1);
  const m = new Float64Array(d + 1);
  const v = new Float64Array(d + 1);
  const [beta1, beta2, eps] = [0.9, 0.999, 1e-8];
  for (let t = 1; t <= o.iterations; t++) {
    grad.fill(0);
    for (let r = 0; r < x.rows; r++) {
      let z = params[d]!;
      for (let k = x.start[r]!; k < x.start[r + 1]!; k++) z += params[x.index[k]!]! * x.value[k]!;
      const err = sigmoid(z) - y[r]!;
      for (let k = x.start[r]!; k < x.start[r + 1]!; k++) grad[x.index[k]!]! += err * x.value[k]!;
      grad[d]! += err;
    }
    const c1 = 1 - beta1 ** t;
    const c2 = 1 - beta2 ** t;
    for (let j = 0; j <= d; j++) {
      const g = grad[j]! / x.rows + (j < d ? o.l2 * params[j]! : 0);
      m[j] = beta1 * m[j]! + (1 - beta1) * g;
      v[j] = beta2 * v[j]! + (1 - beta2) * g * g;
      params[j]! -= (o.learningRate * (m[j]! / c1)) / (Math.sqrt(v[j]! / c2) + eps);
    }
  }
  return { w: params.slice(0, d), b: params[d]! };
}

/** features[batch, W] → MatMul → Add → Softmax → probabilities[batch, 2] over [on_time, delayed]. */
function exportOnnx(w: Float32Array, b: number): Uint8Array {
  const d = w.length;
  // Logits [0, z]: softmax of that pair is [1 - σ(z), σ(z)], the logistic model as two class scores.
  const weights = new Float32Array(d * 2);
  for (let j = 0; j < d; j++) weights[j * 2 + 1] = w[j]!;
  const g = new GraphBuilder({ name: NAME, producerName: 'ferry-examples', producerVersion: VERSION });
  g.input('features', 'float32', ['batch', d]).output('probabilities', 'float32', ['batch', 2]);
  g.floatInitializer('weights', weights, [d, 2]).floatInitializer('bias', [0, b]);
  const logits = g.op('Add', [g.op('MatMul', ['features', 'weights']), 'bias']);
  g.node('Softmax', [logits], ['probabilities'], { axis: -1 });
  g.metadata('ferry.labels', LABELS.join(','));
  return g.toBytes();
}

/** The positive rate among the `share` of rows with the highest scores (ties broken by row order). */
function topShareRate(scores: Float64Array, labels: readonly boolean[], share: number): number {
  const top = Array.from(scores, (s, i) => [s, i] as const)
    .sort((a, b) => b[0] - a[0] || a[1] - b[1])
    .slice(0, Math.max(1, Math.round(scores.length * share)));
  return top.filter(([, i]) => labels[i]).length / top.length;
}

const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;

function card(m: HeldOutMetrics, o: Required<TrainOptions>, manifest: Manifest): string {
  const inputs = manifest.inputs as Array<{ name: string; values?: string[] }>;
  const airports = (n: string): number => inputs.find((f) => f.name === n)?.values?.length ?? 0;
  return `# flight-delay 1.0.0

Will a US domestic flight be more than ${DELAY_THRESHOLD_MINUTES} minutes late? The model answers with the
probabilities of \`on_time\` and \`delayed\` from the flight's schedule and route only.

It is an example for Ferry: small, honest about its weak signal, and rebuilt byte for byte by
\`examples/src/flight-delay/train.ts\` (\`npm run models\`).

## Data
- Source: \`flights-20k.json\` from the \`vega-datasets\` npm package (vega-datasets 3): 20,000 US
  domestic flights, 1 January to 31 March 2001, from the US Bureau of Transportation Statistics'
  on-time performance reports. Fields: departure date and time, delay in minutes, distance in
  miles, origin and destination airports.
- Label: \`delayed\` when the delay exceeds ${DELAY_THRESHOLD_MINUTES} minutes.
- Split: a seeded random 80/20 split (mulberry32, seed ${o.seed}): ${m.trainRows} flights to train,
  ${m.testRows} held out. Random rather than by time because the sample spans only three months: a time
  split would hold out a month the model never saw.

## Features
\`ferry.yaml\` is the contract; its \`preprocess\` section is what training used, through the same encoder.
- \`distance\`: standardised with the training mean and standard deviation.
- \`hour\`: departure hour as [sin, cos] of a 24-hour cycle.
- \`month\`, \`dayOfWeek\`: one-hot.
- \`origin\`, \`destination\`: one-hot over the ${airports('origin')} origins and ${airports('destination')} destinations seen at least
  ${o.minAirportCount} times in training; any other airport (\`unknown: ignore\`) encodes as all zeros.

${m.features} columns in all.

## Model
Logistic regression, written as a 2-class softmax (MatMul, Add, Softmax; ONNX opset 17). Trained by
full-batch Adam (${o.iterations} steps, step size ${o.learningRate}) on the mean log loss plus an L2
penalty of ${o.l2}/2·‖w‖², in float64; weights stored as float32.

## Held-out results (${m.testRows} flights)
| metric | model | baseline |
| --- | --- | --- |
| ROC AUC | ${m.auc.toFixed(3)} | 0.500 |
| accuracy at p(delayed) > 0.5 | ${pct(m.accuracy)} | ${pct(m.baselineAccuracy)} (always \`on_time\`) |
| log loss | ${m.logLoss.toFixed(4)} | ${m.baselineLogLoss.toFixed(4)} (the training delayed rate) |
| delayed share of the 10% it scores highest | ${pct(m.topDecileDelayedRate)} | ${pct(m.testDelayedRate)} (all held-out flights) |

${pct(m.testDelayedRate)} of held-out flights were delayed (${pct(m.trainDelayedRate)} in training). At the 0.5 threshold the
model calls ${pct(m.predictedDelayedRate)} of them delayed${
    m.predictedDelayedRate < 0.01
      ? ': hardly any flight is likely enough to be late to tip the\nanswer, so the label is nearly always `on_time` and the useful output is the probability.'
      : '.'
  }

## Limits
- The signal is weak. Schedule and route explain a little of delay; weather, traffic and the
  aircraft's previous leg explain most of it. The model ranks flights better than chance but does
  not beat always answering \`on_time\` on accuracy: use the probability, or a threshold picked for
  your cost of a missed delay.
- Three winter months of 2001: the months April-December were never seen, and air travel has
  changed since. Drift checks against \`reference.jsonl\` (${o.referenceRows} held-out rows with the model's
  predicted label) will flag traffic that looks different.
`;
}

const DEFAULTS: Required<TrainOptions> = {
  seed: 2001,
  limit: Infinity,
  iterations: 1000,
  learningRate: 0.05,
  l2: 1e-3,
  minAirportCount: 20,
  referenceRows: 1000,
};

/** Trains, evaluates and renders every file of the version folder. Deterministic for given options. */
export function trainFlightDelay(options: TrainOptions = {}, flights: readonly Flight[] = loadFlights()): TrainResult {
  const o = { ...DEFAULTS, ...options };
  const data = flights.slice(0, Math.min(o.limit, flights.length));
  const order = permutation(data.length, mulberry32(o.seed));
  const cut = Math.round(data.length * 0.8);
  const train = Array.from(order.subarray(0, cut), (i) => data[i]!);
  const test = Array.from(order.subarray(cut), (i) => data[i]!);
  const isDelayed = (f: Flight): boolean => f.delayMinutes > DELAY_THRESHOLD_MINUTES;

  const manifest = buildManifest(train, o.minAirportCount);
  const encoder = compileEncoder(manifest);
  const encode = (fs: readonly Flight[]): { dense: Float32Array; width: number } => {
    const t = encoder.encode(fs.map((f) => f.instance)).features!;
    return { dense: t.data as Float32Array, width: t.dims[1]! };
  };
  const trainX = encode(train);
  const testX = encode(test);
  const yTrain = Uint8Array.from(train, (f) => (isDelayed(f) ? 1 : 0));
  const yTest = test.map(isDelayed);

  const fit = fitLogistic(sparse(trainX.dense, train.length, trainX.width), yTrain, o);
  // Evaluate the weights as exported (float32), so the metrics describe the shipped file.
  const w32 = Float32Array.from(fit.w);
  const b32 = Math.fround(fit.b);
  const pTest = predict(sparse(testX.dense, test.length, testX.width), w32, b32);

  const trainRate = yTrain.reduce((a, b) => a + b, 0) / train.length;
  const testRate = yTest.filter(Boolean).length / test.length;
  const metrics: HeldOutMetrics = {
    trainRows: train.length,
    testRows: test.length,
    features: trainX.width,
    trainDelayedRate: trainRate,
    testDelayedRate: testRate,
    auc: rocAuc(pTest, yTest),
    accuracy: accuracy(pTest, yTest),
    baselineAccuracy: trainRate >= 0.5 ? testRate : 1 - testRate,
    logLoss: logLoss(pTest, yTest),
    baselineLogLoss: logLoss(new Float64Array(test.length).fill(trainRate), yTest),
    predictedDelayedRate: pTest.filter((p) => p > 0.5).length / test.length,
    topDecileDelayedRate: topShareRate(pTest, yTest, 0.1),
  };

  const reference = test
    .slice(0, o.referenceRows)
    .map((f, i) => {
      const { month, dayOfWeek, hour, distance, origin, destination } = f.instance;
      const prediction = LABELS[pTest[i]! > 0.5 ? 1 : 0];
      return `${JSON.stringify({ month, dayOfWeek, hour, distance, origin, destination, prediction })}\n`;
    })
    .join('');

  return {
    files: {
      'model.onnx': exportOnnx(w32, b32),
      'ferry.yaml': toYaml(manifest),
      'card.md': card(metrics, o, manifest),
      'reference.jsonl': reference,
    },
    manifest,
    metrics,
    test: { features: testX.dense, probabilities: pTest },
  };
}

/** Runs the exported file in ONNX Runtime and checks it agrees with the training code's predictions. */
export async function checkWithRuntime(result: TrainResult, tolerance = 1e-5): Promise<number> {
  const ort = await import('onnxruntime-node');
  const session = await ort.InferenceSession.create(result.files['model.onnx'] as Uint8Array);
  try {
    const rows = result.test.probabilities.length;
    const width = result.test.features.length / rows;
    const out = await session.run({ features: new ort.Tensor('float32', result.test.features, [rows, width]) });
    const p = out.probabilities!.data as Float32Array;
    let worst = 0;
    for (let r = 0; r < rows; r++) worst = Math.max(worst, Math.abs(p[r * 2 + 1]! - result.test.probabilities[r]!));
    if (!(worst <= tolerance)) throw new Error(`model.onnx disagrees with the trained model by ${worst}`);
    return worst;
  } finally {
    await session.release();
  }
}

/** The generator as build-all sees it. */
export const flightDelay: ExampleModel = {
  name: NAME,
  version: VERSION,
  inputs: [
    'examples/src/flight-delay',
    'examples/src/lib',
    ...BUILDER_SOURCES,
    // The encoder that turns instances into the training matrix.
    'packages/core/src/preprocess/encoder.ts',
    'packages/core/src/preprocess/registry.ts',
    'packages/core/src/preprocess/steps-basic.ts',
    'packages/core/src/tensor.ts',
    flightsFile(),
  ],
  async build() {
    const result = trainFlightDelay();
    await checkWithRuntime(result);
    return result.files;
  },
};

if (isMain(import.meta.url)) {
  const t0 = performance.now();
  const result = trainFlightDelay();
  await checkWithRuntime(result);
  await writeExample({ ...flightDelay, build: async () => result.files });
  const m = result.metrics;
  console.log(
    `flight-delay ${VERSION}: AUC ${m.auc.toFixed(3)}, accuracy ${pct(m.accuracy)} (baseline ${pct(m.baselineAccuracy)}), ` +
      `log loss ${m.logLoss.toFixed(4)} (baseline ${m.baselineLogLoss.toFixed(4)}), ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
}
