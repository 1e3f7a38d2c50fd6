import { test } from 'node:test';
import assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { FerryError } from '../errors.js';
import { grpcCodeFor, toServiceError } from './status.js';
import { requestFromGrpc, responseOutputs, wantsRawOutputs, type GrpcInferRequest } from './tensors.js';

const req = (over: Partial<GrpcInferRequest> = {}): GrpcInferRequest => ({
  model_name: 'm',
  model_version: '',
  id: '',
  parameters: {},
  inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], parameters: {}, contents: { fp32_contents: [1, 2] } }],
  outputs: [],
  raw_input_contents: [],
  ...over,
});
const issues = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof FerryError);
    return (e.extra.errors as Array<{ pointer: string; reason: string }>).map((i) => i.pointer);
  }
  assert.fail('no error');
};

test('typed contents become REST data; raw contents become decoded tensors', () => {
  assert.deepEqual(requestFromGrpc(req(), 100).inputs[0]!.data, [1, 2]);
  const raw = requestFromGrpc(
    req({
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], parameters: {}, contents: null }],
      raw_input_contents: [Buffer.from(new Float32Array([3, 4]).buffer)],
    }),
    100,
  );
  assert.deepEqual(Array.from(raw.inputs[0]!.binary!.data as Float32Array), [3, 4]);
  const bytes = requestFromGrpc(
    req({
      inputs: [
        { name: 's', datatype: 'BYTES', shape: [1], parameters: {}, contents: { bytes_contents: [Buffer.from('hé')] } },
      ],
    }),
    100,
  );
  assert.deepEqual(bytes.inputs[0]!.data, ['hé']);
});

test('each misplaced field is named by its pointer', () => {
  const bad = (over: Partial<GrpcInferRequest['inputs'][number]>) =>
    req({ inputs: [{ ...req().inputs[0]!, ...over }] });
  assert.deepEqual(
    issues(() => requestFromGrpc(bad({ contents: { int_contents: [1, 2] } }), 100)),
    ['/inputs/0/contents/int_contents'],
  );
  assert.deepEqual(
    issues(() => requestFromGrpc(bad({ datatype: 'FP16', contents: null }), 100)),
    ['/inputs/0/contents'],
  );
  assert.deepEqual(
    issues(() => requestFromGrpc(bad({ shape: [-1, 2] }), 100)),
    ['/inputs/0/shape/0'],
  );
  assert.deepEqual(
    issues(() => requestFromGrpc(bad({ datatype: 'F32' }), 100)),
    ['/inputs/0/datatype'],
  );
  assert.deepEqual(
    issues(() => requestFromGrpc(req({ inputs: [] }), 100)),
    ['/inputs'],
  );
  assert.deepEqual(
    issues(() => requestFromGrpc(req({ raw_input_contents: [Buffer.alloc(8)] }), 100)),
    ['/inputs/0/contents'],
  );
});

test('outputs are typed by default and all raw when asked or FP16', () => {
  const out = { y: { dtype: 'float32' as const, dims: [1, 2], data: new Float32Array([0.5, 1]) } };
  const typed = responseOutputs(out, false);
  assert.deepEqual(typed.outputs[0]!.contents, { fp32_contents: [0.5, 1] });
  assert.equal(typed.raw_output_contents.length, 0);
  const raw = responseOutputs(out, true);
  assert.equal(raw.outputs[0]!.contents, undefined);
  assert.deepEqual(raw.raw_output_contents[0], Buffer.from(new Float32Array([0.5, 1]).buffer));
  assert.equal(wantsRawOutputs(req(), out), false);
  assert.equal(
    wantsRawOutputs(
      req({ parameters: { binary_data_output: { parameter_choice: 'bool_param', bool_param: true } } }),
      out,
    ),
    true,
  );
  assert.equal(wantsRawOutputs(req(), { h: { dtype: 'float16', dims: [1], data: new Uint16Array(1) } }), true);
});

test('Ferry errors map to gRPC codes with the problem in the trailers', () => {
  assert.equal(grpcCodeFor(new FerryError('invalid-input')), status.INVALID_ARGUMENT);
  assert.equal(grpcCodeFor(new FerryError('model-not-found')), status.NOT_FOUND);
  assert.equal(grpcCodeFor(new FerryError('route-not-found')), status.UNIMPLEMENTED);
  assert.equal(grpcCodeFor(new FerryError('unauthorized')), status.UNAUTHENTICATED);
  assert.equal(grpcCodeFor(new FerryError('forbidden')), status.PERMISSION_DENIED);
  assert.equal(grpcCodeFor(new FerryError('server-overloaded')), status.UNAVAILABLE);
  const internal = toServiceError(new Error('secret path /etc/x'));
  assert.equal(internal.code, status.INTERNAL);
  assert.doesNotMatch(internal.details, /secret/);
  const e = toServiceError(new FerryError('server-overloaded', { headers: { 'retry-after': '1' } }));
  assert.equal(e.metadata!.get('retry-after')[0], '1');
  assert.equal(JSON.parse(String(e.metadata!.get('ferry-problem-bin')[0])).code, 'server-overloaded');
});
