// `ferry cost`: replicas at peak and a monthly cost range per serving pattern, from a `ferry bench`
// profile and a price table. The work is done by @ferry/tools, loaded only when the command runs.
import { copyFileSync, existsSync } from 'node:fs';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { CliUsageError, type CliContext } from '../shared.js';
import { COST_PATTERNS, shippedPricesPath, type CostPattern } from '../tool-commands.js';
import { nonNegativeNumber, positiveNumber } from '../number-options.js';
import { pino } from 'pino';
import { loadConfig } from '../../config/index.js';
import { createStore, storeOptionsFromConfig } from '../../store/index.js';
import { Ledger } from '../../llm/ledger.js';
import type { CliIo } from '../shared.js';

interface CostOpts {
  profile?: string;
  requestsPerDay?: number;
  pattern?: CostPattern;
  cacheHitRate: number;
  prices?: string;
  writePrices?: string;
  json?: boolean;
  llm?: boolean;
  days: number;
  config?: string;
}

/** `ferry cost --llm`: the LLM pattern's rows, from the gateway's spend ledger in the store. */
async function llmRows(o: CostOpts, io: CliIo): Promise<void> {
  const cfg = loadConfig({ ...(o.config !== undefined && { file: o.config }) });
  const store = createStore(storeOptionsFromConfig(cfg.store, {}));
  try {
    await store.migrate();
    const since = Date.now() - o.days * 86_400_000;
    const s = await new Ledger(store, pino({ level: 'silent' })).summary(since);
    const perMonth = 30 / o.days;
    const rows = s.byRoute.map((r) => ({
      route: r.group,
      requests: r.requests,
      upstreamCalls: r.upstreamCalls,
      promptTokens: r.promptTokens,
      completionTokens: r.completionTokens,
      spentUsd: r.costUsd,
      savedUsd: r.savedUsd,
      monthlyUsd: r.costUsd * perMonth,
    }));
    if (o.json) {
      io.stdout(
        `${JSON.stringify({ pattern: 'llm', days: o.days, since, routes: rows, byControl: s.byControl, byCache: s.byCache, byTier: s.byTier }, null, 2)}\n`,
      );
      return;
    }
    const money = (x: number) => `$${x.toFixed(x < 1 ? 4 : 2)}`;
    io.stdout(
      `LLM pattern, from the ledger (${store.location}), last ${o.days} days; monthly = spend × 30 / ${o.days}\n`,
    );
    io.stdout(
      'route                     requests  upstream  prompt tok  compl. tok      spent      saved    monthly\n',
    );
    for (const r of rows)
      io.stdout(
        `${r.route.padEnd(24).slice(0, 24)} ${String(r.requests).padStart(9)} ${String(r.upstreamCalls).padStart(9)} ${String(r.promptTokens).padStart(11)} ${String(r.completionTokens).padStart(11)} ${money(r.spentUsd).padStart(10)} ${money(r.savedUsd).padStart(10)} ${money(r.monthlyUsd).padStart(10)}\n`,
      );
    if (rows.length === 0) io.stdout('(no LLM gateway requests in the ledger for this window)\n');
    else {
      io.stdout('saved by control          requests      saved\n');
      for (const c of s.byControl)
        io.stdout(`${c.control.padEnd(24)} ${String(c.requests).padStart(9)} ${money(c.savedUsd).padStart(10)}\n`);
    }
    io.stdout('Spend is priced from llm.providers.*.prices / llm.pricesFile; the shipped LLM prices are unverified.\n');
  } finally {
    await store.close();
  }
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
    .option('--llm', "the LLM gateway's rows: spend by route from the ledger in the store (no profile needed)")
    .option('--days <n>', 'with --llm: the window read from the ledger, in days', positiveNumber('--days'), 30)
    .option('-c, --config <file>', 'with --llm: ferry.config.yaml naming the store (else DATABASE_URL or the default)')
    .action(async (o: CostOpts) => {
      if (o.llm) {
        await llmRows(o, ctx.io);
        return;
      }
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
