// Re-reading the configuration while serving: API keys (auth.keys, FERRY_API_KEYS, auth.keysFile) and
// the rollout blocks of `models.rollout`, then a repository reload that applies them per model. On
// SIGHUP, POST /v1/admin/config:reload, POST /v1/admin/repository:reload and, under --watch, changes
// of the config file or the keys file. Anything that does not check leaves the old state in force.
import { dirname, resolve } from 'node:path';
import chokidar from 'chokidar';
import type { Logger } from 'pino';
import { loadConfig, type ConfigSources, type FerryConfig } from '../config/index.js';
import { readKeysFile, type KeyRing } from '../auth/index.js';
import type { ApiKeyConfig } from '../config/schemas/auth.js';
import { FerryError } from '../errors.js';
import type { ConfigPolicies, Repository } from '../serving/repository/index.js';
import type { ChangeReport, ModelManager } from './model-manager.js';

export interface ConfigReloadReport extends ChangeReport {
  /** Ids of the keys in force after the reload (never digests). */
  keys: string[];
  /** Why the configuration itself was refused (nothing of it applied); absent when it was applied. */
  configError?: string;
}

/** The rollout blocks of a config, labelled with the file they came from. */
export function configPolicies(cfg: FerryConfig, file: string | undefined): ConfigPolicies | undefined {
  const byModel = cfg.models.rollout;
  return Object.keys(byModel).length ? { file: file ?? 'ferry.config.yaml', byModel } : undefined;
}

/** Every key source of a config: the file's and the environment's (already in cfg.auth.keys), then auth.keysFile. */
export function allKeys(cfg: FerryConfig): ApiKeyConfig[] {
  return [...cfg.auth.keys, ...(cfg.auth.keysFile ? readKeysFile(cfg.auth.keysFile) : [])];
}

/** Settings a reload applies; every other change waits for a restart. */
const RELOADED = ['auth.keys', 'auth.keysFile', 'models.rollout'];

/**
 * The dotted paths of settings that differ between two configs, other than those a reload applies
 * (their values are not returned: a changed URL may hold a password).
 */
export function settingsNeedingRestart(running: FerryConfig, next: FerryConfig): string[] {
  const out: string[] = [];
  const walk = (a: unknown, b: unknown, path: string): void => {
    if (RELOADED.some((r) => path === r || path.startsWith(`${r}.`))) return;
    const plain = (x: unknown): x is Record<string, unknown> =>
      typeof x === 'object' && x !== null && !Array.isArray(x);
    if (plain(a) && plain(b)) {
      for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) walk(a[k], b[k], path ? `${path}.${k}` : k);
    } else if (JSON.stringify(a) !== JSON.stringify(b)) out.push(path);
  };
  walk(running, next, '');
  return out;
}

export class ConfigReloader {
  private chain: Promise<unknown> = Promise.resolve();
  private policies: ConfigPolicies | undefined;

  constructor(
    /** How the running config was read; undefined: keys and policies are fixed (tests, embedded use). */
    private readonly sources: ConfigSources | undefined,
    private readonly repository: Repository,
    private readonly manager: ModelManager,
    private readonly ring: KeyRing,
    private readonly log: Logger,
    /** The configuration the process started with: changes to anything but keys and rollout blocks are reported as
     * needing a restart.
     */
    private readonly running?: FerryConfig,
  ) {}

  /** The config file in use (for messages and the watcher). */
  get file(): string | undefined {
    const f = this.sources?.file;
    return f === undefined ? undefined : resolve(this.sources?.cwd ?? process.cwd(), f);
  }

  /** Re-reads keys and rollout blocks, then reloads the repository. One at a time. */
  reload(): Promise<ConfigReloadReport> {
    const run = this.chain.then(
      () => this.run(),
      () => this.run(),
    );
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async run(): Promise<ConfigReloadReport> {
    let configError: string | undefined;
    let restart: string[] = [];
    if (this.sources) {
      try {
        const cfg = loadConfig(this.sources);
        const keys = allKeys(cfg);
        // Going from keys to none would open every inference route to anyone: never by a reload.
        if (keys.length === 0 && this.ring.size > 0)
          throw new Error(
            'the new key set is empty, which would open every route without a key; restart without keys to run open',
          );
        this.ring.replace(keys);
        this.policies = configPolicies(cfg, this.file);
        this.repository.setConfigPolicies(this.policies);
        this.log.info({ keys: this.ring.ids() }, 'configuration re-read: API keys and rollout blocks applied');
        if (this.running) restart = settingsNeedingRestart(this.running, cfg);
        if (restart.length)
          this.log.warn(
            { settings: restart },
            'configuration changes that a reload does not apply: restart to use them',
          );
      } catch (e) {
        // Messages name files and JSON pointers, never a key or a digest.
        configError = (e as Error).message;
        this.log.error(
          { error: configError },
          'configuration reload refused; the keys and rollout policies in force keep applying',
        );
      }
    }
    const report = await this.manager.reloadRepository();
    for (const path of restart)
      report.warnings.push(
        `${this.file ?? 'configuration'}: ${path} changed; a reload applies only API keys and rollout blocks, restart to use it`,
      );
    for (const name of Object.keys(this.policies?.byModel ?? {})) {
      if (!this.repository.get(name))
        report.warnings.push(
          `${this.policies!.file}: /models/rollout/${name}: no model "${name}" is served; the block is unused`,
        );
    }
    return { ...report, keys: this.ring.ids(), ...(configError !== undefined && { configError }) };
  }

  /** For the admin routes: a refused configuration is a 422 naming why (the repository part still ran). */
  async reloadOrThrow(): Promise<ConfigReloadReport> {
    const r = await this.reload();
    if (r.configError !== undefined)
      throw new FerryError('load-failed', {
        detail: `configuration refused: ${r.configError}; the keys and rollout policies in force keep applying`,
        extra: { report: r },
      });
    return r;
  }

  /** `--watch`: reloads when the config file or the keys file changes (the keys file's folder, for Secret mounts that
   * swap a symlink).
   */
  watch(cfg: FerryConfig, debounceMs = 500): { close(): Promise<void> } {
    const targets = [this.file, cfg.auth.keysFile ? dirname(resolve(cfg.auth.keysFile)) : undefined].filter(
      (x): x is string => x !== undefined,
    );
    if (targets.length === 0) return { close: async () => undefined };
    const watcher = chokidar.watch(targets, {
      ignoreInitial: true,
      depth: 1,
      awaitWriteFinish: { stabilityThreshold: 200, pollInterval: 50 },
    });
    let timer: NodeJS.Timeout | undefined;
    watcher.on('all', () => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => {
        void this.reload().catch((err: unknown) => this.log.error({ err }, 'config reload failed'));
      }, debounceMs);
    });
    watcher.on('error', (err) => this.log.warn({ err }, 'config watcher error'));
    return {
      async close() {
        if (timer) clearTimeout(timer);
        await watcher.close();
      },
    };
  }
}
