// `ferry init`: puts an ONNX file into the model repository with a first ferry.yaml whose tensor
// inputs and outputs come from the model's own metadata, so any ONNX model can be served at once.
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import semver from 'semver';
import { stringify } from 'yaml';
import type { Manifest, TensorDtype } from '@ferry/core';
import { TENSOR_DTYPES } from '@ferry/core';
import { checkManifest, MODEL_NAME, readManifest } from './index.js';
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
}

const ORT_DTYPES: Record<string, TensorDtype> = { float: 'float32', double: 'float64' };

function dtypeOf(t: string): TensorDtype {
  const d = ORT_DTYPES[t] ?? t;
  if (!(TENSOR_DTYPES as readonly string[]).includes(d)) throw new Error(`unsupported tensor type "${t}"`);
  return d as TensorDtype;
}

/** Builds the manifest for an ONNX model from its metadata. */
export async function manifestFromOnnx(onnxPath: string, name: string, version: string): Promise<Manifest> {
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
    return {
      name,
      version,
      description: `${name} ${version}, imported from ${basename(onnxPath)} by ferry init; edit this contract to name features and labels.`,
      inputs,
      outputs,
      postprocess: { kind: 'raw' },
    };
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
  // Files the contract refers to (tokenizer.json, config.json), copied into the version folder with the model.
  let extraFiles: string[] = [];
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
    const t = transformerContract(o.onnxPath, await manifestFromOnnx(o.onnxPath, name, version));
    manifest = t.manifest;
    extraFiles = t.files.map((f) => join(dirname(o.onnxPath), f));
  }
  mkdirSync(dir, { recursive: true });
  for (const f of extraFiles) if (resolve(f) !== join(dir, basename(f))) copyFileSync(f, join(dir, basename(f)));
  checkManifest(manifest, join(dir, 'ferry.yaml'));
  if (resolve(o.onnxPath) !== join(dir, 'model.onnx')) copyFileSync(o.onnxPath, join(dir, 'model.onnx'));
  writeFileSync(
    join(dir, 'ferry.yaml'),
    `# Written by ferry init ${o.contractFrom ? `from the contract of ${o.contractFrom}` : "from the model's own metadata"}.\n${stringify(manifest, { flow: false })}`,
  );
  return { dir, manifest };
}
