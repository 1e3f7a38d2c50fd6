// The model repository on disk: `<dir>/<name>/<semver>/{model.onnx, ferry.yaml, card.md}` and an
// optional `<dir>/<name>/aliases.yaml`. Loading checks every manifest, the aliases, and that the
// versions sharing a major keep a compatible contract; resolution turns `name@ref` into one version.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import semver from 'semver';
import { parse as parseYaml } from 'yaml';
import { contractDifferences, type Manifest } from '@ferry/core';
import { FerryError } from '../../errors.js';
import { readManifest, ManifestError } from './manifest.js';
import { parseAliases, EMPTY_POLICY, type RolloutPolicy } from './rollout-policy.js';

/** Model names: checked before any filesystem access, so no request can walk out of the repository. */
export const MODEL_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const ALIAS_NAME = /^[a-z][a-z0-9-]{0,31}$/;

export interface ModelVersion {
  readonly name: string;
  readonly version: string;
  /** `name@version`, the key of this version everywhere (sessions, cache, metrics). */
  readonly key: string;
  readonly dir: string;
  readonly modelPath: string;
  readonly manifest: Manifest;
  readonly card?: string;
}

export interface ModelEntry {
  readonly name: string;
  /** Newest first. */
  readonly versions: readonly ModelVersion[];
  readonly aliases: Readonly<Record<string, string>>;
  /** Canary weight, shadow and deprecations from aliases.yaml. */
  readonly rollout: RolloutPolicy;
}

/** Versions: strict semantic versions, checked before any filesystem access. */
export const VERSION_NAME = /^(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})$/;

export class RepositoryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RepositoryError';
  }
}

/** Rollout blocks of `models.rollout` in ferry.config.yaml, by model, with the file they came from (for messages). */
export interface ConfigPolicies {
  readonly file: string;
  readonly byModel: Readonly<Record<string, unknown>>;
}

function readAliases(
  file: string,
  versions: readonly ModelVersion[],
  fromConfig?: ConfigPolicies,
): Pick<ModelEntry, 'aliases' | 'rollout'> {
  const name = versions[0]?.name ?? '';
  if (fromConfig && Object.hasOwn(fromConfig.byModel, name)) {
    // One source per model: two would leave the reader guessing which applies.
    if (existsSync(file))
      throw new RepositoryError(
        `model "${name}": rollout policy set in both ${file} and ${fromConfig.file} (/models/rollout/${name}); keep one of them`,
      );
    const where = `${fromConfig.file}: /models/rollout/${name}`;
    return parseAliases(
      fromConfig.byModel[name],
      versions.map((v) => v.version),
      (pointer, message) => {
        throw new RepositoryError(`${where}${pointer}: ${message}`);
      },
    );
  }
  if (!existsSync(file)) return { aliases: {}, rollout: EMPTY_POLICY };
  let data: unknown;
  try {
    data = parseYaml(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new RepositoryError(`${file}: invalid YAML: ${(e as Error).message}`);
  }
  return parseAliases(
    data,
    versions.map((v) => v.version),
    (where, message) => {
      throw new RepositoryError(`${file}: ${where || '/'}: ${message}`);
    },
  );
}

/** Checks that versions sharing a major have the same contract; names both versions and the difference. */
export function checkCompatibility(entry: ModelEntry): void {
  const byMajor = new Map<number, ModelVersion[]>();
  for (const v of entry.versions) {
    const major = semver.major(v.version);
    byMajor.set(major, [...(byMajor.get(major) ?? []), v]);
  }
  for (const group of byMajor.values()) {
    const oldest = group[group.length - 1]!;
    for (const v of group.slice(0, -1)) {
      const diffs = contractDifferences(oldest.manifest, v.manifest);
      if (diffs.length) {
        throw new RepositoryError(
          `${entry.name}: versions ${oldest.version} and ${v.version} share major ${semver.major(v.version)} but their contracts differ: ${diffs.join('; ')}. Publish a breaking change as a new major version.`,
        );
      }
    }
  }
}

export function loadModelEntry(root: string, name: string, fromConfig?: ConfigPolicies): ModelEntry {
  if (!MODEL_NAME.test(name))
    throw new RepositoryError(
      `${join(root, name)}: invalid model name "${name}" (lower-case letters, digits, '.', '_' and '-')`,
    );
  const dir = join(root, name);
  const versions: ModelVersion[] = [];
  for (const d of readdirSync(dir, { withFileTypes: true })) {
    if (!d.isDirectory()) continue;
    if (!semver.valid(d.name) || semver.clean(d.name) !== d.name) {
      throw new RepositoryError(`${join(dir, d.name)}: version folders must be semantic versions like 1.0.0`);
    }
    const vdir = join(dir, d.name);
    const manifestFile = join(vdir, 'ferry.yaml');
    if (!existsSync(manifestFile))
      throw new RepositoryError(`${vdir}: missing ferry.yaml (run "ferry init" to write one)`);
    const manifest = readManifest(manifestFile);
    if (manifest.name !== undefined && manifest.name !== name)
      throw new ManifestError(manifestFile, '/name', `"${manifest.name}" does not match the folder name "${name}"`);
    if (manifest.version !== undefined && manifest.version !== d.name)
      throw new ManifestError(
        manifestFile,
        '/version',
        `"${manifest.version}" does not match the folder name "${d.name}"`,
      );
    const inside = (rel: string, where: string): string => {
      const path = resolve(vdir, rel);
      if (!path.startsWith(resolve(vdir) + sep))
        throw new ManifestError(manifestFile, where, 'must name a file inside the version folder');
      if (!existsSync(path) || !statSync(path).isFile())
        throw new ManifestError(manifestFile, where, `file ${path} does not exist`);
      return path;
    };
    const p = manifest.pipeline;
    if (p) {
      inside(p.recognizer.model, '/pipeline/recognizer/model');
      inside(p.charset.file, '/pipeline/charset/file');
    }
    // For a pipeline the detector stands for the version's artifact.
    const modelPath = p
      ? inside(p.detector.model, '/pipeline/detector/model')
      : inside(manifest.model ?? 'model.onnx', '/model');
    const cardFile = join(vdir, 'card.md');
    versions.push({
      name,
      version: d.name,
      key: `${name}@${d.name}`,
      dir: vdir,
      modelPath,
      manifest,
      ...(existsSync(cardFile) && { card: readFileSync(cardFile, 'utf8') }),
    });
  }
  if (versions.length === 0) throw new RepositoryError(`${dir}: no versions (expected ${dir}/<semver>/ferry.yaml)`);
  versions.sort((a, b) => semver.rcompare(a.version, b.version));
  const entry: ModelEntry = { name, versions, ...readAliases(join(dir, 'aliases.yaml'), versions, fromConfig) };
  checkCompatibility(entry);
  return entry;
}

export class Repository {
  readonly root: string;
  private readonly entries: Map<string, ModelEntry>;

  private configPolicies: ConfigPolicies | undefined;

  private constructor(root: string, entries: Map<string, ModelEntry>, configPolicies?: ConfigPolicies) {
    this.root = root;
    this.entries = entries;
    this.configPolicies = configPolicies;
  }

  /** Loads every model under `root` (or only those named). Throws on the first bad model. */
  static load(root: string, only: readonly string[] = [], configPolicies?: ConfigPolicies): Repository {
    if (!existsSync(root) || !statSync(root).isDirectory())
      throw new RepositoryError(`model repository ${root} does not exist`);
    const entries = new Map<string, ModelEntry>();
    for (const d of readdirSync(root, { withFileTypes: true })) {
      if (!d.isDirectory() || d.name.startsWith('.')) continue;
      if (only.length && !only.includes(d.name)) continue;
      entries.set(d.name, loadModelEntry(root, d.name, configPolicies));
    }
    for (const name of only) if (!entries.has(name)) throw new RepositoryError(`model "${name}" is not in ${root}`);
    for (const name of Object.keys(configPolicies?.byModel ?? {})) {
      if (!entries.has(name) && only.length === 0)
        throw new RepositoryError(
          `${configPolicies!.file}: /models/rollout/${name}: no model "${name}" is served from ${root}`,
        );
    }
    return new Repository(root, new Map([...entries].sort(([a], [b]) => a.localeCompare(b))), configPolicies);
  }

  /** The rollout blocks of ferry.config.yaml that the next read of a model applies (config reload). */
  setConfigPolicies(p: ConfigPolicies | undefined): void {
    this.configPolicies = p;
  }

  /** Model folders on disk now (names that pass the pattern; others are ignored as `load` would refuse them). */
  diskModels(): string[] {
    if (!existsSync(this.root)) return [];
    return readdirSync(this.root, { withFileTypes: true })
      .filter((d) => d.isDirectory() && !d.name.startsWith('.') && MODEL_NAME.test(d.name))
      .map((d) => d.name)
      .sort();
  }

  /** Reads one model from disk, fully checked (manifests, aliases, compatibility), without serving it. */
  readModel(name: string): ModelEntry {
    if (!MODEL_NAME.test(name)) throw new RepositoryError(`invalid model name "${name.slice(0, 64)}"`);
    const dir = join(this.root, name);
    if (!existsSync(dir) || !statSync(dir).isDirectory())
      throw new RepositoryError(`model "${name}" is not in ${this.root}`);
    return loadModelEntry(this.root, name, this.configPolicies);
  }

  /** Bumped by every change of what is served (documents derived from it, like /openapi.json, rebuild). */
  get revision(): number {
    return this.changes;
  }

  private changes = 0;

  /** Replaces what is served for a model (undefined removes it). Callers keep sessions in step. */
  setEntry(name: string, entry: ModelEntry | undefined): void {
    this.changes++;
    if (entry) this.entries.set(name, entry);
    else this.entries.delete(name);
    const sorted = [...this.entries].sort(([a], [b]) => a.localeCompare(b));
    this.entries.clear();
    for (const [k, v] of sorted) this.entries.set(k, v);
  }

  models(): ModelEntry[] {
    return [...this.entries.values()];
  }

  get(name: string): ModelEntry | undefined {
    return this.entries.get(name);
  }

  allVersions(): ModelVersion[] {
    return this.models().flatMap((m) => m.versions);
  }

  /**
   * Resolves a model reference: `name` (the `stable` alias, else the newest version), `name@1`
   * (newest 1.x.y), `name@1.2` (newest 1.2.x), `name@1.2.0` (exact), `name@latest`, `name@alias`.
   * `ref` may be given separately (the `/versions/{version}` path segment).
   */
  resolve(model: string, ref?: string): ModelVersion {
    let name = model;
    let r = ref;
    const at = model.indexOf('@');
    if (at >= 0) {
      if (r !== undefined)
        throw new FerryError('invalid-request', {
          detail: `give the version either in the model name or in the path, not both ("${model}")`,
        });
      name = model.slice(0, at);
      r = model.slice(at + 1);
    }
    const entry = MODEL_NAME.test(name) ? this.entries.get(name) : undefined;
    if (!entry) {
      throw new FerryError('model-not-found', {
        detail: `model "${name.slice(0, 100)}" does not exist; available: ${[...this.entries.keys()].join(', ') || '(none)'}`,
        extra: { available: [...this.entries.keys()] },
      });
    }
    const found = resolveIn(entry, r);
    if (!found) {
      throw new FerryError('version-not-found', {
        detail: `model "${name}" has no version matching "${String(r).slice(0, 100)}"; versions: ${entry.versions.map((v) => v.version).join(', ')}${
          Object.keys(entry.aliases).length
            ? `; aliases: ${Object.entries(entry.aliases)
                .map(([a, v]) => `${a} → ${v}`)
                .join(', ')}`
            : ''
        }`,
        extra: { available: entry.versions.map((v) => v.version), aliases: entry.aliases },
      });
    }
    return found;
  }
}

function resolveIn(entry: ModelEntry, ref: string | undefined): ModelVersion | undefined {
  const versions = entry.versions;
  if (ref === undefined || ref === '') {
    const stable = entry.aliases.stable;
    return stable ? versions.find((v) => v.version === stable) : versions[0];
  }
  if (ref === 'latest') return versions[0];
  if (ALIAS_NAME.test(ref)) {
    const target = entry.aliases[ref];
    return target ? versions.find((v) => v.version === target) : undefined;
  }
  if (/^\d+$/.test(ref) || /^\d+\.\d+$/.test(ref)) {
    const range = `${ref}.x`;
    return versions.find((v) => semver.satisfies(v.version, range));
  }
  if (semver.valid(ref)) return versions.find((v) => v.version === semver.clean(ref));
  return undefined;
}
