// The README's and the docs' example commands send files from examples/requests/: each file they name
// exists, and each answers on a real server the way the README says.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer, loadConfig, runStreamCli, type FerryServer } from '@ferry/server';
import { MODELS_DIR, REPO_ROOT } from '../lib/paths.js';

const REQUESTS = join(REPO_ROOT, 'examples/requests');
const DOCS = ['README.md', ...readdirSync(join(REPO_ROOT, 'docs')).map((f) => `docs/${f}`)].filter((f) =>
  f.endsWith('.md'),
);

/** Every local file an example command sends: `@path` (curl -d, --data-binary, -F) and `--wav path`. */
function referencedFiles(markdown: string): string[] {
  const out = new Set<string>();
  for (const m of markdown.matchAll(/(?:-d |--data-binary |--data |-F [a-z]+=)@([\w./-]+)/g)) out.add(m[1]!);
  for (const m of markdown.matchAll(/--wav ([\w./-]+)/g)) if (m[1] !== 'FILE') out.add(m[1]!);
  return [...out];
}

test('every file an example command in the README or docs/ sends is in the repository', () => {
  const named: string[] = [];
  for (const doc of DOCS) {
    for (const file of referencedFiles(readFileSync(join(REPO_ROOT, doc), 'utf8'))) {
      named.push(file);
      assert.ok(existsSync(join(REPO_ROOT, file)), `${doc} sends @${file}, which does not exist`);
    }
  }
  // The check looks at the commands it should: the README's four samples are among them.
  for (const f of ['flight-delay.json', 'page.png', 'page2.png', 'speech.wav'])
    assert.ok(named.includes(`examples/requests/${f}`), `${f}: ${named.join(', ')}`);
});

describe('the sample files on a real server', () => {
  let server: FerryServer;
  let base: string;
  before(async () => {
    server = await createServer(
      loadConfig({
        env: {},
        overrides: {
          'models.dir': MODELS_DIR,
          'models.only': ['flight-delay', 'ocr', 'silero-vad'],
          'runtime.workers': 1,
          'runtime.warmupRuns': 1,
          'store.url': 'sqlite::memory:',
          'log.level': 'silent',
        },
      }),
      { logger: false },
    );
    await server.loaded;
    base = (await server.listen()).url;
  });
  after(async () => {
    await server?.close();
  });

  test('flight-delay.json: two predictions from the pinned version', async () => {
    const r = await fetch(`${base}/v1/models/flight-delay/versions/1.0.0/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: readFileSync(join(REQUESTS, 'flight-delay.json')),
    });
    assert.equal(r.status, 200);
    const body = (await r.json()) as { predictions: Array<{ label: string; scores: Record<string, number> }> };
    assert.equal(body.predictions.length, 2);
    for (const p of body.predictions) {
      assert.ok(['on_time', 'delayed'].includes(p.label), JSON.stringify(p));
      assert.ok(Math.abs(p.scores.on_time! + p.scores.delayed! - 1) < 1e-5, JSON.stringify(p));
    }
  });

  test('page.png as the body: both lines read, spaces and all', async () => {
    const r = await fetch(`${base}/v1/models/ocr/predict`, {
      method: 'POST',
      headers: { 'content-type': 'image/png' },
      body: readFileSync(join(REQUESTS, 'page.png')),
    });
    assert.equal(r.status, 200);
    const body = (await r.json()) as { predictions: Array<{ lines: Array<{ text: string }> }> };
    assert.deepEqual(
      body.predictions[0]!.lines.map((l) => l.text),
      ['Invoice 2041', 'Total due: 1,284.50 EUR'],
    );
  });

  test('page.png and page2.png as a multipart job: completed with one prediction a page', async () => {
    const form = new FormData();
    for (const f of ['page.png', 'page2.png'])
      form.append('image', new Blob([readFileSync(join(REQUESTS, f))], { type: 'image/png' }), f);
    const r = await fetch(`${base}/v1/models/ocr/jobs`, { method: 'POST', body: form });
    assert.equal(r.status, 202, await r.clone().text());
    const { id } = (await r.json()) as { id: string };
    let job: { state: string; result?: { predictions: Array<{ lines: Array<{ text: string }> }> } } = {
      state: 'queued',
    };
    for (let i = 0; i < 600 && !['completed', 'failed'].includes(job.state); i++) {
      await new Promise((res) => setTimeout(res, 100));
      job = (await (await fetch(`${base}/v1/jobs/${id}`)).json()) as typeof job;
    }
    assert.equal(job.state, 'completed', JSON.stringify(job));
    assert.deepEqual(
      job.result!.predictions.map((p) => p.lines.map((l) => l.text)),
      [['Invoice 2041', 'Total due: 1,284.50 EUR'], ['Order ref QX-7731']],
    );
  });

  test('ferry stream silero-vad --wav speech.wav: the two sentences are found', async () => {
    let out = '';
    const errs: string[] = [];
    const code = await runStreamCli(
      ['silero-vad', '--wav', join(REQUESTS, 'speech.wav'), '--url', base, '--json'],
      (s) => {
        out += s;
      },
      (s) => {
        errs.push(s);
      },
    );
    assert.equal(code, 0, errs.join(''));
    const events = out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; segments?: number });
    // espeak-ng pauses between the sentences, but less than the model's minimum silence: one or two segments.
    const segments = events.at(-1)!.segments!;
    assert.ok(segments >= 1 && segments <= 2, out);
    assert.equal(events.filter((e) => e.type === 'speech_start').length, segments);
  });
});
