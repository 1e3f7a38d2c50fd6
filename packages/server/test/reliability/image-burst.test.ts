// Reliability (issue 24, item 11): a burst of large, highly compressible PNGs (a few kB each,
// millions of pixels decoded) is decoded a few at a time, within the budget of decoded pixels in
// flight, and every submission is still answered. Scaled down from the report (12 × 3999×3999) to
// 12 × 2500×2500 with a budget of two such images; bench/src/image-burst.ts measures RSS at full size.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { startTestServer, type TestServer } from '@ferry/test-kit';
import { decodeGate } from '../serving/predict/decode-gate.js';

const MODELS = fileURLToPath(new URL('../../../../models', import.meta.url));
const SIDE = 2500;
let ts: TestServer;

before(async () => {
  ts = await startTestServer([], {
    'jobs.workers': false,
    'limits.maxConcurrentImageDecodes': 4,
    'limits.maxDecodedPixelsInFlight': 2 * SIDE * SIDE,
  });
  cpSync(join(MODELS, 'ocr'), join(ts.repoDir, 'ocr'), { recursive: true });
  await ts.server.reloadConfig();
});
after(() => ts.close());

test('12 concurrent large PNGs: decoded within the pixel budget, all answered', async () => {
  const png = await sharp({ create: { width: SIDE, height: SIDE, channels: 3, background: '#ffffff' } })
    .png()
    .toBuffer();
  assert.ok(png.length < 100_000);
  const before = decodeGate.stats().peakPixels;
  const answers = await Promise.all(
    Array.from({ length: 12 }, () =>
      ts.server.app.inject({
        method: 'POST',
        url: '/v1/models/ocr/jobs',
        payload: png,
        headers: { 'content-type': 'image/png' },
      }),
    ),
  );
  for (const a of answers) assert.equal(a.statusCode, 202, a.body.slice(0, 200));
  const { peakPixels, active, pixels } = decodeGate.stats();
  assert.ok(peakPixels >= before);
  assert.ok(peakPixels <= 2 * SIDE * SIDE, `${peakPixels} pixels were decoded at once`);
  assert.equal(active, 0);
  assert.equal(pixels, 0);
});
