import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AnswerMemo, type MemoAnswer } from './answer-memo.js';
import type { ModelVersion } from '../repository/index.js';

const version = { name: 'm', version: '1.0.0', key: 'm@1.0.0' } as ModelVersion;
const answer = (payload: string): MemoAnswer => ({ version, payload, predictions: [] });
const body = (s: string) => Buffer.from(s);

test('an answer is found by the same bytes, version and content only', () => {
  const memo = new AnswerMemo(1 << 20);
  const k = memo.key('m@1.0.0', 'c1', body('{"instances":[1]}'));
  memo.set(k, answer('A'), Date.now() + 60_000);
  assert.equal(memo.get(memo.key('m@1.0.0', 'c1', body('{"instances":[1]}')))?.payload, 'A');
  assert.equal(memo.get(memo.key('m@1.0.0', 'c1', body('{"instances":[1]} '))), undefined);
  assert.equal(memo.get(memo.key('m@1.0.0', 'c2', body('{"instances":[1]}'))), undefined);
  assert.equal(memo.get(memo.key('m@2.0.0', 'c1', body('{"instances":[1]}'))), undefined);
});

test('an answer lives until its freshUntil, and one already stale is not kept', async () => {
  const memo = new AnswerMemo(1 << 20);
  memo.set('a', answer('A'), Date.now() + 40);
  memo.set('b', answer('B'), Date.now() - 1);
  assert.equal(memo.get('a')?.payload, 'A');
  assert.equal(memo.get('b'), undefined);
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(memo.get('a'), undefined);
});

test('bounded in bytes: the least recently used answer leaves first', () => {
  // Each entry counts 2 bytes a character plus 256: three 1,000-character answers do not fit in 5,000.
  const memo = new AnswerMemo(5000);
  const until = Date.now() + 60_000;
  memo.set('a', answer('x'.repeat(1000)), until);
  memo.set('b', answer('y'.repeat(1000)), until);
  assert.ok(memo.get('a'));
  memo.set('c', answer('z'.repeat(1000)), until);
  assert.ok(memo.get('a'), 'used last, kept');
  assert.equal(memo.get('b'), undefined, 'least recently used, evicted');
  assert.ok(memo.get('c'));
});

test('0 bytes: off', () => {
  const memo = new AnswerMemo(0);
  assert.equal(memo.enabled, false);
  memo.set('a', answer('A'), Date.now() + 60_000);
  assert.equal(memo.get('a'), undefined);
});
