// The OCR showcase as a job: a document image uploaded as multipart/form-data (or a raw image body)
// becomes a job whose result is the text lines with their boxes, from the repository's real `ocr`
// model (PP-OCRv4 detector + recogniser pipeline).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { loadConfig } from '../../config/index.js';
import { createServer, type FerryServer } from '../../app/create-server.js';
import type { JobDocument } from '../../jobs/types.js';

const ROOT = fileURLToPath(new URL('../../../../../', import.meta.url));
const squash = (s: string) => s.replace(/\s+/g, '');

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

function multipart(parts: Array<{ name: string; filename?: string; type?: string; data: Buffer | string }>): {
  body: Buffer;
  contentType: string;
} {
  const boundary = `ferry-${Math.random().toString(16).slice(2)}`;
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const disp = `form-data; name="${p.name}"${p.filename ? `; filename="${p.filename}"` : ''}`;
    chunks.push(
      Buffer.from(
        `--${boundary}\r\ncontent-disposition: ${disp}\r\n${p.type ? `content-type: ${p.type}\r\n` : ''}\r\n`,
      ),
    );
    chunks.push(Buffer.isBuffer(p.data) ? p.data : Buffer.from(p.data));
    chunks.push(Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}

describe('OCR documents as jobs', () => {
  let server: FerryServer;
  let repo: string;
  before(async () => {
    repo = mkdtempSync(join(tmpdir(), 'ferry-ocr-job-'));
    cpSync(join(ROOT, 'models', 'ocr'), join(repo, 'ocr'), { recursive: true });
    server = await createServer(
      loadConfig({
        env: {},
        overrides: {
          'models.dir': repo,
          'runtime.workers': 1,
          'runtime.warmupRuns': 1,
          'log.level': 'silent',
          'store.url': 'sqlite::memory:',
          'jobs.pollIntervalMs': 20,
          'server.bodyLimitBytes': 2_000_000,
        },
      }),
      { logger: false },
    );
    await server.loaded;
  });
  after(async () => {
    await server.close();
    rmSync(repo, { recursive: true, force: true });
  });

  const waitDone = async (id: string): Promise<JobDocument> => {
    for (let i = 0; i < 1200; i++) {
      const j = (await server.app.inject({ method: 'GET', url: `/v1/jobs/${id}` })).json() as JobDocument;
      if (['completed', 'failed', 'cancelled'].includes(j.state)) return j;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`job ${id} did not finish`);
  };

  test("a multipart upload of two pages → one job, each page's text lines with boxes, progress per page", async () => {
    const page1 = await render(['HELLO FERRY 2026', 'second line 42']);
    const page2 = await sharp(await render(['Invoice 7731'], 400, 30))
      .jpeg({ quality: 92 })
      .toBuffer();
    const { body, contentType } = multipart([
      { name: 'image', filename: 'page1.png', type: 'image/png', data: page1 },
      { name: 'image', filename: 'page2.jpg', type: 'image/jpeg', data: page2 },
    ]);
    const r = await server.app.inject({
      method: 'POST',
      url: '/v1/models/ocr/jobs',
      payload: body,
      headers: { 'content-type': contentType },
    });
    assert.equal(r.statusCode, 202, r.body);
    const done = await waitDone(r.json().id);
    assert.equal(done.state, 'completed', JSON.stringify(done.error));
    const pages = done.result!.predictions as Array<{
      lines: Array<{ text: string; confidence: number; box: number[][] }>;
    }>;
    assert.equal(pages.length, 2);
    assert.deepEqual(
      pages[0]!.lines.map((l) => squash(l.text)),
      ['HELLOFERRY2026', 'secondline42'],
    );
    assert.deepEqual(
      pages[1]!.lines.map((l) => squash(l.text)),
      ['Invoice7731'],
    );
    for (const l of pages.flatMap((p) => p.lines)) {
      assert.ok(l.confidence > 0.8, `confidence ${l.confidence}`);
      assert.equal(l.box.length, 4);
      for (const [x, y] of l.box)
        assert.ok(x! >= 0 && x! <= 640 && y! >= 0 && y! <= 200, `box point ${x},${y} inside the page`);
    }
    assert.ok(pages[0]!.lines[0]!.box[0]![1]! < pages[0]!.lines[1]!.box[0]![1]!, 'top line first');
  });

  test('a raw image body and a base64 JSON instance work as jobs too', async () => {
    const png = await render(['Total 99']);
    const raw = await server.app.inject({
      method: 'POST',
      url: '/v1/models/ocr/jobs',
      payload: png,
      headers: { 'content-type': 'image/png' },
    });
    assert.equal(raw.statusCode, 202, raw.body);
    const json = await server.app.inject({
      method: 'POST',
      url: '/v1/models/ocr/jobs',
      payload: { instances: [{ image: png.toString('base64') }] },
    });
    assert.equal(json.statusCode, 202, json.body);
    for (const id of [raw.json().id, json.json().id]) {
      const done = await waitDone(id);
      assert.equal(done.state, 'completed', JSON.stringify(done.error));
      assert.deepEqual(
        (done.result!.predictions[0] as { lines: Array<{ text: string }> }).lines.map((l) => squash(l.text)),
        ['Total99'],
      );
    }
  });

  test('a bad upload is refused at submission, naming the part', async () => {
    const page = await sharp(await render(['Truncated page'], 400, 30))
      .png({ compressionLevel: 0 })
      .toBuffer();
    const truncated = page.subarray(0, Math.floor(page.length * 0.6));
    const cases: Array<
      [Array<{ name: string; filename?: string; type?: string; data: Buffer | string }>, number, RegExp]
    > = [
      [[{ name: 'image', filename: 'x.png', type: 'image/png', data: 'not an image' }], 400, /instances\/0\/image/],
      // A valid header over cut-off pixel data: refused at submission, not left for the job's run to find.
      [[{ name: 'image', filename: 'x.png', type: 'image/png', data: truncated }], 400, /instances\/0\/image/],
      [[{ name: 'picture', filename: 'x.png', type: 'image/png', data: await render(['x']) }], 400, /\/picture/],
      [[{ name: 'callbackUrl', data: 'http://example.com/' }], 400, /\/image|\/callbackUrl/],
      [
        [
          { name: 'image', filename: 'x.png', type: 'image/png', data: await render(['x']) },
          { name: 'callbackUrl', data: 'http://169.254.169.254/latest' },
        ],
        400,
        /\/callbackUrl/,
      ],
      [[{ name: 'sneaky', data: '1' }], 400, /\/sneaky/],
    ];
    for (const [parts, status, pointer] of cases) {
      const { body, contentType } = multipart(parts);
      const r = await server.app.inject({
        method: 'POST',
        url: '/v1/models/ocr/jobs',
        payload: body,
        headers: { 'content-type': contentType },
      });
      assert.equal(r.statusCode, status, r.body);
      assert.match(r.headers['content-type'] as string, /problem\+json/);
      assert.ok(
        r.json().errors.some((e: { pointer: string }) => pointer.test(e.pointer)),
        r.body,
      );
    }
    // Files under the per-file cap that together exceed the body limit: 413, not buffered without bound.
    const big = Buffer.alloc(1_200_000, 7);
    const upload = multipart([
      { name: 'image', filename: 'a.png', data: big },
      { name: 'image', filename: 'b.png', data: big },
    ]);
    const tooBig = await server.app.inject({
      method: 'POST',
      url: '/v1/models/ocr/jobs',
      payload: upload.body,
      headers: { 'content-type': upload.contentType },
    });
    assert.equal(tooBig.statusCode, 413, tooBig.body);
    assert.equal(tooBig.json().code, 'body-too-large');
    const oneHuge = multipart([{ name: 'image', filename: 'a.png', data: Buffer.alloc(2_100_000, 7) }]);
    const r413 = await server.app.inject({
      method: 'POST',
      url: '/v1/models/ocr/jobs',
      payload: oneHuge.body,
      headers: { 'content-type': oneHuge.contentType },
    });
    assert.equal(r413.statusCode, 413, r413.body);
    const list = (await server.app.inject({ method: 'GET', url: '/v1/jobs?model=ocr&state=failed' })).json().jobs;
    assert.equal(list.length, 0, 'no bad upload became a failed job');
  });
});
