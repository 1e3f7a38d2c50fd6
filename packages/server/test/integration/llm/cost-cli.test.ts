// `ferry cost --llm`: the LLM pattern's rows computed from the ledger in the store (SQLite file here),
// written through the gateway's own Ledger, read back by the CLI in a child process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { CLI_PATH } from '@ferry/test-kit';
import { createStore } from '../../store/index.js';
import { Ledger } from '../../llm/ledger.js';

const run = promisify(execFile);

test('ferry cost --llm prints spend per route from the ledger with a monthly projection', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-cost-llm-'));
  try {
    const file = join(dir, 'ferry.db');
    const store = createStore({ url: `sqlite:${file}` });
    await store.migrate();
    const ledger = new Ledger(store, pino({ level: 'silent' }));
    const row = (route: string, cost: number, cache = 'none', ts = Date.now()) => ({
      ts,
      request_id: null,
      route,
      tier: 'main',
      provider: 'p',
      model: 'm',
      key_id: 'app',
      tenant: null,
      cache,
      outcome: 'ok',
      upstream_calls: cache === 'none' ? 1 : 0,
      fallbacks: 0,
      escalated: 0,
      prompt_tokens: cache === 'none' ? 100 : 0,
      cached_prompt_tokens: 0,
      completion_tokens: cache === 'none' ? 50 : 0,
      cost_usd: cost,
      saved_usd: cache === 'none' ? 0 : 0.01,
      saved_tiering_usd: 0,
      saved_prompt_usd: 0,
      latency_ms: 1,
    });
    for (let i = 0; i < 10; i++) ledger.record(row('support', 0.02));
    ledger.record(row('support', 0, 'exact'));
    ledger.record(row('summarise', 0.5));
    // A cheap tier's answer (saved 0.03 against the dearest tier) with trimmed history (saved 0.005).
    ledger.record({ ...row('triage', 0.001), saved_usd: 0.035, saved_tiering_usd: 0.03, saved_prompt_usd: 0.005 });
    ledger.record(row('summarise', 9, 'none', Date.now() - 40 * 86_400_000)); // outside the window
    await ledger.flush();
    await store.close();
    const { stdout } = await run(process.execPath, [CLI_PATH, 'cost', '--llm', '--days', '10', '--json'], {
      cwd: dir,
      env: { ...process.env, DATABASE_URL: `sqlite:${file}` },
    });
    const out = JSON.parse(stdout) as {
      routes: { route: string; requests: number; spentUsd: number; savedUsd: number; monthlyUsd: number }[];
      byControl: { control: string; requests: number; savedUsd: number }[];
    };
    const controls = Object.fromEntries(out.byControl.map((c) => [c.control, [c.requests, c.savedUsd]]));
    assert.deepEqual(Object.keys(controls), ['exact cache', 'semantic cache', 'tiering', 'prompt trimming']);
    assert.deepEqual(controls['exact cache'], [1, 0.01]);
    assert.deepEqual(controls['semantic cache'], [0, 0]);
    assert.equal(controls.tiering![0], 1);
    assert.ok(Math.abs(controls.tiering![1]! - 0.03) < 1e-9);
    assert.equal(controls['prompt trimming']![0], 1);
    assert.ok(Math.abs(controls['prompt trimming']![1]! - 0.005) < 1e-9);
    const support = out.routes.find((r) => r.route === 'support')!;
    assert.equal(support.requests, 11);
    assert.ok(Math.abs(support.spentUsd - 0.2) < 1e-9);
    assert.ok(Math.abs(support.savedUsd - 0.01) < 1e-9);
    assert.ok(Math.abs(support.monthlyUsd - 0.6) < 1e-9, 'spend × 30 / 10 days');
    const summarise = out.routes.find((r) => r.route === 'summarise')!;
    assert.equal(summarise.requests, 1, 'the 40-day-old row is outside --days 10');
    const text = await run(process.execPath, [CLI_PATH, 'cost', '--llm', '--days', '10'], {
      cwd: dir,
      env: { ...process.env, DATABASE_URL: `sqlite:${file}` },
    });
    assert.match(text.stdout, /support\s+11\s+10/);
    assert.match(text.stdout, /unverified/);
    assert.match(text.stdout, /tiering\s+1\s+\$0\.0300/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
