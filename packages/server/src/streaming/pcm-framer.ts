// Cuts a client's audio, sent in chunks of any size, into the model's frames. Bytes that do not
// make a whole sample yet (an odd byte of 16-bit PCM, 1–3 bytes of a float32) wait for the next chunk.

export type SampleFormat = 'pcm16' | 'f32';

export class PcmFramer {
  private carry = new Uint8Array(0);
  private pending: Float32Array;
  private filled = 0;

  constructor(
    readonly format: SampleFormat,
    readonly frameSamples: number,
  ) {
    this.pending = new Float32Array(frameSamples);
  }

  /** Samples received that do not fill a frame yet. */
  get bufferedSamples(): number {
    return this.filled;
  }

  /**
   * Decodes a chunk and returns the whole frames it completes. Throws a RangeError naming the sample
   * when a float32 sample is not finite or outside [-1, 1] (a client sending the wrong format).
   */
  push(chunk: Uint8Array, onFrame: (frame: Float32Array) => void): void {
    const width = this.format === 'pcm16' ? 2 : 4;
    let bytes = chunk;
    if (this.carry.length) {
      bytes = new Uint8Array(this.carry.length + chunk.length);
      bytes.set(this.carry);
      bytes.set(chunk, this.carry.length);
    }
    const whole = bytes.length - (bytes.length % width);
    this.carry = bytes.slice(whole);
    const view = new DataView(bytes.buffer, bytes.byteOffset, whole);
    for (let at = 0; at < whole; at += width) {
      let s: number;
      if (width === 2) s = view.getInt16(at, true) / 32768;
      else {
        s = view.getFloat32(at, true);
        if (!(s >= -1 && s <= 1))
          throw new RangeError(
            `float32 sample ${at / 4} of the message is ${s}; samples must be finite and within [-1, 1]`,
          );
      }
      this.pending[this.filled++] = s;
      if (this.filled === this.frameSamples) {
        onFrame(this.pending);
        this.pending = new Float32Array(this.frameSamples);
        this.filled = 0;
      }
    }
  }

  /** The partial last frame, zero-padded, or undefined when none is waiting. */
  flush(): { frame: Float32Array; samples: number } | undefined {
    if (this.filled === 0) return undefined;
    const samples = this.filled;
    const frame = this.pending;
    frame.fill(0, samples);
    this.pending = new Float32Array(this.frameSamples);
    this.filled = 0;
    return { frame, samples };
  }
}
