import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Repository } from '@ferry/server';
import type { Manifest } from '@ferry/core';
import { GraphBuilder } from './onnx.js';
import { toYaml } from './yaml.js';

test('toYaml writes the outline in block style and each feature, column and output on one line', () => {
  const text = toYaml({
    name: 'm',
    version: '1.0.0',
    inputs: [{ name: 'a', type: 'category', values: ['x', 'z'] }],
    preprocess: [{ input: 'features', columns: [{ feature: 'a', steps: [{ op: 'one-hot', values: ['x', 'z'] }] }] }],
    postprocess: { kind: 'raw' },
    skipped: undefined,
    empty: [],
  });
  assert.equal(
    text,
    [
      'name: m',
      'version: 1.0.0',
      'inputs:',
      '  - { name: a, type: category, values: [x, z] }',
      'preprocess:',
      '  - input: features',
      '    columns:',
      '      - { feature: a, steps: [{ op: one-hot, values: [x, z] }] }',
      'postprocess: { kind: raw }',
      'empty: []',
      '',
    ].join('\n'),
  );
});

test('strings YAML would read as something else are quoted: the server reads back exactly what was written', () => {
  const tricky = [
    'NO',
    'yes',
    'On',
    'null',
    '~',
    '1.5',
    '007',
    '0x1F',
    '1e3',
    '1.0.0',
    'a: b',
    'x #y',
    '-dash',
    "it's",
    '"q"',
    '[br]',
    '{b}',
    '',
    ' lead',
    'trail ',
    'é',
    'a,b',
    '*star',
    '&amp',
    '!bang',
    '%pct',
    '@at',
    '`tick',
    '|pipe',
    '>gt',
    '?q',
    'tab\there',
    'new\nline',
  ];
  const manifest: Manifest = {
    name: 'quoting',
    version: '1.0.0',
    description: 'a: b # not a comment',
    inputs: [
      { name: 'c', type: 'category', values: tricky, unknown: 'ignore' },
      { name: 'n', type: 'number', min: -1.5, max: 1e21 },
    ],
    preprocess: [{ input: 'features', columns: [{ feature: 'c', steps: [{ op: 'one-hot' }] }, { feature: 'n' }] }],
    outputs: [{ name: 'y', dtype: 'float32', shape: [-1, tricky.length + 1] }],
    tags: { yes: 'no', true: 'false' },
  };
  const repo = mkdtempSync(join(tmpdir(), 'ferry-yaml-'));
  try {
    const dir = join(repo, 'quoting', '1.0.0');
    mkdirSync(dir, { recursive: true });
    const g = new GraphBuilder()
      .input('features', 'float32', ['batch', tricky.length + 1])
      .output('y', 'float32', ['batch', tricky.length + 1]);
    g.node('Identity', ['features'], ['y']);
    writeFileSync(join(dir, 'model.onnx'), g.toBytes());
    writeFileSync(join(dir, 'ferry.yaml'), toYaml(manifest));
    assert.deepEqual(Repository.load(repo).resolve('quoting').manifest, manifest);
  } finally {
    rmSync(repo, { recursive: true, force: true });
  }
});
