// The capacity model's limits: HTTP-bound, worker-bound and machine-bound cases, and the best count.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bestProcesses, predictedRps } from './cores-model.js';

test('predictedRps: the least of the HTTP, worker and machine limits', () => {
  // 200 µs of HTTP, 100 µs of inference: one process is HTTP-bound at 5,000 req/s on any core count.
  const m = { httpUs: 200, inferUs: 100 };
  assert.equal(predictedRps(m, 2, 1), 5000);
  assert.equal(predictedRps(m, 32, 1), 5000);
  // 16 processes on 32 cores: 80,000 HTTP-side, 160,000 worker-side, 106,667 machine-wide.
  assert.equal(Math.round(predictedRps(m, 32, 16)), 80_000);
  assert.equal(Math.round(predictedRps(m, 32, 32)), 106_667);
  // A heavy model is worker-bound: 1 worker of 1,000 µs per row per process on 2 cores.
  assert.equal(predictedRps({ httpUs: 100, inferUs: 1000 }, 2, 2), 1818.1818181818182);
});

test('bestProcesses: more processes only when they raise the bound by more than 2%', () => {
  // A heavy model is machine-bound with one process already: 8 cores / 10,100 µs.
  assert.deepEqual(bestProcesses({ httpUs: 100, inferUs: 10_000 }, 8), { processes: 1, rps: 8e6 / 10_100 });
  assert.equal(bestProcesses({ httpUs: 200, inferUs: 100 }, 32).processes, 32);
});
