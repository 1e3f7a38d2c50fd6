// The decode worker thread: holds the generative models' sessions and, for each model, a batch
// engine (batch-engine.ts) that advances every running generation of that model in one ORT run per
// step. Messages from the main thread start generations, grant credit and cancel; the engine frees a
// cancelled generation's rows and cache at its next step boundary.
import { parentPort } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import type * as ort from 'onnxruntime-node';
import { createSession } from '../serving/runtime/ort-session.js';
import { answerRequests } from '../serving/runtime/rpc.js';
import { BatchEngine } from './batch-engine.js';
import { decoderLayout } from './decoder-session.js';
import { PrefixCache } from './prefix-cache.js';
import type { DecoderLayout, DecoderStats, FromDecoder, ToDecoder } from './protocol.js';

interface Model {
  session: ort.InferenceSession;
  layout: DecoderLayout;
  engine: BatchEngine;
  cache: PrefixCache | undefined;
}

const models = new Map<string, Model>();
/** Which model each running generation belongs to, for credit and cancel. */
const owner = new Map<number, Model>();
const port = parentPort!;
const post = (msg: FromDecoder): void => port.postMessage(msg);
// A step's tokens (and ends) go to the main thread as one message: with many sequences in the batch,
// one structured clone per step instead of one per token. Sent at each step's end, or at the end of
// the current task for events outside a step; order is kept.
let outbox: FromDecoder[] = [];
const flush = (): void => {
  if (outbox.length === 0) return;
  const messages = outbox;
  outbox = [];
  port.postMessage(messages.length === 1 ? messages[0]! : ({ type: 'batch', id: 0, messages } satisfies FromDecoder));
};
const queue = (msg: FromDecoder): void => {
  if (outbox.length === 0) queueMicrotask(flush);
  outbox.push(msg);
};

function statsOf(m: Model): DecoderStats {
  const e = m.engine.stats;
  const c = m.cache?.stats;
  return {
    sequences: m.engine.size,
    ...e,
    prefixLookups: c?.lookups ?? 0,
    prefixHits: c?.hits ?? 0,
    prefixHitTokens: c?.hitTokens ?? 0,
    prefixCachedTokens: c?.tokens ?? 0,
  };
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
      const s = msg.scheduler;
      const cache =
        s.prefixCacheTokens > 0
          ? new PrefixCache(layout.heads, layout.headDim, layout.layers, s.prefixCacheTokens, s.prefixBlockTokens)
          : undefined;
      const model: Model = {
        session,
        layout,
        cache,
        engine: new BatchEngine(
          session,
          layout,
          {
            maxBatchSize: s.maxBatchSize,
            prefillChunkTokens: s.prefillChunkTokens,
            ...(cache && { prefixCache: cache }),
          },
          {
            token: (e) => queue({ type: 'token', ...e }),
            done: (e) => {
              owner.delete(e.id);
              queue({ type: 'done', ...e });
            },
            error: (id, message) => {
              owner.delete(id);
              queue({ type: 'error', id, message, code: 'inference-failed' });
            },
            step: flush,
          },
        ),
      };
      const old = models.get(msg.key);
      models.set(msg.key, model);
      if (old) {
        old.engine.cancelAll();
        await old.engine.idle();
        await old.session.release();
      }
      post({ type: 'loaded', id: msg.id, layout, loadMs: performance.now() - t0 });
      return;
    }
    case 'unload': {
      const m = models.get(msg.key);
      models.delete(msg.key);
      if (m) {
        m.engine.cancelAll();
        await m.engine.idle();
        await m.session.release();
      }
      post({ type: 'unloaded', id: msg.id });
      return;
    }
    case 'stats': {
      const m = models.get(msg.key);
      post({ type: 'stats', id: msg.id, stats: m && statsOf(m) });
      return;
    }
    case 'generate': {
      const r = msg.request;
      const model = models.get(r.key);
      if (!model)
        throw Object.assign(new Error(`model ${r.key} is not loaded in the decode worker`), {
          code: 'model-not-ready',
        });
      owner.set(msg.id, model);
      for (const f of r.forks ?? []) owner.set(f.id, model);
      model.engine.add(
        {
          id: msg.id,
          promptIds: r.promptIds,
          maxTokens: r.maxTokens,
          temperature: r.temperature,
          topP: r.topP,
          seed: r.seed,
          eosIds: r.eosIds,
          credit: r.credit,
          ...(r.topLogprobs !== undefined && { topLogprobs: r.topLogprobs }),
        },
        r.forks ?? [],
      );
      return;
    }
    case 'credit':
      owner.get(msg.id)?.engine.credit(msg.id, msg.tokens);
      return;
    case 'credits':
      for (const [id, tokens] of msg.grants) owner.get(id)?.engine.credit(id, tokens);
      return;
    case 'cancel':
      owner.get(msg.id)?.engine.cancel(msg.id);
      return;
    case 'shutdown': {
      for (const m of models.values()) m.engine.cancelAll();
      // Let cancelled generations reach their step boundary before their sessions go.
      await Promise.all([...models.values()].map((m) => m.engine.idle()));
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
