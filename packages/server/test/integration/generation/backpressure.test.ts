// Backpressure of token streams with a client that stops reading. The server listens on a Unix socket
// here: its kernel buffer holds about 80 KB where a loopback TCP connection holds megabytes, so a
// stream of a few hundred tokens fills it and the test is quick; the server code path is the same.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer, type TestServer, tinyGenerativeModel } from '@ferry/test-kit';

const STALL_MS = 1500;
const MAX_TOKENS = 2000;
let t: TestServer;
let dir: string;
let socketPath: string;

before(async () => {
  t = await startTestServer([tinyGenerativeModel('tiny-gpt', { contextLength: 2048, seed: 5 })], {
    'generation.stallTimeoutMs': STALL_MS,
    'generation.creditTokens': 8,
  });
  dir = await mkdtemp(join(tmpdir(), 'ferry-bp-'));
  socketPath = join(dir, 's.sock');
  await t.server.app.listen({ path: socketPath });
});

after(async () => {
  await t?.close();
  await rm(dir, { recursive: true, force: true });
});

function openStream(): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { socketPath, method: 'POST', path: '/openai/v1/completions', headers: { 'content-type': 'application/json' } },
      resolve,
    );
    req.on('error', reject);
    req.end(
      JSON.stringify({
        model: 'tiny-gpt',
        prompt: 'Subject: backpressure',
        max_tokens: MAX_TOKENS,
        temperature: 0,
        stream: true,
      }),
    );
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function finished(reason: string): Promise<number> {
  const m = await t.server.metrics.registry.getSingleMetric('ferry_generation_finished_total')?.get();
  return m?.values.find((v) => v.labels.reason === reason)?.value ?? 0;
}

async function readAll(res: http.IncomingMessage): Promise<string> {
  let body = '';
  res.setEncoding('utf8');
  res.resume();
  await new Promise<void>((resolve) => {
    res.on('data', (c: string) => {
      body += c;
    });
    res.on('end', resolve);
    res.on('close', resolve);
  });
  return body;
}

let fullText = '';

test('a slow reader that keeps reading gets the whole stream', async () => {
  const before = await finished('length');
  const res = await openStream();
  res.pause();
  await sleep(STALL_MS / 3);
  res.resume();
  res.pause();
  await sleep(STALL_MS / 3);
  const body = await readAll(res);
  assert.ok(body.endsWith('data: [DONE]\n\n'));
  const text = body
    .split('\n\n')
    .filter((e) => e.startsWith('data: {'))
    .map((e) => (JSON.parse(e.slice(6)) as { choices: { text: string }[] }).choices[0]?.text ?? '')
    .join('');
  assert.ok(text.length > 0);
  fullText = text;
  assert.equal(await finished('length'), before + 1);
});

test('a client that stops reading pauses the generation, and past stallTimeoutMs the stream closes with stream-stalled', async () => {
  const res = await openStream();
  assert.equal(res.statusCode, 200);
  res.pause(); // stop reading: the socket fills, then the server's writes report a full buffer
  // The generation pauses: it is still running, and its token count stops moving well short of max_tokens.
  let paused: number | undefined;
  const deadline = Date.now() + 20_000;
  while (paused === undefined && Date.now() < deadline) {
    const a = t.server.generation.progress()[0]?.completionTokens;
    await sleep(250);
    const b = t.server.generation.progress()[0]?.completionTokens;
    if (a !== undefined && a === b && a > 0) paused = a;
  }
  assert.ok(paused !== undefined, 'the generation paused');
  assert.ok(paused < MAX_TOKENS, `paused after ${paused} tokens`);
  // Then the stall limit closes it; the worker is freed.
  while ((await finished('stalled')) < 1) {
    assert.ok(Date.now() < deadline + STALL_MS * 4, 'the stalled stream was closed');
    await sleep(50);
  }
  assert.equal(t.server.generation.active, 0);
  // A reader that wakes up finds what was sent, ended by the reason, without [DONE].
  const body = await readAll(res);
  const events = body.split('\n\n').filter(Boolean);
  const last = JSON.parse(events.at(-1)!.slice('data: '.length)) as { error: { code: string; message: string } };
  assert.equal(last.error.code, 'stream-stalled');
  assert.match(last.error.message, /did not read/);
  assert.ok(!body.includes('[DONE]'));
  // What reached the client is the start of the same greedy completion, nothing dropped or reordered,
  // and no more events than tokens produced (the server held nothing beyond them).
  const text = events
    .slice(0, -1)
    .map((e) => (JSON.parse(e.slice(6)) as { choices: { text: string }[] }).choices[0]!.text)
    .join('');
  assert.ok(text.length > 100, `${text.length} characters arrived`);
  assert.ok(fullText.startsWith(text), 'the stalled stream is a prefix of the full completion');
  assert.ok(events.length - 1 <= paused, `${events.length - 1} events for ${paused} tokens`);
});

test(
  'credit granted to several generations in one task reaches each (n=2, past the credit window)',
  { timeout: 30_000 },
  async () => {
    // Both choices' tokens arrive in one worker message and are acknowledged together, so their credit
    // goes back as one `credits` message; were it lost, both would stop after 8 tokens and never finish.
    const res = await t.server.app.inject({
      method: 'POST',
      url: '/openai/v1/completions',
      payload: { model: 'tiny-gpt', prompt: 'Subject: credit', max_tokens: 200, temperature: 0, n: 2 },
    });
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json<{ choices: { finish_reason: string }[]; usage: { completion_tokens: number } }>();
    assert.deepEqual(
      body.choices.map((c) => c.finish_reason),
      ['length', 'length'],
    );
    assert.equal(body.usage.completion_tokens, 400);
  },
);
