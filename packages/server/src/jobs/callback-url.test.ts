// The callback allow-list (issue 24, item 12): entries match on the parsed origin and whole path
// segments, never as a string prefix.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkCallbackUrl } from './webhooks.js';
import { FerryError } from '../errors.js';

const ALLOW = ['https://hooks.example.com/hooks'];
const refused = (url: string, allow = ALLOW) =>
  assert.throws(
    () => checkCallbackUrl(url, allow),
    (e: unknown) => e instanceof FerryError && e.code === 'callback-not-allowed' && e.status === 400,
    url,
  );

test('an entry allows its own path and the paths under it', () => {
  assert.equal(checkCallbackUrl('https://hooks.example.com/hooks', ALLOW), 'https://hooks.example.com/hooks');
  assert.equal(
    checkCallbackUrl('https://hooks.example.com/hooks/a/b?x=1', ALLOW),
    'https://hooks.example.com/hooks/a/b?x=1',
  );
  assert.ok(checkCallbackUrl('https://hooks.example.com/ferry/x', ['https://hooks.example.com/ferry/']));
  assert.ok(checkCallbackUrl('https://HOOKS.example.com:443/hooks/x', ALLOW));
});

test('a string prefix of a segment, encoded separators and dot segments are refused', () => {
  refused('https://hooks.example.com/hooksevil');
  refused('https://hooks.example.com/hooks%2F..%2Fadmin');
  refused('https://hooks.example.com/hooks/..%2Fadmin');
  refused('https://hooks.example.com/hooks/%2e%2e/admin'); // normalised by URL to /admin
  refused('https://hooks.example.com/hooks/../admin');
  refused('https://hooks.example.com.evil.test/hooks');
  refused('https://hooks.example.com:8443/hooks');
  refused('http://hooks.example.com/hooks');
  refused('https://user:pass@hooks.example.com/hooks');
});
