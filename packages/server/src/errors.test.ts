import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ERROR_CATALOGUE, FerryError, logRequestError, toProblem } from './errors.js';

const doc = readFileSync(fileURLToPath(new URL('../../../docs/errors.md', import.meta.url)), 'utf8');

test('docs/errors.md documents every error code with its status, and nothing else', () => {
  const rows = [...doc.matchAll(/^\| `([a-z-]+)` \| (\d{3}) \| (yes|no) \|/gm)].map(
    (m) => [m[1], Number(m[2]), m[3] === 'yes'] as const,
  );
  const documented = new Map(rows.map(([code, status, retry]) => [code, { status, retry }]));
  for (const [code, entry] of Object.entries(ERROR_CATALOGUE)) {
    const d = documented.get(code);
    assert.ok(d, `docs/errors.md lacks ${code}`);
    assert.equal(d.status, entry.status, `status of ${code}`);
    assert.equal(d.retry, 'retryable' in entry && entry.retryable === true, `retryable of ${code}`);
  }
  assert.deepEqual([...documented.keys()].sort(), Object.keys(ERROR_CATALOGUE).sort(), 'docs list only real codes');
});

test('a problem document carries type, title, status, detail and code; internals stay out of 5xx', () => {
  const p = toProblem(
    new FerryError('internal', { detail: 'an unexpected error occurred', cause: new Error('secret stack') }),
    '/x',
  );
  assert.deepEqual(Object.keys(p).sort(), ['code', 'detail', 'instance', 'retryable', 'status', 'title', 'type']);
  assert.ok(!JSON.stringify(p).includes('secret'));
});

test('a failure is logged at error with its stack; a refusal, 4xx or a 503 by design, at debug', () => {
  const lines: Array<{ level: string; obj: Record<string, unknown>; msg: string }> = [];
  const log = {
    error: (obj: object, msg: string) => lines.push({ level: 'error', obj: obj as Record<string, unknown>, msg }),
    debug: (obj: object, msg: string) => lines.push({ level: 'debug', obj: obj as Record<string, unknown>, msg }),
  };
  const cases = [
    ['internal', 'error'],
    ['inference-failed', 'error'],
    ['timeout', 'error'],
    ['queue-unavailable', 'error'],
    ['model-not-ready', 'debug'],
    ['server-overloaded', 'debug'],
    ['circuit-open', 'debug'],
    ['shutting-down', 'debug'],
    ['invalid-input', 'debug'],
  ] as const;
  for (const [code, level] of cases) {
    const cause = new Error(`cause of ${code}`);
    lines.length = 0;
    logRequestError(log, new FerryError(code, { cause }), cause);
    assert.equal(lines.length, 1, code);
    assert.equal(lines[0]!.level, level, code);
    if (level === 'error') assert.equal(lines[0]!.obj.err, cause, `${code} keeps the error`);
    else assert.deepEqual(Object.keys(lines[0]!.obj).sort(), ['code', 'detail'], `${code} logs no stack`);
  }
});
