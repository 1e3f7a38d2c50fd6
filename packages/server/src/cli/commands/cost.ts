// `ferry cost`: replicas at peak and a monthly cost range per serving pattern, from a `ferry bench`
// profile and a price table. The work is done by @ferry/tools, loaded only when the command runs.
import { copyFileSync, existsSync } from 'node:fs';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { CliUsageError, type CliContext } from '../shared.js';
import { COST_PATTERNS, shippedPricesPath, type CostPattern } from '../tool-commands.js';
import { nonNegativeNumber, positiveNumber } from '../number-options.js';

interface CostOpts {
  profile?: string;
  requestsPerDay?: number;
  pattern?: CostPattern;
  cacheHitRate: number;
  prices?: string;
  writePrices?: string;
  json?: boolean;
}

export function registerCostCommand(program: Command, ctx: CliContext): void {
  program
    .command('cost')
    .description(
      'replicas at peak and a monthly cost range per serving pattern, from a `ferry bench` profile and a price table',
    )
    .option('--profile <file>', 'profile written by ferry bench')
    .option('--requests-per-day <n>', 'requests a day', positiveNumber('--requests-per-day'))
    .addOption(
      new Option('--pattern <pattern>', 'only this pattern (default: all side by side)').choices([...COST_PATTERNS]),
    )
    .option(
      '--cache-hit-rate <r>',
      'share of requests the prediction cache answers (0 ≤ r < 1)',
      nonNegativeNumber('--cache-hit-rate'),
      0,
    )
    .option('--prices <file>', `price table (default: the one shipped, ${shippedPricesPath() ?? 'with @ferry/tools'})`)
    .option('--write-prices <file>', 'copy the default price table to FILE for editing, and stop')
    .option('--json', 'print JSON')
    .action(async (o: CostOpts) => {
      const tools = await ctx.tools('cost');
      if (o.writePrices) {
        if (existsSync(o.writePrices))
          throw new InvalidArgumentError(`--write-prices: ${o.writePrices} exists; not overwriting it`);
        copyFileSync(tools.defaultPricesPath, o.writePrices);
        ctx.io.stdout(`wrote ${o.writePrices}\n`);
        return;
      }
      if (!o.profile) throw new InvalidArgumentError('--profile is required (run ferry bench MODEL first)');
      if (o.requestsPerDay === undefined) throw new InvalidArgumentError('--requests-per-day is required');
      try {
        tools.cost(
          {
            profile: o.profile,
            requestsPerDay: o.requestsPerDay,
            cacheHitRate: o.cacheHitRate,
            ...(o.pattern && { pattern: o.pattern }),
            ...(o.prices && { prices: o.prices }),
            ...(o.json && { json: true }),
          },
          ctx.io,
        );
      } catch (e) {
        if (tools.isUserError(e)) throw new CliUsageError(e.message);
        throw e;
      }
    });
}
