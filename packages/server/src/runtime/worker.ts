// Inference worker thread: holds ONNX Runtime sessions and runs them. `session.run` blocks the
// thread that calls it, so it happens here, never on the thread that serves HTTP.
import { parentPort } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import * as ort from 'onnxruntime-node';
import type { TensorValue } from '@ferry/core';
import type { FromWorker, IoMeta, ToWorker } from './protocol.js';
import { toOrtOptions } from './session-options.js';

const sessions = new Map<string, ort.InferenceSession>();
const port = parentPort!;

function post(msg: FromWorker, transfer: ArrayBuffer[] = []): void {
  port.postMessage(msg, transfer);
}

function meta(list: readonly ort.InferenceSession.ValueMetadata[]): IoMeta[] {
  return list.map((m) => (m.isTensor
    ? { name: m.name, dtype: String(m.type), shape: m.shape.map((d) => (typeof d === 'number' ? d : -1)) }
    : { name: m.name, dtype: 'non-tensor', shape: [] }));
}

function toOrt(t: TensorValue): ort.Tensor {
  // Ferry moves float16 as raw bits in a Uint16Array, which is what ONNX Runtime expects too.
  return new ort.Tensor(t.dtype as ort.Tensor.Type, t.data as never, t.dims);
}

function transferable(data: TensorValue['data']): ArrayBuffer | undefined {
  if (Array.isArray(data)) return undefined;
  const buf = data.buffer as ArrayBuffer;
  return data.byteOffset === 0 && data.byteLength === buf.byteLength ? buf : undefined;
}

async function handle(msg: ToWorker): Promise<void> {
  switch (msg.type) {
    case 'load': {
      const t0 = performance.now();
      const old = sessions.get(msg.key);
      const session = await ort.InferenceSession.create(msg.modelPath, toOrtOptions(msg.options));
      sessions.set(msg.key, session);
      if (old) await old.release();
      post({ type: 'loaded', id: msg.id, inputs: meta(session.inputMetadata), outputs: meta(session.outputMetadata), loadMs: performance.now() - t0 });
      return;
    }
    case 'unload': {
      const s = sessions.get(msg.key);
      sessions.delete(msg.key);
      if (s) await s.release();
      post({ type: 'unloaded', id: msg.id });
      return;
    }
    case 'shutdown': {
      // Arrives only after any running inference has returned (session.run holds this thread), so
      // releasing here never pulls a session out from under a run; terminating mid-run would abort.
      for (const [key, s] of sessions) {
        sessions.delete(key);
        await s.release();
      }
      post({ type: 'unloaded', id: msg.id });
      return;
    }
    case 'run': {
      const session = sessions.get(msg.key);
      if (!session) throw Object.assign(new Error(`model ${msg.key} is not loaded in this worker`), { code: 'model-not-ready' });
      const feeds: Record<string, ort.Tensor> = {};
      for (const [name, t] of Object.entries(msg.feeds)) feeds[name] = toOrt(t);
      const t0 = performance.now();
      const result = msg.outputs ? await session.run(feeds, msg.outputs) : await session.run(feeds);
      const inferMs = performance.now() - t0;
      const outputs: Record<string, TensorValue> = {};
      const transfer: ArrayBuffer[] = [];
      for (const [name, t] of Object.entries(result)) {
        let data = t.data as TensorValue['data'];
        let buf = transferable(data);
        if (!buf && !Array.isArray(data)) {
          data = (data as Float32Array).slice();
          buf = (data as Float32Array).buffer as ArrayBuffer;
        }
        if (buf && !transfer.includes(buf)) transfer.push(buf);
        outputs[name] = { dtype: t.type as TensorValue['dtype'], dims: [...t.dims], data };
        t.dispose();
      }
      post({ type: 'result', id: msg.id, outputs, inferMs }, transfer);
      return;
    }
  }
}

port.on('message', (msg: ToWorker) => {
  handle(msg).catch((e: unknown) => {
    const err = e as Error & { code?: string };
    post({ type: 'error', id: msg.id, message: err.message ?? String(e), ...(err.code && { code: err.code }) });
  });
});
