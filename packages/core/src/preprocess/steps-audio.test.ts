import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Manifest } from '../contract/schema.js';
import { compileEncoder } from './encoder.js';
import { compileStep } from './registry.js';
import { decodeBase64, decodePcm16, frameSignal, resample, resampledLength } from './steps-audio.js';
import './steps.js';

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-6, what = ''): void {
  assert.equal(actual.length, expected.length, `${what} lengths ${actual.length} vs ${expected.length}`);
  for (let i = 0; i < expected.length; i++)
    assert.ok(Math.abs(actual[i]! - expected[i]!) <= tol, `${what} element ${i}: ${actual[i]} vs ${expected[i]}`);
}

const rms = (xs: ArrayLike<number>, from = 0, to = xs.length): number => {
  let s = 0;
  for (let i = from; i < to; i++) s += xs[i]! * xs[i]!;
  return Math.sqrt(s / (to - from));
};

const sine = (n: number, hz: number, rate: number, amplitude = 1): Float32Array =>
  Float32Array.from({ length: n }, (_, i) => amplitude * Math.sin((2 * Math.PI * hz * i) / rate));

test('decodeBase64: RFC 4648 test vectors, URL-safe alphabet, missing padding, whitespace', () => {
  const text = (s: string): string => new TextDecoder().decode(decodeBase64(s));
  for (const [b64, plain] of [
    ['', ''],
    ['Zg==', 'f'],
    ['Zm8=', 'fo'],
    ['Zm9v', 'foo'],
    ['Zm9vYg==', 'foob'],
    ['Zm9vYmE=', 'fooba'],
    ['Zm9vYmFy', 'foobar'],
  ]) {
    assert.equal(text(b64!), plain, b64);
  }
  assert.equal(text('Zm8'), 'fo');
  assert.equal(text('Zm9v\nYmFy '), 'foobar');
  assert.deepEqual(Array.from(decodeBase64('-_8=')), [0xfb, 0xff]);
  // Against Node's own codec, over every byte value.
  const all = Uint8Array.from({ length: 256 }, (_, i) => i);
  assert.deepEqual(decodeBase64(Buffer.from(all).toString('base64')), all);
  assert.deepEqual(decodeBase64(Buffer.from(all).toString('base64url')), all);
  assert.throws(() => decodeBase64('Zm9v!'), /invalid base64 at character 4/);
  assert.throws(() => decodeBase64('Zg=a'), /invalid base64/);
  assert.throws(() => decodeBase64('Zm9vY'), /truncated/);
});

test('decodePcm16: little-endian int16 / 32768, from bytes or base64, big-endian on request', () => {
  const bytes = Uint8Array.from([0x00, 0x00, 0x00, 0x40, 0x00, 0x80, 0xff, 0x7f, 0xff, 0xff]);
  const expected = [0, 0.5, -1, 32767 / 32768, -1 / 32768];
  close(decodePcm16(bytes), expected, 0);
  close(decodePcm16(bytes.buffer), expected, 0);
  close(decodePcm16(Buffer.from(bytes).toString('base64')), expected, 0);
  // An unaligned view (offset 1) reads from its own start.
  close(decodePcm16(Uint8Array.from([9, 0x00, 0x40]).subarray(1)), [0.5], 0);
  close(decodePcm16(Uint8Array.from([0x40, 0x00, 0x80, 0x00]), { bigEndian: true }), [0.5, -1], 0);
  // Against Node's own int16 reader.
  const samples = Int16Array.from({ length: 100 }, (_, i) => Math.round(Math.sin(i) * 30000));
  close(
    decodePcm16(new Uint8Array(samples.buffer)),
    Array.from(samples, (s) => s / 32768),
    0,
  );
  assert.throws(() => decodePcm16(Uint8Array.from([1, 2, 3])), /even number of bytes/);
});

test('resampledLength counts the output samples inside the input span', () => {
  assert.equal(resampledLength(22050, 22050, 16000), 16000);
  assert.equal(resampledLength(48000, 48000, 16000), 16000);
  assert.equal(resampledLength(16000, 16000, 48000), 47998);
  assert.equal(resampledLength(4, 2, 3), 5);
  assert.equal(resampledLength(0, 8000, 16000), 0);
  assert.equal(resampledLength(1, 8000, 16000), 1);
});

test('resample, linear: straight lines between neighbours', () => {
  // 2 Hz → 3 Hz: output times 0, 2/3, 4/3, 2, 8/3 input samples on the ramp 0, 10, 20, 30.
  close(resample([0, 10, 20, 30], 2, 3, { method: 'linear' }), [0, 20 / 3, 40 / 3, 20, 80 / 3], 1e-5);
  // Halving the rate keeps every other sample.
  close(resample([1, 2, 3, 4, 5], 16000, 8000, { method: 'linear' }), [1, 3, 5]);
  close(resample([1, 2, 3], 16000, 16000), [1, 2, 3]);
  assert.throws(() => resample([1], 0, 16000), /must be > 0/);
});

test('resample, windowed sinc: a 440 Hz tone at 22.05 kHz becomes the same tone at 16 kHz', () => {
  const out = resample(sine(22050, 440, 22050), 22050, 16000);
  assert.equal(out.length, 16000);
  // Away from the ends (where the kernel runs off the signal) the output is the tone, sampled at 16 kHz.
  const expected = sine(16000, 440, 16000);
  const edge = 40;
  close(out.subarray(edge, 16000 - edge), expected.subarray(edge, 16000 - edge), 2e-3, '440 Hz');
});

test('resample, windowed sinc: upsampling 16 → 48 kHz follows the tone; DC passes with unit gain', () => {
  const up = resample(sine(1600, 1000, 16000), 16000, 48000);
  const expected = sine(up.length, 1000, 48000);
  close(up.subarray(100, up.length - 100), expected.subarray(100, up.length - 100), 2e-3, '1 kHz');
  const dc = resample(new Float32Array(4000).fill(0.5), 44100, 16000);
  close(dc.subarray(50, dc.length - 50), new Array(dc.length - 100).fill(0.5), 1e-4, 'DC');
});

test('resample: downsampling with sinc removes a tone above the new Nyquist frequency; linear folds it back', () => {
  // 7 kHz at 22.05 kHz → 8 kHz (Nyquist 4 kHz): the tone must vanish, not alias to 1 kHz.
  const tone = sine(22050, 7000, 22050, 0.5);
  const sinc = resample(tone, 22050, 8000);
  const linear = resample(tone, 22050, 8000, { method: 'linear' });
  const inner = (xs: Float32Array): number => rms(xs, 100, xs.length - 100);
  assert.ok(inner(sinc) < 0.01, `sinc leaves rms ${inner(sinc)}`);
  assert.ok(inner(linear) > 0.1, `linear rms ${inner(linear)} (expected an alias)`);
  // A tone below the new Nyquist frequency keeps its level (0.5/√2).
  const pass = resample(sine(22050, 1000, 22050, 0.5), 22050, 8000);
  assert.ok(Math.abs(inner(pass) - 0.5 / Math.SQRT2) < 0.005, `passband rms ${inner(pass)}`);
});

test('frameSignal: fixed windows, zero-padded or dropped tail, overlapping hops', () => {
  const signal = Float32Array.from({ length: 1100 }, (_, i) => i + 1);
  const frames = frameSignal(signal, 512);
  assert.equal(frames.length, 3);
  assert.deepEqual([frames[0]![0], frames[1]![0], frames[2]![0]], [1, 513, 1025]);
  assert.equal(frames[2]![75], 1100);
  assert.equal(frames[2]![76], 0);
  assert.equal(frameSignal(signal, 512, { pad: 'drop' }).length, 2);
  const hopped = frameSignal(signal, 512, { hop: 256 });
  assert.deepEqual(
    hopped.map((f) => f[0]),
    [1, 257, 513, 769],
  );
  assert.equal(frameSignal(signal, 512, { hop: 256, pad: 'drop' }).length, 3);
  assert.equal(frameSignal(new Float32Array(1024), 512).length, 2);
  assert.deepEqual(frameSignal([], 512), []);
  assert.throws(() => frameSignal(signal, 0), /positive integers/);
});

test('steps: pcm16-decode → resample → frame compile and run, and the encoder builds the tensor', () => {
  const ctx = { feature: { name: 'audio', type: 'string' } as const, path: '/preprocess/0/columns/0/steps/0' };
  const decode = compileStep({ op: 'pcm16-decode' }, { kind: 'string' }, ctx);
  assert.deepEqual(decode.output, { kind: 'any' });
  const frame = compileStep({ op: 'frame', size: 4, frames: 2 }, { kind: 'any' }, ctx);
  assert.deepEqual(frame.output, { kind: 'vector', width: 8 });
  assert.throws(
    () => compileStep({ op: 'resample', from: 8000 }, { kind: 'any' }, ctx),
    /bad parameters for step "resample"/,
  );
  assert.throws(() => compileStep({ op: 'frame', size: 4, pad: 'wrap' }, { kind: 'any' }, ctx), /bad parameters/);
  assert.throws(() => frame.apply('text'), /takes an audio signal/);

  const manifest: Manifest = {
    inputs: [{ name: 'audio', type: 'string' }],
    preprocess: [
      {
        input: 'x',
        columns: [
          {
            feature: 'audio',
            steps: [
              { op: 'pcm16-decode' },
              { op: 'resample', from: 8000, to: 16000, method: 'linear' },
              { op: 'frame', size: 4, frames: 2 },
            ],
          },
        ],
      },
    ],
    outputs: [{ name: 'y' }],
  };
  const encoder = compileEncoder(manifest);
  // Samples 0, 16384, -16384, 0 at 8 kHz = 0, 0.5, -0.5, 0; at 16 kHz (linear): 0, .25, .5, 0, -.5, -.25, 0; framed [4
  // × 2], zero-padded.
  const b64 = Buffer.from(new Uint8Array(Int16Array.from([0, 16384, -16384, 0]).buffer)).toString('base64');
  const t = encoder.encode([{ audio: b64 }])['x']!;
  assert.deepEqual(t.dims, [1, 8]);
  close(t.data as Float32Array, [0, 0.25, 0.5, 0, -0.5, -0.25, 0, 0]);
});
