// One client's audio stream over a WebSocket: decodes and frames the audio, runs each frame through
// the version's sequence batcher with the session's recurrent state, turns probabilities into
// voice-activity events, and applies backpressure both ways — it stops reading the socket while too
// much audio waits to be run, and stops running audio while too many events wait to be read.
import type { TensorValue } from '@ferry/core';
import type { WebSocket } from 'ws';
import { CLOSE, closeReason } from './close-codes.js';
import { PcmFramer, type SampleFormat } from './pcm-framer.js';
import type { SequenceBatcher } from '../serving/batching/sequence-batcher.js';
import { zeroState, type StreamSpec } from './stream-spec.js';
import { VadSegmenter, type SegmentEvent, type VadParams } from './vad-segmenter.js';

export interface SessionOptions {
  id: string;
  model: string;
  version: string;
  format: SampleFormat;
  /** 0 = no probability events. */
  probabilityIntervalMs: number;
  vad: VadParams;
  idleTimeoutMs: number;
  maxPendingAudioMs: number;
  maxBufferedBytes: number;
  maxBlockedMs: number;
}

export interface SessionStats {
  framesRun: number;
  samplesReceived: number;
  /** Highest number of bytes the socket held for the client after an event was queued. */
  maxBufferedBytes: number;
  /** Times processing paused because the client was not reading. */
  blockedTimes: number;
  /** Times the server stopped reading audio because too much waited to be run. */
  readPauses: number;
}

export class AudioSession {
  private readonly framer: PcmFramer;
  private readonly segmenter: VadSegmenter;
  private state: TensorValue[];
  private readonly frames: Float32Array[] = [];
  private lastFrameSamples: number | undefined;
  private pumping = false;
  private ending = false;
  private closed = false;
  private readPaused = false;
  private blockedSince: number | undefined;
  private blockTimer: NodeJS.Timeout | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private probAt = 0;
  private probMax = 0;
  private segments = 0;
  readonly stats: SessionStats = {
    framesRun: 0,
    samplesReceived: 0,
    maxBufferedBytes: 0,
    blockedTimes: 0,
    readPauses: 0,
  };

  constructor(
    private readonly ws: WebSocket,
    private readonly spec: StreamSpec,
    private readonly batcher: SequenceBatcher,
    private readonly opts: SessionOptions,
    private readonly onEnd: (s: AudioSession, code: number) => void,
  ) {
    this.framer = new PcmFramer(opts.format, spec.frameSamples);
    this.segmenter = new VadSegmenter(opts.vad, spec.sampleRate);
    this.state = zeroState(spec);
    ws.on('message', (data, isBinary) => this.onMessage(data as Buffer | Buffer[] | ArrayBuffer, isBinary));
    ws.on('close', (code) => this.cleanUp(code));
    ws.on('error', () => this.cleanUp(CLOSE.internal));
    this.armIdle();
    this.send({
      type: 'ready',
      session: opts.id,
      model: opts.model,
      version: opts.version,
      format: opts.format,
      sampleRate: spec.sampleRate,
      frameSamples: spec.frameSamples,
      probabilityIntervalMs: opts.probabilityIntervalMs,
      vad: opts.vad,
    });
  }

  private get pendingMs(): number {
    return ((this.frames.length * this.spec.frameSamples + this.framer.bufferedSamples) * 1000) / this.spec.sampleRate;
  }

  private onMessage(data: Buffer | Buffer[] | ArrayBuffer, isBinary: boolean): void {
    if (this.closed || this.ending) return;
    this.armIdle();
    if (!isBinary) {
      this.onControl(String(data));
      return;
    }
    const bytes = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
    const width = this.opts.format === 'pcm16' ? 2 : 4;
    this.stats.samplesReceived += bytes.length / width;
    try {
      this.framer.push(bytes, (f) => this.frames.push(f));
    } catch (e) {
      this.fail(CLOSE.invalidData, 'invalid-audio', (e as Error).message);
      return;
    }
    if (!this.readPaused && this.pendingMs > this.opts.maxPendingAudioMs) {
      // Stop reading: the client's sends queue in its own buffers instead of in this process.
      this.readPaused = true;
      this.stats.readPauses++;
      this.ws.pause();
    }
    void this.pump();
  }

  private onControl(text: string): void {
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      this.fail(
        CLOSE.policy,
        'invalid-message',
        'a text message must be JSON such as {"type":"end"}; audio goes in binary messages',
      );
      return;
    }
    const type = msg !== null && typeof msg === 'object' ? (msg as { type?: unknown }).type : undefined;
    if (type === 'end') {
      this.ending = true;
      void this.pump();
    } else {
      this.fail(
        CLOSE.policy,
        'invalid-message',
        `unknown message type ${JSON.stringify(type)?.slice(0, 40) ?? 'undefined'}; expected {"type":"end"}`,
      );
    }
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (!this.closed && this.blockedSince === undefined) {
        let frame = this.frames.shift();
        let samples = this.spec.frameSamples;
        if (!frame && this.ending && this.lastFrameSamples === undefined) {
          // The last partial frame runs zero-padded, but only its real samples count.
          const tail = this.framer.flush();
          this.lastFrameSamples = tail?.samples ?? 0;
          if (tail) {
            frame = tail.frame;
            samples = tail.samples;
          }
        }
        if (!frame) break;
        const r = await this.batcher.submit(frame, this.state);
        if (this.closed) return;
        this.state = r.state;
        this.stats.framesRun++;
        this.onProbability(r.score, samples);
        if (this.readPaused && this.pendingMs <= this.opts.maxPendingAudioMs / 2) {
          this.readPaused = false;
          this.ws.resume();
        }
        this.checkBackpressure();
      }
      if (
        this.ending &&
        !this.closed &&
        this.frames.length === 0 &&
        this.lastFrameSamples !== undefined &&
        this.blockedSince === undefined
      ) {
        for (const e of this.segmenter.flush()) this.emitSegment(e);
        const samples = this.segmenter.samples;
        this.send({ type: 'done', samples, durationMs: this.ms(samples), segments: this.segments });
        this.close(CLOSE.normal, 'end of stream');
      }
    } catch (e) {
      this.fail(CLOSE.internal, 'inference-failed', `the model failed: ${(e as Error).message}`.slice(0, 200));
    } finally {
      this.pumping = false;
    }
  }

  private ms(samples: number): number {
    return Math.round((samples * 1000000) / this.spec.sampleRate) / 1000;
  }

  private onProbability(p: number, samples: number): void {
    const before = this.segmenter.samples;
    const events = this.segmenter.push(p, samples);
    if (this.opts.probabilityIntervalMs > 0) {
      this.probMax = Math.max(this.probMax, p);
      const at = this.segmenter.samples;
      // The short last frame of a stream is always reported: nothing follows to carry its maximum.
      if (
        samples < this.spec.frameSamples ||
        at - this.probAt >= (this.opts.probabilityIntervalMs * this.spec.sampleRate) / 1000
      ) {
        this.send({
          type: 'probability',
          timeMs: this.ms(before),
          probability: round(p),
          maxProbability: round(this.probMax),
        });
        this.probAt = at;
        this.probMax = 0;
      }
    }
    for (const e of events) this.emitSegment(e);
  }

  private emitSegment(e: SegmentEvent): void {
    if (e.type === 'speech_start')
      this.send({ type: 'speech_start', startMs: this.ms(e.startSample), startSample: e.startSample });
    else {
      this.segments++;
      this.send({
        type: 'speech_end',
        startMs: this.ms(e.startSample),
        endMs: this.ms(e.endSample),
        startSample: e.startSample,
        endSample: e.endSample,
      });
    }
  }

  private send(event: Record<string, unknown>): void {
    if (this.closed) return;
    this.ws.send(JSON.stringify(event));
    this.stats.maxBufferedBytes = Math.max(this.stats.maxBufferedBytes, this.ws.bufferedAmount);
  }

  /** Pauses running audio while the client is not reading; closes the session if that lasts too long. */
  private checkBackpressure(): void {
    if (this.ws.bufferedAmount <= this.opts.maxBufferedBytes || this.blockedSince !== undefined) return;
    this.blockedSince = Date.now();
    this.stats.blockedTimes++;
    this.blockTimer = setInterval(() => {
      if (this.closed) return;
      if (this.ws.bufferedAmount <= this.opts.maxBufferedBytes / 2) {
        clearInterval(this.blockTimer);
        this.blockTimer = undefined;
        this.blockedSince = undefined;
        this.armIdle();
        void this.pump();
      } else if (Date.now() - this.blockedSince! > this.opts.maxBlockedMs) {
        this.close(
          CLOSE.slowConsumer,
          `client did not read events for ${this.opts.maxBlockedMs} ms (streaming.maxBlockedMs)`,
        );
      }
    }, 20);
  }

  private armIdle(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      // Waiting on the server (paused reads, a blocked reader, frames still to run) is not idleness.
      if (this.readPaused || this.blockedSince !== undefined || this.pumping || this.ending) return this.armIdle();
      this.close(CLOSE.idle, `no audio for ${this.opts.idleTimeoutMs} ms (streaming.idleTimeoutMs)`);
    }, this.opts.idleTimeoutMs);
    this.idleTimer.unref();
  }

  private fail(code: number, errorCode: string, detail: string): void {
    this.send({ type: 'error', code: errorCode, detail });
    this.close(code, detail);
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.ws.close(code, closeReason(reason));
    this.cleanUp(code);
    // A client that never reads will never answer the close frame either: drop the connection.
    setTimeout(() => this.ws.terminate(), Math.max(1000, this.opts.maxBlockedMs)).unref();
  }

  private cleanUp(code: number): void {
    if (this.closed) return;
    this.closed = true;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    if (this.blockTimer) clearInterval(this.blockTimer);
    this.frames.length = 0;
    this.onEnd(this, code);
  }
}

const round = (p: number): number => Math.round(p * 10000) / 10000;
