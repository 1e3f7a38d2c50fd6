// The cascade's checks: an answer from a cheap tier is accepted, or the request escalates to the next
// tier with the reason. Checks, in order: the answer parses as JSON (`requireJson`, or a JSON Schema is
// in force), it satisfies the JSON Schema (the route's `cascade.schema`, and the request's own
// `response_format: {type: "json_schema"}`), it is not a refusal, it was not cut by `max_tokens` while
// JSON was required, and its confidence — the geometric mean of its tokens' probabilities, from the
// upstream's logprobs — reaches `minConfidence`.
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { LRUCache } from 'lru-cache';
import type { LlmRouteConfig } from '../config/schemas/llm.js';
import type { ChatAnswer } from './types.js';

export type CascadeFailure = 'json' | 'schema' | 'refusal' | 'length' | 'confidence' | 'no-logprobs';

/** One compiled JSON Schema check: undefined when the value passes, else the first error in words. */
export type SchemaCheck = (value: unknown) => string | undefined;

// One Ajv for every schema; strict mode off because request schemas come from apps written against
// OpenAI, whose structured outputs accept keywords Ajv's strict mode refuses (e.g. `strict`, `title` uses).
const ajv = new Ajv({ strict: false, allErrors: false, validateSchema: true });

function describeError(e: ErrorObject | undefined): string {
  if (!e) return 'does not match the schema';
  return `${e.instancePath || '/'} ${e.message ?? 'is invalid'}`;
}

function wrap(v: ValidateFunction): SchemaCheck {
  return (value) => (v(value) ? undefined : describeError(v.errors?.[0]));
}

// Request schemas repeat (an app sends the same one on every call): compiled once per distinct text.
const compiled = new LRUCache<string, SchemaCheck>({ max: 200 });

/** Compiles a JSON Schema; throws an Error naming what is wrong with the schema itself. */
export function compileSchema(schema: unknown): SchemaCheck {
  const text = JSON.stringify(schema);
  let check = compiled.get(text);
  if (!check) {
    if (schema === null || (typeof schema !== 'object' && typeof schema !== 'boolean'))
      throw new Error('a JSON Schema must be an object or a boolean');
    check = wrap(ajv.compile(schema as object));
    compiled.set(text, check);
  }
  return check;
}

/**
 * The answer's confidence: exp(mean token log-probability), i.e. the geometric mean of the probabilities
 * of the tokens it chose — 1 for an answer the model was sure of at every token. Undefined without logprobs.
 */
export function confidenceOf(logprobs: readonly number[] | undefined): number | undefined {
  if (!logprobs || logprobs.length === 0) return undefined;
  let sum = 0;
  for (const lp of logprobs) sum += Math.max(lp, -100); // -Infinity (a token of probability 0) as very unlikely
  return Math.exp(sum / logprobs.length);
}

export interface CascadeChecks {
  route: LlmRouteConfig['cascade'];
  refusals: readonly RegExp[];
  /** The route's compiled `cascade.schema`. */
  routeSchema?: SchemaCheck;
  /** The request's `response_format` JSON Schema. */
  requestSchema?: SchemaCheck;
  /** The request asked for a JSON object (`response_format: {type: "json_object"}`). */
  requestJson?: boolean;
}

/** Undefined when the answer passes every check in force, else why it escalates (and the detail). */
export function cascadeCheck(
  c: CascadeChecks,
  a: ChatAnswer,
): { failure: CascadeFailure; detail?: string } | undefined {
  const schemas = [c.routeSchema, c.requestSchema].filter((s): s is SchemaCheck => s !== undefined);
  const needJson = c.route.requireJson || c.requestJson === true || schemas.length > 0;
  if (needJson) {
    let value: unknown;
    try {
      value = JSON.parse(a.text);
    } catch {
      return { failure: 'json' };
    }
    for (const s of schemas) {
      const why = s(value);
      if (why !== undefined) return { failure: 'schema', detail: why };
    }
  }
  if (c.refusals.some((re) => re.test(a.text))) return { failure: 'refusal' };
  if (needJson && a.finishReason === 'length') return { failure: 'length' };
  if (c.route.minConfidence > 0) {
    const conf = confidenceOf(a.logprobs);
    if (conf === undefined) {
      if (c.route.withoutLogprobs === 'escalate') return { failure: 'no-logprobs' };
    } else if (conf < c.route.minConfidence) return { failure: 'confidence', detail: conf.toFixed(3) };
  }
  return undefined;
}
