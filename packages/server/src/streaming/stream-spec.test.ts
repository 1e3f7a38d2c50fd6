import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Manifest } from '@ferry/core';
import type { ModelVersion } from '../serving/repository/index.js';
import { ManifestError } from '../serving/repository/manifest.js';
import { StreamingConfigSchema } from '../config/schemas/streaming.js';
import { streamSpecOf, zeroState } from './stream-spec.js';
import { Value } from '@sinclair/typebox/value';

const cfg = Value.Default(StreamingConfigSchema, {}) as import('../config/schemas/streaming.js').StreamingConfig;

const base = (): Manifest => ({
  inputs: [
    { name: 'input', type: 'tensor', dtype: 'float32', shape: [-1, -1] },
    { name: 'sr', type: 'tensor', dtype: 'int64', shape: [] },
    { name: 'h', type: 'tensor', dtype: 'float32', shape: [2, -1, 64] },
  ],
  outputs: [
    { name: 'output', dtype: 'float32', shape: [-1, 1] },
    { name: 'hn', dtype: 'float32', shape: [2, -1, 64] },
  ],
  streaming: {
    kind: 'audio',
    sampleRate: 16000,
    frameSamples: 512,
    input: 'input',
    output: 'output',
    state: [{ input: 'h', output: 'hn', batchAxis: 1 }],
    constants: { sr: 16000 },
    vad: { startThreshold: 0.6 },
  },
});
const version = (m: Manifest): ModelVersion =>
  ({ name: 'vad', version: '1.0.0', key: 'vad@1.0.0', dir: '/repo/vad/1.0.0', manifest: m }) as unknown as ModelVersion;

test('a valid block: zero state shaped [2, 1, 64], the scalar int64 constant, VAD defaults < contract < server config', () => {
  const spec = streamSpecOf(version(base()), {
    ...cfg,
    vad: { minSilenceMs: 500 },
    models: { vad: { vad: { endThreshold: 0.2 } } },
  })!;
  assert.deepEqual(
    spec.state.map((s) => s.dims),
    [[2, 1, 64]],
  );
  assert.deepEqual(spec.constants.sr, { dtype: 'int64', dims: [], data: BigInt64Array.from([16000n]) });
  assert.deepEqual(spec.vad, {
    startThreshold: 0.6,
    endThreshold: 0.2,
    minSpeechMs: 250,
    minSilenceMs: 500,
    speechPadMs: 30,
  });
  const [z] = zeroState(spec);
  assert.equal(z!.data.length, 128);
  assert.equal(streamSpecOf(version({ ...base(), streaming: undefined }), cfg), undefined);
});

test('a bad block is refused with the path of the bad key', () => {
  const cases: Array<[(m: Manifest) => void, RegExp]> = [
    [
      (m) => {
        m.streaming!.state![0]!.input = 'nope';
      },
      /\/streaming\/state\/0\/input/,
    ],
    [
      (m) => {
        m.streaming!.state![0]!.output = 'nope';
      },
      /\/streaming\/state\/0\/output/,
    ],
    [
      (m) => {
        m.streaming!.state![0]!.batchAxis = 5;
      },
      /\/streaming\/state\/0\/batchAxis/,
    ],
    [
      (m) => {
        m.streaming!.output = 'nope';
      },
      /\/streaming\/output/,
    ],
    [
      (m) => {
        m.streaming!.input = 'sr';
      },
      /\/streaming\/input/,
    ],
    [
      (m) => {
        m.streaming!.constants = { sr: [1, 2] };
      },
      /\/streaming\/constants\/sr/,
    ],
    [
      (m) => {
        m.streaming!.constants = {};
      },
      /not fed: sr/,
    ],
    [
      (m) => {
        m.streaming!.vad = { startThreshold: 0.3, endThreshold: 0.5 };
      },
      /\/streaming\/vad\/endThreshold/,
    ],
  ];
  for (const [mutate, re] of cases) {
    const m = base();
    mutate(m);
    assert.throws(
      () => streamSpecOf(version(m), cfg),
      (e: unknown) => e instanceof ManifestError && re.test(e.message),
      String(re),
    );
  }
});
