// Small real models for the serving-core tests: one whose inference fails for some inputs (an
// out-of-range Gather index), and a fast twin of the slow fixture with the same contract.
import { GraphBuilder } from '@ferry/tools/onnx';
import type { FixtureModel } from './fixture-models.js';

export interface LookupInstance extends Record<string, unknown> {
  id: number[];
}

/**
 * y[batch, 2] = table[id] for int64 id[batch, 1] over a 10-row table; ONNX Runtime fails the whole
 * run when any id is outside 0..9 (validation cannot know the table size), which makes a real
 * inference error on demand.
 */
export function lookupModel(): FixtureModel<LookupInstance> {
  const g = new GraphBuilder({ name: 'lookup' });
  g.input('id', 'int64', ['batch', 1]).output('y', 'float32', ['batch', 2]);
  g.floatInitializer(
    'table',
    Array.from({ length: 20 }, (_, i) => i / 2),
    [10, 2],
  );
  g.intInitializer('flat', [-1, 2]);
  g.node('Reshape', [g.op('Gather', ['table', 'id'], { axis: 0 }), 'flat'], ['y']);
  return {
    onnx: g.toBytes(),
    manifest: {
      description: 'Fixture: table lookup that fails for ids outside 0..9',
      inputs: [{ name: 'id', type: 'tensor', dtype: 'int64', shape: [-1, 1] }],
      outputs: [{ name: 'y', dtype: 'float32', shape: [-1, 2] }],
    },
    reference: ({ id }) => [id[0]!, id[0]! + 0.5],
    example: { id: [3] },
  };
}

/** x[batch, 4] → y[batch, 1] = sum(x) + 1/512: the slow fixture's contract and answer, at once. */
export function fastTwinOfSlow(): FixtureModel<{ x: number[] }> {
  const g = new GraphBuilder({ name: 'fast-twin' });
  g.input('x', 'float32', ['batch', 4]).output('y', 'float32', ['batch', 1]);
  g.intInitializer('axis1', [1]).floatInitializer('c', [1 / 512]);
  g.node('Add', [g.op('ReduceSum', ['x', 'axis1'], { keepdims: 1 }), 'c'], ['y']);
  return {
    onnx: g.toBytes(),
    manifest: {
      inputs: [{ name: 'x', type: 'tensor', dtype: 'float32', shape: [-1, 4] }],
      outputs: [{ name: 'y', dtype: 'float32', shape: [-1, 1] }],
      postprocess: { kind: 'regression', output: 'y' },
    },
    reference: ({ x }) => [x.reduce((s, v) => s + v, 0) + 1 / 512],
    example: { x: [1, 2, 3, 4] },
  };
}
