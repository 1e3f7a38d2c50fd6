// `ferry init`: puts an ONNX file into the model repository with a first ferry.yaml whose tensor
// inputs and outputs come from the model's own metadata, so any ONNX model can be served at once,
// with the batching the model's own timings choose (serving/batching/defaults.ts) written in.
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import semver from 'semver';
import { stringify } from 'yaml';
import type { Feature, Manifest, TensorBinding, TensorDtype } from '@ferry/core';
import { isBatchable, TENSOR_DTYPES } from '@ferry/core';
import { probeBatching } from '../batching/defaults.js';
import { checkManifest, MODEL_NAME, readManifest } from './index.js';
import { readOnnxMl, type OnnxMlInfo } from './onnx-ml.js';
import { transformerContract, TRANSFORMER_FILES } from './init-transformer.js';

export interface InitOptions {
  onnxPath: string;
  name?: string;
  version?: string;
  repo: string;
  force?: boolean;
  /** Copy the contract of an existing version (`name@version` in the same repository), e.g. for a quantised build of
   * it.
   */
  contractFrom?: string;
  /** Time the model at a few batch sizes and write the chosen `batching` (default true). */
  measureBatching?: boolean;
}

const ORT_DTYPES: Record<string, TensorDtype> = { float: 'float32', double: 'float64' };

function dtypeOf(t: string): TensorDtype {
  const d = ORT_DTYPES[t] ?? t;
  if (!(TENSOR_DTYPES as readonly string[]).includes(d)) throw new Error(`unsupported tensor type "${t}"`);
  return d as TensorDtype;
}

/** A zero tensor of `rows` rows for one model input (other dynamic dimensions taken as 1). */
function zeroFeed(dtype: TensorDtype, shape: readonly number[], rows: number): ort.Tensor | undefined {
  const dims = [rows, ...shape.slice(1).map((d) => (d < 0 ? 1 : d))];
  const n = dims.reduce((a, b) => a * b, 1);
  switch (dtype) {
    case 'float32':
      return new ort.Tensor('float32', new Float32Array(n), dims);
    case 'float64':
      return new ort.Tensor('float64', new Float64Array(n), dims);
    case 'int32':
      return new ort.Tensor('int32', new Int32Array(n), dims);
    case 'int64':
      return new ort.Tensor('int64', new BigInt64Array(n), dims);
    default:
      return undefined;
  }
}

/**
 * The batching `ferry serve` would measure at warm-up (batching/defaults.ts), measured here on zero
 * inputs so `ferry init` can write it into the contract. Undefined when an input is not numeric or a
 * run fails (zeros are not valid input for every model): the server then measures on real warm-up input.
 */
async function probeWithSession(
  session: ort.InferenceSession,
  inputs: ReadonlyArray<{ name: string; dtype: TensorDtype; shape: number[] }>,
): Promise<{ maxBatchSize: number; maxQueueDelayUs: number } | undefined> {
  try {
    const { maxBatchSize, maxQueueDelayUs } = await probeBatching(async (rows) => {
      const feeds: Record<string, ort.Tensor> = {};
      for (const i of inputs) {
        const t = zeroFeed(i.dtype, i.shape, rows);
        if (!t) throw new Error(`input ${i.name} is ${i.dtype}`);
        feeds[i.name] = t;
      }
      await session.run(feeds);
    });
    return { maxBatchSize, maxQueueDelayUs };
  } catch {
    return undefined;
  }
}

/** Builds the manifest for an ONNX model from its metadata (and, unless told not to, its measured batching). */
export async function manifestFromOnnx(
  onnxPath: string,
  name: string,
  version: string,
  measureBatching = true,
): Promise<Manifest> {
  return (await contractFromOnnx(readFileSync(onnxPath), basename(onnxPath), name, version, measureBatching)).manifest;
}

type Dims = number[];
const dims = (shape: ReadonlyArray<number | string>): Dims =>
  shape.map((d) => (typeof d === 'number' && d >= 0 ? d : -1));

/**
 * The contract of a model from its own metadata, and the bytes to serve. A classical (ONNX-ML) export gets
 * named features for its column inputs, its class labels and its probabilities from before any ZipMap.
 */
async function contractFromOnnx(
  bytes: Uint8Array,
  file: string,
  name: string,
  version: string,
  measureBatching = true,
): Promise<{ manifest: Manifest; bytes: Uint8Array; ml?: OnnxMlInfo }> {
  let ml: OnnxMlInfo | undefined;
  try {
    ml = readOnnxMl(bytes);
  } catch {
    ml = undefined; // not readable as ONNX protobuf: ONNX Runtime below says why
  }
  const served = ml?.bytes ?? bytes;
  const session = await ort.InferenceSession.create(served).catch((e: Error) => {
    throw new Error(
      `${file} is not a model ONNX Runtime can load: ${e.message.replace(/^Load model from .* failed:/, '')}`,
    );
  });
  try {
    if (ml?.classical) return { manifest: classicalContract(session, ml, file, name, version), bytes: served, ml };
    const inputs = session.inputMetadata.map((m) => {
      if (!m.isTensor) throw new Error(`input "${m.name}" is not a tensor; ferry init handles tensor inputs only`);
      return { name: m.name, type: 'tensor' as const, dtype: dtypeOf(String(m.type)), shape: dims(m.shape) };
    });
    const outputs = session.outputMetadata.map((m) =>
      m.isTensor ? { name: m.name, dtype: dtypeOf(String(m.type)), shape: dims(m.shape) } : { name: m.name },
    );
    const manifest: Manifest = {
      name,
      version,
      description: `${name} ${version}, imported from ${file} by ferry init; edit this contract to name features and labels.`,
      inputs,
      outputs,
      postprocess: { kind: 'raw' },
    };
    if (measureBatching && isBatchable(manifest)) {
      const choice = await probeWithSession(session, inputs);
      if (choice) manifest.batching = choice;
    }
    return { manifest, bytes: served };
  } finally {
    await session.release();
  }
}

/** A feature name from an ONNX input name (features are `[A-Za-z_][A-Za-z0-9_.-]*`-like identifiers). */
function featureName(raw: string): string {
  const n = raw.replace(/[^A-Za-z0-9_]+/g, '_').replace(/^(?=[0-9])/, '_');
  return n || 'x';
}

/**
 * A scikit-learn / onnxmltools export: each [N, 1] input (one per DataFrame column) becomes a named feature
 * (number, integer, or category with the values its OneHotEncoder knows), a [N, k] float input becomes k
 * number features x0…x{k-1} in column order, the classifier's labels and probabilities come from the graph.
 */
function classicalContract(
  session: ort.InferenceSession,
  ml: OnnxMlInfo,
  file: string,
  name: string,
  version: string,
): Manifest {
  const inputs: Feature[] = [];
  const preprocess: TensorBinding[] = [];
  const wide = session.inputMetadata.filter((m) => m.isTensor && dims(m.shape).length === 2 && dims(m.shape)[1]! > 1);
  for (const m of session.inputMetadata) {
    if (!m.isTensor) throw new Error(`input "${m.name}" is not a tensor; ferry init handles tensor inputs only`);
    const dtype = dtypeOf(String(m.type));
    const shape = dims(m.shape);
    const column = shape.length === 1 || (shape.length === 2 && shape[1] === 1);
    const floaty = dtype === 'float32' || dtype === 'float64';
    const inty = dtype === 'int64' || dtype === 'int32';
    if (column && (floaty || inty || dtype === 'string')) {
      const f = featureName(m.name);
      const cats = ml.categories.get(m.name);
      inputs.push(
        dtype === 'string'
          ? cats
            ? { name: f, type: 'category', values: cats }
            : { name: f, type: 'string' }
          : { name: f, type: floaty ? 'number' : 'integer' },
      );
      // A [N] input cannot take a [N, 1] binding: keep such (rare) inputs as tensors.
      if (shape.length === 1) {
        inputs.pop();
        inputs.push({ name: m.name, type: 'tensor', dtype, shape });
        continue;
      }
      preprocess.push({
        input: m.name,
        dtype,
        columns: [{ feature: f }],
      });
      continue;
    }
    if (shape.length === 2 && shape[1]! > 1 && floaty) {
      const prefix = wide.length > 1 ? `${featureName(m.name)}_` : 'x';
      const names = Array.from({ length: shape[1]! }, (_, i) => `${prefix}${i}`);
      for (const n of names) inputs.push({ name: n, type: 'number' });
      preprocess.push({ input: m.name, dtype, columns: names.map((n) => ({ feature: n })) });
      continue;
    }
    inputs.push({ name: m.name, type: 'tensor', dtype, shape });
  }
  const outputs = session.outputMetadata
    .filter((m) => m.isTensor)
    .map((m) => ({ name: m.name, dtype: dtypeOf(String(m.type)), shape: dims(m.shape) }));
  const probs = ml.probabilities && outputs.find((o) => o.name === ml.probabilities);
  const regression =
    !probs && ml.regressor ? outputs.find((o) => o.dtype === 'float32' || o.dtype === 'float64') : undefined;
  const what = probs
    ? `classifier (labels ${ml.labels!.join(', ')}${ml.labelType === 'integer' ? ', integers in the model' : ''})`
    : regression
      ? 'regressor'
      : 'model';
  return {
    name,
    version,
    description:
      `${name} ${version}: scikit-learn/ONNX-ML ${what} imported from ${file} by ferry init` +
      (ml.zipMapOutputs.length
        ? `; probabilities served as a tensor from before the ZipMap (${ml.zipMapOutputs.join(', ')})`
        : ''),
    inputs,
    ...(preprocess.length && { preprocess }),
    outputs,
    postprocess: probs
      ? { kind: 'classification', output: probs.name, labels: ml.labels! }
      : regression
        ? { kind: 'regression', output: regression.name }
        : { kind: 'raw' },
    ...(preprocess.length && { batching: { maxBatchSize: 64, maxQueueDelayUs: 500 } }),
  };
}

export async function initModel(o: InitOptions): Promise<{ dir: string; manifest: Manifest }> {
  if (!existsSync(o.onnxPath)) throw new Error(`${o.onnxPath} does not exist`);
  const name =
    o.name ??
    basename(o.onnxPath)
      .replace(/\.onnx$/i, '')
      .toLowerCase()
      .replace(/[^a-z0-9._-]+/g, '-');
  const version = o.version ?? '1.0.0';
  if (!MODEL_NAME.test(name))
    throw new Error(`invalid model name "${name}" (lower-case letters, digits, '.', '_' and '-')`);
  if (semver.clean(version) !== version)
    throw new Error(`invalid version "${version}" (expected a semantic version like 1.0.0)`);
  const dir = resolve(join(o.repo, name, version));
  if (existsSync(join(dir, 'ferry.yaml')) && !o.force)
    throw new Error(`${dir}/ferry.yaml exists; use --force to overwrite`);
  let manifest: Manifest;
  // What is written as model.onnx: the file as given, or (a scikit-learn export) with its ZipMaps removed.
  let served: Uint8Array | undefined;
  // Files the contract refers to (tokenizer.json, config.json), copied into the version folder with the model.
  let extraFiles: string[] = [];
  // Whether the batching written is the one measured here (a transformer's padded batching is not).
  let measured = false;
  if (o.contractFrom) {
    const [fromName, fromVersion] = o.contractFrom.split('@');
    if (!fromName || !fromVersion || !MODEL_NAME.test(fromName) || semver.clean(fromVersion) !== fromVersion) {
      throw new Error(`--contract-from takes name@version, got "${o.contractFrom}"`);
    }
    const source = readManifest(join(o.repo, fromName, fromVersion, 'ferry.yaml'));
    manifest = {
      ...source,
      name,
      version,
      description: `${source.description ?? fromName} (built from ${o.contractFrom}'s contract by ferry init)`,
    };
    delete (manifest as { model?: string }).model;
    const sourceDir = join(o.repo, fromName, fromVersion);
    extraFiles = TRANSFORMER_FILES.filter((f) => existsSync(join(sourceDir, f))).map((f) => join(sourceDir, f));
  } else {
    const c = await contractFromOnnx(
      readFileSync(o.onnxPath),
      basename(o.onnxPath),
      name,
      version,
      o.measureBatching ?? true,
    );
    served = c.bytes;
    const t = transformerContract(o.onnxPath, c.manifest);
    manifest = t.manifest;
    measured = manifest.batching !== undefined && manifest.batching === c.manifest.batching;
    extraFiles = t.files.map((f) => join(dirname(o.onnxPath), f));
  }
  mkdirSync(dir, { recursive: true });
  for (const f of extraFiles) if (resolve(f) !== join(dir, basename(f))) copyFileSync(f, join(dir, basename(f)));
  checkManifest(manifest, join(dir, 'ferry.yaml'));
  if (served || resolve(o.onnxPath) !== join(dir, 'model.onnx'))
    writeFileSync(join(dir, 'model.onnx'), served ?? readFileSync(o.onnxPath));
  writeFileSync(
    join(dir, 'ferry.yaml'),
    `# Written by ferry init ${o.contractFrom ? `from the contract of ${o.contractFrom}` : "from the model's own metadata"}.\n` +
      (measured
        ? '# batching: measured on this machine (docs/production.md, "Batching is on by default"); delete it to let ferry serve measure at warm-up.\n'
        : '') +
      stringify(manifest, { flow: false }),
  );
  return { dir, manifest };
}
