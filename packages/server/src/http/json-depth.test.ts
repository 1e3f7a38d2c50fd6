import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fewOpeners, jsonBodyParser, jsonDepth } from './json-depth.js';

test('jsonDepth counts brackets outside strings only', () => {
  assert.equal(jsonDepth('1'), 0);
  assert.equal(jsonDepth('{"a":[1,[2]]}'), 3);
  assert.equal(jsonDepth('{"a":"[[[[{{{"}'), 1);
  assert.equal(jsonDepth('{"a":"\\"[[["}'), 1);
  assert.equal(jsonDepth('['.repeat(100_000) + ']'.repeat(100_000)), 100_000);
  // Stops early once past the limit.
  assert.equal(jsonDepth('['.repeat(1000), 64), 65);
});

test('fewOpeners clears only texts that cannot nest past the limit', () => {
  assert.equal(fewOpeners('{"instances":[{"x":[1,2,3]}]}', 4), true);
  assert.equal(fewOpeners('{"instances":[{"x":[1,2,3]}]}', 3), false);
  // Brackets inside strings count too: an upper bound, never an underestimate.
  assert.equal(fewOpeners('{"a":"[[[["}', 2), false);
  assert.equal(fewOpeners('1', 0), true);
  // Many siblings at depth 2 are not cleared; the exact scan then decides (and allows them).
  const wide = `[${'[1],'.repeat(100)}[1]]`;
  assert.equal(fewOpeners(wide, 64), false);
  assert.equal(jsonDepth(wide, 64), 2);
});

test('the body parser refuses what nests too deep and parses the rest', () => {
  const parse = jsonBodyParser(
    {
      getDefaultJsonParser: () => (_req: unknown, text: string, done: (e: Error | null, v?: unknown) => void) =>
        done(null, JSON.parse(text)),
    } as never,
    3,
  );
  assert.deepEqual(parse('{"a":[[1]]}'), { a: [[1]] });
  assert.equal((parse(`[${'[1],'.repeat(50)}[1]]`) as unknown[]).length, 51);
  assert.throws(() => parse('{"a":[[[1]]]}'), /nests deeper than 3 levels/);
  assert.throws(() => parse('[[[[' + ']]]]'), /nests deeper than 3 levels/);
});
