// The registry of named preprocessing steps. A `ferry.yaml` composes steps by `op` name with
// parameters; each step is compiled once at model load (parameters validated, output shape known)
// and then applied per value. Pure TypeScript: the browser's edge runtime runs the same steps.
import { TypeCompiler } from '@sinclair/typebox/compiler';
import type { TSchema, Static } from '@sinclair/typebox';
import type { Feature } from '../contract/schema.js';
import { ContractError } from '../errors.js';

/** What flows between steps. The last step of a column must produce `scalar` or `vector`. */
export type ValueShape =
  | { kind: 'scalar' }
  | { kind: 'vector'; width: number }
  | { kind: 'string' }
  | { kind: 'tokens' }
  | { kind: 'category' }
  | { kind: 'any' };

/** A vector where most entries are zero, as hashed n-grams produce. */
export interface SparseVector {
  readonly sparse: true;
  readonly width: number;
  readonly indices: ArrayLike<number>;
  readonly values: ArrayLike<number>;
}

export function isSparse(v: unknown): v is SparseVector {
  return typeof v === 'object' && v !== null && (v as SparseVector).sparse === true;
}

export interface StepContext {
  /** The feature the column reads. */
  readonly feature: Feature;
  /** Where the step sits, for error messages (a JSON path into the manifest). */
  readonly path: string;
}

export interface CompiledStep {
  readonly output: ValueShape;
  apply(value: unknown): unknown;
}

export interface StepDefinition<P extends TSchema = TSchema> {
  readonly op: string;
  readonly description: string;
  /** Parameters of the step (everything in the YAML object except `op`). */
  readonly params: P;
  /** Input shapes the step accepts. */
  readonly accepts: ReadonlyArray<ValueShape['kind']>;
  compile(params: Static<P>, input: ValueShape, ctx: StepContext): CompiledStep;
}

const registry = new Map<string, { def: StepDefinition; check: ReturnType<typeof TypeCompiler.Compile> }>();

/** Adds a step to the registry. Registering the same op twice is a programming error. */
export function defineStep<P extends TSchema>(def: StepDefinition<P>): StepDefinition<P> {
  if (registry.has(def.op)) throw new Error(`preprocessing step "${def.op}" is already registered`);
  registry.set(def.op, { def: def as unknown as StepDefinition, check: TypeCompiler.Compile(def.params) });
  return def;
}

export function listSteps(): StepDefinition[] {
  return [...registry.values()].map((r) => r.def);
}

/** Compiles one `{op, ...params}` object against the shape flowing into it. */
export function compileStep(
  spec: { op: string; [k: string]: unknown },
  input: ValueShape,
  ctx: StepContext,
): CompiledStep {
  const entry = registry.get(spec.op);
  if (!entry) {
    throw new ContractError(
      `${ctx.path}/op`,
      `unknown preprocessing step "${spec.op}"; known steps: ${[...registry.keys()].sort().join(', ')}`,
    );
  }
  const { op: _op, ...params } = spec;
  if (!entry.check.Check(params)) {
    const first = entry.check.Errors(params).First();
    const where = first ? `${ctx.path}${first.path}` : ctx.path;
    throw new ContractError(where, `bad parameters for step "${spec.op}": ${first?.message ?? 'invalid'}`);
  }
  if (!entry.def.accepts.includes(input.kind) && !entry.def.accepts.includes('any')) {
    throw new ContractError(
      ctx.path,
      `step "${spec.op}" takes ${entry.def.accepts.join(' or ')} input, but receives ${input.kind}`,
    );
  }
  return entry.def.compile(params as never, input, ctx);
}
