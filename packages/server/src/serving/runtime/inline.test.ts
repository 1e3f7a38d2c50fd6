// Main-thread sessions across a hot reload: runs in progress finish on the session they started on,
// and the replaced session is released once they have (the memory of the old copy is given back).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import type { TensorValue } from '@ferry/core';
import { InlineSessions } from './inline.js';
import type { OrtSessionOptions } from './session-options.js';

const MODEL = fileURLToPath(new URL('../../../../../models/mlp-bench/1.0.0/model.onnx', import.meta.url));
const OPTIONS: OrtSessionOptions = {
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  graphOptimizationLevel: 'all',
  executionProviders: ['cpu'],
};

const feeds = (rows: number): Record<string, TensorValue> => ({
  x: { dtype: 'float32', dims: [rows, 256], data: new Float32Array(rows * 256).fill(0.25) },
});

/** The session the set holds for `key` (private: the test checks what a reload does to it). */
const sessionOf = (inline: InlineSessions, key: string) =>
  (inline as unknown as { sessions: Map<string, ort.InferenceSession> }).sessions.get(key);

test('a reload releases the old main-thread session after the runs on it finish', async () => {
  const inline = new InlineSessions();
  try {
    await inline.load('m@1', MODEL, OPTIONS);
    const old = sessionOf(inline, 'm@1')!;
    const before = await inline.run('m@1', feeds(1));
    const running = inline.run('m@1', feeds(64));
    await inline.load('m@1', MODEL, OPTIONS);
    const replaced = sessionOf(inline, 'm@1')!;
    assert.notEqual(replaced, old, 'the reload holds a new session');
    // The run that started on the old session finished on it, with the same weights' answer.
    const during = await running;
    const p = during.outputs.probabilities!;
    assert.deepEqual(p.dims, [64, 10]);
    const first = Array.from(before.outputs.probabilities!.data as Float32Array);
    const row63 = Array.from((p.data as Float32Array).subarray(63 * 10, 64 * 10));
    for (let i = 0; i < 10; i++) assert.ok(Math.abs(row63[i]! - first[i]!) < 1e-5, `class ${i}`);
    // The old session is gone: running it fails, while the new one answers.
    const x = new ort.Tensor('float32', new Float32Array(256), [1, 256]);
    await assert.rejects(async () => old.run({ x }), 'the old session was released');
    const after = await inline.run('m@1', feeds(1));
    assert.deepEqual(after.outputs.probabilities!.dims, [1, 10]);
  } finally {
    await inline.dispose();
  }
});

test('dispose refuses runs asked for while it waits, and releases only after the runs in progress', async () => {
  const inline = new InlineSessions();
  await inline.load('m@1', MODEL, OPTIONS);
  const session = sessionOf(inline, 'm@1')!;
  const running = inline.run('m@1', feeds(64));
  const disposed = inline.dispose();
  // Asked for after dispose began: refused, never started on a session about to be released (which
  // ONNX Runtime would run on freed memory, taking the process down).
  await assert.rejects(inline.run('m@1', feeds(1)), (e: Error & { code?: string }) => e.code === 'model-not-ready');
  const done = await running;
  assert.deepEqual(done.outputs.probabilities!.dims, [64, 10]);
  await disposed;
  const x = new ort.Tensor('float32', new Float32Array(256), [1, 256]);
  await assert.rejects(async () => session.run({ x }), 'released');
});

test('a main-thread run is timed from its own start, not from the turn of the loop before it', async () => {
  const inline = new InlineSessions();
  try {
    await inline.load('m@1', MODEL, OPTIONS);
    await inline.run('m@1', feeds(1));
    // onnxruntime-node starts the run from a setImmediate; 30 ms of other work in this turn comes first.
    const running = inline.run('m@1', feeds(1));
    const busyUntil = performance.now() + 30;
    while (performance.now() < busyUntil);
    const ran = await running;
    assert.ok(ran.inferMs < 15, `a one-row mlp-bench run timed at ${ran.inferMs} ms`);
    assert.ok(ran.inferMs > 0);
    assert.deepEqual(ran.outputs.probabilities!.dims, [1, 10]);
  } finally {
    await inline.dispose();
  }
});
