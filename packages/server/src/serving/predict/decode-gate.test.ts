import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DecodeGate } from './decode-gate.js';

test('the gate bounds concurrent decodes and pixels in flight, first come first served', async () => {
  const gate = new DecodeGate({ maxConcurrent: 3, maxPixels: 100 });
  let running = 0;
  let peak = 0;
  const order: number[] = [];
  const job = (i: number, px: number) =>
    gate.run(px, async () => {
      running++;
      peak = Math.max(peak, running);
      order.push(i);
      await new Promise((r) => setTimeout(r, 5));
      running--;
      return i;
    });
  const sizes = [40, 40, 40, 10, 150, 10, 10, 10];
  const done = await Promise.all(sizes.map((px, i) => job(i, px)));
  assert.deepEqual(done, [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.ok(peak <= 3);
  // 150 px is over the whole budget: it ran alone, so the peak is 150, never more.
  assert.equal(gate.stats().peakPixels, 150);
  assert.deepEqual(order, [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.deepEqual({ ...gate.stats(), peakPixels: 0 }, { active: 0, pixels: 0, peakPixels: 0, waiting: 0 });
});
