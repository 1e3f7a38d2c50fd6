// wrk (Debian's `wrk`, a C load generator) as the bench's second load engine. On a 2-core machine the
// load generator has one core; autocannon (JavaScript) spends about as much CPU a request as the
// constant route does, so it set the pace of the HTTP ceiling in every run and the bar that divides
// by it could never be decided (docs/benchmarks.md). wrk spends a fraction of that. The requests are
// the same: one Lua script per load, holding the same bodies (or body templates and the same jitter)
// that load.ts gives autocannon.
import { spawn, spawnSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BodyTemplate } from './workloads.js';

/** What a load sends, whichever engine sends it. */
export interface LoadPlan {
  method: 'GET' | 'POST';
  path: string;
  headers: Record<string, string>;
  /** Fixed bodies, sent in turn. */
  bodies?: string[];
  /** Or templates whose open value each request fills with `jitter` (workloads.ts). */
  templates?: BodyTemplate[];
}

/** What one wrk run reports (its `done` hook prints it). Latencies in microseconds. */
export interface WrkRun {
  /** Responses read, whatever their status. */
  requests: number;
  durationUs: number;
  /** Responses with a status of 400 or more. */
  status: number;
  connect: number;
  read: number;
  write: number;
  timeout: number;
  meanUs: number;
  p50Us: number;
  p90Us: number;
  p99Us: number;
  maxUs: number;
}

/** The wrk binary to use: FERRY_BENCH_WRK, or `wrk` on the PATH; undefined when there is none. */
export function findWrk(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const bin = env.FERRY_BENCH_WRK ?? 'wrk';
  // `wrk -v` prints its version and exits with 1; a missing binary fails to spawn.
  const r = spawnSync(bin, ['-v'], { encoding: 'utf8' });
  return r.error === undefined && /^wrk /m.test(`${r.stdout}${r.stderr}`) ? bin : undefined;
}

/** A Lua string literal of `s`'s UTF-8 bytes: printable ASCII as is, every other byte as `\ddd`. */
export function luaString(s: string): string {
  let out = '"';
  for (const b of Buffer.from(s, 'utf8')) {
    out +=
      b >= 0x20 && b < 0x7f && b !== 0x22 && b !== 0x5c ? String.fromCharCode(b) : `\\${String(b).padStart(3, '0')}`;
  }
  return `${out}"`;
}

const luaNumber = (x: number | undefined): string => (x === undefined ? 'nil' : String(x));

/**
 * The Lua script for a plan. wrk calls `request` for every request on every connection of its one
 * thread, so consecutive requests (which go out on different connections) take consecutive bodies,
 * as load.ts staggers autocannon's connections. `jitter` is workloads.ts's, the value written with 17
 * significant digits (any finite double reads back as itself).
 */
export function wrkScript(plan: LoadPlan, seed: number): string {
  const lines = [
    // LuaJIT's generator starts from the same state in every process: without a seed of its own, each
    // run would send the bodies the previous one sent, and a caching server would answer them from its cache.
    `math.randomseed(${seed})`,
    `wrk.method = ${luaString(plan.method)}`,
    `wrk.path = ${luaString(plan.path)}`,
  ];
  for (const [name, value] of Object.entries(plan.headers))
    lines.push(`wrk.headers[${luaString(name)}] = ${luaString(value)}`);
  if (plan.templates?.length) {
    lines.push('local t = {');
    for (const t of plan.templates)
      lines.push(
        `  {${luaString(t.before)}, ${t.value}, ${luaString(t.after)}, ${luaNumber(t.min)}, ${luaNumber(t.max)}},`,
      );
    lines.push(
      '}',
      'local n, i = #t, 0',
      'local function jitter(x)',
      '  local delta = math.max(math.abs(x[2]), 1) * math.random() * 1e-6',
      '  local down = x[2] - delta',
      '  if x[4] ~= nil and down < x[4] then',
      '    local up = x[2] + delta',
      '    if x[5] ~= nil and up > x[5] then up = x[5] end',
      '    return up',
      '  end',
      '  return down',
      'end',
      'request = function()',
      '  i = i % n + 1',
      '  local x = t[i]',
      "  return wrk.format(nil, nil, nil, x[1] .. string.format('%.17g', jitter(x)) .. x[3])",
      'end',
    );
  } else if (plan.bodies?.length) {
    lines.push('local b = {');
    for (const body of plan.bodies) lines.push(`  ${luaString(body)},`);
    lines.push(
      '}',
      'local n, i = #b, 0',
      'request = function()',
      '  i = i % n + 1',
      '  return wrk.format(nil, nil, nil, b[i])',
      'end',
    );
  }
  lines.push(
    'done = function(summary, latency, requests)',
    '  local e = summary.errors',
    '  io.write(string.format(\'FERRY_WRK {"requests":%d,"durationUs":%d,"status":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d,"meanUs":%.3f,"p50Us":%d,"p90Us":%d,"p99Us":%d,"maxUs":%d}\\n\',',
    '    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,',
    '    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))',
    'end',
  );
  return `${lines.join('\n')}\n`;
}

/** The `FERRY_WRK` line of a run's output. */
export function parseWrkOutput(stdout: string): WrkRun {
  const line = stdout.split('\n').find((l) => l.startsWith('FERRY_WRK '));
  if (line === undefined) throw new Error(`wrk printed no result; its output ends with: ${stdout.slice(-400)}`);
  return JSON.parse(line.slice('FERRY_WRK '.length)) as WrkRun;
}

export interface WrkOptions {
  bin: string;
  url: string;
  connections: number;
  /** Whole seconds: wrk reads durations in seconds (a fraction is rounded up). */
  seconds: number;
  timeoutSeconds: number;
}

/** Runs wrk once with one thread over `plan`, and resolves with its report once it has exited (and been reaped). */
export async function runWrk(plan: LoadPlan, o: WrkOptions): Promise<WrkRun> {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-wrk-'));
  try {
    const script = join(dir, 'load.lua');
    writeFileSync(script, wrkScript(plan, randomInt(1, 2 ** 31)));
    const args = [
      '-t1',
      `-c${o.connections}`,
      `-d${Math.max(1, Math.ceil(o.seconds))}s`,
      `--timeout`,
      `${o.timeoutSeconds}s`,
      '-s',
      script,
      o.url,
    ];
    const child = spawn(o.bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', resolve);
    });
    if (code !== 0) throw new Error(`wrk exited with ${code}: ${err.trim() || out.slice(-400)}`);
    return parseWrkOutput(out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
