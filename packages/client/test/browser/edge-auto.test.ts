// createEdgeModel's `auto` mode in real Chromium (the dashboard page exposes the client and
// createEdgeModel as window.ferry), against `ferry serve` with the spam model: edge when the artifact
// is under the limit and WebAssembly works; the server when the artifact is over the limit, when the
// page has no WebAssembly, or when loading the runtime fails. Each result says which path answered.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { noChromium, openBrowser, serve, stop, type Browser, type Served } from './browser-helpers.js';

interface Outcome {
  runsOn: string;
  reason: string;
  artifactBytes: number;
  sources: string[];
  spam: number[];
  server: number[];
  error?: string;
}

const TEXTS = [
  'WIN a FREE iPhone now!!! Click http://example.com to claim your prize',
  'Thanks for the patch, I applied it to the kernel tree.',
];

/** Creates the edge model in the page with `options`, predicts, and asks the server too for comparison. */
async function inPage(page: Page, options: Record<string, unknown>): Promise<Outcome> {
  return page.evaluate(
    async ({ options, texts }) => {
      type R = { source: string; predictions: Array<{ scores: Record<string, number> }> };
      const f = (
        window as unknown as {
          ferry: {
            client: unknown;
            createEdgeModel(
              c: unknown,
              ref: string,
              o: object,
            ): Promise<{
              runsOn: string;
              reason: string;
              artifactBytes: number;
              predict(i: unknown[]): Promise<R>;
              predictOnServer(i: unknown[]): Promise<R>;
            }>;
          };
        }
      ).ferry;
      try {
        const m = await f.createEdgeModel(f.client, 'spam@1', options);
        const instances = texts.map((text) => ({ text }));
        const a = await m.predict(instances);
        const b = await m.predict(instances.slice(0, 1));
        const s = await m.predictOnServer(instances);
        return {
          runsOn: m.runsOn,
          reason: m.reason,
          artifactBytes: m.artifactBytes,
          sources: [a.source, b.source, s.source],
          spam: a.predictions.map((p) => p.scores.spam!),
          server: s.predictions.map((p) => p.scores.spam!),
        };
      } catch (e) {
        return { runsOn: '', reason: '', artifactBytes: 0, sources: [], spam: [], server: [], error: String(e) };
      }
    },
    { options, texts: TEXTS },
  );
}

describe('createEdgeModel auto mode in Chromium', { skip: noChromium }, () => {
  let srv: Served;
  let b: Browser;
  const logs: string[] = [];
  const requests: string[] = [];
  before(async () => {
    srv = await serve({ FERRY_MODELS_ONLY: 'spam' }, logs);
    b = await openBrowser(logs);
    b.page.on('request', (r) => requests.push(new URL(r.url()).pathname));
  });
  after(async () => {
    await b?.close();
    await stop(srv?.child);
  });

  const agree = (o: Outcome) =>
    o.spam.forEach((v, i) => assert.ok(Math.abs(v - o.server[i]!) <= 1e-5, `${v} vs server ${o.server[i]}`));

  test('under the size limit with WebAssembly: the edge answers', async () => {
    await b.page.goto(`${srv.base}/#/models`);
    requests.length = 0;
    const o = await inPage(b.page, { mode: 'auto' });
    assert.equal(o.error, undefined);
    assert.equal(o.runsOn, 'edge', o.reason);
    assert.match(o.reason, /WASM works/);
    assert.deepEqual(o.sources, ['edge', 'edge', 'server']);
    assert.ok(o.artifactBytes > 100_000 && o.artifactBytes < 20 * 1024 * 1024, `${o.artifactBytes} bytes`);
    assert.ok(o.spam[0]! > 0.5 && o.spam[1]! < 0.5);
    agree(o);
    assert.ok(
      requests.some((p) => /\/artifact$/.test(p)),
      'the artifact was downloaded',
    );
    assert.equal(requests.filter((p) => p.endsWith('/predict')).length, 1, 'only predictOnServer reached the server');
  });

  test('over a small size limit: the server answers, and the artifact is never downloaded', async () => {
    requests.length = 0;
    const o = await inPage(b.page, { mode: 'auto', maxArtifactBytes: 10_000 });
    assert.equal(o.runsOn, 'server');
    assert.match(o.reason, new RegExp(`artifact is ${o.artifactBytes} bytes, above the 10000-byte edge limit`));
    assert.deepEqual(o.sources, ['server', 'server', 'server']);
    agree(o);
    assert.ok(
      requests.some((p) => p.endsWith('/artifact/contract')),
      'the contract (with the size) was read',
    );
    assert.ok(!requests.some((p) => /\/artifact$/.test(p)), 'the ONNX file was not downloaded');
    // The same limit in `edge` mode is not a fallback: the caller asked for the edge.
    const forced = await inPage(b.page, { mode: 'edge', maxArtifactBytes: 10_000 });
    assert.equal(forced.runsOn, 'edge');
  });

  test('when loading onnxruntime-web fails: the server answers and the reason says why', async () => {
    // A fresh page: onnxruntime-web initialises its WASM once per page, so the bad path must come first.
    for (const mode of ['auto', 'edge']) {
      const { page, close } = await openBrowser(logs);
      try {
        await page.goto(`${srv.base}/#/models`);
        const o = await inPage(page, { mode, wasmPaths: '/no-such-dir/' });
        if (mode === 'auto') {
          assert.equal(o.error, undefined);
          assert.equal(o.runsOn, 'server');
          assert.match(o.reason, /^edge load failed/);
          assert.deepEqual(o.sources, ['server', 'server', 'server']);
        } else {
          assert.ok(o.error, 'in `edge` mode the same failure is an error for the caller');
        }
      } finally {
        await close();
      }
    }
  });

  test('a page without WebAssembly: the server answers', async () => {
    const { page, close } = await openBrowser(logs);
    try {
      await page.addInitScript(() => {
        delete (globalThis as { WebAssembly?: unknown }).WebAssembly;
      });
      await page.goto(`${srv.base}/#/models`);
      assert.equal(
        await page.evaluate(() => typeof (globalThis as { WebAssembly?: unknown }).WebAssembly),
        'undefined',
      );
      const o = await inPage(page, { mode: 'auto' });
      assert.equal(o.error, undefined);
      assert.equal(o.runsOn, 'server');
      assert.equal(o.reason, 'WebAssembly is not available');
      assert.deepEqual(o.sources, ['server', 'server', 'server']);
      assert.ok(o.spam[0]! > 0.5 && o.spam[1]! < 0.5);
    } finally {
      await close();
    }
  });
});
