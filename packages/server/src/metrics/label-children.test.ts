import { test } from 'node:test';
import assert from 'node:assert/strict';
import { labelChildren } from './label-children.js';

test('one child per key, made once; past the bound made afresh and not kept', () => {
  let made = 0;
  const child = labelChildren((labels: { a: string }) => ({ labels, n: ++made }), 2);
  const x = child('x', () => ({ a: 'x' }));
  assert.equal(
    child('x', () => ({ a: 'x' })),
    x,
  );
  assert.deepEqual(x.labels, { a: 'x' });
  child('y', () => ({ a: 'y' }));
  const z1 = child('z', () => ({ a: 'z' }));
  const z2 = child('z', () => ({ a: 'z' }));
  assert.notEqual(z1, z2);
  assert.equal(made, 4);
});
