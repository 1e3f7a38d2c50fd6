// Edge inference: the browser downloads a version's ONNX file and contract from Ferry and runs them in
// onnxruntime-web (WASM) with the very same @ferry/core preprocessing and postprocessing as the
// server, so both answer the same. `auto` picks the edge when the artifact is small enough and WASM
// works, and the server otherwise (or when loading fails), saying why.
import { compileDecoder, compileEncoder, InputError, type Manifest, type RowInfo, type TensorValue } from '@ferry/core';
import type * as OrtTypes from 'onnxruntime-web';
import { splitModelRef, type CallOptions, type FerryClient } from '../client.js';
import { InvalidInputError } from '../errors.js';
import type { AnyPrediction, InputOf, ModelName, PredictionOf } from '../types.js';

export type EdgeMode = 'edge' | 'server' | 'auto';
type Ort = typeof OrtTypes;

export interface EdgeModelOptions {
  /** Default `auto`. */
  mode?: EdgeMode;
  /** `auto` runs on the server above this artifact size. Default 20 MB. */
  maxArtifactBytes?: number;
  /** Where ort-wasm-*.wasm are served. Default: where onnxruntime-web says (a bundler such as Vite emits the file
   * beside the app).
   */
  wasmPaths?: string;
  /** onnxruntime-web itself, when the app imports it already (otherwise it is loaded on demand). */
  ort?: Ort;
  /** Threads for WASM; more than 1 needs a cross-origin-isolated page. Default 1. */
  numThreads?: number;
}

export interface EdgeResult<P> {
  model: string;
  version: string;
  predictions: P[];
  /** Where this answer was computed. */
  source: 'edge' | 'server';
  latencyMs: number;
}

export interface EdgeModel<M extends ModelName = string> {
  readonly name: string;
  readonly version: string;
  /** Where predictions run; with `auto` this is the choice made, and `reason` says why. */
  readonly runsOn: 'edge' | 'server';
  readonly reason: string;
  readonly artifactBytes: number;
  /** Time to download the artifact and create the session, ms (0 when on the server). */
  readonly loadMs: number;
  predict(instances: Array<InputOf<M>>, o?: CallOptions): Promise<EdgeResult<PredictionOf<M>>>;
  /** Always on the server, whatever the mode (to compare or fall back). */
  predictOnServer(instances: Array<InputOf<M>>, o?: CallOptions): Promise<EdgeResult<PredictionOf<M>>>;
  dispose(): Promise<void>;
}

const now = () => (typeof performance !== 'undefined' ? performance.now() : Date.now());

async function loadOrt(o: EdgeModelOptions): Promise<Ort> {
  const ort = o.ort ?? ((await import('onnxruntime-web/wasm')) as unknown as Ort);
  if (o.wasmPaths !== undefined) ort.env.wasm.wasmPaths = o.wasmPaths;
  ort.env.wasm.numThreads = o.numThreads ?? 1;
  ort.env.wasm.proxy = false;
  return ort;
}

/**
 * @example
 * const spam = await createEdgeModel(client, 'spam@1', { mode: 'auto' });
 * const { predictions, source } = await spam.predict([{ text }]);
 */
export async function createEdgeModel<M extends ModelName>(
  client: FerryClient,
  ref: M,
  opts: EdgeModelOptions = {},
): Promise<EdgeModel<M>> {
  const mode = opts.mode ?? 'auto';
  const { name, version: wanted } = splitModelRef(ref);
  const meta = await client.models.artifactContract(name, wanted ?? 'latest').catch((e: unknown) => {
    // A pipeline model (OCR) has no single artifact: it can still be used through the server.
    if (mode !== 'edge' && (e as { code?: string }).code === 'edge-unsupported') return undefined;
    throw e;
  });
  const version = meta?.version ?? (await client.models.get(name, wanted ? { version: wanted } : {})).version;
  const server = async (instances: Array<InputOf<M>>, o: CallOptions = {}): Promise<EdgeResult<PredictionOf<M>>> => {
    const r = await client.predict(name, instances, { ...o, version });
    return {
      model: r.model,
      version: r.version,
      predictions: r.predictions as Array<PredictionOf<M>>,
      source: 'server',
      latencyMs: r.latencyMs,
    };
  };
  const onServer = (reason: string): EdgeModel<M> => ({
    name,
    version,
    runsOn: 'server',
    reason,
    artifactBytes: meta?.artifact.bytes ?? 0,
    loadMs: 0,
    predict: server,
    predictOnServer: server,
    dispose: async () => undefined,
  });

  if (mode === 'server') return onServer('mode is server');
  if (!meta) return onServer('this model is a pipeline with no single artifact');
  const limit = opts.maxArtifactBytes ?? 20 * 1024 * 1024;
  if (mode === 'auto') {
    if (typeof WebAssembly === 'undefined') return onServer('WebAssembly is not available');
    if (meta.artifact.bytes > limit)
      return onServer(`artifact is ${meta.artifact.bytes} bytes, above the ${limit}-byte edge limit`);
  }

  const started = now();
  let session: OrtTypes.InferenceSession;
  let ort: Ort;
  try {
    ort = await loadOrt(opts);
    const bytes = await client.models.artifact(name, version);
    session = await ort.InferenceSession.create(new Uint8Array(bytes), {
      executionProviders: ['wasm'],
      graphOptimizationLevel: 'all',
    });
  } catch (e) {
    if (mode === 'edge') throw e;
    return onServer(`edge load failed: ${(e as Error).message}`);
  }
  const loadMs = now() - started;
  const manifest = meta.contract as unknown as Manifest;
  // The same tokenizer code and tokenizer.json as the server (sent with the contract).
  const encoder = compileEncoder(manifest, meta.resources ?? {});
  const decoder = compileDecoder(manifest);

  return {
    name,
    version,
    runsOn: 'edge',
    reason: mode === 'edge' ? 'mode is edge' : `artifact is ${meta.artifact.bytes} bytes and WASM works`,
    artifactBytes: meta.artifact.bytes,
    loadMs,
    predictOnServer: server,
    async predict(instances) {
      const t0 = now();
      let feeds: Record<string, TensorValue>;
      let rows: RowInfo[] | undefined;
      try {
        ({ feeds, rows } = encoder.encodeBatch(instances as Array<Record<string, unknown>>, '/instances'));
      } catch (e) {
        // The same problem the server would answer, so apps handle one error type wherever the model ran.
        if (e instanceof InputError)
          throw new InvalidInputError(e.message, {
            code: 'invalid-input',
            status: 400,
            problem: { code: 'invalid-input', status: 400, detail: e.message, errors: e.issues },
          });
        throw e;
      }
      const ortFeeds: Record<string, OrtTypes.Tensor> = {};
      for (const [k, t] of Object.entries(feeds))
        ortFeeds[k] = new ort.Tensor(t.dtype as OrtTypes.Tensor.Type, t.data as never, t.dims);
      const out = await session.run(ortFeeds);
      const outputs: Record<string, TensorValue> = {};
      for (const [k, t] of Object.entries(out))
        outputs[k] = { dtype: t.type as TensorValue['dtype'], dims: [...t.dims], data: t.data as TensorValue['data'] };
      const predictions = decoder.decode(outputs, instances.length, rows) as Array<PredictionOf<M>>;
      for (const t of Object.values(ortFeeds)) t.dispose?.();
      return { model: name, version, predictions, source: 'edge', latencyMs: now() - t0 };
    },
    async dispose() {
      await session.release();
    },
  };
}

export type { AnyPrediction };
