// Audio streaming sessions over WebSocket (`/v1/models/{model}/stream`): the app sends 16 kHz mono PCM
// in chunks of any size, and receives the model's JSON events (speech_start, speech_end, probabilities).

export interface AudioEvent {
  type: string;
  [k: string]: unknown;
}

export interface AudioSessionOptions {
  /** Sample format sent: 16-bit little-endian PCM (default) or float32. */
  format?: 'pcm16' | 'float32';
  sampleRate?: number;
  WebSocket?: typeof WebSocket;
  /** Sent as the `ferry.bearer.<key>` WebSocket subprotocol: browsers cannot set headers on a WebSocket. */
  apiKey?: string;
  /** Extra query parameters (model options such as thresholds). */
  params?: Record<string, string | number>;
}

type Listener = (e: AudioEvent) => void;

export class AudioSession {
  private readonly ws: WebSocket;
  private readonly listeners = new Set<Listener>();
  private readonly queue: AudioEvent[] = [];
  private waiting: ((v: IteratorResult<AudioEvent>) => void) | undefined;
  private closedWith: { code: number; reason: string } | undefined;
  readonly opened: Promise<void>;
  readonly closed: Promise<{ code: number; reason: string }>;
  private readonly format: 'pcm16' | 'float32';

  constructor(url: string, o: AudioSessionOptions & { WebSocket?: typeof WebSocket }) {
    const WS = o.WebSocket;
    if (!WS) throw new TypeError('no WebSocket available: pass options.WebSocket (e.g. the `ws` package in Node 20)');
    this.format = o.format ?? 'pcm16';
    const q = new URLSearchParams({ format: this.format, sampleRate: String(o.sampleRate ?? 16000), ...Object.fromEntries(Object.entries(o.params ?? {}).map(([k, v]) => [k, String(v)])) });
    this.ws = o.apiKey ? new WS(`${url}?${q}`, [`ferry.bearer.${o.apiKey}`]) : new WS(`${url}?${q}`);
    this.ws.binaryType = 'arraybuffer';
    this.opened = new Promise((resolve, reject) => {
      this.ws.addEventListener('open', () => resolve(), { once: true });
      this.ws.addEventListener('error', () => reject(new Error(`cannot open ${url}`)), { once: true });
    });
    this.opened.catch(() => undefined);
    this.closed = new Promise((resolve) => {
      this.ws.addEventListener('close', (e) => {
        this.closedWith = { code: e.code, reason: e.reason };
        this.waiting?.({ value: undefined, done: true });
        this.waiting = undefined;
        resolve(this.closedWith);
      });
    });
    this.ws.addEventListener('message', (m) => {
      if (typeof m.data !== 'string') return;
      let e: AudioEvent;
      try { e = JSON.parse(m.data) as AudioEvent; } catch { return; }
      for (const l of this.listeners) l(e);
      if (this.waiting) { this.waiting({ value: e, done: false }); this.waiting = undefined; } else this.queue.push(e);
    });
  }

  on(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Sends samples: Float32Array in [-1, 1] is converted to the session's format; other buffers go as they are. */
  async send(samples: Float32Array | Int16Array | ArrayBuffer): Promise<void> {
    await this.opened;
    if (samples instanceof Float32Array && this.format === 'pcm16') {
      const out = new Int16Array(samples.length);
      for (let i = 0; i < samples.length; i++) out[i] = Math.max(-32768, Math.min(32767, Math.round(samples[i]! * 32767)));
      this.ws.send(out.buffer);
    } else {
      this.ws.send(samples instanceof ArrayBuffer ? samples : samples.buffer.slice(samples.byteOffset, samples.byteOffset + samples.byteLength));
    }
  }

  /** Tells the server the audio ended (it flushes a trailing speech segment), then closes. */
  async end(): Promise<void> {
    await this.opened.catch(() => undefined);
    if (this.ws.readyState === 1) this.ws.send(JSON.stringify({ type: 'end' }));
  }

  close(code = 1000, reason = 'client closed'): void {
    this.ws.close(code, reason);
  }

  [Symbol.asyncIterator](): AsyncIterator<AudioEvent> {
    return {
      next: () => {
        const e = this.queue.shift();
        if (e) return Promise.resolve({ value: e, done: false });
        if (this.closedWith) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => { this.waiting = resolve; });
      },
      return: () => { this.close(); return Promise.resolve({ value: undefined, done: true }); },
    };
  }
}

/** Decodes a 16-bit PCM WAV file (any rate and channel count) into mono float32 at `targetRate`. */
export function decodeWav(bytes: ArrayBuffer, targetRate = 16000): Float32Array {
  const v = new DataView(bytes);
  const tag = (o: number) => String.fromCharCode(v.getUint8(o), v.getUint8(o + 1), v.getUint8(o + 2), v.getUint8(o + 3));
  if (bytes.byteLength < 44 || tag(0) !== 'RIFF' || tag(8) !== 'WAVE') throw new Error('not a WAV file');
  let off = 12;
  let channels = 1, rate = 16000, bits = 16, format = 1;
  while (off + 8 <= bytes.byteLength) {
    const id = tag(off);
    const size = v.getUint32(off + 4, true);
    if (id === 'fmt ') {
      format = v.getUint16(off + 8, true); channels = v.getUint16(off + 10, true); rate = v.getUint32(off + 12, true); bits = v.getUint16(off + 22, true);
    } else if (id === 'data') {
      if (format !== 1 || bits !== 16) throw new Error(`only 16-bit PCM WAV is supported (format ${format}, ${bits} bits)`);
      const frames = Math.floor(Math.min(size, bytes.byteLength - off - 8) / (2 * channels));
      const mono = new Float32Array(frames);
      for (let i = 0; i < frames; i++) {
        let s = 0;
        for (let c = 0; c < channels; c++) s += v.getInt16(off + 8 + (i * channels + c) * 2, true);
        mono[i] = s / channels / 32768;
      }
      if (rate === targetRate) return mono;
      const out = new Float32Array(Math.floor(frames * targetRate / rate));
      for (let i = 0; i < out.length; i++) {
        const x = i * rate / targetRate;
        const a = Math.floor(x);
        out[i] = mono[a]! + (mono[Math.min(a + 1, frames - 1)]! - mono[a]!) * (x - a);
      }
      return out;
    }
    off += 8 + size + (size & 1);
  }
  throw new Error('WAV file has no data chunk');
}
