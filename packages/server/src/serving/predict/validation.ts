// Request validation against a model's contract with Ajv-compiled validators. Every bad field is
// reported with its JSON pointer and a reason a person can act on.
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import {
  instanceSchema,
  isBatchable,
  type FieldIssue,
  type Instance,
  type Manifest,
  type RequestLimits,
} from '@ferry/core';
import { FerryError, invalidInput } from '../../errors.js';

const ajv = new Ajv({ allErrors: true, strict: false, coerceTypes: false, useDefaults: false });

function preview(list: readonly unknown[], n = 12): string {
  const shown = list
    .slice(0, n)
    .map((v) => JSON.stringify(v))
    .join(', ');
  return list.length > n ? `${shown}, … (${list.length} in all)` : shown;
}

function valueAt(root: unknown, pointer: string): unknown {
  if (!pointer) return root;
  return pointer
    .split('/')
    .slice(1)
    .reduce<unknown>(
      (o, k) =>
        o === null || typeof o !== 'object'
          ? undefined
          : (o as Record<string, unknown>)[k.replace(/~1/g, '/').replace(/~0/g, '~')],
      root,
    );
}

function show(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** Maps Ajv's errors onto Ferry's field issues. `base` prefixes every pointer (e.g. `/instances`). */
export function issuesFromAjv(
  errors: readonly ErrorObject[],
  data: unknown,
  base: string,
  manifest: Manifest,
): FieldIssue[] {
  const features = manifest.inputs.map((f) => f.name);
  const out: FieldIssue[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    const at = `${base}${e.instancePath}`;
    let issue: FieldIssue;
    switch (e.keyword) {
      case 'additionalProperties': {
        const key = (e.params as { additionalProperty: string }).additionalProperty;
        issue = {
          pointer: `${at}/${key}`,
          reason: `unknown feature "${key.slice(0, 100)}"; the model takes ${preview(features)}`,
        };
        break;
      }
      case 'required': {
        const key = (e.params as { missingProperty: string }).missingProperty;
        issue = { pointer: `${at}/${key}`, reason: `missing required feature "${key}"` };
        break;
      }
      case 'type':
        issue = {
          pointer: at,
          reason: `expected ${(e.params as { type: string }).type}, got ${show(valueAt(data, e.instancePath))}`,
        };
        break;
      case 'enum':
        issue = {
          pointer: at,
          reason: `unknown category ${show(valueAt(data, e.instancePath))}; allowed: ${preview((e.params as { allowedValues: unknown[] }).allowedValues)}`,
        };
        break;
      case 'minimum':
      case 'maximum':
      case 'exclusiveMinimum':
      case 'exclusiveMaximum':
        issue = { pointer: at, reason: `out of range: ${show(valueAt(data, e.instancePath))} ${e.message}` };
        break;
      case 'maxLength':
        issue = {
          pointer: at,
          reason: `string too long: the limit is ${(e.params as { limit: number }).limit} characters`,
        };
        break;
      case 'minItems':
      case 'maxItems': {
        const v = valueAt(data, e.instancePath);
        issue = {
          pointer: at,
          reason: `wrong length: ${e.message}, got ${Array.isArray(v) ? v.length : '?'} (wrong tensor shape?)`,
        };
        break;
      }
      default:
        issue = { pointer: at, reason: e.message ?? e.keyword };
    }
    const k = `${issue.pointer}|${issue.reason}`;
    if (!seen.has(k)) {
      seen.add(k);
      out.push(issue);
    }
    if (out.length >= 50) break;
  }
  return out;
}

export interface RequestValidator {
  /** Validates instances; throws FerryError('invalid-input' | 'too-many-instances') naming each bad field. */
  check(instances: unknown, base?: string): Instance[];
  readonly schema: Record<string, unknown>;
}

export function compileRequestValidator(manifest: Manifest, limits: RequestLimits): RequestValidator {
  const schema = instanceSchema(manifest, limits);
  const validate: ValidateFunction = ajv.compile(schema);
  const maxInstances = isBatchable(manifest) ? limits.maxInstances : 1;
  return {
    schema,
    check(instances: unknown, base = '/instances'): Instance[] {
      if (!Array.isArray(instances)) throw invalidInput([{ pointer: base, reason: 'expected an array of instances' }]);
      if (instances.length === 0) throw invalidInput([{ pointer: base, reason: 'at least one instance is required' }]);
      if (instances.length > maxInstances) {
        throw new FerryError('too-many-instances', {
          detail:
            maxInstances === 1
              ? `this model has no batch dimension: send exactly one instance, got ${instances.length}`
              : `${instances.length} instances sent; the limit (limits.maxInstances) is ${maxInstances}`,
          extra: { limit: maxInstances, errors: [{ pointer: base, reason: `at most ${maxInstances} instances` }] },
        });
      }
      const issues: FieldIssue[] = [];
      for (let i = 0; i < instances.length && issues.length < 50; i++) {
        const inst = instances[i];
        if (!validate(inst)) issues.push(...issuesFromAjv(validate.errors ?? [], inst, `${base}/${i}`, manifest));
      }
      if (issues.length) throw invalidInput(issues);
      return instances as Instance[];
    },
  };
}

/** Turns the columnar form `{feature: [v0, v1, ...]}` into instances. */
export function columnsToInstances(inputs: unknown, base = '/inputs'): Instance[] {
  if (inputs === null || typeof inputs !== 'object' || Array.isArray(inputs)) {
    throw invalidInput([{ pointer: base, reason: 'expected an object mapping each feature to an array of values' }]);
  }
  const entries = Object.entries(inputs as Record<string, unknown>);
  if (entries.length === 0) throw invalidInput([{ pointer: base, reason: 'no inputs given' }]);
  let n = -1;
  for (const [k, v] of entries) {
    if (!Array.isArray(v))
      throw invalidInput([{ pointer: `${base}/${k}`, reason: 'expected an array with one value per instance' }]);
    if (n === -1) n = v.length;
    else if (v.length !== n)
      throw invalidInput([
        { pointer: `${base}/${k}`, reason: `has ${v.length} values but "${entries[0]![0]}" has ${n}` },
      ]);
  }
  return Array.from({ length: n }, (_, i) => Object.fromEntries(entries.map(([k, v]) => [k, (v as unknown[])[i]])));
}
