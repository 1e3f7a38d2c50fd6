// @ferry/client/react hooks rendered by react-dom in a DOM (happy-dom, @testing-library/react) against
// a real Ferry server over the example repository: spam for predictions and jobs, ham-chat for token
// streams, silero-vad for audio. The client's fetch is wrapped only to count and inspect requests.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createElement, type ReactNode } from 'react';
import WebSocket from 'ws';
import { createServer, loadConfig, type FerryServer } from '@ferry/server';
import {
  createClient,
  InvalidInputError,
  NotFoundError,
  type ClassificationPrediction,
  type FerryClient,
} from '@ferry/client';
import { FerryProvider, useAudioStream, useJob, usePrediction, useTokenStream } from '@ferry/client/react';
import { installDom } from '../dom.js';
import { noEspeak, speechTrack } from '../speech.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../../../..');
const SPAM = 'WIN a FREE iPhone now!!! Click http://example.com to claim your prize';
const HAM = 'Thanks for the patch, I applied it to the kernel tree and the build works now.';

describe('React hooks against a real Ferry server', () => {
  let server: FerryServer;
  let base: string;
  let client: FerryClient;
  let removeDom: () => Promise<void>;
  let rtl: typeof import('@testing-library/react');
  const calls: Array<{ url: string; signal: AbortSignal | undefined; at: number }> = [];
  let onCall: (() => void) | undefined;
  /** Resolves as the next request leaves the client (before any answer can arrive). */
  const nextCall = () =>
    new Promise<void>((r) => {
      onCall = r;
    });

  before(async () => {
    removeDom = installDom();
    rtl = await import('@testing-library/react');
    server = await createServer(
      loadConfig({
        env: {},
        overrides: {
          'models.dir': join(root, 'models'),
          'models.only': ['spam', 'silero-vad', 'ham-chat'],
          'runtime.workers': 1,
          'runtime.warmupRuns': 1,
          'log.level': 'silent',
          'store.url': 'sqlite::memory:',
          'web.timeseriesIntervalSeconds': 0,
          'jobs.chunkSize': 16,
          'server.port': 0,
          'server.host': '127.0.0.1',
        },
      }),
      { logger: false },
    );
    await server.loaded;
    base = (await server.listen()).url;
    client = createClient({
      baseUrl: base,
      retry: { retries: 0 },
      WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
      fetch: (input, init) => {
        calls.push({ url: String(input), signal: init?.signal ?? undefined, at: Date.now() });
        const f = fetch(input, init);
        onCall?.();
        onCall = undefined;
        return f;
      },
    });
  });
  after(async () => {
    rtl?.cleanup();
    await server?.close();
    await removeDom?.();
  });

  const wrapper = ({ children }: { children: ReactNode }) => createElement(FerryProvider, { client }, children);
  const predictCalls = () => calls.filter((c) => c.url.includes('/predict'));

  test("usePrediction: loading, then the server's prediction; a new input replaces it", async () => {
    const direct = await client.predict('spam', [{ text: SPAM }, { text: HAM }]);
    const seen: Array<{ loading: boolean; label?: string }> = [];
    const { result, rerender, unmount } = rtl.renderHook(
      ({ text }: { text: string }) => {
        const s = usePrediction('spam', [{ text }]);
        seen.push({
          loading: s.loading,
          label: (s.data?.predictions[0] as ClassificationPrediction | undefined)?.label,
        });
        return s;
      },
      { wrapper, initialProps: { text: SPAM } },
    );
    await rtl.waitFor(() => assert.ok(result.current.data));
    const p = result.current.data!.predictions[0] as ClassificationPrediction;
    const ref = direct.predictions[0] as ClassificationPrediction;
    assert.equal(p.label, 'spam');
    assert.ok(Math.abs(p.scores.spam! - ref.scores.spam!) < 1e-6, `${p.scores.spam} vs ${ref.scores.spam}`);
    assert.equal(result.current.loading, false);
    assert.equal(result.current.error, undefined);
    assert.ok(
      seen.some((s) => s.loading && s.label === undefined),
      'a loading state came before the data',
    );

    rerender({ text: HAM });
    await rtl.waitFor(() =>
      assert.equal((result.current.data?.predictions[0] as ClassificationPrediction).label, 'ham'),
    );
    const q = result.current.data!.predictions[0] as ClassificationPrediction;
    assert.ok(Math.abs(q.scores.ham! - (direct.predictions[1] as ClassificationPrediction).scores.ham!) < 1e-6);
    unmount();
  });

  test('usePrediction: a contract error is the typed InvalidInputError with its field; null input sends nothing', async () => {
    const { result, unmount } = rtl.renderHook(() => usePrediction('spam', [{ txt: 'no text field' }]), { wrapper });
    await rtl.waitFor(() => assert.ok(result.current.error));
    assert.ok(result.current.error instanceof InvalidInputError);
    assert.equal((result.current.error as InvalidInputError).code, 'invalid-input');
    assert.ok(
      (result.current.error as InvalidInputError).errors.some((e) => e.pointer.startsWith('/instances/0')),
      JSON.stringify((result.current.error as InvalidInputError).errors),
    );
    assert.equal(result.current.loading, false);
    assert.equal(result.current.data, undefined);
    unmount();

    const before = predictCalls().length;
    const idle = rtl.renderHook(() => usePrediction('spam', null), { wrapper });
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(idle.result.current.loading, false);
    assert.equal(predictCalls().length, before);
    idle.unmount();
  });

  test('usePrediction: unmount cancels — no request after it, and the one in flight is aborted', async () => {
    let before = predictCalls().length;
    const debounced = rtl.renderHook(() => usePrediction('spam', [{ text: 'debounced' }], { debounceMs: 300 }), {
      wrapper,
    });
    assert.equal(debounced.result.current.loading, true);
    debounced.unmount();
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(predictCalls().length, before, 'unmounted during the debounce: no request was ever sent');

    before = predictCalls().length;
    const sent = nextCall();
    const inflight = rtl.renderHook(() => usePrediction('spam', [{ text: 'in flight' }]), { wrapper });
    await sent;
    assert.equal(predictCalls().length, before + 1);
    inflight.unmount();
    assert.equal(predictCalls().at(-1)!.signal?.aborted, true, 'the request in flight was aborted');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(predictCalls().length, before + 1, 'and none was sent after the unmount');

    // Typing fast: only the last input's answer lands.
    const typing = rtl.renderHook(
      ({ text }: { text: string }) => usePrediction('spam', [{ text }], { debounceMs: 50 }),
      { wrapper, initialProps: { text: 'W' } },
    );
    for (const text of ['WI', 'WIN', 'WIN a FREE', SPAM]) typing.rerender({ text });
    await rtl.waitFor(() => assert.ok(typing.result.current.data));
    assert.equal((typing.result.current.data!.predictions[0] as ClassificationPrediction).label, 'spam');
    typing.unmount();
  });

  test("useJob: follows a job's progress to completion with its result", async (t) => {
    const instances = Array.from({ length: 800 }, (_, i) => ({ text: i % 2 ? SPAM : `${HAM} ${i}` }));
    const job = await client.jobs.submit<{ predictions: ClassificationPrediction[] }>('spam', instances);
    const progress: number[] = [];
    const { result, unmount } = rtl.renderHook(
      () => {
        const s = useJob<{ predictions: ClassificationPrediction[] }>(job.id);
        if (typeof s.job?.progress === 'number') progress.push(s.job.progress);
        return s;
      },
      { wrapper },
    );
    await rtl.waitFor(() => assert.equal(result.current.done, true), { timeout: 60_000 });
    assert.equal(result.current.job!.state, 'completed');
    assert.equal(result.current.job!.result!.predictions.length, instances.length);
    assert.equal(result.current.job!.result!.predictions[1]!.label, 'spam');
    assert.equal(result.current.error, undefined);
    for (let i = 1; i < progress.length; i++)
      assert.ok(progress[i]! >= progress[i - 1]!, `progress went back: ${progress.join(',')}`);
    assert.equal(progress.at(-1), 1);
    t.diagnostic(`progress values rendered: ${[...new Set(progress)].map((p) => p.toFixed(2)).join(' ')}`);
    unmount();

    const missing = rtl.renderHook(() => useJob('00000000-0000-4000-8000-000000000000'), { wrapper });
    await rtl.waitFor(() => assert.ok(missing.result.current.error));
    assert.ok(missing.result.current.error instanceof NotFoundError);
    assert.equal((missing.result.current.error as NotFoundError).code, 'job-not-found');
    missing.unmount();
  });

  test('useTokenStream: text accumulates token by token to the non-streamed completion; stop and unmount abort', async () => {
    const req = {
      model: 'ham-chat',
      messages: [{ role: 'user' as const, content: 'meeting on friday' }],
      max_tokens: 80,
      temperature: 0,
    };
    const whole = await client.json<{ choices: Array<{ message: { content: string } }> }>(
      '/openai/v1/chat/completions',
      { method: 'POST', body: req },
    );
    const texts: string[] = [];
    const { result, unmount } = rtl.renderHook(
      () => {
        const s = useTokenStream();
        texts.push(s.text);
        return s;
      },
      { wrapper },
    );
    rtl.act(() => result.current.start(req));
    assert.equal(result.current.streaming, true);
    await rtl.waitFor(() => assert.equal(result.current.streaming, false), { timeout: 20_000 });
    assert.equal(result.current.error, undefined);
    assert.equal(result.current.text, whole.choices[0]!.message.content);
    const distinct = [...new Set(texts.filter(Boolean))];
    assert.ok(distinct.length >= 2, `rendered ${distinct.length} intermediate texts`);
    for (let i = 1; i < distinct.length; i++)
      assert.ok(distinct[i]!.startsWith(distinct[i - 1]!), 'each render extends the text');

    // An error is the typed error of its code.
    rtl.act(() => result.current.start({ ...req, model: 'silero-vad' }));
    await rtl.waitFor(() => assert.ok(result.current.error));
    const err: unknown = result.current.error;
    assert.ok(err instanceof InvalidInputError);
    assert.equal(err.code, 'model-not-generative');
    assert.equal(result.current.streaming, false);

    // stop() aborts the request: no error, not streaming.
    const n = calls.length;
    rtl.act(() => result.current.start({ ...req, max_tokens: 40 }));
    rtl.act(() => result.current.stop());
    assert.equal(result.current.streaming, false);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(result.current.error, undefined);
    assert.equal(calls.at(-1)!.signal?.aborted, true);
    assert.equal(calls.length, n + 1);

    rtl.act(() => result.current.start(req));
    unmount();
    assert.equal(calls.at(-1)!.signal?.aborted, true, 'unmount aborted the stream');
  });

  test('useAudioStream: opens a session, sends speech, reports its events', { skip: noEspeak }, async () => {
    const { audio, truth } = speechTrack(['The quick brown fox jumps over the lazy dog.', 'Thank you and goodbye.']);
    const { result, unmount } = rtl.renderHook(() => useAudioStream('silero-vad'), { wrapper });
    await rtl.waitFor(() => assert.equal(result.current.open, true));
    for (let i = 0; i < audio.length; i += 4000) result.current.send(audio.subarray(i, i + 4000));
    result.current.end();
    await rtl.waitFor(() => assert.equal(result.current.events.at(-1)?.type, 'done'), { timeout: 20_000 });
    const types = result.current.events.map((e) => e.type);
    assert.equal(types[0], 'ready');
    const ends = result.current.events.filter((e) => e.type === 'speech_end');
    assert.equal(ends.length, truth.length);
    ends.forEach((e, i) => assert.ok(e.type === 'speech_end' && Math.abs(e.startMs - truth[i]!.startMs) <= 150));
    await rtl.waitFor(() => assert.equal(result.current.open, false));
    assert.equal(result.current.error, undefined);
    unmount();

    // Bad audio: the server's error event becomes the hook's typed error.
    const bad = rtl.renderHook(() => useAudioStream('silero-vad', { format: 'f32' }), { wrapper });
    await rtl.waitFor(() => assert.equal(bad.result.current.open, true));
    bad.result.current.send(new Float32Array([0.5, Number.POSITIVE_INFINITY]));
    await rtl.waitFor(() => assert.ok(bad.result.current.error));
    const badError: unknown = bad.result.current.error;
    assert.ok(badError instanceof InvalidInputError);
    assert.equal(badError.code, 'invalid-audio');
    assert.equal(bad.result.current.open, false);
    assert.ok(bad.result.current.events.some((e) => e.type === 'error'));
    bad.unmount();

    const refused = rtl.renderHook(() => useAudioStream('spam'), { wrapper });
    await rtl.waitFor(() => assert.ok(refused.result.current.error));
    assert.ok(refused.result.current.error instanceof InvalidInputError);
    assert.equal((refused.result.current.error as InvalidInputError).code, 'not-streamable');
    refused.unmount();
  });
});
