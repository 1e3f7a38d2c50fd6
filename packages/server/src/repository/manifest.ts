// Reading and validating one version's ferry.yaml. A bad manifest is refused with the file and
// the JSON path of the bad key, and the step composition is compiled here so errors show at load.
import { readFileSync } from 'node:fs';
import { Ajv, type ErrorObject } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { Manifest, compileDecoder, compileEncoder, ContractError, type Manifest as ManifestT } from '@ferry/core';

export class ManifestError extends Error {
  readonly file: string;
  readonly path: string;
  constructor(file: string, path: string, message: string) {
    super(`${file}: ${path || '/'}: ${message}`);
    this.name = 'ManifestError';
    this.file = file;
    this.path = path;
  }
}

const ajv = new Ajv({ allErrors: true, strict: false });
const validateManifest = ajv.compile(Manifest);

function describe(e: ErrorObject): { path: string; message: string } {
  if (e.keyword === 'additionalProperties') {
    const key = (e.params as { additionalProperty: string }).additionalProperty;
    return { path: `${e.instancePath}/${key}`, message: `unknown key "${key}"` };
  }
  if (e.keyword === 'enum' || e.keyword === 'const') {
    return { path: e.instancePath, message: `${e.message} (${JSON.stringify((e.params as { allowedValues?: unknown }).allowedValues ?? (e.params as { allowedValue?: unknown }).allowedValue)})` };
  }
  return { path: e.instancePath, message: e.message ?? 'invalid' };
}

/** Picks the most useful of Ajv's errors: for a union (anyOf) of feature kinds, the branch matching `type`. */
function bestError(errors: ErrorObject[], data: unknown): { path: string; message: string } {
  const deepest = [...errors].sort((a, b) => b.instancePath.length - a.instancePath.length);
  for (const e of deepest) {
    if (e.keyword === 'anyOf') continue;
    // Inside a union, prefer errors from the branch whose literal `type`/`kind` matched.
    if (e.keyword === 'const' && /\/(type|kind)$/.test(e.instancePath)) continue;
    return describe(e);
  }
  const e = deepest[0]!;
  if (e.keyword === 'anyOf') {
    const at = e.instancePath.split('/').slice(1).reduce<unknown>((o, k) => (o as Record<string, unknown>)?.[k], data);
    const kind = (at as { type?: unknown; kind?: unknown })?.type ?? (at as { kind?: unknown })?.kind;
    return { path: e.instancePath, message: `unsupported ${'type' in (at as object ?? {}) ? 'type' : 'kind'} ${JSON.stringify(kind)}` };
  }
  return describe(e);
}

/** Validates a parsed manifest object; throws ManifestError naming the bad key. */
export function checkManifest(data: unknown, file: string): ManifestT {
  if (!validateManifest(data)) {
    const best = bestError(validateManifest.errors ?? [], data);
    throw new ManifestError(file, best.path, best.message);
  }
  const m = data as ManifestT;
  try {
    compileEncoder(m);
    compileDecoder(m);
  } catch (e) {
    if (e instanceof ContractError) throw new ManifestError(file, e.path, e.message.slice((e.path || '/').length + 2));
    throw e;
  }
  return m;
}

export function readManifest(file: string): ManifestT {
  let text: string;
  try { text = readFileSync(file, 'utf8'); } catch (e) { throw new ManifestError(file, '', `cannot read: ${(e as Error).message}`); }
  let data: unknown;
  try { data = parseYaml(text); } catch (e) { throw new ManifestError(file, '', `invalid YAML: ${(e as Error).message}`); }
  return checkManifest(data, file);
}
