// `ferry chat` as a user runs it (a child process), scripted with --message: against a running server
// (--url) and with its own in-process server (--models); both print the same greedy reply the API gives.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startTestServer, type TestServer, tinyGenerativeModel } from '@ferry/test-kit';

const CLI = fileURLToPath(new URL('../../../cli/main.js', import.meta.url));
let t: TestServer;
let url: string;

before(async () => {
  t = await startTestServer([tinyGenerativeModel('tiny-gpt', { contextLength: 256, seed: 5 })], {
    'server.port': 0,
    'server.host': '127.0.0.1',
  });
  url = (await t.server.listen()).url;
});
after(async () => {
  await t?.close();
});

function run(args: string[], input?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, 'chat', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    p.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    p.on('close', (code) => resolve({ code, stdout, stderr }));
    p.stdin.end(input ?? '');
  });
}

async function apiReply(messages: { role: string; content: string }[]): Promise<string> {
  const res = await t.server.app.inject({
    method: 'POST',
    url: '/openai/v1/chat/completions',
    payload: { model: 'tiny-gpt', messages, max_tokens: 12, temperature: 0 },
  });
  return (res.json() as { choices: { message: { content: string } }[] }).choices[0]!.message.content;
}

test('ferry chat --url prints the streamed greedy replies of a two-turn conversation', async () => {
  const r = await run([
    'tiny-gpt',
    '--url',
    url,
    '--message',
    'hello',
    '--message',
    'again',
    '--max-tokens',
    '12',
    '--temperature',
    '0',
  ]);
  assert.equal(r.code, 0, r.stderr);
  const first = await apiReply([{ role: 'user', content: 'hello' }]);
  const second = await apiReply([
    { role: 'user', content: 'hello' },
    { role: 'assistant', content: first },
    { role: 'user', content: 'again' },
  ]);
  // A reply cut by max_tokens is marked " […]".
  assert.equal(r.stdout, `${first} […]\n${second} […]\n`);
});

test('ferry chat with its own in-process server (--models) answers the same, reading messages from stdin', async () => {
  const r = await run(['tiny-gpt', '--models', t.repoDir, '--max-tokens', '12', '--temperature', '0'], 'hello\n');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `${await apiReply([{ role: 'user', content: 'hello' }])} […]\n`);
});

test("ferry chat: a bad flag exits 2, an unknown model exits 1 with the server's message", async () => {
  const bad = await run(['tiny-gpt', '--url', url, '--temperature', 'warm', '--message', 'x']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--temperature must be a number/);
  const unknown = await run(['nope', '--url', url, '--message', 'x']);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /404: model "nope" does not exist/);
});
