// A version's handler inside an inference worker: its context (the contract's own encode/decode, this
// version's session, other models through the main thread) and one call through it. The main thread
// validates the instances before and the predictions after (serving/predict/predictor.ts).
import {
  compileDecoder,
  compileEncoder,
  InputError,
  type FieldIssue,
  type HandlerContext,
  type Instance,
  type ModelHandler,
  type Prediction,
  type TensorValue,
} from '@ferry/core';
import type { FromWorker, HandlerSpec, ToWorker } from './protocol.js';
import { importHandler, type HandlerShape } from './handler-module.js';

export interface LoadedHandler {
  handler: ModelHandler;
  shape: HandlerShape;
  ctx: HandlerContext;
}

/** Thrown by `ctx.invalid`: carried to the main thread as `invalid-input` with the handler's pointers. */
class HandlerInputError extends Error {
  readonly code = 'invalid-input';
  constructor(readonly issues: FieldIssue[]) {
    super(issues.map((i) => `${i.pointer}: ${i.reason}`).join('; '));
  }
}

/** `ctx.predict` calls waiting for the main thread, by their (negative) ids. */
export class HandlerCalls {
  private next = -1;
  private readonly pending = new Map<number, { resolve(p: Prediction[]): void; reject(e: Error): void }>();
  constructor(private readonly post: (msg: FromWorker) => void) {}

  call(model: string, instances: readonly Instance[]): Promise<Prediction[]> {
    const id = this.next--;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.post({ type: 'call', id, model, instances: [...instances] });
    });
  }

  settle(msg: Extract<ToWorker, { type: 'call-result' }>): void {
    const p = this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id);
    if (msg.error) p.reject(Object.assign(new Error(msg.error.message), { code: msg.error.code }));
    else p.resolve(msg.predictions ?? []);
  }
}

export async function loadHandler(
  spec: HandlerSpec,
  run: (feeds: Record<string, TensorValue>) => Promise<{ outputs: Record<string, TensorValue> }>,
  calls: HandlerCalls,
): Promise<LoadedHandler> {
  const { handler, shape } = await importHandler(spec.path);
  const encoder = compileEncoder(spec.manifest);
  const decoder = compileDecoder(spec.manifest);
  const self = spec.model.name;
  const ctx: HandlerContext = Object.freeze({
    model: Object.freeze({ ...spec.model }),
    manifest: spec.manifest,
    encode: (instances: readonly Instance[]) => encoder.encode(instances, ''),
    decode: (outputs: Record<string, TensorValue>, rows: number) => decoder.decode(outputs, rows),
    run: async (feeds: Record<string, TensorValue>) => (await run(feeds)).outputs,
    predict: (model: string, instances: readonly Instance[]) => {
      // A model calling itself would never end; the main thread refuses it too.
      if (model.split('@')[0] === self) throw new Error(`a handler cannot call its own model (${self})`);
      return calls.call(model, instances);
    },
    invalid: (issues: ReadonlyArray<FieldIssue> | string): never => {
      throw new HandlerInputError(typeof issues === 'string' ? [{ pointer: '', reason: issues }] : [...issues]);
    },
  });
  if (handler.setup) await handler.setup(ctx);
  return { handler, shape, ctx };
}

/** Names the handler's part in an error it threw, so the problem detail says where it failed. */
function inPart<T>(part: string, f: () => T | Promise<T>): Promise<T> {
  return Promise.resolve()
    .then(f)
    .catch((e: unknown) => {
      if (e instanceof HandlerInputError) throw e;
      if (e instanceof InputError)
        // The contract's own encode refused a value: pointers relative to the handler's instances.
        throw new HandlerInputError(e.issues);
      const err = e as Error & { code?: string };
      if (err?.code === 'invalid-input' && Array.isArray((err as { issues?: unknown }).issues)) throw err;
      throw Object.assign(new Error(`handler ${part}: ${err?.message ?? String(e)}`), {
        code: err?.code === 'model-not-ready' ? 'model-not-ready' : 'inference-failed',
      });
    });
}

/** One call: predict, or preprocess (or the contract's encode) → run → postprocess (or the contract's decode). */
export async function runHandler(h: LoadedHandler, instances: Instance[]): Promise<Prediction[]> {
  const { handler, ctx } = h;
  if (handler.predict) return inPart('predict', () => handler.predict!(instances, ctx));
  const feeds = handler.preprocess
    ? await inPart('preprocess', () => handler.preprocess!(instances, ctx))
    : await inPart('encode', () => ctx.encode(instances));
  const outputs = await inPart('run', () => ctx.run(feeds));
  return handler.postprocess
    ? inPart('postprocess', () => handler.postprocess!(outputs, instances, ctx))
    : inPart('decode', () => ctx.decode(outputs, instances.length));
}
