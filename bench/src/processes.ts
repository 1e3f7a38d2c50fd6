// Child processes of the bench: optional CPU pinning with taskset, output capture, readiness
// polling, and cleanup that runs on normal exit, on failure and on SIGINT/SIGTERM.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BENCH_DIST } from './paths.js';

export interface Pinning {
  enabled: boolean;
  /** CPU list (taskset -c syntax) for servers and the raw ONNX Runtime runs. */
  serverCpus?: string;
  /** CPU list for the load generators. */
  loadCpus?: string;
  /** Why pinning is off, when it is. */
  reason?: string;
}

/** CPUs this process may run on, from /proc (respects cgroups/cpusets), or 0..n-1. */
export function allowedCpus(): number[] {
  try {
    const line = readFileSync('/proc/self/status', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Cpus_allowed_list:'));
    if (line) {
      const out: number[] = [];
      for (const part of line.split(':')[1]!.trim().split(',')) {
        const [a, b] = part.split('-').map(Number);
        for (let c = a!; c <= (b ?? a!); c++) out.push(c);
      }
      if (out.length) return out;
    }
  } catch {
    /* not Linux */
  }
  return [];
}

export function decidePinning(want: boolean): Pinning {
  if (!want) return { enabled: false, reason: '--no-pin' };
  if (spawnSync('taskset', ['-V']).error)
    return { enabled: false, reason: 'taskset not found (apt-get install -y util-linux)' };
  const cpus = allowedCpus();
  if (cpus.length < 2) return { enabled: false, reason: `only ${cpus.length || 'unknown'} CPU(s) available` };
  return { enabled: true, serverCpus: String(cpus[0]), loadCpus: cpus.slice(1).join(',') };
}

/** A free TCP port on 127.0.0.1 (the OS picks it; tiny race until the child binds it). */
export async function freePort(): Promise<number> {
  return new Promise((resolveP, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolveP(port));
    });
  });
}

const TAIL_BYTES = 8192;

export interface Child {
  readonly name: string;
  readonly proc: ChildProcess;
  /** Resolves with the exit code (or the signal name) once the process is gone. */
  readonly exited: Promise<number | string>;
  readonly hasExited: () => boolean;
  stdout(): string;
  stderrTail(): string;
  /** SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

const live = new Set<Child>();
const cleanups = new Set<() => void>();
let handlersInstalled = false;

/** Runs `fn` (synchronously) when the bench exits, however it exits short of SIGKILL. Returns an unregister function.
 */
export function onExit(fn: () => void): () => void {
  installCleanup();
  cleanups.add(fn);
  return () => cleanups.delete(fn);
}

function installCleanup(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', () => {
    for (const c of live) if (!c.hasExited()) c.proc.kill('SIGKILL');
    for (const fn of cleanups) {
      try {
        fn();
      } catch {
        /* best effort at exit */
      }
    }
  });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      process.stderr.write(`\nbench: ${sig}, stopping ${live.size} child process(es)\n`);
      for (const c of live) if (!c.hasExited()) c.proc.kill('SIGKILL');
      process.exit(sig === 'SIGINT' ? 130 : 143);
    });
  }
}

/**
 * Starts `node <script> ...args` through the watchdog (so it dies with the bench), pinned to
 * `cpus` when given. `script` is a path; relative paths are taken inside bench/dist.
 */
export function startNode(
  name: string,
  script: string,
  args: readonly string[],
  opts: { cpus?: string; cwd?: string; keepStdout?: boolean; env?: Record<string, string> } = {},
): Child {
  installCleanup();
  const watchdog = join(BENCH_DIST, 'watchdog.js');
  const target = script.startsWith('/') ? script : join(BENCH_DIST, script);
  const nodeArgs = [watchdog, target, ...args];
  const [cmd, argv] =
    opts.cpus !== undefined
      ? ['taskset', ['-c', opts.cpus, process.execPath, ...nodeArgs]]
      : [process.execPath, nodeArgs];
  const proc = spawn(cmd, argv, {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(opts.cwd && { cwd: opts.cwd }),
    ...(opts.env && { env: { ...process.env, ...opts.env } }),
  });
  let out = '';
  let err = '';
  let done = false;
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
    out = opts.keepStdout ? out + d : (out + d).slice(-TAIL_BYTES);
  });
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => {
    err = (err + d).slice(-TAIL_BYTES);
  });
  const exited = new Promise<number | string>((res) => {
    proc.once('error', (e) => {
      done = true;
      err += `\nspawn failed: ${e.message}`;
      res('spawn-error');
    });
    proc.once('exit', (code, signal) => {
      done = true;
      res(code ?? signal ?? 'unknown');
    });
  });
  const child: Child = {
    name,
    proc,
    exited,
    hasExited: () => done,
    stdout: () => out,
    stderrTail: () => err,
    async stop(graceMs = 5000) {
      if (done) return;
      proc.kill('SIGTERM');
      const t = setTimeout(() => {
        if (!done) proc.kill('SIGKILL');
      }, graceMs);
      await exited;
      clearTimeout(t);
    },
  };
  live.add(child);
  void exited.then(() => live.delete(child));
  return child;
}

/** Runs a bench script that prints one JSON document on its last stdout line, and returns it. */
export async function runJson<T>(name: string, script: string, spec: unknown, cpus?: string): Promise<T> {
  const child = startNode(name, script, [JSON.stringify(spec)], {
    ...(cpus !== undefined && { cpus }),
    keepStdout: true,
  });
  const code = await child.exited;
  if (code !== 0) throw new Error(`${name} exited with ${code}:\n${child.stderrTail().trim()}`);
  const last = child.stdout().trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(last) as T;
  } catch {
    throw new Error(
      `${name} printed no JSON result; stdout ends with: ${last.slice(-300)}\nstderr: ${child.stderrTail().trim()}`,
    );
  }
}

/** Polls GET `${url}/readyz` until 200; fails early if the child exits, or after `timeoutMs`. */
export async function waitReady(child: Child, url: string, timeoutMs: number): Promise<number> {
  const t0 = performance.now();
  while (performance.now() - t0 < timeoutMs) {
    if (child.hasExited())
      throw new Error(
        `${child.name} exited before it was ready (${await child.exited}):\n${child.stderrTail().trim()}`,
      );
    try {
      const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.status === 200) return performance.now() - t0;
    } catch {
      /* not listening yet */
    }
    await sleep(100);
  }
  throw new Error(`${child.name} was not ready after ${timeoutMs} ms:\n${child.stderrTail().trim()}`);
}

export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((c) => c.stop()));
}

/**
 * `ferry serve` over `repoDir` on `port`, quiet (log level warn), as every bench starts it; `extra`
 * adds the options that bench measures (a config file, a gRPC port, processes, workers).
 */
export function ferryServeArgs(repoDir: string, port: number, extra: readonly string[] = [], host = '127.0.0.1') {
  return ['serve', '--models', repoDir, '--port', String(port), '--host', host, '--log-level', 'warn', ...extra];
}
