// Turns a sequence of per-frame speech probabilities into speech segments, as they happen:
// hysteresis between a start and an end threshold, speech shorter than minSpeechMs dropped,
// silence shorter than minSilenceMs bridged, segments padded by speechPadMs. Pure: no I/O, no clock;
// times are sample counts of the stream, so the result is the same however the audio was chunked.

export interface VadParams {
  startThreshold: number;
  endThreshold: number;
  minSpeechMs: number;
  minSilenceMs: number;
  speechPadMs: number;
}

export const VAD_DEFAULTS: VadParams = {
  startThreshold: 0.5,
  endThreshold: 0.35,
  minSpeechMs: 250,
  minSilenceMs: 300,
  speechPadMs: 30,
};

export type SegmentEvent =
  { type: 'speech_start'; startSample: number } | { type: 'speech_end'; startSample: number; endSample: number };

export class VadSegmenter {
  private readonly minSpeech: number;
  private readonly minSilence: number;
  private readonly pad: number;
  /** Start of the current candidate or confirmed speech (unpadded), or undefined in silence. */
  private speechStart: number | undefined;
  /** Whether speech_start was sent for the current segment (it lasted minSpeechMs). */
  private confirmed = false;
  /** First sample of the current run of low-probability frames inside speech. */
  private silenceStart: number | undefined;
  /** End of the last reported segment: padding never reaches back over it. */
  private lastEnd = 0;
  private position = 0;

  constructor(
    readonly params: VadParams,
    readonly sampleRate: number,
  ) {
    const perMs = sampleRate / 1000;
    this.minSpeech = params.minSpeechMs * perMs;
    this.minSilence = params.minSilenceMs * perMs;
    this.pad = Math.round(params.speechPadMs * perMs);
  }

  /** Samples consumed so far. */
  get samples(): number {
    return this.position;
  }

  /** Feeds the probability of the next frame of `frameSamples` samples; returns the events it causes. */
  push(probability: number, frameSamples: number): SegmentEvent[] {
    const from = this.position;
    this.position += frameSamples;
    const to = this.position;
    const out: SegmentEvent[] = [];
    const p = this.params;
    if (this.speechStart === undefined) {
      if (probability >= p.startThreshold) this.speechStart = from;
    } else if (probability >= p.startThreshold) {
      this.silenceStart = undefined;
    } else if (probability < p.endThreshold) {
      this.silenceStart ??= from;
      if (to - this.silenceStart >= this.minSilence) {
        const end = this.finish(this.silenceStart, out);
        void end;
        return out;
      }
    }
    if (
      this.speechStart !== undefined &&
      !this.confirmed &&
      (this.silenceStart ?? to) - this.speechStart >= this.minSpeech
    ) {
      this.confirmed = true;
      out.push({ type: 'speech_start', startSample: this.paddedStart() });
    }
    return out;
  }

  /** The stream ended: closes a segment still open at its last sample. */
  flush(): SegmentEvent[] {
    const out: SegmentEvent[] = [];
    if (this.speechStart === undefined) return out;
    const end = this.silenceStart ?? this.position;
    if (!this.confirmed && end - this.speechStart >= this.minSpeech) {
      this.confirmed = true;
      out.push({ type: 'speech_start', startSample: this.paddedStart() });
    }
    this.finish(end, out);
    return out;
  }

  private paddedStart(): number {
    return Math.max(this.lastEnd, this.speechStart! - this.pad, 0);
  }

  private finish(unpaddedEnd: number, out: SegmentEvent[]): void {
    if (this.confirmed) {
      const endSample = Math.min(this.position, unpaddedEnd + this.pad);
      out.push({ type: 'speech_end', startSample: this.paddedStart(), endSample });
      this.lastEnd = endSample;
    }
    this.speechStart = undefined;
    this.silenceStart = undefined;
    this.confirmed = false;
  }
}
