// Audio streaming sessions over WebSocket (`/v1/models/{model}/stream`, docs/streaming.md): the app
// sends 16 kHz mono audio in chunks of any size and receives the model's JSON events (ready,
// speech_start, speech_end, probability, error, done). A server `error` event and a refused handshake
// become the client's typed errors, like any HTTP answer.
import { ERROR_CATALOGUE, isErrorCode } from '@ferry/core';
import { errorFromProblem, FerryClientError, NetworkError } from './errors.js';

/** `ready`: the session's settings as the server applied them. */
export interface AudioReadyEvent {
  type: 'ready';
  session: string;
  model: string;
  version: string;
  format: 'pcm16' | 'f32';
  sampleRate: number;
  frameSamples: number;
  probabilityIntervalMs: number;
  vad: Record<string, number>;
}
export interface SpeechStartEvent {
  type: 'speech_start';
  startMs: number;
  startSample: number;
}
export interface SpeechEndEvent {
  type: 'speech_end';
  startMs: number;
  endMs: number;
  startSample: number;
  endSample: number;
}
export interface ProbabilityEvent {
  type: 'probability';
  timeMs: number;
  probability: number;
  maxProbability: number;
}
export interface AudioErrorEvent {
  type: 'error';
  code: string;
  detail: string;
}
export interface AudioDoneEvent {
  type: 'done';
  samples: number;
  durationMs: number;
  segments: number;
}
/** Every event the server sends on an audio session. */
export type AudioEvent =
  AudioReadyEvent | SpeechStartEvent | SpeechEndEvent | ProbabilityEvent | AudioErrorEvent | AudioDoneEvent;

export interface AudioSessionOptions {
  /** Sample format on the wire: 16-bit little-endian PCM (default) or float32 (`f32`, samples in [-1, 1]). */
  format?: 'pcm16' | 'f32';
  /** Checked by the server against the model's rate (16000 for silero-vad). Default 16000. */
  sampleRate?: number;
  WebSocket?: typeof WebSocket;
  /** Sent as the `ferry.bearer.<key>` WebSocket subprotocol: browsers cannot set headers on a WebSocket. */
  apiKey?: string;
  /** Model options as query parameters: `probabilityIntervalMs`, `startThreshold`, `minSilenceMs`, ... */
  params?: Record<string, string | number>;
  /**
   * Asks the same URL over plain HTTP when the handshake fails: the server refuses a bad parameter or
   * model before the upgrade with a problem document, which a WebSocket cannot read. `FerryClient.audio`
   * sets this; without it a refused handshake is a `NetworkError`.
   */
  probe?: (query: Record<string, string>) => Promise<unknown>;
}

export interface AudioClose {
  code: number;
  reason: string;
  /** The server's `error` event (e.g. `invalid-audio` with close 1007) as a typed error. */
  error?: FerryClientError;
}

type Listener = (e: AudioEvent) => void;

/** The status a code carries in the catalogue (400 for codes this client does not know). */
const statusOf = (code: string) => (isErrorCode(code) ? ERROR_CATALOGUE[code].status : 400);

export class AudioSession {
  private readonly ws: WebSocket;
  private readonly listeners = new Set<Listener>();
  private readonly queue: AudioEvent[] = [];
  private waiting: { resolve(v: IteratorResult<AudioEvent>): void; reject(e: unknown): void } | undefined;
  private closedWith: AudioClose | undefined;
  private serverError: FerryClientError | undefined;
  /** Resolves when the socket is open; rejects with a typed error when the server refuses the session. */
  readonly opened: Promise<void>;
  /** The server's `ready` event; rejects like `opened`, or when the socket closes before it came. */
  readonly ready: Promise<AudioReadyEvent>;
  /** Resolves (never rejects) with the close code and reason, and the typed error if the server sent one. */
  readonly closed: Promise<AudioClose>;
  private readonly format: 'pcm16' | 'f32';

  constructor(url: string, o: AudioSessionOptions) {
    const WS = o.WebSocket;
    if (!WS) throw new TypeError('no WebSocket available: pass options.WebSocket (e.g. the `ws` package in Node 20)');
    this.format = o.format ?? 'pcm16';
    const query: Record<string, string> = {
      format: this.format,
      sampleRate: String(o.sampleRate ?? 16000),
      ...Object.fromEntries(Object.entries(o.params ?? {}).map(([k, v]) => [k, String(v)])),
    };
    // `ferry.v1` is what the server answers; the key rides in a second entry the server never echoes.
    this.ws = new WS(
      `${url}?${new URLSearchParams(query)}`,
      o.apiKey ? ['ferry.v1', `ferry.bearer.${o.apiKey}`] : ['ferry.v1'],
    );
    this.ws.binaryType = 'arraybuffer';
    let wasOpen = false;
    this.opened = new Promise((resolve, reject) => {
      this.ws.addEventListener(
        'open',
        () => {
          wasOpen = true;
          resolve();
        },
        { once: true },
      );
      this.ws.addEventListener(
        'error',
        () => {
          if (wasOpen) return;
          void this.refusal(url, query, o.probe).then(reject);
        },
        { once: true },
      );
    });
    this.opened.catch(() => undefined);
    let gotReady: (e: AudioReadyEvent) => void;
    let noReady: (e: unknown) => void;
    this.ready = new Promise((resolve, reject) => {
      gotReady = resolve;
      noReady = reject;
    });
    this.ready.catch(() => undefined);
    this.opened.catch((e: unknown) => noReady(e));
    this.closed = new Promise((resolve) => {
      this.ws.addEventListener('close', (e) => {
        this.closedWith = { code: e.code, reason: e.reason, ...(this.serverError && { error: this.serverError }) };
        if (wasOpen)
          noReady(
            this.serverError ??
              new NetworkError(`the session closed before it was ready: ${e.code} ${e.reason}`, { code: 'network' }),
          );
        const w = this.waiting;
        this.waiting = undefined;
        if (w) {
          if (this.serverError) w.reject(this.serverError);
          else w.resolve({ value: undefined, done: true });
        }
        resolve(this.closedWith);
      });
    });
    this.ws.addEventListener('message', (m) => {
      if (typeof m.data !== 'string') return;
      let e: AudioEvent;
      try {
        e = JSON.parse(m.data) as AudioEvent;
      } catch {
        return;
      }
      if (e.type === 'ready') gotReady(e);
      if (e.type === 'error') {
        this.serverError = errorFromProblem(statusOf(e.code), {
          code: e.code,
          detail: e.detail,
          status: statusOf(e.code),
        });
      }
      for (const l of this.listeners) l(e);
      const w = this.waiting;
      if (w) {
        this.waiting = undefined;
        w.resolve({ value: e, done: false });
      } else this.queue.push(e);
    });
  }

  /** Why the handshake failed: the server's problem document when it can be read, else a NetworkError. */
  private async refusal(
    url: string,
    query: Record<string, string>,
    probe: AudioSessionOptions['probe'],
  ): Promise<FerryClientError> {
    if (probe) {
      // Only a Ferry problem document about the request explains the refusal. A bare status (a proxy
      // that does not pass WebSockets) says nothing about the handshake, and `websocket-required` (the
      // plain GET's own answer once the parameters check) means the parameters were fine: the upgrade
      // itself failed on the way.
      try {
        await probe(query);
      } catch (e) {
        if (e instanceof FerryClientError && !e.code.startsWith('http-') && e.code !== 'websocket-required') return e;
        if (e instanceof FerryClientError && e.code === 'websocket-required')
          return new NetworkError(
            `cannot open ${url}: the server accepts these parameters, so the WebSocket upgrade failed on the way (a proxy without WebSocket support?)`,
            { code: 'network' },
          );
      }
    }
    return new NetworkError(`cannot open ${url}`, { code: 'network' });
  }

  /** Calls `listener` with every event; returns the function that removes it. */
  on(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Sends samples: a Float32Array in [-1, 1] is converted to the session's format; other buffers go as they are. */
  async send(samples: Float32Array | Int16Array | ArrayBuffer): Promise<void> {
    await this.opened;
    if (samples instanceof Float32Array && this.format === 'pcm16') {
      const out = new Int16Array(samples.length);
      for (let i = 0; i < samples.length; i++)
        out[i] = Math.max(-32768, Math.min(32767, Math.round(samples[i]! * 32768)));
      this.ws.send(out.buffer);
    } else {
      this.ws.send(
        samples instanceof ArrayBuffer
          ? samples
          : (samples.buffer.slice(samples.byteOffset, samples.byteOffset + samples.byteLength) as ArrayBuffer),
      );
    }
  }

  /** Tells the server the audio ended: it flushes a trailing speech segment, sends `done` and closes (1000). */
  async end(): Promise<void> {
    await this.opened.catch(() => undefined);
    if (this.ws.readyState === 1) this.ws.send(JSON.stringify({ type: 'end' }));
  }

  close(code = 1000, reason = 'client closed'): void {
    this.ws.close(code, reason);
  }

  /** Every event until the session closes; throws the typed error if the server sent an `error` event. */
  [Symbol.asyncIterator](): AsyncIterator<AudioEvent> {
    return {
      next: () => {
        const e = this.queue.shift();
        if (e) return Promise.resolve({ value: e, done: false });
        if (this.closedWith)
          return this.serverError
            ? Promise.reject(this.serverError)
            : Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve, reject) => {
          this.waiting = { resolve, reject };
        });
      },
      return: () => {
        this.close();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}

/** Decodes a 16-bit PCM WAV file (any rate and channel count) into mono float32 at `targetRate`. */
export function decodeWav(bytes: ArrayBuffer, targetRate = 16000): Float32Array {
  const v = new DataView(bytes);
  const tag = (o: number) =>
    String.fromCharCode(v.getUint8(o), v.getUint8(o + 1), v.getUint8(o + 2), v.getUint8(o + 3));
  if (bytes.byteLength < 44 || tag(0) !== 'RIFF' || tag(8) !== 'WAVE') throw new Error('not a WAV file');
  let off = 12;
  let channels = 1,
    rate = 16000,
    bits = 16,
    format = 1;
  while (off + 8 <= bytes.byteLength) {
    const id = tag(off);
    const size = v.getUint32(off + 4, true);
    if (id === 'fmt ') {
      format = v.getUint16(off + 8, true);
      channels = v.getUint16(off + 10, true);
      rate = v.getUint32(off + 12, true);
      bits = v.getUint16(off + 22, true);
    } else if (id === 'data') {
      if (format !== 1 || bits !== 16)
        throw new Error(`only 16-bit PCM WAV is supported (format ${format}, ${bits} bits)`);
      // A streamed WAV (espeak-ng --stdout) leaves the size 0 or too large: read to the end of the file.
      const frames = Math.floor(
        (size === 0 ? bytes.byteLength - off - 8 : Math.min(size, bytes.byteLength - off - 8)) / (2 * channels),
      );
      const mono = new Float32Array(frames);
      for (let i = 0; i < frames; i++) {
        let s = 0;
        for (let c = 0; c < channels; c++) s += v.getInt16(off + 8 + (i * channels + c) * 2, true);
        mono[i] = s / channels / 32768;
      }
      if (rate === targetRate) return mono;
      const out = new Float32Array(Math.floor((frames * targetRate) / rate));
      for (let i = 0; i < out.length; i++) {
        const x = (i * rate) / targetRate;
        const a = Math.floor(x);
        out[i] = mono[a]! + (mono[Math.min(a + 1, frames - 1)]! - mono[a]!) * (x - a);
      }
      return out;
    }
    off += 8 + size + (size & 1);
  }
  throw new Error('WAV file has no data chunk');
}
