// `ferry predict MODEL --data JSON`: one prediction, in process (loading only that model) or against a
// running server with --url.
import type { Command } from 'commander';
import { loadConfig } from '../../config/index.js';
import { createServer } from '../../app/create-server.js';
import { instancesFromBody } from '../../serving/index.js';
import {
  CliUsageError,
  commonOptions,
  configFrom,
  readJsonArgument,
  type CliContext,
  type CommonOpts,
} from '../shared.js';

type PredictOpts = CommonOpts & { data: string; url?: string };

export function registerPredictCommand(program: Command, ctx: CliContext): void {
  commonOptions(program.command('predict <model>').description('run one prediction, in process (or against --url)'))
    .requiredOption(
      '-d, --data <json>',
      'JSON body: {"instances": [...]} or a bare instance or array; @file reads a file',
    )
    .option('--url <url>', 'a running Ferry server to call instead of loading the model here')
    .action(async (model: string, o: PredictOpts) => {
      let body = readJsonArgument(o.data);
      if (Array.isArray(body)) body = { instances: body };
      else if (body && typeof body === 'object' && !('instances' in body) && !('inputs' in body))
        body = { instances: [body] };
      if (o.url) {
        const res = await fetch(`${o.url.replace(/\/$/, '')}/v1/models/${encodeURIComponent(model)}/predict`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
        const text = await res.text();
        let answer: { code?: string; detail?: string; errors?: Array<{ pointer?: string; reason?: string }> };
        try {
          answer = JSON.parse(text) as typeof answer;
        } catch {
          throw new CliUsageError(
            `${o.url} answered HTTP ${res.status} with something other than JSON: is it a Ferry server?`,
          );
        }
        if (!res.ok) {
          const issues = (answer.errors ?? []).slice(0, 5).map((i) => `; ${i.pointer ?? ''}: ${i.reason ?? ''}`);
          throw new CliUsageError(
            `${o.url} answered ${res.status} ${answer.code ?? ''}${answer.detail ? `: ${answer.detail}` : ''}${issues.join('')}`,
          );
        }
        ctx.io.stdout(`${JSON.stringify(answer, null, 2)}\n`);
        return;
      }
      const cfg = configFrom({ ...o, logLevel: o.logLevel ?? 'warn' });
      const name = model.split('@')[0]!;
      const server = await createServer(
        loadConfig({
          ...(o.config !== undefined && { file: o.config }),
          overrides: {
            'models.dir': cfg.models.dir,
            'models.only': [name],
            'runtime.workers': 1,
            'log.level': cfg.log.level,
          },
        }),
      );
      try {
        await server.loaded;
        const v = server.repository.resolve(model);
        const { instances, base } = instancesFromBody(body);
        // A one-off local prediction is not traffic: no shadow copy, as before the predict path took them.
        const r = await server.service.predict(v, instances, base, { shadow: false });
        ctx.io.stdout(
          `${JSON.stringify({ model: v.name, version: v.version, predictions: r.predictions }, null, 2)}\n`,
        );
      } finally {
        await server.close();
      }
    });
}
