// Reliability (issue 24, item 8): secrets are redacted wherever the configuration is printed — the
// admin API and `ferry config` — and a webhook URL with credentials is refused at start.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { CLI_PATH, startTestServer, tinyClassifier, withTestAdminKey, adminHeaders } from '@ferry/test-kit';

const SECRETS = {
  FERRY_REDIS_URL: 'redis://:redis-pass-123@127.0.0.1:1/0',
  FERRY_STORE_URL: 'postgres://ferry:pg-pass-456@127.0.0.1:1/ferry',
  FERRY_ALERTS_SECRET: 'alert-secret-789',
  FERRY_JOBS_WEBHOOKS_SECRET: 'job-secret-abc',
};
const CLEAR = ['redis-pass-123', 'pg-pass-456', 'alert-secret-789', 'job-secret-abc'];

test('GET /v1/admin/config shows no secret', async () => {
  const cls = tinyClassifier();
  const ts = await startTestServer(
    [{ name: 'cls', version: '1.0.0', files: { onnx: cls.onnx, manifest: cls.manifest } }],
    {
      ...withTestAdminKey(),
      'alerts.secret': SECRETS.FERRY_ALERTS_SECRET,
      'jobs.webhooks.secret': SECRETS.FERRY_JOBS_WEBHOOKS_SECRET,
    },
  );
  try {
    const r = await ts.server.app.inject({ url: '/v1/admin/config', headers: adminHeaders });
    assert.equal(r.statusCode, 200);
    for (const s of CLEAR) assert.ok(!r.body.includes(s), `${s} shown`);
    assert.equal(r.json().alerts.secret, '[redacted]');
    assert.equal(r.json().jobs.webhooks.secret, '[redacted]');
  } finally {
    await ts.close();
  }
});

test('`ferry config` redacts passwords, secrets and digests unless --show-secrets', () => {
  const env = { ...process.env, ...SECRETS };
  for (const args of [['config'], ['config', '--json']]) {
    const r = spawnSync(process.execPath, [CLI_PATH, ...args], { env, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    for (const s of CLEAR) assert.ok(!r.stdout.includes(s), `${args.join(' ')} printed ${s}`);
    assert.match(r.stdout, /\[redacted\]/);
  }
  const clear = spawnSync(process.execPath, [CLI_PATH, 'config', '--show-secrets'], { env, encoding: 'utf8' });
  assert.ok(clear.stdout.includes('alert-secret-789'));
});

test('an alert webhook URL with user:pass@ is refused at start, without printing the password', () => {
  const r = spawnSync(process.execPath, [CLI_PATH, 'config'], {
    env: { ...process.env, FERRY_ALERTS_WEBHOOK_URL: 'https://ops:hunter2@hooks.example.com/alerts' },
    encoding: 'utf8',
  });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /alerts\.webhookUrl: credentials in the URL/);
  assert.ok(!`${r.stderr}${r.stdout}`.includes('hunter2'));
});
