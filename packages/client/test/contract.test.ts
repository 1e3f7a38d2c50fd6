// Holds @ferry/client to the server it talks to: the error catalogue, the browser entry's imports, and
// the per-model types `ferry client types` generates (a wrong feature name or type must not compile).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { builtinModules, createRequire } from 'node:module';
import { mkdtempSync, readFileSync, writeFileSync, rmSync, mkdirSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { ERROR_CATALOGUE } from '@ferry/server';
import { ERROR_CLASSES, ERROR_CODES } from '@ferry/client';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../../../..');
const require = createRequire(import.meta.url);

test('the client knows every server error code with the same status and retryability, and no other', () => {
  const server = Object.fromEntries(Object.entries(ERROR_CATALOGUE).map(([k, v]) => [k, { status: v.status, retryable: 'retryable' in v && v.retryable === true }]));
  for (const code of Object.keys(server)) assert.ok(code in ERROR_CODES, `add "${code}" to packages/client/src/codes.ts and a class for it in errors.ts`);
  assert.deepEqual(ERROR_CODES, server);
  assert.deepEqual(Object.keys(ERROR_CLASSES).sort(), Object.keys(server).sort());
});

test('the browser entry and everything it imports use no Node built-in module', () => {
  const seen = new Set<string>();
  const offenders: string[] = [];
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const src = readFileSync(file, 'utf8');
    for (const m of src.matchAll(/(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|^import\s*['"]([^'"]+)['"]/gm)) {
      const spec = m[1] ?? m[2] ?? m[3]!;
      if (spec.startsWith('node:') || builtinModules.includes(spec.split('/')[0]!)) offenders.push(`${file}: ${spec}`);
      else if (spec.startsWith('.')) visit(resolve(dirname(file), spec));
      else if (spec.startsWith('@ferry/')) visit(require.resolve(spec));
      // Third-party packages (react, onnxruntime-web) are browser packages by choice.
    }
  };
  for (const entry of ['@ferry/client', '@ferry/client/react', '@ferry/client/edge']) visit(require.resolve(entry));
  assert.ok([...seen].some((f) => f.includes(`core${'/'}dist`)), '@ferry/core is part of the graph (edge pre/postprocessing)');
  assert.ok(seen.size > 10, `walked ${seen.size} files`);
  assert.deepEqual(offenders, []);
});

test('generated per-model types: right calls compile, a wrong feature name or type does not', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-types-'));
  try {
    execFileSync(process.execPath, [join(root, 'packages/server/dist/cli/main.js'), 'client', 'types', '--out', join(dir, 'src/ferry-models.d.ts'), '--models', join(root, 'models')], { stdio: 'pipe' });
    mkdirSync(join(dir, 'node_modules/@ferry'), { recursive: true });
    symlinkSync(join(root, 'packages/client'), join(dir, 'node_modules/@ferry/client'));
    symlinkSync(join(root, 'packages/core'), join(dir, 'node_modules/@ferry/core'));
    const app = `import { createClient } from '@ferry/client';
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
    writeFileSync(join(dir, 'src/app.ts'), app);
    const program = ts.createProgram([join(dir, 'src/app.ts'), join(dir, 'src/ferry-models.d.ts')], {
      strict: true, noEmit: true, target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext,
      lib: ['lib.es2023.d.ts', 'lib.dom.d.ts'], skipLibCheck: true, types: [],
    });
    const diags = ts.getPreEmitDiagnostics(program).map((d) => {
      const line = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line + 1 : 0;
      return { line, text: ts.flattenDiagnosticMessageText(d.messageText, '\n') };
    });
    const lines = app.split('\n');
    const fnOf = (line: number) => { for (let i = line - 1; i >= 0; i--) { const m = /export async function (\w+)/.exec(lines[i]!); if (m) return m[1]; } return '?'; };
    const byFn = new Map<string, string[]>();
    for (const d of diags) byFn.set(fnOf(d.line), [...(byFn.get(fnOf(d.line)) ?? []), d.text]);
    assert.equal(byFn.get('ok'), undefined, `the right call must compile: ${JSON.stringify(byFn.get('ok'))}`);
    assert.match(String(byFn.get('wrongName')), /distanse/);
    assert.match(String(byFn.get('wrongType')), /Type 'string' is not assignable to type 'number'/);
    assert.match(String(byFn.get('wrongCategory')), /"XXX"/);
    assert.match(String(byFn.get('wrongLabel')), /eggs/);
    assert.match(String(byFn.get('wrongModel')), /flight-dely/);
    assert.equal(diags.every((d) => fnOf(d.line) !== '?'), true, JSON.stringify(diags));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
