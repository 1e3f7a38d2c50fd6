// Inline execution: sessions held on the main thread, for models a manifest marks
// `runtime.placement: inline` because measurement showed the thread hop costs more than the
// inference itself (a tabular model answering in tens of microseconds). Everything else runs in
// the worker pool; a slow model placed inline would stall the HTTP thread, so it is opt-in.
import type * as ort from 'onnxruntime-node';
import type { TensorValue } from '@ferry/core';
import { FerryError } from '../../errors.js';
import type { LoadedModel, RunResult } from './pool.js';
import { createSession, describeIo, runSession } from './ort-session.js';
import type { OrtSessionOptions } from './session-options.js';

export class InlineSessions {
  private readonly sessions = new Map<string, ort.InferenceSession>();
  private readonly running = new Set<Promise<unknown>>();

  async load(key: string, modelPath: string, options: OrtSessionOptions): Promise<LoadedModel> {
    const t0 = performance.now();
    const session = await createSession(modelPath, options);
    const old = this.sessions.get(key);
    this.sessions.set(key, session);
    if (old) {
      await Promise.allSettled([...this.running]);
      await old.release();
    }
    return {
      key,
      inputs: describeIo(session.inputMetadata),
      outputs: describeIo(session.outputMetadata),
      loadMs: performance.now() - t0,
      workers: [],
    };
  }

  has(key: string): boolean {
    return this.sessions.has(key);
  }

  async run(key: string, feeds: Record<string, TensorValue>, outputs?: string[]): Promise<RunResult> {
    const session = this.sessions.get(key);
    if (!session) throw new FerryError('model-not-ready', { detail: `model ${key} is not loaded` });
    const run = runSession(session, feeds, outputs);
    this.running.add(run);
    try {
      return await run;
    } catch (e) {
      throw new FerryError('inference-failed', { detail: (e as Error).message, cause: e });
    } finally {
      this.running.delete(run);
    }
  }

  /** Frees one session once the runs in progress have finished. */
  async unload(key: string): Promise<void> {
    const session = this.sessions.get(key);
    if (!session) return;
    this.sessions.delete(key);
    await Promise.allSettled([...this.running]);
    await session.release();
  }

  /**
   * Frees every session once the runs in progress have finished. The sessions leave the map first, so
   * a run asked for meanwhile is refused (model-not-ready) instead of starting on a session being
   * released: ONNX Runtime would run on freed memory and take the process down.
   */
  async dispose(): Promise<void> {
    const sessions = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.allSettled([...this.running]);
    for (const s of sessions) await s.release();
  }
}
