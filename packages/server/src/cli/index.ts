// @ferry/server/cli: running `ferry` in process, and the contract @ferry/tools implements for the
// commands whose work it does (quantize, bench, cost).
export { runCli, buildProgram } from './program.js';
export { CliUsageError, type CliIo, type CliContext } from './shared.js';
export {
  QUANT_FORMATS,
  QUANTIZE_EXIT,
  QUANTIZE_MIN_ELEMENTS_DEFAULT,
  COST_PATTERNS,
  ToolsMissingError,
  type QuantFormat,
  type QuantizeFlags,
  type CostPattern,
  type BenchCommandOptions,
  type CostCommandOptions,
  type ToolCommands,
} from './tool-commands.js';
export { DRIFT_EXIT } from './commands/drift.js';
