// `ferry models`: the models in the repository, their default version, versions and aliases.
import type { Command } from 'commander';
import { Repository } from '../../serving/repository/index.js';
import { commonOptions, configFrom, type CliContext, type CommonOpts } from '../shared.js';

export function registerModelsCommand(program: Command, ctx: CliContext): void {
  commonOptions(program.command('models').description('list the models in the repository'))
    .option('--json', 'print JSON')
    .action((o: CommonOpts & { json?: boolean }) => {
      const cfg = configFrom(o);
      const repo = Repository.load(cfg.models.dir, cfg.models.only);
      const rows = repo.models().map((m) => ({
        name: m.name,
        default: repo.resolve(m.name).version,
        versions: m.versions.map((v) => v.version),
        aliases: m.aliases,
      }));
      if (o.json) {
        ctx.io.stdout(`${JSON.stringify(rows, null, 2)}\n`);
        return;
      }
      for (const r of rows) {
        const aliases = Object.entries(r.aliases)
          .map(([a, v]) => `${a}=${v}`)
          .join(' ');
        ctx.io.stdout(
          `${r.name}\tdefault ${r.default}\tversions ${r.versions.join(', ')}${aliases ? `\taliases ${aliases}` : ''}\n`,
        );
      }
    });
}
