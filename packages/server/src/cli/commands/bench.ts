// `ferry bench MODEL`: load-tests one model on this machine and writes a capacity profile. The work is
// done by @ferry/tools, loaded only when the command runs.
import { InvalidArgumentError, type Command } from 'commander';
import { loadConfig } from '../../config/index.js';
import { CliUsageError, type CliContext } from '../shared.js';
import { concurrencyList, nonNegativeNumber, positiveNumber } from '../number-options.js';

interface BenchOpts {
  models?: string;
  config?: string;
  concurrency: number[];
  duration: number;
  warmup: number;
  workers?: string;
  url?: string;
  out?: string;
  json?: boolean;
}

export function registerBenchCommand(program: Command, ctx: CliContext): void {
  program
    .command('bench <model>')
    .description(
      'load-test one model on this machine: req/s per core, p50/p99 per concurrency, the knee vs its SLA; writes a JSON profile',
    )
    .option('-m, --models <dir>', 'model repository folder')
    .option('-c, --config <file>', 'ferry.config.yaml for the server under test')
    .option(
      '--concurrency <list>',
      'concurrent connections to try, comma-separated',
      concurrencyList,
      [1, 2, 4, 8, 16, 32],
    )
    .option('-d, --duration <seconds>', 'seconds of load at each concurrency', positiveNumber('--duration'), 10)
    .option('--warmup <seconds>', 'seconds of untimed load first', nonNegativeNumber('--warmup'), 2)
    .option('--workers <n>', 'inference worker threads of the server under test (0 = one per core)')
    .option('--url <url>', 'bench a running Ferry server instead of starting one')
    .option('-o, --out <file>', 'where to write the profile (default <model>-profile.json)')
    .option('--json', 'print the profile instead of a table')
    .action(async (model: string, o: BenchOpts) => {
      const cfg = loadConfig({
        ...(o.config !== undefined && { file: o.config }),
        overrides: { 'models.dir': o.models },
      });
      const workers = o.workers === undefined ? undefined : Number(o.workers);
      if (workers !== undefined && (!Number.isInteger(workers) || workers < 0))
        throw new InvalidArgumentError('--workers must be an integer ≥ 0');
      const tools = await ctx.tools('bench');
      try {
        await tools.bench(
          {
            model,
            modelsDir: cfg.models.dir,
            concurrency: o.concurrency,
            durationSec: o.duration,
            warmupSec: o.warmup,
            ...(o.url && { url: o.url }),
            ...(workers !== undefined && { workers }),
            ...(o.config && { configFile: o.config }),
            ...(o.out && { out: o.out }),
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
