// Reliability (issue 24, item 5): a multipart job upload is streamed, as it arrives, to the jobs'
// upload thread, which parses the parts and encodes the files; the HTTP thread only counts bytes.
// The limits hold while the body streams: an upload over a limit is refused at the part (or the byte)
// that breaks it, with the request still open, and the connection is closed rather than read on.
// bench/src/reliability.ts measures /healthz while large uploads stream.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync } from 'node:fs';
import { request, type ClientRequest, type IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { startTestServer, type TestServer } from '@ferry/test-kit';
import { UploadReader } from '../http/upload-reader.js';
import { FerryError } from '../errors.js';

const MODELS = fileURLToPath(new URL('../../../../models', import.meta.url));
const BOUNDARY = 'ferry-test-boundary';
const CONTENT_TYPE = `multipart/form-data; boundary=${BOUNDARY}`;
const partHead = (name: string, filename?: string) =>
  Buffer.from(
    `--${BOUNDARY}\r\ncontent-disposition: form-data; name="${name}"` +
      `${filename ? `; filename="${filename}"\r\ncontent-type: image/png` : ''}\r\n\r\n`,
  );
const part = (name: string, data: Buffer | string, filename?: string) =>
  Buffer.concat([partHead(name, filename), Buffer.from(data), Buffer.from('\r\n')]);
const closing = Buffer.from(`--${BOUNDARY}--\r\n`);

describe('the upload reader (a worker thread)', () => {
  const reader = new UploadReader();
  after(() => reader.close());
  const limits = {
    maxBytes: 100_000,
    maxFiles: 2,
    imageField: 'image',
    fieldNames: ['callbackUrl'],
    maxFieldBytes: 64,
  };

  test('parses the parts as they are written, and returns the instances and their JSON', async () => {
    const body = new PassThrough();
    const read = reader.read(body, CONTENT_TYPE, limits);
    const a = Buffer.from('first file \u00ff\u0000 bytes', 'latin1');
    const b = Buffer.alloc(30_000, 9);
    const all = Buffer.concat([part('image', a, 'a.png'), part('callbackUrl', 'http://x/'), part('file', b, 'b.png')]);
    // In small pieces, across part boundaries.
    for (let i = 0; i < all.length; i += 997) body.write(all.subarray(i, i + 997));
    body.end(closing);
    const u = await read;
    assert.deepEqual(u.instances, [{ image: a }, { image: b }]);
    assert.deepEqual(JSON.parse(u.json), [{ image: a.toString('base64') }, { image: b.toString('base64') }]);
    assert.deepEqual(u.fields, { callbackUrl: 'http://x/' });
    assert.equal(u.bytes, all.length + closing.length);
  });

  test('refuses at the byte over the limit, before the body ends', async () => {
    const body = new PassThrough();
    const read = reader.read(body, CONTENT_TYPE, limits);
    body.write(partHead('image', 'a.png'));
    body.write(Buffer.alloc(60_000));
    body.write(Buffer.alloc(60_000)); // crosses 100,000: refused now, the body still open
    await assert.rejects(read, (e: unknown) => e instanceof FerryError && e.code === 'body-too-large');
    assert.equal(body.writableEnded, false);
    assert.equal(reader.active, 0);
  });

  test(
    'refuses a file over the count, a bad field and a malformed body while streaming',
    { timeout: 30_000 },
    async () => {
      const cases: Array<[Buffer[], string, RegExp]> = [
        [[part('image', 'a', 'a'), part('image', 'b', 'b'), part('image', 'c', 'c')], 'too-many-instances', /2 files/],
        [[part('picture', 'a', 'a.png')], 'invalid-input', /unknown file field/],
        [[part('callbackUrl', 'x'.repeat(100))], 'invalid-input', /longer than 64 bytes/],
        [[part('sneaky', '1')], 'invalid-input', /unknown form field/],
      ];
      for (const [parts, code, detail] of cases) {
        const body = new PassThrough();
        const read = reader.read(body, CONTENT_TYPE, limits);
        for (const p of parts) body.write(p);
        // The next part's start ends a field (its value is judged whole); the body is never ended.
        body.write(partHead('image', 'next.png'));
        await assert.rejects(read, (e: unknown) => {
          assert.ok(e instanceof FerryError, String(e));
          assert.equal(e.code, code);
          assert.match(JSON.stringify([e.detail, e.extra]), detail);
          return true;
        });
        body.destroy();
      }
      const noBoundary = reader.read(new PassThrough(), 'multipart/form-data', limits);
      await assert.rejects(noBoundary, (e: unknown) => e instanceof FerryError && e.code === 'invalid-request');
    },
  );
});

describe('multipart job uploads over HTTP', () => {
  let ts: TestServer;
  let port: number;
  before(async () => {
    ts = await startTestServer([], {
      'jobs.workers': false,
      'server.bodyLimitBytes': 1_000_000,
      'limits.maxInstances': 4,
    });
    cpSync(join(MODELS, 'ocr'), join(ts.repoDir, 'ocr'), { recursive: true });
    await ts.server.reloadConfig();
    port = (await ts.server.listen()).port;
  });
  after(() => ts.close());

  /** Opens an upload and returns the request (left open) and its response when it comes. */
  const open = (): { req: ClientRequest; res: Promise<{ res: IncomingMessage; body: string }> } => {
    const req = request({
      host: '127.0.0.1',
      port,
      method: 'POST',
      path: '/v1/models/ocr/jobs',
      headers: { 'content-type': CONTENT_TYPE, 'transfer-encoding': 'chunked' },
    });
    const res = new Promise<{ res: IncomingMessage; body: string }>((resolve, reject) => {
      req.on('response', (r) => {
        let body = '';
        r.setEncoding('utf8');
        r.on('data', (c: string) => (body += c));
        r.on('end', () => resolve({ res: r, body }));
      });
      req.on('error', reject);
    });
    return { req, res };
  };

  test('two images streamed in pieces: 202, and the job stores them as sent', async () => {
    const png = await sharp({ create: { width: 40, height: 20, channels: 3, background: '#ffffff' } })
      .png()
      .toBuffer();
    const { req, res } = open();
    const all = Buffer.concat([part('image', png, 'a.png'), part('image', png, 'b.png'), closing]);
    for (let i = 0; i < all.length; i += 100) req.write(all.subarray(i, i + 100));
    req.end();
    const { res: r, body } = await res;
    assert.equal(r.statusCode, 202, body);
    const job = await ts.server.jobs.store.get(JSON.parse(body).id as string);
    const input = ts.server.jobs.store.input(job!) as { instances: Array<{ image: string }> };
    assert.deepEqual(input.instances, [{ image: png.toString('base64') }, { image: png.toString('base64') }]);
  });

  test('over the body limit: 413 while the client is still sending, and the connection closes', async () => {
    const { req, res } = open();
    req.write(partHead('image', 'big.png'));
    for (let i = 0; i < 20; i++) req.write(Buffer.alloc(64 * 1024, 1)); // 1.3 MB, never ended
    const { res: r, body } = await res;
    assert.equal(r.statusCode, 413, body);
    assert.equal(JSON.parse(body).code, 'body-too-large');
    assert.equal(r.headers.connection, 'close');
    assert.equal(req.writableEnded, false, 'refused before the upload ended');
    req.destroy();
  });

  test('a fifth file is refused when it starts, not after the body', async () => {
    const { req, res } = open();
    for (let i = 0; i < 5; i++) req.write(part('image', Buffer.alloc(1000, i), `${i}.png`));
    req.write(partHead('image', 'late.png'));
    const { res: r, body } = await res;
    assert.equal(r.statusCode, 400, body);
    assert.equal(JSON.parse(body).code, 'too-many-instances');
    assert.equal(req.writableEnded, false);
    req.destroy();
  });
});
