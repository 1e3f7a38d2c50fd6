// Two Ferry replicas (two `ferry serve` processes) enforce one spend budget under 200 concurrent
// requests, with the counters in Redis (and, without Redis, in one PostgreSQL store): the money spent
// (from the shared ledger) never exceeds the budget by more than one request's estimate. Then an
// upstream killed mid-load with a second provider configured: not one client request fails. The
// upstream is the PROVIDER EMULATOR (a stand-in for a hosted API); the replicas, Redis and PostgreSQL
// are real.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import {
  CLI_PATH,
  startLlmEmulator,
  startTestServer,
  TEST_DATABASE_URL,
  uniqueSchemaName,
  withAdminClient,
  type LlmEmulator,
  type TestServer,
} from '@ferry/test-kit';

const REDIS_URL = process.env.FERRY_TEST_REDIS_URL || 'redis://127.0.0.1:6379';
const PRICE = { inputPerMTok: 1000, outputPerMTok: 2000 };
const MAX_TOKENS = 20;

const closers: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of closers.reverse()) await c().catch(() => undefined);
});

async function replicas(emu: LlmEmulator, overrides: Record<string, unknown>, n = 2): Promise<TestServer[]> {
  const out: TestServer[] = [];
  for (let i = 0; i < n; i++) {
    const t = await startTestServer([], {
      'llm.providers': { up: { kind: 'openai', baseUrl: emu.url, maxConcurrent: 256, prices: { m: PRICE } } },
      'llm.routes': { chat: { tiers: { main: [{ provider: 'up', model: 'm' }] }, cache: { exact: false } } },
      ...overrides,
    });
    await t.server.listen();
    closers.push(() => t.close());
    out.push(t);
  }
  return out;
}

/** A replica as deployed: a `ferry serve` process of its own, with this config; resolves with its URL. */
async function serveProcess(config: Record<string, unknown>): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-llm-replica-'));
  const file = join(dir, 'ferry.config.yaml');
  writeFileSync(file, JSON.stringify({ models: { dir }, log: { level: 'info' }, ...config }));
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !/^(FERRY_|DATABASE_URL|REDIS_URL)/.test(k)),
  );
  const child: ChildProcess = spawn(
    process.execPath,
    [CLI_PATH, 'serve', '-c', file, '--port', '0', '--host', '127.0.0.1', '--workers', '1'],
    { stdio: ['ignore', 'pipe', 'pipe'], env },
  );
  closers.push(async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    rmSync(dir, { recursive: true, force: true });
  });
  let out = '';
  return new Promise<string>((resolve, reject) => {
    const read = (d: Buffer) => {
      out += d.toString();
      const m = /"url":"(http:[^"]+)"[^\n]*"msg":"ready"/.exec(out);
      if (m) resolve(m[1]!);
    };
    child.stdout!.on('data', read);
    child.stderr!.on('data', read);
    child.once('exit', (code) => reject(new Error(`ferry serve exited (${code}): ${out.slice(-2000)}`)));
  });
}

interface Spend {
  byRoute: { group: string; requests: number; costUsd: number }[];
}

for (const backend of ['redis', 'store'] as const) {
  describe(`one budget across two replicas [counters in ${backend}]`, () => {
    test('200 concurrent requests never spend more than the budget plus one estimate', async (tc) => {
      const emu = await startLlmEmulator({ latencyMs: 5 });
      closers.push(() => emu.close());
      const schema = uniqueSchemaName('ferry_llm');
      closers.push(() => withAdminClient((c) => c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)));
      const budgetUsd = 0.5;
      const config = {
        store: { url: TEST_DATABASE_URL, schema },
        ...(backend === 'redis' && { redis: { url: REDIS_URL } }),
        llm: {
          providers: { up: { kind: 'openai', baseUrl: emu.url, maxConcurrent: 256, prices: { m: PRICE } } },
          routes: { chat: { tiers: { main: [{ provider: 'up', model: 'm' }] }, cache: { exact: false } } },
          budgetBackend: backend,
          cache: { keyPrefix: `ferry:llmtest:${randomBytes(4).toString('hex')}:` },
          budgets: [{ scope: 'global', window: 'day', usd: budgetUsd }],
        },
      };
      // One after the other: the first migrates the shared schema.
      const u1 = await serveProcess(config);
      const u2 = await serveProcess(config);
      const clients = [u1, u2].map((u) => new OpenAI({ baseURL: `${u}/openai/v1`, apiKey: 'x', maxRetries: 0 }));
      const results = await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          clients[i % 2]!.chat.completions.create({
            model: 'chat',
            messages: [{ role: 'user', content: `request number ${i} about the weather` }],
            max_tokens: MAX_TOKENS,
          }).then(
            () => 'ok' as const,
            (e: unknown) => ((e as { status?: number }).status === 429 ? ('budget' as const) : (e as Error).message),
          ),
        ),
      );
      const ok = results.filter((r) => r === 'ok').length;
      const refused = results.filter((r) => r === 'budget').length;
      assert.equal(
        ok + refused,
        200,
        `unexpected failures: ${results.filter((r) => r !== 'ok' && r !== 'budget').join('; ')}`,
      );
      assert.ok(ok > 0 && refused > 0, `${ok} answered, ${refused} refused`);
      // Spend from the shared ledger (both replicas write to the same PostgreSQL schema).
      const spend = async (u: string) => (await (await fetch(`${u}/v1/llm/spend?sinceMs=0`)).json()) as Spend;
      await spend(u2); // a summary flushes the replica's pending ledger rows first
      const summary = await spend(u1);
      const chat = summary.byRoute.find((r) => r.group === 'chat')!;
      const spent = chat.costUsd;
      assert.equal(chat.requests, 200, 'both replicas wrote every request to the one ledger');
      // One request's estimate: its prompt (< 20 tokens) and MAX_TOKENS completion at the route's prices.
      const oneEstimate = (20 * PRICE.inputPerMTok + MAX_TOKENS * PRICE.outputPerMTok) / 1e6;
      assert.ok(spent <= budgetUsd + oneEstimate, `spent ${spent} > ${budgetUsd} + ${oneEstimate}`);
      assert.ok(spent > 0);
      tc.diagnostic(
        `${ok} answered, ${refused} refused, spent $${spent.toFixed(4)} of $${budgetUsd} (one estimate $${oneEstimate})`,
      );
      const upstream = emu.requests.filter((r) => r.api === 'openai').length;
      assert.equal(upstream, ok, 'every answered request was one upstream call; refused ones made none');
    });
  });
}

const url = (t: TestServer) => {
  const a = t.server.app.server.address();
  return `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
};

describe('an upstream killed mid-load', () => {
  test('with a second provider configured, no client request fails', async (tc) => {
    const primary = await startLlmEmulator({ latencyMs: 10 });
    const secondary = await startLlmEmulator({ latencyMs: 10 });
    closers.push(
      () => primary.close(),
      () => secondary.close(),
    );
    const [t] = await replicas(
      primary,
      {
        'llm.providers': {
          p: { kind: 'openai', baseUrl: primary.url, maxRetries: 1, retryBaseDelayMs: 5, breakerFailures: 3 },
          s: { kind: 'openai', baseUrl: secondary.url },
        },
        'llm.routes': {
          chat: {
            tiers: {
              main: [
                { provider: 'p', model: 'm' },
                { provider: 's', model: 'm' },
              ],
            },
            cache: { exact: false },
          },
        },
      },
      1,
    );
    const client = new OpenAI({ baseURL: `${url(t!)}/openai/v1`, apiKey: 'x', maxRetries: 0 });
    let done = 0;
    let killed = false;
    const failures: string[] = [];
    const providers = new Map<string, number>();
    const worker = async (w: number) => {
      for (let i = w; i < 300; i += 20) {
        if (done >= 60 && !killed) {
          killed = true;
          void primary.kill();
        }
        try {
          const { data, response } = await client.chat.completions
            .create({ model: 'chat', messages: [{ role: 'user', content: `load ${i}` }], max_tokens: 8 })
            .withResponse();
          assert.equal(data.choices[0]!.message.content, `reply: load ${i}`);
          const p = response.headers.get('ferry-llm-provider')!;
          providers.set(p, (providers.get(p) ?? 0) + 1);
        } catch (e) {
          failures.push((e as Error).message);
        }
        done++;
      }
    };
    await Promise.all(Array.from({ length: 20 }, (_, w) => worker(w)));
    tc.diagnostic(`answered by ${JSON.stringify(Object.fromEntries(providers))}, ${failures.length} failed`);
    assert.deepEqual(failures, []);
    assert.equal(done, 300);
    assert.ok(killed);
    assert.ok((providers.get('p') ?? 0) >= 60, `primary answered ${providers.get('p')}`);
    assert.ok((providers.get('s') ?? 0) > 0, 'the secondary took over');
  });
});

describe('caches shared by replicas through Redis', () => {
  test('an answer cached by one replica (exact and semantic) is served by the other; invalidation clears both', async () => {
    const emu = await startLlmEmulator();
    closers.push(() => emu.close());
    const [r1, r2] = await replicas(emu, {
      'redis.url': REDIS_URL,
      'llm.cache.keyPrefix': `ferry:llmtest:${randomBytes(4).toString('hex')}:`,
      'llm.providers': { up: { kind: 'openai', baseUrl: emu.url } },
      'llm.embeddings.provider': 'up',
      'llm.embeddings.model': 'e',
      'llm.routes': {
        chat: { tiers: { main: [{ provider: 'up', model: 'm' }] }, cache: { exact: true, semanticThreshold: 0.9 } },
      },
    });
    const ask = (r: TestServer, content: string, temperature: number) =>
      new OpenAI({ baseURL: `${url(r)}/openai/v1`, apiKey: 'x', maxRetries: 0 }).chat.completions
        .create({ model: 'chat', messages: [{ role: 'user', content }], temperature })
        .withResponse();
    const chatCalls = () => emu.requests.filter((x) => x.api === 'openai').length;
    await ask(r1!, 'Where is my parcel today?', 0);
    const exact = await ask(r2!, 'Where is my parcel today?', 0);
    assert.equal(exact.response.headers.get('ferry-llm-cache'), 'exact');
    const near = await ask(r2!, 'where is my parcel today', 0.7);
    assert.equal(near.response.headers.get('ferry-llm-cache'), 'semantic');
    assert.equal(near.data.choices[0]!.message.content, 'reply: Where is my parcel today?');
    assert.equal(chatCalls(), 1);
    assert.ok((await r2!.server.llm.invalidate('chat')) >= 2);
    const after = await ask(r1!, 'Where is my parcel today?', 0);
    assert.equal(after.response.headers.get('ferry-llm-cache'), 'none');
    assert.equal(chatCalls(), 2);
  });
});
