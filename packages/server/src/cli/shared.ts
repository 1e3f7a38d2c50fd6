// What every `ferry` command shares: its context (output, exit code, the lazily loaded tools), the
// common config options and how they become a FerryConfig, and how an error becomes an exit code.
import { existsSync, readFileSync } from 'node:fs';
import { CommanderError, InvalidArgumentError, Option, type Command } from 'commander';
import { loadConfig, ConfigError, type ConfigSources, type FerryConfig } from '../config/index.js';
import { RepositoryError, ManifestError } from '../serving/repository/index.js';
import { ApiKeyError } from '../auth/keys.js';
import { FerryError, toProblem } from '../errors.js';
import { ToolsMissingError, type ToolCommands } from './tool-commands.js';

/** Where a command writes. process.stdout/stderr in the `ferry` binary; strings in tests. */
export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

export const processIo: CliIo = {
  stdout: (t) => {
    process.stdout.write(t);
  },
  stderr: (t) => {
    process.stderr.write(t);
  },
};

export interface CliContext {
  readonly io: CliIo;
  /** The exit code the command ends with, for an outcome it has already reported (e.g. drift found). */
  setExitCode(code: number): void;
  /** @ferry/tools, imported on first use (`ferry quantize`, `bench`, `cost`). */
  tools(command: string): Promise<ToolCommands>;
}

/**
 * A mistake the user can fix (bad flag value, missing file): printed as `ferry: message`, or with the
 * command's own prefix when it has one, without a stack; the command exits with exitCode.
 */
export class CliUsageError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
    readonly prefix = 'ferry',
  ) {
    super(message);
    this.name = 'CliUsageError';
  }
}

export interface CommonOpts {
  config?: string;
  models?: string;
  port?: string;
  host?: string;
  workers?: string;
  logLevel?: string;
}

export function sourcesFrom(o: CommonOpts): ConfigSources {
  // The file loadConfig would pick by itself, named here so that a reload reads the same one.
  const file =
    o.config ?? process.env.FERRY_CONFIG ?? (existsSync('ferry.config.yaml') ? 'ferry.config.yaml' : undefined);
  return {
    ...(file !== undefined && { file }),
    overrides: {
      'models.dir': o.models,
      'server.port': o.port,
      'server.host': o.host,
      'runtime.workers': o.workers,
      'log.level': o.logLevel,
    },
  };
}

export function configFrom(o: CommonOpts): FerryConfig {
  return loadConfig(sourcesFrom(o));
}

/** The options of every command that loads the configuration. */
export const commonOptions = (c: Command): Command =>
  c
    .option('-c, --config <file>', 'ferry.config.yaml to read')
    .option('-m, --models <dir>', 'model repository folder')
    .option('--workers <n>', 'inference worker threads (0 = one per core)')
    .addOption(
      new Option('--log-level <level>', 'log level').choices([
        'fatal',
        'error',
        'warn',
        'info',
        'debug',
        'trace',
        'silent',
      ]),
    );

/** A command whose argument errors exit with `code` rather than commander's 1 (quantize and drift use 2). */
export function argumentErrorsExitWith(cmd: Command, code: number): Command {
  return cmd.exitOverride((e) => {
    throw e.exitCode === 0 ? e : new CommanderError(code, e.code, e.message);
  });
}

/** `--data '{"x": 1}'` or `--data @file.json`. */
export function readJsonArgument(data: string, flag = '--data'): unknown {
  const file = data.startsWith('@') ? data.slice(1) : undefined;
  let text = data;
  if (file !== undefined) {
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      const reason = describeError(e);
      throw new CliUsageError(
        `${flag} @${file}: ${reason.startsWith(`${file}: `) ? reason.slice(file.length + 2) : reason}`,
      );
    }
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new CliUsageError(
      `${flag}${file !== undefined ? ` @${file}` : ''} is not valid JSON: ${(e as Error).message}`,
    );
  }
}

const SYSTEM_ERRORS: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EISDIR: 'is a directory, not a file',
  ENOTDIR: 'a part of the path is not a directory',
  ECONNREFUSED: 'connection refused (is the server running, on that host and port?)',
  ENOTFOUND: 'host not found',
  ECONNRESET: 'the connection was reset',
  ETIMEDOUT: 'timed out',
  EHOSTUNREACH: 'host unreachable',
};

/**
 * One line that says what went wrong, for a person at a terminal: a Node system error by its path and
 * plain reason, a failed fetch by the address it could not reach, a problem by its code and detail, any
 * other error by the first line of its message. (FERRY_DEBUG=1 prints stacks as well; see reportError.)
 */
export function describeError(e: unknown): string {
  if (e instanceof FerryError) {
    const p = toProblem(e) as { code?: string; status?: number; detail?: string; errors?: unknown };
    const issues = Array.isArray(p.errors)
      ? (p.errors as Array<{ pointer?: string; reason?: string }>)
          .slice(0, 5)
          .map((i) => `${i.pointer ?? ''}: ${i.reason ?? ''}`)
      : [];
    // The detail often already names the first field; then the list would only repeat it.
    const named = issues.length > 0 && p.detail?.includes(issues[0]!.split(': ')[0]!);
    return [`${p.code} (${p.status})${p.detail ? `: ${p.detail}` : ''}`, ...(named ? issues.slice(1) : issues)].join(
      '; ',
    );
  }
  if (!(e instanceof Error)) return String(e);
  const sys = e as NodeJS.ErrnoException & { address?: string; port?: number; hostname?: string };
  if (sys.code && SYSTEM_ERRORS[sys.code]) {
    const where = sys.path ?? (sys.address ? `${sys.address}${sys.port ? `:${sys.port}` : ''}` : sys.hostname);
    return `${where ? `${where}: ` : ''}${SYSTEM_ERRORS[sys.code]}`;
  }
  // fetch() says only "fetch failed"; the reason is its cause (ECONNREFUSED and the like).
  if (e instanceof TypeError && e.message === 'fetch failed' && e.cause)
    return `cannot reach the server: ${describeError(e.cause)}`;
  const first = e.message.split('\n').find((l) => l.trim()) ?? e.name;
  return first.trim();
}

/** Reports an error a command threw and returns the exit code. */
export function reportError(e: unknown, io: CliIo): number {
  if (e instanceof CliUsageError) {
    io.stderr(`${e.prefix}: ${e.message}\n`);
    return e.exitCode;
  }
  if (
    e instanceof ConfigError ||
    e instanceof ApiKeyError ||
    e instanceof RepositoryError ||
    e instanceof ManifestError ||
    e instanceof InvalidArgumentError ||
    e instanceof ToolsMissingError
  ) {
    io.stderr(`ferry: ${e.message}\n`);
  } else {
    // One line, whatever failed; the stack is for whoever debugs Ferry itself.
    io.stderr(`ferry: ${describeError(e)}\n`);
    if (process.env.FERRY_DEBUG && e instanceof Error && e.stack) io.stderr(`${e.stack}\n`);
  }
  return 1;
}
