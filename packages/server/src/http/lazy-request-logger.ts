// The per-request logger, made only when a line is written (issue 20: per-request logging objects only
// when that log level is on). Fastify gives every request `logger.child({ reqId })`; pino builds the
// child's bindings at once, about 1.5–2 µs a request, although at the default level (info) a request
// that succeeds writes no line. This stand-in holds the bindings and builds the real child on the
// first line that its level lets through, so every line still carries the request id (and the API key
// id `setBindings` adds).
import type { Bindings, ChildLoggerOptions, Level, Logger } from 'pino';

type LogFn = (...args: unknown[]) => void;

export class LazyRequestLogger {
  readonly #parent: Logger;
  #bindings: Bindings;
  readonly #opts: ChildLoggerOptions;
  #real: Logger | undefined;

  constructor(parent: Logger, bindings: Bindings, opts: ChildLoggerOptions) {
    this.#parent = parent;
    this.#bindings = bindings;
    this.#opts = opts;
  }

  /** The real child, built on first use. */
  #get(): Logger {
    this.#real ??= this.#parent.child(this.#bindings, this.#opts);
    return this.#real;
  }

  #write(level: Level, args: unknown[]): void {
    if (!this.isLevelEnabled(level)) return;
    (this.#get()[level] as LogFn)(...args);
  }

  /** Whether the child has been built (tests). */
  get materialised(): boolean {
    return this.#real !== undefined;
  }

  get level(): string {
    return this.#real?.level ?? this.#opts.level ?? this.#parent.level;
  }

  set level(level: string) {
    this.#get().level = level;
  }

  isLevelEnabled(level: string): boolean {
    if (this.#real) return this.#real.isLevelEnabled(level);
    const own = this.#opts.level;
    if (own === undefined) return this.#parent.isLevelEnabled(level);
    const values = this.#parent.levels.values;
    return (values[level] ?? Infinity) >= (values[own] ?? 0);
  }

  bindings(): Bindings {
    return this.#real ? this.#real.bindings() : { ...this.#parent.bindings(), ...this.#bindings };
  }

  setBindings(bindings: Bindings): void {
    if (this.#real) this.#real.setBindings(bindings);
    else this.#bindings = { ...this.#bindings, ...bindings };
  }

  child(bindings: Bindings, opts?: ChildLoggerOptions): Logger {
    return this.#get().child(bindings, opts);
  }

  fatal(...args: unknown[]): void {
    this.#write('fatal', args);
  }

  error(...args: unknown[]): void {
    this.#write('error', args);
  }

  warn(...args: unknown[]): void {
    this.#write('warn', args);
  }

  info(...args: unknown[]): void {
    this.#write('info', args);
  }

  debug(...args: unknown[]): void {
    this.#write('debug', args);
  }

  trace(...args: unknown[]): void {
    this.#write('trace', args);
  }

  silent(): void {}
}

/** Fastify's `childLoggerFactory`: a LazyRequestLogger in place of `logger.child(bindings, opts)`. */
export function lazyChildLoggerFactory(logger: unknown, bindings: Bindings, opts: ChildLoggerOptions): unknown {
  return new LazyRequestLogger(logger as Logger, bindings, opts);
}
