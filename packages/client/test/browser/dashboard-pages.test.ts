// The dashboard's stream and job pages in real Chromium against `ferry serve` over the example
// repository (as `npm start` runs it), each checked against the API's own answer for the same input:
// the VAD timeline against a WebSocket session of the same WAV, the chat reply against the
// non-streamed completion with the same settings, a job's live progress against its final document.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { createClient, decodeWav, type FerryClient, type SpeechEndEvent } from '@ferry/client';
import { noChromium, openBrowser, serve, shot, stop, type Browser, type Served } from './browser-helpers.js';
import { noEspeak, speechTrack, writeWav } from '../speech.js';

describe('dashboard pages against ferry serve (example repository)', { skip: noChromium }, () => {
  let srv: Served;
  let b: Browser;
  let client: FerryClient;
  const logs: string[] = [];
  before(async () => {
    // Progress reaches the page at most every 50 ms (250 by default): on a fast machine the jobs page's
    // 1,200-row job finishes in about half a second, which must still show a step between 0 and 1.
    srv = await serve({ FERRY_JOBS_CHUNK_SIZE: '16', FERRY_JOBS_EVENTS_MIN_PROGRESS_INTERVAL_MS: '50' }, logs);
    b = await openBrowser(logs);
    client = createClient({ baseUrl: srv.base, WebSocket: WebSocket as unknown as typeof globalThis.WebSocket });
  });
  after(async () => {
    await b?.close();
    await stop(srv?.child);
    assert.deepEqual(
      logs.filter((l) => l.startsWith('pageerror')),
      [],
    );
  });

  test(
    'VAD page: an uploaded speech WAV gives the same segments on the timeline as the streaming API',
    { skip: noEspeak },
    async (t) => {
      const { audio, truth } = speechTrack(
        [
          'The quick brown fox jumps over the lazy dog.',
          'Ferry carries models into production.',
          'Thank you and goodbye.',
        ],
        [1.0, 1.2, 0.9, 1.0],
      );
      const file = join(mkdtempSync(join(tmpdir(), 'ferry-vad-page-')), 'speech.wav');
      writeWav(file, audio);

      // The API's answer for the very samples the page will send.
      const bytes = readFileSync(file);
      const samples = decodeWav(
        bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer,
      );
      const s = client.audio('silero-vad');
      await s.send(samples);
      await s.end();
      const api: SpeechEndEvent[] = [];
      for await (const e of s) if (e.type === 'speech_end') api.push(e);
      assert.equal(api.length, truth.length, 'the API finds each phrase');

      const page = b.page;
      await page.goto(`${srv.base}/#/playground/silero-vad`);
      await page.getByTestId('vad-upload').setInputFiles(file);
      await page.waitForSelector('[data-testid="vad-timeline"][data-done="true"]');
      const shown = await page.getByTestId('vad-segment').evaluateAll((els) =>
        els.map((el) => ({
          start: Number(el.getAttribute('data-start-ms')),
          end: Number(el.getAttribute('data-end-ms')),
        })),
      );
      assert.equal(shown.length, api.length, JSON.stringify(shown));
      shown.forEach((seg, i) => {
        assert.ok(
          Math.abs(seg.start - api[i]!.startMs) <= 1,
          `segment ${i} start ${seg.start} vs API ${api[i]!.startMs}`,
        );
        assert.ok(Math.abs(seg.end - api[i]!.endMs) <= 1, `segment ${i} end ${seg.end} vs API ${api[i]!.endMs}`);
        assert.ok(
          Math.abs(seg.start - truth[i]!.startMs) <= 150 && Math.abs(seg.end - truth[i]!.endMs) <= 150,
          `segment ${i} near the truth`,
        );
      });
      assert.match(
        await page.locator('main').innerText(),
        new RegExp(`${api.length} speech segments in ${(samples.length / 16000).toFixed(1)} s`),
      );
      t.diagnostic(`segments (ms): ${shown.map((x) => `${x.start}–${x.end}`).join(', ')}`);
      await shot(page, 'playground-vad');
    },
  );

  /** Sends one chat message from the page and returns the reply and every streaming text seen on the way. */
  async function chat(
    message: string,
    settings: { temperature?: string; seed?: string; maxTokens?: string },
  ): Promise<{ reply: string; partials: string[] }> {
    const page = b.page;
    await page.getByTestId('chat-temperature').fill(settings.temperature ?? '');
    await page.getByTestId('chat-seed').fill(settings.seed ?? '');
    await page.getByTestId('chat-max-tokens').fill(settings.maxTokens ?? '');
    const before = await page.getByTestId('chat-assistant').count();
    await page.evaluate(() => {
      const w = window as unknown as { partials: string[]; observer?: MutationObserver };
      w.partials = [];
      w.observer?.disconnect();
      w.observer = new MutationObserver(() => {
        const el = document.querySelector('[data-testid="chat-streaming"]');
        if (el) w.partials.push(el.textContent ?? '');
      });
      w.observer.observe(document.body, { subtree: true, childList: true, characterData: true });
    });
    await page.getByTestId('chat-input').fill(message);
    await page.getByTestId('chat-send').click();
    await page.waitForFunction(
      (n) =>
        document.querySelectorAll('[data-testid="chat-assistant"]').length > n ||
        document.querySelector('[data-testid="chat-error"]'),
      before,
    );
    if (await page.getByTestId('chat-error').count())
      throw new Error(`the page shows an error: ${await page.getByTestId('chat-error').innerText()}`);
    const reply = await page
      .getByTestId('chat-assistant')
      .nth(before)
      .evaluate((el) => el.textContent ?? '');
    const partials = await page.evaluate(() =>
      (window as unknown as { partials: string[] }).partials.map((p) => p.replace(/▍$/, '')),
    );
    return { reply, partials };
  }

  test("chat page: tokens stream into the page and the reply equals the API's completion for the same settings", async (t) => {
    const page = b.page;
    await page.goto(`${srv.base}/#/playground/ham-chat`);
    await page.getByTestId('chat-input').waitFor();
    const completion = async (messages: Array<{ role: string; content: string }>, extra: object) =>
      (
        await client.json<{ choices: Array<{ message: { content: string } }> }>('/openai/v1/chat/completions', {
          method: 'POST',
          body: { model: 'ham-chat', messages, ...extra },
        })
      ).choices[0]!.message.content;

    // ham-chat's context is 128 byte-level tokens: the two turns stay inside it.
    const greedy = await chat('meeting on friday', { temperature: '0', maxTokens: '40' });
    const expected = await completion([{ role: 'user', content: 'meeting on friday' }], {
      temperature: 0,
      max_tokens: 40,
    });
    assert.ok(greedy.reply.length > 0);
    assert.equal(greedy.reply, expected);
    assert.ok(greedy.partials.length >= 1, 'the streaming bubble was shown');
    for (const p of greedy.partials) assert.ok(expected.startsWith(p), `partial "${p}" is a prefix of the reply`);
    t.diagnostic(
      `greedy: ${new Set(greedy.partials).size} distinct streaming texts rendered before the ${expected.length}-character reply`,
    );

    // The second turn carries the history; seeded sampling is reproducible too.
    const sampled = await chat('and lunch?', { temperature: '0.8', seed: '3', maxTokens: '20' });
    const expected2 = await completion(
      [
        { role: 'user', content: 'meeting on friday' },
        { role: 'assistant', content: expected },
        { role: 'user', content: 'and lunch?' },
      ],
      { temperature: 0.8, seed: 3, max_tokens: 20 },
    );
    assert.equal(sampled.reply, expected2);
    assert.ok(sampled.reply.length > 0);
    await shot(page, 'playground-chat');

    // The model's defaults (no settings) give a reply too, never a context error.
    await page.getByRole('button', { name: 'Clear' }).click();
    const dflt = await chat('hello', {});
    assert.ok(dflt.reply.length > 0);
    assert.equal(await page.getByTestId('chat-error').count(), 0);

    // A conversation longer than the 128-token context: the page forgets the oldest exchanges and
    // still answers every message.
    const turns = [
      'and lunch tomorrow at the usual place?',
      'please send the agenda before the meeting',
      'thanks, see you on friday then',
      'one more thing about the budget',
    ];
    for (const message of turns) {
      const r = await chat(message, {});
      assert.ok(r.reply.length > 0, `a reply to "${message}"`);
      if (await page.getByTestId('chat-forgotten').count()) break;
    }
    const forgotten = Number(await page.getByTestId('chat-forgotten').getAttribute('data-count'));
    assert.ok(forgotten >= 1, 'the oldest exchange was dropped to fit the context');
    assert.equal(await page.getByTestId('chat-error').count(), 0);
    t.diagnostic(`long conversation: ${forgotten} oldest exchange(s) forgotten`);
    await shot(page, 'playground-chat-long');
  });

  test("chat page on ham-gpt: the example chat model's reply is the API's, and it writes words", async (t) => {
    const page = b.page;
    await page.goto(`${srv.base}/#/playground/ham-gpt`);
    await page.getByTestId('chat-input').waitFor();
    const message = 'Re: perl script question';
    const got = await chat(message, { temperature: '0', maxTokens: '40' });
    const expected = (
      await client.json<{ choices: Array<{ message: { content: string } }> }>('/openai/v1/chat/completions', {
        method: 'POST',
        body: { model: 'ham-gpt', messages: [{ role: 'user', content: message }], temperature: 0, max_tokens: 40 },
      })
    ).choices[0]!.message.content;
    assert.equal(got.reply, expected);
    // A BPE model trained on mail: its greedy reply holds several English-looking words, not byte noise.
    const words = got.reply.match(/\b[A-Za-z]{3,}\b/g) ?? [];
    assert.ok(words.length >= 4, `words in "${got.reply}"`);
    t.diagnostic(`ham-gpt in the page: ${JSON.stringify(got.reply)}`);
    await shot(page, 'playground-chat-ham-gpt');
  });

  test("jobs page: a job's live progress rises to completion with the result of the API", async (t) => {
    const page = b.page;
    await page.goto(`${srv.base}/#/jobs`);
    await page.getByTestId('job-model').selectOption('spam');
    const instances = Array.from({ length: 1200 }, (_, i) => ({
      text: i % 3 ? `Lunch at ${i}? See you at the usual place.` : 'WIN a FREE iPhone now!!! Click to claim your PRIZE',
    }));
    await page.getByTestId('job-instances').fill(JSON.stringify(instances));
    await page.evaluate(() => {
      const w = window as unknown as { progress: string[] };
      w.progress = [];
      new MutationObserver(() => {
        const v = document.querySelector('[data-testid="job-view"]')?.getAttribute('data-progress');
        if (v) w.progress.push(v);
      }).observe(document.body, {
        subtree: true,
        attributes: true,
        attributeFilter: ['data-progress'],
        childList: true,
      });
    });
    await page.getByTestId('job-submit').click();
    await page.waitForSelector('[data-testid="job-view"][data-state="completed"]');
    const progress = (await page.evaluate(() => (window as unknown as { progress: string[] }).progress)).map(Number);
    for (let i = 1; i < progress.length; i++)
      assert.ok(progress[i]! >= progress[i - 1]!, `progress went back: ${progress.join(',')}`);
    assert.equal(progress.at(-1), 1);
    assert.ok(
      progress.some((p) => p > 0 && p < 1),
      `an intermediate progress was shown: ${progress.join(',')}`,
    );
    t.diagnostic(`progress shown: ${[...new Set(progress)].map((p) => p.toFixed(2)).join(' ')}`);
    const id = decodeURIComponent((await page.evaluate(() => location.hash)).split('/').at(-1)!);
    const job = await client.jobs.get<{ predictions: Array<{ label: string }> }>(id);
    assert.equal(job.state, 'completed');
    const shown = JSON.parse(await page.getByTestId('job-result').innerText()) as {
      predictions: Array<{ label: string }>;
    };
    assert.deepEqual(
      shown.predictions.map((p) => p.label),
      job.result!.predictions.map((p) => p.label),
    );
    assert.equal(shown.predictions.length, instances.length);
    await shot(page, 'jobs-progress');
  });
});
