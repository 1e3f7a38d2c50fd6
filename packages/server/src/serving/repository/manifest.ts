// Reading and validating one version's ferry.yaml. A bad manifest is refused with the file and
// the JSON path of the bad key, and the step composition is compiled here so errors show at load.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { parse as parseYaml } from 'yaml';
import {
  Manifest,
  compileDecoder,
  compileEncoder,
  ContractError,
  OCR_DEFAULTS,
  resolveOcrParams,
  type EncoderResources,
  type Manifest as ManifestT,
  type OcrParams,
} from '@ferry/core';

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
    return {
      path: e.instancePath,
      message: `${e.message} (${JSON.stringify((e.params as { allowedValues?: unknown }).allowedValues ?? (e.params as { allowedValue?: unknown }).allowedValue)})`,
    };
  }
  return { path: e.instancePath, message: e.message ?? 'invalid' };
}

/**
 * Picks the most useful of Ajv's errors. Inside a union (anyOf) of feature types or postprocess
 * kinds, only the branch whose `type`/`kind` literal matched speaks; if none matched, the
 * discriminator itself is the bad key.
 */
function bestError(errors: ErrorObject[], data: unknown): { path: string; message: string } {
  const unions = errors.filter((e) => e.keyword === 'anyOf');
  let candidates = errors.filter((e) => e.keyword !== 'anyOf');
  for (const u of unions) {
    const branchOf = (e: ErrorObject): number | undefined => {
      if (!e.schemaPath.startsWith(`${u.schemaPath}/`)) return undefined;
      return Number(e.schemaPath.slice(u.schemaPath.length + 1).split('/')[0]);
    };
    const inUnion = candidates.filter((e) => branchOf(e) !== undefined);
    if (!inUnion.length) continue;
    const discriminatorFailed = new Set(
      inUnion
        .filter(
          (e) =>
            e.keyword === 'const' &&
            (e.instancePath === `${u.instancePath}/type` || e.instancePath === `${u.instancePath}/kind`),
        )
        .map(branchOf),
    );
    if (discriminatorFailed.size === 0) {
      // A union of literals (e.g. dtype): list what is allowed.
      if (inUnion.every((e) => e.keyword === 'const' && e.instancePath === u.instancePath)) {
        const allowed = inUnion.map((e) => (e.params as { allowedValue: unknown }).allowedValue);
        return { path: u.instancePath, message: `must be one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}` };
      }
      continue;
    }
    const branches = new Set(inUnion.map(branchOf));
    const matched = [...branches].filter((b) => !discriminatorFailed.has(b));
    if (matched.length === 1) {
      candidates = candidates.filter((e) => branchOf(e) === undefined || branchOf(e) === matched[0]);
    } else {
      const at = u.instancePath
        .split('/')
        .slice(1)
        .reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], data) as
        Record<string, unknown> | undefined;
      const key = at && typeof at === 'object' && 'kind' in at ? 'kind' : 'type';
      return {
        path: `${u.instancePath}/${key}`.replace(/^\/\//, '/'),
        message: `unsupported ${key} ${JSON.stringify(at?.[key])}`,
      };
    }
  }
  const deepest = [...candidates].sort((a, b) => b.instancePath.length - a.instancePath.length);
  return describe(deepest[0] ?? errors[0]!);
}

/** The files beside ferry.yaml that the encoder needs (the tokenizer's `tokenizer.json`), read and parsed. */
export function encoderResources(dir: string, m: ManifestT, file = join(dir, 'ferry.yaml')): EncoderResources {
  if (!m.tokenizer) return {};
  const path = join(dir, m.tokenizer.file ?? 'tokenizer.json');
  if (!existsSync(path)) throw new ManifestError(file, '/tokenizer/file', `${path} does not exist`);
  try {
    return { tokenizer: JSON.parse(readFileSync(path, 'utf8')) as unknown };
  } catch (e) {
    throw new ManifestError(file, '/tokenizer/file', `${path} is not valid JSON: ${(e as Error).message}`);
  }
}

/** Validates a parsed manifest object; throws ManifestError naming the bad key. */
export function checkManifest(data: unknown, file: string): ManifestT {
  if (!validateManifest(data)) {
    const best = bestError(validateManifest.errors ?? [], data);
    throw new ManifestError(file, best.path, best.message);
  }
  const m = data as ManifestT;
  if (m.pipeline) {
    checkPipeline(m, file);
    return m;
  }
  // A generative model is driven by its tokenizer at /openai/v1; its inputs and outputs only document it.
  if (m.generation) {
    if (m.preprocess)
      throw new ManifestError(file, '/preprocess', 'a generative model tokenizes its own input; remove this section');
    if (m.postprocess)
      throw new ManifestError(file, '/postprocess', 'a generative model answers text; remove this section');
    return m;
  }
  try {
    compileEncoder(m, encoderResources(dirname(file), m, file));
    compileDecoder(m);
  } catch (e) {
    if (e instanceof ContractError) throw new ManifestError(file, e.path, e.message.slice((e.path || '/').length + 2));
    throw e;
  }
  return m;
}

/** A pipeline version takes one image and answers one result; its parameters are checked now, not at the first request.
 */
function checkPipeline(m: ManifestT, file: string): void {
  if (m.preprocess)
    throw new ManifestError(file, '/preprocess', 'a pipeline does its own preprocessing; remove this section');
  if (m.inputs.length !== 1 || m.inputs[0]!.type !== 'image')
    throw new ManifestError(file, '/inputs', `an ${m.pipeline!.kind} pipeline takes exactly one input of type image`);
  if (m.outputs.length !== 1) throw new ManifestError(file, '/outputs', 'a pipeline answers exactly one output');
  try {
    resolveOcrParams({ ...(m.pipeline!.params as Partial<OcrParams>), labels: ['', 'a'] });
  } catch (e) {
    throw new ManifestError(file, '/pipeline/params', (e as Error).message);
  }
  const unknown = Object.keys(m.pipeline!.params ?? {}).filter((k) => !(k in OCR_DEFAULTS));
  if (unknown.length)
    throw new ManifestError(
      file,
      `/pipeline/params/${unknown[0]}`,
      `unknown OCR parameter; known: ${Object.keys(OCR_DEFAULTS).join(', ')}`,
    );
}

export function readManifest(file: string): ManifestT {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ManifestError(file, '', `cannot read: ${(e as Error).message}`);
  }
  let data: unknown;
  try {
    data = parseYaml(text);
  } catch (e) {
    throw new ManifestError(file, '', `invalid YAML: ${(e as Error).message}`);
  }
  return checkManifest(data, file);
}
