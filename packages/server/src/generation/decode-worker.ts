// The decode worker thread: holds the generative models' sessions and steps every running generation
// one token at a time. Generations interleave step by step (each session.run returns to the event
// loop), so a long completion does not hold up a new one's first token. A generation without credit
// waits, holding only its cache; a cancel frees the cache at the next step boundary.
import { parentPort } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import type * as ort from 'onnxruntime-node';
import { createSession } from '../serving/runtime/ort-session.js';
import { answerRequests } from '../serving/runtime/rpc.js';
import { decoderLayout, KvSequence } from './decoder-session.js';
import { sampleToken, seededRandom } from './sampler.js';
import type { DecoderLayout, FromDecoder, GenerateRequest, ToDecoder } from './protocol.js';

interface Model {
  session: ort.InferenceSession;
  layout: DecoderLayout;
  active: number;
}
interface Running {
  credit: number;
  cancelled: boolean;
  wake?: () => void;
}

const models = new Map<string, Model>();
const running = new Map<number, Running>();
const port = parentPort!;
const post = (msg: FromDecoder): void => port.postMessage(msg);

async function generate(id: number, r: GenerateRequest): Promise<void> {
  const model = models.get(r.key);
  if (!model)
    throw Object.assign(new Error(`model ${r.key} is not loaded in the decode worker`), { code: 'model-not-ready' });
  const state: Running = { credit: r.credit, cancelled: false };
  running.set(id, state);
  model.active++;
  const seq = new KvSequence(model.session, model.layout);
  const random = seededRandom(r.seed);
  const eos = new Set(r.eosIds);
  const t0 = performance.now();
  let prefillMs = 0;
  let produced = 0;
  let reason: 'stop' | 'length' | 'cancelled' = 'length';
  try {
    let logits = await seq.step(r.promptIds);
    prefillMs = performance.now() - t0;
    for (;;) {
      if (state.cancelled) {
        reason = 'cancelled';
        break;
      }
      const token = sampleToken(logits, r, random);
      if (eos.has(token)) {
        reason = 'stop';
        break;
      }
      produced++;
      state.credit--;
      post({ type: 'token', id, token, sinceStartMs: performance.now() - t0 });
      if (produced >= r.maxTokens) {
        reason = 'length';
        break;
      }
      // No credit: the client is not reading. Wait here (holding only the cache) until it is or the request ends.
      while (state.credit <= 0 && !state.cancelled)
        await new Promise<void>((resolve) => {
          state.wake = resolve;
        });
      if (state.cancelled) {
        reason = 'cancelled';
        break;
      }
      logits = await seq.step([token]);
    }
  } finally {
    seq.dispose();
    model.active--;
    running.delete(id);
  }
  post({
    type: 'done',
    id,
    reason,
    completionTokens: produced,
    prefillMs,
    decodeMs: performance.now() - t0 - prefillMs,
  });
}

async function handle(msg: ToDecoder): Promise<void> {
  switch (msg.type) {
    case 'load': {
      const t0 = performance.now();
      const session = await createSession(msg.modelPath, msg.options);
      let layout: DecoderLayout;
      try {
        layout = decoderLayout(session);
      } catch (e) {
        await session.release();
        throw e;
      }
      const old = models.get(msg.key);
      models.set(msg.key, { session, layout, active: 0 });
      if (old) await old.session.release();
      post({ type: 'loaded', id: msg.id, layout, loadMs: performance.now() - t0 });
      return;
    }
    case 'unload': {
      const m = models.get(msg.key);
      models.delete(msg.key);
      if (m) await m.session.release();
      post({ type: 'unloaded', id: msg.id });
      return;
    }
    case 'generate':
      return generate(msg.id, msg.request);
    case 'credit': {
      const r = running.get(msg.id);
      if (r) {
        r.credit += msg.tokens;
        r.wake?.();
        r.wake = undefined;
      }
      return;
    }
    case 'cancel': {
      const r = running.get(msg.id);
      if (r) {
        r.cancelled = true;
        r.wake?.();
        r.wake = undefined;
      }
      return;
    }
    case 'shutdown': {
      for (const r of running.values()) {
        r.cancelled = true;
        r.wake?.();
      }
      // Let cancelled generations reach their step boundary before their sessions go.
      while (running.size > 0) await new Promise((resolve) => setTimeout(resolve, 5));
      for (const [key, m] of models) {
        models.delete(key);
        await m.session.release();
      }
      post({ type: 'unloaded', id: msg.id });
      return;
    }
  }
}

answerRequests<ToDecoder>(port, handle);
