// Where a provider's API key comes from: an environment variable or a file (a mounted secret). The key
// never enters the config object, so `ferry config` and config logs cannot print it; errors name the
// variable or file, never the value.
import { readFileSync } from 'node:fs';
import type { LlmProviderConfig } from '../config/schemas/llm.js';

export class ApiKeyError extends Error {}

export function resolveApiKey(
  name: string,
  cfg: LlmProviderConfig,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  if (cfg.apiKeyEnv && cfg.apiKeyFile)
    throw new ApiKeyError(`llm.providers.${name}: set apiKeyEnv or apiKeyFile, not both`);
  if (cfg.apiKeyEnv) {
    const v = env[cfg.apiKeyEnv]?.trim();
    if (!v) throw new ApiKeyError(`llm.providers.${name}: environment variable ${cfg.apiKeyEnv} is empty or unset`);
    return v;
  }
  if (cfg.apiKeyFile) {
    let v: string;
    try {
      v = readFileSync(cfg.apiKeyFile, 'utf8').trim();
    } catch (e) {
      throw new ApiKeyError(
        `llm.providers.${name}: cannot read apiKeyFile ${cfg.apiKeyFile}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`,
      );
    }
    if (!v) throw new ApiKeyError(`llm.providers.${name}: apiKeyFile ${cfg.apiKeyFile} is empty`);
    return v;
  }
  return undefined;
}
