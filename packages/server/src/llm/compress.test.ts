// Unit tests of the compression plan: what is kept, what is summarised, and when a summary cannot help.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planCompression, summaryRequest, withSummary, SUMMARY_PREFIX } from './compress.js';
import type { ChatMessage } from './types.js';

// One token per character, to make the arithmetic visible.
const count = (ms: readonly ChatMessage[]) => ms.reduce((n, m) => n + m.content.length, 0);
const msgs: ChatMessage[] = [
  { role: 'system', content: 'S'.repeat(10) },
  { role: 'user', content: 'a'.repeat(20) },
  { role: 'assistant', content: 'b'.repeat(20) },
  { role: 'user', content: 'c'.repeat(20) },
  { role: 'assistant', content: 'd'.repeat(20) },
  { role: 'user', content: 'e'.repeat(20) },
];

test('the newest turns that fit next to the summary are kept, the older ones summarised', () => {
  // room = 100 - 30 - 16 = 54: the system prompt (10) and two turns (40).
  const plan = planCompression(msgs, 100, 30, count)!;
  assert.deepEqual(
    plan.kept.map((m) => m.content[0]),
    ['S', 'd', 'e'],
  );
  assert.deepEqual(
    plan.older.map((m) => m.content[0]),
    ['a', 'b', 'c'],
  );
  assert.equal(planCompression(msgs, 1000, 30, count), undefined, 'everything fits: nothing to summarise');
  assert.equal(planCompression(msgs, 40, 30, count), undefined, 'no room for a summary');
});

test('the summary request carries the transcript, the summary goes before the first kept turn', () => {
  const r = summaryRequest(
    { tier: 'x', maxSummaryTokens: 40, instructions: 'in {maxTokens} tokens' },
    msgs.slice(1, 3),
  );
  assert.equal(r.messages[0]!.content, 'in 40 tokens');
  assert.equal(r.messages[1]!.content, `user: ${'a'.repeat(20)}\n\nassistant: ${'b'.repeat(20)}`);
  assert.deepEqual([r.maxTokens, r.temperature, r.stream], [40, 0, false]);
  const merged = withSummary([msgs[0]!, msgs[5]!], ' they talked ');
  assert.deepEqual(
    merged.map((m) => [m.role, m.content[0]]),
    [
      ['system', 'S'],
      ['system', SUMMARY_PREFIX[0]],
      ['user', 'e'],
    ],
  );
  assert.equal(merged[1]!.content, `${SUMMARY_PREFIX}they talked`);
});
