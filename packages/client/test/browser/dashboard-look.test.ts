// The dashboard as a first-time user sees it, in real Chromium at a desktop and a phone width, on a
// keyless `ferry serve` with no traffic yet: every page says what it is for and fits the screen; the
// model card is rendered (and sanitised), the playground starts from real examples, the monitoring
// charts say what to do before traffic and have axes and units after it. Screenshots of every page at
// both widths go to test-output/dashboard/look-*.png.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tinyClassifier, writeModelVersion } from '@ferry/test-kit';
import { noChromium, openBrowser, root, serve, shot, stop, type Browser, type Served } from './browser-helpers.js';

const PAGES: Array<[string, string]> = [
  ['#/', 'home'],
  ['#/models/carded', 'models-card'],
  ['#/playground/flight-delay', 'playground-flight-delay'],
  ['#/playground/mlp-bench', 'playground-tensor'],
  ['#/playground/ham-chat', 'playground-chat'],
  ['#/jobs', 'jobs'],
  ['#/pipelines', 'pipelines'],
  ['#/monitoring', 'monitoring'],
  ['#/drift/flight-delay', 'drift'],
  ['#/drift/mlp-bench', 'drift-no-reference'],
  ['#/rollout', 'rollout'],
];

// A card with what a card must never do in the dashboard: run a script, an event handler, a javascript: link.
const CARD = `# Carded model

A **test** model with a [link](https://example.com/docs) and a table:

| metric | value |
| --- | --- |
| accuracy | 0.91 |

<script>window.__cardRan = true</script>
<img src="x" onerror="window.__cardRan = true">
[click me](javascript:window.__cardRan=true)
`;

describe('the dashboard at first sight (desktop and phone)', { skip: noChromium }, () => {
  let srv: Served;
  let repo: string;
  const logs: string[] = [];
  before(async () => {
    repo = mkdtempSync(join(tmpdir(), 'ferry-look-'));
    for (const m of ['flight-delay', 'mlp-bench', 'ham-chat', 'spam'])
      cpSync(join(root, 'models', m), join(repo, m), { recursive: true });
    const cls = tinyClassifier();
    await writeModelVersion(repo, 'carded', '1.0.0', { ...cls, files: { 'card.md': CARD } });
    srv = await serve({}, logs, { models: repo });
  });
  after(async () => {
    await stop(srv?.child);
    rmSync(repo, { recursive: true, force: true });
  });

  for (const [width, height, tag] of [
    [1400, 900, 'desktop'],
    [390, 844, 'phone'],
  ] as const) {
    test(`${tag} (${width}×${height}): every page says what it is for and fits the width`, async () => {
      const b: Browser = await openBrowser(logs, { width, height });
      try {
        for (const [hash, name] of PAGES) {
          await b.page.goto(`${srv.base}/${hash}`);
          const lede = b.page.getByTestId('page-lede');
          await lede.waitFor();
          assert.ok((await lede.innerText()).trim().length > 30, `${hash}: the page says what it is for`);
          if (hash === '#/monitoring' && tag === 'desktop') {
            // The first pass runs before any test sends a prediction: a first-time page says what to do.
            const empty = b.page.getByTestId('chart-throughput-empty');
            await empty.waitFor();
            assert.match(await empty.innerText(), /No requests yet.*Playground/);
          }
          await b.page.waitForLoadState('networkidle');
          const overflow = await b.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
          assert.ok(overflow <= 1, `${hash} at ${width} px: ${overflow} px wider than the screen`);
          await shot(b.page, `look-${name}-${tag}`);
        }
        assert.deepEqual(
          logs.filter((l) => l.startsWith('pageerror')),
          [],
        );
      } finally {
        await b.close();
      }
    });
  }

  test('the model card is rendered Markdown, with nothing in it able to run', async () => {
    const b = await openBrowser(logs);
    try {
      await b.page.goto(`${srv.base}/#/models/carded`);
      const card = b.page.getByTestId('model-card');
      await card.locator('h1').waitFor();
      assert.equal(await card.locator('h1').innerText(), 'Carded model');
      assert.equal(await card.locator('strong').innerText(), 'test');
      assert.equal(await card.locator('table td').nth(1).innerText(), '0.91');
      assert.equal(await card.locator('a[href="https://example.com/docs"]').getAttribute('rel'), 'noopener noreferrer');
      assert.equal(await card.locator('script').count(), 0);
      assert.equal(await card.locator('[onerror]').count(), 0);
      assert.equal(await card.locator('a[href^="javascript:"]').count(), 0);
      assert.ok(!(await card.innerText()).includes('# Carded'), 'no raw Markdown');
      await b.page.waitForTimeout(300);
      assert.equal(await b.page.evaluate(() => (window as { __cardRan?: boolean }).__cardRan ?? false), false);
    } finally {
      await b.close();
    }
  });

  test('the playground starts from real examples and lists each chat model once', async () => {
    const b = await openBrowser(logs);
    try {
      await b.page.goto(`${srv.base}/#/playground/flight-delay`);
      const form = b.page.getByTestId('predict-form');
      await form.waitFor();
      const origin = await form.locator('select').nth(0).inputValue();
      const destination = await form.locator('select').nth(1).inputValue();
      assert.notEqual(origin, destination, 'a flight goes somewhere else');
      const example = (
        (await (await fetch(`${srv.base}/v1/models/flight-delay`)).json()) as {
          example: Record<string, unknown>;
        }
      ).example;
      assert.deepEqual([origin, destination], [example.origin, example.destination], 'the first reference row');

      await b.page.goto(`${srv.base}/#/playground/mlp-bench`);
      await b.page.getByTestId('tensor-hint-x').waitFor();
      assert.match(await b.page.getByTestId('tensor-hint-x').innerText(), /float32 \[256\] per instance.*256 values/);
      const filled = JSON.parse(await b.page.getByTestId('predict-form').locator('textarea').inputValue()) as unknown[];
      assert.equal(filled.length, 256);
      // The example as filled in is a valid request: the server answers it.
      await b.page.getByTestId('predict-button').click();
      await b.page.getByTestId('result-server').waitFor();
      assert.equal(await b.page.getByTestId('prediction-error').count(), 0);

      await b.page.goto(`${srv.base}/#/playground/ham-chat`);
      const temperature = b.page.getByTestId('chat-temperature');
      await temperature.waitFor();
      const links = await b.page.locator('main .row').first().locator('a').allInnerTexts();
      assert.equal(links.filter((l) => l.startsWith('ham-chat')).length, 1, links.join(', '));
      // The placeholder fits its box (the number input's spinner takes about 16 px of it).
      const fits = await temperature.evaluate((el: HTMLInputElement) => {
        const cs = getComputedStyle(el);
        const ctx = document.createElement('canvas').getContext('2d')!;
        ctx.font = cs.font;
        const room = el.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight) - 16;
        return { text: ctx.measureText(el.placeholder).width, room };
      });
      assert.ok(fits.text <= fits.room, JSON.stringify(fits));
    } finally {
      await b.close();
    }
  });

  test('monitoring: axes, units and a plot once traffic comes; drift says what is missing', async () => {
    const b = await openBrowser(logs);
    try {
      await b.page.goto(`${srv.base}/#/drift/mlp-bench`);
      await b.page.getByTestId('drift-no-reference').waitFor();
      assert.match(await b.page.getByTestId('drift-no-reference').innerText(), /reference: reference\.jsonl/);

      // (Its first-time state, before any prediction, is checked in the desktop pass above.)
      await b.page.goto(`${srv.base}/#/monitoring`);
      for (let i = 0; i < 40; i++) {
        await fetch(`${srv.base}/v1/models/spam/predict`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ instances: [{ text: `hello ${i % 5}` }] }),
        });
        await new Promise((r) => setTimeout(r, 150));
      }
      const chart = b.page.getByTestId('chart-throughput');
      await b.page.waitForFunction(
        () => Number(document.querySelector('[data-testid="chart-throughput"]')?.getAttribute('data-points')) > 1,
      );
      await chart.locator('canvas').waitFor();
      assert.ok((await chart.innerText()).includes('requests/s'), 'the value axis has its unit');
      // uPlot's legend lists each series (and shows the values under the cursor).
      assert.match(await chart.locator('.u-legend').innerText(), /rps/);
      await shot(b.page, 'look-monitoring-traffic');
    } finally {
      await b.close();
    }
  });
});
