// The cluster primary's health arithmetic: ready only with every child ready, the oldest heartbeat
// decides liveness, a child still starting is not a stall, and the cores split between children.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clusterSnapshot, workersPerChild } from './cluster.js';
import { answerProbe } from '../http/health-lane/index.js';

test('clusterSnapshot: every child ready, oldest heartbeat, starting children, draining', () => {
  const now = 1_000_000;
  const a = { lastBeatMs: now - 20, ready: true, draining: false };
  const b = { lastBeatMs: now - 5000, ready: true, draining: false };
  assert.deepEqual(clusterSnapshot([a, b], 2, false, now), { heartbeatMs: now - 5000, ready: true, draining: false });
  // One child missing (being replaced): not ready.
  assert.equal(clusterSnapshot([a], 2, false, now).ready, false);
  // A child still starting (no heartbeat yet) is not ready and not stalled.
  const starting = { lastBeatMs: undefined, ready: false, draining: false };
  const s = clusterSnapshot([a, starting], 2, false, now);
  assert.deepEqual(s, { heartbeatMs: now - 20, ready: false, draining: false });
  assert.equal(answerProbe('/healthz', s, now, 1000).status, 200);
  assert.equal(answerProbe('/readyz', s, now, 1000).body.reason, 'models not loaded and warmed');
  // The oldest heartbeat past the limit fails liveness for the whole pod.
  const stalled = answerProbe('/healthz', clusterSnapshot([a, b], 2, false, now), now, 1000);
  assert.deepEqual(stalled, { status: 503, body: { status: 'stalled', loopStallMs: 5000, maxStallMs: 1000 } });
  // The primary shutting down, or any child draining: not ready, still live.
  assert.equal(clusterSnapshot([a, { ...a, draining: true }], 2, false, now).draining, true);
  const down = clusterSnapshot([a, a], 2, true, now);
  assert.deepEqual(answerProbe('/readyz', down, now, 1000), {
    status: 503,
    body: { ready: false, loopStallMs: 20, reason: 'draining', draining: true },
  });
  assert.equal(answerProbe('/healthz', down, now, 1000).status, 200);
});

test('workersPerChild: the cores split between the processes, at least one each', () => {
  assert.equal(workersPerChild(2, 2), 1);
  assert.equal(workersPerChild(4, 32), 8);
  assert.equal(workersPerChild(3, 8), 2);
  assert.equal(workersPerChild(4, 2), 1);
});
