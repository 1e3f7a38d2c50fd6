import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VadSegmenter, VAD_DEFAULTS } from './vad-segmenter.js';
import { PcmFramer } from './pcm-framer.js';
import { stack, unstack } from '../serving/batching/sequence-batcher.js';
import { SessionLimits } from './session-limits.js';

const F = 512;
const SR = 16000;
/** Runs probabilities (one per 512-sample frame) through a segmenter; returns events in ms. */
function segments(probs: number[], params = VAD_DEFAULTS) {
  const s = new VadSegmenter(params, SR);
  const out = probs.flatMap((p) => s.push(p, F)).concat(s.flush());
  return out.map((e) =>
    e.type === 'speech_start'
      ? ['start', (e.startSample * 1000) / SR]
      : ['end', (e.startSample * 1000) / SR, (e.endSample * 1000) / SR],
  );
}
const run = (spec: Array<[number, number]>) => spec.flatMap(([p, n]) => new Array<number>(n).fill(p));

test('hysteresis: start at startThreshold, end only after minSilenceMs below endThreshold, padded', () => {
  // 10 frames silence, 20 speech, 2 frames between thresholds (still speech), 15 silence.
  const ev = segments(
    run([
      [0.1, 10],
      [0.9, 20],
      [0.4, 2],
      [0.05, 15],
    ]),
    { ...VAD_DEFAULTS, speechPadMs: 32 },
  );
  assert.deepEqual(ev, [
    ['start', 288],
    ['end', 288, 1056],
  ]);
});

test('short blips are dropped, short gaps are bridged', () => {
  // 5 frames (160 ms) of speech < minSpeechMs 250: nothing.
  assert.deepEqual(
    segments(
      run([
        [0, 10],
        [0.9, 5],
        [0, 20],
      ]),
    ),
    [],
  );
  // A 6-frame (192 ms) gap < minSilenceMs 300 keeps one segment.
  const ev = segments(
    run([
      [0, 10],
      [0.9, 10],
      [0.1, 6],
      [0.9, 10],
      [0, 20],
    ]),
    { ...VAD_DEFAULTS, speechPadMs: 0 },
  );
  assert.deepEqual(ev, [
    ['start', 320],
    ['end', 320, 1152],
  ]);
});

test('speech still open when the stream ends is closed at its last sample', () => {
  const ev = segments(
    run([
      [0, 4],
      [0.8, 12],
    ]),
    { ...VAD_DEFAULTS, speechPadMs: 0 },
  );
  assert.deepEqual(ev, [
    ['start', 128],
    ['end', 128, 512],
  ]);
});

test('framer: pcm16 and float32 chunks of any size give the same frames; bad floats are named', () => {
  const samples = Float32Array.from({ length: 1300 }, (_, i) => Math.sin(i / 7) * 0.5);
  const pcm = new Int16Array(samples.map((v) => Math.round(v * 32768)));
  const bytes = new Uint8Array(pcm.buffer);
  const frames: Float32Array[] = [];
  const fr = new PcmFramer('pcm16', F);
  for (let at = 0; at < bytes.length; at += 333) fr.push(bytes.subarray(at, at + 333), (f) => frames.push(f));
  assert.equal(frames.length, 2);
  assert.equal(fr.bufferedSamples, 1300 - 1024);
  frames.forEach((f, k) => f.forEach((v, i) => assert.equal(v, pcm[k * F + i]! / 32768)));
  const tail = fr.flush()!;
  assert.equal(tail.samples, 276);
  assert.equal(tail.frame[276], 0);

  const f32 = new PcmFramer('f32', F);
  const fbytes = new Uint8Array(samples.buffer);
  const ff: Float32Array[] = [];
  for (let at = 0; at < fbytes.length; at += 7) f32.push(fbytes.subarray(at, at + 7), (f) => ff.push(f));
  assert.deepEqual(Array.from(ff[1]!), Array.from(samples.subarray(F, 2 * F)));
  assert.throws(
    () => new PcmFramer('f32', F).push(new Uint8Array(Float32Array.from([0, 1.5]).buffer), () => undefined),
    /sample 1 .* 1\.5/,
  );
});

test('stack/unstack on a middle axis round-trip ([2, 1, 3] × 3 → [2, 3, 3])', () => {
  const parts = [0, 1, 2].map((j) => ({
    dtype: 'float32' as const,
    dims: [2, 1, 3],
    data: Float32Array.from({ length: 6 }, (_, i) => j * 10 + i),
  }));
  const s = stack(parts, 1);
  assert.deepEqual(s.dims, [2, 3, 3]);
  assert.deepEqual(
    Array.from(s.data as Float32Array),
    [0, 1, 2, 10, 11, 12, 20, 21, 22, 3, 4, 5, 13, 14, 15, 23, 24, 25],
  );
  for (const j of [0, 1, 2])
    assert.deepEqual(Array.from(unstack(s, 1, j).data as Float32Array), Array.from(parts[j]!.data));
});

test('session limits: server-wide and per model, released once', () => {
  const l = new SessionLimits(3, 2);
  const a = l.acquire('m@1');
  const b = l.acquire('m@1');
  assert.ok(a.ok && b.ok);
  const c = l.acquire('m@1');
  assert.ok(!c.ok && /maxSessionsPerModel 2/.test(c.reason));
  const d = l.acquire('n@1');
  assert.ok(d.ok);
  const e = l.acquire('n@1');
  assert.ok(!e.ok && /maxSessions 3/.test(e.reason));
  if (a.ok) {
    a.release();
    a.release();
  }
  assert.equal(l.open, 2);
  assert.equal(l.openFor('m@1'), 1);
});
