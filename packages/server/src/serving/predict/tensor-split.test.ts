import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeWithinLimit } from './tensor-split.js';
import { FerryError } from '../../errors.js';
import type { TensorValue } from '@ferry/core';

// Rows of 65,536 elements (the spam model's hashed n-grams), as in issue 24: 62 rows are 4,063,232.
const encodeRows = (perRow: (i: number) => number) => (rows: readonly number[]) => {
  const width = Math.max(...rows.map(perRow));
  const t: TensorValue = { dtype: 'float32', dims: [rows.length, width], data: new Float32Array(0) };
  return { features: t };
};

test('a request over the tensor limit is split into groups that fit, in order', () => {
  const rows = Array.from({ length: 62 }, (_, i) => i);
  const groups = encodeWithinLimit(
    rows,
    encodeRows(() => 65_536),
    4_000_000,
  );
  assert.ok(groups.length >= 2);
  assert.deepEqual(
    groups.flatMap((g) => g.rows),
    rows,
  );
  for (const g of groups) assert.ok(g.rows.length * 65_536 <= 4_000_000);
  // Within the limit: one group, one encode.
  assert.equal(
    encodeWithinLimit(
      rows.slice(0, 61),
      encodeRows(() => 65_536),
      4_000_000,
    ).length,
    1,
  );
});

test('rows of varying width (padded sequences) still end in groups that fit', () => {
  const rows = Array.from({ length: 100 }, (_, i) => i);
  const groups = encodeWithinLimit(
    rows,
    encodeRows((i) => (i % 10 === 0 ? 5000 : 100)),
    20_000,
  );
  for (const g of groups)
    assert.ok(g.rows.length * Math.max(...g.rows.map((i) => (i % 10 === 0 ? 5000 : 100))) <= 20_000);
  assert.equal(groups.flatMap((g) => g.rows).length, 100);
});

test('a single row over the limit is tensor-too-large', () => {
  assert.throws(
    () =>
      encodeWithinLimit(
        [0, 1],
        encodeRows(() => 5_000_000),
        4_000_000,
      ),
    (e: unknown) => e instanceof FerryError && e.code === 'tensor-too-large' && /single instance/.test(e.detail),
  );
});
