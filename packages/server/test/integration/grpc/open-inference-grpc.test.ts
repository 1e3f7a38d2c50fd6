// The Open Inference Protocol over gRPC, driven by clients Ferry did not write: @grpc/grpc-js with
// the .proto loaded by @grpc/proto-loader here, and Python grpcio with the .proto compiled by
// grpcio-tools (python-client.py). Answers are compared with the REST /v2 answers of the same server;
// hostile messages must get the right status codes and leave the server serving.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { credentials, loadPackageDefinition, Metadata, status, type Client, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import {
  biasModel,
  slowModel,
  startRepoServer,
  tinyClassifier,
  tinyLinearModel,
  type RepoServer,
} from '@ferry/test-kit';
import { OPEN_INFERENCE_PROTO, PROTO_LOADER_OPTIONS } from '../../grpc/index.js';
import { canaryBucket } from '../../rollout/rollout-manager.js';
import { hashKey } from '../../auth/keys.js';

type Callback = (err: ServiceError | null, res: Record<string, unknown>) => void;
type Rpc = (req: unknown, md: Metadata, opts: { deadline?: number }, cb: Callback) => void;
type InferenceClient = Client & Record<string, Rpc>;

const pkg = loadPackageDefinition(loadSync(OPEN_INFERENCE_PROTO, PROTO_LOADER_OPTIONS)) as unknown as {
  inference: {
    GRPCInferenceService: new (addr: string, creds: ReturnType<typeof credentials.createInsecure>) => InferenceClient;
  };
};
const healthPkg = loadPackageDefinition(loadSync(healthProtoPath, PROTO_LOADER_OPTIONS)) as unknown as {
  grpc: {
    health: {
      v1: { Health: new (addr: string, creds: ReturnType<typeof credentials.createInsecure>) => InferenceClient };
    };
  };
};

const call = (
  c: InferenceClient,
  method: string,
  req: unknown,
  md: Record<string, string> = {},
): Promise<{ res: Record<string, unknown>; headers: Metadata }> =>
  new Promise((resolve, reject) => {
    const meta = new Metadata();
    for (const [k, v] of Object.entries(md)) meta.set(k, v);
    let headers = new Metadata();
    const ev = c[method]!(req, meta, { deadline: Date.now() + 60_000 }, (err, res) =>
      err ? reject(err) : resolve({ res, headers }),
    ) as unknown as { on(e: 'metadata', fn: (m: Metadata) => void): void };
    ev.on('metadata', (m) => {
      headers = m;
    });
  });
const rpc = async (c: InferenceClient, method: string, req: unknown, md: Record<string, string> = {}) =>
  (await call(c, method, req, md)).res;
/** The error a call ends with (fails the test if it succeeds). */
const refused = async (c: InferenceClient, method: string, req: unknown, md: Record<string, string> = {}) => {
  try {
    await rpc(c, method, req, md);
  } catch (e) {
    const err = e as ServiceError;
    const problem = err.metadata.get('ferry-problem-bin')[0];
    return { code: err.code, details: err.details, problem: problem ? JSON.parse(problem.toString()) : undefined };
  }
  assert.fail(`${method} succeeded where it should fail`);
};
const close = (a: number, b: number, tol = 1e-5) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);
const f32 = (values: number[]) => Buffer.from(new Float32Array(values).buffer);

const linear = tinyLinearModel();
const X = [
  [1, 2, 3, 4, 5, 6, 7, 8],
  [-1, 0.5, 0, 2, -3, 4, 1, 0],
];
const WEIGHT = 50;
const onArm = (model: string, canary: boolean) =>
  Array.from({ length: 500 }, (_, i) => `c-${i}`).find((c) => canaryBucket(model, c) < WEIGHT * 100 === canary)!;

describe('gRPC Open Inference Protocol: Node client (@grpc/grpc-js)', () => {
  let t: RepoServer;
  let client: InferenceClient;
  let health: InferenceClient;
  let port = 0;
  before(async () => {
    t = await startRepoServer(
      [
        { name: 'lin', version: '1.0.0', files: linear },
        { name: 'cls', version: '1.0.0', files: tinyClassifier() },
        { name: 'm', version: '1.0.0', files: biasModel(0) },
        { name: 'm', version: '1.1.0', files: biasModel(10) },
        { name: 'd', version: '1.0.0', files: biasModel(1) },
        { name: 'd', version: '2.0.0', files: biasModel(2) },
      ],
      {
        m: `stable: 1.0.0\ncanary: { version: 1.1.0, weight: ${WEIGHT} }\n`,
        d: 'stable: 2.0.0\ndeprecated:\n  "1.0.0": { since: 2026-10-01, sunset: 2099-12-31, successor: 2.0.0 }\n',
      },
      { 'grpc.port': 0, 'grpc.maxReceiveMessageBytes': 64 * 1024 },
    );
    port = (await t.server.listen()).grpcPort!;
    client = new pkg.inference.GRPCInferenceService(`127.0.0.1:${port}`, credentials.createInsecure());
    health = new healthPkg.grpc.health.v1.Health(`127.0.0.1:${port}`, credentials.createInsecure());
  });
  after(async () => {
    client?.close();
    health?.close();
    await t?.close();
  });

  test('server and model metadata equal the REST answers', async () => {
    assert.deepEqual(await rpc(client, 'ServerLive', {}), { live: true });
    assert.deepEqual(await rpc(client, 'ServerReady', {}), { ready: true });
    const meta = await rpc(client, 'ServerMetadata', {});
    assert.equal(meta.name, 'ferry');
    assert.equal(meta.version, (await t.server.app.inject({ url: '/v2' })).json().version);
    for (const name of ['lin', 'cls', 'm']) {
      const rest = (await t.server.app.inject({ url: `/v2/models/${name}` })).json();
      const grpc = await rpc(client, 'ModelMetadata', { name, version: '' });
      assert.deepEqual(grpc, rest, name);
    }
    assert.deepEqual(await rpc(client, 'ModelReady', { name: 'lin', version: '1.0.0' }), { ready: true });
    assert.deepEqual(await rpc(client, 'ModelReady', { name: 'lin', version: '' }), { ready: true });
  });

  test('grpc.health.v1: SERVING for the server and the inference service, NOT_FOUND for others', async () => {
    assert.deepEqual(await rpc(health, 'Check', { service: '' }), { status: 'SERVING' });
    assert.deepEqual(await rpc(health, 'Check', { service: 'inference.GRPCInferenceService' }), { status: 'SERVING' });
    assert.equal((await refused(health, 'Check', { service: 'nope' })).code, status.NOT_FOUND);
  });

  test('ModelInfer with typed contents equals REST infer and the reference', async () => {
    const { res, headers } = await call(client, 'ModelInfer', {
      model_name: 'lin',
      id: 'req-1',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 8], contents: { fp32_contents: X.flat() } }],
    });
    const rest = (
      await t.server.app.inject({
        method: 'POST',
        url: '/v2/models/lin/infer',
        payload: { id: 'req-1', inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 8], data: X.flat() }] },
      })
    ).json();
    assert.equal(res.model_name, 'lin');
    assert.equal(res.model_version, '1.0.0');
    assert.equal(res.id, 'req-1');
    assert.deepEqual(res.raw_output_contents, []);
    const [out] = res.outputs as Array<{
      name: string;
      datatype: string;
      shape: number[];
      contents: { fp32_contents: number[] };
    }>;
    assert.equal(out!.name, 'y');
    assert.equal(out!.datatype, 'FP32');
    assert.deepEqual(out!.shape, rest.outputs[0].shape);
    assert.equal(out!.contents.fp32_contents.length, 2);
    out!.contents.fp32_contents.forEach((v, i) => {
      close(v, rest.outputs[0].data[i]);
      close(v, linear.reference({ x: X[i]! })[0]!, 1e-4);
    });
    assert.equal(headers.get('ferry-model-version')[0], '1.0.0');
  });

  test('ModelInfer with raw_input_contents answers with raw_output_contents', async () => {
    const res = await rpc(client, 'ModelInfer', {
      model_name: 'lin',
      model_version: '1.0.0',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 8] }],
      raw_input_contents: [f32(X.flat())],
    });
    const raw = (res.raw_output_contents as Buffer[])[0]!;
    const y = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
    assert.equal(y.length, 2);
    y.forEach((v, i) => close(v, linear.reference({ x: X[i]! })[0]!, 1e-4));
    const out = (res.outputs as Array<{ contents: unknown }>)[0]!;
    assert.equal(out.contents, null);
  });

  test('feature columns go through the contract, as over REST', async () => {
    const inputs = [
      { name: 'amount', datatype: 'FP64', shape: [2], contents: { fp64_contents: [72.5, 10] } },
      { name: 'items', datatype: 'INT64', shape: [2], contents: { int64_contents: [2, 0] } },
      { name: 'member', datatype: 'BOOL', shape: [2], contents: { bool_contents: [true, false] } },
      {
        name: 'color',
        datatype: 'BYTES',
        shape: [2],
        contents: { bytes_contents: [Buffer.from('green'), Buffer.from('red')] },
      },
    ];
    const res = await rpc(client, 'ModelInfer', { model_name: 'cls', inputs });
    const rest = (
      await t.server.app.inject({
        method: 'POST',
        url: '/v2/models/cls/infer',
        payload: {
          inputs: [
            { name: 'amount', datatype: 'FP64', shape: [2], data: [72.5, 10] },
            { name: 'items', datatype: 'INT64', shape: [2], data: [2, 0] },
            { name: 'member', datatype: 'BOOL', shape: [2], data: [true, false] },
            { name: 'color', datatype: 'BYTES', shape: [2], data: ['green', 'red'] },
          ],
        },
      })
    ).json();
    const got = (res.outputs as Array<{ contents: { fp32_contents: number[] } }>)[0]!.contents.fp32_contents;
    assert.equal(got.length, 4);
    got.forEach((v, i) => close(v, rest.outputs[0].data[i]));
    const ref = tinyClassifier().reference({ amount: 72.5, items: 2, member: true, color: 'green' });
    close(got[1]!, ref[1]!, 1e-4);
  });

  test('canary arm and deprecation come back as response metadata', async () => {
    const req = (client_: string) =>
      call(
        client,
        'ModelInfer',
        {
          model_name: 'm',
          inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], contents: { fp32_contents: [2, 1] } }],
        },
        { 'ferry-client-id': client_ },
      );
    const canary = await req(onArm('m', true));
    assert.equal(canary.headers.get('ferry-rollout')[0], 'canary');
    assert.equal(canary.res.model_version, '1.1.0');
    close((canary.res.outputs as Array<{ contents: { fp32_contents: number[] } }>)[0]!.contents.fp32_contents[0]!, 12);
    const stable = await req(onArm('m', false));
    assert.equal(stable.headers.get('ferry-rollout')[0], 'stable');
    close((stable.res.outputs as Array<{ contents: { fp32_contents: number[] } }>)[0]!.contents.fp32_contents[0]!, 2);
    const old = await call(client, 'ModelInfer', {
      model_name: 'd',
      model_version: '1.0.0',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], contents: { fp32_contents: [2, 1] } }],
    });
    assert.ok(old.headers.get('deprecation')[0]);
    assert.match(String(old.headers.get('link')[0]), /successor-version/);
  });

  test('hostile messages get the right status, name the field, and the server stays up', async () => {
    const x = (over: Record<string, unknown>) => ({
      model_name: 'lin',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 8], contents: { fp32_contents: X[0] }, ...over }],
    });
    const cases: Array<[string, unknown, number, RegExp]> = [
      [
        'wrong datatype',
        x({ datatype: 'INT32', contents: { int_contents: [1, 2, 3, 4, 5, 6, 7, 8] } }),
        status.INVALID_ARGUMENT,
        /inputs\/0\/datatype/,
      ],
      ['unknown datatype', x({ datatype: 'FP8' }), status.INVALID_ARGUMENT, /inputs\/0\/datatype/],
      [
        'contents in the wrong field',
        x({ contents: { fp64_contents: X[0] } }),
        status.INVALID_ARGUMENT,
        /fp64_contents/,
      ],
      [
        'shape/content mismatch',
        x({ contents: { fp32_contents: [1, 2, 3] } }),
        status.INVALID_ARGUMENT,
        /needs 8 elements/,
      ],
      ['wrong rank', x({ shape: [8] }), status.INVALID_ARGUMENT, /inputs\/0\/shape/],
      ['negative dimension', x({ shape: [-1, 8] }), status.INVALID_ARGUMENT, /shape\/0/],
      ['FP16 typed', x({ datatype: 'FP16' }), status.INVALID_ARGUMENT, /raw_input_contents/],
      ['NaN', x({ contents: { fp32_contents: [NaN, 0, 0, 0, 0, 0, 0, 0] } }), status.INVALID_ARGUMENT, /finite/],
      ['no inputs', { model_name: 'lin', inputs: [] }, status.INVALID_ARGUMENT, /inputs/],
      ['unknown input', x({ name: 'nope' }), status.INVALID_ARGUMENT, /unknown input/],
      ['unknown output', { ...x({}), outputs: [{ name: 'zz' }] }, status.INVALID_ARGUMENT, /unknown output/],
      [
        'raw size mismatch',
        {
          model_name: 'lin',
          inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 8] }],
          raw_input_contents: [f32([1, 2])],
        },
        status.INVALID_ARGUMENT,
        /needs 32 bytes/,
      ],
      [
        'raw count mismatch',
        {
          model_name: 'lin',
          inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 8] }],
          raw_input_contents: [f32(X[0]!), f32([1])],
        },
        status.INVALID_ARGUMENT,
        /raw_input_contents/,
      ],
      ['raw and typed mixed', { ...x({}), raw_input_contents: [f32(X[0]!)] }, status.INVALID_ARGUMENT, /contents/],
      [
        'huge declared shape',
        {
          model_name: 'lin',
          inputs: [{ name: 'x', datatype: 'FP32', shape: [1e9, 8] }],
          raw_input_contents: [f32([1])],
        },
        status.INVALID_ARGUMENT,
        /elements/,
      ],
      ['unknown model', { ...x({}), model_name: 'ghost' }, status.NOT_FOUND, /ghost/],
      ['unknown version', { ...x({}), model_version: '9.9.9' }, status.NOT_FOUND, /9\.9\.9/],
      ['no model name', { ...x({}), model_name: '' }, status.INVALID_ARGUMENT, /model_name/],
    ];
    for (const [what, req, code, detail] of cases) {
      const e = await refused(client, 'ModelInfer', req);
      assert.equal(e.code, code, `${what}: ${e.details}`);
      assert.match(e.details, detail, what);
      assert.equal(typeof e.problem?.code, 'string', what);
    }
    const invalid = await refused(
      client,
      'ModelInfer',
      x({ datatype: 'INT32', contents: { int_contents: [1, 2, 3, 4, 5, 6, 7, 8] } }),
    );
    assert.equal(invalid.problem.code, 'invalid-input');
    assert.equal(invalid.problem.errors[0].pointer, '/inputs/0/datatype');
    // Raw contents over grpc.maxReceiveMessageBytes (64 KiB here): refused by the transport.
    const big = await refused(client, 'ModelInfer', {
      model_name: 'lin',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [4096, 8] }],
      raw_input_contents: [Buffer.alloc(4096 * 8 * 4)],
    });
    assert.equal(big.code, status.RESOURCE_EXHAUSTED);
    assert.equal((await refused(client, 'ModelMetadata', { name: 'ghost', version: '' })).code, status.NOT_FOUND);
    // Without API keys the management RPCs do not exist, as the REST routes 404.
    assert.equal((await refused(client, 'RepositoryModelUnload', { model_name: 'lin' })).code, status.UNIMPLEMENTED);
    assert.deepEqual(await rpc(client, 'ServerLive', {}), { live: true });
    const again = await rpc(client, 'ModelInfer', x({}));
    close(
      (again.outputs as Array<{ contents: { fp32_contents: number[] } }>)[0]!.contents.fp32_contents[0]!,
      linear.reference({ x: X[0]! })[0]!,
      1e-4,
    );
  });

  test('predictions over gRPC are counted in ferry_requests_total', async () => {
    const text = (await t.server.app.inject({ url: '/metrics' })).body;
    assert.match(text, /ferry_requests_total\{[^}]*route="grpc_model_infer"[^}]*status="200"[^}]*\} [1-9]/);
    assert.match(text, /ferry_requests_total\{[^}]*route="grpc_model_infer"[^}]*status="400"[^}]*\} [1-9]/);
  });

  test('Python grpcio with the .proto compiled by grpcio-tools gets the REST answers', async (ctx) => {
    const probe = spawnSync('/usr/bin/python3', ['-c', 'import grpc, grpc_tools'], { encoding: 'utf8' });
    if (probe.status !== 0) {
      // CI installs python3-grpcio and python3-grpc-tools (.ci/run); a developer machine may lack them.
      if (process.env.CI) assert.fail(`python3 grpcio / grpcio-tools missing: ${probe.stderr}`);
      ctx.skip('python3-grpcio / python3-grpc-tools not installed');
      return;
    }
    const script = fileURLToPath(new URL('../../../test/integration/grpc/python-client.py', import.meta.url));
    // Asynchronously: the server answering the script runs on this process's event loop.
    const r = await promisify(execFile)('/usr/bin/python3', [script, OPEN_INFERENCE_PROTO, `127.0.0.1:${port}`], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.deepEqual(out.live, true);
    assert.deepEqual(out.ready, true);
    assert.deepEqual(out.metadata, {
      name: 'lin',
      versions: ['1.0.0'],
      platform: 'onnxruntime_onnx',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 8] }],
      outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 1] }],
    });
    const typed = out.typed as number[];
    const raw = out.raw as number[];
    X.forEach((row, i) => {
      close(typed[i]!, linear.reference({ x: row })[0]!, 1e-4);
      close(raw[i]!, linear.reference({ x: row })[0]!, 1e-4);
    });
    assert.equal(out.invalid_code, 'INVALID_ARGUMENT');
    assert.equal(out.not_found_code, 'NOT_FOUND');
    assert.equal(out.too_big_code, 'RESOURCE_EXHAUSTED');
    assert.equal(out.health, 'SERVING');
  });
});

describe('gRPC: API keys through metadata, repository extension, drain', () => {
  const SECRET = { admin: 'admin-secret-0123456789abcdef', predict: 'predict-secret-0123456789abcdef' };
  let t: RepoServer;
  let client: InferenceClient;
  let health: InferenceClient;
  before(async () => {
    t = await startRepoServer(
      [
        { name: 'lin', version: '1.0.0', files: linear },
        { name: 'slow', version: '1.0.0', files: slowModel(150) },
      ],
      {},
      {
        'grpc.port': 0,
        // A loaded machine may run the slow model far slower than its target: the drain must not cut it off.
        'server.shutdownGraceMs': 120_000,
        'auth.keys': [
          { id: 'admin', sha256: hashKey(SECRET.admin), scopes: ['admin'] },
          { id: 'predict', sha256: hashKey(SECRET.predict), scopes: ['predict'] },
        ],
      },
    );
    const port = (await t.server.listen()).grpcPort!;
    client = new pkg.inference.GRPCInferenceService(`127.0.0.1:${port}`, credentials.createInsecure());
    health = new healthPkg.grpc.health.v1.Health(`127.0.0.1:${port}`, credentials.createInsecure());
  });
  after(async () => {
    client?.close();
    health?.close();
    await t?.close();
  });
  const infer = {
    model_name: 'lin',
    inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 8], contents: { fp32_contents: X[0] } }],
  };
  const bearer = (s: string) => ({ authorization: `Bearer ${s}` });

  test('authorization metadata: missing or wrong keys refused, scopes as over REST', async () => {
    assert.deepEqual(await rpc(client, 'ServerLive', {}), { live: true });
    assert.equal((await refused(client, 'ModelInfer', infer)).code, status.UNAUTHENTICATED);
    assert.equal(
      (await refused(client, 'ModelInfer', infer, bearer('wrong-0123456789abcdef'))).code,
      status.UNAUTHENTICATED,
    );
    const res = await rpc(client, 'ModelInfer', infer, bearer(SECRET.predict));
    assert.equal(res.model_name, 'lin');
    assert.equal(
      (await refused(client, 'RepositoryModelUnload', { model_name: 'lin' }, bearer(SECRET.predict))).code,
      status.PERMISSION_DENIED,
    );
  });

  test('repository extension: unload, then load again, with an admin key', async () => {
    assert.deepEqual(await rpc(client, 'RepositoryModelUnload', { model_name: 'lin' }, bearer(SECRET.admin)), {
      model_name: 'lin',
      isUnloaded: true,
    });
    assert.equal((await refused(client, 'ModelInfer', infer, bearer(SECRET.predict))).code, status.NOT_FOUND);
    assert.deepEqual(await rpc(client, 'RepositoryModelLoad', { model_name: 'lin' }, bearer(SECRET.admin)), {
      model_name: 'lin',
      isLoaded: true,
    });
    const res = await rpc(client, 'ModelInfer', infer, bearer(SECRET.predict));
    close(
      (res.outputs as Array<{ contents: { fp32_contents: number[] } }>)[0]!.contents.fp32_contents[0]!,
      linear.reference({ x: X[0]! })[0]!,
      1e-4,
    );
  });

  test('drain: health turns NOT_SERVING, the in-flight call finishes, new calls are refused', async () => {
    const slow = rpc(
      client,
      'ModelInfer',
      {
        model_name: 'slow',
        inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: [1, 2, 3, 4] } }],
      },
      bearer(SECRET.predict),
    );
    // Let the call reach the server before the drain starts.
    await new Promise((r) => setTimeout(r, 100));
    t.server.lifecycle.beginDrain('test');
    assert.deepEqual(await rpc(health, 'Check', { service: '' }), { status: 'NOT_SERVING' });
    assert.deepEqual(await rpc(client, 'ServerReady', {}), { ready: false });
    const closing = t.server.close();
    const res = await slow;
    close(
      (res.outputs as Array<{ contents: { fp32_contents: number[] } }>)[0]!.contents.fp32_contents[0]!,
      10 + 1 / 512,
      1e-3,
    );
    await closing;
    const after_ = await refused(client, 'ServerLive', {}).catch((e: unknown) => ({ code: (e as ServiceError).code }));
    assert.equal(after_.code, status.UNAVAILABLE);
  });
});
