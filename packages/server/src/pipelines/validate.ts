// Start-time checks of the `pipelines:` section that its schema cannot express: each error names the
// setting (`pipelines.<name>.<field>`) and what is wrong, and the server refuses to start.
import { Cron } from 'croner';
import { ConfigError } from '../config/index.js';
import type { Repository } from '../serving/repository/index.js';
import { pipelinesOf, type PipelinesConfig } from '../config/schemas/pipelines.js';
import { compileRowMapper } from './mapping.js';

const NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;

/** Throws ConfigError on the first bad pipeline; a repository is optional (the CLI checks the model it loads). */
export function validatePipelines(
  pipelines: PipelinesConfig,
  repository?: Repository,
  only: readonly string[] = [],
): void {
  for (const [name, p] of Object.entries(pipelinesOf({ pipelines }))) {
    const at = `pipelines.${name}`;
    if (!NAME.test(name))
      throw new ConfigError(`${at}: pipeline names are lower-case letters, digits, "-" and "_" (at most 63)`);
    if (p.schedule) {
      try {
        new Cron(p.schedule, { paused: true, timezone: p.timezone }).stop();
      } catch (e) {
        throw new ConfigError(
          `${at}.schedule: "${p.schedule}" (timezone ${p.timezone}) is not a valid cron expression: ${(e as Error).message}`,
        );
      }
    }
    if (p.source.kind === 'sql' && !/^\s*(select|with)\b/i.test(p.source.query))
      throw new ConfigError(`${at}.source.query: must be a SELECT (or WITH … SELECT)`);
    if (!repository) continue;
    // A server restricted to some models (models.only, `ferry predict`) does not check the others' pipelines.
    if (only.length && !only.includes(p.model.split('@')[0]!)) continue;
    let version;
    try {
      version = repository.resolve(p.model);
    } catch (e) {
      throw new ConfigError(`${at}.model: ${(e as { detail?: string }).detail ?? (e as Error).message}`);
    }
    try {
      compileRowMapper(p, version.manifest);
    } catch (e) {
      throw new ConfigError(`${at}.${(e as Error).message}`);
    }
  }
}
