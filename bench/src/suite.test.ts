import { test } from 'node:test';
import assert from 'node:assert/strict';
import { roundOrder } from './suite.js';

test('rows run as planned in odd rounds and reversed in even ones', () => {
  assert.deepEqual(roundOrder(4, 1), [0, 1, 2, 3]);
  assert.deepEqual(roundOrder(4, 2), [3, 2, 1, 0]);
  assert.deepEqual(roundOrder(4, 3), [0, 1, 2, 3]);
  assert.deepEqual(roundOrder(1, 2), [0]);
  assert.deepEqual(roundOrder(0, 1), []);
});

test('over two rounds each row follows a different neighbour in each', () => {
  const before = (order: number[], row: number) => order[order.indexOf(row) - 1];
  for (let row = 1; row < 5; row++) assert.notEqual(before(roundOrder(6, 1), row), before(roundOrder(6, 2), row));
});
