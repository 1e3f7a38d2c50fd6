// The contract between the `ferry` CLI and @ferry/tools. `ferry quantize`, `ferry bench` and `ferry cost`
// are declared here (options, help, parsing) but run code from @ferry/tools, which serving does not need
// and which depends on @ferry/server: so it is imported lazily, by a specifier TypeScript does not follow,
// and typed by this interface. @ferry/tools checks its implementation against it with `satisfies`.
import { fileURLToPath } from 'node:url';
import type { CliIo } from './shared.js';

/** Graph forms of a quantised MatMul; the tools package asserts in a test that it knows the same ones. */
export const QUANT_FORMATS = ['integer-ops', 'qdq', 'contrib'] as const;
export type QuantFormat = (typeof QUANT_FORMATS)[number];
/** Weights with fewer elements stay in float unless --min-elements says otherwise. */
export const QUANTIZE_MIN_ELEMENTS_DEFAULT = 65536;
/** Serving patterns `ferry cost` compares. */
export const COST_PATTERNS = ['sync', 'async', 'batch', 'edge'] as const;
export type CostPattern = (typeof COST_PATTERNS)[number];

/** Exit codes of `ferry quantize`. */
export const QUANTIZE_EXIT = Object.freeze({
  ok: 0,
  /** Validation ran and the delta exceeded --max-delta; OUT was not written. */
  deltaExceeded: 1,
  /** Bad arguments, unreadable or non-ONNX input, bad validation data, runtime failure. */
  error: 2,
});

export interface QuantizeFlags {
  validate?: string;
  maxDelta?: string;
  perChannel?: boolean;
  perTensor?: boolean;
  format?: QuantFormat;
  minElements?: string;
  asymmetric?: boolean;
  reduceRange?: boolean;
  exclude?: string;
  manifest?: string;
  labelKey?: string;
  classifierOutput?: string;
  batchSize?: string;
  limit?: string;
  json?: boolean;
}

export interface BenchCommandOptions {
  model: string;
  modelsDir: string;
  concurrency: number[];
  durationSec: number;
  warmupSec: number;
  url?: string;
  workers?: number;
  configFile?: string;
  out?: string;
  json?: boolean;
}

export interface CostCommandOptions {
  profile: string;
  requestsPerDay: number;
  cacheHitRate: number;
  pattern?: CostPattern;
  prices?: string;
  json?: boolean;
}

export interface ToolCommands {
  /** Runs `ferry quantize` and resolves to its exit code (QUANTIZE_EXIT); reports its own errors on io.stderr. */
  quantize(inPath: string, outPath: string, flags: QuantizeFlags, io: CliIo): Promise<number>;
  bench(options: BenchCommandOptions, io: CliIo): Promise<void>;
  cost(options: CostCommandOptions, io: CliIo): void;
  /** The shipped price table, for `ferry cost --write-prices`. */
  readonly defaultPricesPath: string;
  /** Errors that are the user's to fix (bad profile, bad price table, unknown model): printed without a stack. */
  isUserError(e: unknown): e is Error;
}

/** Thrown when @ferry/tools is not installed: the serving image ships without it. */
export class ToolsMissingError extends Error {
  constructor(command: string, cause: unknown) {
    super(`ferry ${command} needs the @ferry/tools package, which is not installed (npm install @ferry/tools)`, {
      cause,
    });
    this.name = 'ToolsMissingError';
  }
}

// A variable, so that TypeScript does not resolve it: @ferry/tools is built after @ferry/server.
const TOOLS_COMMANDS = '@ferry/tools/commands';

/** Imports @ferry/tools on first use. */
export async function loadToolCommands(command: string): Promise<ToolCommands> {
  try {
    const mod = (await import(TOOLS_COMMANDS)) as { toolCommands: ToolCommands };
    return mod.toolCommands;
  } catch (e) {
    const code = (e as { code?: string }).code;
    // Only the package itself missing: a dependency of @ferry/tools missing is a broken install, reported as is.
    const message = String((e as Error).message);
    const missing =
      (code === 'ERR_MODULE_NOT_FOUND' && message.includes("package '@ferry/tools'")) ||
      (code === 'ERR_PACKAGE_PATH_NOT_EXPORTED' && message.includes('@ferry/tools'));
    if (missing) {
      throw new ToolsMissingError(command, e);
    }
    throw e;
  }
}

/** Where the shipped price table is, for help text; undefined when @ferry/tools is not installed. */
export function shippedPricesPath(): string | undefined {
  try {
    return fileURLToPath(import.meta.resolve('@ferry/tools/prices.yaml'));
  } catch {
    return undefined;
  }
}
