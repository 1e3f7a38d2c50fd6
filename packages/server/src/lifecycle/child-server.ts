// Starts `ferry serve` as a child process and waits for it to be ready: used by `ferry bench` (the
// load generator must not share the server's event loop) and by the shutdown and cluster tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

export const CLI_PATH = fileURLToPath(new URL('../cli/main.js', import.meta.url));

export interface ChildServer {
  readonly proc: ChildProcess;
  readonly url: string;
  readonly port: number;
  /** Every log line the child wrote, parsed (pino JSON). */
  readonly logs: Array<Record<string, unknown>>;
  /** What the child wrote to stderr so far. */
  stderr(): string;
  /** Resolves with the exit code (or signal name) when the process ends. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export interface ChildServerOptions {
  args?: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Give up waiting for "ready" after this long (model load and warm-up included). */
  readyTimeoutMs?: number;
}

type Exit = { code: number | null; signal: NodeJS.Signals | null; at: number };

/**
 * Spawns `ferry <args>` with pino JSON on stdout and resolves with the first log record `isReady`
 * accepts; rejects if the child exits first or is not ready in time (then it is SIGKILLed).
 */
function spawnFerry(
  args: string[],
  opts: ChildServerOptions,
  what: string,
  isReady: (rec: Record<string, unknown>) => boolean,
) {
  const proc = spawn(process.execPath, [CLI_PATH, ...args], {
    env: { ...process.env, FERRY_LOG_LEVEL: 'info', ...opts.env },
    ...(opts.cwd && { cwd: opts.cwd }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Array<Record<string, unknown>> = [];
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<Exit>((resolve) => {
    // The exit time is when the process ended; 'close' (stdio drained) is when every log line has been read.
    let at = 0;
    proc.once('exit', () => {
      at = Date.now();
    });
    proc.once('close', (code, signal) => resolve({ code, signal, at: at || Date.now() }));
  });
  const ready = new Promise<Record<string, unknown>>((resolve, reject) => {
    const waitMs = opts.readyTimeoutMs ?? 60_000;
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`${what} not ready in ${waitMs} ms\n${stderr}`));
    }, waitMs);
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      let rec: Record<string, unknown>;
      try {
        rec = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      logs.push(rec);
      if (isReady(rec)) {
        clearTimeout(timer);
        resolve(rec);
      }
    });
    void exited.then((e) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${e.code ?? e.signal}) before ready\n${stderr}`));
    });
  });
  return { proc, logs, exited, stderr: () => stderr, ready };
}

/** `ferry serve --port 0 …`; resolves once the child logged "ready" (its models are warm). */
export async function startChildServer(opts: ChildServerOptions = {}): Promise<ChildServer> {
  let url = '';
  const c = spawnFerry(
    ['serve', '--host', '127.0.0.1', '--port', '0', ...(opts.args ?? [])],
    opts,
    'ferry serve',
    (rec) => {
      if (typeof rec.url === 'string') url = rec.url;
      return rec.msg === 'ready';
    },
  );
  await c.ready;
  const { proc, exited } = c;
  return {
    proc,
    url,
    port: Number(new URL(url).port),
    logs: c.logs,
    exited,
    stderr: c.stderr,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      await exited;
    },
  };
}

export interface ChildWorker {
  readonly proc: ChildProcess;
  /** The worker identity (`host:pid:id`) it records in the result of each job it completes. */
  readonly workerId: string;
  readonly logs: Array<Record<string, unknown>>;
  stderr(): string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
}

/** `ferry worker …`; resolves once the child logged "worker ready" (models warm, taking jobs). */
export async function startChildWorker(opts: ChildServerOptions = {}): Promise<ChildWorker> {
  const c = spawnFerry(['worker', ...(opts.args ?? [])], opts, 'ferry worker', (rec) => rec.msg === 'worker ready');
  const rec = await c.ready;
  return { proc: c.proc, workerId: String(rec.worker), logs: c.logs, exited: c.exited, stderr: c.stderr };
}
