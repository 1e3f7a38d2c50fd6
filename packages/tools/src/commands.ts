// What the `ferry` CLI runs for `quantize`, `bench` and `cost`. The server's cli/ declares the commands and
// imports this module lazily (serving does not need it); `satisfies` holds it to the server's contract.
import type { ToolCommands } from '@ferry/server/cli';
import { runQuantize } from './quantize/run-quantize.js';
import { benchCommand, costCommand, ProfileError } from './capacity/run-capacity.js';
import { BenchError } from './capacity/bench.js';
import { CostError } from './capacity/cost.js';
import { DEFAULT_PRICES_PATH, PricesError } from './capacity/prices.js';

export const toolCommands = {
  quantize: runQuantize,
  bench: benchCommand,
  cost: costCommand,
  defaultPricesPath: DEFAULT_PRICES_PATH,
  isUserError: (e: unknown): e is Error =>
    e instanceof BenchError || e instanceof CostError || e instanceof PricesError || e instanceof ProfileError,
} satisfies ToolCommands;
