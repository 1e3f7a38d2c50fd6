// `ferry keys` and `ferry serve --watch` end to end, as a user runs them: a real process on a port.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { tempModelRepository, writeModelVersion, biasModel } from '@ferry/test-kit';
import { hashKey } from '../../../auth/keys.js';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../../../cli/main.js', import.meta.url));

test(
  'ferry keys new prints a secret once and its digest; ferry serve --watch enforces it and picks up new versions',
  { timeout: 120_000 },
  async () => {
    const made = await run(process.execPath, [
      CLI,
      'keys',
      'new',
      'web',
      '--scopes',
      'predict,pipelines:read',
      '--models',
      'm',
    ]);
    const secret = /secret \(shown once, give it to the client\): (\S+)/.exec(made.stdout)![1]!;
    const config = parse(made.stdout.slice(made.stdout.indexOf('auth:'))) as {
      auth: { keys: Array<{ id: string; sha256: string; scopes: string[]; models: string[] }> };
    };
    assert.deepEqual(config.auth.keys[0], {
      id: 'web',
      sha256: hashKey(secret),
      scopes: ['predict', 'pipelines:read'],
      models: ['m'],
    });
    assert.ok(secret.length >= 40);

    const hashed = await new Promise<string>((resolve, reject) => {
      const p = spawn(process.execPath, [CLI, 'keys', 'hash']);
      let out = '';
      p.stdout.on('data', (d) => {
        out += String(d);
      });
      p.on('error', reject);
      p.on('close', () => resolve(out.trim()));
      p.stdin.end(`${secret}\n`);
    });
    assert.equal(hashed, hashKey(secret));

    const repo = await tempModelRepository('ferry-cli-');
    await writeModelVersion(repo.dir, 'm', '1.0.0', biasModel(0));
    const cfgFile = join(repo.dir, '..', `${repo.dir.split('/').pop()}.yaml`);
    await writeFile(cfgFile, made.stdout.slice(made.stdout.indexOf('auth:')));
    const server = spawn(
      process.execPath,
      [
        CLI,
        'serve',
        '--watch',
        '--models',
        repo.dir,
        '--config',
        cfgFile,
        '--port',
        '0',
        '--host',
        '127.0.0.1',
        '--workers',
        '1',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let buf = '';
        const timer = setTimeout(() => reject(new Error(`no ready line: ${buf}`)), 60_000);
        server.stdout.on('data', (d) => {
          buf += String(d);
          for (const line of buf.split('\n')) {
            if (line.includes('"msg":"ready"')) {
              clearTimeout(timer);
              resolve(JSON.parse(line).url as string);
            }
          }
        });
        server.on('exit', (code) => reject(new Error(`server exited ${code}: ${buf}`)));
      });
      const predict = (model: string, key?: string) =>
        fetch(`${url}/v1/models/${model}/predict`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(key && { authorization: `Bearer ${key}` }) },
          body: JSON.stringify({ instances: [{ x: [2, 1] }] }),
        });
      assert.equal((await predict('m')).status, 401);
      const ok = await predict('m', secret);
      assert.equal(ok.status, 200);
      assert.ok(
        Math.abs(((await ok.json()) as { predictions: Array<{ value: number }> }).predictions[0]!.value - 2) < 1e-5,
      );
      // Management does not exist for this key (no admin scope): 403.
      assert.equal(
        (
          await fetch(`${url}/v1/admin/repository:reload`, {
            method: 'POST',
            headers: { authorization: `Bearer ${secret}` },
          })
        ).status,
        403,
      );
      // --watch: a new version copied in is served without a restart.
      await writeModelVersion(repo.dir, 'm', '1.1.0', biasModel(5));
      const until = Date.now() + 60_000;
      let version = '';
      while (Date.now() < until) {
        const r = await predict('m', secret);
        version = r.headers.get('ferry-model-version') ?? '';
        if (version === '1.1.0') break;
        await new Promise((r) => setTimeout(r, 200));
      }
      assert.equal(version, '1.1.0');
    } finally {
      server.kill('SIGTERM');
      await new Promise((r) => server.once('exit', r));
      await repo.remove();
      await import('node:fs/promises').then((fs) => fs.rm(cfgFile, { force: true }));
    }
  },
);
