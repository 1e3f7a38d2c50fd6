import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { contractDifferences } from './compat.js';
import { instanceSchema, predictRequestSchema } from './json-schema.js';
import type { Manifest } from './schema.js';

const limits = { maxInstances: 5, maxStringLength: 100, maxTensorElements: 1000 };
const m: Manifest = {
  inputs: [
    { name: 'a', type: 'number', min: 0, max: 1 },
    { name: 'c', type: 'category', values: ['x', 'y'] },
    { name: 'o', type: 'category', values: ['x'], unknown: 'ignore', optional: true },
    { name: 's', type: 'string', maxLength: 1_000_000 },
    { name: 't', type: 'tensor', dtype: 'int32', shape: [-1, 3] },
  ],
  outputs: [{ name: 'p' }],
  postprocess: { kind: 'classification', output: 'p', labels: ['l0', 'l1'] },
};

test('instance schema: ranges, enums, string limits capped by the server, tensor rows, required features', () => {
  const s = instanceSchema(m, limits) as {
    properties: Record<string, Record<string, unknown>>;
    required: string[];
    additionalProperties: boolean;
  };
  assert.deepEqual(s.properties.a, { type: 'number', minimum: 0, maximum: 1 });
  assert.deepEqual(s.properties.c!.enum, ['x', 'y']);
  assert.equal(s.properties.o!.enum, undefined, 'unknown: ignore accepts any string');
  assert.equal(s.properties.s!.maxLength, 100);
  assert.deepEqual(s.properties.t!.items, { type: 'integer' });
  assert.equal(s.properties.t!.minItems, 3);
  assert.deepEqual(s.required, ['a', 'c', 's', 't']);
  assert.equal(s.additionalProperties, false);
  const r = predictRequestSchema(m, limits) as { oneOf: Array<{ properties: { instances?: { maxItems: number } } }> };
  assert.equal(r.oneOf[0]!.properties.instances!.maxItems, 5);
});

test('compatibility: what breaks a pinned client is listed, the rest is allowed', () => {
  assert.deepEqual(
    contractDifferences(m, {
      ...m,
      description: 'new text',
      inputs: m.inputs.map((f) => ({ ...f, description: 'doc' })),
    }),
    [],
  );
  const diffs = contractDifferences(m, {
    ...m,
    inputs: [
      { name: 'a', type: 'integer' },
      { name: 'c', type: 'category', values: ['x', 'y', 'z'] },
      m.inputs[2]!,
      m.inputs[3]!,
      { name: 'n', type: 'boolean' },
    ],
    postprocess: { kind: 'classification', output: 'p', labels: ['l1', 'l0'] },
  });
  assert.ok(diffs.includes('input "a" changed from number to integer'), diffs.join('\n'));
  assert.ok(diffs.some((d) => d.startsWith('input "c" changed')));
  assert.ok(diffs.includes('input "t" removed'));
  assert.ok(diffs.includes('input "n" added'));
  assert.ok(diffs.some((d) => d.startsWith('labels changed')));
});

test('core imports no Node-only module outside its tests (the browser runs it)', () => {
  const root = fileURLToPath(new URL('../../src', import.meta.url));
  const walk = (d: string): string[] =>
    readdirSync(d).flatMap((e) => (statSync(join(d, e)).isDirectory() ? walk(join(d, e)) : [join(d, e)]));
  const offenders = walk(root)
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
    .filter((f) =>
      /from ['"](node:|fs|path|os|worker_threads|child_process|crypto)['"/]/.test(readFileSync(f, 'utf8')),
    );
  assert.deepEqual(offenders, []);
});
