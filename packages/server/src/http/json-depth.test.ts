import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsonDepth } from './json-depth.js';

test('jsonDepth counts brackets outside strings only', () => {
  assert.equal(jsonDepth('1'), 0);
  assert.equal(jsonDepth('{"a":[1,[2]]}'), 3);
  assert.equal(jsonDepth('{"a":"[[[[{{{"}'), 1);
  assert.equal(jsonDepth('{"a":"\\"[[["}'), 1);
  assert.equal(jsonDepth('['.repeat(100_000) + ']'.repeat(100_000)), 100_000);
  // Stops early once past the limit.
  assert.equal(jsonDepth('['.repeat(1000), 64), 65);
});
