// Drift end to end: a served model with reference data, live traffic logged to the store, and the
// drift report and gauges flipping when the traffic shifts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { seededRandom } from '@ferry/core';
import {
  startTestServer,
  adminHeaders,
  withTestAdminKey,
  tinyClassifier,
  type ClassifierInstance,
} from '@ferry/test-kit';
// Drift is an admin endpoint (off without keys): these tests run with the all-scopes test key.

const cls = tinyClassifier();
const COLORS = ['red', 'green', 'blue'];

function sample(seed: number, n: number, shift = false): ClassifierInstance[] {
  const r = seededRandom(seed);
  return Array.from({ length: n }, () => ({
    amount: Math.round((shift ? 300 + r() * 600 : r() * 200) * 100) / 100,
    items: Math.floor(r() * 11),
    member: r() < 0.5,
    color: shift ? (r() < 0.85 ? 'red' : 'blue') : COLORS[Math.floor(r() * 3)]!,
  }));
}

const label = (i: ClassifierInstance) => {
  const p = cls.reference(i);
  return p[1]! > p[0]! ? 'yes' : 'no';
};
const reference = sample(1, 400)
  .map((i) => JSON.stringify({ ...i, prediction: label(i) }))
  .join('\n');
const model = {
  ...cls,
  manifest: { ...cls.manifest, reference: 'reference.jsonl' },
  files: { 'reference.jsonl': reference },
};

async function send(t: Awaited<ReturnType<typeof startTestServer>>, rows: ClassifierInstance[]): Promise<void> {
  for (let i = 0; i < rows.length; i += 50) {
    const r = await t.server.app.inject({
      headers: adminHeaders,
      method: 'POST',
      url: '/v1/models/cls/predict',
      payload: { instances: rows.slice(i, i + 50) },
    });
    assert.equal(r.statusCode, 200, r.body);
  }
}

test('traffic like the reference shows no drift; shifted traffic flips the report and the gauges', async () => {
  const t = await startTestServer([{ name: 'cls', version: '1.0.0', files: model }], {
    ...withTestAdminKey(),
    'monitoring.driftMinSamples': 50,
    'limits.maxInstances': 100,
  });
  try {
    const empty = await t.server.app.inject({ headers: adminHeaders, url: '/v1/models/cls/drift?window=1h' });
    assert.equal(empty.statusCode, 200, empty.body);
    assert.equal(empty.json().status, 'insufficient-data');
    assert.match(empty.json().detail, /monitoring\.driftMinSamples/);

    await send(t, sample(2, 200));
    const calm = (await t.server.app.inject({ headers: adminHeaders, url: '/v1/models/cls/drift?window=1h' })).json();
    assert.equal(calm.status, 'ok');
    assert.equal(calm.current.rows, 200);
    assert.equal(calm.reference.rows, 400);
    assert.equal(calm.dataset.datasetDrift, false, JSON.stringify(calm.columns));
    const tests = Object.fromEntries(calm.columns.map((c: { column: string; test: string }) => [c.column, c.test]));
    assert.deepEqual(
      tests,
      { amount: 'ks', items: 'ks', member: 'z', color: 'chisquare', prediction: 'z' },
      "Evidently's choice for n_ref ≤ 1000",
    );

    // The window now holds the 200 calm predictions and 400 shifted ones.
    await send(t, sample(3, 400, true));
    const shifted = (
      await t.server.app.inject({ headers: adminHeaders, url: '/v1/models/cls/versions/1.0.0/drift?window=1h' })
    ).json();
    const drifted = shifted.columns
      .filter((c: { drift: boolean }) => c.drift)
      .map((c: { column: string }) => c.column)
      .sort();
    assert.ok(drifted.includes('amount') && drifted.includes('color'), JSON.stringify(shifted.columns));
    assert.ok(!drifted.includes('items') && !drifted.includes('member'), 'unshifted features stay calm');
    assert.equal(shifted.dataset.datasetDrift, true);

    const metrics = (await t.server.app.inject({ headers: adminHeaders, url: '/metrics' })).body;
    assert.match(metrics, /ferry_dataset_drift\{model="cls",version="1\.0\.0"\} 1/);
    assert.match(metrics, /ferry_drift_detected\{model="cls",version="1\.0\.0",column="amount"\} 1/);
    assert.match(metrics, /ferry_drift_detected\{model="cls",version="1\.0\.0",column="items"\} 0/);
    assert.match(metrics, /ferry_drift_score\{model="cls",version="1\.0\.0",column="amount",test="ks"\} /);
    assert.match(metrics, /ferry_prediction_log_entries_total\{result="written"\} 600/);

    const bad = await t.server.app.inject({ headers: adminHeaders, url: '/v1/models/cls/drift?window=forever' });
    assert.equal(bad.statusCode, 400);
    assert.match(bad.json().detail, /24h/);
  } finally {
    await t.close();
  }
});

test('per-column test and threshold overrides from ferry.yaml apply', async () => {
  const withOverrides = {
    ...model,
    manifest: {
      ...model.manifest,
      monitoring: { drift: { columns: { amount: { test: 'psi', threshold: 0.2 } }, datasetDriftShare: 0.2 } },
    },
  };
  const t = await startTestServer([{ name: 'cls', version: '1.0.0', files: withOverrides }], {
    ...withTestAdminKey(),
    'monitoring.driftMinSamples': 50,
    'limits.maxInstances': 100,
  });
  try {
    await send(t, sample(5, 100, true));
    const r = (await t.server.app.inject({ headers: adminHeaders, url: '/v1/models/cls/drift?window=1h' })).json();
    const amount = r.columns.find((c: { column: string }) => c.column === 'amount');
    assert.equal(amount.test, 'psi');
    assert.equal(amount.threshold, 0.2);
    assert.equal(r.dataset.driftShareThreshold, 0.2);
  } finally {
    await t.close();
  }
});

test('a model without reference data says so', async () => {
  const t = await startTestServer([{ name: 'cls', version: '1.0.0', files: cls }], withTestAdminKey());
  try {
    const r = await t.server.app.inject({ headers: adminHeaders, url: '/v1/models/cls/drift' });
    assert.equal(r.statusCode, 400);
    assert.match(r.json().detail, /reference data/);
  } finally {
    await t.close();
  }
});

test('shifted traffic makes a drift alert reach the webhook exactly once, signed', async () => {
  const { createServer: createHttpServer } = await import('node:http');
  const { verifyWebhook } = await import('../../webhooks/index.js');
  const got: Array<{ body: string; headers: Record<string, string | string[] | undefined> }> = [];
  const hook = createHttpServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString();
    });
    req.on('end', () => {
      got.push({ body, headers: req.headers });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(hook.address() as { port: number }).port}/alerts`;
  const t = await startTestServer([{ name: 'cls', version: '1.0.0', files: model }], {
    ...withTestAdminKey(),
    'monitoring.driftMinSamples': 50,
    'monitoring.driftIntervalSeconds': 1,
    'limits.maxInstances': 100,
    'alerts.webhookUrl': url,
    'alerts.secret': 'hook-secret',
    'alerts.intervalSeconds': 0.2,
    'alerts.rules': [{ name: 'cls-drift', kind: 'drift' }],
  });
  try {
    await send(t, sample(4, 300, true));
    for (let i = 0; i < 100 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 2500)); // several more drift and alert cycles
    assert.equal(got.length, 1, `one notification for the episode, got ${got.map((g) => g.body).join(' ')}`);
    const n = JSON.parse(got[0]!.body);
    assert.equal(n.status, 'firing');
    assert.equal(n.rule, 'cls-drift');
    assert.equal(n.model, 'cls');
    assert.ok(n.value.includes('amount'));
    assert.ok(verifyWebhook(got[0]!.body, got[0]!.headers, ['hook-secret']));
    assert.match(
      (await t.server.app.inject({ headers: adminHeaders, url: '/metrics' })).body,
      /ferry_alerts_total\{rule="cls-drift",status="firing",result="delivered"\} 1/,
    );
  } finally {
    await t.close();
    await new Promise<void>((r) => hook.close(() => r()));
  }
});
