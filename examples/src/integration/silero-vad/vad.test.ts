import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, loadConfig, Repository, type FerryServer } from '@ferry/server';
import { frameSignal, resample } from '@ferry/core';
import { manifest, NAME, SAMPLE_RATE, sileroVad, STATE_DIMS, VERSION, WINDOW } from '../../silero-vad/build.js';
import { openVadSession, ortVadRunner } from '../../silero-vad/ort-runner.js';
import { speechProbabilities, type VadRunner } from '../../silero-vad/stream.js';
import { decodeWav } from '@ferry/server';

const files = await sileroVad.build();
const onnxPath = (() => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-vad-'));
  const p = join(dir, 'model.onnx');
  writeFileSync(p, files['model.onnx']!);
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return p;
})();
const local: VadRunner = ortVadRunner(await openVadSession(onnxPath));

/** Deterministic uniform noise in [-amplitude, amplitude]. */
function noise(n: number, amplitude: number, seed = 7): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return amplitude * ((s / 2 ** 32) * 2 - 1);
  });
}

const rms = (f: Float32Array): number => Math.sqrt(f.reduce((a, x) => a + x * x, 0) / f.length);

describe('served by Ferry', () => {
  let server: FerryServer;
  let repo: string;
  before(async () => {
    repo = mkdtempSync(join(tmpdir(), 'ferry-vad-repo-'));
    const dir = join(repo, NAME, VERSION);
    mkdirSync(dir, { recursive: true });
    for (const [file, content] of Object.entries(files)) writeFileSync(join(dir, file), content);
    const cfg = loadConfig({
      env: {},
      overrides: { 'models.dir': repo, 'runtime.workers': 1, 'runtime.warmupRuns': 1, 'log.level': 'silent' },
    });
    server = await createServer(cfg, { logger: false });
    await server.loaded;
  });
  after(async () => {
    await server.close();
    rmSync(repo, { recursive: true, force: true });
  });

  test('the repository reads the manifest back: state tensors [2, streams, 64], scalar int64 sr, no batch dimension', () => {
    const [v] = Repository.load(repo).allVersions();
    assert.deepEqual(v!.manifest, JSON.parse(JSON.stringify(manifest())));
    assert.deepEqual(
      v!.manifest.inputs.map((f) => [f.name, f.type === 'tensor' && f.dtype, f.type === 'tensor' && f.shape]),
      [
        ['input', 'float32', [-1, -1]],
        ['sr', 'int64', []],
        ['h', 'float32', [2, -1, 64]],
        ['c', 'float32', [2, -1, 64]],
      ],
    );
    assert.deepEqual(
      v!.manifest.outputs.map((o) => o.name),
      ['output', 'hn', 'cn'],
    );
    assert.match(files['card.md'] as string, /MIT License/);
    assert.match(files['card.md'] as string, /512 samples/);
  });

  const predict = (instances: unknown[]) =>
    server.app.inject({ method: 'POST', url: `/v1/models/${NAME}/predict`, payload: { instances } });
  const zeroState = () => Array.from({ length: 2 }, () => [new Array<number>(64).fill(0)]);

  test("one window in: a probability in [0, 1] and the next state out, equal to ONNX Runtime's", async () => {
    const window = Array.from(noise(WINDOW, 0.2, 3));
    const r = await predict([{ input: [window], sr: SAMPLE_RATE, h: zeroState(), c: zeroState() }]);
    assert.equal(r.statusCode, 200, r.body);
    assert.equal(r.headers['ferry-model-version'], VERSION);
    const [p] = r.json().predictions as Array<{ output: number[][]; hn: number[][][]; cn: number[][][] }>;
    const prob = p!.output[0]![0]!;
    assert.ok(prob >= 0 && prob <= 1, `probability ${prob}`);
    for (const state of [p!.hn, p!.cn]) {
      assert.deepEqual([state.length, state[0]!.length, state[0]![0]!.length], [...STATE_DIMS]);
      assert.ok(
        state.flat(2).some((v) => v !== 0),
        'the state moved',
      );
    }
    const ref = await local({
      input: { dtype: 'float32', dims: [1, WINDOW], data: Float32Array.from(window) },
      sr: { dtype: 'int64', dims: [], data: BigInt64Array.from([BigInt(SAMPLE_RATE)]) },
      h: { dtype: 'float32', dims: [...STATE_DIMS], data: new Float32Array(128) },
      c: { dtype: 'float32', dims: [...STATE_DIMS], data: new Float32Array(128) },
    });
    assert.ok(Math.abs(prob - ref.probability) < 1e-5, `${prob} vs ${ref.probability}`);
    p!.hn.flat(2).forEach((v, i) => assert.ok(Math.abs(v - ref.hn[i]!) < 1e-5, `hn[${i}]`));

    // The state fed back changes the answer for the same window, as it does in ONNX Runtime.
    const again = await predict([{ input: [window], sr: SAMPLE_RATE, h: p!.hn, c: p!.cn }]);
    assert.equal(again.statusCode, 200, again.body);
    const ref2 = await local({
      input: { dtype: 'float32', dims: [1, WINDOW], data: Float32Array.from(window) },
      sr: { dtype: 'int64', dims: [], data: BigInt64Array.from([BigInt(SAMPLE_RATE)]) },
      h: { dtype: 'float32', dims: [...STATE_DIMS], data: ref.hn },
      c: { dtype: 'float32', dims: [...STATE_DIMS], data: ref.cn },
    });
    assert.ok(Math.abs(again.json().predictions[0].output[0][0] - ref2.probability) < 1e-5);
  });

  test('a wrong state shape and a second instance are 4xx, not 5xx', async () => {
    const window = new Array<number>(WINDOW).fill(0);
    const bad = await predict([
      { input: [window], sr: SAMPLE_RATE, h: [[new Array(63).fill(0)], [new Array(64).fill(0)]], c: zeroState() },
    ]);
    assert.equal(bad.statusCode, 400, bad.body);
    assert.match(bad.body, /\/instances\/0\/h/);
    const inst = { input: [window], sr: SAMPLE_RATE, h: zeroState(), c: zeroState() };
    const two = await predict([inst, inst]);
    assert.ok(two.statusCode >= 400 && two.statusCode < 500, `${two.statusCode} ${two.body}`);
  });
});

test('frame by frame with the state fed back: silence, faint noise and a steady tone stay low', async () => {
  const seconds = 3;
  const silence = await speechProbabilities(frameSignal(new Float32Array(SAMPLE_RATE * seconds), WINDOW), local);
  assert.equal(silence.length, Math.ceil((SAMPLE_RATE * seconds) / WINDOW));
  assert.ok(Math.max(...silence) < 0.1, `silence max ${Math.max(...silence)}`);
  const hiss = await speechProbabilities(frameSignal(noise(SAMPLE_RATE * seconds, 0.005), WINDOW), local);
  assert.ok(Math.max(...hiss) < 0.3, `noise max ${Math.max(...hiss)}`);
  const tone = Float32Array.from(
    { length: SAMPLE_RATE * seconds },
    (_, i) => 0.3 * Math.sin((2 * Math.PI * 440 * i) / SAMPLE_RATE),
  );
  const beep = await speechProbabilities(frameSignal(tone, WINDOW), local);
  assert.ok(Math.max(...beep) < 0.3, `tone max ${Math.max(...beep)}`);
});

const espeak = spawnSync('espeak-ng', ['--version'], { encoding: 'utf8' });
const noEspeak =
  espeak.error || espeak.status !== 0
    ? 'espeak-ng is not installed (Debian package espeak-ng); speech test skipped'
    : false;

test(
  'speech synthesised by espeak-ng (22.05 kHz → 16 kHz) scores high, the silence around it low',
  { skip: noEspeak },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-espeak-'));
    try {
      const wavFile = join(dir, 'speech.wav');
      execFileSync('espeak-ng', [
        '-v',
        'en',
        '-w',
        wavFile,
        'The quick brown fox jumps over the lazy dog. Ferry carries models into production.',
      ]);
      const wav = decodeWav(new Uint8Array(readFileSync(wavFile)));
      assert.equal(wav.channels, 1);
      const speech = resample(wav.samples, wav.sampleRate, SAMPLE_RATE);
      // One second of silence before and after.
      const audio = new Float32Array(speech.length + 2 * SAMPLE_RATE);
      audio.set(speech, SAMPLE_RATE);
      const frames = frameSignal(audio, WINDOW);
      const probs = await speechProbabilities(frames, local);
      const lead = Math.floor(SAMPLE_RATE / WINDOW) - 1;
      assert.ok(Math.max(...probs.slice(0, lead)) < 0.1, 'the leading silence is not speech');
      // Frames with clear energy are voiced speech: nearly all of them must pass 0.5.
      const loud = probs.filter((_, i) => rms(frames[i]!) > 0.03);
      assert.ok(loud.length > 40, `${loud.length} loud frames`);
      const hits = loud.filter((p) => p > 0.5).length;
      assert.ok(hits / loud.length >= 0.95, `${hits} of ${loud.length} loud frames above 0.5`);
      assert.ok(Math.max(...probs.slice(-10)) < 0.1, 'the trailing silence is not speech');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
