// `ferry config`: the effective configuration (defaults < file < FERRY_* env < flags), or with --env the
// environment variable of every setting.
import type { Command } from 'commander';
import { stringify } from 'yaml';
import { configLeaves, redactConfig } from '../../config/index.js';
import { commonOptions, configFrom, type CliContext, type CommonOpts } from '../shared.js';

export function registerConfigCommand(program: Command, ctx: CliContext): void {
  commonOptions(
    program.command('config').description('print the effective configuration (defaults < file < FERRY_* env < flags)'),
  )
    .option('-p, --port <port>', 'port')
    .option('-H, --host <host>', 'address')
    .option('--env', 'list the environment variable of every setting')
    .option('--json', 'print JSON instead of YAML')
    .option('--show-secrets', 'print secrets, digests and URL passwords in clear (redacted by default)')
    .action((o: CommonOpts & { env?: boolean; json?: boolean; showSecrets?: boolean }) => {
      if (o.env) {
        for (const l of configLeaves()) ctx.io.stdout(`${l.env}\t${l.path.join('.')}\n`);
        return;
      }
      const cfg = o.showSecrets ? configFrom(o) : redactConfig(configFrom(o));
      ctx.io.stdout(o.json ? `${JSON.stringify(cfg, null, 2)}\n` : stringify(cfg));
    });
}
