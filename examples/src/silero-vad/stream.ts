// Runs Silero VAD over a stream of audio one 512-sample window at a time, feeding the LSTM state each
// window returns into the next: how a client of the served model (or of ONNX Runtime directly)
// uses it. The runner is injected so the same loop drives a local session or the Ferry server.
import type { TensorValue } from '@ferry/core';
import { SAMPLE_RATE, STATE_DIMS, WINDOW } from './build.js';

export interface VadFeeds {
  input: TensorValue;
  sr: TensorValue;
  h: TensorValue;
  c: TensorValue;
}

export interface VadOutputs {
  /** Speech probability of the window. */
  probability: number;
  hn: Float32Array;
  cn: Float32Array;
}

export type VadRunner = (feeds: VadFeeds) => Promise<VadOutputs>;

const STATE_SIZE = STATE_DIMS[0] * STATE_DIMS[1] * STATE_DIMS[2];

/** One audio stream: windows in, speech probabilities out, state kept between windows. */
export class VadStream {
  private h: Float32Array = new Float32Array(STATE_SIZE);
  private c: Float32Array = new Float32Array(STATE_SIZE);

  constructor(private readonly run: VadRunner) {}

  /** Probability that this 512-sample, 16 kHz window holds speech. */
  async push(window: Float32Array): Promise<number> {
    if (window.length !== WINDOW) throw new RangeError(`a window is ${WINDOW} samples, got ${window.length}`);
    const out = await this.run({
      input: { dtype: 'float32', dims: [1, WINDOW], data: window },
      sr: { dtype: 'int64', dims: [], data: BigInt64Array.from([BigInt(SAMPLE_RATE)]) },
      h: { dtype: 'float32', dims: [...STATE_DIMS], data: this.h },
      c: { dtype: 'float32', dims: [...STATE_DIMS], data: this.c },
    });
    this.h = out.hn;
    this.c = out.cn;
    return out.probability;
  }

  /** Forgets the state: the next window starts a new stream. */
  reset(): void {
    this.h = new Float32Array(STATE_SIZE);
    this.c = new Float32Array(STATE_SIZE);
  }
}

/** Speech probability of each window of already-framed 16 kHz audio, state fed back window to window. */
export async function speechProbabilities(windows: readonly Float32Array[], run: VadRunner): Promise<number[]> {
  const stream = new VadStream(run);
  const out: number[] = [];
  for (const w of windows) out.push(await stream.push(w));
  return out;
}
