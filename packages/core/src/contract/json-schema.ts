// JSON Schemas derived from a contract: what one instance, a predict request and a prediction look
// like. The server compiles them with Ajv, the OpenAPI document embeds them, and the client's
// generated types come from them, so nothing about a model is written twice by hand.
import type { Feature, Manifest, TensorFeature } from './schema.js';

export type JsonSchema = Record<string, unknown>;

export interface RequestLimits {
  maxInstances: number;
  maxStringLength: number;
  maxTensorElements: number;
}

const JSON_ELEMENT: Record<string, JsonSchema> = {
  bool: { type: 'boolean' },
  string: { type: 'string' },
};

function elementSchema(f: TensorFeature): JsonSchema {
  const range = { ...(f.min !== undefined && { minimum: f.min }), ...(f.max !== undefined && { maximum: f.max }) };
  if (f.dtype in JSON_ELEMENT) return JSON_ELEMENT[f.dtype]!;
  if (f.dtype.startsWith('float')) return { type: 'number', ...range };
  return { type: 'integer', ...range };
}

/** Nested array schema for a tensor row (shape without the batch dimension when batchable). */
function tensorRowSchema(f: TensorFeature, batchable: boolean, limits: RequestLimits): JsonSchema {
  const dims = batchable ? f.shape.slice(1) : f.shape;
  let s: JsonSchema = elementSchema(f);
  for (let i = dims.length - 1; i >= 0; i--) {
    const d = dims[i]!;
    s =
      d === -1
        ? { type: 'array', items: s, maxItems: limits.maxTensorElements }
        : { type: 'array', items: s, minItems: d, maxItems: d };
  }
  return s;
}

export function featureSchema(f: Feature, batchable: boolean, limits: RequestLimits): JsonSchema {
  const doc = f.description ? { description: f.description } : {};
  switch (f.type) {
    case 'number':
      return {
        type: 'number',
        ...(f.min !== undefined && { minimum: f.min }),
        ...(f.max !== undefined && { maximum: f.max }),
        ...doc,
      };
    case 'integer':
      return {
        type: 'integer',
        ...(f.min !== undefined && { minimum: f.min }),
        ...(f.max !== undefined && { maximum: f.max }),
        ...doc,
      };
    case 'boolean':
      return { type: 'boolean', ...doc };
    case 'category':
      return (f.unknown ?? 'error') === 'error'
        ? { type: 'string', enum: f.values, ...doc }
        : { type: 'string', maxLength: limits.maxStringLength, examples: f.values.slice(0, 5), ...doc };
    case 'string':
      return {
        type: 'string',
        ...(f.minLength !== undefined && { minLength: f.minLength }),
        maxLength: Math.min(f.maxLength ?? Infinity, limits.maxStringLength),
        ...doc,
      };
    case 'tensor':
      return { ...tensorRowSchema(f, batchable, limits), 'x-ferry-dtype': f.dtype, 'x-ferry-shape': f.shape, ...doc };
    case 'image': {
      const maxLength = Math.min(
        limits.maxStringLength,
        f.maxBytes !== undefined ? Math.ceil(f.maxBytes / 3) * 4 : Infinity,
      );
      return {
        type: 'string',
        contentEncoding: 'base64',
        minLength: 1,
        ...(Number.isFinite(maxLength) && { maxLength }),
        ...(f.formats && { 'x-ferry-formats': f.formats }),
        ...doc,
      };
    }
  }
}

export function isBatchable(m: Manifest): boolean {
  return m.inputs.every((f) => f.type !== 'tensor' || f.shape[0] === -1);
}

/** Schema of one instance (`{feature: value, ...}`). */
export function instanceSchema(m: Manifest, limits: RequestLimits): JsonSchema {
  const batchable = isBatchable(m);
  const properties: Record<string, JsonSchema> = {};
  const required: string[] = [];
  for (const f of m.inputs) {
    properties[f.name] = featureSchema(f, batchable, limits);
    const hasDefault = 'default' in f && f.default !== undefined;
    if (!f.optional && !hasDefault) required.push(f.name);
  }
  return { type: 'object', properties, required, additionalProperties: false };
}

/** Schema of a v1 predict request: row form `{instances: [...]}` or columnar form `{inputs: {...}}`. */
export function predictRequestSchema(m: Manifest, limits: RequestLimits): JsonSchema {
  const inst = instanceSchema(m, limits);
  const maxInstances = isBatchable(m) ? limits.maxInstances : 1;
  return {
    oneOf: [
      {
        type: 'object',
        properties: { instances: { type: 'array', items: inst, minItems: 1, maxItems: maxInstances } },
        required: ['instances'],
        additionalProperties: false,
      },
      {
        type: 'object',
        properties: {
          inputs: {
            type: 'object',
            description: 'columnar form: each feature maps to an array with one value per instance',
          },
        },
        required: ['inputs'],
        additionalProperties: false,
      },
    ],
  };
}

/** Schema of one prediction, from the postprocess section. */
export function predictionSchema(m: Manifest): JsonSchema {
  const post = m.postprocess ?? { kind: 'raw' as const };
  if (post.kind === 'classification') {
    return {
      type: 'object',
      properties: {
        label: { type: 'string', enum: post.labels },
        scores: {
          type: 'object',
          properties: Object.fromEntries(post.labels.map((l) => [l, { type: 'number' }])),
          required: post.labels,
          additionalProperties: false,
        },
        topK: {
          type: 'array',
          items: {
            type: 'object',
            properties: { label: { type: 'string' }, score: { type: 'number' } },
            required: ['label', 'score'],
          },
        },
      },
      required: ['label', 'scores'],
    };
  }
  if (post.kind === 'regression') {
    return {
      type: 'object',
      properties: { value: { oneOf: [{ type: 'number' }, { type: 'array', items: { type: 'number' } }] } },
      required: ['value'],
    };
  }
  return {
    type: 'object',
    properties: Object.fromEntries(
      m.outputs.map((o) => [
        o.name,
        { description: `output tensor ${o.name}${o.shape ? ` of shape [${o.shape.join(', ')}]` : ''}` },
      ]),
    ),
  };
}

export function predictResponseSchema(m: Manifest): JsonSchema {
  return {
    type: 'object',
    properties: {
      model: { type: 'string' },
      version: { type: 'string' },
      predictions: { type: 'array', items: predictionSchema(m) },
    },
    required: ['model', 'version', 'predictions'],
  };
}
