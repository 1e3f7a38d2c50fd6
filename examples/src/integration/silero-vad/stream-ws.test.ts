// Silero VAD served as a WebSocket stream by a real Ferry server: real speech from espeak-ng with
// known silences, chunked PCM, concurrent sessions batched together, session limits, idle timeout,
// hostile messages, and a client that stops reading.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { createServer, decodeWav, loadConfig, runStreamCli, type FerryServer } from '@ferry/server';
import { decodePcm16, frameSignal, resample } from '@ferry/core';
import { NAME, SAMPLE_RATE, sileroVad, VERSION, WINDOW } from '../../silero-vad/build.js';
import { openVadSession, ortVadRunner } from '../../silero-vad/ort-runner.js';
import { speechProbabilities } from '../../silero-vad/stream.js';

const files = await sileroVad.build();
const repo = mkdtempSync(join(tmpdir(), 'ferry-vad-ws-'));
{
  const dir = join(repo, NAME, VERSION);
  mkdirSync(dir, { recursive: true });
  for (const [f, c] of Object.entries(files)) writeFileSync(join(dir, f), c);
}
process.on('exit', () => rmSync(repo, { recursive: true, force: true }));

async function startServer(streaming: Record<string, unknown> = {}): Promise<{ server: FerryServer; url: string }> {
  const overrides: Record<string, unknown> = {
    'models.dir': repo,
    'runtime.workers': 1,
    'runtime.warmupRuns': 1,
    'log.level': 'silent',
    'store.url': 'sqlite::memory:',
    'server.port': 0,
    'server.host': '127.0.0.1',
  };
  for (const [k, v] of Object.entries(streaming)) overrides[`streaming.${k}`] = v;
  const server = await createServer(loadConfig({ env: {}, overrides }), { logger: false });
  await server.loaded;
  const addr = await server.listen();
  return { server, url: addr.url.replace('http', 'ws') };
}

interface Client {
  ws: WebSocket;
  events: Array<Record<string, unknown> & { type: string }>;
  closed: Promise<{ code: number; reason: string }>;
  opened: Promise<void>;
}

/**
 * The client's socket buffers, fixed rather than Node's default: Node 22 raised the default stream
 * highWaterMark from 16 KiB to 64 KiB, and a paused client holds that much unread before its kernel
 * buffers fill and the server's `bufferedAmount` grows. With the default, 60 s of audio can run to its
 * end on Node 22 without the server ever pausing, and the backpressure tests below fail there.
 * (Not in ws's option type; ws hands it to net.connect.)
 */
const SMALL_READER = { highWaterMark: 16 * 1024 } as WebSocket.ClientOptions;

function connect(url: string): Client {
  const ws = new WebSocket(url, SMALL_READER);
  const events: Client['events'] = [];
  ws.on('message', (d) => events.push(JSON.parse(String(d))));
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => resolve({ code, reason: String(reason) })),
  );
  const opened = new Promise<void>((resolve, reject) => {
    ws.on('open', () => resolve());
    ws.on('error', reject);
  });
  return { ws, events, closed, opened };
}

/** Sends PCM bytes in chunks of the given sizes (cycled), then {"type":"end"}. */
async function sendAudio(c: Client, bytes: Uint8Array, chunks: number[], end = true): Promise<void> {
  await c.opened;
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const n = chunks[i % chunks.length]!;
    c.ws.send(bytes.subarray(at, at + n));
    at += n;
    if (i % 50 === 49) await new Promise((r) => setImmediate(r));
  }
  if (end) c.ws.send(JSON.stringify({ type: 'end' }));
}

const toPcm16 = (x: Float32Array): Uint8Array => {
  const out = new Int16Array(x.length);
  x.forEach((v, i) => {
    out[i] = Math.max(-32768, Math.min(32767, Math.round(v * 32768)));
  });
  return new Uint8Array(out.buffer);
};

const espeak = spawnSync('espeak-ng', ['--version'], { encoding: 'utf8' });
const noEspeak = espeak.error || espeak.status !== 0 ? 'espeak-ng is not installed (Debian package espeak-ng)' : false;

/** espeak-ng's phrase at 16 kHz with its own leading and trailing silence cut by an energy threshold. */
function phrase(text: string): Float32Array {
  const wav = decodeWav(new Uint8Array(execFileSync('espeak-ng', ['-v', 'en', '-s', '160', '--stdout', text])));
  const x = resample(wav.samples, wav.sampleRate, SAMPLE_RATE);
  const win = 160; // 10 ms
  const loud = (i: number) => Math.sqrt(x.subarray(i, i + win).reduce((a, v) => a + v * v, 0) / win) > 0.01;
  let s = 0;
  while (s + win < x.length && !loud(s)) s += win;
  let e = x.length - win;
  while (e > s && !loud(e)) e -= win;
  return x.slice(s, e + win);
}

/** Phrases separated by known silences; the truth spans come from the sample counts. */
function speechTrack(): { audio: Float32Array; truth: Array<{ startMs: number; endMs: number }> } {
  const texts = [
    'The quick brown fox jumps over the lazy dog.',
    'Ferry carries models into production.',
    'Thank you and goodbye.',
  ];
  const gaps = [0.8, 1.2, 1.0, 0.9].map((s) => Math.round(s * SAMPLE_RATE));
  const parts = texts.map(phrase);
  const total = parts.reduce((a, p) => a + p.length, 0) + gaps.reduce((a, g) => a + g, 0);
  const audio = new Float32Array(total);
  const truth: Array<{ startMs: number; endMs: number }> = [];
  let at = gaps[0]!;
  parts.forEach((p, i) => {
    audio.set(p, at);
    truth.push({ startMs: (at * 1000) / SAMPLE_RATE, endMs: ((at + p.length) * 1000) / SAMPLE_RATE });
    at += p.length + gaps[i + 1]!;
  });
  return { audio, truth };
}

describe('GET /v1/models/silero-vad/stream', () => {
  let server: FerryServer;
  let url: string;
  before(async () => ({ server, url } = await startServer({ maxSessionsPerModel: 6 })));
  after(async () => server.close());

  test(
    'espeak-ng speech with known silences: each phrase detected once, start and end within 150 ms',
    { skip: noEspeak },
    async (t) => {
      const { audio, truth } = speechTrack();
      const c = connect(`${url}/v1/models/${NAME}/stream?format=pcm16`);
      // Odd chunk sizes: a 16-bit sample and a 512-sample window are split across messages.
      await sendAudio(c, toPcm16(audio), [777, 4096, 1, 3000]);
      const closed = await c.closed;
      assert.deepEqual(closed, { code: 1000, reason: 'end of stream' });
      assert.equal(c.events[0]!.type, 'ready');
      const starts = c.events.filter((e) => e.type === 'speech_start');
      const ends = c.events.filter((e) => e.type === 'speech_end') as Array<{
        type: string;
        startMs: number;
        endMs: number;
      }>;
      assert.equal(ends.length, truth.length, JSON.stringify(ends));
      assert.equal(starts.length, truth.length);
      ends.forEach((e, i) => {
        assert.ok(
          Math.abs(e.startMs - truth[i]!.startMs) <= 150,
          `phrase ${i}: start ${e.startMs} vs truth ${truth[i]!.startMs}`,
        );
        assert.ok(
          Math.abs(e.endMs - truth[i]!.endMs) <= 150,
          `phrase ${i}: end ${e.endMs} vs truth ${truth[i]!.endMs}`,
        );
        assert.equal(starts[i]!.startMs, e.startMs);
        // A start is announced before its end.
        assert.ok(c.events.indexOf(starts[i]!) < c.events.indexOf(e));
      });
      t.diagnostic(
        `offsets ms (start, end): ${ends.map((e, i) => `${Math.round(e.startMs - truth[i]!.startMs)}, ${Math.round(e.endMs - truth[i]!.endMs)}`).join('; ')}`,
      );
      const done = c.events.at(-1)!;
      assert.equal(done.type, 'done');
      assert.equal(done.samples, audio.length);
      assert.equal(done.segments, truth.length);
    },
  );

  test('probabilities: equal to ONNX Runtime run frame by frame, float32 and pcm16 alike, rate-limited on request', async () => {
    let seed = 5;
    const noise = Float32Array.from(
      { length: SAMPLE_RATE * 2 },
      () => ((seed = (Math.imul(seed, 48271) >>> 0) % 2147483647) / 2147483647 - 0.5) * 0.4,
    );
    const pcm = toPcm16(noise);
    const decoded = decodePcm16(pcm);
    const local = ortVadRunner(await openVadSession(join(repo, NAME, VERSION, 'model.onnx')));
    const ref = await speechProbabilities(frameSignal(decoded, WINDOW), local);

    const every = connect(`${url}/v1/models/${NAME}/stream?probabilityIntervalMs=32`);
    const f32 = connect(`${url}/v1/models/${NAME}/stream?format=f32&probabilityIntervalMs=32`);
    const sparse = connect(`${url}/v1/models/${NAME}/stream?probabilityIntervalMs=320`);
    await Promise.all([
      sendAudio(every, pcm, [1000]),
      sendAudio(f32, new Uint8Array(decoded.buffer), [4098, 6]),
      sendAudio(sparse, pcm, [2048]),
    ]);
    await Promise.all([every.closed, f32.closed, sparse.closed]);
    for (const c of [every, f32]) {
      const probs = c.events.filter((e) => e.type === 'probability').map((e) => e.probability as number);
      assert.equal(probs.length, ref.length);
      probs.forEach((p, i) => assert.ok(Math.abs(p - ref[i]!) < 2e-4, `frame ${i}: ${p} vs ${ref[i]}`));
    }
    const few = sparse.events.filter((e) => e.type === 'probability');
    assert.equal(few.length, Math.floor(ref.length / 10) + 1, 'one per 10 frames, and the short last frame');
    // Each carries the highest probability of the frames since the previous one.
    assert.ok(Math.abs((few[0]!.maxProbability as number) - Math.max(...ref.slice(0, 10))) < 2e-4);
  });

  test('concurrent sessions share inferences (stateful sequence batching) and keep their own state', async () => {
    const batcher = server.streaming.batcherFor(`${NAME}@${VERSION}`)!;
    const before = new Map(batcher.batchSizes);
    let seed = 9;
    const tracks = [0.05, 0.2, 0.4, 0.6].map((amp) =>
      toPcm16(
        Float32Array.from(
          { length: SAMPLE_RATE },
          () => ((seed = (Math.imul(seed, 48271) >>> 0) % 2147483647) / 2147483647 - 0.5) * amp,
        ),
      ),
    );
    const local = ortVadRunner(await openVadSession(join(repo, NAME, VERSION, 'model.onnx')));
    const clients = tracks.map(() => connect(`${url}/v1/models/${NAME}/stream?probabilityIntervalMs=32`));
    await Promise.all(clients.map((c, i) => sendAudio(c, tracks[i]!, [WINDOW * 2 * 4])));
    await Promise.all(clients.map((c) => c.closed));
    for (const [i, c] of clients.entries()) {
      const ref = await speechProbabilities(frameSignal(decodePcm16(tracks[i]!), WINDOW), local);
      const probs = c.events.filter((e) => e.type === 'probability').map((e) => e.probability as number);
      assert.equal(probs.length, ref.length);
      probs.forEach((p, j) => assert.ok(Math.abs(p - ref[j]!) < 2e-4, `session ${i} frame ${j}: ${p} vs ${ref[j]}`));
    }
    const batched = [...batcher.batchSizes].some(([size, n]) => size > 1 && n > (before.get(size) ?? 0));
    assert.ok(batched, `batch sizes ${JSON.stringify([...batcher.batchSizes])}`);
    const metrics = await (await fetch(url.replace('ws', 'http') + '/metrics')).text();
    assert.match(metrics, /ferry_stream_batch_size_bucket\{le="1",model="silero-vad"/);
  });

  test(
    'ferry stream --wav: a stereo 44.1 kHz WAV (sox) is mixed, resampled and its two phrases reported',
    { skip: noEspeak || (spawnSync('sox', ['--version']).status !== 0 && 'sox is not installed') },
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'ferry-vad-cli-'));
      try {
        const a = join(dir, 'a.wav'),
          b = join(dir, 'b.wav'),
          sil = join(dir, 'sil.wav'),
          mix = join(dir, 'mix.wav');
        execFileSync('espeak-ng', ['-v', 'en', '-w', a, 'Ferry serves models.']);
        execFileSync('espeak-ng', ['-v', 'en', '-w', b, 'Streaming audio works.']);
        execFileSync('sox', ['-n', '-r', '22050', '-c', '1', '-b', '16', sil, 'trim', '0', '1']);
        execFileSync('sox', [sil, a, sil, b, sil, '-c', '2', '-r', '44100', mix]);
        let out = '';
        const errs: string[] = [];
        const code = await runStreamCli(
          ['silero-vad', '--wav', mix, '--url', url.replace('ws', 'http'), '--json'],
          (s) => {
            out += s;
          },
          (s) => {
            errs.push(s);
          },
        );
        assert.equal(code, 0, errs.join(''));
        const events = out
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as { type: string; startMs?: number; endMs?: number; segments?: number });
        const ends = events.filter((e) => e.type === 'speech_end');
        assert.equal(ends.length, 2, out);
        assert.equal(events.at(-1)!.segments, 2);
        // Each phrase starts after about a second of silence (espeak-ng's own lead-in adds a little).
        assert.ok(ends[0]!.startMs! > 900 && ends[0]!.startMs! < 1300, `first start ${ends[0]!.startMs}`);
        const human: string[] = [];
        assert.equal(
          await runStreamCli(
            ['silero-vad', '--wav', mix, '--url', url.replace('ws', 'http')],
            (s) => {
              human.push(s);
            },
            () => undefined,
          ),
          0,
        );
        assert.match(human.join(''), /done: 2 speech segment\(s\)/);
        assert.equal(
          await runStreamCli(
            ['silero-vad', '--wav', join(dir, 'missing.wav')],
            () => undefined,
            () => undefined,
          ),
          2,
        );
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  test('bad requests before the upgrade are problem+json 4xx naming the field', async () => {
    const status = (path: string) =>
      new Promise<{ status: number; body: string; type: string }>((resolve, reject) => {
        const ws = new WebSocket(`${url}${path}`);
        ws.on('unexpected-response', (_req, res) => {
          let body = '';
          res.on('data', (d: Buffer) => {
            body += d;
          });
          res.on('end', () => resolve({ status: res.statusCode!, body, type: String(res.headers['content-type']) }));
        });
        ws.on('open', () => reject(new Error(`${path} opened`)));
      });
    const cases: Array<[string, number, RegExp]> = [
      [`/v1/models/${NAME}/stream?format=mp3`, 400, /\/query\/format/],
      [`/v1/models/${NAME}/stream?sampleRate=44100`, 400, /\/query\/sampleRate/],
      [`/v1/models/${NAME}/stream?startThreshold=2`, 400, /\/query\/startThreshold/],
      [`/v1/models/${NAME}/stream?startThreshold=0.3&endThreshold=0.6`, 400, /\/query\/endThreshold/],
      [`/v1/models/${NAME}/stream?probabilityIntervalMs=1`, 400, /\/query\/probabilityIntervalMs/],
      [`/v1/models/${NAME}/stream?bogus=1`, 400, /\/query\/bogus/],
      [`/v1/models/${NAME}/stream?minSpeechMs=1e9`, 400, /\/query\/minSpeechMs/],
      ['/v1/models/nope/stream', 404, /model-not-found/],
      [`/v1/models/${NAME}/versions/9.9.9/stream`, 404, /version-not-found/],
    ];
    for (const [path, code, re] of cases) {
      const r = await status(path);
      assert.equal(r.status, code, `${path}: ${r.body}`);
      assert.match(r.type, /application\/problem\+json/);
      assert.match(r.body, re, path);
    }
    // A plain GET (no upgrade): a bad parameter is still its 400; good parameters get 426 problem+json
    // naming the upgrade it needs, not a bare 404.
    const http = url.replace(/^ws/, 'http');
    const bad = await fetch(`${http}/v1/models/${NAME}/stream?format=mp3`);
    assert.equal(bad.status, 400);
    assert.match(await bad.text(), /\/query\/format/);
    const plain = await fetch(`${http}/v1/models/${NAME}/stream?format=f32`);
    assert.equal(plain.status, 426);
    assert.match(plain.headers.get('content-type')!, /application\/problem\+json/);
    assert.equal(plain.headers.get('upgrade'), 'websocket');
    assert.equal(((await plain.json()) as { code: string }).code, 'websocket-required');
  });

  test('a browser-style subprotocol offer gets ferry.v1 back, never the bearer entry', async () => {
    const ws = new WebSocket(`${url}/v1/models/${NAME}/stream`, ['ferry.v1', 'ferry.bearer.some-key-0123456789']);
    await new Promise<void>((resolve, reject) => {
      ws.on('open', () => resolve());
      ws.on('error', reject);
    });
    assert.equal(ws.protocol, 'ferry.v1');
    ws.close();
    await new Promise((r) => ws.on('close', r));
  });

  test('hostile messages close the session with a code and reason, and free its slot', async () => {
    const text = connect(`${url}/v1/models/${NAME}/stream`);
    await text.opened;
    text.ws.send('not json');
    assert.equal((await text.closed).code, 1008);
    assert.equal(text.events.find((e) => e.type === 'error')?.code, 'invalid-message');

    const unknown = connect(`${url}/v1/models/${NAME}/stream`);
    await unknown.opened;
    unknown.ws.send(JSON.stringify({ type: 'rewind' }));
    assert.match((await unknown.closed).reason, /unknown message type "rewind"/);

    const nan = connect(`${url}/v1/models/${NAME}/stream?format=f32`);
    await nan.opened;
    nan.ws.send(new Uint8Array(Float32Array.from([0.1, NaN, 0.2]).buffer));
    const c = await nan.closed;
    assert.equal(c.code, 1007);
    assert.match(c.reason, /sample 1/);
    assert.equal(nan.events.find((e) => e.type === 'error')?.code, 'invalid-audio');

    const huge = connect(`${url}/v1/models/${NAME}/stream`);
    await huge.opened;
    huge.ws.send(new Uint8Array(server.config.streaming.maxMessageBytes + 2));
    assert.equal((await huge.closed).code, 1009);

    // The server still serves, and every slot was given back.
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(server.streaming.limits.open, 0);
  });
});

describe('session bounds', () => {
  let server: FerryServer;
  let url: string;
  before(
    async () => ({ server, url } = await startServer({ maxSessions: 3, maxSessionsPerModel: 2, idleTimeoutMs: 400 })),
  );
  after(async () => server.close());

  test('past the per-model bound a session is closed with 1013 and a reason; a client that leaves frees its slot', async () => {
    const a = connect(`${url}/v1/models/${NAME}/stream`);
    const b = connect(`${url}/v1/models/${NAME}/stream`);
    await Promise.all([a.opened, b.opened]);
    const c = connect(`${url}/v1/models/${NAME}/stream`);
    const closed = await c.closed;
    assert.equal(closed.code, 1013);
    assert.match(closed.reason, /maxSessionsPerModel 2/);
    // A client that vanishes without a close handshake.
    a.ws.terminate();
    for (let i = 0; i < 100 && server.streaming.limits.open > 1; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(server.streaming.limits.open, 1);
    const d = connect(`${url}/v1/models/${NAME}/stream`);
    await d.opened;
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(d.events[0]?.type, 'ready');
    b.ws.close();
    d.ws.close();
    await Promise.all([b.closed, d.closed]);
  });

  test('a session that sends nothing is closed after the idle timeout with 4000', async () => {
    const a = connect(`${url}/v1/models/${NAME}/stream`);
    await a.opened;
    a.ws.send(new Uint8Array(WINDOW * 2 * 3));
    const t0 = Date.now();
    const closed = await a.closed;
    assert.equal(closed.code, 4000);
    assert.match(closed.reason, /idleTimeoutMs/);
    assert.ok(Date.now() - t0 >= 350, 'not before the timeout');
    for (let i = 0; i < 50 && server.streaming.limits.open > 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(server.streaming.limits.open, 0);
  });

  test('server shutdown closes open sessions with 1001 and the reason after lifecycle.streamGraceMs', async () => {
    // Its own server: a grace shorter than the idle timeout, so the shutdown (not idleness) ends the session.
    const overrides: Record<string, unknown> = {
      'models.dir': repo,
      'runtime.workers': 1,
      'runtime.warmupRuns': 1,
      'log.level': 'silent',
      'store.url': 'sqlite::memory:',
      'lifecycle.streamGraceMs': 100,
      'streaming.idleTimeoutMs': 30_000,
      'server.port': 0,
      'server.host': '127.0.0.1',
    };
    const own = await createServer(loadConfig({ env: {}, overrides }), { logger: false });
    await own.loaded;
    const ownUrl = (await own.listen()).url.replace('http', 'ws');
    const a = connect(`${ownUrl}/v1/models/${NAME}/stream`);
    await a.opened;
    await own.close();
    assert.deepEqual(await a.closed, { code: 1001, reason: 'server shutting down (close)' });
  });
});

// Over a Unix socket: its kernel buffers hold ~50 KB, so a client that stops reading fills them
// within a few hundred events (loopback TCP absorbs ~4 MB first, minutes of audio).
describe('backpressure: a client that stops reading', () => {
  let server: FerryServer;
  let sock: string;
  const sockDir = mkdtempSync(join(tmpdir(), 'ferry-vad-sock-'));
  before(async () => {
    const overrides: Record<string, unknown> = {
      'models.dir': repo,
      'runtime.workers': 1,
      'runtime.warmupRuns': 1,
      'log.level': 'silent',
      'store.url': 'sqlite::memory:',
      'streaming.maxBufferedBytes': 8192,
      'streaming.maxBlockedMs': 2500,
      'streaming.maxPendingAudioMs': 2000,
    };
    server = await createServer(loadConfig({ env: {}, overrides }), { logger: false });
    await server.loaded;
    sock = join(sockDir, 'ferry.sock');
    await server.app.listen({ path: sock });
  });
  after(async () => {
    await server.close();
    rmSync(sockDir, { recursive: true, force: true });
  });

  const seconds = 60;
  let seed = 3;
  const audio = toPcm16(
    Float32Array.from(
      { length: SAMPLE_RATE * seconds },
      () => ((seed = (Math.imul(seed, 48271) >>> 0) % 2147483647) / 2147483647 - 0.5) * 0.3,
    ),
  );
  const frames = Math.ceil(audio.length / 2 / WINDOW);

  /** Waits until the session's processing stops advancing while the client is not reading. */
  async function stalled(): Promise<{ framesRun: number; stats: Record<string, number> }> {
    const session = () => [...server.streaming.sessions][0]!;
    for (let i = 0; i < 200 && !(session()?.stats.blockedTimes > 0); i++) await new Promise((r) => setTimeout(r, 25));
    const s = session();
    assert.ok(s && s.stats.blockedTimes > 0, 'processing paused');
    const first = s.stats.framesRun;
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(s.stats.framesRun, first, 'no frame runs while the client does not read');
    return { framesRun: first, stats: { ...s.stats } };
  }

  test('processing pauses while the client is not reading and resumes when it reads again: nothing lost', async () => {
    const c = connect(`ws+unix://${sock}:/v1/models/${NAME}/stream?probabilityIntervalMs=32`);
    await c.opened;
    c.ws.pause();
    await sendAudio(c, audio, [16384]);
    const { framesRun, stats } = await stalled();
    assert.ok(framesRun < frames / 2, `${framesRun} of ${frames} frames ran`);
    // The server held at most its bound plus the one event that crossed it.
    assert.ok(stats.maxBufferedBytes <= 8192 + 512, `buffered ${stats.maxBufferedBytes} bytes`);
    // The audio it could not run yet stayed in the client's socket, not in the server: reading paused.
    assert.ok(stats.readPauses >= 1);
    c.ws.resume();
    const closed = await c.closed;
    assert.equal(closed.code, 1000, closed.reason);
    assert.equal(c.events.filter((e) => e.type === 'probability').length, frames);
    assert.equal(c.events.at(-1)!.samples, audio.length / 2);
  });

  test('a client that stays blocked past maxBlockedMs is closed with 4001 and a reason', async () => {
    const c = connect(`ws+unix://${sock}:/v1/models/${NAME}/stream?probabilityIntervalMs=32`);
    await c.opened;
    c.ws.pause();
    await sendAudio(c, audio, [16384], false);
    await stalled();
    for (let i = 0; i < 200 && server.streaming.limits.open > 0; i++) await new Promise((r) => setTimeout(r, 25));
    assert.equal(server.streaming.limits.open, 0, 'the session was closed and its slot freed');
    // The close frame waits behind the unread events: reading again delivers them and then the reason.
    c.ws.resume();
    const closed = await c.closed;
    assert.equal(closed.code, 4001);
    assert.match(closed.reason, /maxBlockedMs/);
  });
});
