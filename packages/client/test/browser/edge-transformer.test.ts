// The spam-transformer example in the browser: createEdgeModel loads its ONNX file and, with the contract,
// its tokenizer.json, and tokenizes in the page with the same @ferry/core code the server runs. 20 held-out
// messages answered in Chromium (onnxruntime-web, WASM) must equal the server and PyTorch (|Δ| ≤ 1e-4).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { noChromium, openBrowser, serve, stop, type Browser, type Served } from './browser-helpers.js';

const REF = JSON.parse(
  readFileSync(
    fileURLToPath(new URL('../../../../../examples/src/spam-transformer/pytorch-reference.json', import.meta.url)),
    'utf8',
  ),
) as { parity: Array<{ text: string; probabilities: number[] }> };

describe('spam-transformer on the edge in Chromium', { skip: noChromium }, () => {
  let srv: Served;
  let b: Browser;
  const logs: string[] = [];
  before(async () => {
    srv = await serve({ FERRY_MODELS_ONLY: 'spam-transformer' }, logs);
    b = await openBrowser(logs);
  });
  after(async () => {
    await b?.close();
    await stop(srv?.child);
  });

  test('20 held-out texts: edge = server = PyTorch within 1e-4', async () => {
    assert.equal(REF.parity.length, 20);
    await b.page.goto(`${srv.base}/#/models`);
    const o = await b.page.evaluate(
      async (texts: string[]) => {
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
                predict(i: unknown[]): Promise<R>;
                predictOnServer(i: unknown[]): Promise<R>;
              }>;
            };
          }
        ).ferry;
        try {
          const m = await f.createEdgeModel(f.client, 'spam-transformer@1', { mode: 'edge' });
          const instances = texts.map((text) => ({ text }));
          const edge = await m.predict(instances);
          const server = await m.predictOnServer(instances);
          return {
            runsOn: m.runsOn,
            source: edge.source,
            edge: edge.predictions.map((p) => p.scores.spam!),
            server: server.predictions.map((p) => p.scores.spam!),
          };
        } catch (e) {
          return { error: String((e as Error)?.stack ?? e) };
        }
      },
      REF.parity.map((p) => p.text),
    );
    assert.ok(!('error' in o), JSON.stringify(o) + logs.slice(-10).join('\n'));
    const r = o as { runsOn: string; source: string; edge: number[]; server: number[] };
    assert.equal(r.runsOn, 'edge');
    assert.equal(r.source, 'edge');
    REF.parity.forEach((p, i) => {
      assert.ok(
        Math.abs(r.edge[i]! - p.probabilities[1]!) <= 1e-4,
        `text ${i}: edge ${r.edge[i]} vs PyTorch ${p.probabilities[1]}`,
      );
      assert.ok(Math.abs(r.edge[i]! - r.server[i]!) <= 1e-4, `text ${i}: edge ${r.edge[i]} vs server ${r.server[i]}`);
    });
  });
});
