// Alerts against a real local webhook receiver: hysteresis, delays, signatures, retries, give-up.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { AlertManager, type AlertNotification, type AlertsConfig } from '../../monitoring/alerting.js';
import { verifyWebhook, webhookSigner } from '../../webhooks/index.js';

interface Received {
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

async function receiver(
  respond: (n: number) => number = () => 200,
): Promise<{ url: string; got: Received[]; close(): Promise<void> }> {
  const got: Received[] = [];
  let calls = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString();
    });
    req.on('end', () => {
      const status = respond(++calls);
      if (status === 200) got.push({ body, headers: req.headers });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}/hook`, got, close: () => new Promise((r) => server.close(() => r())) };
}

const config = (over: Partial<AlertsConfig>): AlertsConfig => ({
  webhookUrl: '',
  secret: 'shh',
  previousSecrets: [],
  intervalSeconds: 60,
  timeoutMs: 2000,
  maxAttempts: 4,
  backoffMs: 10,
  maxQueue: 100,
  rules: [
    { name: 'drift', kind: 'drift' },
    { name: 'slow', kind: 'latency' },
    { name: 'errors', kind: 'error-rate', threshold: 0.1 },
  ],
  ...over,
});
const until = async (cond: () => boolean) => {
  for (let i = 0; i < 1000 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
};

test('one firing per episode and one resolved, signed; evaluate never waits for delivery', async () => {
  const r = await receiver();
  const delivered: AlertNotification[] = [];
  const m = new AlertManager(config({ webhookUrl: r.url }), { onDelivered: (n) => delivered.push(n) });
  try {
    const drift = (on: boolean) => ({
      model: 'm',
      version: '1.0.0',
      drift: { datasetDrift: on, share: on ? 0.6 : 0, driftedColumns: on ? ['a', 'b'] : [] },
      p99Ms: 20,
      slaP99Ms: 50,
      errorRate: 0,
    });
    assert.deepEqual(m.evaluate([drift(false)]), []);
    const fired = m.evaluate([drift(true)]);
    assert.deepEqual(
      fired.map((n) => [n.rule, n.status]),
      [['drift', 'firing']],
    );
    for (let i = 0; i < 5; i++) assert.deepEqual(m.evaluate([drift(true)]), [], 'still the same episode');
    assert.deepEqual(
      m.evaluate([drift(false)]).map((n) => [n.rule, n.status]),
      [['drift', 'resolved']],
    );
    assert.deepEqual(m.evaluate([drift(false)]), []);
    await until(() => r.got.length === 2);
    assert.equal(r.got.length, 2);
    const [a, b] = r.got.map((g) => JSON.parse(g.body) as AlertNotification);
    assert.equal(a!.status, 'firing');
    assert.deepEqual(a!.value, ['a', 'b']);
    assert.equal(b!.status, 'resolved');
    assert.equal(a!.fingerprint, b!.fingerprint);
    for (const g of r.got) {
      assert.ok(verifyWebhook(g.body, g.headers, ['shh']), 'the receiver verifies the signature');
      assert.ok(!verifyWebhook(g.body, g.headers, ['wrong']), 'a wrong secret fails');
      assert.ok(!verifyWebhook(`${g.body} `, g.headers, ['shh']), 'a changed body fails');
      assert.match(String(g.headers['webhook-id']), /^alert_[0-9a-f]{32}$/);
    }
    assert.notEqual(r.got[0]!.headers['webhook-id'], r.got[1]!.headers['webhook-id'], 'firing and resolved differ');
    // The receiver records a request before it answers; the sender counts a delivery once the answer is back.
    await until(() => delivered.length === 2);
    assert.equal(delivered.length, 2);
  } finally {
    m.close();
    await r.close();
  }
});

test('latency over the SLA and error rate over the threshold; forSeconds delays firing', async () => {
  let now = 1_000_000;
  const m = new AlertManager(
    config({
      rules: [
        { name: 'slow', kind: 'latency', forSeconds: 60 },
        { name: 'errors', kind: 'error-rate', threshold: 0.1, model: 'm' },
      ],
    }),
    {},
    undefined,
    () => now,
  );
  const o = (p99Ms: number, errorRate: number, model = 'm') => ({
    model,
    version: '1',
    p99Ms,
    slaP99Ms: 50,
    errorRate,
  });
  assert.deepEqual(
    m.evaluate([o(80, 0.2), o(80, 0.5, 'other')]).map((n) => `${n.rule}:${n.status}:${n.model}`),
    ['errors:firing:m'],
    'the error rule is for model m only; latency waits 60 s',
  );
  now += 30_000;
  assert.deepEqual(m.evaluate([o(80, 0.2)]), []);
  now += 31_000;
  assert.deepEqual(
    m.evaluate([o(80, 0.2)]).map((n) => `${n.rule}:${n.status}`),
    ['slow:firing'],
  );
  assert.deepEqual(
    m.evaluate([o(40, 0.0)]).map((n) => `${n.rule}:${n.status}`),
    ['slow:resolved', 'errors:resolved'],
  );
  now += 1000;
  m.evaluate([o(80, 0)]);
  now += 1000;
  assert.deepEqual(m.evaluate([o(40, 0)]), [], 'a blip shorter than forSeconds never fires, so nothing resolves');
  m.close();
});

test('retries 5xx with backoff, does not retry 4xx, gives up after maxAttempts', async () => {
  const flaky = await receiver((n) => (n <= 2 ? 503 : 200));
  const m1 = new AlertManager(config({ webhookUrl: flaky.url, rules: [{ name: 'errors', kind: 'error-rate' }] }));
  m1.evaluate([{ model: 'm', version: '1', errorRate: 1 }]);
  await until(() => flaky.got.length === 1);
  assert.equal(flaky.got.length, 1, 'delivered once after two 503s');
  m1.close();
  await flaky.close();

  const failures: string[] = [];
  const refusing = await receiver(() => 400);
  let calls = 0;
  const m2 = new AlertManager(config({ webhookUrl: refusing.url, rules: [{ name: 'errors', kind: 'error-rate' }] }), {
    onFailed: (_n, why) => failures.push(why),
  });
  const origFetch = globalThis.fetch;
  globalThis.fetch = (async (...args: Parameters<typeof fetch>) => {
    calls++;
    return origFetch(...args);
  }) as typeof fetch;
  try {
    m2.evaluate([{ model: 'm', version: '1', errorRate: 1 }]);
    await until(() => failures.length === 1);
    assert.deepEqual(failures, ['HTTP 400']);
    assert.equal(calls, 1, 'a 4xx is not retried');
  } finally {
    globalThis.fetch = origFetch;
    m2.close();
    await refusing.close();
  }

  const down: string[] = [];
  const m3 = new AlertManager(
    config({ webhookUrl: 'http://127.0.0.1:1/hook', maxAttempts: 3, rules: [{ name: 'errors', kind: 'error-rate' }] }),
    { onFailed: (_n, why) => down.push(why) },
  );
  const t0 = Date.now();
  m3.evaluate([{ model: 'm', version: '1', errorRate: 1 }]);
  assert.ok(Date.now() - t0 < 50, 'evaluate returned before any delivery attempt finished');
  await until(() => down.length === 1);
  assert.equal(down.length, 1, 'gave up after maxAttempts');
  m3.close();
});

test('Standard Webhooks: the example of the specification, rotation and tolerance', () => {
  // The example in the Standard Webhooks specification (secret, id, timestamp, body -> signature).
  const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
  const sign = webhookSigner([secret])!;
  const h = sign('msg_p5jXN8AQM9LWM0D4loKWxJek', '{"test": 2432232314}', new Date(1_614_265_330_000));
  assert.equal(h['webhook-signature'], 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
  assert.equal(h['webhook-timestamp'], '1614265330');
  // Rotation: both secrets sign, a receiver holding either verifies.
  const next = 'whsec_' + Buffer.from('a new key of thirty-two bytes!!!').toString('base64');
  const both = webhookSigner([next, secret])!('msg_1', '{}');
  assert.equal(both['webhook-signature'].split(' ').length, 2);
  assert.ok(verifyWebhook('{}', both, [secret]));
  assert.ok(verifyWebhook('{}', both, [next]));
  assert.ok(!verifyWebhook('{}', both, ['whsec_' + Buffer.from('another key').toString('base64')]));
  // Older than the standard's five-minute tolerance: refused.
  const old = webhookSigner([secret])!('msg_2', '{}', new Date(Date.now() - 10 * 60_000));
  assert.ok(!verifyWebhook('{}', old, [secret]));
  assert.equal(webhookSigner(['']), undefined, 'no secret: unsigned');
});

test('Standard Webhooks: a Python receiver following the specification verifies what Ferry signs', async (ctx) => {
  const secret = 'whsec_' + Buffer.from('python receiver key 0123456789ab').toString('base64');
  const body = JSON.stringify({ status: 'firing', model: 'm', value: ['ü'] });
  const h = webhookSigner([secret, 'whsec_' + Buffer.from('old key').toString('base64')])!('alert_1', body);
  // Written from the specification (base64 key after "whsec_", HMAC-SHA256 over "id.timestamp.body").
  const script = [
    'import base64, hashlib, hmac, sys, json',
    'a = json.loads(sys.argv[1])',
    'key = base64.b64decode(a["secret"].split("_", 1)[1])',
    'msg = (a["id"] + "." + a["ts"] + "." + a["body"]).encode()',
    'want = base64.b64encode(hmac.new(key, msg, hashlib.sha256).digest()).decode()',
    'got = [s.split(",", 1)[1] for s in a["sig"].split(" ")]',
    'print("ok" if any(hmac.compare_digest(want, g) for g in got) else "bad")',
  ].join('\n');
  const arg = JSON.stringify({
    secret,
    id: h['webhook-id'],
    ts: h['webhook-timestamp'],
    body,
    sig: h['webhook-signature'],
  });
  try {
    const { stdout } = await promisify(execFile)('/usr/bin/python3', ['-c', script, arg]);
    assert.equal(stdout.trim(), 'ok');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return ctx.skip('no /usr/bin/python3');
    throw e;
  }
});
