#!/usr/bin/env node
// The prediction cache's key per instance (issue 20, item 2): Ferry's digest of the values' float64
// bytes against the key it replaced (the JSON text of each value in contract order, then SHA-1), in
// the same run on the same instances. `node bench/dist/cache-key.js`; a section of `npm run bench`.
import { createHash } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import type { Feature, Instance } from '@ferry/core';
import { instanceDigest } from '@ferry/server';

/** The baseline: the key Ferry built before (JSON text per value, then SHA-1). */
function jsonTextKey(inputs: readonly Feature[], instance: Instance): string {
  let s = '';
  for (const f of inputs) {
    const v = instance[f.name];
    s += v === undefined ? 'null' : JSON.stringify(v);
    s += '\u0001';
  }
  return createHash('sha1').update(s).digest('base64url');
}

export interface CacheKeyRow {
  instance: string;
  baselineUs: number;
  digestUs: number;
  /** baseline ÷ digest time: how many times faster the digest is. */
  speedup: number;
}

function timeUs(fn: () => unknown, minMs: number): number {
  for (let i = 0; i < 200; i++) fn();
  let n = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < minMs) {
    for (let i = 0; i < 100; i++) fn();
    n += 100;
    t = performance.now();
  }
  return ((t - t0) * 1000) / n;
}

export function runCacheKeyBench(minMs = 400): CacheKeyRow[] {
  let seed = 7;
  const rand = () => ((seed = (seed * 16807) % 2147483647) / 2147483647) * 2 - 1;
  const num = (name: string) => ({ name, type: 'number' }) as Feature;
  const cases: Array<[string, Feature[], Instance]> = [
    [
      'tabular: 6 numbers, 2 strings',
      ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].map(num),
      { a: 72.5, b: 2, c: rand(), d: rand(), e: 1e-3, f: 12, g: 'green', h: 'member' },
    ],
    ['tensor: 256 floats (mlp-bench)', [num('x')], { x: Array.from({ length: 256 }, rand) }],
    ['tensor: 28×28 floats', [num('x')], { x: Array.from({ length: 28 }, () => Array.from({ length: 28 }, rand)) }],
    ['tensor: 4,096 floats', [num('x')], { x: Array.from({ length: 4096 }, rand) }],
  ];
  return cases.map(([instance, inputs, value]) => {
    // Alternate the two, twice, and keep each one's best, so drift in the machine hits both alike.
    let baselineUs = Infinity;
    let digestUs = Infinity;
    for (let round = 0; round < 2; round++) {
      baselineUs = Math.min(
        baselineUs,
        timeUs(() => jsonTextKey(inputs, value), minMs),
      );
      digestUs = Math.min(
        digestUs,
        timeUs(() => instanceDigest(inputs, value), minMs),
      );
    }
    return { instance, baselineUs, digestUs, speedup: baselineUs / digestUs };
  });
}

export function formatCacheKeyBench(rows: readonly CacheKeyRow[]): string {
  return [
    'prediction cache key per instance (µs; baseline: JSON text + SHA-1, the key before the digest)',
    ...rows.map(
      (r) =>
        `  ${r.instance.padEnd(32)} baseline ${r.baselineUs.toFixed(2).padStart(7)}  digest ${r.digestUs.toFixed(2).padStart(6)}  → ${r.speedup.toFixed(1)}× faster`,
    ),
  ].join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.stdout.write(`${formatCacheKeyBench(runCacheKeyBench())}\n`);
}
