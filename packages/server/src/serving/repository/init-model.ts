// `ferry init`: puts an ONNX file into the model repository with a first ferry.yaml whose tensor
// inputs and outputs come from the model's own metadata, so any ONNX model can be served at once,
// with the batching the model's own timings choose (serving/batching/defaults.ts) written in.
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import semver from 'semver';
import { stringify } from 'yaml';
import type { Manifest, TensorDtype } from '@ferry/core';
import { isBatchable, TENSOR_DTYPES } from '@ferry/core';
import { probeBatching } from '../batching/defaults.js';
import { checkManifest, MODEL_NAME, readManifest } from './index.js';

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
  const session = await ort.InferenceSession.create(onnxPath);
  try {
    const dims = (shape: ReadonlyArray<number | string>) =>
      shape.map((d) => (typeof d === 'number' && d >= 0 ? d : -1));
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
      description: `${name} ${version}, imported from ${basename(onnxPath)} by ferry init; edit this contract to name features and labels.`,
      inputs,
      outputs,
      postprocess: { kind: 'raw' },
    };
    if (measureBatching && isBatchable(manifest)) {
      const choice = await probeWithSession(session, inputs);
      if (choice) manifest.batching = choice;
    }
    return manifest;
  } finally {
    await session.release();
  }
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
  } else {
    manifest = await manifestFromOnnx(o.onnxPath, name, version, o.measureBatching ?? true);
  }
  checkManifest(manifest, join(dir, 'ferry.yaml'));
  mkdirSync(dir, { recursive: true });
  if (resolve(o.onnxPath) !== join(dir, 'model.onnx')) copyFileSync(o.onnxPath, join(dir, 'model.onnx'));
  writeFileSync(
    join(dir, 'ferry.yaml'),
    `# Written by ferry init ${o.contractFrom ? `from the contract of ${o.contractFrom}` : "from the model's own metadata"}.\n` +
      (!o.contractFrom && manifest.batching
        ? '# batching: measured on this machine (docs/batching.md); delete it to let ferry serve measure at warm-up.\n'
        : '') +
      stringify(manifest, { flow: false }),
  );
  return { dir, manifest };
}
