// The client's stream helpers against a real Ferry server over the example repository: the audio
// session (WebSocket to silero-vad) with real espeak-ng speech, and the OpenAI-style token stream from
// ham-chat, compared with the server's own non-streamed answers.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { createServer, loadConfig, type FerryServer } from '@ferry/server';
import {
  AbortedError,
  createClient,
  InvalidInputError,
  NetworkError,
  NotFoundError,
  type AudioEvent,
  type FerryClient,
  type SpeechEndEvent,
} from '@ferry/client';
import { noEspeak, RATE, speechTrack } from '../speech.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../../../..');
const TOL_MS = 150;

describe('stream helpers against a real server (silero-vad, ham-chat)', () => {
  let server: FerryServer;
  let client: FerryClient;
  let base: string;
  before(async () => {
    server = await createServer(
      loadConfig({
        env: {},
        overrides: {
          'models.dir': join(root, 'models'),
          'models.only': ['silero-vad', 'ham-chat'],
          'runtime.workers': 1,
          'runtime.warmupRuns': 1,
          'log.level': 'silent',
          'store.url': 'sqlite::memory:',
          'web.timeseriesIntervalSeconds': 0,
          'server.port': 0,
          'server.host': '127.0.0.1',
        },
      }),
      { logger: false },
    );
    await server.loaded;
    base = (await server.listen()).url;
    client = createClient({ baseUrl: base, WebSocket: WebSocket as unknown as typeof globalThis.WebSocket });
  });
  after(async () => server?.close());

  test(
    'audio session: speech with silence around it gives one segment per phrase at the right times',
    { skip: noEspeak },
    async (t) => {
      const { audio, truth } = speechTrack();
      const s = client.audio('silero-vad');
      const ready = await s.ready;
      assert.equal(ready.model, 'silero-vad');
      assert.equal(ready.format, 'pcm16');
      assert.equal(ready.sampleRate, RATE);
      assert.ok(ready.frameSamples > 0);
      const heard: AudioEvent[] = [];
      s.on((e) => heard.push(e));
      // 0.1 s chunks as float32, converted to pcm16 by the session.
      for (let i = 0; i < audio.length; i += 1600) await s.send(audio.subarray(i, i + 1600));
      await s.end();
      const events: AudioEvent[] = [];
      for await (const e of s) events.push(e);
      assert.equal(events[0]!.type, 'ready');
      const ends = events.filter((e): e is SpeechEndEvent => e.type === 'speech_end');
      const starts = events.filter((e) => e.type === 'speech_start');
      assert.equal(ends.length, truth.length, JSON.stringify(ends));
      assert.equal(starts.length, truth.length);
      ends.forEach((e, i) => {
        assert.ok(
          Math.abs(e.startMs - truth[i]!.startMs) <= TOL_MS,
          `phrase ${i}: start ${e.startMs} vs ${truth[i]!.startMs}`,
        );
        assert.ok(Math.abs(e.endMs - truth[i]!.endMs) <= TOL_MS, `phrase ${i}: end ${e.endMs} vs ${truth[i]!.endMs}`);
      });
      t.diagnostic(
        `offsets ms (start, end): ${ends.map((e, i) => `${Math.round(e.startMs - truth[i]!.startMs)}, ${Math.round(e.endMs - truth[i]!.endMs)}`).join('; ')}`,
      );
      const done = events.at(-1)!;
      assert.equal(done.type, 'done');
      assert.equal(done.type === 'done' && done.samples, audio.length);
      const closed = await s.closed;
      assert.equal(closed.code, 1000);
      assert.equal(closed.error, undefined);
      // `on` listeners saw the events after it was added (everything but ready, which came before).
      assert.deepEqual(
        heard.map((e) => e.type),
        events.slice(1).map((e) => e.type),
      );
    },
  );

  test(
    'audio session in f32 with probability events and model parameters from `params`',
    { skip: noEspeak },
    async () => {
      const { audio } = speechTrack(['Hello there.'], [0.5, 0.5]);
      const s = client.audio('silero-vad', {
        format: 'f32',
        params: { probabilityIntervalMs: 320, minSilenceMs: 200 },
      });
      const ready = await s.ready;
      assert.equal(ready.format, 'f32');
      assert.equal(ready.probabilityIntervalMs, 320);
      assert.equal(ready.vad.minSilenceMs, 200);
      await s.send(audio);
      await s.end();
      const events: AudioEvent[] = [];
      for await (const e of s) events.push(e);
      const probs = events.filter((e) => e.type === 'probability');
      // One per 320 ms of audio (the last partial interval may or may not report).
      assert.ok(
        Math.abs(probs.length - audio.length / RATE / 0.32) <= 1.5,
        `${probs.length} probability events for ${audio.length / RATE} s`,
      );
      assert.ok(
        probs.some((p) => p.type === 'probability' && p.maxProbability > 0.5),
        'speech is loud in some interval',
      );
      assert.ok(
        probs.some((p) => p.type === 'probability' && p.maxProbability < 0.35),
        'silence is quiet in some interval',
      );
      assert.equal(events.filter((e) => e.type === 'speech_end').length, 1);
    },
  );

  test("bad audio: the server's error event becomes InvalidInputError `invalid-audio`, close 1007", async () => {
    const s = client.audio('silero-vad', { format: 'f32' });
    await s.ready;
    await s.send(new Float32Array([0.1, Number.NaN, 0.2, 0.3]));
    const seen: AudioEvent[] = [];
    await assert.rejects(
      async () => {
        for await (const e of s) seen.push(e);
      },
      (e: unknown) => {
        assert.ok(e instanceof InvalidInputError, String(e));
        assert.equal(e.code, 'invalid-audio');
        assert.equal(e.status, 400);
        assert.match(e.message, /NaN/);
        return true;
      },
    );
    assert.ok(
      seen.some((e) => e.type === 'error'),
      'the error event itself is delivered before the throw',
    );
    const closed = await s.closed;
    assert.equal(closed.code, 1007);
    assert.equal(closed.error?.code, 'invalid-audio');
  });

  test("a refused handshake rejects `opened` and `ready` with the server's typed problem", async () => {
    const badParam = client.audio('silero-vad', { params: { probabilityIntervalMs: 5 } });
    await assert.rejects(
      badParam.opened,
      (e: unknown) =>
        e instanceof InvalidInputError &&
        e.code === 'invalid-input' &&
        e.errors.some((i) => i.pointer === '/query/probabilityIntervalMs'),
    );
    await assert.rejects(badParam.ready, InvalidInputError);
    await assert.rejects(
      client.audio('no-such-model').opened,
      (e: unknown) => e instanceof NotFoundError && e.code === 'model-not-found',
    );
    await assert.rejects(
      client.audio('ham-chat').opened,
      (e: unknown) => e instanceof InvalidInputError && e.code === 'not-streamable',
    );
    // Sending on a refused session fails the same way instead of hanging.
    await assert.rejects(
      client.audio('silero-vad', { sampleRate: 8000 }).send(new Float32Array(10)),
      (e: unknown) => e instanceof InvalidInputError && e.errors[0]?.pointer === '/query/sampleRate',
    );
  });

  test('a handshake refused by something that is not Ferry (a proxy without WebSocket support) is a NetworkError', async () => {
    const proxy = createHttpServer((_req, res) => {
      res.writeHead(502, { 'content-type': 'text/html' });
      res.end('<h1>Bad Gateway</h1>');
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    try {
      const viaProxy = createClient({
        baseUrl: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
        retry: { retries: 0 },
        WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
      });
      await assert.rejects(
        viaProxy.audio('silero-vad').opened,
        (e: unknown) => e instanceof NetworkError && e.code === 'network',
      );
    } finally {
      proxy.closeAllConnections();
      await new Promise((r) => proxy.close(r));
    }
  });

  const messages = [{ role: 'user' as const, content: 'meeting on friday' }];
  const completion = async (body: object) =>
    client.json<{
      choices: Array<{ message: { content: string }; finish_reason: string }>;
      usage: { completion_tokens: number };
    }>('/openai/v1/chat/completions', { method: 'POST', body: { ...body, stream: false } });

  test('token stream: the concatenated tokens equal the non-streamed completion (greedy, and seeded sampling)', async () => {
    for (const params of [
      { temperature: 0 },
      { temperature: 0.8, seed: 42 },
      { temperature: 1.2, seed: 7, top_p: 0.9 },
    ]) {
      const req = { model: 'ham-chat', messages, max_tokens: 60, ...params };
      const whole = await completion(req);
      const chunks = [];
      for await (const c of client.chatStream(req)) chunks.push(c);
      const text = chunks.map((c) => c.token).join('');
      assert.equal(text, whole.choices[0]!.message.content, JSON.stringify(params));
      assert.equal(chunks.at(-1)!.text, text);
      assert.equal(chunks.at(-1)!.finishReason, whole.choices[0]!.finish_reason);
      assert.ok(chunks.length >= 2, 'streamed in several chunks');
      assert.ok(text.length > 0);
      assert.ok(chunks.slice(0, -1).every((c) => c.finishReason === null));
    }
    // Plain completions too.
    const prompt = 'Subject: lunch';
    const plain = await client.json<{ choices: Array<{ text: string }> }>('/openai/v1/completions', {
      method: 'POST',
      body: { model: 'ham-chat', prompt, max_tokens: 40, temperature: 0 },
    });
    let streamed = '';
    for await (const c of client.completionStream({ model: 'ham-chat', prompt, max_tokens: 40, temperature: 0 }))
      streamed = c.text;
    assert.equal(streamed, plain.choices[0]!.text);
  });

  test('token stream: an abort mid-stream stops the loop with AbortedError', async () => {
    const ctl = new AbortController();
    const req = { model: 'ham-chat', messages, max_tokens: 100, temperature: 0 };
    const whole = await completion(req);
    let got = 0;
    await assert.rejects(async () => {
      for await (const c of client.chatStream(req, { signal: ctl.signal })) {
        got++;
        assert.ok(c.token.length > 0);
        if (got === 3) ctl.abort();
      }
    }, AbortedError);
    assert.equal(got, 3, 'no chunk after the abort');
    assert.ok(whole.usage.completion_tokens > 3);
  });

  test('token stream errors are the typed classes of their codes', async () => {
    await assert.rejects(
      async () => {
        for await (const _ of client.chatStream({ model: 'silero-vad', messages })) {
          /* none */
        }
      },
      (e: unknown) => e instanceof InvalidInputError && e.code === 'model-not-generative',
    );
    await assert.rejects(
      async () => {
        for await (const _ of client.chatStream({ model: 'nope', messages })) {
          /* none */
        }
      },
      (e: unknown) => e instanceof NotFoundError && e.code === 'model-not-found',
    );
    await assert.rejects(
      async () => {
        for await (const _ of client.chatStream({
          model: 'ham-chat',
          messages: [{ role: 'user', content: 'x'.repeat(500) }],
        })) {
          /* none */
        }
      },
      (e: unknown) => e instanceof InvalidInputError && e.code === 'context-length-exceeded',
    );
    await assert.rejects(
      async () => {
        for await (const _ of client.chatStream({ model: 'ham-chat', messages, temperature: 9 })) {
          /* none */
        }
      },
      (e: unknown) => e instanceof InvalidInputError && e.errors.some((i) => i.pointer === '/temperature'),
    );
  });
});
