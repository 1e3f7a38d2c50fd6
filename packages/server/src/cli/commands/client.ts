// `ferry client types --out FILE`: the per-model TypeScript types for @ferry/client, from the local
// model repository or from a running server (`--url`).
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import type { Manifest } from '@ferry/core';
import { loadConfig } from '../../config/index.js';
import { Repository } from '../../serving/repository/index.js';
import { generateClientTypes, type TypegenModel } from '../../serving/repository/client-types.js';
import type { CliContext } from '../shared.js';

interface TypesOpts {
  out: string;
  models?: string;
  config?: string;
  url?: string;
  apiKey?: string;
}

async function fromServer(url: string, apiKey: string | undefined): Promise<TypegenModel[]> {
  const base = url.replace(/\/+$/, '');
  const get = async (path: string) => {
    const r = await fetch(`${base}${path}`, {
      headers: { accept: 'application/json', ...(apiKey && { authorization: `Bearer ${apiKey}` }) },
    });
    if (!r.ok) throw new Error(`GET ${base}${path}: HTTP ${r.status} ${(await r.text()).slice(0, 300)}`);
    return r.json() as Promise<Record<string, unknown>>;
  };
  const list = (await get('/v1/models')).models as Array<{
    name: string;
    defaultVersion: string;
    versions: Array<{ version: string }>;
  }>;
  return Promise.all(
    list.map(async (m) => ({
      name: m.name,
      defaultVersion: m.defaultVersion,
      versions: await Promise.all(
        m.versions.map(async (v) => ({
          version: v.version,
          manifest: (await get(`/v1/models/${encodeURIComponent(m.name)}/versions/${encodeURIComponent(v.version)}`))
            .contract as Manifest,
        })),
      ),
    })),
  );
}

export function registerClientCommand(program: Command, ctx: CliContext): void {
  const client = program.command('client').description('tools for @ferry/client');
  client
    .command('types')
    .description("write TypeScript types of every model's features and labels for @ferry/client")
    .requiredOption('-o, --out <file>', 'the .d.ts file to write, e.g. src/ferry-models.d.ts')
    .option('-m, --models <dir>', "model repository folder (default: the config's models.dir)")
    .option('-c, --config <file>', 'ferry.config.yaml to read')
    .option('--url <url>', 'read the contracts from a running Ferry server instead of the repository')
    .option('--api-key <key>', 'API key for --url (or FERRY_API_KEY)')
    .action(async (o: TypesOpts) => {
      let models: TypegenModel[];
      let source: string;
      if (o.url) {
        models = await fromServer(o.url, o.apiKey ?? process.env.FERRY_API_KEY);
        source = o.url;
      } else {
        const cfg = loadConfig({
          ...(o.config !== undefined && { file: o.config }),
          overrides: { 'models.dir': o.models },
        });
        const repo = Repository.load(cfg.models.dir, cfg.models.only);
        models = repo.models().map((m) => ({
          name: m.name,
          defaultVersion: repo.resolve(m.name).version,
          versions: m.versions.map((v) => ({ version: v.version, manifest: v.manifest })),
        }));
        source = `the model repository ${cfg.models.dir}`;
      }
      const out = resolve(o.out);
      mkdirSync(dirname(out), { recursive: true });
      writeFileSync(out, generateClientTypes(models, source.replace(/\s+/g, ' ')));
      ctx.io.stdout(`wrote ${out}: ${models.length} models\n`);
    });
}
