// Numeric and categorical steps: the building blocks of tabular models.
import { Type } from '@sinclair/typebox';
import { ContractError } from '../errors.js';
import { defineStep } from './registry.js';

const scalar = { kind: 'scalar' } as const;

function toNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (v === null || v === undefined) return Number.NaN;
  return Number(v);
}

export const identity = defineStep({
  op: 'identity',
  description: 'Passes a number (booleans become 0/1) through unchanged.',
  params: Type.Object({}),
  accepts: ['scalar', 'category', 'any'],
  compile: () => ({ output: scalar, apply: toNumber }),
});

export const impute = defineStep({
  op: 'impute',
  description: 'Replaces a missing (null/absent) or NaN value with `value`.',
  params: Type.Object({ value: Type.Number() }),
  accepts: ['scalar', 'any'],
  compile: (p) => ({
    output: scalar,
    apply: (v) => {
      const n = toNumber(v);
      return Number.isNaN(n) ? p.value : n;
    },
  }),
});

export const standardize = defineStep({
  op: 'standardize',
  description: '(x - mean) / std.',
  params: Type.Object({ mean: Type.Number(), std: Type.Number({ exclusiveMinimum: 0 }) }),
  accepts: ['scalar', 'any'],
  compile: (p) => ({ output: scalar, apply: (v) => (toNumber(v) - p.mean) / p.std }),
});

export const minMax = defineStep({
  op: 'min-max',
  description: 'Scales [min, max] onto [0, 1].',
  params: Type.Object({ min: Type.Number(), max: Type.Number() }),
  accepts: ['scalar', 'any'],
  compile: (p, _in, ctx) => {
    if (!(p.max > p.min)) throw new ContractError(ctx.path, 'min-max needs max > min');
    const span = p.max - p.min;
    return { output: scalar, apply: (v) => (toNumber(v) - p.min) / span };
  },
});

export const clip = defineStep({
  op: 'clip',
  description: 'Clamps into [min, max] (either bound may be omitted).',
  params: Type.Object({ min: Type.Optional(Type.Number()), max: Type.Optional(Type.Number()) }),
  accepts: ['scalar', 'any'],
  compile: (p) => {
    const lo = p.min ?? -Infinity;
    const hi = p.max ?? Infinity;
    return { output: scalar, apply: (v) => Math.min(hi, Math.max(lo, toNumber(v))) };
  },
});

export const log1p = defineStep({
  op: 'log1p',
  description: 'ln(1 + x), for skewed non-negative quantities.',
  params: Type.Object({}),
  accepts: ['scalar', 'any'],
  compile: () => ({ output: scalar, apply: (v) => Math.log1p(toNumber(v)) }),
});

export const cyclic = defineStep({
  op: 'cyclic',
  description: 'Encodes a periodic value (hour, month) as [sin(2πx/period), cos(2πx/period)].',
  params: Type.Object({ period: Type.Number({ exclusiveMinimum: 0 }) }),
  accepts: ['scalar', 'any'],
  compile: (p) => ({
    output: { kind: 'vector', width: 2 },
    apply: (v) => {
      const a = (2 * Math.PI * toNumber(v)) / p.period;
      return [Math.sin(a), Math.cos(a)];
    },
  }),
});

/** The value list a categorical step uses: its own `values`, else the category feature's. */
function categoryValues(
  explicit: ReadonlyArray<string | number> | undefined,
  ctx: { feature: { type: string; values?: string[] }; path: string },
): string[] {
  const values = explicit ?? (ctx.feature.type === 'category' ? ctx.feature.values : undefined);
  if (!values || values.length === 0) {
    throw new ContractError(
      ctx.path,
      `this step needs "values" (feature "${(ctx.feature as { name?: string }).name}" is not a category)`,
    );
  }
  return values.map(String);
}

const CategoryValues = Type.Optional(Type.Array(Type.Union([Type.String(), Type.Number()]), { minItems: 1 }));

export const oneHot = defineStep({
  op: 'one-hot',
  description:
    "One column per value (the feature's category values unless `values` is given); an unknown value is all zeros.",
  params: Type.Object({ values: CategoryValues }),
  accepts: ['category', 'scalar', 'string', 'any'],
  compile: (p, _in, ctx) => {
    const values = categoryValues(p.values, ctx);
    const index = new Map(values.map((v, i) => [v, i]));
    const width = values.length;
    return {
      output: { kind: 'vector', width },
      apply: (v) => {
        const out = new Float32Array(width);
        const i = index.get(String(v));
        if (i !== undefined) out[i] = 1;
        return out;
      },
    };
  },
});

export const indexStep = defineStep({
  op: 'index',
  description: 'The position of the value in the category list (unknown: -1).',
  params: Type.Object({ values: CategoryValues }),
  accepts: ['category', 'scalar', 'string', 'any'],
  compile: (p, _in, ctx) => {
    const values = categoryValues(p.values, ctx);
    const index = new Map(values.map((v, i) => [v, i]));
    return { output: scalar, apply: (v) => index.get(String(v)) ?? -1 };
  },
});
