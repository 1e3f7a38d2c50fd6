// Prompt compression end to end: a chat whose history does not fit the route's maxPromptTokens has its
// older turns summarised by the route's cheap tier, and the summary reaches the answering model in front
// of the newest turns. Two PROVIDER EMULATORS (labelled stand-ins for hosted OpenAI-compatible APIs): one
// answers, one summarises (and can be told to fail).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startLlmEmulator, startTestServer, type LlmEmulator, type TestServer } from '@ferry/test-kit';

let t: TestServer;
let client: OpenAI;
let main: LlmEmulator;
let summariser: LlmEmulator;

const PRICE = { inputPerMTok: 1, outputPerMTok: 1 };

before(async () => {
  main = await startLlmEmulator();
  summariser = await startLlmEmulator({
    // A labelled stand-in summary: which turns it was given, by their leading number.
    answer: (messages) => {
      const nums = (messages.at(-1)?.content.match(/^(user|assistant): (\d+)/gm) ?? []).map((l) => l.split(' ')[1]);
      return `the user and assistant discussed turns ${nums.join(',')}`;
    },
  });
  t = await startTestServer([], {
    'server.port': 0,
    'llm.providers': {
      big: { kind: 'openai', baseUrl: main.url, maxRetries: 0, prices: { 'big-1': PRICE } },
      small: { kind: 'openai', baseUrl: summariser.url, maxRetries: 0, prices: { 'small-1': PRICE } },
    },
    'llm.routes': {
      chat: {
        tiers: { cheap: [{ provider: 'small', model: 'small-1' }], main: [{ provider: 'big', model: 'big-1' }] },
        defaultTier: 'main',
        maxPromptTokens: 120,
        compress: { tier: 'cheap', maxSummaryTokens: 30 },
        cache: { exact: true },
      },
    },
    'llm.budgets': [{ scope: 'route', match: 'chat', window: 'day', tokens: 1_000_000 }],
  });
  const addr = await t.server.listen();
  client = new OpenAI({ baseURL: `${addr.url}/openai/v1`, apiKey: 'unused', maxRetries: 0 });
});

after(async () => {
  await t?.close();
  await main?.close();
  await summariser?.close();
});

const filler = 'lorem ipsum dolor sit amet consectetur '.repeat(2);
const history = (turns: number, tag = '') => [
  { role: 'system' as const, content: 'you are terse' },
  ...Array.from({ length: turns }, (_, i) => ({
    role: (i % 2 ? 'assistant' : 'user') as 'user' | 'assistant',
    content: `${i} ${tag}${filler}`,
  })),
  { role: 'user' as const, content: `final question ${tag}` },
];

const ask = (messages: ReturnType<typeof history>) =>
  client.chat.completions.create({ model: 'chat', messages, temperature: 0 }).withResponse();

async function compressed(outcome: string): Promise<number> {
  const m = await t.server.metrics.registry.getSingleMetric('ferry_llm_prompts_compressed_total')?.get();
  return (m?.values ?? []).filter((v) => v.labels.outcome === outcome).reduce((s, v) => s + v.value, 0);
}

test('older turns that do not fit are summarised by the cheap tier and sent in front of the newest', async () => {
  const s0 = summariser.requests.length;
  const { data, response } = await ask(history(12));
  assert.equal(data.choices[0]!.message.content, 'reply: final question ');
  assert.match(response.headers.get('ferry-llm-reason')!, /^default tier; (\d+) older turns summarised by cheap$/);
  const summarised = Number(/; (\d+) older/.exec(response.headers.get('ferry-llm-reason')!)![1]);

  // The summariser got the older turns, oldest first, as a transcript, with the summary's token limit.
  assert.equal(summariser.requests.length, s0 + 1);
  const sreq = summariser.requests.at(-1)!.body;
  assert.equal(sreq.max_tokens, 30);
  const transcript = (sreq.messages as { content: string }[])[1]!.content;
  assert.match(transcript, /^user: 0 lorem/);
  assert.doesNotMatch(transcript, /final question/);

  // The answering model got: the system prompt, the summary, the newest turns, the question.
  const sent = main.requests.at(-1)!.body.messages as { role: string; content: string }[];
  assert.equal(sent[0]!.content, 'you are terse');
  assert.equal(sent[1]!.role, 'system');
  const expected = Array.from({ length: summarised }, (_, i) => i).join(',');
  assert.equal(
    sent[1]!.content,
    `Summary of the earlier conversation: the user and assistant discussed turns ${expected}`,
  );
  assert.equal(sent.at(-1)!.content, 'final question ');
  assert.equal(sent.length, 2 + (12 - summarised) + 1, 'every turn is either summarised or sent');
  assert.ok(summarised >= 2 && summarised < 12, `${summarised} summarised`);
  assert.equal(sent[2]!.content.split(' ')[0], String(summarised), 'the turns after the summarised ones follow it');
  assert.equal(await compressed('ok'), 1);

  // The ledger counts both upstream calls for the one request.
  const spend = await t.server.llm!.ledgerSummary();
  const row = spend.byRoute.find((r) => r.group === 'chat')!;
  assert.deepEqual([row.requests, row.upstreamCalls], [1, 2]);

  // The same conversation again is an exact cache hit: no summary, no answer call.
  const again = await ask(history(12));
  assert.equal(again.response.headers.get('ferry-llm-cache'), 'exact');
  assert.equal(summariser.requests.length, s0 + 1);
});

test('a prompt that fits is not summarised', async () => {
  const s0 = summariser.requests.length;
  const { response } = await ask(history(2, 'short '));
  assert.equal(response.headers.get('ferry-llm-reason'), 'default tier');
  assert.equal(summariser.requests.length, s0);
  assert.equal((main.requests.at(-1)!.body.messages as unknown[]).length, 4);
});

test('a failing summariser leaves the plainly trimmed prompt, and the request succeeds', async () => {
  summariser.faults.push({ kind: 'status', status: 500 });
  const { data, response } = await ask(history(12, 'fail '));
  assert.equal(data.choices[0]!.message.content, 'reply: final question fail ');
  assert.match(response.headers.get('ferry-llm-reason')!, /summary failed, older turns trimmed$/);
  const sent = main.requests.at(-1)!.body.messages as { role: string; content: string }[];
  assert.equal(sent[0]!.content, 'you are terse');
  assert.ok(!sent.some((m) => m.content.startsWith('Summary of')), 'no summary');
  assert.ok(sent.length > 3, 'trimming kept more turns than with a summary');
  assert.equal(await compressed('failed'), 1);
});
