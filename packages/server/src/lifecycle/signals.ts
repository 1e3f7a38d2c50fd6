// SIGTERM/SIGINT for `ferry serve` (and any command that owns a server): drain, finish, exit before
// the deadline. Kubernetes sends SIGTERM and SIGKILLs after terminationGracePeriodSeconds, so the
// deadline (server.shutdownGraceMs) must sit below it.
import { writeSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Lifecycle } from './lifecycle.js';

export interface Drainable {
  readonly lifecycle: Lifecycle;
  readonly log: Logger;
  close(): Promise<void>;
}

/** Begins draining, keeps serving for drainDelayMs, then closes (in-flight requests finish, drain handlers run). */
export async function shutdown(server: Drainable, reason: string): Promise<void> {
  const { lifecycle } = server;
  lifecycle.beginDrain(reason);
  if (lifecycle.options.drainDelayMs > 0) await new Promise((r) => setTimeout(r, lifecycle.options.drainDelayMs));
  await server.close();
}

/** Time left at the deadline for the last log line to reach stdout. */
const FLUSH_MS = 500;

export interface SignalOptions {
  exit?: (code: number) => void;
  /** Called when the deadline passes with work unfinished (default: the process kills itself). */
  abort?: () => void;
  signals?: NodeJS.Signals[];
}

export function installSignalHandlers(server: Drainable, opts: SignalOptions = {}): void {
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  // process.exit() while a worker thread is inside an ONNX Runtime run aborts in native teardown
  // (SIGABRT, possibly a core dump); a self-SIGKILL ends the process at once and predictably.
  // The log line saying why is flushed first (pino writes asynchronously), for at most FLUSH_MS,
  // which the deadline timer leaves room for.
  const abort =
    opts.abort ??
    (() => {
      process.exitCode = 1;
      const kill = () => process.kill(process.pid, 'SIGKILL');
      setTimeout(kill, FLUSH_MS);
      try {
        server.log.flush(() => kill());
      } catch {
        kill();
      }
    });
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      // A second signal means "now".
      server.log.warn({ signal }, 'second signal: exiting without waiting');
      exit(1);
      return;
    }
    stopping = true;
    const t0 = Date.now();
    const timer = setTimeout(
      () => {
        server.log.error(
          { signal, deadlineMs: server.lifecycle.options.deadlineMs },
          'shutdown deadline reached: exiting with work unfinished',
        );
        // pino may not get its buffer out before the kill under load: say it synchronously on stderr too.
        try {
          writeSync(
            2,
            `ferry: shutdown deadline (${server.lifecycle.options.deadlineMs} ms) reached after ${signal}: exiting with work unfinished\n`,
          );
        } catch {
          /* stderr closed */
        }
        abort();
      },
      Math.max(0, server.lifecycle.options.deadlineMs - FLUSH_MS),
    );
    timer.unref();
    shutdown(server, signal).then(
      async () => {
        const handlers = await server.lifecycle.runHandlers();
        clearTimeout(timer);
        server.log.info({ signal, ms: Date.now() - t0, handlers }, 'shut down cleanly');
        exit(0);
      },
      (err: unknown) => {
        clearTimeout(timer);
        server.log.error({ err }, 'shutdown failed');
        exit(1);
      },
    );
  };
  for (const s of opts.signals ?? ['SIGTERM', 'SIGINT']) process.on(s, onSignal);
}
