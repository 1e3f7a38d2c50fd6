// Inference worker thread: holds ONNX Runtime sessions and runs them. `session.run` blocks the
// thread that calls it, so it happens here, never on the thread that serves HTTP.
import { parentPort } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import type * as ort from 'onnxruntime-node';
import type { FromWorker, ToWorker } from './protocol.js';
import { createSession, describeIo, runSession } from './ort-session.js';
import { runOcr, type OcrParams, type TensorValue } from '@ferry/core';
import type { PipelineSpec } from './protocol.js';
import { answerRequests, transferList } from './rpc.js';
import { HandlerCalls, loadHandler, runHandler, type LoadedHandler } from './worker-handler.js';

const sessions = new Map<string, ort.InferenceSession>();
interface LoadedPipeline {
  spec: PipelineSpec;
  detector: ort.InferenceSession;
  recognizer: ort.InferenceSession;
}
const pipelines = new Map<string, LoadedPipeline>();
const handlers = new Map<string, LoadedHandler>();
/** Runs not yet returned: ONNX Runtime starts a run on a later tick, so a release must wait for them. */
const running = new Set<Promise<unknown>>();
const settle = () => Promise.allSettled([...running]);
const port = parentPort!;

function post(msg: FromWorker, transfer: ArrayBuffer[] = []): void {
  port.postMessage(msg, transfer);
}

/** A handler's `ctx.predict` calls, answered by the main thread. */
const calls = new HandlerCalls(post);

/** Runs a handler's session, counted as running so a release waits for it. */
function runTracked(session: ort.InferenceSession, feeds: Record<string, TensorValue>) {
  const run = runSession(session, feeds);
  running.add(run);
  return run.finally(() => running.delete(run));
}

/** Loads a model version's session (and its handler, if it has one); replaces an older load of the key. */
async function loadModel(msg: Extract<ToWorker, { type: 'load' }>, t0: number): Promise<void> {
  const old = sessions.get(msg.key);
  const session = await createSession(msg.modelPath, msg.options);
  let handler: LoadedHandler | undefined;
  if (msg.handler) {
    try {
      handler = await loadHandler(msg.handler, (feeds) => runTracked(session, feeds), calls);
    } catch (e) {
      await session.release();
      throw e;
    }
  }
  sessions.set(msg.key, session);
  if (handler) handlers.set(msg.key, handler);
  else handlers.delete(msg.key);
  if (old) {
    await settle();
    await old.release();
  }
  post({
    type: 'loaded',
    id: msg.id,
    inputs: describeIo(session.inputMetadata),
    outputs: describeIo(session.outputMetadata),
    loadMs: performance.now() - t0,
    ...(handler && { handler: handler.shape }),
  });
}

async function handle(msg: ToWorker): Promise<void> {
  switch (msg.type) {
    case 'load': {
      const t0 = performance.now();
      if (msg.pipeline) {
        const spec = msg.pipeline;
        const [detector, recognizer] = await Promise.all([
          createSession(spec.detector.path, msg.options),
          createSession(spec.recognizer.path, msg.options),
        ]);
        const previous = pipelines.get(msg.key);
        pipelines.set(msg.key, { spec, detector, recognizer });
        if (previous) {
          await settle();
          await previous.detector.release();
          await previous.recognizer.release();
        }
        post({
          type: 'loaded',
          id: msg.id,
          inputs: describeIo(detector.inputMetadata),
          outputs: describeIo(recognizer.outputMetadata),
          loadMs: performance.now() - t0,
        });
        return;
      }
      await loadModel(msg, t0);
      return;
    }
    case 'unload': {
      const s = sessions.get(msg.key);
      sessions.delete(msg.key);
      handlers.delete(msg.key);
      if (s) {
        await settle();
        await s.release();
      }
      post({ type: 'unloaded', id: msg.id });
      return;
    }
    case 'shutdown': {
      // Arrives only after any running inference has returned (session.run holds this thread), so
      // releasing here never pulls a session out from under a run; terminating mid-run would abort.
      await settle();
      for (const [key, s] of sessions) {
        sessions.delete(key);
        await s.release();
      }
      for (const [key, p] of pipelines) {
        pipelines.delete(key);
        await p.detector.release();
        await p.recognizer.release();
      }
      post({ type: 'unloaded', id: msg.id });
      return;
    }
    case 'pipeline': {
      const p = pipelines.get(msg.key);
      if (!p)
        throw Object.assign(new Error(`pipeline ${msg.key} is not loaded in this worker`), { code: 'model-not-ready' });
      const t0 = performance.now();
      const step =
        (session: ort.InferenceSession, io: { input: string; output: string }) =>
        async (t: TensorValue): Promise<TensorValue> => {
          const run = runSession(session, { [io.input]: t }, [io.output]);
          running.add(run);
          const r = await run.finally(() => running.delete(run));
          return r.outputs[io.output]!;
        };
      const lines = await runOcr(
        msg.image,
        {
          detect: step(p.detector, p.spec.detector),
          recognize: step(p.recognizer, p.spec.recognizer),
        },
        { ...(p.spec.params as Partial<OcrParams>), labels: p.spec.labels },
      );
      post({ type: 'pipeline-result', id: msg.id, result: lines, inferMs: performance.now() - t0 });
      return;
    }
    case 'handle': {
      const h = handlers.get(msg.key);
      if (!h)
        throw Object.assign(new Error(`handler of ${msg.key} is not loaded in this worker`), {
          code: 'model-not-ready',
        });
      const t0 = performance.now();
      const predictions = await runHandler(h, msg.instances);
      post({ type: 'handled', id: msg.id, predictions, inferMs: performance.now() - t0 });
      return;
    }
    case 'call-result':
      calls.settle(msg);
      return;
    case 'run': {
      const session = sessions.get(msg.key);
      if (!session)
        throw Object.assign(new Error(`model ${msg.key} is not loaded in this worker`), { code: 'model-not-ready' });
      const run = runSession(session, msg.feeds, msg.outputs);
      running.add(run);
      const { outputs, inferMs } = await run.finally(() => running.delete(run));
      post({ type: 'result', id: msg.id, outputs, inferMs }, transferList(Object.values(outputs)));
      return;
    }
  }
}

answerRequests<ToWorker>(port, handle);
