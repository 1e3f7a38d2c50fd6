import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { InjectOptions } from 'fastify';
import { Validator } from '@seriousme/openapi-schema-validator';
import { startTestServer, type TestServer, tinyClassifier, tinyLinearModel } from '@ferry/test-kit';

const cls = tinyClassifier();
const lin = tinyLinearModel();
const close = (a: number, b: number, tol = 1e-5) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

describe('v1 and v2 APIs over real models', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer([
      { name: 'cls', version: '1.0.0', files: cls },
      { name: 'cls', version: '1.1.0', files: { ...cls, files: { 'card.md': '# cls 1.1.0\nA card.' } } },
      { name: 'lin', version: '1.0.0', files: lin },
      {
        name: 'ref',
        version: '1.0.0',
        files: {
          ...cls,
          manifest: { ...cls.manifest, reference: 'reference.jsonl' },
          files: {
            'reference.jsonl':
              '{"amount":12.5,"items":7,"member":false,"color":"blue","prediction":"no"}\n{"amount":1,"items":1,"member":true,"color":"red"}\n',
          },
        },
      },
    ]);
  });
  after(() => t.close());
  const inject = (o: InjectOptions) => t.server.app.inject(o);

  test('lists models with versions, and describes one with its contract, schemas and card', async () => {
    const r = await inject({ url: '/v1/models' });
    assert.equal(r.statusCode, 200);
    const body = r.json();
    assert.deepEqual(
      body.models.map((m: { name: string }) => m.name),
      ['cls', 'lin', 'ref'],
    );
    const c = body.models[0];
    assert.equal(c.defaultVersion, '1.1.0');
    assert.deepEqual(
      c.versions.map((v: { version: string; state: string }) => [v.version, v.state]),
      [
        ['1.1.0', 'ready'],
        ['1.0.0', 'ready'],
      ],
    );
    const d = (await inject({ url: '/v1/models/cls' })).json();
    assert.equal(d.version, '1.1.0');
    assert.match(d.card, /A card/);
    assert.deepEqual(d.schemas.instance.required, ['amount', 'items', 'member', 'color']);
    assert.equal(d.contract.postprocess.kind, 'classification');
    assert.equal((await inject({ url: '/v1/models/cls/versions/1.0.0' })).json().version, '1.0.0');
    assert.equal((await inject({ url: '/v1/models/cls@1.0.0' })).json().version, '1.0.0');
  });

  test('a description carries one example instance: the first reference row, else one from the contract', async () => {
    const withRef = (await inject({ url: '/v1/models/ref' })).json();
    // The reference row's inputs, without the prediction it was logged with.
    assert.deepEqual(withRef.example, { amount: 12.5, items: 7, member: false, color: 'blue' });
    const built = (await inject({ url: '/v1/models/lin' })).json();
    assert.deepEqual(built.example, { x: [0, 0, 0, 0, 0, 0, 0, 0] });
    for (const model of ['ref', 'cls', 'lin']) {
      const { example } = (await inject({ url: `/v1/models/${model}` })).json();
      const r = await inject({ method: 'POST', url: `/v1/models/${model}/predict`, payload: { instances: [example] } });
      assert.equal(r.statusCode, 200, `${model}: ${r.body}`);
    }
  });

  test('predicts classifier instances: labels and per-label scores equal the reference', async () => {
    const instances = [
      cls.example,
      { amount: 900, items: 0, member: false, color: 'red' },
      { amount: 0, items: 100, member: true, color: 'blue' },
    ];
    const r = await inject({ method: 'POST', url: '/v1/models/cls/predict', payload: { instances } });
    assert.equal(r.statusCode, 200, r.body);
    assert.equal(r.headers['ferry-model-version'], '1.1.0');
    const body = r.json();
    assert.equal(body.model, 'cls');
    assert.equal(body.predictions.length, 3);
    body.predictions.forEach((p: { label: string; scores: Record<string, number> }, i: number) => {
      const ref = cls.reference(instances[i]!);
      close(p.scores.no!, ref[0]!);
      close(p.scores.yes!, ref[1]!);
      assert.equal(p.label, ref[1]! > ref[0]! ? 'yes' : 'no');
    });
  });

  test('columnar inputs give the same predictions as rows', async () => {
    const rows = [cls.example, { amount: 10, items: 3, member: false, color: 'red' }];
    const cols = Object.fromEntries(
      Object.keys(cls.example).map((k) => [k, rows.map((r) => (r as Record<string, unknown>)[k])]),
    );
    const a = (await inject({ method: 'POST', url: '/v1/models/cls/predict', payload: { instances: rows } })).json();
    const b = (await inject({ method: 'POST', url: '/v1/models/cls/predict', payload: { inputs: cols } })).json();
    assert.deepEqual(b.predictions, a.predictions);
  });

  test('pinned versions answer and say so in Ferry-Model-Version', async () => {
    for (const [url, v] of [
      ['/v1/models/cls@1.0.0/predict', '1.0.0'],
      ['/v1/models/cls/versions/1.0.0/predict', '1.0.0'],
      ['/v1/models/cls@1/predict', '1.1.0'],
      ['/v1/models/cls/versions/latest/predict', '1.1.0'],
    ] as const) {
      const r = await inject({ method: 'POST', url, payload: { instances: [cls.example] } });
      assert.equal(r.statusCode, 200, url);
      assert.equal(r.headers['ferry-model-version'], v, url);
      assert.equal(r.json().version, v);
    }
  });

  test('raw tensor models take one row per instance and return named outputs', async () => {
    const xs = [lin.example.x, [1, 1, 1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0, 0, -3]];
    const r = await inject({
      method: 'POST',
      url: '/v1/models/lin/predict',
      payload: { instances: xs.map((x) => ({ x })) },
    });
    assert.equal(r.statusCode, 200, r.body);
    r.json().predictions.forEach((p: { value: number }, i: number) => close(p.value, lin.reference({ x: xs[i]! })[0]!));
    const c = await inject({ method: 'POST', url: '/v1/models/lin/predict', payload: { inputs: { x: xs } } });
    assert.deepEqual(c.json().predictions, r.json().predictions);
  });

  test('v2 server and model metadata, health and readiness follow the protocol', async () => {
    const s = (await inject({ url: '/v2' })).json();
    assert.equal(s.name, 'ferry');
    assert.ok(Array.isArray(s.extensions));
    assert.deepEqual((await inject({ url: '/v2/health/live' })).json(), { live: true });
    assert.equal((await inject({ url: '/v2/health/ready' })).statusCode, 200);
    const m = (await inject({ url: '/v2/models/lin' })).json();
    assert.equal(m.name, 'lin');
    assert.equal(m.platform, 'onnxruntime_onnx');
    assert.deepEqual(m.inputs, [{ name: 'x', datatype: 'FP32', shape: [-1, 8] }]);
    assert.deepEqual(m.outputs, [{ name: 'y', datatype: 'FP32', shape: [-1, 1] }]);
    assert.deepEqual((await inject({ url: '/v2/models/cls/versions/1.0.0' })).json().versions, ['1.0.0']);
    assert.equal((await inject({ url: '/v2/models/cls/versions/1.0.0/ready' })).json().ready, true);
    assert.equal((await inject({ url: '/v2/models/cls/ready' })).statusCode, 200);
  });

  test('v2 infer with flat and nested data, echoed id and requested outputs', async () => {
    const xs = [lin.example.x, [2, 0, 0, 0, 0, 0, 0, 0]];
    for (const data of [xs.flat(), xs]) {
      const r = await inject({
        method: 'POST',
        url: '/v2/models/lin/infer',
        payload: {
          id: 'req-7',
          inputs: [{ name: 'x', shape: [2, 8], datatype: 'FP32', data }],
          outputs: [{ name: 'y' }],
        },
      });
      assert.equal(r.statusCode, 200, r.body);
      const b = r.json();
      assert.equal(b.id, 'req-7');
      assert.equal(b.model_name, 'lin');
      assert.equal(b.model_version, '1.0.0');
      assert.deepEqual(
        b.outputs.map((o: { name: string; datatype: string; shape: number[] }) => [o.name, o.datatype, o.shape]),
        [['y', 'FP32', [2, 1]]],
      );
      b.outputs[0].data.forEach((y: number, i: number) => close(y, lin.reference({ x: xs[i]! })[0]!));
    }
  });

  test('v2 infer refuses ragged or partly nested data, naming the tensor, instead of shifting values', async () => {
    const row = lin.example.x;
    const cases: Array<[unknown, RegExp, string]> = [
      [[row, [...row, 9].slice(0, 7)], /needs 8 items at depth 1, got 7/, '/inputs/0/data/1'],
      [[[...row, 9], row.slice(0, 7)], /needs 8 items at depth 1, got 9/, '/inputs/0/data/0'],
      [[row, 3], /expected a list of 8 at depth 1/, '/inputs/0/data/1'],
      [[...row, row], /expected a list of 8 at depth 0|needs 2 items at depth 0/, '/inputs/0/data'],
      [[[row], [row]], /nested deeper than its shape|needs 8 items/, '/inputs/0/data/0'],
    ];
    for (const [data, reason, pointer] of cases) {
      const r = await inject({
        method: 'POST',
        url: '/v2/models/lin/infer',
        payload: { inputs: [{ name: 'x', shape: [2, 8], datatype: 'FP32', data }] },
      });
      assert.equal(r.statusCode, 400, `${JSON.stringify(data)}: ${r.body}`);
      assert.match(r.headers['content-type'] as string, /application\/problem\+json/);
      const errors = r.json().errors as Array<{ pointer: string; reason: string }>;
      assert.ok(
        errors.some((e) => e.pointer.startsWith(pointer) && reason.test(e.reason) && /input "x"/.test(e.reason)),
        `${JSON.stringify(data)}: ${r.body}`,
      );
    }
  });

  test('v2 infer accepts one column per contract feature and runs the preprocessing', async () => {
    const r = await inject({
      method: 'POST',
      url: '/v2/models/cls/versions/1.0.0/infer',
      payload: {
        inputs: [
          { name: 'amount', shape: [2], datatype: 'FP64', data: [72.5, 900] },
          { name: 'items', shape: [2, 1], datatype: 'INT32', data: [[2], [0]] },
          { name: 'member', shape: [2], datatype: 'BOOL', data: [true, false] },
          { name: 'color', shape: [2], datatype: 'BYTES', data: ['green', 'red'] },
        ],
      },
    });
    assert.equal(r.statusCode, 200, r.body);
    const out = r.json().outputs[0];
    assert.deepEqual(out.shape, [2, 2]);
    const ref = [
      cls.reference(cls.example),
      cls.reference({ amount: 900, items: 0, member: false, color: 'red' }),
    ].flat();
    out.data.forEach((v: number, i: number) => close(v, ref[i]!));
  });

  test("the OpenAPI document is valid OpenAPI 3.1 and carries each model's derived schemas", async () => {
    const r = await inject({ url: '/openapi.json' });
    assert.equal(r.statusCode, 200);
    const doc = r.json();
    const v = new Validator();
    const res = await v.validate(doc);
    assert.equal(res.valid, true, String(JSON.stringify(res.errors ?? null)).slice(0, 2000));
    assert.equal(v.version, '3.1');
    assert.ok(doc.paths['/v1/models/cls/predict'].post);
    assert.ok(doc.paths['/v1/models/cls/versions/1.0.0/predict'].post);
    const req = doc.components.schemas['cls_1.1.0_PredictRequest'];
    const inst = req.oneOf[0].properties.instances.items;
    assert.deepEqual(inst.properties.color.enum, ['red', 'green', 'blue']);
    assert.equal(inst.properties.amount.maximum, 1000);
    assert.deepEqual(
      doc.components.schemas['cls_1.1.0_PredictResponse'].properties.predictions.items.properties.label.enum,
      ['no', 'yes'],
    );
    const docs = await inject({ url: '/docs' });
    assert.equal(docs.statusCode, 200);
    writeFileSync(join(t.repoDir, 'openapi.json'), r.body);
  });

  test('metrics count requests by route, model, version and status', async () => {
    await inject({ method: 'POST', url: '/v1/models/lin/predict', payload: { instances: [lin.example] } });
    await inject({ method: 'POST', url: '/v1/models/lin/predict', payload: { instances: [{ x: [1] }] } });
    const text = (await inject({ url: '/metrics' })).body;
    assert.match(text, /ferry_requests_total\{route="v1_predict",model="lin",version="1\.0\.0",status="200"\} [1-9]/);
    assert.match(text, /ferry_requests_total\{route="v1_predict",model="lin",version="1\.0\.0",status="400"\} 1/);
    assert.match(
      text,
      /ferry_request_duration_seconds_bucket\{le="0\.005",route="v1_predict",model="lin",version="1\.0\.0"\}/,
    );
    assert.match(text, /ferry_model_ready\{model="cls",version="1\.0\.0"\} 1/);
    assert.match(text, /ferry_nodejs_eventloop_lag_seconds/);
  });
});
