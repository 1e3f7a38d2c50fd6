import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OCR_DEFAULTS, type OcrLine, type Quad } from '@ferry/core';
import { createServer, loadConfig, Repository, type FerryServer } from '@ferry/server';
import { versionDir, writeExample } from '../../lib/example-model.js';
import { FILES, manifest, NAME, ocr, ocrPackage, PIPELINE_PARAMS, VERSION } from '../../ocr/build.js';
import { openOcrVersion, type OcrVersion } from '../../ocr/pipeline.js';
import { inkBounds, renderImage, renderPng, type RenderSpec } from '../../ocr/render.js';

const boxBounds = (q: Quad) => ({
  x0: Math.min(...q.map((p) => p[0])),
  x1: Math.max(...q.map((p) => p[0])),
  y0: Math.min(...q.map((p) => p[1])),
  y1: Math.max(...q.map((p) => p[1])),
});

describe('OCR with PP-OCRv4 through runOcr', () => {
  let repo: string;
  let dir: string;
  let version: OcrVersion;
  before(async () => {
    repo = mkdtempSync(join(tmpdir(), 'ferry-ocr-'));
    await writeExample(ocr, repo);
    dir = versionDir(ocr, repo);
    version = await openOcrVersion(dir);
  });
  after(async () => {
    await version?.dispose();
    rmSync(repo, { recursive: true, force: true });
  });

  const read = async (spec: RenderSpec): Promise<{ lines: OcrLine[]; spec: RenderSpec }> => {
    const image = await renderImage(spec);
    return { lines: await version.read(image), spec };
  };

  test("the version folder holds the package's files unchanged, and the repository reads its contract", async () => {
    const pkg = ocrPackage();
    assert.deepEqual(readFileSync(join(dir, FILES.detector)), readFileSync(pkg.detPath));
    assert.deepEqual(readFileSync(join(dir, FILES.recognizer)), readFileSync(pkg.recPath));
    assert.equal(readFileSync(join(dir, FILES.charset), 'utf8'), readFileSync(pkg.dictPath, 'utf8'));
    const [v] = Repository.load(repo).allVersions();
    assert.equal(v!.version, VERSION);
    assert.deepEqual(v!.manifest, JSON.parse(JSON.stringify(manifest())));
    assert.deepEqual(v!.manifest.pipeline?.params, PIPELINE_PARAMS);
    assert.equal(v!.manifest.pipeline?.detector.model, FILES.detector);
    assert.deepEqual(
      v!.manifest.inputs.map((i) => [i.name, i.type]),
      [['image', 'image']],
    );
    // blank + 6,623 dictionary symbols + space = the recogniser's 6,625 classes.
    assert.equal(version.params.labels.length, 6625);
    assert.equal(version.params.labels[0], '');
    assert.equal(version.params.labels.at(-1), ' ');
    assert.match(readFileSync(join(dir, 'card.md'), 'utf8'), /Apache License 2\.0/);
  });

  test('one line: reads "HELLO 2026" exactly, its box around the ink', async () => {
    const spec: RenderSpec = { width: 720, height: 160, spans: [{ text: 'HELLO 2026', x: 30, y: 102, size: 64 }] };
    const { lines } = await read(spec);
    assert.deepEqual(
      lines.map((l) => l.text),
      ['HELLO 2026'],
    );
    assert.ok(lines[0]!.confidence > 0.9, `confidence ${lines[0]!.confidence}`);
    const ink = inkBounds(await renderImage(spec))!;
    const box = boxBounds(lines[0]!.box);
    // The box holds the ink (to a pixel or two: the map is coarser than the glyph edges) and the
    // margin around it is the unclip growth, a fraction of the text height, not more.
    const margins = [ink.x0 - box.x0, ink.y0 - box.y0, box.x1 - ink.x1, box.y1 - ink.y1];
    assert.ok(
      margins.every((m) => m >= -2 && m <= 0.5 * (ink.y1 - ink.y0)),
      `box ${JSON.stringify(box)} vs ink ${JSON.stringify(ink)}`,
    );
  });

  test('two lines: read top to bottom', async () => {
    const { lines } = await read({
      width: 640,
      height: 240,
      spans: [
        { text: 'into production', x: 30, y: 170, size: 36 },
        { text: 'Ferry carries models', x: 30, y: 80, size: 36 },
      ],
    });
    assert.deepEqual(
      lines.map((l) => l.text),
      ['Ferry carries models', 'into production'],
    );
    assert.ok(boxBounds(lines[0]!.box).y1 < boxBounds(lines[1]!.box).y0);
  });

  test('small text, and large text in an image wider than maxSideLen (shrunk for detection)', async () => {
    const small = await read({ width: 200, height: 40, spans: [{ text: 'INV-7731', x: 8, y: 27, size: 16 }] });
    assert.deepEqual(
      small.lines.map((l) => l.text),
      ['INV-7731'],
    );
    const large = await read({
      width: 1600,
      height: 300,
      spans: [{ text: 'Small print 42', x: 50, y: 150, size: 80 }],
    });
    assert.ok(1600 > OCR_DEFAULTS.maxSideLen);
    assert.deepEqual(
      large.lines.map((l) => l.text),
      ['Small print 42'],
    );
    // Boxes come back in the original image's pixels, not the detector's.
    assert.ok(boxBounds(large.lines[0]!.box).x1 > 600, JSON.stringify(large.lines[0]!.box));
  });

  test('multi-word lines in several fonts and sizes keep their spaces (a set the threshold was not tuned on)', async () => {
    // spaceThreshold was chosen on other lines (DejaVu Sans and Liberation Sans, 30–46 px, docs/contract.md);
    // with plain greedy decoding most of these lose every space ("Deliverywindow9to12").
    const lines: Array<[string, string, number]> = [
      ['Delivery window 9 to 12', 'DejaVu Serif', 36],
      ['Ref AB-204 paid in full', 'Liberation Serif', 40],
      ['Room 14 on floor 3', 'DejaVu Sans', 34],
      ['Balance carried over 77.10', 'Liberation Sans', 42],
      ['Sign here please', 'Liberation Serif', 32],
      ['Total due: 1,284.50 EUR', 'DejaVu Serif', 38],
    ];
    const got: string[] = [];
    for (const [text, font, size] of lines) {
      const r = await read({ width: 1000, height: 100, font, spans: [{ text, x: 20, y: 66, size }] });
      got.push(r.lines.map((l) => l.text).join(' | '));
    }
    const exact = got.filter((g, i) => g === lines[i]![0]).length;
    assert.ok(exact >= 5, `${exact}/6 exact: ${JSON.stringify(got)}`);
    // Every line has its words, whatever a glyph or two may read as.
    got.forEach((g, i) => assert.equal(g.split(' ').length, lines[i]![0].split(' ').length, JSON.stringify(got)));
  });

  test('two words far apart on one line: read left to right', async () => {
    const { lines } = await read({
      width: 700,
      height: 100,
      spans: [
        { text: 'TOTAL', x: 480, y: 60, size: 32 },
        { text: 'Subtotal', x: 20, y: 62, size: 32 },
      ],
    });
    assert.deepEqual(
      lines.map((l) => l.text),
      ['Subtotal', 'TOTAL'],
    );
  });

  test('a line tilted by 15 degrees, coloured on a tinted background: the rotated crop reads it', async () => {
    const { lines } = await read({
      width: 500,
      height: 500,
      background: '#fffbe6',
      spans: [{ text: 'Tilted 314', x: 90, y: 265, size: 44, rotate: -15, color: '#1a237e' }],
    });
    assert.deepEqual(
      lines.map((l) => l.text),
      ['Tilted 314'],
    );
    const [tl, tr] = lines[0]!.box;
    const angle = (Math.atan2(tr[1] - tl[1], tr[0] - tl[0]) * 180) / Math.PI;
    assert.ok(Math.abs(angle + 15) < 3, `box angle ${angle}`);
  });

  test('a blank image has no text', async () => {
    const { lines } = await read({ width: 320, height: 120, spans: [] });
    assert.deepEqual(lines, []);
  });
});

describe('the ocr version served by Ferry', () => {
  let repo: string;
  let server: FerryServer;
  before(async () => {
    repo = mkdtempSync(join(tmpdir(), 'ferry-ocr-served-'));
    await writeExample(ocr, repo);
    server = await createServer(
      loadConfig({
        env: {},
        overrides: { 'models.dir': repo, 'runtime.workers': 1, 'runtime.warmupRuns': 1, 'log.level': 'silent' },
      }),
      { logger: false },
    );
    await server.loaded;
  });
  after(async () => {
    await server?.close();
    rmSync(repo, { recursive: true, force: true });
  });

  test('loads, and answers a base64 PNG with the same lines as runOcr', async () => {
    const spec: RenderSpec = {
      width: 640,
      height: 240,
      spans: [
        { text: 'Ferry carries models', x: 30, y: 80, size: 36 },
        { text: 'into production', x: 30, y: 170, size: 36 },
      ],
    };
    const r = await server.app.inject({
      method: 'POST',
      url: `/v1/models/${NAME}/predict`,
      payload: { instances: [{ image: (await renderPng(spec)).toString('base64') }] },
    });
    assert.equal(r.statusCode, 200, r.body);
    assert.equal(r.headers['ferry-model-version'], VERSION);
    const lines = r.json().predictions[0].lines as OcrLine[];
    assert.deepEqual(
      lines.map((l) => l.text),
      ['Ferry carries models', 'into production'],
    );
    for (const l of lines) assert.ok(l.confidence > 0.9 && l.box.length === 4, JSON.stringify(l));
  });
});
