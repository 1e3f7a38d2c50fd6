import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { biasModel, softmaxYes, startRepoServer, thresholdClassifier, type RepoServer } from '@ferry/test-kit';
import { canaryBucket } from '../../rollout/rollout-manager.js';

const close = (a: number, b: number, tol = 1e-5) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);
const waitFor = async (cond: () => boolean, ms = 20_000) => {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe('canary: weight and stickiness', () => {
  let t: RepoServer;
  before(async () => {
    t = await startRepoServer(
      [
        { name: 'm', version: '1.0.0', files: biasModel(0) },
        { name: 'm', version: '1.1.0', files: biasModel(10) },
      ],
      { m: 'stable: 1.0.0\ncanary:\n  version: 1.1.0\n  weight: 20\n' },
    );
  });
  after(() => t.close());

  test('2,000 clients: the canary share is within ±3 points of the weight, answers come from the routed version', async () => {
    let canary = 0;
    const arms = new Map<string, string>();
    for (let i = 0; i < 2000; i += 50) {
      const batch = await Promise.all(
        Array.from({ length: 50 }, (_, j) =>
          t.server.app.inject({
            method: 'POST',
            url: '/v1/models/m/predict',
            headers: { 'ferry-client-id': `user-${i + j}` },
            payload: { instances: [{ x: [2, 1] }] },
          }),
        ),
      );
      batch.forEach((r, j) => {
        assert.equal(r.statusCode, 200, r.body);
        const version = r.headers['ferry-model-version'];
        const arm = r.headers['ferry-rollout'];
        assert.equal(arm, version === '1.1.0' ? 'canary' : 'stable');
        // The answer is the routed version's own: y = 0.5·2 + 1 + bias.
        close(r.json().predictions[0].value, version === '1.1.0' ? 12 : 2);
        arms.set(`user-${i + j}`, version as string);
        if (version === '1.1.0') canary++;
      });
    }
    const share = (canary / 2000) * 100;
    assert.ok(Math.abs(share - 20) <= 3, `canary share ${share}%`);
    // The split follows the documented bucket function exactly.
    for (const [client, version] of arms) assert.equal(version === '1.1.0', canaryBucket('m', client) < 2000, client);
    const status = (await t.server.app.inject({ url: '/v1/models/m/rollout' })).json();
    assert.deepEqual(status.canary, { version: '1.1.0', weight: 20, requests: { stable: 2000 - canary, canary } });
    assert.match(
      (await t.server.app.inject({ url: '/metrics' })).body,
      new RegExp(`ferry_rollout_requests_total\\{model="m",version="1.1.0",arm="canary"\\} ${canary}`),
    );
  });

  test('one client always sees one version; pinned requests are never re-routed', async () => {
    for (const client of ['alice', 'bob', 'carol', 'dave', 'erin']) {
      const seen = new Set<string>();
      for (let k = 0; k < 10; k++) {
        const r = await t.server.app.inject({
          method: 'POST',
          url: '/v1/models/m/predict',
          headers: { 'ferry-client-id': client },
          payload: { instances: [{ x: [0, 0] }] },
        });
        seen.add(r.headers['ferry-model-version'] as string);
      }
      assert.equal(seen.size, 1, client);
    }
    // A client that lands on the canary still gets 1.0.0 when it pins it.
    const onCanary = Array.from({ length: 200 }, (_, i) => `c${i}`).find((c) => canaryBucket('m', c) < 2000)!;
    const pinned = await t.server.app.inject({
      method: 'POST',
      url: '/v1/models/m/versions/1.0.0/predict',
      headers: { 'ferry-client-id': onCanary },
      payload: { instances: [{ x: [0, 0] }] },
    });
    assert.equal(pinned.headers['ferry-model-version'], '1.0.0');
    assert.equal(pinned.headers['ferry-rollout'], undefined);
    const at = await t.server.app.inject({
      method: 'POST',
      url: '/v1/models/m@1.0/predict',
      headers: { 'ferry-client-id': onCanary },
      payload: { instances: [{ x: [0, 0] }] },
    });
    assert.equal(at.headers['ferry-model-version'], '1.0.0');
  });

  test('a hostile client id is a 400 naming the header', async () => {
    const r = await t.server.app.inject({
      method: 'POST',
      url: '/v1/models/m/predict',
      headers: { 'ferry-client-id': 'x'.repeat(500) },
      payload: { instances: [{ x: [0, 0] }] },
    });
    assert.equal(r.statusCode, 400);
    assert.equal(r.headers['content-type'], 'application/problem+json; charset=utf-8');
    assert.equal(r.json().errors[0].pointer, '/headers/ferry-client-id');
  });
});

describe('shadow: compared off the request path', () => {
  let t: RepoServer;
  before(async () => {
    t = await startRepoServer(
      [
        { name: 'c', version: '1.0.0', files: thresholdClassifier(0) },
        { name: 'c', version: '1.1.0', files: thresholdClassifier(0.5) },
        // Major 2 takes another feature: every shadow call of it fails validation.
        {
          name: 'c',
          version: '2.0.0',
          files: {
            ...thresholdClassifier(0),
            manifest: {
              ...thresholdClassifier(0).manifest,
              inputs: [{ name: 'other', type: 'number' }],
              preprocess: [{ input: 'x', dtype: 'float32', columns: [{ feature: 'other' }] }],
            },
          },
        },
        { name: 'r', version: '1.0.0', files: biasModel(0) },
        { name: 'r', version: '1.0.1', files: biasModel(0.25) },
      ],
      { c: 'stable: 1.0.0\nshadow:\n  version: 1.1.0\n  sample: 1\n', r: 'stable: 1.0.0\nshadow: 1.0.1\n' },
    );
  });
  after(() => t.close());

  test('label agreement and score differences equal what the two versions imply', async () => {
    // 40 instances: x in (0, 0.5] disagree (1.0.0 says yes, 1.1.0 says no): 10 of them.
    const xs = Array.from({ length: 40 }, (_, i) => -1 + i * 0.05 + 0.025);
    const disagree = xs.filter((x) => x > 0 && x <= 0.5).length;
    for (let i = 0; i < xs.length; i += 8) {
      const r = await t.server.app.inject({
        method: 'POST',
        url: '/v1/models/c/predict',
        payload: { instances: xs.slice(i, i + 8).map((score) => ({ score })) },
      });
      assert.equal(r.statusCode, 200);
      assert.equal(r.headers['ferry-model-version'], '1.0.0');
      // The served answer is the stable version's, never the shadow's.
      close(r.json().predictions[0].scores.yes, softmaxYes(xs[i]!, 0));
    }
    await waitFor(() => t.server.rollout.status('c').shadow?.comparedInstances === 40);
    const s = (await t.server.app.inject({ url: '/v1/models/c/rollout' })).json().shadow;
    assert.equal(s.version, '1.1.0');
    assert.equal(s.sampledRequests, 5);
    assert.equal(s.errors, 0);
    close(s.labelAgreement, (40 - disagree) / 40, 1e-9);
    const diffs = xs.map((x) => Math.abs(softmaxYes(x, 0) - softmaxYes(x, 0.5))).sort((a, b) => a - b);
    close(s.scoreDifference.max, diffs[diffs.length - 1]!, 1e-5);
    close(s.scoreDifference.mean, diffs.reduce((a, b) => a + b, 0) / diffs.length, 1e-5);
    assert.ok(s.latencyMs.served.count === 5 && s.latencyMs.shadow.p50 > 0);
    const metrics = (await t.server.app.inject({ url: '/metrics' })).body;
    assert.match(
      metrics,
      new RegExp(`ferry_shadow_label_agreement_total\\{model="c",version="1.1.0",agree="false"\\} ${disagree}`),
    );
    assert.match(metrics, /ferry_shadow_requests_total\{model="c",version="1.1.0",result="compared"\} 5/);
    assert.match(metrics, /ferry_shadow_score_difference_count\{model="c",version="1.1.0"\} 40/);
  });

  test('regression shadow: the value difference is exactly the bias difference', async () => {
    for (let i = 0; i < 5; i++) {
      const r = await t.server.app.inject({
        method: 'POST',
        url: '/v1/models/r/predict',
        payload: { instances: [{ x: [i, 1] }, { x: [1, i] }] },
      });
      close(r.json().predictions[0].value, 0.5 * i + 1);
    }
    await waitFor(() => t.server.rollout.status('r').shadow?.comparedInstances === 10);
    const s = t.server.rollout.status('r').shadow!;
    assert.equal(s.labelAgreement, null);
    close(s.scoreDifference!.p50, 0.25, 1e-6);
    close(s.scoreDifference!.max, 0.25, 1e-6);
  });

  test('a failing shadow never fails or changes the served answer; its errors are counted', async () => {
    await t.writeAliases('c', 'stable: 1.0.0\nshadow:\n  version: 2.0.0\n  sample: 1\n');
    const rep = await t.server.manager.reloadRepository();
    assert.deepEqual(rep.failed, []);
    const rs = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        t.server.app.inject({
          method: 'POST',
          url: '/v1/models/c/predict',
          payload: { instances: [{ score: i / 10 }] },
        }),
      ),
    );
    rs.forEach((r, i) => {
      assert.equal(r.statusCode, 200);
      close(r.json().predictions[0].scores.yes, softmaxYes(i / 10, 0));
    });
    await waitFor(() => (t.server.rollout.status('c').shadow?.errors ?? 0) === 20);
    const s = t.server.rollout.status('c').shadow!;
    assert.equal(s.version, '2.0.0');
    assert.equal(s.comparedInstances, 0);
    assert.match(String(s.lastError), /^invalid-input/);
  });
});

describe('deprecation', () => {
  let t: RepoServer;
  before(async () => {
    t = await startRepoServer(
      [
        { name: 'd', version: '1.0.0', files: biasModel(0) },
        { name: 'd', version: '1.1.0', files: biasModel(1) },
        { name: 'd', version: '2.0.0', files: biasModel(2) },
        { name: 'd', version: '3.0.0', files: biasModel(3) },
      ],
      {
        d: 'stable: 3.0.0\ndeprecated:\n  "1":\n    since: 2026-01-01\n    sunset: 2020-06-30\n  "2.0.0":\n    since: 2026-10-01\n    sunset: 2099-12-31\n',
      },
    );
  });
  after(() => t.close());

  test('a deprecated version serves with Deprecation, Sunset and a Link to its successor', async () => {
    const r = await t.server.app.inject({
      method: 'POST',
      url: '/v1/models/d@2/predict',
      payload: { instances: [{ x: [0, 0] }] },
    });
    assert.equal(r.statusCode, 200);
    close(r.json().predictions[0].value, 2);
    assert.equal(r.headers.deprecation, `@${Date.UTC(2026, 9, 1) / 1000}`);
    assert.equal(r.headers.sunset, 'Thu, 31 Dec 2099 00:00:00 GMT');
    assert.equal(r.headers.link, '</v1/models/d/versions/3.0.0>; rel="successor-version"');
    const v2 = await t.server.app.inject({
      method: 'POST',
      url: '/v2/models/d/versions/2.0.0/infer',
      payload: { inputs: [{ name: 'x', shape: [1, 2], datatype: 'FP32', data: [0, 0] }] },
    });
    assert.equal(v2.statusCode, 200);
    assert.equal(v2.headers.sunset, 'Thu, 31 Dec 2099 00:00:00 GMT');
    const current = await t.server.app.inject({
      method: 'POST',
      url: '/v1/models/d/predict',
      payload: { instances: [{ x: [0, 0] }] },
    });
    assert.equal(current.headers.deprecation, undefined);
  });

  test('after its sunset a version answers 410 naming the successor; a pinned major is not moved to the next', async () => {
    for (const url of ['/v1/models/d@1/predict', '/v1/models/d/versions/1.0.0/predict', '/v1/models/d@1.1.0/predict']) {
      const r = await t.server.app.inject({ method: 'POST', url, payload: { instances: [{ x: [0, 0] }] } });
      assert.equal(r.statusCode, 410, url);
      assert.equal(r.headers['content-type'], 'application/problem+json; charset=utf-8');
      const p = r.json();
      assert.equal(p.code, 'version-retired');
      assert.equal(p.successor, '3.0.0');
      assert.match(p.detail, /use d@3\.0\.0/);
      assert.equal(r.headers.link, '</v1/models/d/versions/3.0.0>; rel="successor-version"');
    }
    const status = (await t.server.app.inject({ url: '/v1/models/d/rollout' })).json();
    assert.deepEqual(
      status.deprecated.map((d: { match: string; retired: boolean }) => [d.match, d.retired]),
      [
        ['1', true],
        ['2.0.0', false],
      ],
    );
  });

  test('a bad rollout policy is refused with the key that is wrong', async () => {
    await t.writeAliases('d', 'stable: 3.0.0\ncanary:\n  version: 2.0.0\n  weight: 140\n');
    const r = await t.server.manager.reloadRepository();
    assert.equal(r.failed.length, 1);
    assert.match(r.failed[0]!.error, /\/canary\/weight: expected a percentage/);
    // Nothing changed: the old policy still applies.
    assert.equal(t.server.rollout.status('d').canary, null);
    assert.equal(t.server.rollout.status('d').deprecated.length, 2);
  });
});
