import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from './load.js';
import { ConfigError } from './load.js';
import { redactConfig } from './redact.js';

test('secrets and URL credentials are redacted wherever they sit in the config', () => {
  const cfg = loadConfig({
    env: {},
    overrides: {
      'redis.url': 'redis://:redispass@127.0.0.1:6379/0',
      'store.url': 'postgres://ferry:pgpass@db.internal:5432/ferry',
      'alerts.secret': 'alert-signing-secret',
      'jobs.webhooks.secret': 'job-signing-secret',
      'auth.keys': [{ id: 'k', sha256: 'a'.repeat(64), scopes: ['predict'], models: [], rateLimitMax: 0 }],
    },
  });
  const text = JSON.stringify(redactConfig(cfg));
  for (const secret of ['redispass', 'pgpass', 'alert-signing-secret', 'job-signing-secret', 'a'.repeat(64)])
    assert.ok(!text.includes(secret), `${secret} printed`);
  const r = redactConfig(cfg);
  assert.equal(r.store.url, 'postgres://[redacted]@db.internal:5432/ferry');
  assert.equal(r.alerts.secret, '[redacted]');
  assert.equal(r.auth.keys[0]!.id, 'k');
  // Unset secrets stay visibly unset.
  assert.equal(redactConfig(loadConfig({ env: {} })).alerts.secret, '');
});

test('a webhook URL with credentials is refused at start, with a clear message', () => {
  assert.throws(
    () => loadConfig({ env: {}, overrides: { 'alerts.webhookUrl': 'https://user:hunter2@hooks.example.com/a' } }),
    (e: unknown) =>
      e instanceof ConfigError &&
      /alerts\.webhookUrl: credentials in the URL/.test(e.message) &&
      !e.message.includes('hunter2'),
  );
  assert.throws(
    () => loadConfig({ env: {}, overrides: { 'jobs.webhooks.allow': ['https://u:p@hooks.example.com/'] } }),
    /jobs\.webhooks\.allow\[0\]/,
  );
});
