// Hot model management: load, reload and unload versions while serving. A change is prepared
// beside the running sessions (loaded and warmed), then swapped in for new requests in one step;
// the replaced sessions are disposed once their requests finish. A change is all-or-nothing per
// model: if any version of it fails to load, nothing of that model changes and the old keeps serving.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import semver from 'semver';
import type { Logger } from 'pino';
import { FerryError } from '../errors.js';
import {
  checkCompatibility,
  MODEL_NAME,
  VERSION_NAME,
  RepositoryError,
  type ModelEntry,
  type ModelVersion,
  type Repository,
} from '../serving/repository/index.js';
import type { LoadedVersion, ModelService } from '../serving/index.js';
import type { RolloutPolicy } from '../serving/repository/rollout-policy.js';

export interface ChangeReport {
  loaded: string[];
  reloaded: string[];
  unloaded: string[];
  unchanged: string[];
  failed: Array<{ model: string; error: string }>;
  /** Aliases dropped because their version is not served. */
  warnings: string[];
}

const emptyReport = (): ChangeReport => ({
  loaded: [],
  reloaded: [],
  unloaded: [],
  unchanged: [],
  failed: [],
  warnings: [],
});

/** Size and mtime of every file of a version folder (one level of subfolders): changes when the files do. */
export function fingerprint(dir: string): string {
  const parts: string[] = [];
  const walk = (d: string, depth: number) => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(d, e.name);
      if (e.isDirectory() && depth < 1) walk(p, depth + 1);
      else if (e.isFile()) {
        const st = statSync(p);
        parts.push(`${p}:${st.size}:${st.mtimeMs}`);
      }
    }
  };
  try {
    walk(dir, 0);
  } catch {
    return 'missing';
  }
  return parts.join('|');
}

/** Refuses a model name or version that is not strictly valid, before anything touches the disk. */
export function checkNames(model: string, version?: string): void {
  if (!MODEL_NAME.test(model)) {
    throw new FerryError('invalid-request', {
      detail: `invalid model name "${model.slice(0, 64)}" (lower-case letters, digits, '.', '_' and '-', up to 64)`,
      extra: { errors: [{ pointer: '/path/model', reason: 'invalid model name' }] },
    });
  }
  if (version !== undefined && !VERSION_NAME.test(version)) {
    throw new FerryError('invalid-request', {
      detail: `invalid version "${version.slice(0, 64)}" (an exact semantic version like 1.2.0)`,
      extra: { errors: [{ pointer: '/path/version', reason: 'invalid version' }] },
    });
  }
}

interface SyncOptions {
  /** Only these versions may be loaded or reloaded (others keep their state). */
  versions?: readonly string[];
  /** Reload even when the files did not change. */
  force: boolean;
  /** Unload served versions that are gone from disk. */
  dropMissing: boolean;
}

export class ModelManager {
  private chain: Promise<unknown> = Promise.resolve();
  private readonly fingerprints = new Map<string, string>();

  constructor(
    private readonly repository: Repository,
    private readonly service: ModelService,
    private readonly log: Logger,
  ) {
    for (const v of repository.allVersions()) this.fingerprints.set(v.key, fingerprint(v.dir));
  }

  /** Changes run one at a time: two reloads never race over the same model. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Loads (or, when loaded, reloads) one version from disk. */
  loadVersion(model: string, version: string): Promise<ChangeReport> {
    checkNames(model, version);
    return this.serial(async () => {
      const report = emptyReport();
      await this.syncModel(model, { versions: [version], force: true, dropMissing: false }, report, true);
      return report;
    });
  }

  /** Takes one version out of service. Refused (409) while an alias points to it. */
  unloadVersion(model: string, version: string): Promise<ChangeReport> {
    checkNames(model, version);
    return this.serial(async () => {
      const entry = this.repository.get(model);
      const v = entry?.versions.find((x) => x.version === version);
      if (!entry || !v) throw new FerryError('version-not-found', { detail: `${model}@${version} is not loaded` });
      const users = Object.entries(entry.aliases)
        .filter(([, t]) => t === version)
        .map(([a]) => a);
      if (users.length) {
        throw new FerryError('version-in-use', {
          detail: `${v.key} is the target of ${users.map((a) => `"${a}"`).join(', ')} in aliases.yaml; point the alias elsewhere and reload first`,
          extra: { aliases: users },
        });
      }
      const rest = entry.versions.filter((x) => x !== v);
      this.repository.setEntry(model, rest.length ? { ...entry, versions: rest } : undefined);
      this.fingerprints.delete(v.key);
      await this.service.deactivate(v.key);
      this.log.info({ model: v.key }, 'version unloaded');
      return { ...emptyReport(), unloaded: [v.key] };
    });
  }

  /** Open Inference Protocol `load`: (re)loads every version of the model from disk. */
  loadModel(model: string): Promise<ChangeReport> {
    checkNames(model);
    return this.serial(async () => {
      const report = emptyReport();
      await this.syncModel(model, { force: true, dropMissing: true }, report, true);
      return report;
    });
  }

  /** Open Inference Protocol `unload`: every version of the model leaves service. */
  unloadModel(model: string): Promise<ChangeReport> {
    checkNames(model);
    return this.serial(async () => {
      const entry = this.repository.get(model);
      if (!entry) throw new FerryError('model-not-found', { detail: `model "${model}" is not loaded` });
      this.repository.setEntry(model, undefined);
      await Promise.all(
        entry.versions.map((v) => {
          this.fingerprints.delete(v.key);
          return this.service.deactivate(v.key);
        }),
      );
      this.log.info({ model }, 'model unloaded');
      return { ...emptyReport(), unloaded: entry.versions.map((v) => v.key) };
    });
  }

  /** Brings what is served in line with the disk: new versions load, changed ones reload, removed ones unload. */
  reloadRepository(): Promise<ChangeReport> {
    return this.serial(async () => {
      const report = emptyReport();
      const names = new Set([...this.repository.diskModels(), ...this.repository.models().map((m) => m.name)]);
      for (const name of [...names].sort())
        await this.syncModel(name, { force: false, dropMissing: true }, report, false);
      this.log.info({ ...report }, 'repository reloaded');
      return report;
    });
  }

  private async syncModel(name: string, opts: SyncOptions, report: ChangeReport, strict: boolean): Promise<void> {
    const served = this.repository.get(name);
    const onDisk = this.repository.diskModels().includes(name);
    if (!onDisk) {
      if (strict)
        throw new FerryError('model-not-found', { detail: `model "${name}" is not in the repository folder` });
      if (served) {
        this.repository.setEntry(name, undefined);
        await Promise.all(
          served.versions.map((v) => {
            this.fingerprints.delete(v.key);
            return this.service.deactivate(v.key);
          }),
        );
        report.unloaded.push(...served.versions.map((v) => v.key));
      }
      return;
    }
    const refuse = (error: string): void => {
      if (strict)
        throw new FerryError('load-failed', {
          detail: `${name}: ${error}; nothing changed, the served versions keep serving`,
        });
      report.failed.push({ model: name, error });
      this.log.warn({ model: name, error }, 'model change refused; the served versions keep serving');
    };
    let disk: ModelEntry;
    try {
      disk = this.repository.readModel(name);
    } catch (e) {
      if (e instanceof RepositoryError || (e as Error).name === 'ManifestError') return refuse((e as Error).message);
      throw e;
    }
    if (opts.versions) {
      const missing = opts.versions.filter((v) => !disk.versions.some((d) => d.version === v));
      if (missing.length)
        throw new FerryError('version-not-found', {
          detail: `${name} has no version ${missing.join(', ')} on disk; versions: ${disk.versions.map((v) => v.version).join(', ')}`,
        });
    }

    const keep: ModelVersion[] = [];
    const load: ModelVersion[] = [];
    for (const dv of disk.versions) {
      const sv = served?.versions.find((x) => x.version === dv.version);
      const wanted = !opts.versions || opts.versions.includes(dv.version);
      if (!wanted) {
        if (sv) keep.push(sv);
        continue;
      }
      if (sv && !opts.force && fingerprint(dv.dir) === this.fingerprints.get(dv.key)) {
        keep.push(sv);
        report.unchanged.push(dv.key);
      } else load.push(dv);
    }
    const gone = (served?.versions ?? []).filter((sv) => !disk.versions.some((d) => d.version === sv.version));
    if (!opts.dropMissing) keep.push(...gone);

    const settled = await Promise.allSettled(load.map((v) => this.service.prepareLoad(v)));
    const ready = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const errors = settled.flatMap((r) => (r.status === 'rejected' ? [(r.reason as Error).message] : []));
    const abandon = async (why: string) => {
      await Promise.all(ready.map((lv) => this.service.discard(lv)));
      refuse(why);
    };
    if (errors.length) return abandon(errors.join('; '));

    const versions = [...keep, ...ready.map((lv) => lv.version)].sort((a, b) => semver.rcompare(a.version, b.version));
    if (versions.length === 0) return abandon('no version would be left to serve');
    const servedSet = new Set(versions.map((v) => v.version));
    const aliases: Record<string, string> = {};
    for (const [a, t] of Object.entries(disk.aliases)) {
      if (servedSet.has(t)) aliases[a] = t;
      else report.warnings.push(`${name}: alias "${a}" → ${t} dropped: that version is not loaded`);
    }
    const p = disk.rollout;
    const rollout: RolloutPolicy = {
      ...(p.canary && servedSet.has(p.canary.version) && { canary: p.canary }),
      ...(p.shadow && servedSet.has(p.shadow.version) && { shadow: p.shadow }),
      deprecated: p.deprecated,
    };
    const entry: ModelEntry = { name, versions, aliases, rollout };
    try {
      checkCompatibility(entry);
    } catch (e) {
      return abandon((e as Error).message);
    }

    // Commit: from here new requests resolve to the new entry and reach the new sessions.
    this.repository.setEntry(name, entry);
    const retiring: Promise<void>[] = [];
    for (const lv of ready) {
      const key = lv.version.key;
      (served?.versions.some((x) => x.key === key) ? report.reloaded : report.loaded).push(key);
      this.fingerprints.set(key, fingerprint(lv.version.dir));
      retiring.push(this.service.activate(lv));
    }
    if (opts.dropMissing) {
      for (const v of gone) {
        this.fingerprints.delete(v.key);
        report.unloaded.push(v.key);
        retiring.push(this.service.deactivate(v.key));
      }
    }
    await Promise.all(retiring);
  }

  /** What is loaded, for the admin API. */
  status(): Array<{ key: string; sessionKey?: string; state?: string }> {
    return this.repository.allVersions().map((v) => {
      const lv: LoadedVersion | undefined = this.service.loaded(v.key);
      return { key: v.key, ...(lv && { sessionKey: lv.sessionKey, state: lv.state }) };
    });
  }
}
