// The dashboard's operations pages in real Chromium against `ferry serve` over a temporary model
// repository and config: a spam model with a canary and a shadow (aliases.yaml) and a batch pipeline
// over a CSV; then a server with API keys for the drift page. Every figure the page shows is compared
// with the API's own answer.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { noChromium, openBrowser, root, serve, shot, stop, type Browser, type Served } from './browser-helpers.js';

const MESSAGES = [
  'Hi Bob, the meeting moved to 3pm tomorrow; see the notes I sent last week.',
  'URGENT: your account 12345 is suspended, verify at http://bank.example now',
  'Cheap meds!!! 80% off, order today and save $$$',
  'Re: patch for the kernel build, applies cleanly on 2.4.19, thanks',
  'FREE FREE FREE click here to unsubscribe',
  'Lunch? 12:30 at the usual place.',
  'WIN a FREE iPhone now!!! Click http://example.com to claim your prize',
  'The build is green again after the fix to the linker script.',
  'Limited offer: double your income from home, no experience needed',
  'Can you review my pull request before Friday?',
];

/** spam 1.0.0 (stable), 1.1.0 (canary at 30%) and 1.2.0 (shadow: unigrams only, so it disagrees sometimes). */
function repository(dir: string): void {
  const src = join(root, 'models/spam/1.0.0');
  for (const v of ['1.0.0', '1.1.0', '1.2.0']) {
    cpSync(src, join(dir, 'spam', v), { recursive: true });
    const yaml = readFileSync(join(src, 'ferry.yaml'), 'utf8').replace(/^version: .*$/m, `version: ${v}`);
    writeFileSync(
      join(dir, 'spam', v, 'ferry.yaml'),
      v === '1.2.0' ? yaml.replace('ngrams: [1, 2]', 'ngrams: [1, 1]') : yaml,
    );
  }
  writeFileSync(
    join(dir, 'spam', 'aliases.yaml'),
    'stable: 1.0.0\ncanary: { version: 1.1.0, weight: 30 }\nshadow: { version: 1.2.0, sample: 1 }\n',
  );
}

const json = async <T>(url: string, init: RequestInit = {}): Promise<T> => {
  const r = await fetch(url, init);
  assert.ok(r.ok, `${url}: ${r.status} ${await r.clone().text()}`);
  return (await r.json()) as T;
};

describe(
  'dashboard rollout and pipelines pages against ferry serve (temporary repository)',
  { skip: noChromium },
  () => {
    let work: string;
    let srv: Served;
    let b: Browser;
    const logs: string[] = [];
    const env: Record<string, string> = {};
    let config: string;

    before(async () => {
      work = mkdtempSync(join(tmpdir(), 'ferry-dash-ops-'));
      repository(join(work, 'models'));
      const csv = ['id,text', ...MESSAGES.map((m, i) => `msg-${i},"${m.replace(/"/g, '""')}"`)].join('\n');
      writeFileSync(join(work, 'inbox.csv'), `${csv}\n`);
      config = join(work, 'ferry.config.yaml');
      writeFileSync(
        config,
        [
          'pipelines:',
          '  spam-inbox:',
          '    description: Spam score of every message in the inbox',
          `    source: { kind: csv, path: ${join(work, 'inbox.csv')} }`,
          '    model: spam@1.0.0',
          '    key: id',
          '    chunkRows: 4',
          '',
        ].join('\n'),
      );
      Object.assign(env, {
        FERRY_STORE_URL: `sqlite:${join(work, 'store.db')}`,
        FERRY_LOG_LEVEL: 'warn',
        REDIS_URL: '',
        DATABASE_URL: '',
      });
      // One run of the pipeline into the store the server will read, with the real CLI.
      const run = spawnSync(
        process.execPath,
        [
          join(root, 'packages/server/dist/cli/main.js'),
          'batch',
          'run',
          'spam-inbox',
          '-c',
          config,
          '-m',
          join(work, 'models'),
          '--json',
          '--progress',
          'none',
          '--workers',
          '1',
        ],
        { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 120_000 },
      );
      assert.equal(run.status, 0, `ferry batch run: ${run.stdout}\n${run.stderr}`);
      srv = await serve(env, logs, { models: join(work, 'models'), args: ['-c', config] });
      b = await openBrowser(logs);
    });
    after(async () => {
      await b?.close();
      await stop(srv?.child);
      if (work) rmSync(work, { recursive: true, force: true });
      assert.deepEqual(
        logs.filter((l) => l.startsWith('pageerror')),
        [],
      );
    });

    test("rollout page: the canary weight and the shadow agreement are the API's figures", async (t) => {
      // Unpinned traffic from many clients: ~30% lands on the canary, every served request is copied to the shadow.
      // The first four are borderline texts on which the unigram-only shadow changes the label, so the
      // agreement is below 100% and the page has a figure of its own to get right.
      const borderline = [
        'cheap meeting review prize meeting',
        'kernel lunch friday $$$',
        'prize patch review cheap',
        'thanks prize save verify kernel verify',
      ];
      const traffic = [
        ...borderline,
        ...Array.from({ length: 56 }, (_, i) => `${MESSAGES[i % MESSAGES.length]} #${i}`),
      ];
      for (const [i, text] of traffic.entries()) {
        await json(`${srv.base}/v1/models/spam/predict`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'ferry-client-id': `user-${i}` },
          body: JSON.stringify({ instances: [{ text }] }),
        });
      }
      type Rollout = {
        canary: { version: string; weight: number; requests?: Record<string, number> } | null;
        shadow: {
          version: string;
          comparedInstances: number;
          labelAgreement: number | null;
          errors: number;
          scoreDifference: { p99: number };
        } | null;
      };
      // Shadow copies run after the answers: wait until the API's figures stop moving.
      let api = await json<Rollout>(`${srv.base}/v1/models/spam/rollout`);
      for (let i = 0; i < 50 && (api.shadow?.comparedInstances ?? 0) < 60; i++) {
        await new Promise((r) => setTimeout(r, 100));
        api = await json<Rollout>(`${srv.base}/v1/models/spam/rollout`);
      }
      assert.equal(api.canary?.version, '1.1.0');
      assert.equal(api.canary?.weight, 30);
      assert.equal(api.shadow?.version, '1.2.0');
      assert.equal(api.shadow?.comparedInstances, 60);
      assert.ok(
        api.shadow!.labelAgreement! >= 0.5 && api.shadow!.labelAgreement! <= 56 / 60,
        `agreement ${api.shadow!.labelAgreement}`,
      );
      t.diagnostic(
        `API: canary ${JSON.stringify(api.canary)}, shadow agreement ${api.shadow!.labelAgreement} over ${api.shadow!.comparedInstances}, p99 score diff ${api.shadow!.scoreDifference.p99}`,
      );

      const page = b.page;
      await page.goto(`${srv.base}/#/rollout`);
      const canary = page.getByTestId('canary-spam');
      await canary.and(page.locator('[data-weight="30"]')).waitFor();
      assert.equal(await canary.getAttribute('data-version'), '1.1.0');
      assert.match(await canary.innerText(), /1\.1\.0 at 30%/);
      const shadow = page.getByTestId('shadow-spam');
      assert.equal(await shadow.getAttribute('data-version'), '1.2.0');
      assert.equal(Number(await shadow.getAttribute('data-agreement')), api.shadow!.labelAgreement);
      assert.equal(Number(await shadow.getAttribute('data-compared')), api.shadow!.comparedInstances);
      assert.equal(Number(await shadow.getAttribute('data-p99')), api.shadow!.scoreDifference.p99);
      assert.match(
        await shadow.innerText(),
        new RegExp(`label agreement ${(api.shadow!.labelAgreement! * 100).toFixed(1)}% over 60 instances`),
      );
      await shot(page, 'rollout');
    });

    test('pipelines page: the run is listed and a key shows its stored prediction', async () => {
      const runs = await json<{ runs: Array<{ runId: string; status: string; rowsScored: number }> }>(
        `${srv.base}/v1/pipelines/spam-inbox/runs`,
      );
      assert.equal(runs.runs.length, 1);
      assert.equal(runs.runs[0]!.status, 'completed');
      assert.equal(runs.runs[0]!.rowsScored, MESSAGES.length);

      const page = b.page;
      await page.goto(`${srv.base}/#/pipelines`);
      const row = page.getByTestId('pipelines-table').locator('tr', { hasText: 'spam-inbox' });
      await row.waitFor();
      assert.match(await row.innerText(), new RegExp(`completed: ${MESSAGES.length} rows, 0 rejected`));
      await row.getByRole('link', { name: 'spam-inbox' }).click();
      const listed = page.getByTestId('runs-table').locator(`tr[data-run="${runs.runs[0]!.runId}"]`);
      await listed.waitFor();
      assert.equal(await listed.getAttribute('data-status'), 'completed');
      assert.equal(Number(await listed.getAttribute('data-rows')), MESSAGES.length);

      for (const key of ['msg-6', 'msg-0']) {
        await page.getByLabel('key').fill(key);
        await page.getByRole('button', { name: 'Look up prediction' }).click();
        await page
          .getByTestId('pipeline-prediction')
          .filter({ hasText: `"key": "${key}"` })
          .waitFor();
        const shown = JSON.parse(await page.getByTestId('pipeline-prediction').innerText()) as {
          prediction: { label: string; scores: Record<string, number> };
        };
        const api = await json<{ prediction: { label: string; scores: Record<string, number> } }>(
          `${srv.base}/v1/pipelines/spam-inbox/predictions/${key}`,
        );
        assert.deepEqual(shown.prediction, api.prediction);
        // And the stored prediction is what the model answers for that row now.
        const live = await json<{ predictions: Array<{ scores: Record<string, number> }> }>(
          `${srv.base}/v1/models/spam/versions/1.0.0/predict`,
          {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ instances: [{ text: MESSAGES[Number(key.slice(4))] }] }),
          },
        );
        assert.ok(Math.abs(live.predictions[0]!.scores.spam! - api.prediction.scores.spam!) < 1e-6);
      }
      assert.equal(JSON.parse(await page.getByTestId('pipeline-prediction').innerText()).prediction.label, 'ham');
      await shot(page, 'pipelines');

      await page.getByLabel('key').fill('no-such-key');
      await page.getByRole('button', { name: 'Look up prediction' }).click();
      await page.getByTestId('pipeline-prediction').filter({ hasText: 'pipeline-prediction-not-found' }).waitFor();
    });
  },
);

describe('dashboard with API keys: the key prompt, then the drift page (an admin route)', { skip: noChromium }, () => {
  test("401 → key prompt → with the key, reference vs current histograms per feature equal the API's", async (t) => {
    const logs: string[] = [];
    const key = 'driftAdminKey0123456789';
    const srv = await serve(
      {
        FERRY_MODELS_ONLY: 'flight-delay',
        FERRY_API_KEYS: `ops=${key};scopes=predict+jobs+pipelines:read+admin`,
        FERRY_PREDICTION_LOG_FLUSH_INTERVAL_MS: '100',
        // The page must show all 200 rows sent at once: no rate cap.
        FERRY_PREDICTION_LOG_MAX_ENTRIES_PER_SECOND: '0',
      },
      logs,
    );
    const b = await openBrowser(logs);
    try {
      const auth = { authorization: `Bearer ${key}` };
      assert.equal((await fetch(`${srv.base}/v1/models/flight-delay/drift/histograms`)).status, 401);
      // Traffic that drifted: the reference rows, three hours later and twice as far.
      const rows = readFileSync(join(root, 'models/flight-delay/1.0.0/reference.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .slice(0, 200)
        .map((l) => {
          const { prediction: _p, ...r } = JSON.parse(l) as Record<string, unknown> & {
            hour: number;
            distance: number;
          };
          return { ...r, hour: Math.min(23.9, r.hour + 3), distance: r.distance * 2 };
        });
      for (let i = 0; i < rows.length; i += 50) {
        await json(`${srv.base}/v1/models/flight-delay/predict`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...auth },
          body: JSON.stringify({ instances: rows.slice(i, i + 50) }),
        });
      }
      type Hist = { columns: Array<{ column: string; labels: string[]; reference: number[]; current: number[] }> };
      let api = await json<Hist>(`${srv.base}/v1/models/flight-delay/drift/histograms?window=24h`, { headers: auth });
      for (let i = 0; i < 50 && api.columns.every((c) => c.current.every((v) => v === 0)); i++) {
        await new Promise((r) => setTimeout(r, 200));
        api = await json<Hist>(`${srv.base}/v1/models/flight-delay/drift/histograms?window=24h`, { headers: auth });
      }
      const names = api.columns.map((c) => c.column);
      for (const f of ['month', 'dayOfWeek', 'hour', 'distance', 'origin', 'destination'])
        assert.ok(names.includes(f), `${f} in ${names.join(',')}`);

      const page = b.page;
      await page.goto(`${srv.base}/#/drift/flight-delay`);
      await page.getByTestId('api-key-prompt').waitFor();
      assert.equal(await page.locator('[data-testid^="histogram-"]').count(), 0);
      await shot(page, 'api-key-prompt-drift');
      await page.getByLabel('API key').fill(key);
      await page.getByTestId('api-key-prompt').getByRole('button', { name: 'Save' }).click();
      await page.getByTestId('histogram-distance').waitFor();
      for (const c of api.columns) {
        const fig = page.getByTestId(`histogram-${c.column}`);
        assert.equal(Number(await fig.getAttribute('data-bins')), c.labels.length, c.column);
        const shownRef = JSON.parse((await fig.getAttribute('data-a'))!) as number[];
        const shownCur = JSON.parse((await fig.getAttribute('data-b'))!) as number[];
        shownRef.forEach((v, i) => assert.ok(Math.abs(v - c.reference[i]!) < 1e-12, `${c.column} reference bin ${i}`));
        shownCur.forEach((v, i) => assert.ok(Math.abs(v - c.current[i]!) < 1e-12, `${c.column} current bin ${i}`));
        assert.ok((await fig.locator('rect').count()) >= 2 * c.labels.length - 1);
      }
      // The shift shows: the current distance histogram sits to the right of the reference one.
      const d = api.columns.find((c) => c.column === 'distance')!;
      const mean = (w: number[]) => w.reduce((a, v, i) => a + v * i, 0) / w.reduce((a, v) => a + v, 0);
      assert.ok(mean(d.current) > mean(d.reference) + 0.5, `current bins ${d.current} vs reference ${d.reference}`);
      await page.getByTestId('drift-report').waitFor();
      assert.match(await page.getByTestId('drift-report').innerText(), /current 200 rows/);
      t.diagnostic(`histograms: ${api.columns.map((c) => `${c.column} (${c.labels.length} bins)`).join(', ')}`);
      await shot(page, 'drift');
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${logs.join('').slice(-2000)}`);
    } finally {
      await b.close();
      await stop(srv.child);
    }
  });
});
