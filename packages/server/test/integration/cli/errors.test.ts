// Every `ferry` command's usual mistakes, run as a user runs them (the built binary in a child process):
// a missing or unreadable file, bad JSON, an unknown model, a server that is not there or is not Ferry.
// Each prints one clear line on stderr, no stack trace, and exits non-zero.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer as createHttpServer, type Server } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempModelRepository, tinyClassifier, writeModelVersion } from '@ferry/test-kit';

const CLI = fileURLToPath(new URL('../../cli/main.js', import.meta.url));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function ferry(args: string[], cwd: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [CLI, ...args],
      { cwd, env: { ...process.env, FERRY_DEBUG: '', REDIS_URL: '', DATABASE_URL: '' }, timeout: 60_000 },
      (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
    child.stdin?.end(); // nothing on stdin, as from `ferry … < /dev/null`
  });
}

/** A port nothing listens on: bound, then closed. */
async function closedPort(): Promise<number> {
  const s = createHttpServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

describe('ferry commands: errors are one clear line and a non-zero exit', () => {
  let dir: string;
  let repo: Awaited<ReturnType<typeof tempModelRepository>>;
  let notFerry: Server;
  let notFerryUrl: string;
  let deadUrl: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-cli-errors-'));
    writeFileSync(join(dir, 'not-a-model.onnx'), 'this is text, not a protobuf');
    writeFileSync(join(dir, 'bad.json'), '{"instances": [');
    repo = await tempModelRepository();
    await writeModelVersion(repo.dir, 'cls', '1.0.0', tinyClassifier());
    // Some other web server: answers HTML.
    notFerry = createHttpServer((_req, res) =>
      res.writeHead(404, { 'content-type': 'text/html' }).end('<h1>nope</h1>'),
    );
    await new Promise<void>((r) => notFerry.listen(0, '127.0.0.1', r));
    notFerryUrl = `http://127.0.0.1:${(notFerry.address() as AddressInfo).port}`;
    deadUrl = `http://127.0.0.1:${await closedPort()}`;
  });
  after(async () => {
    await new Promise((r) => notFerry.close(r));
    await repo.remove();
    rmSync(dir, { recursive: true, force: true });
  });

  const cases = (): Array<[string, string[], RegExp]> => [
    [
      'predict: --data names a missing file',
      ['predict', 'cls', '--data', '@missing.json'],
      /--data @missing\.json: no such file or directory/,
    ],
    ['predict: --data names a folder', ['predict', 'cls', '--data', `@${dir}`], /is a directory, not a file/],
    [
      'predict: --data file is not JSON',
      ['predict', 'cls', '--data', '@bad.json'],
      /--data @bad\.json is not valid JSON/,
    ],
    ['predict: --data is not JSON', ['predict', 'cls', '--data', '{bad'], /--data is not valid JSON/],
    ['predict: unknown model', ['predict', 'nope', '-m', repo.dir, '--data', '{}'], /model "nope" is not in/],
    [
      'predict: invalid instance',
      ['predict', 'cls', '-m', repo.dir, '--data', '{"amount":"x"}'],
      /^ferry: invalid-input \(400\): .*\/instances\/0\/amount/,
    ],
    [
      'predict: server not reachable',
      ['predict', 'cls', '--url', deadUrl, '--data', '{}'],
      /cannot reach the server: 127\.0\.0\.1:\d+: connection refused/,
    ],
    [
      'predict: not a Ferry server',
      ['predict', 'cls', '--url', notFerryUrl, '--data', '{}'],
      /answered HTTP 404 with something other than JSON/,
    ],
    [
      'serve: missing repository',
      ['serve', '-m', join(dir, 'nowhere'), '-p', '0'],
      /model repository .*nowhere does not exist/,
    ],
    ['models: missing repository', ['models', '-m', join(dir, 'nowhere')], /model repository .*nowhere does not exist/],
    ['init: missing file', ['init', 'missing.onnx', '--name', 'x', '--repo', repo.dir], /missing\.onnx does not exist/],
    [
      'init: not an ONNX file',
      ['init', 'not-a-model.onnx', '--name', 'x', '--repo', repo.dir],
      /not-a-model\.onnx is not a model ONNX Runtime can load/,
    ],
    ['config: missing file', ['config', '-c', 'missing.yaml'], /cannot read config file .*missing\.yaml/],
    ['quantize: missing file', ['quantize', 'missing.onnx', 'out.onnx'], /cannot read missing\.onnx/],
    ['drift: missing files', ['drift', '--reference', 'missing.csv', '--current', 'missing2.csv'], /missing\.csv/],
    ['stream: missing WAV', ['stream', 'silero-vad', '--wav', 'missing.wav'], /missing\.wav/],
    [
      'chat: server not reachable',
      ['chat', 'm', '--url', deadUrl, '--message', 'hi'],
      /cannot reach the server: .*connection refused/,
    ],
    [
      'bench: server not reachable',
      ['bench', 'cls', '-m', repo.dir, '--url', deadUrl, '-d', '1', '--warmup', '0', '--concurrency', '1'],
      /cannot reach the server: .*connection refused/,
    ],
    [
      'cost: missing profile',
      ['cost', '--profile', 'missing.json', '--requests-per-day', '10'],
      /--profile missing\.json/,
    ],
    [
      'client types: missing repository',
      ['client', 'types', '-m', join(dir, 'nowhere'), '-o', 'types.ts'],
      /model repository .*nowhere does not exist/,
    ],
    ['keys hash: nothing on stdin', ['keys', 'hash'], /no key on stdin/],
    ['batch run: unknown pipeline', ['batch', 'run', 'nopipe', '-m', repo.dir], /no pipeline "nopipe"/],
  ];

  test('each command, each mistake', async () => {
    const all = cases();
    const failures: string[] = [];
    // Four at a time: each is a Node process of its own.
    for (let i = 0; i < all.length; i += 4) {
      const runs = await Promise.all(all.slice(i, i + 4).map(([, args]) => ferry(args, dir)));
      runs.forEach((r, k) => {
        const [what, args, want] = all[i + k]!;
        const lines = r.stderr.trim().split('\n');
        const problems = [
          r.code === 0 && 'exit code 0',
          lines.length !== 1 && `${lines.length} lines on stderr`,
          /\n\s+at /.test(r.stderr) && 'a stack trace',
          !want.test(lines.at(-1)!) && `not ${want}`,
        ].filter(Boolean);
        if (problems.length)
          failures.push(`${what} (ferry ${args.join(' ')}): ${problems.join(', ')}\n  stderr: ${r.stderr.trim()}`);
      });
    }
    assert.deepEqual(failures, []);
  });
});
