import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { Repository } from '@ferry/server';
import { compileDecoder, compileEncoder, type ClassificationPrediction, type Manifest } from '@ferry/core';
import { MODELS_DIR } from '../lib/paths.js';
import { versionDir } from '../lib/example-model.js';
import { loadCorpus, stratifiedSplit } from './data.js';
import { emailToText, htmlToText, decodeHeader } from './email.js';
import { fitLogistic, margins, toRows } from './logistic.js';
import { binaryMetrics } from './metrics.js';
import { BAR, spam, trainSpam } from './train.js';

const corpus = loadCorpus();
const committedDir = versionDir(spam, MODELS_DIR);

test('emailToText keeps the subject and the readable body, and drops every other header', () => {
  const raw = [
    'From someone@example.com  Thu Aug 22 13:17:22 2002',
    'Received: from relay.example.com',
    '\tby mx.example.org',
    'Subject: =?utf-8?B?Q2Fmw6k=?= =?iso-8859-1?Q?_na=EFve?=',
    'Content-Type: multipart/alternative; boundary="XYZ"',
    '',
    'preamble',
    '--XYZ',
    'Content-Type: text/html; charset=utf-8',
    '',
    '<p>HTML twin</p>',
    '--XYZ',
    'Content-Type: text/plain; charset="iso-8859-1"',
    'Content-Transfer-Encoding: quoted-printable',
    '',
    'Caf=E9 au lait, soft=',
    ' break',
    '--XYZ--',
    '',
  ].join('\n');
  assert.equal(emailToText(raw), 'Café naïve\n\nCafé au lait, soft break');
});

test('emailToText decodes base64 and HTML parts and skips attachments', () => {
  const body = Buffer.from('Grüße aus Köln', 'utf8').toString('base64');
  const raw = [
    'Subject: Hello',
    'Content-Type: multipart/mixed; boundary=b1',
    '',
    '--b1',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: base64',
    '',
    body,
    '--b1',
    'Content-Type: text/html',
    '',
    '<html><head><title>x</title><style>p{}</style></head><body><p>Click <a href="http://spam.example/buy">here</a>&nbsp;&amp; save&#33;</p></body></html>',
    '--b1',
    'Content-Type: text/plain; name="notes.txt"',
    'Content-Disposition: attachment; filename="notes.txt"',
    '',
    'attached words',
    '--b1--',
  ].join('\r\n');
  const text = emailToText(raw);
  assert.match(text, /^Hello\n\nGrüße aus Köln\n\n/);
  assert.match(text, /Click\s+http:\/\/spam\.example\/buy\s+here\s+& save!/);
  assert.doesNotMatch(text, /attached words|p\{\}|<|title/);
  // A message without MIME headers is plain text; one without a subject starts with the blank line.
  assert.equal(emailToText('From: a@b.c\n\nJust text.\n'), '\n\nJust text.\n');
  assert.equal(htmlToText('a<br>b &lt;c&gt; &#x263A; &unknown;'), 'a b <c> ☺ &unknown;');
  assert.equal(decodeHeader('=?bogus-charset?Q?caf=E9?='), 'café');
});

test('binaryMetrics counts spam as the positive class', () => {
  const m = binaryMetrics([0.9, 0.8, 0.2, 0.6, 0.1], [true, true, true, false, false]);
  assert.deepEqual([m.truePositives, m.falseNegatives, m.falsePositives, m.trueNegatives], [2, 1, 1, 1]);
  assert.equal(m.accuracy, 3 / 5);
  assert.equal(m.precision, 2 / 3);
  assert.equal(m.recall, 2 / 3);
  assert.ok(Math.abs(m.f1 - 2 / 3) < 1e-12);
});

test('fitLogistic separates a toy problem and does not penalise the bias', () => {
  // Column 0 marks positives, column 1 negatives; 3 of 4 rows are positive.
  const rows = toRows(
    [
      { indices: [0], values: [1] },
      { indices: [0], values: [1] },
      { indices: [0], values: [1] },
      { indices: [1], values: [1] },
    ],
    2,
  );
  const labels = Uint8Array.from([1, 1, 1, 0]);
  const { model, report } = fitLogistic(rows, labels, { l2: 1e-3 });
  const z = margins(model, rows);
  assert.ok(z[0]! > 2 && z[3]! < -2, `margins ${Array.from(z)}`);
  assert.ok(report.gradientNorm < 1e-5);
  // With a huge penalty the weights vanish and the bias alone matches the base rate: σ(b) = 3/4.
  const flat = fitLogistic(rows, labels, { l2: 1e6 }).model;
  assert.ok(Math.abs(1 / (1 + Math.exp(-flat.bias)) - 0.75) < 1e-4);
});

test('the split is stratified, disjoint and seeded; no text appears twice in the corpus', () => {
  const { train, heldOut } = stratifiedSplit(corpus.messages, 0.2, 2002);
  assert.equal(train.length + heldOut.length, corpus.messages.length);
  assert.equal(new Set([...train, ...heldOut]).size, corpus.messages.length);
  const spamShare = (idx: number[]): number =>
    idx.filter((i) => corpus.messages[i]!.label === 'spam').length / idx.length;
  assert.ok(Math.abs(spamShare(train) - spamShare(heldOut)) < 0.002);
  assert.deepEqual(stratifiedSplit(corpus.messages, 0.2, 2002).heldOut, heldOut);
  assert.notDeepEqual(stratifiedSplit(corpus.messages, 0.2, 7).heldOut, heldOut);
  assert.equal(new Set(corpus.messages.map((m) => m.text)).size, corpus.messages.length);
  assert.equal(corpus.raw, 6046);
});

test('training is deterministic: the same options give the same bytes', () => {
  const options = { limit: 800, buckets: 4096, l2Grid: [1e-4, 1e-5], referenceRows: 40 };
  const a = trainSpam(options, corpus);
  const b = trainSpam(options, corpus);
  assert.deepEqual(Object.keys(a.files).sort(), ['card.md', 'ferry.yaml', 'model.onnx', 'reference.jsonl']);
  for (const file of Object.keys(a.files)) assert.deepEqual(a.files[file], b.files[file], file);
  assert.equal(a.heldOut.rows, 160);
  const c = trainSpam({ ...options, seed: 7 }, corpus);
  assert.notDeepEqual(c.files['model.onnx'], a.files['model.onnx'], 'a different seed should split differently');
});

test('the metrics recorded in card.md meet the bar', () => {
  const cardText = readFileSync(join(committedDir, 'card.md'), 'utf8');
  const metric = (name: string): number => {
    const m = new RegExp(`^\\| ${name} \\| (0\\.\\d+) \\|$`, 'm').exec(cardText);
    assert.ok(m, `card.md has no "${name}" row`);
    return Number(m[1]);
  };
  assert.ok(metric('accuracy') >= BAR.accuracy, `accuracy ${metric('accuracy')}`);
  assert.ok(metric('F1') >= BAR.f1, `F1 ${metric('F1')}`);
  assert.ok(metric('precision') > 0.9 && metric('recall') > 0.9);
  // The confusion matrix adds up to the held-out count in the heading.
  const held = Number(/Held-out results \(([\d,]+) messages/.exec(cardText)![1]!.replace(/,/g, ''));
  const cells = [...cardText.matchAll(/^\| actual (?:ham|spam) \| (\d+) \| (\d+) \|$/gm)].flatMap((m) => [
    Number(m[1]),
    Number(m[2]),
  ]);
  assert.equal(cells.length, 4);
  assert.equal(
    cells.reduce((a, b) => a + b, 0),
    held,
  );
});

/** Runs texts through the committed manifest's encoder, model.onnx in ONNX Runtime, and the decoder. */
async function predict(
  manifest: Manifest,
  modelPath: string,
  texts: readonly string[],
): Promise<ClassificationPrediction[]> {
  const t = compileEncoder(manifest).encode(texts.map((text) => ({ text }))).features!;
  assert.deepEqual(t.dims, [texts.length, 65536]);
  const session = await ort.InferenceSession.create(modelPath);
  try {
    const out = await session.run({ features: new ort.Tensor('float32', t.data as Float32Array, t.dims) });
    const probabilities = out.probabilities!;
    assert.deepEqual(probabilities.dims, [texts.length, 2]);
    return compileDecoder(manifest).decode(
      { probabilities: { dtype: 'float32', dims: [...probabilities.dims], data: probabilities.data as Float32Array } },
      texts.length,
    ) as ClassificationPrediction[];
  } finally {
    await session.release();
  }
}

test('the server loads the committed model; held-out obvious spam and ham get the right labels in ONNX Runtime', async () => {
  const repo = Repository.load(MODELS_DIR, ['spam']);
  const version = repo.resolve('spam@1');
  assert.equal(version.version, '1.0.0');
  const { heldOut } = stratifiedSplit(corpus.messages, 0.2, 2002);
  const held = new Map(heldOut.map((i) => [corpus.messages[i]!.id, corpus.messages[i]!]));
  // Chosen from the held-out split: the model never trained on them.
  const obviousSpam = held.get('spam-2/00709');
  const obviousHam = held.get('easy-ham-1/00510');
  assert.ok(obviousSpam && obviousSpam.label === 'spam' && /Mortgage Approved/.test(obviousSpam.text));
  assert.ok(obviousHam && obviousHam.label === 'ham' && /Recommended Viewing/.test(obviousHam.text));
  const written = [
    'WIN CASH NOW!!!\n\nCongratulations! You have been selected to receive $1,000,000. Click here http://win.example.com to claim your FREE prize. Act now, limited time offer!',
    'Re: meeting notes\n\nThanks for sending the minutes. I fixed the typo in the build script and pushed the patch; can we talk about the release on Tuesday?',
  ];
  const [spamP, hamP, writtenSpam, writtenHam] = await predict(version.manifest, version.modelPath, [
    obviousSpam.text,
    obviousHam.text,
    ...written,
  ]);
  assert.equal(spamP!.label, 'spam');
  assert.ok(spamP!.scores.spam! > 0.9, `P(spam) ${spamP!.scores.spam}`);
  assert.equal(hamP!.label, 'ham');
  assert.ok(hamP!.scores.spam! < 0.1, `P(spam) ${hamP!.scores.spam}`);
  assert.equal(writtenSpam!.label, 'spam');
  assert.equal(writtenHam!.label, 'ham');
  for (const p of [spamP, hamP, writtenSpam, writtenHam])
    assert.ok(Math.abs(p!.scores.ham! + p!.scores.spam! - 1) < 1e-5);
});

test('the committed encoder plus model.onnx reproduce every label in reference.jsonl', async () => {
  const manifest = Repository.load(MODELS_DIR, ['spam']).resolve('spam@1').manifest;
  const rows = readFileSync(join(committedDir, 'reference.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { text: string; prediction: string });
  assert.equal(rows.length, 500);
  assert.ok(rows.every((r) => r.text.length <= 2000));
  const spamShare = rows.filter((r) => r.prediction === 'spam').length / rows.length;
  assert.ok(spamShare > 0.2 && spamShare < 0.45, `spam share ${spamShare}`);
  for (let start = 0; start < rows.length; start += 100) {
    const batch = rows.slice(start, start + 100);
    const predictions = await predict(
      manifest,
      join(committedDir, 'model.onnx'),
      batch.map((r) => r.text),
    );
    batch.forEach((r, i) => assert.equal(predictions[i]!.label, r.prediction, `reference row ${start + i}`));
  }
});
