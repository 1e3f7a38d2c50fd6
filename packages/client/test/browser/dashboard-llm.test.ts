// The dashboard's LLM page in real Chromium against `ferry serve` (no models, an `llm:` config) whose
// routes reach a PROVIDER EMULATOR started here (a labelled stand-in for a hosted OpenAI-compatible API).
// Requests go through the gateway first; the page's tables must show what GET /v1/llm/spend says, follow
// the period selector, and pick up new spend on their own.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLlmEmulator, type LlmEmulator } from '@ferry/test-kit';
import { noChromium, openBrowser, serve, shot, stop, type Browser, type Served } from './browser-helpers.js';

interface SpendRow {
  group: string;
  requests: number;
  upstreamCalls: number;
  costUsd: number;
  savedUsd: number;
}
type Summary = Record<'byRoute' | 'byKey' | 'byTier' | 'byCache' | 'byProvider', SpendRow[]> & {
  byControl: Array<{ control: string; requests: number; savedUsd: number }>;
};

const money = (x: number) => `$${x.toFixed(x < 1 ? 4 : 2)}`;

describe('dashboard LLM page against ferry serve with an LLM gateway', { skip: noChromium }, () => {
  let srv: Served;
  let b: Browser;
  let emu: LlmEmulator;
  const logs: string[] = [];

  before(async () => {
    emu = await startLlmEmulator();
    const dir = mkdtempSync(join(tmpdir(), 'ferry-llm-page-'));
    const models = join(dir, 'models');
    const config = join(dir, 'ferry.config.yaml');
    writeFileSync(
      config,
      JSON.stringify({
        models: { dir: models },
        llm: {
          providers: {
            up: {
              kind: 'openai',
              baseUrl: emu.url,
              prices: {
                'small-1': { inputPerMTok: 150, outputPerMTok: 600 },
                'big-1': { inputPerMTok: 2500, outputPerMTok: 10000 },
              },
            },
          },
          routes: {
            support: {
              tiers: { small: [{ provider: 'up', model: 'small-1' }], big: [{ provider: 'up', model: 'big-1' }] },
              rules: [{ tier: 'big', metadata: { plan: 'pro' } }],
              cache: { exact: true },
            },
            digest: { tiers: { main: [{ provider: 'up', model: 'big-1' }] }, cache: { exact: false } },
            // History beyond 40 tokens is trimmed (the oldest turns go): the prompt-trimming savings row.
            brief: { tiers: { main: [{ provider: 'up', model: 'big-1' }] }, maxPromptTokens: 40 },
          },
        },
      }),
    );
    mkdirSync(models);
    srv = await serve({}, logs, { models, args: ['-c', config] });
    b = await openBrowser(logs);
  });
  after(async () => {
    await b?.close();
    await stop(srv?.child);
    await emu?.close();
    assert.deepEqual(
      logs.filter((l) => l.startsWith('pageerror')),
      [],
    );
  });

  const chat = async (model: string, content: string, extra: Record<string, unknown> = {}) => {
    const res = await fetch(`${srv.base}/openai/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model, messages: [{ role: 'user', content }], temperature: 0, ...extra }),
    });
    assert.equal(res.status, 200, await res.clone().text());
    return res.headers;
  };
  const summary = async (): Promise<Summary> =>
    (await (await fetch(`${srv.base}/v1/llm/spend?sinceMs=0`)).json()) as Summary;

  /** A table's rows as the page shows them: group → [requests, upstream calls, spent, saved]. */
  async function table(testId: string): Promise<Record<string, string[]>> {
    const rows = await b.page
      .getByTestId(testId)
      .locator('tbody tr')
      .evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')));
    return Object.fromEntries(rows.map((c) => [c[0]!, [c[1]!, c[3]!, c[6]!, c[7]!]]));
  }
  const expected = (rows: SpendRow[]) =>
    Object.fromEntries(
      rows.map((r) => [
        r.group || '—',
        [String(r.requests), String(r.upstreamCalls), money(r.costUsd), money(r.savedUsd)],
      ]),
    );

  test('the tables show the ledger as the API reports it: spend by route, cache savings, tier mix', async () => {
    await chat('support', 'where is my parcel');
    assert.equal((await chat('support', 'where is my parcel')).get('ferry-llm-cache'), 'exact');
    assert.equal((await chat('support', 'cancel my plan', { metadata: { plan: 'pro' } })).get('ferry-llm-tier'), 'big');
    await chat('digest', 'summarise this week');
    await chat('digest', 'summarise last week');
    const old = 'an earlier question about the delivery of a parcel that went to the wrong address last month';
    const history = [
      { role: 'user', content: old },
      { role: 'assistant', content: `reply: ${old}` },
      { role: 'user', content: 'and now?' },
    ];
    const res = await fetch(`${srv.base}/openai/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'brief', messages: history, temperature: 0 }),
    });
    assert.equal(res.status, 200, await res.text());

    const api = await summary();
    const page = b.page;
    await page.goto(`${srv.base}/#/llm`);
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="llm-by-route"] tbody tr').length >= 2);

    assert.deepEqual(await table('llm-by-route'), expected(api.byRoute));
    assert.deepEqual(await table('llm-by-cache'), expected(api.byCache));
    assert.deepEqual(await table('llm-by-tier'), expected(api.byTier));
    assert.deepEqual(await table('llm-by-provider'), expected(api.byProvider));
    // And the API itself says what the requests were.
    const route = Object.fromEntries(api.byRoute.map((r) => [r.group, [r.requests, r.upstreamCalls]]));
    assert.deepEqual(route, { support: [3, 2], digest: [2, 2], brief: [1, 1] });
    // Savings by control: the cache hit, the small tier's answer against big-1's price, the trimmed turns.
    const controls = Object.fromEntries(api.byControl.map((r) => [r.control, r]));
    assert.equal(controls['exact cache']!.requests, 1);
    assert.equal(controls['semantic cache']!.requests, 0);
    assert.equal(controls.tiering!.requests, 1);
    assert.equal(controls['prompt trimming']!.requests, 1);
    for (const c of ['exact cache', 'tiering', 'prompt trimming'])
      assert.ok(controls[c]!.savedUsd > 0, `${c}: ${JSON.stringify(controls[c])}`);
    const rows = await b.page
      .getByTestId('llm-by-control')
      .locator('tbody tr')
      .evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('td')].slice(0, 3).map((td) => td.textContent)));
    assert.deepEqual(
      rows,
      api.byControl.map((r) => [r.control, String(r.requests), money(r.savedUsd)]),
    );
    const savedTotal = api.byControl.reduce((s, r) => s + r.savedUsd, 0);
    assert.equal(await page.getByTestId('llm-saved').innerText(), money(savedTotal));
    const cache = api.byCache.find((r) => r.group === 'exact')!;
    assert.ok(cache.savedUsd > 0 && cache.requests === 1, JSON.stringify(cache));
    const tiers = Object.fromEntries(api.byTier.map((r) => [r.group, r.requests]));
    assert.deepEqual(tiers, { small: 2, big: 1, main: 3 });

    const spent = api.byRoute.reduce((s, r) => s + r.costUsd, 0);
    assert.equal(await page.getByTestId('llm-spent').innerText(), money(spent));
    await shot(page, 'llm');
  });

  test('the period selector asks for that window, and new spend appears without a reload', async () => {
    const page = b.page;
    const asked = page.waitForRequest((r) => r.url().includes('/v1/llm/spend?sinceMs='));
    await page.locator('select').first().selectOption('1');
    const since = Number(new URL((await asked).url()).searchParams.get('sinceMs'));
    assert.ok(Math.abs(since - (Date.now() - 86_400_000)) < 60_000, `sinceMs ${since}`);

    await chat('digest', 'one more digest');
    // The page polls every 10 s: the digest row reaches 3 requests on its own.
    await page.waitForFunction(
      () =>
        [...document.querySelectorAll('[data-testid="llm-by-route"] tbody tr')].some(
          (tr) => tr.children[0]?.textContent === 'digest' && tr.children[1]?.textContent === '3',
        ),
      undefined,
      { timeout: 30_000 },
    );
    assert.deepEqual((await table('llm-by-route')).digest, expected((await summary()).byRoute).digest);
  });
});
