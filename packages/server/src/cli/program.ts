// The `ferry` program: every command registered on one commander program, run in process with an
// output sink so that tests see exactly what a user sees (text, --json, exit code).
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { SERVER_VERSION } from '../version.js';
import { processIo, reportError, type CliContext, type CliIo } from './shared.js';
import { loadToolCommands, type ToolCommands } from './tool-commands.js';
import { registerServeCommand } from './commands/serve.js';
import { registerPredictCommand } from './commands/predict.js';
import { registerWorkerCommand } from './commands/worker.js';
import { registerModelsCommand } from './commands/models.js';
import { registerInitCommand, initVersionFlag } from './commands/init.js';
import { registerConfigCommand } from './commands/config.js';
import { registerKeysCommand } from './commands/keys.js';
import { registerQuantizeCommand } from './commands/quantize.js';
import { registerDriftCommand } from './commands/drift.js';
import { registerClientCommand } from './commands/client.js';
import { registerBatchCommand } from './commands/batch.js';
import { registerStreamCommand } from './commands/stream.js';
import { registerChatCommand } from './commands/chat.js';
import { registerBenchCommand } from './commands/bench.js';
import { registerCostCommand } from './commands/cost.js';

/** Builds the program. Output and exit codes go through ctx; commander's own errors are thrown, not exited on. */
export function buildProgram(ctx: CliContext): Command {
  const program = new Command('ferry')
    .version(SERVER_VERSION)
    .description('Ferry: serve ONNX models to web apps')
    // Before any command is added: subcommands inherit both settings.
    .exitOverride()
    .configureOutput({ writeOut: ctx.io.stdout, writeErr: ctx.io.stderr });
  // The order of `ferry --help`.
  for (const register of [
    registerKeysCommand,
    registerServeCommand,
    registerPredictCommand,
    registerWorkerCommand,
    registerModelsCommand,
    registerInitCommand,
    registerConfigCommand,
    registerQuantizeCommand,
    registerDriftCommand,
    registerClientCommand,
    registerBatchCommand,
    registerStreamCommand,
    registerChatCommand,
    registerBenchCommand,
    registerCostCommand,
  ])
    register(program, ctx);
  return program;
}

export interface CliOutcome {
  code: number;
  /** The command failed by throwing (or commander refused the arguments): exit now, as `ferry` always has. */
  failed: boolean;
}

/** Runs `ferry` with the arguments after the program name. */
export async function runProgram(args: readonly string[], io: CliIo = processIo): Promise<CliOutcome> {
  let exitCode = 0;
  let tools: Promise<ToolCommands> | undefined;
  const ctx: CliContext = {
    io,
    setExitCode: (code) => {
      exitCode = code;
    },
    tools: (command) => (tools ??= loadToolCommands(command)),
  };
  try {
    await buildProgram(ctx).parseAsync(initVersionFlag(args), { from: 'user' });
  } catch (e) {
    // commander has already printed its message (or the help, or the version). An InvalidArgumentError is a
    // CommanderError too, but one that reaches here was thrown by an action, and nothing printed it yet.
    if (e instanceof CommanderError && !(e instanceof InvalidArgumentError))
      return { code: e.exitCode, failed: e.exitCode !== 0 };
    return { code: reportError(e, io), failed: true };
  }
  return { code: exitCode, failed: false };
}

/**
 * Runs `ferry` in process and resolves to its exit code.
 * @example const code = await runCli(['drift', '--reference', 'ref.csv', '--current', 'cur.csv'], io);
 */
export async function runCli(args: readonly string[], io: CliIo = processIo): Promise<number> {
  return (await runProgram(args, io)).code;
}
