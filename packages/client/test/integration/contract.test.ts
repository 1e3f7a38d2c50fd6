// Holds @ferry/client to the server it talks to: the error catalogue, the browser entry's imports, and
// the per-model types `ferry client types` generates (a wrong feature name or type must not compile).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { createHash } from 'node:crypto';
import { builtinModules, createRequire } from 'node:module';
import { mkdtempSync, readFileSync, writeFileSync, rmSync, mkdirSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { ERROR_CATALOGUE } from '@ferry/core';
import { startTestServer } from '@ferry/test-kit';
import { ERROR_CLASSES, ERROR_CODES } from '@ferry/client';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../../../../..');
const require = createRequire(import.meta.url);

test('the client rebuilds every catalogue code as its own error class, and no other', () => {
  // The catalogue itself is shared (@ferry/core); what the client adds per code is the class.
  assert.equal(ERROR_CODES, ERROR_CATALOGUE, 'the client exposes the shared catalogue, not a copy');
  assert.deepEqual(Object.keys(ERROR_CLASSES).sort(), Object.keys(ERROR_CATALOGUE).sort());
});

test('the browser entry and everything it imports use no Node built-in module', () => {
  const seen = new Set<string>();
  const offenders: string[] = [];
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const src = readFileSync(file, 'utf8');
    for (const m of src.matchAll(
      /(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|^import\s*['"]([^'"]+)['"]/gm,
    )) {
      const spec = m[1] ?? m[2] ?? m[3]!;
      if (spec.startsWith('node:') || builtinModules.includes(spec.split('/')[0]!)) offenders.push(`${file}: ${spec}`);
      else if (spec.startsWith('.')) visit(resolve(dirname(file), spec));
      else if (spec.startsWith('@ferry/')) visit(require.resolve(spec));
      // Third-party packages (react, onnxruntime-web) are browser packages by choice.
    }
  };
  for (const entry of ['@ferry/client', '@ferry/client/react', '@ferry/client/edge']) visit(require.resolve(entry));
  assert.ok(
    [...seen].some((f) => f.includes(`core${'/'}dist`)),
    '@ferry/core is part of the graph (edge pre/postprocessing)',
  );
  assert.ok(seen.size > 10, `walked ${seen.size} files`);
  assert.deepEqual(offenders, []);
});

const APP = `import { createClient } from '@ferry/client';
const client = createClient({ baseUrl: '' });
export async function ok() {
  const p = await client.model('flight-delay').predict({ month: 7, dayOfWeek: 5, hour: 18.5, distance: 1200, origin: 'ATL', destination: 'SFO' });
  const label: 'on_time' | 'delayed' = p.label;
  const s: number = p.scores.delayed;
  const spam = await client.model('spam@1').predict({ text: 'hi' });
  return [label, s, spam.scores.spam];
}
export async function wrongName() {
  return client.model('flight-delay').predict({ month: 7, dayOfWeek: 5, hour: 18.5, distanse: 1200, origin: 'ATL', destination: 'SFO' });
}
export async function wrongType() {
  return client.model('flight-delay').predict({ month: '7', dayOfWeek: 5, hour: 18.5, distance: 1200, origin: 'ATL', destination: 'SFO' });
}
export async function wrongCategory() {
  return client.model('flight-delay').predict({ month: 7, dayOfWeek: 5, hour: 18.5, distance: 1200, origin: 'XXX', destination: 'SFO' });
}
export async function wrongLabel() {
  const p = await client.model('spam').predict({ text: 'x' });
  const l: 'ham' | 'eggs' = p.label;
  return p.scores.eggs + l.length;
}
export async function wrongModel() {
  return client.model('flight-dely').predict({});
}
`;

/** Compiles a fixture app against a generated .d.ts and returns the diagnostics per fixture function. */
function compileAgainst(dir: string): Map<string, string[]> {
  mkdirSync(join(dir, 'node_modules/@ferry'), { recursive: true });
  symlinkSync(join(root, 'packages/client'), join(dir, 'node_modules/@ferry/client'));
  symlinkSync(join(root, 'packages/core'), join(dir, 'node_modules/@ferry/core'));
  writeFileSync(join(dir, 'src/app.ts'), APP);
  const program = ts.createProgram([join(dir, 'src/app.ts'), join(dir, 'src/ferry-models.d.ts')], {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    lib: ['lib.es2023.d.ts', 'lib.dom.d.ts'],
    skipLibCheck: true,
    types: [],
  });
  const diags = ts.getPreEmitDiagnostics(program).map((d) => {
    const line = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line + 1 : 0;
    return { line, text: ts.flattenDiagnosticMessageText(d.messageText, '\n') };
  });
  const lines = APP.split('\n');
  const fnOf = (line: number) => {
    for (let i = line - 1; i >= 0; i--) {
      const m = /export async function (\w+)/.exec(lines[i]!);
      if (m) return m[1]!;
    }
    return '?';
  };
  const byFn = new Map<string, string[]>();
  for (const d of diags) byFn.set(fnOf(d.line), [...(byFn.get(fnOf(d.line)) ?? []), d.text]);
  return byFn;
}

function assertTypeChecks(byFn: Map<string, string[]>): void {
  assert.equal(byFn.get('ok'), undefined, `the right call must compile: ${JSON.stringify(byFn.get('ok'))}`);
  assert.match(String(byFn.get('wrongName')), /distanse/);
  assert.match(String(byFn.get('wrongType')), /Type 'string' is not assignable to type 'number'/);
  assert.match(String(byFn.get('wrongCategory')), /"XXX"/);
  assert.match(String(byFn.get('wrongLabel')), /eggs/);
  assert.match(String(byFn.get('wrongModel')), /flight-dely/);
  assert.equal(byFn.get('?'), undefined, JSON.stringify(byFn.get('?')));
}

const CLI = join(root, 'packages/server/dist/cli/main.js');
const cli = (args: string[]) => execFileSync(process.execPath, [CLI, ...args], { stdio: 'pipe', encoding: 'utf8' });
/** Asynchronous, for a CLI that talks to a server living in this process (a sync child would block its event loop). */
const cliAsync = async (args: string[], env: Record<string, string> = {}) =>
  (
    await promisify(execFile)(process.execPath, [CLI, ...args], {
      env: { ...process.env, ...env },
      encoding: 'utf8',
      timeout: 60_000,
    })
  ).stdout;

test('generated per-model types: right calls compile, a wrong feature name or type does not', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-types-'));
  try {
    cli(['client', 'types', '--out', join(dir, 'src/ferry-models.d.ts'), '--models', join(root, 'models')]);
    assertTypeChecks(compileAgainst(dir));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("`ferry client types --url`: the same types from a running server's contracts (with an API key)", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-types-url-'));
  const key = 'typesKey0123456789abcd';
  const t = await startTestServer([], {
    'models.dir': join(root, 'models'),
    'server.port': 0,
    'server.host': '127.0.0.1',
    'web.timeseriesIntervalSeconds': 0,
    'auth.keys': [{ id: 'types', sha256: createHash('sha256').update(key).digest('hex'), scopes: ['predict'] }],
  });
  try {
    const url = (await t.server.listen()).url;
    assert.equal((await fetch(`${url}/v1/models`)).status, 401, 'the server requires a key');
    await assert.rejects(
      cliAsync(['client', 'types', '--out', join(dir, 'x.d.ts'), '--url', url]),
      /HTTP 401/,
      'without the key the command fails and says why',
    );
    const out = await cliAsync(['client', 'types', '--out', join(dir, 'src/ferry-models.d.ts'), '--url', url], {
      FERRY_API_KEY: key,
    });
    assert.match(out, /wrote .*ferry-models\.d\.ts: \d+ models/);
    assertTypeChecks(compileAgainst(dir));
    // Remote and local generation agree apart from the line naming the source.
    cli(['client', 'types', '--out', join(dir, 'local.d.ts'), '--models', join(root, 'models')]);
    const body = (f: string) => readFileSync(f, 'utf8').split('\n').slice(1).join('\n');
    assert.equal(body(join(dir, 'src/ferry-models.d.ts')), body(join(dir, 'local.d.ts')));
  } finally {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
