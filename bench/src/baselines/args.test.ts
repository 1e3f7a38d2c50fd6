import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseBaselineArgs } from './args.js';

const so = JSON.stringify({ intraOpNumThreads: 1 });

test('session options are keyed by a served model', () => {
  const args = parseBaselineArgs([
    '--model',
    'mlp=/m',
    '--session-options',
    JSON.stringify({ mlp: { intraOpNumThreads: 1 } }),
  ]);
  assert.deepEqual(args.sessionOptions, { mlp: { intraOpNumThreads: 1 } });
  assert.equal(args.models.get('mlp'), '/m');
});

test('options not keyed by a model are refused, not dropped', () => {
  // The mistake this guards against: the options themselves given unkeyed, so every session ran on defaults.
  assert.throws(
    () => parseBaselineArgs(['--model', 'mlp=/m', '--session-options', so]),
    /"intraOpNumThreads" is not a --model/,
  );
  assert.throws(
    () => parseBaselineArgs(['--model', 'mlp=/m', '--session-options', JSON.stringify({ mlp: 1 })]),
    /"mlp" must map to an object/,
  );
});
