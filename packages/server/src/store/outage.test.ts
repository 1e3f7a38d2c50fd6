import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isStoreOutage } from './outage.js';

test('store outages are told apart from other errors', () => {
  const coded = (code: string, message = 'x') => Object.assign(new Error(message), { code });
  assert.ok(isStoreOutage(coded('ECONNREFUSED')));
  assert.ok(isStoreOutage(coded('57P01')));
  assert.ok(isStoreOutage(coded('53300')));
  assert.ok(isStoreOutage(coded('SQLITE_BUSY')));
  assert.ok(isStoreOutage(coded('SQLITE_FULL')));
  assert.ok(isStoreOutage(new Error('timeout exceeded when trying to connect')));
  assert.ok(isStoreOutage(new Error('wrapped', { cause: coded('ECONNRESET') })));
  assert.ok(!isStoreOutage(coded('23505', 'duplicate key')));
  assert.ok(!isStoreOutage(new TypeError('x is undefined')));
  assert.ok(!isStoreOutage(undefined));
});
