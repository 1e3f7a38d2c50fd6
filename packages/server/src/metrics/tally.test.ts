import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Counter, Registry } from 'prom-client';
import { Tallies } from './tally.js';

test('tallied counts reach the exposition at every read, once', async () => {
  const registry = new Registry();
  const tallies = new Tallies();
  const counter = new Counter({
    name: 'hot_total',
    help: 'h',
    labelNames: ['model'] as const,
    registers: [registry],
    collect: tallies.flush,
  });
  const a = tallies.of(counter.labels({ model: 'a' }));
  const b = tallies.of(counter.labels({ model: 'b' }));
  for (let i = 0; i < 5; i++) a.inc();
  b.inc();
  const first = await registry.metrics();
  assert.match(first, /hot_total\{model="a"\} 5/);
  assert.match(first, /hot_total\{model="b"\} 1/);
  // Read again with nothing new: the same totals, not doubled.
  assert.match(await registry.metrics(), /hot_total\{model="a"\} 5/);
  a.inc();
  const json = await registry.getMetricsAsJSON();
  const values = json.find((m) => m.name === 'hot_total')!.values;
  assert.deepEqual(
    values.map((v) => [v.labels.model, v.value]),
    [
      ['a', 6],
      ['b', 1],
    ],
  );
});

test('past the bound, counts go to the counter directly', async () => {
  const registry = new Registry();
  const tallies = new Tallies(1);
  const counter = new Counter({ name: 'c_total', help: 'h', registers: [registry], collect: tallies.flush });
  const kept = tallies.of(counter);
  const direct = tallies.of(counter);
  kept.inc();
  direct.inc();
  direct.inc();
  assert.equal((await counter.get()).values[0]!.value, 3);
});
