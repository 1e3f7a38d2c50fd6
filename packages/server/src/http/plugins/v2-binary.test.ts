import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer, tinyClassifier, tinyLinearModel } from '@ferry/test-kit';

const lin = tinyLinearModel();
const cls = tinyClassifier();

function binaryBody(header: unknown, ...chunks: Buffer[]): { payload: Buffer; headerLength: number } {
  const json = Buffer.from(JSON.stringify(header));
  return { payload: Buffer.concat([json, ...chunks]), headerLength: json.length };
}
const f32 = (xs: number[]) => Buffer.from(Float32Array.from(xs).buffer);
const bytesEl = (xs: string[]) =>
  Buffer.concat(
    xs.flatMap((s) => {
      const b = Buffer.from(s);
      const l = Buffer.alloc(4);
      l.writeUInt32LE(b.length);
      return [l, b];
    }),
  );

describe('Open Inference Protocol binary tensor data extension', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer([
      { name: 'lin', version: '1.0.0', files: lin },
      { name: 'cls', version: '1.0.0', files: cls },
    ]);
  });
  after(() => t.close());
  const send = (
    url: string,
    b: { payload: Buffer; headerLength: number },
    headerLength: string | null = String(b.headerLength),
  ) =>
    t.server.app.inject({
      method: 'POST',
      url,
      payload: b.payload,
      headers: {
        'content-type': 'application/octet-stream',
        ...(headerLength !== null && { 'inference-header-content-length': headerLength }),
      },
    });

  test('/v2 lists the extension', async () => {
    assert.ok((await t.server.app.inject({ url: '/v2' })).json().extensions.includes('binary_tensor_data'));
  });

  test('binary input, binary output: same numbers as JSON', async () => {
    const xs = [lin.example.x, [1, 2, 3, 4, 5, 6, 7, 8]];
    const b = binaryBody(
      {
        inputs: [{ name: 'x', shape: [2, 8], datatype: 'FP32', parameters: { binary_data_size: 64 } }],
        outputs: [{ name: 'y', parameters: { binary_data: true } }],
      },
      f32(xs.flat()),
    );
    const r = await send('/v2/models/lin/infer', b);
    assert.equal(r.statusCode, 200, r.body);
    assert.equal(r.headers['content-type'], 'application/octet-stream');
    const n = Number(r.headers['inference-header-content-length']);
    const raw = r.rawPayload;
    const header = JSON.parse(raw.subarray(0, n).toString());
    assert.deepEqual(header.outputs[0], {
      name: 'y',
      datatype: 'FP32',
      shape: [2, 1],
      parameters: { binary_data_size: 8 },
    });
    const ys = new Float32Array(raw.subarray(n).buffer.slice(raw.byteOffset + n, raw.byteOffset + n + 8));
    xs.forEach((x, i) => assert.ok(Math.abs(ys[i]! - lin.reference({ x })[0]!) < 1e-5));
  });

  test('binary input with a JSON answer, and binary BYTES feature columns', async () => {
    const r = await send(
      '/v2/models/lin/infer',
      binaryBody(
        { inputs: [{ name: 'x', shape: [1, 8], datatype: 'FP32', parameters: { binary_data_size: 32 } }] },
        f32(lin.example.x),
      ),
    );
    assert.equal(r.statusCode, 200, r.body);
    assert.ok(Math.abs(r.json().outputs[0].data[0] - lin.reference(lin.example)[0]!) < 1e-5);
    const c = await send(
      '/v2/models/cls/infer',
      binaryBody(
        {
          inputs: [
            { name: 'amount', shape: [1], datatype: 'FP32', data: [72.5] },
            { name: 'items', shape: [1], datatype: 'INT64', data: [2] },
            { name: 'member', shape: [1], datatype: 'BOOL', parameters: { binary_data_size: 1 } },
            { name: 'color', shape: [1], datatype: 'BYTES', parameters: { binary_data_size: 9 } },
          ],
          parameters: { binary_data_output: false },
        },
        Buffer.from([1]),
        bytesEl(['green']),
      ),
    );
    assert.equal(c.statusCode, 200, c.body);
    const ref = cls.reference(cls.example);
    c.json().outputs[0].data.forEach((v: number, i: number) => assert.ok(Math.abs(v - ref[i]!) < 1e-5));
  });

  const bad: Array<[string, { payload: Buffer; headerLength: number }, string | undefined, string]> = [
    ['no header length', binaryBody({ inputs: [] }), undefined, 'invalid-request'],
    ['header length past the body', binaryBody({ inputs: [] }), '9999', 'invalid-request'],
    ['header not JSON', { payload: Buffer.from('{oops'), headerLength: 5 }, '5', 'invalid-json'],
    [
      'byte count does not match the shape',
      binaryBody(
        { inputs: [{ name: 'x', shape: [1, 8], datatype: 'FP32', parameters: { binary_data_size: 12 } }] },
        f32([1, 2, 3]),
      ),
      undefined,
      'invalid-input',
    ],
    [
      'declared more bytes than sent',
      binaryBody(
        { inputs: [{ name: 'x', shape: [1, 8], datatype: 'FP32', parameters: { binary_data_size: 32 } }] },
        f32([1, 2]),
      ),
      undefined,
      'invalid-input',
    ],
    [
      'bytes left over',
      binaryBody(
        { inputs: [{ name: 'x', shape: [1, 8], datatype: 'FP32', parameters: { binary_data_size: 32 } }] },
        f32(lin.example.x),
        Buffer.from([0]),
      ),
      undefined,
      'invalid-input',
    ],
    [
      'NaN in binary floats',
      binaryBody(
        { inputs: [{ name: 'x', shape: [1, 8], datatype: 'FP32', parameters: { binary_data_size: 32 } }] },
        f32([NaN, 0, 0, 0, 0, 0, 0, 0]),
      ),
      undefined,
      'invalid-input',
    ],
    [
      'negative binary size',
      binaryBody({ inputs: [{ name: 'x', shape: [1, 8], datatype: 'FP32', parameters: { binary_data_size: -4 } }] }),
      undefined,
      'invalid-input',
    ],
    [
      'both data and binary',
      binaryBody(
        {
          inputs: [
            { name: 'x', shape: [1, 8], datatype: 'FP32', data: lin.example.x, parameters: { binary_data_size: 32 } },
          ],
        },
        f32(lin.example.x),
      ),
      undefined,
      'invalid-input',
    ],
    [
      'truncated BYTES prefix',
      binaryBody(
        {
          inputs: [
            { name: 'amount', shape: [1], datatype: 'FP32', data: [1] },
            { name: 'items', shape: [1], datatype: 'INT64', data: [2] },
            { name: 'member', shape: [1], datatype: 'BOOL', data: [true] },
            { name: 'color', shape: [1], datatype: 'BYTES', parameters: { binary_data_size: 2 } },
          ],
        },
        Buffer.from([5, 0]),
      ),
      undefined,
      'invalid-input',
    ],
  ];
  for (const [name, body, headerLength, code] of bad) {
    test(`refused: ${name}`, async () => {
      const url = name === 'truncated BYTES prefix' ? '/v2/models/cls/infer' : '/v2/models/lin/infer';
      const r = await send(url, body, name === 'no header length' ? null : (headerLength ?? String(body.headerLength)));
      assert.equal(r.statusCode, r.json().status, r.body);
      assert.ok(r.statusCode >= 400 && r.statusCode < 500, r.body);
      assert.equal(r.json().code, code, r.body);
      assert.equal(typeof r.json().error, 'string');
    });
  }
});
