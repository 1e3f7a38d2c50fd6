// A start that fails late (after the store, the worker pool, the prediction log's writer thread and the
// timers are open) closes what it opened: an application that embeds Ferry and catches createServer's
// rejection is not kept alive by threads and connections it never got a handle to. Each case runs in a
// child process of its own, which must end by itself once the rejection is handled.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { tinyLinearModel, tempModelRepository, writeModelVersion } from '@ferry/test-kit';

const SERVER = pathToFileURL(join(import.meta.dirname, '../../../dist/index.js')).href;

/** Runs createServer in a child with `config`; resolves with its output once it exits (or rejects after 30 s). */
function startInChild(config: Record<string, unknown>): Promise<{ code: number | null; out: string }> {
  const script = `
    import { createServer, loadConfig } from ${JSON.stringify(SERVER)};
    const cfg = loadConfig({ env: {}, overrides: ${JSON.stringify(config)} });
    try {
      await createServer(cfg, { logger: false });
      console.log('started');
    } catch (e) {
      console.log('rejected: ' + e.message);
    }`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => {
    const hang = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the process did not end after a failed start: ${out.slice(-500)}`));
    }, 30_000);
    child.on('exit', (code) => {
      clearTimeout(hang);
      resolve({ code, out });
    });
  });
}

test('a start refused after the store, workers and prediction log are open leaves nothing running', async () => {
  const repo = await tempModelRepository();
  const dir = mkdtempSync(join(tmpdir(), 'ferry-failed-start-'));
  try {
    const m = tinyLinearModel();
    await writeModelVersion(repo.dir, 'linear', '1.0.0', { onnx: m.onnx, manifest: m.manifest });
    writeFileSync(join(dir, 'empty.pem'), 'no certificate here\n');
    const { code, out } = await startInChild({
      'models.dir': repo.dir,
      'runtime.workers': 1,
      'store.url': `sqlite:${join(dir, 'ferry.db')}`,
      'predictionLog.enabled': true,
      // Refused late: the LLM gateway is built after the store, the pool and the log's writer thread.
      'llm.providers': {
        up: { kind: 'openai', baseUrl: 'https://upstream.invalid/v1', caFile: join(dir, 'empty.pem') },
      },
      'llm.routes': { chat: { tiers: { main: [{ provider: 'up', model: 'm' }] } } },
    });
    assert.match(out, /rejected: llm\.providers\.up: cannot use caFile/);
    assert.equal(code, 0);
  } finally {
    await repo.remove();
    rmSync(dir, { recursive: true, force: true });
  }
});
